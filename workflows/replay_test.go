package workflows

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Histories of real runs, captured from the dev server after `make demo` with
//
//	temporal workflow show -w <id> -r <run> -o json > workflows/testdata/<name>.json
//
// must replay against the current code: a change that would break running workflows fails
// here. broken_skips_validation.json is a real history with one activity renamed, as if the
// code had changed its commands; it must fail to replay, which proves the check works.
var histories = []struct {
	file, workflowID string
	broken           bool
}{
	// Runs of the current code: attested approvals, the one pass, the canary ramp.
	{"attested_first_deployment.json", "ct/demand", false},
	{"attested_promoted_after_canary.json", "ct/demand", false},
	// Runs from before attestations (the default branch of "attested-approvals").
	{"one_pass_first_deployment_with_approval.json", "ct/demand", false},
	{"one_pass_promoted_after_canary.json", "ct/demand", false},
	{"one_pass_canary_ramp.json", "ct/demand/canary/v2", false},
	// Runs from before the one pass: the default branch of "one-pass-window" (Validate, then
	// Detect).
	{"first_deployment_with_approval.json", "ct/demand", false},
	{"promoted_after_canary.json", "ct/demand", false},
	{"canary_promoted.json", "ct/demand/canary/v2", false},
	{"broken_skips_validation.json", "ct/demand", true},
	// The monitor of the demo (windows, the loop started on drift, stopped), and a
	// materialization of five daily chunks on the serving worker's queue (make up).
	{"monitor_started_the_loop.json", "monitor/demand", false},
	{"materialize_five_chunks.json", "materialize/retail/demand_history", false},
}

func TestReplayRealHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	require.NoError(t, err)
	require.Len(t, files, len(histories), "every committed history is listed in the table")
	for _, h := range histories {
		t.Run(h.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", h.file))
			require.NoError(t, err)
			defer f.Close()
			hist, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
			require.NoError(t, err)
			r := worker.NewWorkflowReplayer()
			Register(r)
			err = r.ReplayWorkflowHistoryWithOptions(nil, hist, worker.ReplayWorkflowHistoryOptions{
				OriginalExecution: workflow.Execution{ID: h.workflowID}})
			if h.broken {
				require.Error(t, err, "a history that no longer matches the code must fail to replay")
				require.Contains(t, err.Error(), "nondeterministic")
				return
			}
			require.NoError(t, err)
		})
	}
}
