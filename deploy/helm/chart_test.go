package helm

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite testdata/default.golden.yaml from the chart")

const chart = "driftline"

// helm is the pinned Helm v4 the Makefile builds into ./bin (HELM overrides).
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin := os.Getenv("HELM")
	if bin == "" {
		abs, err := filepath.Abs("../../bin/helm")
		if err != nil {
			t.Fatal(err)
		}
		bin = abs
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("helm not found at %s: `make tools` builds the pinned Helm v4 into ./bin", bin)
	}
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), nil
}

// valuesFiles are the chart's test matrix: every file of driftline/ci.
func valuesFiles(t *testing.T) []string {
	files, err := filepath.Glob(filepath.Join(chart, "ci", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("the chart is tested over %d values files; keep at least 20", len(files))
	}
	return files
}

// render is `helm template` of the chart with one values file, as release "driftline".
func render(t *testing.T, values string) string {
	t.Helper()
	out, err := helm(t, "template", "driftline", chart, "--namespace", "ml", "-f", values)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTheChartLintsStrictlyWithEveryValuesFile(t *testing.T) {
	for _, f := range valuesFiles(t) {
		if out, err := helm(t, "lint", "--strict", chart, "-f", f); err != nil {
			t.Errorf("%s: %v\n%s", f, err, out)
		}
	}
}

// Every object rendered from every values file decodes strictly (unknown or duplicate fields
// refused) into its Kubernetes API type, or for the custom resources into the fields their
// operators define, and holds to the chart's rules (rules_test.go).
func TestEveryRenderedObjectIsAValidKubernetesObject(t *testing.T) {
	for _, f := range valuesFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			objs := decodeAll(t, render(t, f))
			if len(objs) == 0 {
				t.Fatal("nothing rendered")
			}
			checkRules(t, objs)
		})
	}
}

// The default render is reviewed as a file: a change to what the chart installs shows in the
// diff of testdata/default.golden.yaml (go test -run Golden -update rewrites it).
func TestTheDefaultRenderMatchesTheGoldenFile(t *testing.T) {
	got := render(t, filepath.Join(chart, "ci", "default.yaml"))
	golden := filepath.Join("testdata", "default.golden.yaml")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("the default render differs from %s (go test -run Golden -update to accept):\n%s", golden, firstDifference(string(want), got))
	}
}

func firstDifference(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n  golden: %q\n  render: %q", i+1, a, b)
		}
	}
	return ""
}

// Each file of driftline/ci-bad is refused by the schema or the templates with the message
// its first line names ("# want: ...").
func TestBadValuesAreRefusedWithAMessage(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(chart, "ci-bad", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 15 {
		t.Fatalf("only %d bad values files", len(files))
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(string(raw), "\n")
		want, ok := strings.CutPrefix(first, "# want: ")
		if !ok {
			t.Fatalf("%s: the first line must be # want: <message>", f)
		}
		out, err := helm(t, "template", "driftline", chart, "-f", f)
		if err == nil {
			t.Errorf("%s rendered (%d bytes); want it refused with %q", f, len(out), want)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s refused without naming %q: %v", f, want, err)
		}
	}
}

// The chart carries copies of the Prometheus rules and Grafana dashboards (a chart cannot read
// outside its directory); they must equal the sources the other tests check.
func TestTheChartsRulesAndDashboardsAreTheTestedOnes(t *testing.T) {
	pairs := map[string]string{"../prometheus/rules.yml": "files/prometheus-rules.yml"}
	dashboards, err := filepath.Glob("../grafana/dashboards/*.json")
	if err != nil || len(dashboards) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	for _, d := range dashboards {
		pairs[d] = "files/" + filepath.Base(d)
	}
	for src, cp := range pairs {
		a, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(chart, cp))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s: copy it again (cp %s deploy/helm/driftline/%s)", cp, src, src, cp)
		}
	}
}

// object is one rendered object, decoded.
type object struct {
	kind, name string
	obj        any
	raw        []byte // JSON
}

// decodeAll splits a render into its documents and decodes each strictly.
func decodeAll(t *testing.T, rendered string) []object {
	t.Helper()
	strict := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	var out []object
	for _, doc := range strings.Split(rendered, "\n---") {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		js, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("not YAML: %v\n%s", err, doc)
		}
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(js, &meta); err != nil {
			t.Fatal(err)
		}
		o := object{kind: meta.Kind, name: meta.Metadata.Name, raw: js}
		if custom, ok := customResources[meta.APIVersion+"/"+meta.Kind]; ok {
			o.obj = custom()
			dec := json.NewDecoder(bytes.NewReader(js))
			dec.DisallowUnknownFields()
			if err := dec.Decode(o.obj); err != nil {
				t.Fatalf("%s %s: %v", meta.Kind, meta.Metadata.Name, err)
			}
		} else {
			obj, gvk, err := strict.Decode(js, nil, nil)
			if err != nil {
				t.Fatalf("%s %s (%s) does not decode strictly: %v", meta.Kind, meta.Metadata.Name, meta.APIVersion, err)
			}
			if gvk.Kind != meta.Kind {
				t.Fatalf("decoded %s as %s", meta.Kind, gvk.Kind)
			}
			o.obj = obj
		}
		out = append(out, o)
	}
	return out
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l)
		}
	}
	return b.String()
}
