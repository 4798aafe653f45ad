package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/driftline/driftline/edge"
)

// The standalone agent, built and run as a process: it installs the bundle its source serves,
// answers predictions on its port, and exits cleanly on SIGTERM.
func TestTheStandaloneAgentServesItsBundle(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	body, err := edge.Encode(edge.Body{Kind: edge.KindLinear, Base: 2, Scale: 1, Weights: []int8{3},
		Features: []edge.Feature{{Name: "x", Min: math.NaN(), Max: math.NaN()}}, Means: []float64{1}, Scales: []float64{2}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := edge.Seal(edge.Manifest{Model: "demand", Version: 4, Counter: 4, Features: []string{"x"}, Kind: "linear"}, body, key)
	if err != nil {
		t.Fatal(err)
	}
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(b) }))
	defer src.Close()
	dir := t.TempDir()
	bin := filepath.Join(dir, "driftline-edge")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	keys := filepath.Join(dir, "keys")
	if err := os.WriteFile(keys, []byte(hex.EncodeToString(pub)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "-source", src.URL, "-keys", keys, "-dir", filepath.Join(dir, "state"), "-listen", addr, "-poll", "100ms")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var got struct{ Predictions []float64 }
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Post("http://"+addr+"/predict", "application/json", bytes.NewBufferString(`{"rows": [[5]]}`))
		if err == nil {
			ok := resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&got) == nil
			resp.Body.Close()
			if ok {
				break
			}
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("the agent never answered")
		}
	}
	if len(got.Predictions) != 1 || got.Predictions[0] != 8 { // 2 + 1 * 3 * (5 - 1) / 2
		t.Fatalf("predictions %v", got.Predictions)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}
