package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/driftline/driftline/"

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// list runs go list over the module's packages (tests excluded: they may import anything).
func list(t *testing.T) map[string]pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,Deps", "./...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	pkgs := map[string]pkg{}
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs[strings.TrimPrefix(p.ImportPath, mod)] = p
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages", len(pkgs))
	}
	return pkgs
}

func matches(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// The shared types, the workflows and their clients link no trainer, Parquet or S3: a
// workflow or CLI change never relinks them, and a workflow cannot reach
// I/O by accident.
func TestWorkflowsAndClientsLinkNoTrainerParquetOrS3(t *testing.T) {
	pkgs := list(t)
	heavy := []string{"github.com/parquet-go/parquet-go", "github.com/aws/aws-sdk-go-v2", mod + "model", mod + "training",
		mod + "evaluate", mod + "dataset", mod + "objstore/s3store", mod + "ingest"}
	for _, name := range []string{"pipeline", "workflows", "starter"} {
		p, ok := pkgs[name]
		if !ok {
			t.Fatalf("no package %s", name)
		}
		for _, d := range p.Deps {
			if matches(d, heavy) && d != mod+"model/hparams" {
				t.Errorf("%s links %s", name, d)
			}
		}
	}
	for _, d := range pkgs["pipeline"].Deps {
		if strings.HasPrefix(d, "go.temporal.io/") {
			t.Errorf("pipeline links %s: the shared types must not need Temporal", d)
		}
	}
}

// A domain package never imports Temporal, HTTP or a front end (docs/architecture.md).
func TestDomainPackagesImportNoTemporalHTTPOrFrontEnd(t *testing.T) {
	pkgs := list(t)
	front := []string{"go.temporal.io", "net/http", mod + "cmd", mod + "api", mod + "serving", mod + "activities", mod + "worker",
		mod + "starter", mod + "workflows", mod + "console"}
	for _, name := range []string{"training", "evaluate", "canary", "monitor", "drift", "model", "model/hparams", "dataset", "contract",
		"spec", "registry", "predlog", "audit", "pipeline"} {
		p, ok := pkgs[name]
		if !ok {
			t.Fatalf("no package %s", name)
		}
		for _, imp := range p.Imports {
			if matches(imp, front) {
				t.Errorf("%s imports %s", name, imp)
			}
		}
	}
}

// The production binary carries no demo and no development broker: those are
// cmd/driftline-dev's (internal/devcli), and franz-go's kfake links only there.
func TestTheProductionBinaryLinksNoDemoOrDevelopmentBroker(t *testing.T) {
	pkgs := list(t)
	prod, ok := pkgs["cmd/driftline"]
	if !ok {
		t.Fatal("go list found no cmd/driftline")
	}
	for _, d := range prod.Deps {
		if d == mod+"internal/devcli" || strings.HasPrefix(d, "github.com/twmb/franz-go/pkg/kfake") || strings.HasPrefix(d, "github.com/twmb/franz-go/pkg/sr/srfake") {
			t.Errorf("cmd/driftline links %s", d)
		}
	}
	dev := pkgs["cmd/driftline-dev"]
	if !matches(mod+"internal/devcli", dev.Deps) {
		t.Error("cmd/driftline-dev does not link internal/devcli")
	}
}
