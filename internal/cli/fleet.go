package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/driftline/driftline/api"
	"github.com/driftline/driftline/registry"
)

// fleetCmd manages a model's fleets of devices through the control-plane API (docs/edge.md,
// "Fleets"): who is in one, what it runs, rolling a version out and stopping it.
func fleetCmd() *cobra.Command {
	return parent("fleet", "define a model's fleets of devices, show them, roll the production version out to one or stop it",
		fleetApplyCmd(), fleetShowCmd(), fleetRolloutCmd(), fleetStopCmd())
}

func fleetFlags(cmd *cobra.Command) (model, fleet *string) {
	model = ModelFlag(cmd, "model the fleet runs")
	fleet = cmd.Flags().String("fleet", "", "fleet name (lowercase letters, digits, _ and -)")
	_ = cmd.Flags().SetAnnotation("fleet", requiredAnnotation, []string{"the fleet"})
	return model, fleet
}

func fleetApplyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "apply", Short: "create a fleet or set its members: device ids (token subjects) and token groups", Args: NoArgs}
	model, fleet := fleetFlags(cmd)
	members := cmd.Flags().StringSlice("members", nil, "device ids (the subjects of the devices' tokens)")
	groups := cmd.Flags().StringSlice("groups", nil, "token groups whose devices are members")
	a := APIFlags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var f registry.Fleet
		if err := a.call(func(c *api.Client) (err error) {
			f, err = c.ApplyFleet(cmd.Context(), *model, *fleet, api.FleetRequest{Members: *members, Groups: *groups})
			return
		}); err != nil {
			return err
		}
		printFleet(f)
		return nil
	}
	return cmd
}

func fleetShowCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "show", Short: "show a fleet: its releases, the rollout under way and what its devices last reported", Args: NoArgs}
	model, fleet := fleetFlags(cmd)
	out := addOutput(cmd.Flags())
	a := APIFlags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var v api.FleetView
		if err := a.call(func(c *api.Client) (err error) { v, err = c.Fleet(cmd.Context(), *model, *fleet); return }); err != nil {
			return err
		}
		if asJSON, err := out.JSON(); err != nil {
			return err
		} else if asJSON {
			return printJSON(v)
		}
		printFleet(v.Fleet)
		fmt.Printf("  %d devices reported\n", len(v.Devices))
		for _, d := range v.Devices {
			line := fmt.Sprintf("  %s  v%d (counter %d)  %d predictions, %d labels, %d dropped, %d segments to upload, reported %s",
				d.Device, d.Version, d.Counter, d.Predictions, d.Labels, d.Dropped, d.Backlog, d.ReportedAt.Format(time.DateTime))
			if d.LastError != "" {
				line += "\n    last error: " + d.LastError
			}
			fmt.Println(line)
		}
		return nil
	}
	return cmd
}

func printFleet(f registry.Fleet) {
	fmt.Printf("fleet %s of %s: members %s, groups %s\n", f.Name, f.Model, noneIfEmpty(f.Members), noneIfEmpty(f.Groups))
	if f.Stable != nil {
		fmt.Printf("  stable v%d (bundle counter %d)\n", f.Stable.Version, f.Stable.Counter)
	}
	if f.Candidate != nil {
		fmt.Printf("  rollout %s: v%d (counter %d) on %.0f%% of the devices since %s\n", f.Rollout, f.Candidate.Version, f.Candidate.Counter,
			100*f.Share, f.ShareSince.Format(time.DateTime))
	}
}

func noneIfEmpty(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ",")
}

func fleetRolloutCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "rollout", Short: "roll the model's production version out to the fleet, step by step, judged on the devices' uploads", Args: NoArgs}
	model, fleet := fleetFlags(cmd)
	version := cmd.Flags().Int("version", 0, "the version: the model's production version")
	reason := cmd.Flags().String("reason", "", "why (kept in the audit trail)")
	_ = cmd.Flags().SetAnnotation("version", requiredAnnotation, []string{"the version"})
	a := APIFlags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var out api.FleetRolloutStarted
		if err := a.call(func(c *api.Client) (err error) {
			out, err = c.StartFleetRollout(cmd.Context(), *model, *fleet, api.FleetRolloutRequest{Version: *version, Reason: *reason})
			return
		}); err != nil {
			return err
		}
		fmt.Printf("rollout %s (run %s) started: the spec's canary steps, each judged on what the devices upload\n", out.WorkflowID, out.RunID)
		return nil
	}
	return cmd
}

func fleetStopCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "stop", Short: "stop the fleet's rollout: every device goes back to the stable version", Args: NoArgs}
	model, fleet := fleetFlags(cmd)
	reason := cmd.Flags().String("reason", "", "why (kept in the audit trail)")
	a := APIFlags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := a.call(func(c *api.Client) error {
			_, err := c.StopFleetRollout(cmd.Context(), *model, *fleet, *reason)
			return err
		}); err != nil {
			return err
		}
		fmt.Printf("stopping the rollout of fleet %s: it rolls back to its stable version\n", *fleet)
		return nil
	}
	return cmd
}
