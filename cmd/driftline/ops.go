package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/internal/config"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
	"github.com/driftline/driftline/starter"
	"github.com/driftline/driftline/traffic"
)

func cmdRun(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	specPath := fs.String("spec", "examples/demand.yaml", "model spec YAML")
	from := fs.String("from", "", "window start date YYYY-MM-DD (default: window_days ending yesterday)")
	to := fs.String("to", "", "window end date YYYY-MM-DD")
	force := fs.Bool("force", false, "retrain even when no drift is detected")
	op := operatorFlags(fs)
	s3 := config.S3Flags(fs)
	follow := fs.Bool("follow", true, "print steps as they happen and wait for the outcome")
	if err := parse(fs, args); err != nil {
		return err
	}
	as := op.id
	sp, err := spec.Load(*specPath)
	if err != nil {
		return err
	}
	b, err := config.OpenBucket(ctx, s3)
	if err != nil {
		return err
	}
	pii := sp.Contract.HasPII()
	if err := op.authorizeData(ctx, audit.Log{Store: b}, "start_run", sp.Model, &pii); err != nil {
		return err
	}
	c, err := config.TemporalClient()
	if err != nil {
		return err
	}
	defer c.Close()
	run, err := starter.StartRun(ctx, c, pipeline.RunInput{Spec: sp, From: *from, To: *to, Force: *force, RequestedBy: *as})
	if err != nil {
		return err
	}
	fmt.Printf("started %s run %s\n  %s\n", run.GetID(), run.GetRunID(), starter.UILink(namespace(), run.GetID(), run.GetRunID()))
	if !*follow {
		return nil
	}
	res, err := starter.Follow(ctx, c, sp.Model, run, os.Stdout, func(st pipeline.Status) {
		fmt.Printf("  waiting for approval of v%d: driftline approve --model %s --version %d --as <approver> --reason \"...\"\n",
			st.CandidateVersion, sp.Model, st.CandidateVersion)
	})
	fmt.Printf("outcome: %s - %s\n", res.Outcome, res.Reason)
	return err
}

