package buildinfo

import "runtime/debug"

// revision is set by the Makefile: -ldflags "-X github.com/driftline/driftline/internal/buildinfo.revision=$(git rev-parse HEAD)".
var revision string

// Revision is the git revision of the build, "unknown" when neither ldflags nor VCS info say.
func Revision() string {
	if revision != "" {
		return revision
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}
