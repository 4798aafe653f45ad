package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/driftline/driftline/internal/keys"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/spec"
)

// A model's spec is a registry object: each applied spec is written once as
// models/<m>/specs/<n>.yaml, and models/<m>/spec.json points at the current one (changed by
// compare-and-swap). Runs, schedules and monitors use a registered version; the governed
// fields of a run's spec are checked against the current one at the policy step.

// SpecVersion is one applied spec.
type SpecVersion struct {
	Model     string    `json:"model"`
	Version   int       `json:"version"`
	Hash      string    `json:"hash"` // SHA-256 of the YAML
	Key       string    `json:"key"`
	AppliedBy string    `json:"applied_by"`
	AppliedAt time.Time `json:"applied_at"`
	Reason    string    `json:"reason"`
	// Governance lists the governed fields this version changed (spec.GovernanceChanges).
	Governance []string `json:"governance_changes,omitempty"`
}

// SpecPointerKey is the current spec pointer of a model.
func SpecPointerKey(m string) string { return keys.Model(m) + "spec.json" }

// SpecKey is where version n of a model's spec, of that content hash, is stored.
func SpecKey(m string, n int, hash string) string {
	return fmt.Sprintf("%sspecs/%d-%.16s.yaml", keys.Model(m), n, hash)
}

// CurrentSpec returns the model's current spec, its version record and the pointer's ETag;
// ErrNotFound when no spec was ever applied.
func (r *Registry) CurrentSpec(ctx context.Context, m string) (spec.Spec, SpecVersion, string, error) {
	data, obj, err := objstore.ReadAll(ctx, r.Store, SpecPointerKey(m))
	if errors.Is(err, objstore.ErrNotFound) {
		return spec.Spec{}, SpecVersion{}, "", fmt.Errorf("model %s has no registered spec (driftline models apply): %w", m, ErrNotFound)
	}
	if err != nil {
		return spec.Spec{}, SpecVersion{}, "", err
	}
	var v SpecVersion
	if err := json.Unmarshal(data, &v); err != nil {
		return spec.Spec{}, SpecVersion{}, "", fmt.Errorf("%s: %w", r.Store.URI(SpecPointerKey(m)), err)
	}
	sp, err := r.loadSpec(ctx, v)
	return sp, v, obj.ETag, err
}

func (r *Registry) loadSpec(ctx context.Context, v SpecVersion) (spec.Spec, error) {
	raw, _, err := objstore.ReadAll(ctx, r.Store, v.Key)
	if errors.Is(err, objstore.ErrNotFound) {
		return spec.Spec{}, fmt.Errorf("spec v%d of model %s (%s): %w", v.Version, v.Model, v.Key, ErrNotFound)
	}
	if err != nil {
		return spec.Spec{}, err
	}
	sp, err := spec.Parse(raw)
	switch {
	case err != nil:
		return spec.Spec{}, fmt.Errorf("%s: %w", r.Store.URI(v.Key), err)
	case sp.Model != v.Model || sp.Hash != v.Hash:
		return spec.Spec{}, fmt.Errorf("%s is not spec v%d of model %s (hash %.12s)", r.Store.URI(v.Key), v.Version, v.Model, v.Hash)
	}
	return sp, nil
}

// ApplySpec makes raw (a parsed spec's YAML) the model's next spec version, when the pointer is
// still at expectedETag (the caller read it with CurrentSpec; "" when there was none). The
// same YAML as the current version changes nothing (changed false). A lost race is ErrConflict.
func (r *Registry) ApplySpec(ctx context.Context, sp spec.Spec, raw []byte, expectedETag, by, reason string, governance []string) (SpecVersion, bool, error) {
	m := sp.Model
	cur, ver, etag, err := r.CurrentSpec(ctx, m)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return SpecVersion{}, false, err
	}
	if etag != expectedETag {
		return ver, false, fmt.Errorf("the spec of %s changed since it was read (now v%d): read it again: %w", m, ver.Version, ErrConflict)
	}
	if etag != "" && cur.Hash == sp.Hash {
		return ver, false, nil
	}
	next := SpecVersion{Model: m, Version: ver.Version + 1, Hash: sp.Hash, Key: SpecKey(m, ver.Version+1, sp.Hash), AppliedBy: by,
		AppliedAt: time.Now().UTC(), Reason: reason, Governance: governance}
	// The key names the content, so a retried apply (or one that lost the pointer's race)
	// finds its own object there.
	if _, err := objstore.CreateOnce(ctx, r.Store, next.Key, raw, "application/yaml"); err != nil {
		return ver, false, err
	}
	body, _ := json.MarshalIndent(next, "", " ")
	opts := objstore.PutOptions{IfMatch: etag, ContentType: "application/json"}
	if etag == "" {
		opts = objstore.PutOptions{IfNoneMatch: true, ContentType: "application/json"}
	}
	if _, err := r.Store.Put(ctx, SpecPointerKey(m), body, opts); err != nil {
		if errors.Is(err, objstore.ErrPreconditionFailed) {
			return ver, false, fmt.Errorf("the spec of %s moved while applying: read it again: %w", m, ErrConflict)
		}
		return ver, false, err
	}
	return next, true, nil
}

// SpecSource returns the YAML of the model's current spec, as it was applied.
func (r *Registry) SpecSource(ctx context.Context, m string) ([]byte, error) {
	_, v, _, err := r.CurrentSpec(ctx, m)
	if err != nil {
		return nil, err
	}
	raw, _, err := objstore.ReadAll(ctx, r.Store, v.Key)
	return raw, err
}
