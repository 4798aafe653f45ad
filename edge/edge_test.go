package edge_test

import (
	"bufio"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/driftline/driftline/edge"
	"github.com/driftline/driftline/edge/edgetest"
)

// fixtures are testdata's bundles with the digest of the server's predictions over their
// rows (model.TestEdgeFixturesAreTheServersPredictions checks the digests are the server's).
func fixtures(t *testing.T) (map[string]string, int, ed25519.PublicKey) {
	t.Helper()
	raw, err := os.ReadFile("testdata/test-key.pub")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("testdata/expected.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out, rows := map[string]string{}, 0
	s := bufio.NewScanner(f)
	for s.Scan() {
		var name, digest string
		if _, err := fmt.Sscanf(s.Text(), "%s %d %s", &name, &rows, &digest); err != nil {
			t.Fatal(err)
		}
		out[name] = digest
	}
	if len(out) != 5 {
		t.Fatalf("%d fixtures", len(out))
	}
	return out, rows, ed25519.PublicKey(pub)
}

// On this CPU, every fixture bundle's predictions over its 1,000,000 rows are the server's,
// bit for bit (their SHA-256).
func TestPredictionsMatchTheServers(t *testing.T) {
	want, rows, pub := fixtures(t)
	for name, digest := range want {
		data, err := os.ReadFile(filepath.Join("testdata", name+".bundle"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := edge.Load(data, edge.Options{Keys: []ed25519.PublicKey{pub}})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		x := edgetest.Rows(m.Features(), rows, 1)
		pred := make([]float64, rows)
		if err := m.PredictBatch(x, pred); err != nil {
			t.Fatal(err)
		}
		if got := edgetest.Digest(pred); got != digest {
			t.Errorf("%s on %s/%s: predictions digest %s, the server's %s", name, runtime.GOOS, runtime.GOARCH, got, digest)
		}
	}
}

// The same test, built for the other CPUs (linux/amd64, linux/arm64, linux/arm with GOARM=7,
// linux/riscv64, less the one running it) and run under Debian's qemu-user-static: the
// runtime answers bit for bit as the server on each.
func TestBitIdenticalOnOtherCPUs(t *testing.T) {
	targets := []struct{ arch, qemu string }{{"amd64", "qemu-x86_64-static"}, {"arm64", "qemu-aarch64-static"},
		{"arm", "qemu-arm-static"}, {"riscv64", "qemu-riscv64-static"}}
	for _, target := range targets {
		if target.arch == runtime.GOARCH {
			continue // TestPredictionsMatchTheServers runs here natively
		}
		t.Run(target.arch, func(t *testing.T) {
			t.Parallel()
			qemu, err := exec.LookPath(target.qemu)
			if err != nil {
				t.Fatalf("%s not found: `make tools` installs Debian's qemu-user-static", target.qemu)
			}
			bin := filepath.Join(t.TempDir(), "edge.test")
			build := exec.Command("go", "test", "-c", "-o", bin, ".")
			build.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+target.arch, "GOARM=7", "CGO_ENABLED=0")
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("build for %s: %v\n%s", target.arch, err, out)
			}
			out, err := exec.Command(qemu, bin, "-test.run", "^TestPredictionsMatchTheServers$", "-test.v", "-test.count=1").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "--- PASS: TestPredictionsMatchTheServers") {
				t.Fatalf("under %s: %v\n%s", target.qemu, err, out)
			}
		})
	}
}

