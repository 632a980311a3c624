// Package buildinfo owns the running build's version and revision, for
// `kvgate version`, the kvgate_build_info metric and the service.version
// of spans.
//
// It must not import any other kvgate package.
package buildinfo

import "runtime/debug"

// version is set at link time:
//
//	-ldflags "-X github.com/kvgate/kvgate/internal/buildinfo.version=v1.2.3"
var version = "dev"

// Version is the release the binary was built as, or dev-<revision> for
// a build from a VCS checkout without one, or dev.
func Version() string {
	if version != "dev" {
		return version
	}
	if r := Revision(); len(r) >= 12 {
		return "dev-" + r[:12]
	}
	return version
}

// Revision is the VCS revision the binary was built from, "" when unknown.
func Revision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return ""
}
