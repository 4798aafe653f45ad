// Package wasmtest runs the edge runtime's conformance test built for WebAssembly (GOOS=wasip1)
// under wazero, a WebAssembly runtime in Go: a device or a browser host that runs the bundle
// through WebAssembly gets the server's predictions bit for bit too.
package wasmtest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

func TestBitIdenticalUnderWebAssembly(t *testing.T) {
	edgeDir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "edge.wasm")
	build := exec.Command("go", "test", "-c", "-o", bin, ".")
	build.Dir = edgeDir
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build for wasip1: %v\n%s", err, out)
	}
	wasm, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	var out bytes.Buffer
	cfg := wazero.NewModuleConfig().WithStdout(&out).WithStderr(&out).
		WithArgs("edge.test", "-test.run", "^TestPredictionsMatchTheServers$", "-test.v", "-test.count=1").
		WithFSConfig(wazero.NewFSConfig().WithReadOnlyDirMount(edgeDir, "/")).WithEnv("PWD", "/").
		WithSysWalltime().WithSysNanotime().WithRandSource(strings.NewReader(strings.Repeat("x", 1<<16)))
	_, err = r.InstantiateWithConfig(ctx, wasm, cfg)
	if exit, ok := err.(*sys.ExitError); ok && exit.ExitCode() == 0 {
		err = nil
	}
	if err != nil || !strings.Contains(out.String(), "--- PASS: TestPredictionsMatchTheServers") {
		t.Fatalf("under wazero: %v\n%s", err, out.String())
	}
	t.Log(strings.TrimSpace(out.String()))
}
