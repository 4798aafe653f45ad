// Package memlimit sets the Go runtime's soft memory limit of a Driftline process from its
// container's memory limit, so the garbage collector works harder as the process nears the
// limit instead of letting the heap reach twice its live size (docs/scaling.md: a wide window's
// worker peaked at 1,015 MB with the default collector, 884 MB under a 900 MiB soft limit, in
// the same time).
package memlimit

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// Share is the part of the container's limit given to the Go heap's soft limit; the rest is
// for what the runtime does not count (stacks of threads, cgo, the page cache's share).
const Share = 0.9

// Cgroup files holding the container's memory limit: cgroup v2, then v1.
var cgroupFiles = []string{"memory.max", "memory/memory.limit_in_bytes"}

// Resolve is the soft limit in bytes that setting asks for: "auto" (90% of the container's
// limit, or none when there is none or GOMEMLIMIT is set), "off", or a size such as 900MiB,
// 2GiB, 1500MB or a number of bytes. 0 means no limit is set. cgroupRoot is normally
// /sys/fs/cgroup.
func Resolve(setting, cgroupRoot string) (int64, string, error) {
	switch s := strings.TrimSpace(setting); s {
	case "off", "":
		return 0, "no soft memory limit (--memory-limit off)", nil
	case "auto":
		if v := os.Getenv("GOMEMLIMIT"); v != "" {
			return 0, "soft memory limit from GOMEMLIMIT=" + v, nil
		}
		limit, file, ok := containerLimit(cgroupRoot)
		if !ok {
			return 0, "no soft memory limit: no container memory limit found", nil
		}
		n := int64(float64(limit) * Share)
		return n, fmt.Sprintf("soft memory limit %d MiB: %.0f%% of the container's %d MiB (%s)", n>>20, Share*100, limit>>20, file), nil
	default:
		n, err := ParseSize(s)
		if err != nil {
			return 0, "", fmt.Errorf("--memory-limit %q: %v (auto, off, or a size such as 900MiB)", setting, err)
		}
		return n, fmt.Sprintf("soft memory limit %d MiB (--memory-limit)", n>>20), nil
	}
}

// Apply sets the runtime's soft limit as Resolve says and returns what it did, for the log.
func Apply(setting string) (string, error) {
	n, what, err := Resolve(setting, "/sys/fs/cgroup")
	if err != nil {
		return "", err
	}
	if n > 0 {
		debug.SetMemoryLimit(n)
	}
	return what, nil
}

// containerLimit reads the first cgroup file that holds a finite limit.
func containerLimit(root string) (int64, string, bool) {
	for _, f := range cgroupFiles {
		path := filepath.Join(root, f)
		raw, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(raw))
		n, err := strconv.ParseInt(s, 10, 64)
		// "max" (v2) or a huge number (v1's unlimited, about 2^63 rounded to pages): no limit.
		if err != nil || n <= 0 || n >= math.MaxInt64/2 {
			continue
		}
		return n, path, true
	}
	return 0, "", false
}

var units = []struct {
	suffix string
	scale  int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}

// ParseSize reads a size: a whole number with an optional unit (B, KB, MB, GB, TB, KiB, MiB,
// GiB, TiB).
func ParseSize(s string) (int64, error) {
	num, scale := s, int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			num, scale = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.scale
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("not a positive whole number of bytes with a unit")
	}
	if n > math.MaxInt64/scale {
		return 0, fmt.Errorf("too large")
	}
	return n * scale, nil
}
