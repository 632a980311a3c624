// Package config owns kvgate's configuration: the schema types, strict YAML
// decoding (unknown keys are errors), defaults in one place (defaults.go) and
// validation that reports every problem with its file, line, key path and fix.
//
// It reads bytes and returns values. It must not open sockets, certificate
// files or anything else named inside a configuration: whether a certFile
// exists is checked by the proxy when it loads it, so that a configuration can
// be validated on a machine other than the one that will serve it.
//
// Names it does not own it checks against their owner: balancer, picker and
// scorer names against package pick's registry, which it must not copy.
//
// The usual entry points are Load (a file) and Parse (bytes). Both decode,
// apply Default, run Validate and return either a ready *Config or a *Errors
// listing every problem found:
//
//	cfg, err := config.Load("kvgate.yaml")
//	if err != nil {
//		fmt.Fprintln(os.Stderr, err) // one "file:line:col: path: msg" per line
//		os.Exit(2)
//	}
package config
