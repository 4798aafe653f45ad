package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"time"

	"github.com/driftline/driftline/pipeline"
)

// Traces finds a run's trace (Jaeger in production and in the end-to-end test).
type Traces interface {
	RunTrace(ctx context.Context, runID string) (*Trace, error)
}

// Trace is one trace: its spans, with their parents, services and times.
type Trace struct {
	ID    string
	Spans []Span
	// Workflows are the workflow IDs its spans are tagged with (temporalWorkflowID).
	Workflows []string
}

// Span is one span of a trace.
type Span struct {
	ID, Parent, Name, Service string
	RunID                     string // temporalRunID, on workflow and activity spans
	Start                     time.Time
	Duration                  time.Duration
	Error                     bool
}

// Jaeger reads traces from Jaeger's query API (`/api/traces`): a run's trace is the one
// holding a span of Service tagged with the run's ID (the Temporal SDK's interceptor tags
// every workflow and activity span with temporalRunID).
type Jaeger struct {
	URL, Service string
	Client       *http.Client
}

// jaegerJSON is the query API's answer.
type jaegerJSON struct {
	Data []struct {
		TraceID string `json:"traceID"`
		Spans   []struct {
			SpanID        string `json:"spanID"`
			OperationName string `json:"operationName"`
			References    []struct {
				RefType string `json:"refType"`
				SpanID  string `json:"spanID"`
			} `json:"references"`
			StartTime int64  `json:"startTime"` // microseconds
			Duration  int64  `json:"duration"`  // microseconds
			ProcessID string `json:"processID"`
			Tags      []struct {
				Key   string `json:"key"`
				Value any    `json:"value"`
			} `json:"tags"`
		} `json:"spans"`
		Processes map[string]struct {
			ServiceName string `json:"serviceName"`
		} `json:"processes"`
	} `json:"data"`
	Errors []struct {
		Msg string `json:"msg"`
	} `json:"errors"`
}

