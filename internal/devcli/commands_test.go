package devcli

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/internal/cli"
)

// driftline-dev's tools are wired beside the production commands (docs/demo.md and
// docs/ingest.md use them), each with its help and what it runs.
func TestDevelopmentCommandsExist(t *testing.T) {
	root := cli.Root(Commands()...)
	for _, name := range []string{"demo", "datagen", "traffic", "weather", "kafka-dev", "produce", "run", "worker"} {
		c, _, err := root.Find([]string{name})
		require.NoError(t, err, name)
		require.Equal(t, name, c.Name())
		require.NotNil(t, c.RunE, name)
		require.NotEmpty(t, c.Short, name)
	}
}
