package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// browser starts headless Chromium (Debian's chromium, installed by make tools) and collects
// everything a page reports as wrong: console errors, uncaught exceptions, log errors (CSP
// violations, failed loads) and dialogs (an alert would mean injected script ran).
type browser struct {
	ctx      context.Context
	mu       sync.Mutex
	problems []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is missing: run `make tools` (make test does it for you): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(bctx, 2*time.Minute)
	t.Cleanup(func() { cancelT(); cancelB(); cancelA() })
	b := &browser{ctx: ctx}
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value))
				}
				b.problems = append(b.problems, "console "+string(e.Type)+": "+strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			b.problems = append(b.problems, "exception: "+e.ExceptionDetails.Text)
		case *log.EventEntryAdded:
			if e.Entry.Level == log.EntryLevelError || e.Entry.Level == log.EntryLevelWarning {
				b.problems = append(b.problems, fmt.Sprintf("log %s (%s): %s %s", e.Entry.Level, e.Entry.Source, e.Entry.Text, e.Entry.URL))
			}
		case *page.EventJavascriptDialogOpening:
			b.problems = append(b.problems, "dialog: "+e.Message)
			go func() {
				_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
			}()
		}
	}))
	_, err = chromedp.Call(ctx, log.Enable, cdp.Empty{})
	require.NoError(t, err)
	_, err = chromedp.Call(ctx, runtime.Enable, cdp.Empty{})
	require.NoError(t, err)
	return b
}

func (b *browser) take() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.problems
	b.problems = nil
	return p
}

