package evaluate

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/pipeline"
)

func TestDisparateImpact(t *testing.T) {
	fr := DisparateImpact("region", 10, Groups{
		"north": {Rows: 100, Favorable: 50},
		"south": {Rows: 200, Favorable: 60},
		"east":  {Rows: 10, Favorable: 0}, // too few rows to count
	}, 30)
	require.InDelta(t, 0.3/0.5, fr.DisparateImpact, 1e-12)
	require.Equal(t, "south", fr.Lowest)
	require.Equal(t, "north", fr.Highest)
	require.Equal(t, 0.0, fr.Groups["east"].Rate)
	none := DisparateImpact("region", 10, Groups{"north": {Rows: 100}, "south": {Rows: 100}}, 30)
	require.Equal(t, 1.0, none.DisparateImpact, "nobody favoured: no disparity")
	g := Groups{}
	g.Add("north", true)
	g.Add("north", false)
	require.Equal(t, pipeline.GroupRate{Rows: 2, Favorable: 1}, *g["north"])
}
