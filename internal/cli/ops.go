package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/driftline/driftline/api"
	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/internal/config"
	"github.com/driftline/driftline/objstore/s3store"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
	"github.com/driftline/driftline/starter"
	"github.com/driftline/driftline/traffic"
)

func runCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "run", Short: "start the continuous-training loop for a model and follow it", Args: NoArgs}
	fs := cmd.Flags()
	model := ModelFlag(cmd, "model whose registered spec the run uses (driftline models apply)")
	from := fs.String("from", "", "window start date YYYY-MM-DD (default: window_days ending yesterday)")
	to := fs.String("to", "", "window end date YYYY-MM-DD")
	force := fs.Bool("force", false, "retrain even when no drift is detected")
	a := APIFlags(fs)
	follow := fs.Bool("follow", true, "print steps as they happen and wait for the outcome (reads Temporal)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		var started api.RunStarted
		if err := a.call(func(c *api.Client) (err error) {
			started, err = c.StartRun(ctx, api.RunRequest{Model: *model, From: *from, To: *to, Force: *force})
			return
		}); err != nil {
			return err
		}
		fmt.Printf("started %s run %s as %s on spec v%d\n  %s\n", started.WorkflowID, started.RunID, started.RequestedBy, started.SpecVersion,
			starter.UILink(config.Namespace(), started.WorkflowID, started.RunID))
		if !*follow {
			return nil
		}
		c, err := config.TemporalClient()
		if err != nil {
			return err
		}
		defer c.Close()
		run := c.GetWorkflow(ctx, started.WorkflowID, started.RunID)
		res, err := starter.Follow(ctx, c, *model, run, os.Stdout, func(st pipeline.Status) {
			fmt.Printf("  waiting for approval of v%d: driftline approve --model %s --version %d --reason \"...\" (with your DRIFTLINE_TOKEN)\n",
				st.CandidateVersion, *model, st.CandidateVersion)
		})
		fmt.Printf("outcome: %s - %s\n", res.Outcome, res.Reason)
		return err
	}
	return cmd
}

func statusCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "status", Short: "show a run's status", Args: NoArgs}
	fs := cmd.Flags()
	model := ModelFlag(cmd, "model")
	runID := fs.String("run", "", "run id (default: the latest run)")
	out := addOutput(fs)
	a := APIFlags(fs)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		st, err := viaAPIOrTemporal(a, func(c *api.Client) (pipeline.Status, error) { return c.Status(ctx, *model, *runID) },
			func(c client.Client) (pipeline.Status, error) { return starter.Status(ctx, c, *model, *runID) })
		if err != nil {
			return err
		}
		if asJSON, err := out.JSON(); err != nil {
			return err
		} else if asJSON {
			return printJSON(st)
		}
		fmt.Printf("model %s  window %s..%s  stage %s  outcome %s\n", st.Model, st.From, st.To, st.Stage, orDash(string(st.Outcome)))
		if st.Reason != "" {
			fmt.Printf("  %s\n", st.Reason)
		}
		for _, s := range st.Steps {
			fmt.Printf("  %-18s %s\n", s.Name, s.Summary)
		}
		return nil
	}
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func decideCmd(approve bool) *cobra.Command {
	name := map[bool]string{true: "approve", false: "reject"}[approve]
	cmd := &cobra.Command{Use: name, Short: name + " the candidate a run is waiting on", Args: NoArgs}
	fs := cmd.Flags()
	model := ModelFlag(cmd, "model")
	version := fs.Int("version", 0, "candidate version the run waits on (default: ask the run)")
	runID := fs.String("run", "", "the run to decide on (default: the model's current run)")
	reason := fs.String("reason", "", "why (required)")
	a := APIFlags(fs)
	direct := fs.Bool("direct", false, "break glass: send the decision to Temporal directly, without the API's attestation; accepted only when the spec sets approval.break_glass, and recorded as break-glass under your Temporal client identity")
	viaSignal := fs.Bool("signal", false, "with --direct: send a signal instead of an update (fire and forget)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return decide(cmd.Context(), name, approve, decision{*model, *version, *runID, *reason, *direct, *viaSignal}, a)
	}
	return cmd
}

// decision is what approve and reject were told.
type decision struct {
	model          string
	version        int
	runID, reason  string
	direct, signal bool
}

