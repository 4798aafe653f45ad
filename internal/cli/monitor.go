package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/driftline/driftline/api"
	"github.com/driftline/driftline/internal/config"
	"github.com/driftline/driftline/internal/keys"
	"github.com/driftline/driftline/monitor"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/starter"
)

// monitorCmd starts and stops a model's monitor (through the control-plane API: authenticated,
// authorised, audited) and shows its status, window reports and alerts.
func monitorCmd() *cobra.Command {
	return parent("monitor", "start, stop or show a model's monitor; its window reports, reviews and alerts",
		monitorStartCmd(), monitorStopCmd(), monitorStatusCmd(), monitorReportCmd(), monitorAckCmd(), monitorAlertsCmd())
}

func monitorStartCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "start", Short: "start the model's monitor (through the API)", Args: NoArgs}
	fs := cmd.Flags()
	model := ModelFlag(cmd, "model (the monitor watches it with its registered spec)")
	from := fs.String("run-from", "", "window a run the monitor starts trains on: first day (default: the spec's window ending yesterday)")
	to := fs.String("run-to", "", "... and last day")
	a := APIFlags(fs)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		var out api.MonitorStarted
		if err := a.call(func(c *api.Client) (err error) {
			out, err = c.StartMonitor(ctx, *model, api.MonitorRequest{RunFrom: *from, RunTo: *to})
			return
		}); err != nil {
			return err
		}
		fmt.Printf("monitor %s started on spec v%d (its monitoring section sets the interval and what starts the loop)\n", out.WorkflowID, out.SpecVersion)
		return nil
	}
	return cmd
}

func monitorStopCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "stop", Short: "stop the model's monitor (through the API)", Args: NoArgs}
	fs := cmd.Flags()
	model := ModelFlag(cmd, "model")
	a := APIFlags(fs)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if err := a.call(func(c *api.Client) error { _, err := c.StopMonitor(ctx, *model); return err }); err != nil {
			return err
		}
		fmt.Printf("stopped monitor/%s\n", *model)
		return nil
	}
	return cmd
}

func monitorStatusCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "status", Short: "show the monitor's windows, the runs it started and its fairness reviews", Args: NoArgs}
	fs := cmd.Flags()
	model := ModelFlag(cmd, "model")
	out := addOutput(fs)
	a := APIFlags(fs)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		st, err := viaAPIOrTemporal(a, func(c *api.Client) (pipeline.MonitorStatus, error) { return c.MonitorStatus(ctx, *model) },
			func(c client.Client) (pipeline.MonitorStatus, error) { return starter.MonitorStatus(ctx, c, *model) })
		if err != nil {
			return err
		}
		if asJSON, err := out.JSON(); err != nil {
			return err
		} else if asJSON {
			return printJSON(st)
		}
		fmt.Printf("monitor/%s  windows %d  drifted in a row %d\n", st.Model, st.Windows, st.DriftedInARow)
		if l := st.Last; l != nil {
			fmt.Printf("  last window %s: v%d, %d requests, drift %v (score %.3f), %d labels, live MAE %.3f, %d problems\n  report %s\n",
				st.LastAt.Format("2006-01-02 15:04:05"), l.Version, l.Requests, l.Drifted, l.DriftScore, l.Labelled, l.LiveMAE, l.Problems, l.ReportURI)
		}
		for _, r := range st.Runs {
			fmt.Printf("  %s  started %-5v %s\n", r.At.Format("2006-01-02 15:04:05"), r.Started, r.Reason)
		}
		if r := st.Review; r != nil {
			state := "open"
			if r.Escalated {
				state = "ESCALATED " + r.EscalatedAt.Format("2006-01-02 15:04:05") + " to " + strings.Join(r.EscalateTo, ", ")
			}
			fmt.Printf("  fairness review %s (%s): v%d, disparate impact of %s %.3f [%.3f, %.3f] under %.2f\n    opened %s, escalates %s; reviewers %s\n    report %s\n    acknowledge: driftline monitor ack --model %s --review %s --decision accept|retrain|rollback --reason \"...\"\n",
				r.ID, state, r.Version, r.Attribute, r.DisparateImpact, r.Low, r.High, r.Floor, r.OpenedAt.Format("2006-01-02 15:04:05"),
				r.Deadline.Format("2006-01-02 15:04:05"), strings.Join(r.Reviewers, ", "), r.Report, st.Model, r.ID)
		}
		for _, r := range st.Reviews {
			fmt.Printf("  review %s: %s by %s at %s (%s): %s\n", r.ID, r.Decision, r.By, r.DecidedAt.Format("2006-01-02 15:04:05"), r.Reason, r.Outcome)
		}
		return nil
	}
	return cmd
}

func monitorAlertsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "alerts", Short: "list Driftline's alert rules and what fires now in Prometheus", Args: NoArgs}
	fs := cmd.Flags()
	prom := EnvFlag(fs, "prometheus", "DRIFTLINE_PROMETHEUS", "http://127.0.0.1:9090", "Prometheus base URL")
	out := addOutput(fs)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		rules, err := AlertRules(ctx, *prom)
		if err != nil {
			return err
		}
		if asJSON, err := out.JSON(); err != nil {
			return err
		} else if asJSON {
			return printJSON(rules)
		}
		PrintAlertRules(*prom, rules)
		return nil
	}
	return cmd
}

func monitorAckCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "ack", Short: "decide on an open fairness review: accept, retrain or rollback", Args: NoArgs}
	fs := cmd.Flags()
	model := ModelFlag(cmd, "model")
	review := fs.String("review", "", "the open review's id (driftline monitor status)")
	decision := fs.String("decision", "", "accept, retrain or rollback")
	reason := fs.String("reason", "", "why (recorded in the audit trail)")
	a := APIFlags(fs)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if *review == "" {
			return errors.New("monitor ack: --review is required (driftline monitor status shows the open review)")
		}
		var out api.ReviewDecision
		if err := a.call(func(c *api.Client) (err error) {
			out, err = c.Acknowledge(ctx, *model, *review, api.ReviewRequest{Decision: *decision, Reason: *reason})
			return
		}); err != nil {
			return err
		}
		fmt.Printf("%s (attestation %s)\n", out.Result, out.AttestationID)
		return nil
	}
	return cmd
}

func monitorReportCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "report", Short: "show one monitoring window's report", Args: NoArgs}
	fs := cmd.Flags()
	s3 := config.S3Flags(fs)
	model := ModelFlag(cmd, "model")
	window := fs.String("window", "", "the window's end as in its report name, e.g. 20261201T101500Z (default: the latest)")
	out := addOutput(fs)
	a := APIFlags(fs)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		var rep monitor.Report
		var where string
		if *a.Token != "" { // through the API: view on the model
			w := *window
			if w == "" {
				var st pipeline.MonitorStatus
				if err := a.call(func(c *api.Client) (err error) { st, err = c.MonitorStatus(ctx, *model); return }); err != nil {
					return err
				}
				if st.Last == nil {
					return fmt.Errorf("the monitor of %s has no window yet", *model)
				}
				w = strings.TrimSuffix(path.Base(st.Last.ReportURI), ".json")
			}
			where = *a.URL + "/v1/models/" + *model + "/reports/monitor/" + w + ".json"
			if err := a.call(func(c *api.Client) error { return reportInto(ctx, c, *model, "monitor", w+".json", &rep) }); err != nil {
				return err
			}
		} else {
			b, err := config.OpenBucket(ctx, s3)
			if err != nil {
				return err
			}
			var key string
			if rep, key, err = LoadMonitorReport(ctx, b, *model, *window); err != nil {
				return err
			}
			where = b.URI(key)
		}
		if asJSON, err := out.JSON(); err != nil {
			return err
		} else if asJSON {
			return printJSON(rep)
		}
		PrintMonitorReport(where, rep)
		return nil
	}
	return cmd
}

func LoadMonitorReport(ctx context.Context, b objstore.Bucket, model, window string) (monitor.Report, string, error) {
	var rep monitor.Report
	prefix := keys.MonitorWindows(model)
	key := prefix + window + ".json"
	if window == "" {
		objs, err := b.List(ctx, prefix)
		if err != nil {
			return rep, "", err
		}
		if len(objs) == 0 {
			return rep, "", fmt.Errorf("no monitoring report for %s under %s (is the monitor running? driftline monitor start)", model, b.URI(prefix))
		}
		key = objs[len(objs)-1].Key // names sort by time
	}
	raw, _, err := objstore.ReadAll(ctx, b, key)
	if err != nil {
		return rep, "", fmt.Errorf("%s: %w", b.URI(key), err)
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		return rep, "", fmt.Errorf("%s: %w", b.URI(key), err)
	}
	return rep, key, nil
}

