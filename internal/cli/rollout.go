package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/driftline/driftline/internal/config"
	"github.com/driftline/driftline/rollout"
)

// rolloutCmd ramps a new build of the pipeline worker in under worker versioning, gated by
// Driftline's health checks, rolling back when a gate fails (docs/deploying.md). It acts on
// Temporal directly, with the operator's Temporal credentials: who may change a namespace's
// worker deployments is Temporal's authorisation (and the cluster's), not the API's.
func rolloutCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "rollout --build-id BUILD", Short: "ramp a new worker build in (10% -> 50% -> 100%), gated; roll back when a gate fails", Args: NoArgs}
	fs := cmd.Flags()
	deployment := EnvFlag(fs, "deployment", "DRIFTLINE_DEPLOYMENT", "driftline", "the workers' Temporal worker deployment")
	build := fs.String("build-id", "", "the new build, whose workers already run (driftline worker --deployment ... --build-id ...)")
	steps := fs.String("steps", "10,50,100", "percentages of new runs at each step, rising, ending at 100")
	hold := fs.Duration("hold", 10*time.Minute, "how long each step is watched before the next")
	poll := fs.Duration("poll", 30*time.Second, "how often the gate is read during a step")
	ratio := fs.Float64("max-latency-ratio", 2, "the gate fails when an activity's median time on the new build exceeds this multiple of the other builds'")
	_ = fs.SetAnnotation("build-id", requiredAnnotation, []string{"the build to ramp in"})
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var pcts []int
		for _, s := range strings.Split(*steps, ",") {
			p, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return usageError{cmd, fmt.Errorf("--steps %q: percentages separated by commas", *steps)}
			}
			pcts = append(pcts, p)
		}
		out := cmd.OutOrStdout()
		opts := rollout.Options{Deployment: *deployment, BuildID: *build, Steps: pcts, Hold: *hold, Poll: *poll,
			MaxLatencyRatio: *ratio, Log: func(s string) { fmt.Fprintf(out, "%s %s\n", time.Now().Format(time.TimeOnly), s) }}
		if err := opts.Validate(); err != nil {
			return usageError{cmd, err}
		}
		c, err := config.TemporalClient()
		if err != nil {
			return err
		}
		defer c.Close()
		res, err := rollout.Run(cmd.Context(), c, opts)
		if err != nil {
			return err
		}
		if !res.Promoted {
			return fmt.Errorf("rolled back at %d%%: %s", res.Step, res.Reason)
		}
		fmt.Fprintf(out, "%s:%s is current (was %q)\n", *deployment, *build, res.Previous)
		return nil
	}
	return cmd
}
