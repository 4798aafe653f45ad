package devcli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"gopkg.in/yaml.v3"

	"github.com/driftline/driftline/activities"
	"github.com/driftline/driftline/api"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/internal/cli"
	"github.com/driftline/driftline/internal/config"
	"github.com/driftline/driftline/internal/keys"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/spec"
	"github.com/driftline/driftline/starter"
	"github.com/driftline/driftline/traffic"
)

// The demo's two windows: four weeks before the holiday season, and the last four weeks,
// all inside it (dataset.DefaultRetail: season and price change from 2026-10-01).
const (
	demoFrom1, demoTo1 = "2026-09-01", "2026-09-28"
	demoFrom2, demoTo2 = "2026-10-03", "2026-10-30"
	// streamFrom is the first day (2026-10-03) the demo streams through Kafka.
	streamFrom = 32
)

// demoOptions are the demo's flags.
type demoOptions struct {
	specPath, fsSpecPath, url, api, prom, keyFile string
	rps                                           int
	monInterval                                   time.Duration
}

func demoCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "demo", Short: "run the end-to-end demo (make demo)", Args: cli.NoArgs}
	fs := cmd.Flags()
	s3 := config.S3Flags(fs)
	var o demoOptions
	fs.StringVar(&o.specPath, "spec", "examples/demand.yaml", "model spec")
	fs.StringVar(&o.fsSpecPath, "features-spec", "examples/demand_features.yaml", "model spec naming a feature service (phase 5)")
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080", "serving worker URL")
	fs.IntVar(&o.rps, "rps", 150, "live traffic during the canary (a p99 needs 299 candidate requests per step)")
	config.StringEnv(fs, &o.api, "api", "DRIFTLINE_API", "http://127.0.0.1:8090", "control-plane API")
	config.StringEnv(fs, &o.prom, "prometheus", "DRIFTLINE_PROMETHEUS", "http://127.0.0.1:9090", "Prometheus with Driftline's rules (make up starts one)")
	fs.DurationVar(&o.monInterval, "monitor-interval", 15*time.Second, "the monitor's window in the demo (the spec's is for production)")
	config.StringEnv(fs, &o.keyFile, "dev-key-file", "DRIFTLINE_DEV_KEY_FILE", ".data/api-dev.key", "HS256 secret of `driftline api --dev` (the demo mints alice's token with it)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		b, c, err := config.Connect(ctx, s3)
		if err != nil {
			return err
		}
		defer c.Close()
		d := &demo{ctx: ctx, b: b, c: c, o: o, cfg: dataset.DefaultRetail()}
		return d.run()
	}
	return cmd
}

// demo is one run of the demo: its stack, the people's API clients, and what each phase
// leaves to the next.
type demo struct {
	ctx        context.Context
	b          objstore.Bucket
	c          client.Client
	o          demoOptions
	cfg        dataset.RetailConfig
	sp         spec.Spec
	raw        []byte // the spec file
	devSecret  []byte
	starts     cli.APIClient // dave, a data scientist: runs and monitoring
	gov        cli.APIClient // grace, the governance officer: specs
	rows       []dataset.RetailRow
	res1, res2 demoResult
	links      []string
}

func (d *demo) run() error {
	var err error
	if d.sp, err = spec.Load(d.o.specPath); err != nil {
		return err
	}
	if d.raw, err = os.ReadFile(d.o.specPath); err != nil {
		return err
	}
	for _, phase := range []func() error{d.dataset, d.firstRun, d.stream, d.monitorRun, d.predict, d.featureStore} {
		if err := phase(); err != nil {
			return err
		}
	}
	fmt.Printf("\nruns in the Temporal UI:\n  1 %s  %s\n  2 %s  %s\n  3 %s\n", d.res1.Outcome, d.links[0], d.res2.Outcome, d.links[1], d.links[2])
	fmt.Println("metrics: http://127.0.0.1:9464/metrics (pipeline), " + d.o.url + "/metrics (serving)")
	if c := os.Getenv("DRIFTLINE_CONSOLE_URL"); c != "" {
		fmt.Printf("console: %s/models/%s (sign in with the token of `bin/driftline token --sub alice`)\n", strings.TrimSuffix(c, "/"), d.sp.Model)
	}
	return nil
}

