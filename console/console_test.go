package console

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Without a token a page sends the browser to the login form (and back after it); a token
// the API would refuse is refused here too; only GET pages and the login forms exist.
func TestPagesNeedATokenTheAPIAccepts(t *testing.T) {
	h := seed(t).srv.Handler()
	w := get(t, h, "", "/models/demand?version=1")
	require.Equal(t, http.StatusSeeOther, w.Code)
	require.Equal(t, "/login?next="+url.QueryEscape("/models/demand?version=1"), w.Header().Get("Location"))

	r := get(t, h, "", "/")
	r2 := httptestReq(h, http.MethodGet, "/", "Bearer not-a-token")
	require.Equal(t, http.StatusSeeOther, r.Code)
	require.Equal(t, http.StatusUnauthorized, r2.Code)
	require.Contains(t, r2.Body.String(), "the token was refused: invalid token")

	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		require.Equal(t, http.StatusMethodNotAllowed, httptestReq(h, m, "/models/demand", "Bearer "+mint(t, "root")).Code, m)
	}
	csp := get(t, h, "alice", "/").Header().Get("Content-Security-Policy")
	require.Contains(t, csp, "default-src 'none'", "no script may run")
}

// The login form keeps a verified token in an HttpOnly, SameSite=Strict cookie, and its
// redirect stays on the console.
func TestLoginKeepsTheTokenInAStrictCookie(t *testing.T) {
	h := seed(t).srv.Handler()
	w := postForm(h, "/login", url.Values{"token": {mint(t, "alice")}, "next": {"/models/demand"}})
	require.Equal(t, http.StatusSeeOther, w.Code)
	require.Equal(t, "/models/demand", w.Header().Get("Location"))
	c := w.Result().Cookies()
	require.Len(t, c, 1)
	require.True(t, c[0].HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, c[0].SameSite)

	r := httptestReq(h, http.MethodGet, "/models/demand", "")
	r2 := httptestCookie(h, "/models/demand", c[0])
	require.Equal(t, http.StatusSeeOther, r.Code)
	require.Equal(t, http.StatusOK, r2.Code, "the cookie signs the browser in")

	for _, next := range []string{"//evil.example/x", "https://evil.example/", "/\\evil.example"} {
		w := postForm(h, "/login", url.Values{"token": {mint(t, "alice")}, "next": {next}})
		require.Equal(t, "/", w.Header().Get("Location"), next)
	}
	w = postForm(h, "/login", url.Values{"token": {"forged"}})
	require.Equal(t, http.StatusUnauthorized, w.Code)
	require.Empty(t, w.Result().Cookies())
}

// Each page asks OPA for the view permission on its model: alice sees demand and only learns
// that another model exists; its pages are refused with the reason.
func TestEveryPageIsAuthorisedPerModel(t *testing.T) {
	h := seed(t).srv.Handler()
	w := get(t, h, "alice", "/")
	require.Equal(t, http.StatusOK, w.Code)
	require.Contains(t, w.Body.String(), `href="/models/demand"`)
	require.NotContains(t, w.Body.String(), "/models/secret")
	require.Contains(t, w.Body.String(), "1 more model(s) exist that your token may not view")
	for _, p := range []string{"/models/secret", "/models/secret/monitor", "/models/secret/runs/s-1"} {
		w := get(t, h, "alice", p)
		require.Equal(t, http.StatusForbidden, w.Code, p)
		require.Contains(t, w.Body.String(), "alice may not view model secret", p)
	}
	require.Contains(t, get(t, h, "root", "/").Body.String(), `href="/models/secret"`)
	require.Equal(t, http.StatusNotFound, get(t, h, "root", "/models/demand/runs/nope").Code)
	for _, p := range []string{"/models/Demand", "/models/a%2F..%2Fb", "/models/demand/runs/a.b", "/models/demand/runs/a%2F..%2Fb"} {
		require.Equal(t, http.StatusNotFound, get(t, h, "root", p).Code, "%s is not looked up", p)
	}
}

func text(body string) string {
	return strings.Join(strings.Fields(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(body, " ")), " ")
}

