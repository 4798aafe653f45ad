package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/evaluate"
	"github.com/driftline/driftline/internal/keys"
	"github.com/driftline/driftline/monitor"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
)

// What the console reads, all of it written by the loop and the monitor: the registry
// (models/<m>/...), each run's reports (reports/<m>/<run>/...) and the monitor's windows
// (reports/<m>/monitor/<until>.json). It never writes.

// models lists the models the registry holds (models/<m>/...).
func (s *Server) models(ctx context.Context) ([]string, error) {
	objs, err := s.Store.List(ctx, keys.Models)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, o := range objs {
		m, _, ok := strings.Cut(strings.TrimPrefix(o.Key, keys.Models), "/")
		if ok && m != "" && (len(out) == 0 || out[len(out)-1] != m) {
			out = append(out, m)
		}
	}
	return out, nil
}

// RunSummary is one finished run in a model's list.
type RunSummary struct {
	RunID   string
	Outcome pipeline.Outcome
	Reason  string
	Version int
	Window  string
	Started string
}

// finished is reports/<m>/<run>/outcome.json: the run's last status and its cost.
type finished struct {
	pipeline.OutcomeInput
	Status pipeline.Status `json:"Status"`
	Cost   struct {
		CPUSeconds float64 `json:"cpu_seconds"`
	} `json:"cost"`
}

func (s *Server) readJSON(ctx context.Context, key string, v any) error {
	data, _, err := objstore.ReadAll(ctx, s.Store, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", s.Store.URI(key), err)
	}
	return nil
}

// runs lists a model's finished runs, newest first.
func (s *Server) runs(ctx context.Context, model string) ([]RunSummary, error) {
	prefix := keys.ModelReports(model)
	objs, err := s.Store.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var out []RunSummary
	for _, o := range objs {
		run, ok := strings.CutSuffix(strings.TrimPrefix(o.Key, prefix), "/outcome.json")
		if !ok || strings.Contains(run, "/") {
			continue
		}
		var f finished
		if err := s.readJSON(ctx, o.Key, &f); err != nil {
			return nil, err
		}
		rs := RunSummary{RunID: run, Outcome: f.Outcome, Reason: f.Reason, Version: f.Version, Window: f.Status.From + " .. " + f.Status.To}
		if len(f.Status.Steps) > 0 {
			rs.Started = f.Status.Steps[0].Started.UTC().Format("2006-01-02 15:04:05")
		}
		out = append(out, rs)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Started > out[j].Started })
	return out, nil
}

// RunDetail is everything a run page shows.
type RunDetail struct {
	RunID      string
	Status     pipeline.Status
	Finished   bool
	CPUSeconds float64
	Validation *dataset.ValidationReport
	Drift      *drift.Report
	Evaluation *evaluate.Report
	// Missing lists the reports the run did not write (it stopped before them) or that
	// could not be read, with why.
	Missing []string
}

// run loads a run: its outcome when it finished, else its live status through Temporal.
func (s *Server) run(ctx context.Context, model, runID string) (*RunDetail, error) {
	d := &RunDetail{RunID: runID}
	key := func(name string) string { return keys.Report(model, runID, name) }
	var f finished
	switch err := s.readJSON(ctx, key("outcome.json"), &f); {
	case err == nil:
		d.Status, d.Finished, d.CPUSeconds = f.Status, true, f.Cost.CPUSeconds
	case errors.Is(err, objstore.ErrNotFound) && s.Live != nil:
		st, err := s.Live.Status(ctx, model, runID)
		if err != nil {
			return nil, fmt.Errorf("run %s of %s: no outcome.json yet, and Temporal: %w", runID, model, err)
		}
		d.Status = st
	case errors.Is(err, objstore.ErrNotFound):
		return nil, errNotFound
	default:
		return nil, err
	}
	load := func(name string, v any) bool {
		err := s.readJSON(ctx, key(name), v)
		if err != nil {
			why := "not written"
			if !errors.Is(err, objstore.ErrNotFound) {
				why = err.Error()
			}
			d.Missing = append(d.Missing, name+": "+why)
		}
		return err == nil
	}
	var v dataset.ValidationReport
	if load("validation.json", &v) {
		d.Validation = &v
	}
	var dr drift.Report
	if load("drift.json", &dr) {
		d.Drift = &dr
	}
	var ev evaluate.Report
	if load("evaluation.json", &ev) {
		d.Evaluation = &ev
	}
	return d, nil
}

var errNotFound = errors.New("not found")

// windows loads a model's latest monitoring windows, oldest first.
func (s *Server) windows(ctx context.Context, model string, limit int) ([]monitor.Report, error) {
	prefix := keys.MonitorWindows(model)
	objs, err := s.Store.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, o := range objs {
		if name := strings.TrimPrefix(o.Key, prefix); !strings.Contains(name, "/") && strings.HasSuffix(name, ".json") {
			keys = append(keys, o.Key) // names sort by time
		}
	}
	if len(keys) > limit {
		keys = keys[len(keys)-limit:]
	}
	out := make([]monitor.Report, len(keys))
	for i, k := range keys {
		if err := s.readJSON(ctx, k, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}
