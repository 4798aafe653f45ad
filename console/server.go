package console

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/driftline/driftline/internal/dashboards"
	"github.com/driftline/driftline/internal/keys"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/policies"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
)

// Verifier turns a bearer token into the identity it proves (api.OIDC or api.DevHS256: the
// API's own verifiers).
type Verifier interface {
	Verify(ctx context.Context, token string) (policies.Subject, error)
}

// Live answers for runs still going (no outcome.json yet): their status from Temporal.
type Live interface {
	Status(ctx context.Context, model, runID string) (pipeline.Status, error)
}

// Server is the console: read-only pages over the registry, the runs' reports and the
// monitor's windows. Every page needs a token the API would accept and the view permission
// on its model (OPA, the API's RBAC); nothing here changes state.
type Server struct {
	Store    objstore.Bucket
	Registry *registry.Registry
	Verifier Verifier
	Engine   *policies.Engine
	// Live (optional) shows runs in progress; without it only finished runs are shown.
	Live Live
	// Traces (optional) shows each run's trace (Jaeger).
	Traces Traces
	// Metrics (optional) draws the Grafana dashboards' panels from Prometheus (/dashboards).
	Metrics Metrics
	// Dashboards are the dashboards drawn (nil: the ones shipped in deploy/grafana/dashboards).
	Dashboards []dashboards.Dashboard
	// RunLink (optional) is a run's page in the Temporal UI (starter.UILink).
	RunLink func(model, runID string) string
	Log     *slog.Logger
}

//go:embed templates/*.html static/*
var files embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"num": num,
	"pct": func(v float64) string { return num(100*v) + "%" },
	"ms":  func(v float64) string { return num(v) + " ms" },
	"dur": func(a, b time.Time) string {
		if b.IsZero() || a.IsZero() {
			return "running"
		}
		return b.Sub(a).Round(10 * time.Millisecond).String()
	},
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"path":         url.PathEscape,
	"tableVersion": tableVersion,
}).ParseFS(files, "templates/*.html"))

const cookieName = "driftline_console"

// Handler serves the console. Only GET pages and the login/logout forms exist: every other
// method is refused by the mux (405).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.FileServerFS(files))
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.logout)
	mux.HandleFunc("GET /{$}", s.page(s.index))
	mux.HandleFunc("GET /models/{model}", s.page(s.model))
	mux.HandleFunc("GET /models/{model}/runs/{run}", s.page(s.runPage))
	mux.HandleFunc("GET /models/{model}/runs/{run}/trace", s.page(s.tracePage))
	mux.HandleFunc("GET /models/{model}/monitor", s.page(s.monitorPage))
	mux.HandleFunc("GET /dashboards", s.page(s.dashboardList))
	mux.HandleFunc("GET /dashboards/{uid}", s.page(s.dashboardPage))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	return headers(mux)
}

// headers: no script may run (the console has none), styles only from the console itself,
// never framed, never cached (a page can hold what only its viewer may see).
func headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "same-origin")
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// view is what every page template gets.
type view struct {
	Title string
	Who   policies.Subject
	Crumb []link
	Data  any
}

type link struct{ Text, Href string }

// req is one authenticated page request.
type req struct {
	*http.Request
	who policies.Subject
	s   *Server
}

// may reports whether the viewer may view the model (OPA; an error denies).
func (q *req) may(model string) bool {
	d, err := q.s.Engine.Authorize(q.Context(), q.who, "view", model)
	if err != nil {
		q.s.log().Error("console: policy", "model", model, "err", err)
		return false
	}
	return d.Allow
}

type pageFunc func(q *req) (name string, v view, err error)

type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func forbidden(who policies.Subject, model string) error {
	return &httpError{http.StatusForbidden, fmt.Sprintf("%s may not view model %s (the RBAC's view permission)", who.ID, model)}
}

// token is the request's bearer token: the Authorization header (scripts, curl) or the
// console's cookie (browsers, set by the login form).
func token(r *http.Request) string {
	if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(t)
	}
	if c, err := r.Cookie(cookieName); err == nil {
		return c.Value
	}
	return ""
}

