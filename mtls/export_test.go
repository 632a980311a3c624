package mtls

// ReloadAttempts reports how many times cf re-read its files after the first load.
func ReloadAttempts(cf *CertFiles) int64 { return cf.reloads.Load() }
