package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/features"
	"github.com/driftline/driftline/internal/keys"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
)

// Reads go through the API too, with view on the model they read (the CLI uses these when it
// has a token): a caller reads only the models its roles cover.

// auditList answers the audit records of a model (view on it) or of every model (view on
// "*") since a duration ago (?since=24h, at most 31 days).
func (s *Server) auditList(w http.ResponseWriter, r *http.Request) {
	model := r.URL.Query().Get("model")
	scope := model
	if scope == "" {
		scope = "*"
	}
	c, ok := s.begin(w, r, ActView, scope)
	if !ok {
		return
	}
	since := 24 * time.Hour
	if v := r.URL.Query().Get("since"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > 31*24*time.Hour {
			c.fail(fmt.Errorf("%w: since %q is not a duration between 0 and 744h", errBadRequest, clip(v, 32)))
			return
		}
		since = d
	}
	recs, err := s.Audit.List(r.Context(), model, s.now().Add(-since))
	if err != nil {
		c.fail(err)
		return
	}
	c.done(recs)
}

// runStatus answers a run's status query (view): ?run=ID, the latest run without it.
func (s *Server) runStatus(w http.ResponseWriter, r *http.Request) {
	c, ok := s.begin(w, r, ActView, r.PathValue("model"))
	if !ok {
		return
	}
	run := r.URL.Query().Get("run")
	if run != "" && !runIDPattern.MatchString(run) {
		c.fail(fmt.Errorf("%w: run %q is not a run id", errBadRequest, clip(run, 64)))
		return
	}
	st, err := s.Runs.Status(r.Context(), c.model, run)
	if err != nil {
		c.fail(err)
		return
	}
	c.done(st)
}

