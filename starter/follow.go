package starter

import (
	"context"
	"fmt"
	"io"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/driftline/driftline/pipeline"
)

// Follow prints each step of a run as it finishes (polling the status query) until the run
// closes, and calls onApproval once when the run starts waiting for a human.
func Follow(ctx context.Context, c client.Client, model string, run client.WorkflowRun, out io.Writer, onApproval func(pipeline.Status)) (pipeline.RunResult, error) {
	done := make(chan error, 1)
	var res pipeline.RunResult
	go func() { done <- run.Get(ctx, &res) }()
	printed, asked := 0, false
	var stage pipeline.Stage
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	show := func(st pipeline.Status) {
		for ; printed < len(st.Steps); printed++ {
			s := st.Steps[printed]
			if s.Finished.IsZero() {
				break
			}
			fmt.Fprintf(out, "  %-18s %6.1fs  %s\n", s.Name, s.Finished.Sub(s.Started).Seconds(), s.Summary)
		}
		if st.Stage != stage {
			stage = st.Stage
			if stage == pipeline.StageApproval || stage == pipeline.StageCanary {
				fmt.Fprintf(out, "  %-18s ...     in progress\n", stage)
			}
		}
		if st.Stage == pipeline.StageApproval && !asked && onApproval != nil {
			asked = true
			onApproval(st)
		}
	}
	for {
		select {
		case err := <-done:
			if st, qerr := Status(ctx, c, model, run.GetRunID()); qerr == nil {
				show(st)
				if err != nil {
					res = pipeline.RunResult{Outcome: st.Outcome, Reason: st.Reason, Version: st.CandidateVersion}
				}
			}
			return res, err
		case <-tick.C:
			if st, err := Status(ctx, c, model, run.GetRunID()); err == nil {
				show(st)
			}
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
}