func cmdStatus(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	model := fs.String("model", "demand", "model")
	runID := fs.String("run", "", "run id (default: the latest run)")
	asJSON := fs.Bool("json", false, "print the full status as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	c, err := config.TemporalClient()
	if err != nil {
		return err
	}
	defer c.Close()
	st, err := starter.Status(ctx, c, *model, *runID)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
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

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func cmdDecide(ctx context.Context, args []string, approve bool) error {
	name := map[bool]string{true: "approve", false: "reject"}[approve]
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	model := fs.String("model", "demand", "model")
	version := fs.Int("version", 0, "candidate version the run waits on (default: ask the run)")
	runID := fs.String("run", "", "the run to decide on (default: the model's current run)")
	reason := fs.String("reason", "", "why (required)")
	url := fs.String("url", env("DRIFTLINE_APPROVALS_URL", "http://127.0.0.1:8090"), "approvals endpoint (env DRIFTLINE_APPROVALS_URL)")
	token := fs.String("token", os.Getenv("DRIFTLINE_TOKEN"), "bearer token of the approver (env DRIFTLINE_TOKEN)")
	direct := fs.Bool("direct", false, "break glass: send the Update to Temporal directly as --as (needs Temporal access; RBAC still applies in the run)")
	as := fs.String("as", os.Getenv("USER"), "approver identity with --direct")
	viaSignal := fs.Bool("signal", false, "with --direct: send a signal instead of an update (fire and forget)")
	if err := parse(fs, args); err != nil {
		return err
	}
	c, err := config.TemporalClient()
	if err != nil {
		return err
	}
	defer c.Close()
	st, err := starter.Status(ctx, c, *model, *runID)
	if err != nil {
		return err
	}
	if *runID != "" && st.Stage != pipeline.StageApproval {
		return fmt.Errorf("run %s of %s is not waiting for approval (stage %s, outcome %s)", *runID, *model, st.Stage, orDash(string(st.Outcome)))
	}
	if *version == 0 {
		*version = st.CandidateVersion
	}
	if !*direct {
		if *token == "" {
			return errors.New("a bearer token is required (--token or DRIFTLINE_TOKEN); for development: driftline token --sub <you>")
		}
		out, err := postDecision(ctx, *url, *token, *model, approve, *version, *reason)
		if err != nil {
			return err
		}
		fmt.Println(out)
		return nil
	}
	a := pipeline.Approval{Approver: *as, Reason: *reason, Version: *version}
	if *viaSignal {
		if err := starter.SignalDecision(ctx, c, *model, approve, a); err != nil {
			return err
		}
		fmt.Printf("%s signal sent for %s v%d (invalid signals are ignored and audited by the run; check driftline status)\n", name, *model, *version)
		return nil
	}
	out, err := starter.Decide(ctx, c, *model, approve, a)
	if err != nil {
		return err
	}
	fmt.Println(out)
	return nil
}

func cmdSchedule(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "create" && args[0] != "delete") {
		return errors.New("usage: driftline schedule create --spec FILE --cron EXPR | driftline schedule delete --model M")
	}
	fs := flag.NewFlagSet("schedule "+args[0], flag.ContinueOnError)
	specPath := fs.String("spec", "examples/demand.yaml", "model spec YAML")
	cron := fs.String("cron", "0 3 * * *", "cron expression (UTC)")
	model := fs.String("model", "demand", "model (delete)")
	op := operatorFlags(fs)
	s3 := config.S3Flags(fs)
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	b, err := config.OpenBucket(ctx, s3)
	if err != nil {
		return err
	}
	target := *model
	if args[0] == "create" {
		sp, err := spec.Load(*specPath)
		if err != nil {
			return err
		}
		target = sp.Model
	}
	if err := op.authorize(ctx, audit.Log{Store: b}, "change_schedule", target); err != nil {
		return err
	}
	c, err := config.TemporalClient()
	if err != nil {
		return err
	}
	defer c.Close()
	if args[0] == "delete" {
		if err := starter.DeleteSchedule(ctx, c, *model); err != nil {
			return err
		}
		fmt.Printf("deleted schedule %s\n", starter.ScheduleID(*model))
		return nil
	}
	sp, err := spec.Load(*specPath)
	if err != nil {
		return err
	}
	id, err := starter.CreateSchedule(ctx, c, sp, *cron)
	if err != nil {
		return err
	}
	fmt.Printf("schedule %s fires %q (overlap: skip); see it in the UI under Schedules\n", id, *cron)
	return nil
}

func cmdModels(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "show" {
		return modelsShow(ctx, args[1:])
	}
	if len(args) > 0 && args[0] == "alias" {
		return modelsAlias(ctx, args[1:])
	}
	if len(args) > 0 && args[0] == "list" {
		args = args[1:]
	}
	fs := flag.NewFlagSet("models", flag.ContinueOnError)
	s3 := config.S3Flags(fs)
	model := fs.String("model", "demand", "model")
	if err := parse(fs, args); err != nil {
		return err
	}
	b, err := config.OpenBucket(ctx, s3)
	if err != nil {
		return err
	}
	r := registry.New(b)
	d, _, err := r.Deployment(ctx, *model)
	if err != nil {
		return err
	}
	fmt.Printf("model %s: production v%d  canary v%d (%.0f%%)  previous v%d  aliases %v\n", *model, d.Production, d.Canary, 100*d.CanaryShare, d.Previous, d.Aliases)
	vs, err := r.Versions(ctx, *model)
	if err != nil {
		return err
	}
	for _, v := range vs {
		fmt.Printf("  v%-3d %s  holdout MAE %.3f  trainer %s  run %s  by %s\n", v.Version, v.CreatedAt.Format(time.RFC3339),
			v.Metrics["holdout_mae"], v.Lineage.Trainer, v.Lineage.RunID, v.Lineage.CreatedBy)
	}
	return nil
}

func cmdAudit(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "list" {
		args = args[1:]
	}
	fs := flag.NewFlagSet("audit list", flag.ContinueOnError)
	s3 := config.S3Flags(fs)
	model := fs.String("model", "", "model (default: all)")
	since := fs.Duration("since", 24*time.Hour, "how far back")
	if err := parse(fs, args); err != nil {
		return err
	}
	b, err := config.OpenBucket(ctx, s3)
	if err != nil {
		return err
	}
	recs, err := audit.Log{Store: b}.List(ctx, *model, time.Now().Add(-*since))
	if err != nil {
		return err
	}
	for _, r := range recs {
		fmt.Println(r)
	}
	return nil
}

func cmdPredict(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("predict", flag.ContinueOnError)
	url := fs.String("url", "http://127.0.0.1:8080", "serving worker URL")
	model := fs.String("model", "demand", "model")
	key := fs.String("key", "store-1/item-1", "routing key")
	features := fs.String("features", `{"price":9.5,"promo":1,"weekday":5,"temperature":6.5,"item_popularity":2.1}`, "features as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	req := traffic.Request{RoutingKey: *key, Explain: true}
	if err := json.Unmarshal([]byte(*features), &req.Features); err != nil {
		return fmt.Errorf("--features: %w", err)
	}
	return predictAndPrint(ctx, *url, *model, req)
}

func predictAndPrint(ctx context.Context, url, model string, req traffic.Request) error {
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
		return fmt.Errorf("serving answered HTTP %d", resp.StatusCode)
	}
	return nil
}

func cmdTraffic(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("traffic", flag.ContinueOnError)
	url := fs.String("url", "http://127.0.0.1:8080", "serving worker URL")
	model := fs.String("model", "demand", "model")
	rps := fs.Int("rps", 50, "requests per second")
	dur := fs.Duration("for", 30*time.Second, "how long")
	day := fs.Int("day", 59, "which day of the demo dataset the rows come from")
	if err := parse(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *dur)
	defer cancel()
	var st traffic.Stats
	traffic.Run(ctx, *url, *model, dataset.DefaultRetail().RetailDay(*day), *rps, &st)
	sent, failed, fb, byV := st.Snapshot()
	fmt.Printf("sent %d, failed %d, canary fallbacks %d, answered by version %v\n", sent, failed, fb, byV)
	return nil
}