var (
	runIDPattern  = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)
	reportPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}\.json$`) // drift.json, a monitor window's 20261201T101500Z.json
)

// report answers one of a run's reports (reports/<model>/<run>/<name>.json; view), as stored;
// run "monitor" names the monitor's windows.
func (s *Server) report(w http.ResponseWriter, r *http.Request) {
	c, ok := s.begin(w, r, ActView, r.PathValue("model"))
	if !ok {
		return
	}
	run, name := r.PathValue("run"), r.PathValue("name")
	if !runIDPattern.MatchString(run) || !reportPattern.MatchString(name) {
		c.fail(fmt.Errorf("%w: %q/%q is not a run id and a report name (e.g. drift.json)", errBadRequest, clip(run, 64), clip(name, 64)))
		return
	}
	body, _, err := objstore.ReadAll(r.Context(), s.Registry.Store, keys.Report(c.model, run, name))
	if errors.Is(err, objstore.ErrNotFound) {
		err = fmt.Errorf("run %s of %s has no report %s: %w", run, c.model, name, registry.ErrNotFound)
	}
	if err != nil {
		c.fail(err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// monitorStatus answers the model's monitor status query (view).
func (s *Server) monitorStatus(w http.ResponseWriter, r *http.Request) {
	c, ok := s.begin(w, r, ActView, r.PathValue("model"))
	if !ok {
		return
	}
	st, err := s.Runs.MonitorStatus(r.Context(), c.model)
	if err != nil {
		c.fail(err)
		return
	}
	c.done(st)
}

// ModelResponse is a model's deployment and its registered versions (`driftline models`).
type ModelResponse struct {
	Model      string              `json:"model"`
	Deployment registry.Deployment `json:"deployment"`
	Versions   []registry.Version  `json:"versions"`
}

// modelVersions answers a model's deployment and versions (view).
func (s *Server) modelVersions(w http.ResponseWriter, r *http.Request) {
	c, ok := s.begin(w, r, ActView, r.PathValue("model"))
	if !ok {
		return
	}
	d, _, err := s.Registry.Deployment(r.Context(), c.model)
	if err != nil {
		c.fail(err)
		return
	}
	vs, err := s.Registry.Versions(r.Context(), c.model)
	if err != nil {
		c.fail(err)
		return
	}
	c.done(ModelResponse{Model: c.model, Deployment: d, Versions: vs})
}

// VersionResponse is one registered version as `driftline models show` prints it: its
// metadata and lineage, the records kept with it, and its audit trail.
type VersionResponse struct {
	Version registry.Version             `json:"version"`
	Records map[string][]json.RawMessage `json:"records"` // decisions, approvals, serving, cost
	Audit   []audit.Record               `json:"audit"`
}

// RecordKinds are the records `models show` lists with a version.
var RecordKinds = []string{"decisions", "approvals", registry.ServingRecordKind, "cost"}

// version answers a registered version (view): /v1/models/{m}/versions/{n}, 0 for production.
func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	c, ok := s.begin(w, r, ActView, r.PathValue("model"))
	if !ok {
		return
	}
	n, err := strconv.Atoi(r.PathValue("version"))
	if err != nil || n < 0 {
		c.fail(fmt.Errorf("%w: version %q is not a number", errBadRequest, clip(r.PathValue("version"), 16)))
		return
	}
	if n == 0 {
		d, _, err := s.Registry.Deployment(r.Context(), c.model)
		if err != nil {
			c.fail(err)
			return
		}
		n = d.Production
	}
	v, err := s.Registry.Version(r.Context(), c.model, n)
	if err != nil {
		c.fail(err)
		return
	}
	out := VersionResponse{Version: v, Records: map[string][]json.RawMessage{}}
	for _, kind := range RecordKinds {
		objs, err := s.Registry.Store.List(r.Context(), keys.Records(c.model, n, kind))
		if err != nil {
			c.fail(err)
			return
		}
		for _, o := range objs {
			data, _, err := objstore.ReadAll(r.Context(), s.Registry.Store, o.Key)
			if err != nil {
				c.fail(err)
				return
			}
			if json.Valid(data) {
				out.Records[kind] = append(out.Records[kind], data)
			}
		}
	}
	recs, err := s.Audit.List(r.Context(), c.model, v.CreatedAt.Add(-time.Minute))
	if err != nil {
		c.fail(err)
		return
	}
	for _, rec := range recs {
		if rec.Version == n {
			out.Audit = append(out.Audit, rec)
		}
	}
	c.done(out)
}

// FeatureVector is a feature service's vector of one entity (`driftline features get` with a
// token): point in time from the offline data, or as the online store serves it now.
type FeatureVector struct {
	Service string     `json:"service"`
	Key     string     `json:"key"`
	AsOf    time.Time  `json:"as_of"`
	Source  string     `json:"source"` // offline or online
	Names   []string   `json:"names"`
	Values  []*float64 `json:"values"` // null: no value known by then
	// Offline: the views joined and each one's row event time (unix µs, 0: none).
	Views  []string `json:"views,omitempty"`
	Events []int64  `json:"events,omitempty"`
	// Online: per feature, the stored row's event time and why a value is missing (no
	// value, expired, stored by other definitions).
	EventTimes []time.Time `json:"event_times,omitempty"`
	Missing    []string    `json:"missing,omitempty"`
}

func present(v float64) *float64 {
	if math.IsNaN(v) {
		return nil
	}
	return &v
}

// onlineVector is the service's vector from the API's online store.
func (s *Server) onlineVector(ctx context.Context, defs features.Repo, service, key string, at time.Time) (FeatureVector, error) {
	vec, err := features.ReadService(ctx, s.Online, defs, service, key, at)
	if err != nil {
		return FeatureVector{}, fmt.Errorf("%w: %v", errBadRequest, err)
	}
	out := FeatureVector{Service: service, Key: key, AsOf: at, Source: "online", Names: vec.Names, EventTimes: vec.Event, Missing: vec.Missing}
	for _, v := range vec.Values {
		out.Values = append(out.Values, present(v))
	}
	return out, nil
}

// offlineVector is the service's vector as of at, point in time, from the model's dataset
// (the 90 days before at).
func (s *Server) offlineVector(ctx context.Context, sp spec.Spec, defs features.Repo, service, key string, at time.Time) (FeatureVector, error) {
	snap, err := dataset.TakeSnapshot(ctx, s.Registry.Store, sp.Dataset.Name, "features-get", at.AddDate(0, 0, -90), at)
	if err != nil {
		return FeatureVector{}, err
	}
	ts, err := features.Retrieve(ctx, s.Registry.Store, defs, service, map[string]contract.Contract{sp.Dataset.Name: sp.Contract},
		map[string]dataset.Snapshot{sp.Dataset.Name: snap}, []features.EntityRow{{Key: key, At: at.UnixMicro()}})
	if err != nil {
		return FeatureVector{}, fmt.Errorf("%w: %v", errBadRequest, err)
	}
	out := FeatureVector{Service: service, Key: key, AsOf: at, Source: "offline", Names: ts.Names, Views: ts.Views, Events: ts.Events[0]}
	for _, v := range ts.Vectors[0] {
		out.Values = append(out.Values, present(v))
	}
	return out, nil
}

// featureVector answers a service's vector as of a time, from the applied definitions and
// the model's dataset (view on the model, and read_dataset when its registered contract has
// personal data; the repository must be the model group's).
func (s *Server) featureVector(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c, ok := s.begin(w, r, ActView, q.Get("model"))
	if !ok {
		return
	}
	if c.model == "" {
		c.fail(fmt.Errorf("%w: model is required (the model whose dataset the features come from)", errBadRequest))
		return
	}
	sp, _, ok := c.registered()
	if !ok {
		return
	}
	pii := sp.Contract.HasPII()
	if !c.authorize(ActView, c.model, &pii) {
		return
	}
	repo, service, key := r.PathValue("repo"), r.PathValue("service"), q.Get("key")
	source := q.Get("source")
	at, err := time.Parse(time.RFC3339, q.Get("at"))
	if source == "online" && q.Get("at") == "" {
		at, err = s.now(), nil // the online store serves the latest rows
	}
	switch {
	case !spec.ValidName(repo):
		c.fail(fmt.Errorf("%w: feature repository %q is not a name", errBadRequest, clip(repo, 64)))
		return
	case source != "" && source != "offline" && source != "online":
		c.fail(fmt.Errorf("%w: source %q is not offline or online", errBadRequest, clip(source, 16)))
		return
	case source == "online" && s.Online == nil:
		c.fail(fmt.Errorf("%w: this API reads no online store (driftline api --online-store)", errBadRequest))
		return
	case err != nil:
		c.fail(fmt.Errorf("%w: at %q is not an RFC 3339 time", errBadRequest, clip(q.Get("at"), 40)))
		return
	case key == "":
		c.fail(fmt.Errorf("%w: key is required (the entity's key values joined with |)", errBadRequest))
		return
	}
	applied, defs, _, found, err := features.Current(r.Context(), s.Registry.Store, repo)
	switch {
	case err != nil:
		c.fail(err)
		return
	case !found:
		c.fail(fmt.Errorf("feature repository %s has no applied definitions: %w", repo, registry.ErrNotFound))
		return
	case !c.owns(applied.Owner, repo):
		return
	}
	var out FeatureVector
	if source == "online" {
		out, err = s.onlineVector(r.Context(), defs, service, key, at)
	} else {
		out, err = s.offlineVector(r.Context(), sp, defs, service, key, at)
	}
	if err != nil {
		c.fail(err)
		return
	}
	c.done(out)
}
