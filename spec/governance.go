package spec

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"
)

// Governance is the part of a spec that decides whether a model may reach production and how:
// the quality gates, fairness floors, the approval rule, the canary's guardrails, when the int8
// variant may serve, where training runs (an external trainer's task queue), which columns
// hold personal data and whether the devices' inputs stay on them. A data scientist tunes everything else (features, trainer parameters,
// drift settings, the window, monitoring); changing any of these needs the change_governance
// action, held by another role (docs/governance.md).
type Governance struct {
	Evaluation   Evaluation   `json:"evaluation"`
	Fairness     Fairness     `json:"fairness"`
	Approval     Approval     `json:"approval"`
	Canary       Canary       `json:"canary"`
	Quantization Quantization `json:"quantization"`
	TrainerQueue string       `json:"trainer_task_queue,omitempty"`
	// TrainerCommand is the command a command trainer runs: which code makes candidates is
	// governance's, as the queue is.
	TrainerCommand string          `json:"trainer_command,omitempty"`
	PII            map[string]bool `json:"pii,omitempty"`
	Protected      []string        `json:"protected_attributes,omitempty"`
	TargetRange    [2]*float64     `json:"target_range"`
	Edge           Edge            `json:"edge"`
}

// Governance extracts the governed fields of the spec.
func (s Spec) Governance() Governance {
	g := Governance{Evaluation: s.Evaluation, Fairness: s.Fairness, Approval: s.Approval, Canary: s.Canary,
		Quantization: s.Quantization, TrainerQueue: s.Trainer.TaskQueue, TrainerCommand: s.Trainer.Command, Edge: s.Edge}
	g.Approval.Approvers = slices.Clone(g.Approval.Approvers)
	slices.Sort(g.Approval.Approvers)
	for _, c := range s.Contract.Columns {
		if c.PII {
			if g.PII == nil {
				g.PII = map[string]bool{}
			}
			g.PII[c.Name] = true
		}
		if c.Role == "protected_attribute" {
			g.Protected = append(g.Protected, c.Name)
		}
		if c.Name == s.Target {
			g.TargetRange = [2]*float64{c.Min, c.Max}
		}
	}
	slices.Sort(g.Protected)
	return g
}

// GovernanceChanges lists the governed fields that differ between two specs, as dotted paths
// ("approval.required", "canary.min_labels", "pii.customer_id"), sorted. A nil old spec (the
// model's first) counts every governed field that is set.
func GovernanceChanges(old *Spec, next Spec) []string {
	var a map[string]any
	if old != nil {
		a = flatten(old.Governance())
	}
	b := flatten(next.Governance())
	var out []string
	for k, v := range b {
		if w, ok := a[k]; !ok || !reflect.DeepEqual(v, w) {
			out = append(out, k)
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// flatten turns a value's JSON form into dotted paths to its leaves (zero values left out, so
// an absent field and its default-less zero compare equal).
func flatten(v any) map[string]any {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("spec: governance does not marshal: %v", err)) // plain data: cannot happen
	}
	var doc any
	_ = json.Unmarshal(raw, &doc)
	out := map[string]any{}
	var walk func(prefix string, x any)
	walk = func(prefix string, x any) {
		switch t := x.(type) {
		case map[string]any:
			for k, v := range t {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, v)
			}
		default:
			if x == nil || x == false || x == "" || x == float64(0) {
				return
			}
			if p, ok := strings.CutSuffix(prefix, ".Duration"); ok {
				if n, isNum := x.(float64); isNum {
					out[p] = time.Duration(n).String()
					return
				}
			}
			out[prefix] = x
		}
	}
	walk("", doc)
	return out
}

// Change is one changed field of a spec: its dotted path and both values (nil: absent).
type Change struct {
	Path string `json:"path"`
	From any    `json:"from,omitempty"`
	To   any    `json:"to,omitempty"`
}

// Diff lists every field that differs between two specs (nil old: the model's first spec), by
// dotted path, sorted: what an audit record of an applied spec holds.
func Diff(old *Spec, next Spec) []Change {
	var a map[string]any
	if old != nil {
		o := *old
		o.Hash = ""
		a = flatten(o)
	}
	next.Hash = ""
	b := flatten(next)
	var out []Change
	for k, v := range b {
		if w, ok := a[k]; !ok || !reflect.DeepEqual(v, w) {
			out = append(out, Change{Path: k, From: a[k], To: v})
		}
	}
	for k, v := range a {
		if _, ok := b[k]; !ok {
			out = append(out, Change{Path: k, From: v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}