func PrintMonitorReport(uri string, r monitor.Report) {
	fmt.Printf("%s v%d  window %s .. %s  (%s)\n", r.Model, r.Version, r.From.Format("2006-01-02 15:04:05"), r.To.Format("15:04:05"), uri)
	k := r.KPIs
	fmt.Printf("  requests %d  errors %d  fallbacks %d  latency p50 %.2f ms  p99 %.2f ms  over the %.0f ms SLO %.2f%%\n",
		k.Requests, k.Errors, k.Fallbacks, k.P50Ms, k.P99Ms, k.SLOMs, 100*k.OverSLO)
	if f := k.Features; f != nil {
		fmt.Printf("  feature store: %d answers read it, %d values fell back; oldest value per answer p50 %s, max %s\n", f.Requests, f.FellBack,
			time.Duration(f.P50AgeS*float64(time.Second)).Round(time.Second), time.Duration(f.MaxAgeS*float64(time.Second)).Round(time.Second))
	}
	if d := r.InputDrift; d != nil {
		fmt.Printf("  input drift %v (acted on: %v), score %.3f: %s\n", d.Drifted, r.Drifted, d.Score, d.Why)
		fmt.Printf("    %-18s %8s %8s %8s %s\n", "feature", "PSI", "KS", "p", "drifted")
		for _, f := range d.Features {
			fmt.Printf("    %-18s %8.3f %8.3f %8.3g %v\n", f.Name, f.PSI, f.KS, f.PValue, f.Drifted)
		}
	}
	if d := r.PredictionDrift; d != nil {
		fmt.Printf("  prediction drift %v, score %.3f\n", d.Drifted, d.Score)
	}
	if e := r.ExplanationDrift; e != nil {
		fmt.Printf("  explanation drift %v: nDCG %.3f (under %.2f drifts) on %d explained requests; top feature changed %v\n",
			e.Drifted, e.NDCG, e.Threshold, e.Rows, e.TopChanged)
	}
	l := r.Live
	fmt.Printf("  labels %d (other version %d, unknown %d)  live MAE %.3f  RMSE %.3f  breach %v  label delay p50 %.0f s p90 %.0f s\n",
		l.Labels, l.OtherVersion, l.Unknown, l.MAE, l.RMSE, r.MAEBreach, l.DelayP50s, l.DelayP90s)
	if d := l.Decision; d != nil && d.Labels == 0 {
		fmt.Printf("  decision %q: no labelled requests yet (target %.0f%%)\n", d.Name, 100*d.Target)
	} else if d != nil {
		fmt.Printf("  decision %q accuracy %.1f%% on %d labels (target %.0f%%%s)\n", d.Name, 100*d.Accuracy, d.Labels, 100*d.Target,
			map[bool]string{true: ", below", false: ""}[d.Below])
	}
	if f := r.Fairness; f != nil {
		fmt.Printf("  disparate impact of %s %.3f [%.3f, %.3f] (floor %.2f%s), error gap %.3f\n", f.Attribute, f.DisparateImpact, f.Low, f.High,
			f.MinImpact, map[bool]string{true: ", below", false: ""}[f.BelowMin], f.ErrorGap)
	}
	for _, n := range r.Notes {
		fmt.Printf("  note: %s\n", n)
	}
	for _, p := range r.Problems {
		fmt.Printf("  problem: %s\n", p)
	}
}

// alertRule is one alerting rule as Prometheus's /api/v1/rules reports it.
type alertRule struct {
	Name     string            `json:"name"`
	State    string            `json:"state"` // inactive, pending or firing
	Duration float64           `json:"duration"`
	Labels   map[string]string `json:"labels"`
	Alerts   []alert           `json:"alerts"`
}

// alert is one alert of a rule: printed snake_case, read in Prometheus's shape.
type alert struct {
	Labels   map[string]string `json:"labels"`
	State    string            `json:"state"`
	ActiveAt time.Time         `json:"active_at"`
	Value    string            `json:"value"`
}

// UnmarshalJSON reads an alert as Prometheus's /api/v1/rules writes it (activeAt).
func (a *alert) UnmarshalJSON(b []byte) error {
	var p struct {
		Labels   map[string]string `json:"labels"`
		State    string            `json:"state"`
		ActiveAt time.Time         `json:"activeAt"`
		Value    string            `json:"value"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*a = alert(p)
	return nil
}

// alertRules asks Prometheus for its alerting rules and their states.
func AlertRules(ctx context.Context, prom string) ([]alertRule, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(prom, "/")+"/api/v1/rules?type=alert", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("prometheus %s: %w (make up starts one; --prometheus)", prom, err)
	}
	defer resp.Body.Close()
	var out struct {
		Status string `json:"status"`
		Data   struct {
			Groups []struct {
				Rules []alertRule `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Status != "success" {
		return nil, fmt.Errorf("prometheus %s: unexpected answer to /api/v1/rules (HTTP %d, %v)", prom, resp.StatusCode, err)
	}
	var rules []alertRule
	for _, g := range out.Data.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules, nil
}

func PrintAlertRules(prom string, rules []alertRule) {
	inactive := 0
	for _, r := range rules {
		if r.State == "inactive" {
			inactive++
		}
	}
	fmt.Printf("alerting rules on %s: %d, %d inactive\n", prom, len(rules), inactive)
	for _, r := range rules {
		for _, a := range r.Alerts {
			fmt.Printf("  %-24s %-8s model %-8s since %s (for %s, severity %s) value %s\n", r.Name, a.State, a.Labels["model"],
				a.ActiveAt.Format("15:04:05"), time.Duration(r.Duration*float64(time.Second)), r.Labels["severity"], a.Value)
		}
	}
}
