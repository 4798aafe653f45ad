package features

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/spec"
)

// The operations a feature is computed with; each has one Go implementation (transform.go)
// used for training sets and for the online store alike.
const (
	OpValue        = "value"         // the column's value at the row's event
	OpRollingSum   = "rolling_sum"   // the sum of the column over the key's events in (t - window, t]
	OpRollingMean  = "rolling_mean"  // its mean over the non-null values
	OpRollingCount = "rolling_count" // how many non-null values
	OpLag          = "lag"           // the column's value at the key's latest event in (t - 2 lag, t - lag]
	OpRatio        = "ratio"         // of / to, two features of the same view (or columns)
)

var ops = []string{OpValue, OpRollingSum, OpRollingMean, OpRollingCount, OpLag, OpRatio}

// Repo is a feature repository: definitions in version-controlled YAML
// (apiVersion driftline.dev/v1, kind FeatureRepo).
type Repo struct {
	APIVersion string    `yaml:"apiVersion"`
	Kind       string    `yaml:"kind"`
	Entities   []Entity  `yaml:"entities"`
	Views      []View    `yaml:"views"`
	Services   []Service `yaml:"services"`
}

// Entity names the keys that identify what features describe (a store-item).
type Entity struct {
	Name string   `yaml:"name"`
	Keys []string `yaml:"keys"`
}

// View is a feature view: features of an entity computed from a source dataset.
type View struct {
	Name   string `yaml:"name"`
	Entity string `yaml:"entity"`
	Source Source `yaml:"source"`
	// Lookback bounds offline joins (a value older than T - lookback is not joined; 0: no
	// bound); OnlineExpiry is how long a value is served online. Kept apart on purpose
	// (Feast's ttl means both: feast-dev/feast#4133).
	Lookback     spec.Duration `yaml:"lookback"`
	OnlineExpiry spec.Duration `yaml:"online_expiry"`
	Features     []Feature     `yaml:"features"`
}

// Source is where a view's rows come from.
type Source struct {
	Dataset string `yaml:"dataset"`
	// EventTime is the column of the time a row describes (a date or a timestamp column).
	EventTime string `yaml:"event_time"`
	// CreatedTime is the column of when the row was written (optional: without it a row is
	// known when it becomes available).
	CreatedTime string `yaml:"created_time,omitempty"`
	// AvailableAfter: a row's values are known this long after its event time (a day's sales
	// at the day's end: 24h), so a training row of that day never sees them.
	AvailableAfter spec.Duration `yaml:"available_after,omitempty"`
}

// Feature is one feature of a view.
type Feature struct {
	Name   string        `yaml:"name"`
	Op     string        `yaml:"op"`
	Column string        `yaml:"column,omitempty"` // value, rolling_*, lag
	Window spec.Duration `yaml:"window,omitempty"` // rolling_*
	Lag    spec.Duration `yaml:"lag,omitempty"`    // lag
	Of     string        `yaml:"of,omitempty"`     // ratio: a feature of the view or a column
	To     string        `yaml:"to,omitempty"`
}

// Service is the features a model uses, as view:feature references.
type Service struct {
	Name     string   `yaml:"name"`
	Features []string `yaml:"features"`
}