// RunTrace implements Traces.
func (j Jaeger) RunTrace(ctx context.Context, runID string) (*Trace, error) {
	tags, _ := json.Marshal(map[string]string{"temporalRunID": runID})
	q := url.Values{"service": {j.Service}, "tags": {string(tags)}, "lookback": {"168h"}, "limit": {"5"}}
	resp, err := ask(ctx, j.Client, j.URL, "/api/traces?"+q.Encode(), "jaeger")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	traces, err := ParseJaeger(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if err != nil && resp.StatusCode != http.StatusNotFound {
		return nil, fmt.Errorf("jaeger %s: %w", j.URL, err)
	}
	if len(traces) == 0 {
		return nil, fmt.Errorf("%w: no trace of run %s in Jaeger (service %s; sampled out, expired, or tracing off)", errNotFound, runID, j.Service)
	}
	// The search may return the monitor's trace and the run's own: take the one whose
	// workflow span is the run's.
	tr := &traces[0]
	for i := range traces {
		for _, sp := range traces[i].Spans {
			if sp.Name == "RunWorkflow:ContinuousTraining" {
				tr = &traces[i]
			}
		}
	}
	return tr, nil
}

// ParseJaeger reads the traces of an answer of Jaeger's query API (`/api/traces`, and
// `/api/traces/{id}`); an answer that carries errors is one.
func ParseJaeger(r io.Reader) ([]Trace, error) {
	var out jaegerJSON
	if err := json.NewDecoder(r).Decode(&out); err != nil {
		return nil, err
	}
	if len(out.Errors) > 0 {
		return nil, errors.New(out.Errors[0].Msg)
	}
	var traces []Trace
	for _, d := range out.Data {
		tr := Trace{ID: d.TraceID}
		for _, sp := range d.Spans {
			s := Span{ID: sp.SpanID, Name: sp.OperationName, Service: d.Processes[sp.ProcessID].ServiceName,
				Start: time.UnixMicro(sp.StartTime), Duration: time.Duration(sp.Duration) * time.Microsecond}
			for _, r := range sp.References {
				if r.RefType == "CHILD_OF" {
					s.Parent = r.SpanID
				}
			}
			for _, t := range sp.Tags {
				switch v := fmt.Sprint(t.Value); t.Key {
				case "error":
					s.Error = s.Error || v == "true"
				case "temporalRunID":
					s.RunID = v
				case "temporalWorkflowID":
					if !slices.Contains(tr.Workflows, v) {
						tr.Workflows = append(tr.Workflows, v)
					}
				}
			}
			tr.Spans = append(tr.Spans, s)
		}
		traces = append(traces, tr)
	}
	return traces, nil
}

// Waterfall is a trace laid out for the page: one row per span, depth first, children by
// start time, each bar placed on the trace's time axis.
type Waterfall struct {
	TraceID string
	Total   time.Duration
	W, H    int
	Rows    []WaterfallRow
	Ticks   []Label
	// Spans is how many the trace has; Hidden counts the rows past the page's limit.
	Spans, Hidden int
}

// WaterfallRow is one span's row.
type WaterfallRow struct {
	Y, LabelX, BarX, BarW float64
	Name, Service, Took   string
	Class                 string
}

const maxWaterfallRows = 400

// Layout lays the trace out.
func (t *Trace) Layout() Waterfall {
	w := Waterfall{TraceID: t.ID, W: 1180, Spans: len(t.Spans)}
	if len(t.Spans) == 0 {
		return w
	}
	byID := map[string]int{}
	t0, t1 := t.Spans[0].Start, t.Spans[0].Start.Add(t.Spans[0].Duration)
	for i, s := range t.Spans {
		byID[s.ID] = i
		if s.Start.Before(t0) {
			t0 = s.Start
		}
		if e := s.Start.Add(s.Duration); e.After(t1) {
			t1 = e
		}
	}
	l := &layout{t: t, w: &w, t0: t0, children: map[string][]int{}, seen: map[int]bool{}}
	var roots []int
	for i, s := range t.Spans {
		if _, ok := byID[s.Parent]; ok && s.Parent != s.ID {
			l.children[s.Parent] = append(l.children[s.Parent], i)
		} else {
			roots = append(roots, i) // the root, or a span whose parent was not exported
		}
	}
	l.byStart(roots)
	w.Total = max(t1.Sub(t0).Round(time.Millisecond), time.Millisecond)
	l.barW = float64(w.W) - waterfallLabelW - 70
	for _, r := range roots {
		l.walk(r, 0)
	}
	w.H = int(waterfallTop + waterfallRowH*float64(len(w.Rows)) + 8)
	for i := 0; i <= 4; i++ {
		w.Ticks = append(w.Ticks, Label{X: waterfallLabelW + l.barW*float64(i)/4, Y: 14, Text: (w.Total * time.Duration(i) / 4).Round(time.Millisecond).String(), Anchor: "middle"})
	}
	return w
}

const waterfallLabelW, waterfallRowH, waterfallTop = 420.0, 18.0, 24.0

// layout is a waterfall being laid out: the spans' children, the rows so far and the spans
// already placed.
type layout struct {
	t        *Trace
	w        *Waterfall
	t0       time.Time
	barW     float64
	children map[string][]int
	seen     map[int]bool
}

// waterfallItem is what a span's row is followed by: a child with children, a lone leaf, or
// the leaves of one name (a step's S3 calls: a canary polls the log thousands of times), which
// are one row: how many, from the first start to the last end, their time in all.
type waterfallItem struct {
	start time.Time
	span  int   // a span with children, or a lone leaf
	group []int // leaves of one name
}

func (l *layout) byStart(ix []int) {
	sort.SliceStable(ix, func(a, b int) bool { return l.t.Spans[ix[a]].Start.Before(l.t.Spans[ix[b]].Start) })
}

func (l *layout) add(depth int, name, service string, start time.Time, dur time.Duration, took, class string) {
	w := l.w
	if len(w.Rows) == maxWaterfallRows {
		w.Hidden++
		return
	}
	x := waterfallLabelW + l.barW*float64(start.Sub(l.t0))/float64(w.Total)
	w.Rows = append(w.Rows, WaterfallRow{Y: waterfallTop + waterfallRowH*float64(len(w.Rows)), LabelX: 4 + 14*float64(min(depth, 20)),
		BarX: x, BarW: max(1, l.barW*float64(dur)/float64(w.Total)), Name: shortLabel(name, 44-min(depth, 20)),
		Service: service, Took: took, Class: class})
}

// walk places span i's row and, under it, its children's, depth first by start time.
func (l *layout) walk(i, depth int) {
	if l.seen[i] {
		return
	}
	l.seen[i] = true
	s := l.t.Spans[i]
	class := "s0"
	if s.Error {
		class = "bad"
	}
	l.add(depth, s.Name, s.Service, s.Start, s.Duration, s.Duration.Round(10*time.Microsecond).String(), class)
	for _, it := range l.items(s) {
		if it.span >= 0 {
			l.walk(it.span, depth+1)
		} else {
			l.addGroup(it.group, depth+1)
		}
	}
}

// items are span s's children as rows: by start time, a group after a span of the same start.
func (l *layout) items(s Span) []waterfallItem {
	spans := l.t.Spans
	leaves := map[string][]int{}
	var items []waterfallItem
	for _, k := range l.children[s.ID] {
		if len(l.children[spans[k].ID]) == 0 {
			leaves[spans[k].Name] = append(leaves[spans[k].Name], k)
		} else {
			items = append(items, waterfallItem{start: spans[k].Start, span: k})
		}
	}
	for _, g := range leaves {
		l.byStart(g)
		if len(g) == 1 {
			items = append(items, waterfallItem{start: spans[g[0]].Start, span: g[0]})
		} else {
			items = append(items, waterfallItem{start: spans[g[0]].Start, span: -1, group: g})
		}
	}
	sort.SliceStable(items, func(a, b int) bool {
		if !items[a].start.Equal(items[b].start) {
			return items[a].start.Before(items[b].start)
		}
		return len(items[a].group) < len(items[b].group)
	})
	return items
}

// addGroup places the one row of a group of leaves of one name.
func (l *layout) addGroup(group []int, depth int) {
	first := l.t.Spans[group[0]]
	end, sum, class := first.Start, time.Duration(0), "s1"
	for _, k := range group {
		l.seen[k] = true
		sp := l.t.Spans[k]
		if e := sp.Start.Add(sp.Duration); e.After(end) {
			end = e
		}
		sum += sp.Duration
		if sp.Error {
			class = "bad"
		}
	}
	l.add(depth, fmt.Sprintf("%s ×%d", first.Name, len(group)), first.Service, first.Start, end.Sub(first.Start),
		fmt.Sprintf("%d spans, %s in all", len(group), sum.Round(10*time.Microsecond)), class)
}

type tracePage struct {
	Model, RunID string
	Waterfall    Waterfall
	Services     []string
}

func (s *Server) tracePage(q *req) (string, view, error) {
	m, err := s.modelOf(q)
	if err != nil {
		return "", view{}, err
	}
	run := q.PathValue("run")
	if s.Traces == nil {
		return "", view{}, &httpError{http.StatusNotFound, "the console has no trace backend (driftline console --jaeger URL)"}
	}
	tr, err := s.Traces.RunTrace(q.Context(), run)
	if err != nil {
		return "", view{}, err
	}
	// The page's model is the one authorised: the trace must be of that model's run (its
	// loop's workflow), not another model's run named by its ID.
	if !slices.Contains(tr.Workflows, pipeline.WorkflowID(m)) {
		return "", view{}, fmt.Errorf("%w: trace %s is not of a run of model %s", errNotFound, tr.ID, m)
	}
	p := tracePage{Model: m, RunID: run, Waterfall: tr.Layout()}
	seen := map[string]bool{}
	for _, sp := range tr.Spans {
		if !seen[sp.Service] {
			seen[sp.Service] = true
			p.Services = append(p.Services, sp.Service)
		}
	}
	sort.Strings(p.Services)
	return "trace.html", view{Title: "trace of run " + run, Crumb: []link{{"models", "/"}, {m, "/models/" + url.PathEscape(m)},
		{"run " + run, "/models/" + url.PathEscape(m) + "/runs/" + url.PathEscape(run)}}, Data: p}, nil
}
