package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/edge"
)

// `driftline edge` follows its source, installs the bundle it verifies and answers on its
// local port; it refuses to start without trusted keys, naming the flag.
func TestTheEdgeAgentServesTheBundleItFollows(t *testing.T) {
	pub, key, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	body, err := edge.Encode(edge.Body{Kind: edge.KindLinear, Base: 1, Scale: 0.5, Weights: []int8{4},
		Features: []edge.Feature{{Name: "x", Min: math.NaN(), Max: math.NaN()}}, Means: []float64{0}, Scales: []float64{1}})
	require.NoError(t, err)
	b, err := edge.Seal(edge.Manifest{Model: "demand", Version: 7, Counter: 9, Features: []string{"x"}, Kind: "linear"}, body, key)
	require.NoError(t, err)
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(b) }))
	defer src.Close()
	var uploaded atomic.Int32
	reports := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		uploaded.Add(int32(bytes.Count(body, []byte("\n"))))
		w.WriteHeader(http.StatusCreated)
	}))
	defer reports.Close()
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	require.NoError(t, os.WriteFile(keys, []byte("# the registry's key\n"+hex.EncodeToString(pub)+"\n"), 0o600))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Execute(ctx, []string{"edge", "--source", src.URL, "--keys", keys, "--dir", filepath.Join(dir, "state"), "--listen", addr, "--poll", "50ms",
			"--report-url", reports.URL})
	}()
	var got struct {
		Predictions []float64 `json:"predictions"`
		Version     int       `json:"version"`
	}
	require.Eventually(t, func() bool {
		resp, err := http.Post("http://"+addr+"/predict", "application/json", bytes.NewBufferString(`{"rows": [[2]], "ids": ["sale-1"]}`))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&got) == nil
	}, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, []float64{5}, got.Predictions, "1 + 0.5 * 4 * (2 - 0) / 1")
	require.Equal(t, 7, got.Version)
	resp, err := http.Post("http://"+addr+"/label", "application/json", bytes.NewBufferString(`{"id": "sale-1", "label": 4.5}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Eventually(t, func() bool { return uploaded.Load() >= 2 }, 10*time.Second, 20*time.Millisecond, "the prediction and the label are uploaded")
	cancel()
	require.NoError(t, <-done)
	_, err = os.Stat(filepath.Join(dir, "state", "current.bundle"))
	require.NoError(t, err, "the bundle is installed on disk")

	for args, want := range map[string]string{
		fmt.Sprint("--source ", src.URL):                  "--keys is required",
		fmt.Sprint("--source ", src.URL, " --keys ", dir): "--keys",
	} {
		err := Execute(context.Background(), append([]string{"edge"}, splitArgs(args)...))
		require.ErrorContains(t, err, want)
	}
}

func splitArgs(s string) []string {
	var out []string
	for _, f := range bytes.Fields([]byte(s)) {
		out = append(out, string(f))
	}
	return out
}
