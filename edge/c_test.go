package edge_test

import (
	"crypto/ed25519"
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/driftline/driftline/edge"
	"github.com/driftline/driftline/edge/edgetest"
)

// The C99 header (edge/c/driftline_edge.h), compiled by gcc as ISO C99 with every warning,
// gives the server's predictions bit for bit over each fixture's 1,000,000 rows.
func TestTheCHeader(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Fatal("gcc not found: `make tools` installs Debian's gcc")
	}
	dir := t.TempDir()
	prog := filepath.Join(dir, "conformance")
	if out, err := exec.Command(gcc, "-std=c99", "-O2", "-Wall", "-Wextra", "-pedantic", "-Werror", "-o", prog, "c/conformance.c", "-lm").CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	want, rows, pub := fixtures(t)
	for name, digest := range want {
		bundle := filepath.Join("testdata", name+".bundle")
		data, err := os.ReadFile(bundle)
		if err != nil {
			t.Fatal(err)
		}
		m, err := edge.Load(data, edge.Options{Keys: []ed25519.PublicKey{pub}})
		if err != nil {
			t.Fatal(err)
		}
		x := edgetest.Rows(m.Features(), rows, 1)
		raw := make([]byte, 8*len(x))
		for i, v := range x {
			binary.LittleEndian.PutUint64(raw[8*i:], math.Float64bits(v))
		}
		in, out := filepath.Join(dir, "rows"), filepath.Join(dir, "pred")
		if err := os.WriteFile(in, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		if msg, err := exec.Command(prog, bundle, in, out).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, msg)
		}
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		pred := make([]float64, len(got)/8)
		for i := range pred {
			pred[i] = math.Float64frombits(binary.LittleEndian.Uint64(got[8*i:]))
		}
		if len(pred) != rows || edgetest.Digest(pred) != digest {
			t.Errorf("%s: the C runtime's %d predictions differ from the server's", name, len(pred))
		}
	}
}
