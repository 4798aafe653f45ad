package workflows

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
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
	// Runs of the current code: attested approvals, the one pass, the canary ramp; a forged
	// approval signal ignored and audited ("audit-ignored-signals"), recorded by the
	// end-to-end test (DRIFTLINE_RECORD_HISTORIES, docs/testing.md).
	{"attested_ignored_signal.json", "ct/demand", false},
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
	// The monitor of the current code (windows waiting on the interval or a closed partition:
	// "new-partition-signal"), starting the loop on a live MAE breach, then stopped; from the
	// end-to-end test.
	{"monitor_started_the_loop_signalled.json", "monitor/demand", false},
	{"materialize_five_chunks.json", "materialize/retail/demand_history", false},
	// A run whose window of 28 day files was read as 4 partitions and merged
	// ("partitioned-pass"), then canaried and promoted; from the end-to-end test, with the
	// activities' results snake_case.
	{"partitioned_pass.json", "ct/demand", false},
	// A run whose window of 28 day files was read as 7 partitions, its holdout evaluated as
	// the 2 holding its days and merged ("partitioned-evaluation"); from the end-to-end test.
	{"partitioned_evaluation.json", "ct/demand", false},
	// A fleet rollout ramped 10% -> 50% and promoted, and one rolled back at its first step on
	// live MAE; from the fleet's end-to-end test (testsuite/fleet_test.go).
	{"fleet_rollout_promoted.json", "fleet/demand/stores", false},
	{"fleet_rollout_rolled_back.json", "fleet/demand/stores", false},
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

// notReplayedYet are the changes whose new branch no committed real history takes, with why.
var notReplayedYet = map[string]string{
	"fairness-review": "no run on a real server has crossed a fairness floor yet; the branch is covered by the monitor's workflow tests",
	"review-keys-from-worker": "taken only by a monitor that starts with an open fairness review in its input (carried over, or forged), which no real run has had; " +
		"covered by the monitor's workflow tests (a forged review's keys are replaced by the worker's)",
}

// Every workflow.GetVersion change in the code has its new branch in a real history above
// (the version marker recorded), or is listed in notReplayedYet with the reason; the default
// branches are the histories from before each change.
func TestEveryVersionedChangeIsReplayed(t *testing.T) {
	code, err := filepath.Glob("*.go")
	require.NoError(t, err)
	changes := map[string]bool{}
	call := regexp.MustCompile(`workflow\.GetVersion\([^,]+,\s*"([^"]+)"`)
	for _, f := range code {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range call.FindAllStringSubmatch(string(src), -1) {
			changes[m[1]] = true
		}
	}
	require.GreaterOrEqual(t, len(changes), 8)
	recorded := map[string]bool{}
	data := regexp.MustCompile(`"data":\s*"([A-Za-z0-9+/=]+)"`)
	for _, h := range histories {
		if h.broken {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("testdata", h.file))
		require.NoError(t, err)
		for _, m := range data.FindAllStringSubmatch(string(raw), -1) {
			d, err := base64.StdEncoding.DecodeString(m[1])
			if err != nil {
				continue
			}
			for c := range changes {
				if strings.Contains(string(d), c) {
					recorded[c] = true
				}
			}
		}
	}
	for c := range changes {
		_, excused := notReplayedYet[c]
		require.True(t, recorded[c] != excused, "change %q: replayed=%v, listed in notReplayedYet=%v", c, recorded[c], excused)
	}
}
