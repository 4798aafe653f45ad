package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/driftline/driftline/edge"
)

// bundle makes a one-feature bundle whose prediction is base (one leaf of 0).
func bundle(t *testing.T, key ed25519.PrivateKey, version int, counter uint64, base float64) []byte {
	t.Helper()
	body, err := edge.Encode(edge.Body{Kind: edge.KindTrees, Base: base, Scale: 1,
		Features: []edge.Feature{{Name: "x", Cuts: []float64{0}, Min: math.NaN(), Max: math.NaN()}},
		Trees: []edge.Tree{{Feature: []uint16{0, 0, 0}, Index: []uint16{1, 0, 0}, DefaultLeft: []bool{false, false, false},
			Left: []int32{1, -1, -1}, Right: []int32{2, -1, -1}, Leaf: []int8{0, 0, 1}}}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := edge.Seal(edge.Manifest{Model: "demand", Version: version, Counter: counter, Features: []string{"x"}, Kind: "trees"}, body, key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func predict(t *testing.T, s *Store, x float64) float64 {
	t.Helper()
	p, err := s.Model().Predict([]float64{x})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Installs are atomic and survive a restart; an older counter is refused, even after the
// device rolled back to its previous bundle; a corrupted current bundle falls back to the
// previous one on start.
func TestInstallKeepsTheLastGoodBundle(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	dir := t.TempDir()
	s := &Store{Dir: dir, Keys: []ed25519.PublicKey{pub}, Features: []string{"x"}}
	if err := s.Open(); err != nil || s.Model() != nil {
		t.Fatalf("an empty directory: %v, %v", err, s.Model())
	}
	if _, err := s.Install(bundle(t, key, 1, 1, 10)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Install(bundle(t, key, 2, 2, 20)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Install(bundle(t, key, 2, 2, 20)); err != nil {
		t.Fatalf("the same bundle again: %v", err)
	}
	if _, err := s.Install(bundle(t, key, 1, 1, 10)); err == nil || !strings.Contains(err.Error(), "older than the installed 2") {
		t.Fatalf("an older bundle: %v", err)
	}
	again := &Store{Dir: dir, Keys: s.Keys, Features: s.Features}
	if err := again.Open(); err != nil || predict(t, again, -1) != 20 || again.Counter() != 2 {
		t.Fatalf("after a restart: %v", err)
	}
	if err := again.RollBack(); err != nil || predict(t, again, -1) != 10 || again.Counter() != 1 || again.Highest() != 2 {
		t.Fatalf("rolled back: %v counter %d highest %d", err, again.Counter(), again.Highest())
	}
	if _, err := again.Install(bundle(t, key, 1, 1, 10)); err == nil {
		t.Fatal("after a rollback, the rolled-back-to counter is still below the highest installed")
	}
	if _, err := again.Install(bundle(t, key, 3, 3, 30)); err != nil {
		t.Fatal(err)
	}
	// A current bundle corrupted on disk: the next start loads the previous one.
	if err := os.WriteFile(filepath.Join(dir, currentFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	third := &Store{Dir: dir, Keys: s.Keys, Features: s.Features}
	if err := third.Open(); err != nil || third.Model().Manifest.Version != 1 || third.Highest() != 3 {
		t.Fatalf("fallback: %v", err)
	}
	// A bundle signed by another key never installs.
	_, other, _ := ed25519.GenerateKey(nil)
	if _, err := third.Install(bundle(t, other, 4, 4, 40)); err == nil || !strings.Contains(err.Error(), "does not trust") {
		t.Fatalf("foreign key: %v", err)
	}
}

// The agent follows its source: an unchanged bundle costs a 304, a new one is installed, a
// source that is down is retried with backoff and followed again when it is back.
func TestFollowInstallsWhatTheSourceServes(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	var (
		mu       sync.Mutex
		current  = bundle(t, key, 1, 1, 10)
		down     atomic.Bool
		notMod   atomic.Int32
		requests atomic.Int32
	)
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("Authorization") != "Bearer device-7" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		b := current
		mu.Unlock()
		etag := `"` + edge.KeyID(ed25519.PublicKey(b[len(b)-32:])) + `"`
		if r.Header.Get("If-None-Match") == etag {
			notMod.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		_, _ = w.Write(b)
	}))
	defer src.Close()
	s := &Store{Dir: t.TempDir(), Keys: []ed25519.PublicKey{pub}}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var failures atomic.Int32
	go Follow(ctx, &Fetcher{URL: src.URL, Token: "device-7"}, s, 20*time.Millisecond, func(_ bool, err error) {
		if err != nil {
			failures.Add(1)
		}
	})
	waitFor(t, func() bool { return s.Model() != nil && s.Model().Manifest.Version == 1 && notMod.Load() > 2 }, "v1 installed, then 304s")
	mu.Lock()
	current = bundle(t, key, 2, 2, 20)
	mu.Unlock()
	waitFor(t, func() bool { return s.Model().Manifest.Version == 2 }, "v2 installed")
	down.Store(true)
	waitFor(t, func() bool { return failures.Load() >= 2 }, "failures reported while the source is down")
	before := requests.Load()
	time.Sleep(300 * time.Millisecond)
	if n := requests.Load() - before; n > 5 {
		t.Errorf("%d requests in 300 ms while down: no backoff", n)
	}
	down.Store(false)
	mu.Lock()
	current = bundle(t, key, 3, 3, 30)
	mu.Unlock()
	waitFor(t, func() bool { return s.Model().Manifest.Version == 3 }, "v3 installed once the source is back")
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting: %s", what)
}

func TestBackoffDoublesToItsCapWithJitter(t *testing.T) {
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 10: time.Minute} {
		for range 50 {
			d := Backoff(n, time.Second, time.Minute)
			if d < want/2 || d > want {
				t.Fatalf("failure %d: %v, want within [%v, %v]", n, d, want/2, want)
			}
		}
	}
}

// The local port answers predictions with the installed model, 503 before one is installed,
// 400 naming a bad row.
func TestTheLocalPortAnswers(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	s := &Store{Dir: t.TempDir(), Keys: []ed25519.PublicKey{pub}}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(s, nil, nil))
	defer srv.Close()
	post := func(body string) (int, map[string]any) {
		resp, err := http.Post(srv.URL+"/predict", "application/json", bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if code, _ := post(`{"rows": [[1]]}`); code != http.StatusServiceUnavailable {
		t.Fatalf("before install: %d", code)
	}
	if _, err := s.Install(bundle(t, key, 1, 1, 10)); err != nil {
		t.Fatal(err)
	}
	// null is a missing value: this tree sends it right (not default-left).
	code, out := post(`{"rows": [[-1], [5], [null]]}`)
	preds, _ := out["predictions"].([]any)
	if code != http.StatusOK || len(preds) != 3 || preds[0] != 10.0 || preds[1] != 11.0 || preds[2] != 11.0 || out["version"] != 1.0 {
		t.Fatalf("predictions: %d %v", code, out)
	}
	if code, out := post(`{"rows": [[1, 2]]}`); code != http.StatusBadRequest || !strings.Contains(out["error"].(string), "a row of 2 values for 1 features") {
		t.Fatalf("bad row: %d %v", code, out)
	}
	if code, _ := post(`{"rowz": []}`); code != http.StatusBadRequest {
		t.Fatalf("unknown field: %d", code)
	}
}

// The log keeps at most MaxSegments closed segments; beyond, records are counted as dropped,
// not kept; a restart continues the numbering after the segments left on disk, and after
// every segment was uploaded and deleted too (the receiver keeps a number's first content, so
// a number used again would be refused for ever).
func TestTheLogIsBounded(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	l.SegmentRecords, l.MaxSegments = 2, 3
	var errs int
	for i := range 10 {
		if err := l.Append(Record{Kind: "label", ID: fmt.Sprint(i)}); err != nil {
			errs++
		}
	}
	segs, _ := l.segments()
	if len(segs) != 3 || l.Dropped() != 4 || errs != 2 {
		t.Fatalf("segments %v, dropped %d, errors %d", segs, l.Dropped(), errs)
	}
	again, err := OpenLog(dir)
	if err != nil || again.next != 3 {
		t.Fatalf("reopened: next %d, %v", again.next, err)
	}
	for _, n := range segs { // what Upload does once the receiver has them
		if err := os.Remove(filepath.Join(dir, fmt.Sprintf("%020d.jsonl", n))); err != nil {
			t.Fatal(err)
		}
	}
	emptied, err := OpenLog(dir)
	if err != nil || emptied.next != 3 {
		t.Fatalf("reopened after every segment was uploaded: next %d, %v", emptied.next, err)
	}
}