// LoadRepo reads and checks a repository file against the datasets' contracts.
func LoadRepo(path string, contracts map[string]contract.Contract) (Repo, []byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Repo{}, nil, fmt.Errorf("feature definitions: %w", err)
	}
	r, err := ParseRepo(raw)
	if err != nil {
		return Repo{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := r.Validate(contracts); err != nil {
		return Repo{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, raw, nil
}

// ParseRepo decodes definitions; unknown fields are errors, with their line.
func ParseRepo(raw []byte) (Repo, error) {
	var r Repo
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil {
		return Repo{}, fmt.Errorf("decode: %w", err)
	}
	return r, nil
}

// Hash identifies a repository's content.
func Hash(raw []byte) string {
	s := sha256.Sum256(raw)
	return hex.EncodeToString(s[:])
}

// View returns a view by name.
func (r Repo) View(name string) (View, bool) {
	for _, v := range r.Views {
		if v.Name == name {
			return v, true
		}
	}
	return View{}, false
}

// Entity returns an entity by name.
func (r Repo) Entity(name string) (Entity, bool) {
	for _, e := range r.Entities {
		if e.Name == name {
			return e, true
		}
	}
	return Entity{}, false
}

// Service returns a feature service by name.
func (r Repo) Service(name string) (Service, bool) {
	for _, s := range r.Services {
		if s.Name == name {
			return s, true
		}
	}
	return Service{}, false
}

// Validate names every problem at once: each names the view, feature, column or service. A
// contract per source dataset checks that columns exist with a type the operation takes.
func (r Repo) Validate(contracts map[string]contract.Contract) error {
	var p defProblems
	if r.APIVersion != spec.APIVersion || r.Kind != "FeatureRepo" {
		p.add("apiVersion/kind: want %s FeatureRepo, got %q %q", spec.APIVersion, r.APIVersion, r.Kind)
	}
	names := map[string]bool{}
	for i, e := range r.Entities {
		if e.Name == "" || len(e.Keys) == 0 {
			p.add("entities[%d]: a name and at least one key are required", i)
		}
		if names["entity:"+e.Name] {
			p.add("entity %q is defined twice", e.Name)
		}
		names["entity:"+e.Name] = true
	}
	for _, v := range r.Views {
		r.validateView(&p, v, names, contracts)
	}
	for _, s := range r.Services {
		if s.Name == "" || names["service:"+s.Name] {
			p.add("service %q: a unique name is required", s.Name)
		}
		names["service:"+s.Name] = true
		if len(s.Features) == 0 {
			p.add("service %q: no features", s.Name)
		}
		for _, ref := range s.Features {
			view, feat, ok := strings.Cut(ref, ":")
			v, found := r.View(view)
			if !ok || !found || !slices.ContainsFunc(v.Features, func(f Feature) bool { return f.Name == feat }) {
				p.add("service %q: %q is not a view:feature of these definitions", s.Name, ref)
			}
		}
	}
	return errors.Join(p...)
}

// defProblems collects the definitions' problems.
type defProblems []error

func (p *defProblems) add(format string, a ...any) { *p = append(*p, fmt.Errorf(format, a...)) }

// validateView checks one view: its name, entity, durations, source columns and features.
func (r Repo) validateView(p *defProblems, v View, names map[string]bool, contracts map[string]contract.Contract) {
	add := p.add
	where := fmt.Sprintf("view %q", v.Name)
	if v.Name == "" || strings.Contains(v.Name, ":") {
		add("%s: a name without ':' is required", where)
	}
	if names["view:"+v.Name] {
		add("%s is defined twice", where)
	}
	names["view:"+v.Name] = true
	ent, ok := r.Entity(v.Entity)
	if !ok {
		add("%s: entity %q is not defined", where, v.Entity)
	}
	if v.Lookback.Duration < 0 || v.OnlineExpiry.Duration < 0 || v.Source.AvailableAfter.Duration < 0 {
		add("%s: lookback, online_expiry and available_after must not be negative", where)
	}
	c, ok := contracts[v.Source.Dataset]
	if !ok {
		add("%s: source dataset %q has no contract (name it in a model spec)", where, v.Source.Dataset)
		return
	}
	col := func(what, name string, numeric bool) {
		cc, ok := c.Column(name)
		switch {
		case !ok:
			add("%s: %s %q is not a column of dataset %s", where, what, name, v.Source.Dataset)
		case numeric && cc.Type == contract.TypeString:
			add("%s: %s %q is a string column of dataset %s; the operation needs a number", where, what, name, v.Source.Dataset)
		}
	}
	for _, k := range ent.Keys {
		col("entity key", k, false)
	}
	col("event_time", v.Source.EventTime, false)
	if v.Source.CreatedTime != "" {
		col("created_time", v.Source.CreatedTime, false)
	}
	own := map[string]bool{}
	for _, f := range v.Features {
		fw := fmt.Sprintf("%s feature %q", where, f.Name)
		if f.Name == "" || own[f.Name] {
			add("%s: a unique name is required", fw)
		}
		own[f.Name] = true
		switch f.Op {
		case OpValue, OpLag, OpRollingSum, OpRollingMean, OpRollingCount:
			col(fw+": column", f.Column, f.Op != OpValue)
			if strings.HasPrefix(f.Op, "rolling_") && f.Window.Duration <= 0 {
				add("%s: %s needs a positive window", fw, f.Op)
			}
			if f.Op == OpLag && f.Lag.Duration <= 0 {
				add("%s: lag needs a positive lag", fw)
			}
		case OpRatio:
			for _, ref := range []string{f.Of, f.To} {
				if ref == "" {
					add("%s: ratio needs of and to", fw)
				}
			}
		default:
			add("%s: op %q is not one of %s", fw, f.Op, strings.Join(ops, ", "))
		}
	}
	// A ratio names a feature of this view or a numeric column; a cycle of ratios is refused.
	for _, f := range v.Features {
		if f.Op != OpRatio {
			continue
		}
		for _, ref := range []string{f.Of, f.To} {
			if ref != "" && !own[ref] {
				col(fmt.Sprintf("%s feature %q: ratio operand", where, f.Name), ref, true)
			}
		}
	}
	if cyc := ratioCycle(v); cyc != nil {
		add("%s: the derived features form a cycle: %s", where, strings.Join(cyc, " -> "))
	}
}

// ratioCycle returns a cycle among a view's ratio features, or nil.
func ratioCycle(v View) []string {
	deps := map[string][]string{}
	for _, f := range v.Features {
		if f.Op == OpRatio {
			deps[f.Name] = []string{f.Of, f.To}
		}
	}
	state := map[string]int{} // 1: on the path, 2: done
	var path []string
	var visit func(string) []string
	visit = func(n string) []string {
		switch state[n] {
		case 1:
			i := slices.Index(path, n)
			return append(append([]string(nil), path[i:]...), n)
		case 2:
			return nil
		}
		state[n] = 1
		path = append(path, n)
		for _, d := range deps[n] {
			if c := visit(d); c != nil {
				return c
			}
		}
		path = path[:len(path)-1]
		state[n] = 2
		return nil
	}
	for _, f := range v.Features {
		if c := visit(f.Name); c != nil {
			return c
		}
	}
	return nil
}