// signed makes a small two-feature tree bundle (a numeric and a categorical split) with key.
func signed(t testing.TB, key ed25519.PrivateKey, counter uint64) []byte {
	t.Helper()
	body, err := edge.Encode(edge.Body{Kind: edge.KindTrees, Base: 1.5, Scale: 0.25,
		Features: []edge.Feature{{Name: "a", Cuts: []float64{-1, 0, 2.5}, Min: math.NaN(), Max: math.NaN()}, {Name: "b", Categorical: true, Min: 0, Max: 10}},
		Trees: []edge.Tree{{
			Feature: []uint16{0, 1, 0, 0, 0}, Index: []uint16{2, 0, 0, 0, 0}, DefaultLeft: []bool{true, false, false, false, false},
			Left: []int32{1, 3, -1, -1, -1}, Right: []int32{2, 4, -1, -1, -1}, Leaf: []int8{0, 0, 9, -4, 7},
			CatLeft: [][4]uint64{{}, {1<<3 | 1<<5}, {}, {}, {}},
		}}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := edge.Seal(edge.Manifest{Model: "m", Version: 3, Counter: counter, Features: []string{"a", "b"}, Kind: "int8"}, body, key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAHandMadeTreePredictsWhatItSays(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	m, err := edge.Load(signed(t, key, 5), edge.Options{Keys: []ed25519.PublicKey{pub}, Features: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		a, b float64
		leaf int
	}{
		{-5, 2, -4},                  // a <= 0 (bin <= 2): left; b = 2 (bin 3) in the set: left
		{0, 4, -4},                   // a at the threshold goes left; b = 4 (bin 5) in the set
		{0, 3, 7},                    // b = 3 (bin 4) not in the set: right
		{math.Nextafter(0, 1), 2, 9}, // one ulp above the threshold: right
		{math.NaN(), 300, 7},         // missing a: default left; unseen b (bin 255): right
		{math.Inf(1), 2, 9},
	} {
		got, err := m.Predict([]float64{c.a, c.b})
		if err != nil {
			t.Fatal(err)
		}
		if want := 1.5 + 0.25*float64(c.leaf); got != want {
			t.Errorf("a=%v b=%v: %v, want %v", c.a, c.b, got, want)
		}
	}
	if _, err := m.Predict([]float64{1}); err == nil || !strings.Contains(err.Error(), "a row of 1 values for 2 features") {
		t.Errorf("short row: %v", err)
	}
}

// Refused at load, each naming why: a bad signature (any byte altered), a truncated file (any
// length), an untrusted key, a counter older than the installed one, another feature order,
// another format version.
func TestBundlesAreRefused(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	b := signed(t, key, 5)
	keys := []ed25519.PublicKey{pub}
	for i := range b {
		altered := append([]byte(nil), b...)
		altered[i] ^= 0x20
		if _, err := edge.Load(altered, edge.Options{Keys: keys}); err == nil {
			t.Fatalf("byte %d altered: loaded", i)
		}
	}
	for n := range len(b) {
		if _, err := edge.Load(b[:n], edge.Options{Keys: keys}); err == nil {
			t.Fatalf("truncated to %d bytes: loaded", n)
		}
	}
	other, _, _ := ed25519.GenerateKey(nil)
	for _, c := range []struct {
		data []byte
		o    edge.Options
		want string
	}{
		{b[:len(b)-1], edge.Options{Keys: keys}, "truncated or padded"},
		{append(append([]byte(nil), b[:40]...), b[41:]...), edge.Options{Keys: keys}, "edge bundle refused"},
		{b, edge.Options{Keys: []ed25519.PublicKey{other}}, "which this device does not trust"},
		{b, edge.Options{Keys: keys, Installed: 6}, "bundle counter 5 is older than the installed 6"},
		{b, edge.Options{Keys: keys, Features: []string{"b", "a"}}, `feature order differs at position 0: the bundle has "a", the device sends "b"`},
		{b, edge.Options{Keys: keys, Features: []string{"a"}}, `position 1: the bundle has "b", the device sends ""`},
		{append([]byte("DLEDGE\x02\x00"), b[8:]...), edge.Options{Keys: keys}, "format version 2 at offset 6"},
		{[]byte("PK\x03\x04 not a bundle"), edge.Options{Keys: keys}, "not an edge bundle"},
	} {
		if _, err := edge.Load(c.data, c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want %q, got %v", c.want, err)
		}
	}
	// The same counter again is accepted (a reinstall), a newer one too.
	for _, installed := range []uint64{0, 5} {
		if _, err := edge.Load(b, edge.Options{Keys: keys, Installed: installed}); err != nil {
			t.Errorf("installed %d: %v", installed, err)
		}
	}
	// A key rotation: the device trusts the old and the new key during the switch.
	if _, err := edge.Load(b, edge.Options{Keys: []ed25519.PublicKey{other, pub}}); err != nil {
		t.Errorf("two trusted keys: %v", err)
	}
}

// A body that is signed but malformed (a registry bug, not an attacker: the signature holds)
// is refused with the offset, never a panic or a walk that does not end.
func FuzzSignedBody(f *testing.F) {
	_, key, _ := ed25519.GenerateKey(nil)
	pub := key.Public().(ed25519.PublicKey)
	good := signed(f, key, 1)
	man, body, err := edge.Open(good, []ed25519.PublicKey{pub})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(body)
	f.Add(body[:len(body)/2])
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := edge.Seal(man, body, key)
		if err != nil {
			t.Fatal(err)
		}
		m, err := edge.Load(b, edge.Options{Keys: []ed25519.PublicKey{pub}})
		if err != nil {
			return
		}
		for _, x := range [][]float64{{0, 0}, {math.NaN(), math.NaN()}, {1e9, 200}, {-1e9, -3}} {
			_, _ = m.Predict(x)
		}
	})
}

// Exp is within two units in the last place of math.Exp (itself within one of e^x) over the
// range a prediction meets.
func TestExpIsAccurate(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	check := func(x float64) {
		got, want := edge.Exp(x), math.Exp(x)
		if got == want || (math.IsNaN(got) && math.IsNaN(want)) {
			return
		}
		ulp := math.Abs(math.Nextafter(want, math.Inf(1)) - want)
		if math.Abs(got-want) > 2*ulp {
			t.Fatalf("Exp(%v) = %v, math.Exp %v", x, got, want)
		}
	}
	for range 2_000_000 {
		check((r.Float64()*2 - 1) * 745)
		check((r.Float64()*2 - 1) * 40)
	}
	for _, x := range []float64{0, math.Copysign(0, -1), 1e-300, -1e-300, 709.78, 709.79, -745.13, -745.14, math.Inf(1), math.Inf(-1), math.NaN()} {
		check(x)
	}
}