// The run page shows the known run's numbers: steps and timings, the drift decision, the
// candidate and champion on the same holdout with segments, the policy, the approval, both
// canary steps, and the link to the run in the Temporal UI.
func TestRunPageShowsTheRunsNumbers(t *testing.T) {
	h := seed(t).srv.Handler()
	w := get(t, h, "alice", "/models/demand/runs/run-2")
	require.Equal(t, http.StatusOK, w.Code)
	body := w.Body.String()
	txt := text(body)
	for _, want := range []string{
		"promoted canary passed every step", "window 2026-11-01 .. 2026-11-14, started because schedule, requested by alice",
		"train 2026-11-20 09:00:06 12.5s gbdt, 180 trees", "validate 2026-11-20 09:00:01 3.4s",
		"10000 rows read, 9990 accepted, 10 quarantined",
		"drifted", "price", "Candidate MAE 2.346 on 1000 holdout rows from 2026-11-12 (threshold 5); champion v1 2.789 on the same rows",
		"mae 2.346 2.789", "rmse 3.1 3.6", "north 600 2.1 2.5",
		"Policy revision rev-7f3a : allowed, a human approval required", "MAE improves on the champion by 15.9%",
		"Decided on v2 by alice (ml-platform): segments look right (attested by the API)",
		"1 10% wait 412 3710 every guardrail holds", "2 50% promote 2044 2051",
	} {
		require.Contains(t, txt, want)
	}
	require.Contains(t, body, `href="http://temporal.test:8233/namespaces/default/workflows/`)
	require.Regexp(t, `<figcaption>step 2 at 50%: promote \(2044 vs 2051 requests\)</figcaption>`, body)
	require.Contains(t, body, "<title>live MAE, candidate v2: 2.41</title>", "the canary's live MAE is charted")
	// The drift histograms: one chart per feature with both series.
	require.Equal(t, 3, strings.Count(body, `aria-label="price"`)+strings.Count(body, `aria-label="region"`)+strings.Count(body, `aria-label="&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"`))
	require.Contains(t, body, "<title>east, current: 0.3332</title>", "a category the reference never saw is drawn")
}

// Whatever a report holds is text: a feature named <script> and a segment that is an <img>
// tag are shown escaped, in tables, chart labels and tooltips alike.
func TestEverythingRenderedIsEscaped(t *testing.T) {
	h := seed(t).srv.Handler()
	for _, p := range []string{"/models/demand/runs/run-2"} {
		body := get(t, h, "alice", p).Body.String()
		require.NotContains(t, body, "<script")
		require.NotContains(t, body, "<img")
		require.Contains(t, body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;")
		require.Contains(t, body, "&lt;img src=x onerror=alert(1)&gt;")
	}
}

// The model page: the pointer, every version with its MAE (and the chart of it), the runs,
// and the lineage graph from the pinned files to the deployment.
func TestModelPageShowsVersionsAndLineage(t *testing.T) {
	h := seed(t).srv.Handler()
	body := get(t, h, "alice", "/models/demand").Body.String()
	txt := text(body)
	for _, want := range []string{"production v2", "previous v1 the rollback target", "v1 ", "2.789", "v2 ", "2.346",
		"run-2 2026-11-20 09:00:00 2026-11-01 .. 2026-11-14 promoted v2 canary passed every step", "Lineage of v2",
		"Trained from the iceberg table iceberg&#43;sql://lake/retail.demand at snapshot 8797629078370162270, committed 2026-11-20 08:00:00 UTC (metadata s3://lake/warehouse/retail.db/demand/metadata/00001-a.metadata.json ): a rerun with dataset.table.snapshot_id: 8797629078370162270 reads the same rows."} {
		require.Contains(t, txt, want)
	}
	for _, node := range []string{"dt=2026-11-01", "part-0.parquet, 150000 rows", "snapshot snap-run-2", "2 files, iceberg table", "validation", "drift", "evaluation",
		"trained: gbdt", "v2", "holdout MAE 2.346", "production"} {
		require.Contains(t, body, ">"+node+"<", "lineage node %q", node)
	}
	require.Contains(t, body, `<a href="/models/demand/runs/run-2"><g class="node report">`)
	require.Contains(t, body, "<title>datasets/retail/dt=2026-11-01/part-0.parquet (etag e1)</title>", "the full key in the tooltip")
	require.Contains(t, body, "<title>v2, holdout MAE: 2.346</title>")
	require.Contains(t, body, "<title>iceberg&#43;sql://lake/retail.demand snapshot 8797629078370162270</title>", "the table's version in the tooltip")
	v1 := get(t, h, "alice", "/models/demand?version=1").Body.String()
	require.Contains(t, v1, ">previous<")
	require.Contains(t, v1, ">the rollback target<")
	require.NotContains(t, text(v1), "Trained from the", "v1 was trained from day partitions")
}

// The monitoring page: the newest window's KPIs and every window, with live and estimated
// MAE over time (a window without labels is a gap, not a zero).
func TestMonitorPageShowsTheWindows(t *testing.T) {
	h := seed(t).srv.Handler()
	body := get(t, h, "alice", "/models/demand/monitor").Body.String()
	txt := text(body)
	for _, want := range []string{"requests 1200 2 errors, 0 fallbacks", "latency 5 ms p99 (p50 1.1 ms), SLO 50 ms",
		"live MAE 2.75 400 labels; estimated 2.6 (dle, 1200 requests)", "2026-11-20 10:00:00 v2 1000 0 3 ms - 0 2.4"} {
		require.Contains(t, txt, want)
	}
	require.Equal(t, 2, strings.Count(body, ", live MAE: "), "two labelled windows, one gap")
	require.Equal(t, 3, strings.Count(body, ", estimated MAE: "))
}
