package policies

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"gopkg.in/yaml.v3"
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
	Allow            bool `json:"allow"`
	ApprovalRequired bool `json:"approval_required"`
	ServeQuantized   bool `json:"serve_quantized"`
	// DistinctApprover: the organisation requires an approver other than the run's requester.
	DistinctApprover bool `json:"distinct_approver"`
	// BreakGlass: decisions without the API's attestation may be accepted (the spec asks for
	// it and no organisation floor refuses it).
	BreakGlass bool     `json:"break_glass"`
	Reasons    []string `json:"reasons"`
	Revision   string   `json:"policy_revision"`
}

// RBAC maps identities to roles per model (examples/rbac.yaml).
type RBAC struct {
	Roles       map[string][]string `yaml:"roles" json:"roles"`
	Bindings    []Binding           `yaml:"bindings" json:"bindings"`
	ModelGroups map[string][]string `yaml:"model_groups" json:"model_groups"`
	// Organisation holds the floors every spec of the models they name must keep
	// (organisation.rego): a spec may tighten them, never loosen them.
	Organisation []Floor `yaml:"organisation" json:"organisation,omitempty"`
}

// Floor is one organisation rule over a set of models (organisation.rego documents each field).
type Floor struct {
	Models             []string     `yaml:"models" json:"models"`
	Approval           string       `yaml:"approval,omitempty" json:"approval,omitempty"`
	DistinctApprover   bool         `yaml:"distinct_approver,omitempty" json:"distinct_approver,omitempty"`
	BreakGlass         *bool        `yaml:"break_glass,omitempty" json:"break_glass,omitempty"`
	MaxRegression      *float64     `yaml:"max_regression,omitempty" json:"max_regression,omitempty"`
	MinDisparateImpact *float64     `yaml:"min_disparate_impact,omitempty" json:"min_disparate_impact,omitempty"`
	Canary             *CanaryFloor `yaml:"canary,omitempty" json:"canary,omitempty"`
}

// CanaryFloor bounds a spec's canary guardrails.
type CanaryFloor struct {
	MinRequests          *int     `yaml:"min_requests,omitempty" json:"min_requests,omitempty"`
	MinLabels            *int     `yaml:"min_labels,omitempty" json:"min_labels,omitempty"`
	MinSteps             *int     `yaml:"min_steps,omitempty" json:"min_steps,omitempty"`
	MaxErrorRateDelta    *float64 `yaml:"max_error_rate_delta,omitempty" json:"max_error_rate_delta,omitempty"`
	MaxP99LatencyDeltaMs *float64 `yaml:"max_p99_latency_delta_ms,omitempty" json:"max_p99_latency_delta_ms,omitempty"`
	MaxMAERegression     *float64 `yaml:"max_mae_regression,omitempty" json:"max_mae_regression,omitempty"`
	MAEAlpha             *float64 `yaml:"mae_alpha,omitempty" json:"mae_alpha,omitempty"`
}

// Binding gives a subject ("user:<id>" or "group:<name>") a role on models ("*", a model,
// or "group:<model group>").
type Binding struct {
	Subject string   `yaml:"subject" json:"subject"`
	Role    string   `yaml:"role" json:"role"`
	Models  []string `yaml:"models" json:"models"`
}