// dataset writes the demo's first 32 days as files (the holiday weeks arrive as a stream in
// phase 3), resets the model, and mints the people's tokens.
func (d *demo) dataset() error {
	fmt.Println("== 1. demo dataset")
	batch := d.cfg
	batch.Days = streamFrom
	if err := datagen(d.ctx, d.b, d.sp.Dataset.Name, batch); err != nil {
		return err
	}
	if err := resetDemoModel(d.ctx, d.c, d.b, d.sp.Model); err != nil {
		return err
	}
	secret, err := os.ReadFile(d.o.keyFile)
	if err != nil {
		return fmt.Errorf("the demo mints tokens with %s: %w", d.o.keyFile, err)
	}
	d.devSecret = []byte(strings.TrimSpace(string(secret)))
	dave, err := api.MintDev(d.devSecret, "dave", nil, time.Hour)
	if err != nil {
		return err
	}
	grace, err := api.MintDev(d.devSecret, "grace", nil, time.Hour)
	if err != nil {
		return err
	}
	d.starts = cli.APIClient{URL: &d.o.api, Token: &dave}
	d.gov = cli.APIClient{URL: &d.o.api, Token: &grace}
	return nil
}

// approver approves a run's candidate of model as sub through the API (who: how the demo
// names them); a demo never waits for the approval timeout, so a failure ends the run.
func (d *demo) approver(model, sub, who string) func(st pipeline.Status) {
	return func(st pipeline.Status) {
		fmt.Printf("  policy requires approval of v%d (approvers: %s): %s approves through the API %s with a bearer token (the API attests the decision; the run verifies it)\n",
			st.CandidateVersion, strings.Join(st.Approvers, ", "), who, d.o.api)
		tok, err := api.MintDev(d.devSecret, sub, nil, 10*time.Minute)
		for attempt := 0; err == nil && attempt < 10; attempt++ {
			var out string
			out, err = cli.PostDecision(d.ctx, d.o.api, tok, model, true, st.CandidateVersion, "demo: evidence reviewed")
			if err == nil {
				fmt.Printf("  %s\n", out)
				return
			}
			time.Sleep(500 * time.Millisecond)
		}
		fmt.Printf("  approval failed: %v; ending the run\n", err)
		_ = d.c.TerminateWorkflow(d.ctx, pipeline.WorkflowID(model), "", "demo: approval failed: "+err.Error())
	}
}

// firstRun registers the spec (grace) and runs the loop on the weeks before the holiday
// season (dave): v1 is trained and promoted.
func (d *demo) firstRun() error {
	fmt.Printf("\n== 2. first run: %s..%s (before the holiday season): train and promote v1\n", demoFrom1, demoTo1)
	if err := demoApplySpec(d.ctx, d.gov, "grace (governance)", d.raw, "demo: the demand forecast's spec"); err != nil {
		return err
	}
	res, link, err := demoRun(d.ctx, d.c, d.starts, api.RunRequest{Model: d.sp.Model, From: demoFrom1, To: demoTo1}, d.sp.Model, d.approver(d.sp.Model, "alice", "alice"))
	if err != nil {
		return err
	}
	d.res1, d.links = res, append(d.links, link)
	if err := waitServing(d.ctx, d.o.url, d.sp.Model, res.Version); err != nil {
		return err
	}
	fmt.Printf("  serving answers with v%d\n", res.Version)
	return nil
}

func (d *demo) stream() error {
	fmt.Printf("\n== 3. the holiday weeks arrive as a stream: Kafka -> the ingest worker -> the dataset\n")
	return demoStream(d.ctx, d.b, d.o.specPath, d.cfg, streamFrom, d.cfg.Days-streamFrom)
}

