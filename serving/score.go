package serving

// The scoring core: whatever front end a request came through (v1 or v2 over REST, gRPC), it
// is resolved to the versions that may answer, enriched, routed and logged here.

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/predlog"
)

// Explanation is the exact per-feature contribution (SHAP values) of the answer.
type Explanation struct {
	BaseValue     float64            `json:"base_value"`
	Contributions map[string]float64 `json:"contributions"`
}

// ScoreRequest is one request to the scoring core, whatever front end it came through.
type ScoreRequest struct {
	Model, RequestID, RoutingKey string
	Rows                         []map[string]float64
	Explain                      bool
	// Attributes are logged with the prediction, not used by the model (the protected
	// attribute the canary checks) and fill enrichment URLs (the region of the weather).
	Attributes map[string]string
	Start      time.Time
	// Version pins the request to the production or the canary version (a /versions/{v}/
	// path): that version alone answers, with no canary split; 0 routes as usual.
	Version int
}

// ScoreResult is the scoring core's answer.
type ScoreResult struct {
	Version      int
	Route        pipeline.Route
	Predictions  []float64
	Explanations []*Explanation
	Fallback     string // why a fallback answered or a feature was filled in
	Features     string // where the feature store's values came from (predlog.FeatureProvenance JSON)
}

// ErrorKind is what went wrong with a request, for the front end to map to its status.
type ErrorKind int

// The kinds of scoring error.
const (
	ErrBadInput     ErrorKind = iota + 1 // the request is malformed (400, INVALID_ARGUMENT)
	ErrUnknownModel                      // the model is not served here (404, NOT_FOUND)
	ErrNotReady                          // no production version loaded yet (503, UNAVAILABLE)
	ErrTooLarge                          // over a size limit, named in the message (413, RESOURCE_EXHAUSTED)
)

// Default size limits of one request (Options.MaxRows, MaxValues, MaxExplainRows).
const (
	DefaultMaxRows        = 10000
	DefaultMaxValues      = 1 << 20
	DefaultMaxExplainRows = 1000
)

// ScoreError is a typed scoring error; its message names what was wrong.
type ScoreError struct {
	Kind ErrorKind
	Msg  string
}

func (e *ScoreError) Error() string { return e.Msg }

