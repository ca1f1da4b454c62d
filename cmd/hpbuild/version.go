package main

import "runtime/debug"

// version returns the version of this hpbuild binary as recorded by the Go
// toolchain: the main module version, then the VCS revision (12 digits,
// "-dirty" when the tree had local changes) when the build recorded one.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return formatVersion(nil)
	}
	return formatVersion(info)
}

// formatVersion formats the version held in info, which may be nil.
func formatVersion(info *debug.BuildInfo) string {
	v := "(devel)"
	if info == nil {
		return v
	}
	if info.Main.Version != "" {
		v = info.Main.Version
	}
	var rev string
	var dirty bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty {
			rev += "-dirty"
		}
		v += " " + rev
	}
	return v
}