// monitorRun sends client traffic, starts the monitor on short windows, and follows the run
// the monitor starts when the holiday season drifts the data.
func (d *demo) monitorRun() error {
	ctx, sp := d.ctx, d.sp
	fmt.Printf("\n== 4. the monitor watches the live model; the holiday season arrives (prices up, colder): it starts the loop\n")
	d.rows = d.cfg.Requests(7) // a week of store-item rows
	tctx, stopTraffic := context.WithCancel(ctx)
	defer stopTraffic()
	var st traffic.Stats
	go traffic.Run(tctx, d.o.url, sp.Model, d.rows, d.o.rps, &st)
	fmt.Printf("  client traffic: %d requests/s to %s (labels follow the answers)\n", d.o.rps, d.o.url)
	monSpec, err := withMonitorInterval(d.raw, d.o.monInterval)
	if err != nil {
		return err
	}
	// Monitoring is the data scientist's to tune: dave applies it (no governed field changes).
	if err := demoApplySpec(ctx, d.starts, "dave", monSpec, fmt.Sprintf("demo: %s monitoring windows", d.o.monInterval)); err != nil {
		return err
	}
	if _, err := apiOf(d.starts).StartMonitor(ctx, sp.Model, api.MonitorRequest{RunFrom: demoFrom2, RunTo: demoTo2}); err != nil {
		return err
	}
	fmt.Printf("  monitor %s started by dave through the API: a window every %s (the spec says %s; the demo is short)\n",
		pipeline.MonitorWorkflowID(sp.Model), d.o.monInterval, sp.Monitoring.Interval.Duration)
	res, link, err := demoFollowMonitorRun(ctx, d.c, sp.Model, d.res1.RunID, d.alertState, d.approver(d.sp.Model, "alice", "alice"))
	stopTraffic()
	d.showMonitor()
	if _, serr := apiOf(d.starts).StopMonitor(ctx, sp.Model); serr != nil {
		fmt.Printf("  stopping the monitor: %v\n", serr)
	}
	if err != nil {
		return err
	}
	d.res2, d.links = res, append(d.links, link)
	sent, failed, fb, byV := st.Snapshot()
	fmt.Printf("  traffic: %d requests, %d failed, %d canary fallbacks, answered by version %s\n", sent, failed, fb, cli.FormatMap(byV))
	if data, _, err := objstore.ReadAll(ctx, d.b, keys.Report(sp.Model, res.RunID, "drift.json")); err == nil {
		var rep activities.DriftReport
		if json.Unmarshal(data, &rep) == nil {
			fmt.Printf("\n  drift report of run 2 against v%d (driftline drift show):\n", rep.ReferenceVersion)
			cli.PrintReport(os.Stdout, rep.Report)
		}
	}
	return nil
}

// alertState is what Prometheus (make up's, with deploy/prometheus/rules.yml) makes of the
// monitor's metrics when the monitor starts the run: the demo's windows are 15 s and the
// rules' for: durations 10-15 minutes, so an alert that holds is pending here.
func (d *demo) alertState() {
	if rules, err := cli.AlertRules(d.ctx, d.o.prom); err == nil {
		fmt.Printf("  the alert state now (driftline monitor alerts):\n")
		cli.PrintAlertRules(d.o.prom, rules)
	} else {
		fmt.Printf("  the alert state: %v\n", err)
	}
}

// showMonitor prints why the monitor started runs, and its latest window.
func (d *demo) showMonitor() {
	mst, err := starter.MonitorStatus(d.ctx, d.c, d.sp.Model)
	if err != nil {
		return
	}
	for _, r := range mst.Runs {
		fmt.Printf("  the monitor: %s\n", r.Reason)
	}
	if rep, key, err := cli.LoadMonitorReport(d.ctx, d.b, d.sp.Model, ""); err == nil {
		fmt.Printf("\n  the monitor's latest window (driftline monitor report):\n")
		cli.PrintMonitorReport(d.b.URI(key), rep)
	}
}

