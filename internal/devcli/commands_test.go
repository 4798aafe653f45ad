package devcli

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// driftline-dev's tools are wired (docs/demo.md and docs/ingest.md use them).
func TestDevelopmentCommandsExist(t *testing.T) {
	for _, name := range []string{"demo", "datagen", "traffic", "weather", "kafka-dev", "produce"} {
		c, ok := Commands[name]
		require.True(t, ok, name)
		require.NotNil(t, c.Run, name)
		require.NotEmpty(t, c.Summary, name)
	}
}
