package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/activities"
	"github.com/driftline/driftline/api"
	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/monitor"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/registry"
)

// --output json: the status query's nested results (the activities' results) come out
// snake_case like the rest, map keys (data: metric and feature names) are
// kept as they are, omitempty is honoured, times are RFC 3339.
func TestJSONOutputIsSnakeCaseEverywhere(t *testing.T) {
	st := pipeline.Status{Model: "demand", CandidateVersion: 3,
		Drift:      &pipeline.DriftResult{ReferenceVersion: 2, Drifted: true, DriftedFeatures: []string{"price"}},
		Evaluation: &pipeline.EvaluateResult{CandidateMAE: 1.5, ChampionMAE: 1.7, Metrics: map[string]float64{"mae": 1.5, "R2": 0.8}},
		Steps:      []pipeline.Step{{Name: "drift", Summary: "drift 0.4"}}}
	var buf bytes.Buffer
	require.NoError(t, writeJSON(&buf, st))
	var out map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &out))
	require.EqualValues(t, 3, out["candidate_version"])
	drift := out["drift"].(map[string]any)
	require.EqualValues(t, 2, drift["reference_version"])
	require.Equal(t, true, drift["drifted"])
	require.Equal(t, []any{"price"}, drift["drifted_features"])
	ev := out["evaluation"].(map[string]any)
	require.EqualValues(t, 1.5, ev["candidate_mae"])
	require.Equal(t, map[string]any{"mae": 1.5, "R2": 0.8}, ev["metrics"], "map keys are data: kept")
	require.NotContains(t, ev, "importance", "omitempty")
	var walk func(v any, path string, inMap bool)
	walk = func(v any, path string, data bool) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if !data {
					require.Equal(t, strings.ToLower(k), k, "%s.%s: snake_case", path, k)
				}
				walk(e, path+"."+k, k == "metrics" || k == "importance")
			}
		case []any:
			for _, e := range x {
				walk(e, path, false)
			}
		}
	}
	walk(out, "status", false)

	buf.Reset()
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	require.NoError(t, writeJSON(&buf, struct {
		At time.Time `json:"at"`
	}{at}))
	require.JSONEq(t, `{"at": "2026-12-01T10:00:00Z"}`, buf.String())
	require.Equal(t, "-", FormatMap(map[string]int{}))
	require.Equal(t, "champion=3, stable=2", FormatMap(map[string]int{"stable": 2, "champion": 3}))
}

// The completion script cobra generates completes in bash (with the bash-completion package,
// as a user's shell has it): commands, a command's own flags
// (asked of the binary through `driftline __complete`), and a subcommand's flags only its own.
func TestCompletionScriptCompletes(t *testing.T) {
	bin := stack.BuildDriftline(t)
	script, err := exec.Command(bin, "completion", "bash").Output()
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "driftline.bash")
	require.NoError(t, os.WriteFile(path, script, 0o600))
	complete := func(words ...string) string {
		t.Helper()
		arr := "(" + strings.Join(words, " ") + ")"
		cmd := exec.Command("bash", "-c", "source /usr/share/bash-completion/bash_completion; source "+path+"; COMP_WORDS="+arr+"; COMP_CWORD="+strconv.Itoa(len(words)-1)+
			"; COMP_LINE='"+strings.Join(words, " ")+"'; COMP_POINT=${#COMP_LINE}; __start_driftline; echo ${COMPREPLY[@]}")
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		require.NoError(t, err, "%s", stderr.String())
		// bash says so when compopt runs outside a completion, as it does here; nothing else.
		require.Empty(t, regexp.MustCompile(`(?m)^.*: compopt: not currently executing completion function\n`).ReplaceAllString(stderr.String(), ""))
		return strings.TrimSpace(string(out))
	}
	require.Equal(t, "status", complete("driftline", "sta"))
	require.Equal(t, "models monitor", complete("driftline", "mo"))
	require.Equal(t, "--output", complete("driftline", "status", "--ou"))
	require.Equal(t, "--online --online-store", complete("driftline", "features", "get", "--onl"))
	require.Empty(t, complete("driftline", "features", "get", "--chu"), "materialize's --chunk is not get's")
}

// Every struct --output json prints, and every struct inside it, names each exported field
// with a snake_case json tag (embedded structs lend theirs): the JSON is snake_case by the
// types' own declarations, nothing rewrites it on the way out.
func TestEveryPrintedTypeHasSnakeCaseTags(t *testing.T) {
	snake := regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	seen := map[reflect.Type]bool{}
	var walk func(ty reflect.Type, path string)
	walk = func(ty reflect.Type, path string) {
		for ty.Kind() == reflect.Pointer || ty.Kind() == reflect.Slice || ty.Kind() == reflect.Array || ty.Kind() == reflect.Map {
			ty = ty.Elem()
		}
		if ty.Kind() != reflect.Struct || seen[ty] || ty == reflect.TypeFor[time.Time]() {
			return
		}
		seen[ty] = true
		for i := range ty.NumField() {
			f := ty.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case name == "-" || (!f.IsExported() && !f.Anonymous):
				continue
			case f.Anonymous && name == "":
			default:
				require.Regexp(t, snake, name, "%s.%s (%s) prints as %q", ty, f.Name, path, name)
			}
			walk(f.Type, path+"."+f.Name)
		}
	}
	for _, v := range []any{pipeline.Status{}, pipeline.MonitorStatus{}, api.ModelResponse{}, api.VersionResponse{}, []audit.Record{},
		registry.Version{}, drift.Report{}, activities.DriftReport{}, monitor.Report{}, []alertRule{}, featureVector{}} {
		walk(reflect.TypeOf(v), reflect.TypeOf(v).String())
	}
	require.Greater(t, len(seen), 40, "the walk reached the nested types")
}
