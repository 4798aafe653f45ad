package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

// No default credentials: no command sends a built-in key. Unset or
// empty keys mean the AWS credential chain; a key comes only from the environment, a flag or
// a file.
func TestNoDefaultCredentials(t *testing.T) {
	t.Setenv("DRIFTLINE_S3_ACCESS_KEY", "") // set and empty: used to fall back to a built-in key
	t.Setenv("DRIFTLINE_S3_SECRET_KEY", "")
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	c := S3Flags(fs)
	require.NoError(t, fs.Parse(nil))
	require.Empty(t, c.AccessKey, "no built-in access key")
	require.Empty(t, c.SecretKey, "no built-in secret key")
	require.NoError(t, c.Validate(), "empty keys: the AWS credential chain")
	os.Unsetenv("DRIFTLINE_S3_ACCESS_KEY")
	os.Unsetenv("DRIFTLINE_S3_SECRET_KEY")
	fs = pflag.NewFlagSet("t", pflag.ContinueOnError)
	c = S3Flags(fs)
	require.NoError(t, fs.Parse(nil))
	require.Empty(t, c.AccessKey)
	require.Empty(t, c.SecretKey)

	// Keys from files (Docker secrets).
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "user"), []byte("dev-1234\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pass"), []byte("s3cr3t\n"), 0o600))
	t.Setenv("DRIFTLINE_S3_ACCESS_KEY_FILE", filepath.Join(dir, "user"))
	t.Setenv("DRIFTLINE_S3_SECRET_KEY_FILE", filepath.Join(dir, "pass"))
	require.NoError(t, fromFile(&c.AccessKey, "DRIFTLINE_S3_ACCESS_KEY_FILE"))
	require.NoError(t, fromFile(&c.SecretKey, "DRIFTLINE_S3_SECRET_KEY_FILE"))
	require.Equal(t, "dev-1234", c.AccessKey)
	require.Equal(t, "s3cr3t", c.SecretKey)
	t.Setenv("DRIFTLINE_S3_SECRET_KEY_FILE", filepath.Join(dir, "missing"))
	c.SecretKey = ""
	require.ErrorContains(t, fromFile(&c.SecretKey, "DRIFTLINE_S3_SECRET_KEY_FILE"), "DRIFTLINE_S3_SECRET_KEY_FILE")
}

// --temporal-address and --temporal-namespace reach the client over the environment: the
// dial goes to the flag's address, and Namespace is the flag's.
func TestTemporalFlagsOverrideTheEnvironment(t *testing.T) {
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:7233")
	t.Setenv("TEMPORAL_NAMESPACE", "from-env")
	t.Cleanup(func() { temporalFlags.Address, temporalFlags.Namespace = "", "" })
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	TemporalFlags(fs)
	require.NoError(t, fs.Parse(nil))
	require.Equal(t, "from-env", Namespace(), "the environment is the default")
	require.NoError(t, fs.Parse([]string{"--temporal-address", "127.0.0.1:1", "--temporal-namespace", "from-flag"}))
	require.Equal(t, "from-flag", Namespace())
	_, err := TemporalClient()
	require.ErrorContains(t, err, "connect to temporal at 127.0.0.1:1")
}
