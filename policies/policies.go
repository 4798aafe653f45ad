// Package policies embeds Driftline's Rego policies (governance as code) and evaluates them
// with OPA, compiled once at start.
package policies

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/rego"
)

//go:embed *.rego
var files embed.FS

// Sources returns the embedded policy modules (tests included) by file name.
func Sources() (map[string]string, error) {
	out := map[string]string{}
	err := fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(path)
		out[path] = string(b)
		return err
	})
	return out, err
}

// Revision is the SHA-256 of every policy file, recorded with each decision.
func Revision() (string, error) {
	src, err := Sources()
	if err != nil {
		return "", err
	}
	names := make([]string, 0, len(src))
	for n := range src {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%s\x00", n, src[n])
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// Decision is a policy's answer.
type Decision struct {
	Allow            bool     `json:"allow"`
	ApprovalRequired bool     `json:"approval_required"`
	Reasons          []string `json:"reasons"`
	Revision         string   `json:"policy_revision"`
}

// Engine holds the compiled promotion policy.
type Engine struct {
	promotion rego.PreparedEvalQuery
	revision  string
}

// NewEngine compiles the embedded policies once.
func NewEngine(ctx context.Context) (*Engine, error) {
	src, err := Sources()
	if err != nil {
		return nil, err
	}
	opts := []func(*rego.Rego){rego.Query("data.driftline.promotion.decision")}
	for name, body := range src {
		if strings.HasSuffix(name, "_test.rego") {
			continue
		}
		opts = append(opts, rego.Module(name, body))
	}
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("compile policies: %w", err)
	}
	rev, err := Revision()
	if err != nil {
		return nil, err
	}
	return &Engine{promotion: pq, revision: rev}, nil
}

// Revision is the compiled bundle's revision.
func (e *Engine) Revision() string { return e.revision }

// Promotion evaluates the promotion policy. input is any JSON-encodable value.
func (e *Engine) Promotion(ctx context.Context, input any) (Decision, error) {
	// Round-trip through JSON so Go structs reach Rego with their json field names.
	raw, err := json.Marshal(input)
	if err != nil {
		return Decision{}, err
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return Decision{}, err
	}
	rs, err := e.promotion.Eval(ctx, rego.EvalInput(doc))
	if err != nil {
		return Decision{}, fmt.Errorf("evaluate promotion policy: %w", err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return Decision{}, fmt.Errorf("promotion policy: no decision (%d results)", len(rs))
	}
	out, err := json.Marshal(rs[0].Expressions[0].Value)
	if err != nil {
		return Decision{}, err
	}
	var d Decision
	if err := json.Unmarshal(out, &d); err != nil {
		return Decision{}, fmt.Errorf("promotion policy: malformed decision: %w", err)
	}
	d.Revision = e.revision
	return d, nil
}