// LoadRBAC reads and checks an RBAC file.
func LoadRBAC(path string) (RBAC, error) {
	var r RBAC
	b, err := os.ReadFile(path)
	if err != nil {
		return r, fmt.Errorf("read rbac: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("rbac %s: %w", path, err)
	}
	for i, bd := range r.Bindings {
		if !strings.HasPrefix(bd.Subject, "user:") && !strings.HasPrefix(bd.Subject, "group:") {
			return r, fmt.Errorf("rbac %s: bindings[%d].subject %q must start with \"user:\" or \"group:\" prefix", path, i, bd.Subject)
		}
		if _, ok := r.Roles[bd.Role]; !ok {
			return r, fmt.Errorf("rbac %s: bindings[%d].role %q is not a defined role", path, i, bd.Role)
		}
	}
	for i, f := range r.Organisation {
		switch {
		case len(f.Models) == 0:
			return r, fmt.Errorf("rbac %s: organisation[%d].models is empty: name \"*\", models or \"group:<model group>\"", path, i)
		case f.Approval != "" && f.Approval != "always" && f.Approval != "with_production":
			return r, fmt.Errorf("rbac %s: organisation[%d].approval %q is not always or with_production", path, i, f.Approval)
		}
	}
	return r, nil
}

// Engine holds the compiled policies and the RBAC data.
type Engine struct {
	promotion, authz, approvers, organisation rego.PreparedEvalQuery
	revision                                  string
	groups                                    map[string][]string // model_groups
}

// NewEngine compiles the embedded policies once, with the RBAC data.
func NewEngine(ctx context.Context, rbac RBAC) (*Engine, error) {
	src, err := Sources()
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(rbac)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	store := inmem.NewFromObject(map[string]any{"driftline": map[string]any{"rbac": doc}})
	prepare := func(query string) (rego.PreparedEvalQuery, error) {
		opts := []func(*rego.Rego){rego.Query(query), rego.Store(store)}
		for name, body := range src {
			if !strings.HasSuffix(name, "_test.rego") {
				opts = append(opts, rego.Module(name, body))
			}
		}
		pq, err := rego.New(opts...).PrepareForEval(ctx)
		if err != nil {
			return pq, fmt.Errorf("compile policies: %w", err)
		}
		return pq, nil
	}
	e := &Engine{groups: rbac.ModelGroups}
	if e.promotion, err = prepare("data.driftline.promotion.decision"); err != nil {
		return nil, err
	}
	if e.authz, err = prepare("data.driftline.authz.decision"); err != nil {
		return nil, err
	}
	if e.approvers, err = prepare("data.driftline.authz.approvers"); err != nil {
		return nil, err
	}
	if e.organisation, err = prepare("data.driftline.organisation.decision"); err != nil {
		return nil, err
	}
	if e.revision, err = Revision(); err != nil {
		return nil, err
	}
	return e, nil
}

// Subject is an authenticated identity.
type Subject struct {
	ID     string   `json:"id"`
	Groups []string `json:"groups"`
}

// Authorize decides whether the subject may take the action on the model.
func (e *Engine) Authorize(ctx context.Context, s Subject, action, model string) (Decision, error) {
	var d Decision
	err := e.eval(ctx, e.authz, map[string]any{"subject": s, "action": action, "model": model}, &d)
	d.Revision = e.revision
	return d, err
}

// AuthorizeDataset decides whether the subject may read a model's dataset; one with PII
// columns needs read_pii.
func (e *Engine) AuthorizeDataset(ctx context.Context, s Subject, model string, pii bool) (Decision, error) {
	var d Decision
	err := e.eval(ctx, e.authz, map[string]any{"subject": s, "action": "read_dataset", "model": model, "dataset": map[string]any{"pii": pii}}, &d)
	d.Revision = e.revision
	return d, err
}

// Approvers lists the subjects that may approve the model.
func (e *Engine) Approvers(ctx context.Context, model string) ([]string, error) {
	var out []string
	err := e.eval(ctx, e.approvers, map[string]any{"model": model}, &out)
	sort.Strings(out)
	return out, err
}

func (e *Engine) eval(ctx context.Context, q rego.PreparedEvalQuery, input any, out any) error {
	raw, err := json.Marshal(input)
	if err != nil {
		return err
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return err
	}
	rs, err := q.Eval(ctx, rego.EvalInput(doc))
	if err != nil {
		return fmt.Errorf("evaluate policy: %w", err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return fmt.Errorf("policy: no decision (%d results)", len(rs))
	}
	b, err := json.Marshal(rs[0].Expressions[0].Value)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// Revision is the compiled bundle's revision.
func (e *Engine) Revision() string { return e.revision }

// Promotion evaluates the promotion policy. input is any JSON-encodable value.
func (e *Engine) Promotion(ctx context.Context, input PromotionInput) (Decision, error) {
	// Go structs reach Rego through JSON, with their json field names.
	var d Decision
	if err := e.eval(ctx, e.promotion, input, &d); err != nil {
		return Decision{}, fmt.Errorf("promotion policy: %w", err)
	}
	d.Revision = e.revision
	return d, nil
}

// Governed is what the organisation's floors say of a model's spec.
type Governed struct {
	// Violations name each field the spec loosens below a floor (empty: the spec keeps them).
	Violations       []string `json:"violations"`
	ApprovalRequired bool     `json:"approval_required"`
	DistinctApprover bool     `json:"distinct_approver"`
	BreakGlass       bool     `json:"break_glass"`
}

// Organisation evaluates the organisation's floors on a model's spec (any JSON-encodable
// value, normally a spec.Spec) before it is applied.
func (e *Engine) Organisation(ctx context.Context, model string, spec any) (Governed, error) {
	var g Governed
	if err := e.eval(ctx, e.organisation, map[string]any{"model": model, "spec": spec}, &g); err != nil {
		return Governed{}, fmt.Errorf("organisation policy: %w", err)
	}
	return g, nil
}

// OwnerOf is the owner a resource first changed through model gets (a feature repository):
// the model's group ("group:<name>", the first by name when it is in several), or the model
// itself ("model:<name>").
func (e *Engine) OwnerOf(model string) string {
	names := make([]string, 0, len(e.groups))
	for g := range e.groups {
		names = append(names, g)
	}
	sort.Strings(names)
	for _, g := range names {
		for _, m := range e.groups[g] {
			if m == model {
				return "group:" + g
			}
		}
	}
	return "model:" + model
}

// InScope reports whether a model belongs to an owner (OwnerOf's form).
func (e *Engine) InScope(owner, model string) bool {
	if g, ok := strings.CutPrefix(owner, "group:"); ok {
		for _, m := range e.groups[g] {
			if m == model {
				return true
			}
		}
		return false
	}
	return owner == "model:"+model
}
