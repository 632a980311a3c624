run_cluster() { die "not yet"; }
