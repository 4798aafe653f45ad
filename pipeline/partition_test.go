package pipeline

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/spec"
)

// A batch of 500 partitions goes to its child workflow with the run's step once: its input
// (an event of the parent's history) stays about 25 KB where 500 copies of the spec were
// 1.5 MB, and the child reads every partition with its step, from this shape and from the
// earlier one.
func TestABatchCarriesTheStepOnce(t *testing.T) {
	sp, err := spec.Load("../examples/demand.yaml")
	require.NoError(t, err)
	step := StepInput{Model: "demand", RunID: "r", Spec: sp, SnapshotKey: "snapshots/retail_demand/r.json"}
	var parts []PartitionInput
	for p := range 500 {
		parts = append(parts, PartitionInput{StepInput: step, Partition: 1000 + p, FromFile: 1000 + p, ToFile: 1001 + p})
	}
	compact, err := json.Marshal(Batch(parts))
	require.NoError(t, err)
	earlier, err := json.Marshal(PartitionsInput{Partitions: parts})
	require.NoError(t, err)
	t.Logf("a batch of 500: %d bytes, %d in the earlier shape", len(compact), len(earlier))
	require.Less(t, len(compact), 64<<10)
	for _, raw := range [][]byte{compact, earlier} {
		var in PartitionsInput
		require.NoError(t, json.Unmarshal(raw, &in))
		got := in.All()
		require.Len(t, got, 500)
		for i := range got {
			require.Equal(t, parts[i].Partition, got[i].Partition)
			require.Equal(t, parts[i].FromFile, got[i].FromFile)
			require.Equal(t, parts[i].ToFile, got[i].ToFile)
			require.Equal(t, parts[i].SnapshotKey, got[i].SnapshotKey)
			require.Equal(t, parts[i].Spec.Hash, got[i].Spec.Hash)
		}
	}
	require.Empty(t, Batch(nil).All())
}