// predict asks serving for one explained prediction, the temperature left out: serving fills
// it in from the weather source (through a timeout and a circuit breaker).
func (d *demo) predict() error {
	fmt.Println("\n== 5. a prediction from the serving API")
	want := d.res1.Version
	if d.res2.Outcome == pipeline.OutcomePromoted {
		want = d.res2.Version
	}
	if err := waitServing(d.ctx, d.o.url, d.sp.Model, want); err != nil {
		return err
	}
	req := traffic.FromRetail(d.rows[0])
	req.Explain = true
	delete(req.Features, "temperature")
	return cli.PredictAndPrint(d.ctx, d.o.url, d.sp.Model, req)
}

func (d *demo) featureStore() error {
	fmt.Println("\n== 6. the feature store: a model trained on point-in-time features, served from the online store")
	res, link, err := d.featureStoreModel(d.o.fsSpecPath, d.rows[0])
	if err != nil {
		return err
	}
	d.links = append(d.links, fmt.Sprintf("%s  %s", res.Outcome, link))
	return nil
}

type demoResult struct {
	pipeline.RunResult
	RunID string
}

// apiOf is the API client of a demo identity's flags (the demo mints every token).
func apiOf(a cli.APIClient) *api.Client { return &api.Client{BaseURL: *a.URL, Token: *a.Token} }

// demoRun starts a run through the control-plane API (as dave) and follows it in Temporal.
func demoRun(ctx context.Context, c client.Client, a cli.APIClient, in api.RunRequest, model string, onApproval func(pipeline.Status)) (demoResult, string, error) {
	var started api.RunStarted
	var err error
	for attempt := 0; attempt < 50; attempt++ { // the API may still be starting
		if started, err = apiOf(a).StartRun(ctx, in); err == nil || !strings.Contains(err.Error(), "connection refused") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return demoResult{}, "", err
	}
	run := c.GetWorkflow(ctx, started.WorkflowID, started.RunID)
	link := starter.UILink(config.Namespace(), started.WorkflowID, started.RunID)
	fmt.Printf("  run %s started by dave through the API  %s\n", started.WorkflowID, link)
	res, err := starter.Follow(ctx, c, model, run, os.Stdout, onApproval)
	fmt.Printf("  outcome: %s - %s\n", res.Outcome, res.Reason)
	return demoResult{RunResult: res, RunID: started.RunID}, link, err
}

// resetDemoModel gives the demo a clean model: it ends a leftover open run and monitor and
// removes the demo model's registry, reports, prediction log and feedback, so `make demo` can run again and again.
// Audit records stay: they are append-only.
func resetDemoModel(ctx context.Context, c client.Client, b objstore.Bucket, model string) error {
	desc, err := c.DescribeWorkflowExecution(ctx, pipeline.WorkflowID(model), "")
	if err == nil && desc.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		if err := c.TerminateWorkflow(ctx, pipeline.WorkflowID(model), "", "demo restarted"); err != nil {
			return err
		}
	}
	n := 0
	if desc, err := c.DescribeWorkflowExecution(ctx, pipeline.MonitorWorkflowID(model), ""); err == nil &&
		desc.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		if err := c.TerminateWorkflow(ctx, pipeline.MonitorWorkflowID(model), "", "demo restarted"); err != nil {
			return err
		}
	}
	for _, prefix := range []string{keys.Model(model), keys.ModelReports(model), keys.Predictions(model), keys.Feedback(model)} {
		objs, err := b.List(ctx, prefix)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if err := b.Delete(ctx, o.Key); err != nil {
				return err
			}
			n++
		}
	}
	if n > 0 {
		fmt.Printf("  reset the demo model %q (%d objects of an earlier demo removed)\n", model, n)
	}
	return nil
}