func scoreErr(kind ErrorKind, format string, args ...any) error {
	return &ScoreError{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// Score scores rows for a model: canary or shadow by the routing key, production otherwise,
// with production answering when the candidate fails. Every scored row is logged. Enrichment
// runs under ctx (the request's), so a client that goes away stops it.
func (s *Server) Score(ctx context.Context, req ScoreRequest) (ScoreResult, error) {
	t, err := s.resolve(req)
	if err != nil {
		return ScoreResult{}, err
	}
	en, err := s.enrich(ctx, req, t)
	if err != nil {
		return ScoreResult{}, err
	}
	return s.route(req, t, en, s.rowLog(ctx, req, en))
}

// resolve finds the versions that may answer (the request's pinned version alone, or the
// model's table) and checks the request's size against the limits.
func (s *Server) resolve(req ScoreRequest) (*table, error) {
	wt, ok := s.watchers[req.Model]
	if !ok {
		return nil, scoreErr(ErrUnknownModel, "unknown model %q", req.Model)
	}
	t := wt.current.Load()
	if t.production == nil {
		return nil, scoreErr(ErrNotReady, "model %q has no production version loaded yet", req.Model)
	}
	if req.Version != 0 {
		switch {
		case req.Version == t.production.version:
			t = &table{production: t.production} // production alone: no split, no pairing
		case t.canary != nil && req.Version == t.canary.version:
			t = &table{production: t.canary, pinned: true}
		default:
			return nil, scoreErr(ErrUnknownModel, "model %q version %d is not served here", req.Model, req.Version)
		}
	}
	switch {
	case len(req.Rows) > s.opts.MaxRows:
		return nil, scoreErr(ErrTooLarge, "%d rows: a request holds at most %d (serve --max-rows)", len(req.Rows), s.opts.MaxRows)
	case req.Explain && len(req.Rows) > s.opts.MaxExplainRows:
		return nil, scoreErr(ErrTooLarge, "%d rows to explain: a request explains at most %d (serve --max-explain-rows)", len(req.Rows), s.opts.MaxExplainRows)
	}
	return t, nil
}

// enrichment is what enrich filled in: why (a note for the answer's fallback) and where the
// feature store's values came from (predlog.FeatureProvenance JSON).
type enrichment struct{ note, provenance string }

// enrich fills the rows in place: the enrichment sources, then the feature store's service
// for the features either answering model uses.
func (s *Server) enrich(ctx context.Context, req ScoreRequest, t *table) (enrichment, error) {
	var notes []string
	for _, e := range s.opts.Enrich {
		note, err := e.Fill(ctx, req.Model, req.Rows, req.Attributes)
		if err != nil {
			return enrichment{}, scoreErr(ErrBadInput, "%v", err)
		}
		if note != "" {
			notes = append(notes, note)
		}
	}
	var en enrichment
	if f := s.opts.Features; f != nil {
		uses := func(name string) bool {
			return slices.Contains(t.production.model.Features, name) || (t.canary != nil && slices.Contains(t.canary.model.Features, name))
		}
		fctx, span := tracer.Start(ctx, "online store: feature service")
		note, prov, err := f.Fill(fctx, req.Model, uses, req.Rows, req.Attributes)
		if err != nil {
			span.RecordError(err)
		}
		span.End()
		if err != nil {
			return enrichment{}, scoreErr(ErrBadInput, "%v", err)
		}
		if note != "" {
			notes = append(notes, note)
		}
		if prov != nil {
			b, _ := json.Marshal(prov)
			en.provenance = string(b)
		}
	}
	en.note = strings.Join(notes, "; ")
	return en, nil
}

// rowLog writes a request's scored rows to the prediction log, one record per row.
type rowLog struct {
	s                 *Server
	req               ScoreRequest
	en                enrichment
	traceID, attrJSON string
}

func (s *Server) rowLog(ctx context.Context, req ScoreRequest, en enrichment) rowLog {
	lg := rowLog{s: s, req: req, en: en}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		lg.traceID = sc.TraceID().String()
	}
	if len(req.Attributes) > 0 {
		b, _ := json.Marshal(req.Attributes)
		lg.attrJSON = string(b)
	}
	return lg
}

// add logs the rows as version l answered them on route (preds nil: it failed with errMsg).
func (lg rowLog) add(l *loaded, route pipeline.Route, preds []float64, errMsg string) {
	req := lg.req
	if l.busy != nil {
		l.busy.Add(time.Since(req.Start).Seconds())
	}
	for i, x := range req.Rows {
		names, values := l.keys.typed(x)
		id := req.RequestID
		if len(req.Rows) > 1 {
			id = fmt.Sprintf("%s/%d", req.RequestID, i)
		}
		rec := predlog.Record{RequestID: id, TimeUnixMs: req.Start.UnixMilli(), Model: req.Model, Version: int32(l.version), Route: string(route),
			RoutingKey: req.RoutingKey, LatencyUs: time.Since(req.Start).Microseconds(), Error: errMsg, InputNames: names, InputValues: values,
			Attributes: lg.attrJSON, Fallback: lg.en.note, Features: lg.en.provenance, TraceID: lg.traceID}
		if preds != nil {
			rec.Prediction = preds[i]
		}
		lg.s.log.Add(rec)
	}
}

// route answers with the canary (or scores the shadow) when the routing key falls in its
// share, with production otherwise or when the candidate fails; a paired request is scored by
// the other version off the request path.
func (s *Server) route(req ScoreRequest, t *table, en enrichment, lg rowLog) (ScoreResult, error) {
	var fallback string
	pair := t.canary != nil && inPairs(req.RequestID, t.paired)
	paired := func(l *loaded) pairJob {
		return pairJob{model: req.Model, l: l, rows: req.Rows, id: req.RequestID, at: req.Start, key: req.RoutingKey, attrs: lg.attrJSON}
	}
	if t.canary != nil && InCanary(req.RoutingKey, t.share) {
		route := pipeline.RouteCanary
		if t.shadow {
			route = pipeline.RouteShadow
		}
		preds, expl, err := scoreAll(t.canary.model, req.Rows, req.Explain)
		switch {
		case err == nil && !t.shadow:
			lg.add(t.canary, route, preds, "")
			if pair { // production's answer to the same request, off the request path
				s.pair(paired(t.production))
			}
			return ScoreResult{Version: t.canary.version, Route: route, Predictions: preds, Explanations: expl, Fallback: en.note, Features: en.provenance}, nil
		case err == nil:
			lg.add(t.canary, route, preds, "")
			pair = false // shadow: both models answered this request on its path
		default:
			// The candidate failed: count it against the candidate, answer with production.
			lg.add(t.canary, route, nil, err.Error())
			s.metrics.CandidateErrors.WithLabelValues(req.Model, strconv.Itoa(t.canary.version), string(route)).Inc()
			if !t.shadow {
				fallback = string(route) + " v" + strconv.Itoa(t.canary.version) + " failed: " + err.Error()
			}
		}
	}
	route := pipeline.RouteProduction
	if t.pinned {
		route = pipeline.RoutePinned
	}
	preds, expl, err := scoreAll(t.production.model, req.Rows, req.Explain)
	if err != nil {
		return ScoreResult{Version: t.production.version, Route: route}, scoreErr(ErrBadInput, "%v", err)
	}
	if fallback == "" {
		lg.add(t.production, route, preds, "")
		if pair { // the candidate's answer to the same request, off the request path
			s.pair(paired(t.canary))
		}
	}
	return ScoreResult{Version: t.production.version, Route: route, Predictions: preds, Explanations: expl,
		Fallback: joinNotes(fallback, en.note), Features: en.provenance}, nil
}

// joinNotes joins two fallback notes with "; ", either may be empty (no allocation then).
func joinNotes(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

// inputKeys logs a row's features as the prediction log's typed columns: the answering
// model's features in its order (NaN: not sent), then any others the request sent, sorted.
type inputKeys struct{ order []string }

func newInputKeys(order []string) inputKeys { return inputKeys{order: order} }

// typed is a row's names and values; the names are the model's own slice unless the request
// sent features the model does not use (this runs on every request).
func (k inputKeys) typed(x map[string]float64) ([]string, []float64) {
	values := make([]float64, len(k.order), max(len(k.order), len(x)))
	n := 0
	for i, name := range k.order {
		v, ok := x[name]
		if !ok {
			v = math.NaN()
		} else {
			n++
		}
		values[i] = v
	}
	if n == len(x) {
		return k.order, values
	}
	var rest []string
	for name := range x {
		if !slices.Contains(k.order, name) {
			rest = append(rest, name)
		}
	}
	slices.Sort(rest)
	names := append(slices.Clip(k.order), rest...)
	for _, name := range rest {
		values = append(values, x[name])
	}
	return names, values
}

func scoreAll(m *model.Model, rows []map[string]float64, explain bool) ([]float64, []*Explanation, error) {
	preds := make([]float64, len(rows))
	var expl []*Explanation
	for i, r := range rows {
		p, e, err := score(m, r, explain)
		if err != nil {
			if len(rows) > 1 {
				return nil, nil, fmt.Errorf("instance %d: %w", i, err)
			}
			return nil, nil, err
		}
		preds[i] = p
		if explain {
			expl = append(expl, e)
		}
	}
	return preds, expl, nil
}

func score(m *model.Model, feats map[string]float64, explain bool) (float64, *Explanation, error) {
	x, err := m.Vector(feats)
	if err != nil {
		return 0, nil, err
	}
	pred := m.Predict(x)
	if !explain {
		return pred, nil, nil
	}
	base, contrib := m.Explain(x)
	e := &Explanation{BaseValue: base, Contributions: map[string]float64{}}
	for i, f := range m.Features {
		e.Contributions[f] = contrib[i]
	}
	return pred, e, nil
}