func decide(ctx context.Context, name string, approve bool, d decision, a APIClient) error {
	c, err := config.TemporalClient()
	if err != nil {
		return err
	}
	defer c.Close()
	st, err := starter.Status(ctx, c, d.model, d.runID)
	if err != nil {
		return err
	}
	if d.runID != "" && st.Stage != pipeline.StageApproval {
		return fmt.Errorf("run %s of %s is not waiting for approval (stage %s, outcome %s)", d.runID, d.model, st.Stage, orDash(string(st.Outcome)))
	}
	if d.version == 0 {
		d.version = st.CandidateVersion
	}
	if !d.direct {
		out, err := PostDecision(ctx, *a.URL, *a.Token, d.model, approve, d.version, d.reason)
		if err != nil {
			return err
		}
		fmt.Println(out)
		return nil
	}
	ap := pipeline.Approval{Approver: "break-glass", Reason: d.reason, Version: d.version}
	if d.signal {
		if err := starter.SignalDecision(ctx, c, d.model, approve, ap); err != nil {
			return err
		}
		fmt.Printf("%s signal sent for %s v%d (invalid signals are ignored and audited by the run; check driftline status)\n", name, d.model, d.version)
		return nil
	}
	out, err := starter.Decide(ctx, c, d.model, approve, ap)
	if err != nil {
		return err
	}
	fmt.Println(out)
	return nil
}

func scheduleCmd() *cobra.Command {
	create := &cobra.Command{Use: "create", Short: "create or update the model's retraining schedule (through the API)", Args: NoArgs}
	cron := create.Flags().String("cron", "0 3 * * *", "cron expression (UTC; at most one firing an hour)")
	model := ModelFlag(create, "model (its registered spec is what the schedule runs)")
	a := APIFlags(create.Flags())
	create.RunE = func(cmd *cobra.Command, _ []string) error {
		var out api.ScheduleResponse
		if err := a.call(func(c *api.Client) (err error) {
			out, err = c.PutSchedule(cmd.Context(), *model, api.ScheduleRequest{Cron: *cron})
			return
		}); err != nil {
			return err
		}
		fmt.Printf("schedule %s fires %q on spec v%d (overlap: skip); see it in the UI under Schedules\n", out.ScheduleID, *cron, out.SpecVersion)
		return nil
	}
	del := &cobra.Command{Use: "delete", Short: "delete the model's retraining schedule (through the API)", Args: NoArgs}
	delModel := ModelFlag(del, "model")
	delAPI := APIFlags(del.Flags())
	del.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := delAPI.call(func(c *api.Client) error { _, err := c.DeleteSchedule(cmd.Context(), *delModel); return err }); err != nil {
			return err
		}
		fmt.Printf("deleted schedule %s\n", starter.ScheduleID(*delModel))
		return nil
	}
	return parent("schedule", "create or delete a model's retraining schedule", create, del)
}

// modelsCmd lists a model's versions; its subcommands show one version, set aliases and
// register or show specs.
func modelsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "models", Short: "list a model's versions (show: one version's lineage; alias; apply and spec: its spec)", Args: NoArgs}
	fs := cmd.Flags()
	s3 := config.S3Flags(fs)
	model := ModelFlag(cmd, "model")
	out := addOutput(fs)
	a := APIFlags(fs)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return modelsList(cmd.Context(), s3, *model, out, a) }
	list := &cobra.Command{Use: "list", Short: "list a model's versions (the same as models)", Args: NoArgs}
	list.Flags().AddFlagSet(fs)
	list.RunE = cmd.RunE
	cmd.AddCommand(list, modelsShowCmd(), modelsAliasCmd(), modelsApplyCmd(), modelsSpecCmd())
	return cmd
}

func modelsList(ctx context.Context, s3 *s3store.Config, model string, out *output, a APIClient) error {
	asJSON, err := out.JSON()
	if err != nil {
		return err
	}
	var m api.ModelResponse
	if *a.Token != "" { // through the API: view on the model
		if err := a.call(func(c *api.Client) (err error) { m, err = c.Model(ctx, model); return }); err != nil {
			return err
		}
	} else {
		b, err := config.OpenBucket(ctx, s3)
		if err != nil {
			return err
		}
		r := registry.New(b)
		m.Model = model
		if m.Deployment, _, err = r.Deployment(ctx, model); err != nil {
			return err
		}
		if m.Versions, err = r.Versions(ctx, model); err != nil {
			return err
		}
	}
	if asJSON {
		return printJSON(m)
	}
	d, vs := m.Deployment, m.Versions
	fmt.Printf("model %s: production v%d  canary v%d (%.0f%%)  previous v%d  aliases %s\n", model, d.Production, d.Canary, 100*d.CanaryShare, d.Previous, FormatMap(d.Aliases))
	for _, v := range vs {
		fmt.Printf("  v%-3d %s  holdout MAE %.3f  trainer %s  run %s  by %s\n", v.Version, v.CreatedAt.Format(time.RFC3339),
			v.Metrics["holdout_mae"], v.Lineage.Trainer, v.Lineage.RunID, v.Lineage.CreatedBy)
	}
	return nil
}

func auditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "list audit records (verify: check their hash chains)", Args: NoArgs}
	fs := cmd.Flags()
	s3 := config.S3Flags(fs)
	model := fs.String("model", "", "model (default: all)")
	since := fs.Duration("since", 24*time.Hour, "how far back")
	out := addOutput(fs)
	a := APIFlags(fs)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return auditList(cmd.Context(), s3, *model, *since, out, a)
	}
	list := &cobra.Command{Use: "list", Short: "list audit records (the same as audit)", Args: NoArgs}
	list.Flags().AddFlagSet(fs)
	list.RunE = cmd.RunE
	cmd.AddCommand(list, auditVerifyCmd())
	return cmd
}

func auditList(ctx context.Context, s3 *s3store.Config, model string, since time.Duration, out *output, a APIClient) error {
	asJSON, err := out.JSON()
	if err != nil {
		return err
	}
	var recs []audit.Record
	if *a.Token != "" { // through the API: view on the model (on every model without --model)
		if err := a.call(func(c *api.Client) (err error) { recs, err = c.Audit(ctx, model, since); return }); err != nil {
			return err
		}
	} else {
		b, err := config.OpenBucket(ctx, s3)
		if err != nil {
			return err
		}
		if recs, err = (audit.Log{Store: b}).List(ctx, model, time.Now().Add(-since)); err != nil {
			return err
		}
	}
	if asJSON {
		return printJSON(recs)
	}
	for _, r := range recs {
		fmt.Println(r)
	}
	return nil
}

func predictCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "predict", Short: "send one prediction request to the serving worker", Args: NoArgs}
	fs := cmd.Flags()
	url := fs.String("url", "http://127.0.0.1:8080", "serving worker URL")
	model := ModelFlag(cmd, "model")
	key := fs.String("key", "store-1/item-1", "routing key")
	features := fs.String("features", `{"price":9.5,"promo":1,"weekday":5,"temperature":6.5,"item_popularity":2.1}`, "features as JSON")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		req := traffic.Request{RoutingKey: *key, Explain: true}
		if err := json.Unmarshal([]byte(*features), &req.Features); err != nil {
			return fmt.Errorf("--features: %w", err)
		}
		return PredictAndPrint(ctx, *url, *model, req)
	}
	return cmd
}

func PredictAndPrint(ctx context.Context, url, model string, req traffic.Request) error {
	body, _ := json.Marshal(req)
	hr, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/models/"+model+":predict", strings.NewReader(string(body)))
	hr.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return err
	}
	pretty, _ := json.MarshalIndent(out, "  ", "  ")
	fmt.Printf("POST %s/v1/models/%s:predict %s\n  -> HTTP %d %s\n", url, model, body, resp.StatusCode, pretty)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("serving answered HTTP %d (the answer above names what was wrong)%s", resp.StatusCode, nextStep(resp.StatusCode))
	}
	return nil
}

// auditVerify checks the hash chains of the audit trail: every model's records of each day
// must run without a gap, each naming the digest of the one before.
func auditVerifyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "verify", Short: "check the hash chains of the audit trail", Args: NoArgs}
	fs := cmd.Flags()
	s3 := config.S3Flags(fs)
	since := fs.Duration("since", 7*24*time.Hour, "how far back")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		b, err := config.OpenBucket(ctx, s3)
		if err != nil {
			return err
		}
		reps, probs, err := audit.Log{Store: b}.Verify(ctx, time.Now().Add(-*since))
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CHAIN\tRECORDS\tLAST\tDIGEST")
		for _, r := range reps {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.16s\n", r.Chain, r.Records, r.LastSeq, r.LastHash)
		}
		_ = tw.Flush()
		for _, p := range probs {
			fmt.Println("BROKEN  " + p.String())
		}
		if len(probs) > 0 {
			return fmt.Errorf("the audit trail is broken in %d place(s): see above", len(probs))
		}
		fmt.Printf("%d chains intact\n", len(reps))
		return nil
	}
	return cmd
}

// readSpec reads and checks a spec file; errors name the file.
func readSpec(path string) ([]byte, spec.Spec, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, spec.Spec{}, err
	}
	sp, err := spec.Parse(raw)
	if err != nil {
		return nil, spec.Spec{}, fmt.Errorf("%s: %w", path, err)
	}
	return raw, sp, nil
}