// waitServing waits until the serving worker answers with the wanted production version.
func waitServing(ctx context.Context, url, model string, version int) error {
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get(url + "/v1/models/" + model)
		if err == nil {
			var d struct {
				Production int    `json:"production"`
				Error      string `json:"error"`
			}
			err = json.NewDecoder(resp.Body).Decode(&d)
			resp.Body.Close()
			last = fmt.Sprintf("HTTP %d production v%d %s %v", resp.StatusCode, d.Production, d.Error, err)
			if resp.StatusCode == http.StatusOK && d.Production == version {
				return nil
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
	return fmt.Errorf("serving at %s did not load %s v%d within 60s (last answer: %s)", url, model, version, last)
}

// demoFollowMonitorRun waits for the run the monitor starts (a ct/<model> run other than
// the first) and follows it.
func demoFollowMonitorRun(ctx context.Context, c client.Client, model, firstRunID string, onStart func(), onApproval func(pipeline.Status)) (demoResult, string, error) {
	deadline := time.Now().Add(5 * time.Minute)
	shown := 0
	for time.Now().Before(deadline) {
		desc, err := c.DescribeWorkflowExecution(ctx, pipeline.WorkflowID(model), "")
		if err == nil {
			info := desc.GetWorkflowExecutionInfo()
			if id := info.GetExecution().GetRunId(); id != firstRunID {
				link := starter.UILink(config.Namespace(), pipeline.WorkflowID(model), id)
				fmt.Printf("  run %s started by the monitor  %s\n", pipeline.WorkflowID(model), link)
				onStart()
				res, err := starter.Follow(ctx, c, model, c.GetWorkflow(ctx, pipeline.WorkflowID(model), id), os.Stdout, onApproval)
				fmt.Printf("  outcome: %s - %s\n", res.Outcome, res.Reason)
				return demoResult{RunResult: res, RunID: id}, link, err
			}
		}
		if mst, err := starter.MonitorStatus(ctx, c, model); err == nil && mst.Last != nil && mst.Windows != shown {
			shown = mst.Windows
			fmt.Printf("  monitor window %d: %d requests, input drift %v (score %.3f), %d in a row\n", mst.Windows, mst.Last.Requests,
				mst.Last.Drifted, mst.Last.DriftScore, mst.DriftedInARow)
		}
		select {
		case <-ctx.Done():
			return demoResult{}, "", ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
	return demoResult{}, "", fmt.Errorf("the monitor did not start a run of %s within 5 minutes (driftline monitor status --model %s)", model, model)
}

// withMonitorInterval returns the spec YAML with monitoring.interval set (and settle under it).
func withMonitorInterval(raw []byte, interval time.Duration) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("spec: not a YAML mapping (%v)", err)
	}
	root := doc.Content[0]
	var mon *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "monitoring" {
			mon = root.Content[i+1]
		}
	}
	if mon == nil {
		mon = &yaml.Node{Kind: yaml.MappingNode}
		root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "monitoring"}, mon)
	}
	set := func(k, v string) {
		for i := 0; i+1 < len(mon.Content); i += 2 {
			if mon.Content[i].Value == k {
				mon.Content[i+1].Value = v
				return
			}
		}
		mon.Content = append(mon.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, &yaml.Node{Kind: yaml.ScalarNode, Value: v})
	}
	set("interval", interval.String())
	set("settle", (interval / 3).String())
	return yaml.Marshal(&doc)
}

// demoApplySpec registers a spec through the API (driftline models apply) as who.
func demoApplySpec(ctx context.Context, a cli.APIClient, who string, raw []byte, reason string) error {
	sp, err := spec.Parse(raw)
	if err != nil {
		return err
	}
	out, err := apiOf(a).ApplySpec(ctx, sp.Model, api.SpecRequest{Spec: string(raw), Reason: reason})
	if err != nil {
		return err
	}
	if !out.Changed {
		fmt.Printf("  the spec of %s is already v%d\n", sp.Model, out.Version)
		return nil
	}
	fmt.Printf("  %s applies the spec of %s through the API (driftline models apply): v%d, %d field(s) changed, %d governed\n",
		who, sp.Model, out.Version, len(out.Changes), len(out.Governance))
	return nil
}
