package memlimit

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func cgroup(t *testing.T, file, content string) string {
	t.Helper()
	root := t.TempDir()
	path := filepath.Join(root, file)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	return root
}

// auto gives 90% of a container's limit (cgroup v2 or v1), nothing when the container has no
// limit or GOMEMLIMIT is set; sizes are read with their units; a bad size names the flag.
func TestTheSoftLimitFollowsTheContainer(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	n, what, err := Resolve("auto", cgroup(t, "memory.max", "1073741824\n"))
	require.NoError(t, err)
	one := float64(1 << 30)
	require.Equal(t, int64(one*Share), n)
	require.Contains(t, what, "of the container's 1024 MiB")

	n, _, err = Resolve("auto", cgroup(t, "memory/memory.limit_in_bytes", "2147483648"))
	require.NoError(t, err)
	require.Equal(t, int64(2*one*Share), n, "cgroup v1")

	for _, none := range []string{"max\n", "9223372036854771712"} {
		n, what, err = Resolve("auto", cgroup(t, "memory.max", none))
		require.NoError(t, err)
		require.Zero(t, n, none)
		require.Contains(t, what, "no container memory limit")
	}
	n, _, err = Resolve("auto", t.TempDir())
	require.NoError(t, err)
	require.Zero(t, n, "no cgroup files")

	t.Setenv("GOMEMLIMIT", "500MiB")
	n, what, err = Resolve("auto", cgroup(t, "memory.max", "1073741824"))
	require.NoError(t, err)
	require.Zero(t, n, "the runtime already read GOMEMLIMIT")
	require.Contains(t, what, "GOMEMLIMIT=500MiB")

	for in, want := range map[string]int64{"900MiB": 900 << 20, "2GiB": 2 << 30, "1500MB": 1500e6, "4096": 4096, "64 KiB": 64 << 10} {
		n, _, err := Resolve(in, "/nonexistent")
		require.NoError(t, err, in)
		require.Equal(t, want, n, in)
	}
	n, _, err = Resolve("off", "/nonexistent")
	require.NoError(t, err)
	require.Zero(t, n)
	for _, bad := range []string{"lots", "-5MiB", "1.5GiB", "0", "99999999999TiB"} {
		_, _, err := Resolve(bad, "/nonexistent")
		require.ErrorContains(t, err, "--memory-limit", bad)
	}
}