// shoot saves a full-page screenshot into $DRIFTLINE_SCREENSHOTS (make screenshots: docs/img).
func (b *browser) shoot(t *testing.T, name string) {
	dir := os.Getenv("DRIFTLINE_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "console-"+name+".png"), png, 0o644))
}

// The console in a real browser: signing in through the form, every page renders without a
// console error, a CSP violation or a dialog, shows the known run's numbers, draws its
// charts with the console's stylesheet, and shows the <script>-named feature as text with
// no script element anywhere in the document.
func TestConsoleInChromium(t *testing.T) {
	f := seed(t)
	ts := httptest.NewServer(f.srv.Handler())
	defer ts.Close()
	b := newBrowser(t)
	run := func(a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(b.ctx, a)
		require.NoError(t, err)
		return v
	}
	do := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		require.NoError(t, chromedp.Do(b.ctx, steps...))
	}
	eval := func(js string) any {
		t.Helper()
		v, err := chromedp.Run(b.ctx, chromedp.Evaluate[any](js))
		require.NoError(t, err)
		return v
	}

	do(chromedp.Navigate(ts.URL + "/models/demand/runs/run-2"))
	require.Equal(t, "Sign in", run(chromedp.Text("h1")), "no token: the login form")
	b.shoot(t, "login")
	do(chromedp.SendKeys(`input[name="token"]`, mint(t, "alice")), chromedp.Submit(`form.login`), chromedp.WaitVisible(`#candidate-mae`))
	require.Empty(t, b.take(), "login page")

	require.Equal(t, ts.URL+"/models/demand/runs/run-2", run(chromedp.Location()), "back where the login started")
	require.Equal(t, "2.346", run(chromedp.Text(`#candidate-mae`)))
	require.Equal(t, "2.789", run(chromedp.Text(`#champion-mae`)))
	require.Equal(t, "alice", run(chromedp.Text(`.approver`)))
	require.EqualValues(t, 0, eval(`document.querySelectorAll('script').length`), "no script element: the feature named <script> is text")
	require.Equal(t, true, eval(`[...document.querySelectorAll('td')].some(td => td.textContent === '<script>alert("x")</script>')`), "the feature's name is shown as it is")
	require.Greater(t, eval(`document.querySelectorAll('figure.chart svg rect').length`), float64(50), "step, histogram, segment and canary bars")
	require.Equal(t, "rgb(59, 111, 182)", eval(`getComputedStyle(document.querySelector('figure.chart rect.s0')).fill`), "the stylesheet applies under the CSP")
	b.shoot(t, "run")
	require.Empty(t, b.take(), "run page")

	for _, p := range []struct{ path, name, want string }{
		{"/", "index", "Models"},
		{"/models/demand", "model", "Model demand"},
		{"/models/demand/monitor", "monitor", "Monitoring of demand"},
	} {
		do(chromedp.Navigate(ts.URL + p.path))
		require.Equal(t, p.want, run(chromedp.Text("h1")), p.path)
		b.shoot(t, p.name)
		require.Empty(t, b.take(), p.path)
	}
	do(chromedp.Navigate(ts.URL + "/models/demand"))
	require.EqualValues(t, 2+1+3+1+1+1, eval(`document.querySelectorAll('svg.graph g.node').length`), "2 files, the snapshot, 3 reports, training, the version, its pointer")
	require.Equal(t, "/models/demand/runs/run-2", eval(`document.querySelector('svg.graph a').getAttribute('href')`))
	do(chromedp.Click(`svg.graph a`), chromedp.WaitVisible(`#candidate-mae`))
	require.Equal(t, ts.URL+"/models/demand/runs/run-2", run(chromedp.Location()), "a report node opens its run")

	// A run's trace: a real one, recorded from Jaeger in the end-to-end test
	// (testdata/run-trace.json; docs/testing.md), served by a stand-in of Jaeger's query API.
	raw, err := os.ReadFile("testdata/run-trace.json")
	require.NoError(t, err)
	var asked string
	f.srv.Traces = Jaeger{URL: fakeJaeger(t, string(raw), &asked).URL, Service: "driftline-e2e"}
	tr, err := f.srv.Traces.RunTrace(b.ctx, "")
	require.NoError(t, err)
	runID := ""
	for _, sp := range tr.Spans {
		if sp.Name == "RunWorkflow:ContinuousTraining" {
			runID = sp.RunID
		}
	}
	require.NotEmpty(t, runID)
	do(chromedp.Navigate(ts.URL + "/models/demand/runs/" + runID + "/trace"))
	require.Equal(t, "Trace of run "+runID, run(chromedp.Text("h1")))
	require.Greater(t, eval(`document.querySelectorAll('svg.waterfall g.span').length`), float64(20), "the run's spans")
	require.Equal(t, true, eval(`[...document.querySelectorAll('svg.waterfall text')].some(t => t.textContent === 'RunActivity:Train')`))
	b.shoot(t, "trace")
	require.Empty(t, b.take(), "trace page")

	// The dashboards, drawn from Prometheus's answers to their queries recorded in the
	// end-to-end test (testdata/dashboards.json; docs/testing.md), served by a stand-in of
	// Prometheus's API that answers only the recorded queries. root views every model, so the
	// series of every model together are shown too.
	rec := recordedPrometheus(t)
	f.srv.Metrics = Prometheus{URL: rec.URL}
	do(chromedp.Navigate(ts.URL+"/login"), chromedp.SendKeys(`input[name="token"]`, mint(t, "root")), chromedp.Submit(`form.login`), chromedp.WaitVisible(`form.who span`))
	for _, uid := range []string{"driftline-serving", "driftline-monitoring"} {
		do(chromedp.Navigate(ts.URL + "/dashboards/" + uid + "?model=demand&from=" + rec.from + "&end=" + rec.end))
		require.Equal(t, "root", run(chromedp.Text(`.who span`)))
		require.EqualValues(t, 0, eval(`document.querySelectorAll('p.error').length`), "%s: every recorded query answered", uid)
		require.Greater(t, eval(`document.querySelectorAll('figure.panel svg polyline').length`), float64(4), "%s: the panels draw the run's series", uid)
		require.Equal(t, "rgb(59, 111, 182)", eval(`getComputedStyle(document.querySelector('figure.panel polyline.s0')).stroke`))
		b.shoot(t, "dashboard-"+strings.TrimPrefix(uid, "driftline-"))
		require.Empty(t, b.take(), uid)
	}
	require.Equal(t, true, eval(`[...document.querySelectorAll('ul.legend li')].some(li => li.textContent.startsWith('demand live'))`), "the live MAE series")

	// A page alice may not view: refused with the reason; the refused load is the only
	// thing the browser reports.
	do(chromedp.Navigate(ts.URL+"/login"), chromedp.SendKeys(`input[name="token"]`, mint(t, "alice")), chromedp.Submit(`form.login`), chromedp.WaitVisible(`form.who span`))
	do(chromedp.Navigate(ts.URL + "/models/secret"))
	require.Contains(t, run(chromedp.Text(".error")), "alice may not view model secret")
	for _, p := range b.take() {
		require.Contains(t, p, "403", "only the refused load itself is reported: %s", p)
	}
}

// recorded is a stand-in of Prometheus's range queries answering what the end-to-end test
// recorded (DRIFTLINE_RECORD_DASHBOARDS): the same query, start, end and step, or an error
// naming the query it was not asked in the recording.
type recorded struct {
	URL, from, end string
}

func recordedPrometheus(t *testing.T) recorded {
	raw, err := os.ReadFile("testdata/dashboards.json")
	require.NoError(t, err)
	var rec struct {
		From, End string
		Answers   map[string]json.RawMessage
	}
	require.NoError(t, json.Unmarshal(raw, &rec))
	require.NotEmpty(t, rec.Answers)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := rec.Answers[r.URL.RawQuery]
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": "not_recorded", "error": r.URL.Query().Get("query")})
			return
		}
		_, _ = w.Write(a)
	}))
	t.Cleanup(srv.Close)
	return recorded{URL: srv.URL, from: rec.From, end: rec.End}
}