func (s *Server) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// page authenticates the request, renders the page and answers; a browser without a valid
// token is sent to the login form.
func (s *Server) page(f pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok := token(r)
		if tok == "" {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		who, err := s.Verifier.Verify(r.Context(), tok)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="driftline", error="invalid_token"`)
			s.render(w, http.StatusUnauthorized, "login.html", view{Title: "Sign in", Data: loginData{Error: "the token was refused: " + err.Error(), Next: r.URL.RequestURI()}})
			return
		}
		name, v, err := f(&req{Request: r, who: who, s: s})
		if err != nil {
			code := http.StatusInternalServerError
			var he *httpError
			switch {
			case errors.As(err, &he):
				code = he.code
			case errors.Is(err, errNotFound):
				code = http.StatusNotFound
			default:
				s.log().Error("console", "path", r.URL.Path, "err", err)
			}
			s.render(w, code, "error.html", view{Title: http.StatusText(code), Who: who, Data: err.Error()})
			return
		}
		v.Who = who
		s.render(w, http.StatusOK, name, v)
	}
}

func (s *Server) render(w http.ResponseWriter, code int, name string, v view) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, v); err != nil {
		s.log().Error("console: render", "page", name, "err", err)
		http.Error(w, "render "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

type loginData struct{ Error, Next string }

// safeNext keeps a post-login redirect on the console (a path, never another site).
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusOK, "login.html", view{Title: "Sign in", Data: loginData{Next: safeNext(r.URL.Query().Get("next"))}})
}

// login checks the pasted token as the API would and keeps it in an HttpOnly, SameSite=Strict
// cookie that lives no longer than the token.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	tok := strings.TrimSpace(r.PostFormValue("token"))
	next := safeNext(r.PostFormValue("next"))
	if _, err := s.Verifier.Verify(r.Context(), tok); err != nil || tok == "" {
		why := "a token is required (driftline token, or your identity provider's)"
		if tok != "" {
			why = "the token was refused: " + err.Error()
		}
		s.render(w, http.StatusUnauthorized, "login.html", view{Title: "Sign in", Data: loginData{Error: why, Next: next}})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: tok, Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: int((8 * time.Hour).Seconds())})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// runLink is the Temporal UI page of a run ("" without RunLink).
func (s *Server) runLink(model, runID string) string {
	if s.RunLink == nil || runID == "" {
		return ""
	}
	return s.RunLink(model, runID)
}

// modelRow is one line of the index.
type modelRow struct {
	Name       string
	Deployment registry.Deployment
	Versions   int
	LastRun    *RunSummary
	HasProd    bool
	MAE        float64
}

func (s *Server) index(q *req) (string, view, error) {
	names, err := s.models(q.Context())
	if err != nil {
		return "", view{}, err
	}
	var rows []modelRow
	hidden := 0
	for _, m := range names {
		if !q.may(m) {
			hidden++
			continue
		}
		d, _, err := s.Registry.Deployment(q.Context(), m)
		if err != nil {
			return "", view{}, err
		}
		vs, err := s.Registry.Versions(q.Context(), m)
		if err != nil {
			return "", view{}, err
		}
		row := modelRow{Name: m, Deployment: d, Versions: len(vs)}
		for _, v := range vs {
			if v.Version == d.Production {
				row.HasProd, row.MAE = true, v.Metrics["holdout_mae"]
			}
		}
		if runs, err := s.runs(q.Context(), m); err == nil && len(runs) > 0 {
			row.LastRun = &runs[0]
		}
		rows = append(rows, row)
	}
	return "index.html", view{Title: "Models", Data: struct {
		Models []modelRow
		Hidden int
	}{rows, hidden}}, nil
}

// runIDPattern is what a Temporal run ID (a UUID) may hold: a path segment that names a key.
var runIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// modelOf is the page's model, authorised; a name no spec could have (or a run ID no run
// could have) is not looked up at all.
func (s *Server) modelOf(q *req) (string, error) {
	m := q.PathValue("model")
	if !spec.ValidName(m) {
		return "", fmt.Errorf("%w: %q is not a model name", errNotFound, m)
	}
	if run := q.PathValue("run"); run != "" && !runIDPattern.MatchString(run) {
		return "", fmt.Errorf("%w: %q is not a run ID", errNotFound, run)
	}
	if !q.may(m) {
		return "", forbidden(q.who, m)
	}
	return m, nil
}

type modelPage struct {
	Model      string
	Deployment registry.Deployment
	Versions   []registry.Version
	Runs       []RunSummary
	MAEChart   Chart
	Lineage    *Graph
	Shown      *registry.Version
	RunLink    string
}

func (s *Server) model(q *req) (string, view, error) {
	m, err := s.modelOf(q)
	if err != nil {
		return "", view{}, err
	}
	ctx := q.Context()
	d, _, err := s.Registry.Deployment(ctx, m)
	if err != nil {
		return "", view{}, err
	}
	vs, err := s.Registry.Versions(ctx, m)
	if err != nil {
		return "", view{}, err
	}
	if len(vs) == 0 && d.Production == 0 {
		if ok, err := s.exists(ctx, m); err != nil || !ok {
			return "", view{}, errors.Join(errNotFound, err)
		}
	}
	runs, err := s.runs(ctx, m)
	if err != nil {
		return "", view{}, err
	}
	p := modelPage{Model: m, Deployment: d, Versions: vs, Runs: runs}
	var labels []string
	var mae []float64
	for _, v := range vs {
		labels = append(labels, "v"+strconv.Itoa(v.Version))
		mae = append(mae, v.Metrics["holdout_mae"])
	}
	p.MAEChart = Lines("holdout MAE by version", labels, []Series{{Name: "holdout MAE", Class: "s0", Values: mae}})
	want := d.Production
	if v, err := strconv.Atoi(q.URL.Query().Get("version")); err == nil {
		want = v
	}
	for i := range vs {
		if vs[i].Version == want {
			p.Shown = &vs[i]
		}
	}
	if p.Shown == nil && len(vs) > 0 {
		p.Shown = &vs[len(vs)-1]
	}
	if p.Shown != nil {
		g := lineage(m, *p.Shown, d)
		p.Lineage = &g
		p.RunLink = s.runLink(m, p.Shown.Lineage.RunID)
	}
	return "model.html", view{Title: m, Crumb: []link{{"models", "/"}}, Data: p}, nil
}

// exists: a model with no versions yet may still have runs (every run so far skipped).
func (s *Server) exists(ctx context.Context, m string) (bool, error) {
	objs, err := s.Store.List(ctx, keys.ModelReports(m))
	return len(objs) > 0, err
}

func prefix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// tableVersion names a table's version as its format does: a Delta version, an Iceberg
// snapshot id.
func tableVersion(t *registry.TableVersion) string {
	if t.Format == "iceberg" {
		return "snapshot " + strconv.FormatInt(t.Version, 10)
	}
	return "version " + strconv.FormatInt(t.Version, 10)
}

// lineage is the graph from a version's data files to its deployment.
func lineage(m string, v registry.Version, d registry.Deployment) Graph {
	var nodes []GraphNode
	files := v.Lineage.SnapshotFiles
	const maxFiles = 5
	var fileIDs []string
	for i, f := range files {
		if i == maxFiles {
			nodes = append(nodes, GraphNode{ID: "more", Title: fmt.Sprintf("+%d more files", len(files)-maxFiles), Column: 0, Class: "data"})
			fileIDs = append(fileIDs, "more")
			break
		}
		id := "f" + strconv.Itoa(i)
		dir, name := path.Split(f.Key)
		nodes = append(nodes, GraphNode{ID: id, Title: path.Base(dir), Sub: fmt.Sprintf("%s, %d rows", name, f.Rows), Tip: f.Key + " (etag " + f.ETag + ")", Column: 0, Class: "data"})
		fileIDs = append(fileIDs, id)
	}
	snap := GraphNode{ID: "snap", Title: "snapshot " + shortLabel(v.Lineage.SnapshotID, 14), Sub: fmt.Sprintf("%d files", len(files)), Column: 1, Class: "data", From: fileIDs}
	if t := v.Lineage.Table; t != nil {
		snap.Sub = fmt.Sprintf("%d files, %s table", len(files), t.Format)
		snap.Tip = t.URI + " " + tableVersion(t)
	}
	nodes = append(nodes, snap)
	var reports []string
	for _, name := range []string{"training_set", "validation", "drift", "evaluation"} {
		if _, ok := v.Lineage.Reports[name]; ok {
			nodes = append(nodes, GraphNode{ID: name, Title: name, Sub: "run " + shortLabel(v.Lineage.RunID, 12), Column: 2, Class: "report",
				Href: "/models/" + url.PathEscape(m) + "/runs/" + url.PathEscape(v.Lineage.RunID), From: []string{"snap"}})
			reports = append(reports, name)
		}
	}
	if len(reports) == 0 {
		reports = []string{"snap"}
	}
	nodes = append(nodes, GraphNode{ID: "train", Title: "trained: " + v.Lineage.Trainer, Sub: "spec " + prefix(v.Lineage.SpecHash, 8) + ", code " + prefix(v.Lineage.CodeRevision, 8),
		Tip: "spec " + v.Lineage.SpecHash + ", code " + v.Lineage.CodeRevision, Column: 3, Class: "step", From: reports})
	nodes = append(nodes, GraphNode{ID: "version", Title: fmt.Sprintf("v%d", v.Version), Sub: "holdout MAE " + num(v.Metrics["holdout_mae"]), Column: 4, Class: "version", From: []string{"train"}})
	type pointer struct{ title, sub string }
	var pointers []pointer
	switch v.Version {
	case d.Production:
		pointers = append(pointers, pointer{"production", "by " + d.UpdatedBy})
	case d.Canary:
		pointers = append(pointers, pointer{"canary " + num(100*d.CanaryShare) + "%", string(d.CanaryMode)})
	case d.Previous:
		pointers = append(pointers, pointer{"previous", "the rollback target"})
	}
	aliases := make([]string, 0, len(d.Aliases))
	for a, n := range d.Aliases {
		if n == v.Version {
			aliases = append(aliases, a)
		}
	}
	sort.Strings(aliases)
	for _, a := range aliases {
		pointers = append(pointers, pointer{"alias " + a, ""})
	}
	if len(pointers) == 0 {
		pointers = []pointer{{"not deployed", ""}}
	}
	for i, p := range pointers {
		nodes = append(nodes, GraphNode{ID: "p" + strconv.Itoa(i), Title: p.title, Sub: p.sub, Column: 5, Class: "deploy", From: []string{"version"}})
	}
	return Layout(nodes)
}

type runPage struct {
	Model    string
	Traced   bool
	Run      *RunDetail
	RunLink  string
	Timeline Chart
	Drift    []driftRow
	Segments []segmentRow
	Metrics  []metricRow
	SegChart Chart
	Canary   []Chart
}

type driftRow struct {
	Name, Kind, Test, Why   string
	Statistic, P, PSI, JS   float64
	Drifted, Critical       bool
	RefMean, CurMean, Nulls float64
	Chart                   Chart
}

type segmentRow struct {
	Segment                   string
	Rows                      int
	CandidateMAE, ChampionMAE float64
	HasChampion               bool
}

type metricRow struct {
	Name                string
	Candidate, Champion float64
	HasChampion         bool
}

func (s *Server) runPage(q *req) (string, view, error) {
	m, err := s.modelOf(q)
	if err != nil {
		return "", view{}, err
	}
	rd, err := s.run(q.Context(), m, q.PathValue("run"))
	if err != nil {
		return "", view{}, err
	}
	p := runPage{Model: m, Run: rd, RunLink: s.runLink(m, rd.RunID), Traced: s.Traces != nil}
	var names []string
	var secs []float64
	for _, st := range rd.Status.Steps {
		names = append(names, string(st.Name))
		if st.Finished.IsZero() {
			secs = append(secs, 0)
		} else {
			secs = append(secs, st.Finished.Sub(st.Started).Seconds())
		}
	}
	p.Timeline = Bars("step durations (s)", names, []Series{{Name: "seconds", Class: "s0", Values: secs}})
	p.Drift = driftRows(rd.Drift, "current")
	if ev := rd.Evaluation; ev != nil {
		p.Metrics, p.Segments, p.SegChart = evaluation(ev)
	}
	for _, c := range rd.Status.Canary {
		p.Canary = append(p.Canary, canaryChart(c))
	}
	return "run.html", view{Title: "run " + rd.RunID, Crumb: []link{{"models", "/"}, {m, "/models/" + url.PathEscape(m)}}, Data: p}, nil
}
