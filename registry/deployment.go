package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/spec"
)

// Deployment is the pointer serving follows (models/<m>/deployment.json).
type Deployment struct {
	Model       string    `json:"model"`
	Production  int       `json:"production"` // 0: nothing deployed yet
	Canary      int       `json:"canary,omitempty"`
	CanaryShare float64   `json:"canary_share,omitempty"`
	CanarySince time.Time `json:"canary_since,omitzero"`
	// CanaryMode is split (the canary answers its share) or shadow (production answers
	// everything; the candidate is scored on its share and only logged).
	CanaryMode spec.CanaryMode `json:"canary_mode,omitempty"`
	// PairedShare is the share of requests serving also scores with the model that did not
	// answer them during the canary (0: all; see serving's pairing).
	PairedShare float64 `json:"paired_share,omitempty"`
	Previous    int     `json:"previous,omitempty"` // production before the last promotion
	// Aliases name versions ("challenger", custom names); production and canary are the
	// fields above.
	Aliases   map[string]int `json:"aliases,omitempty"`
	UpdatedAt time.Time      `json:"updated_at"`
	UpdatedBy string         `json:"updated_by"`
	RunID     string         `json:"run_id,omitempty"`
	Reason    string         `json:"reason,omitempty"`
}

// Deployment reads the pointer and its ETag. A model never deployed yields a zero pointer and
// an empty ETag.
func (r *Registry) Deployment(ctx context.Context, m string) (Deployment, string, error) {
	data, obj, err := objstore.ReadAll(ctx, r.Store, DeploymentKey(m))
	if errors.Is(err, objstore.ErrNotFound) {
		return Deployment{Model: m}, "", nil
	}
	if err != nil {
		return Deployment{}, "", err
	}
	var d Deployment
	if err := json.Unmarshal(data, &d); err != nil {
		return Deployment{}, "", fmt.Errorf("deployment of %s: %w", m, err)
	}
	return d, obj.ETag, nil
}

// Change describes one pointer update, for the audit trail.
type Change struct {
	Action Transition
	Actor  string
	RunID  string
	Reason string
	// Key makes the change idempotent: a retried activity passes the same key.
	Key string
}

// UpdateDeployment applies fn to the current pointer and writes it with compare-and-swap
// (If-Match on the ETag, If-None-Match for the first write). On a lost race it re-reads and
// re-applies fn, which may refuse with ErrConflict when the state no longer fits.
func (r *Registry) UpdateDeployment(ctx context.Context, m string, ch Change, fn Step) (Deployment, error) {
	for attempt := 0; attempt < 8; attempt++ {
		d, etag, err := r.Deployment(ctx, m)
		if err != nil {
			return d, err
		}
		out, err := r.swap(ctx, m, d, etag, ch, fn)
		if errors.Is(err, objstore.ErrPreconditionFailed) {
			continue
		}
		return out, err
	}
	return Deployment{}, fmt.Errorf("deployment of %s: %w: too many concurrent writers", m, ErrConflict)
}

// ApplyIf applies fn to the pointer only if its ETag is still expectedETag (empty: the model
// has no pointer yet): one compare-and-swap, no retry. A writer that lost the race gets
// ErrConflict and must read the pointer again and decide anew.
func (r *Registry) ApplyIf(ctx context.Context, m, expectedETag string, ch Change, fn Step) (Deployment, error) {
	d, etag, err := r.Deployment(ctx, m)
	if err != nil {
		return d, err
	}
	if etag != expectedETag {
		return d, fmt.Errorf("deployment of %s changed since it was read (etag %s, expected %s): read it again: %w", m, etag, expectedETag, ErrConflict)
	}
	out, err := r.swap(ctx, m, d, etag, ch, fn)
	if errors.Is(err, objstore.ErrPreconditionFailed) {
		return out, fmt.Errorf("deployment of %s was changed by another writer while this change was made: read it again: %w", m, ErrConflict)
	}
	return out, err
}

// swap applies fn to d (read at etag), writes the result conditionally on that ETag and audits
// the change; a step that changes nothing writes nothing. A lost race is
// objstore.ErrPreconditionFailed.
func (r *Registry) swap(ctx context.Context, m string, d Deployment, etag string, ch Change, fn Step) (Deployment, error) {
	before := d
	changed, err := fn(&d)
	if err != nil || !changed {
		return before, err
	}
	d.Model, d.UpdatedAt, d.UpdatedBy, d.RunID, d.Reason = m, time.Now().UTC(), ch.Actor, ch.RunID, ch.Reason
	body, err := json.MarshalIndent(d, "", " ")
	if err != nil {
		return before, err
	}
	opts := objstore.PutOptions{IfMatch: etag, ContentType: "application/json"}
	if etag == "" {
		opts = objstore.PutOptions{IfNoneMatch: true, ContentType: "application/json"}
	}
	if _, err := r.Store.Put(ctx, DeploymentKey(m), body, opts); err != nil {
		return before, err
	}
	_, err = r.Audit.Append(ctx, ch.Key, audit.Record{Actor: ch.Actor, Action: string(ch.Action), Model: m, RunID: ch.RunID,
		Reason: ch.Reason, Version: max(d.Canary, d.Production), Details: map[string]any{"before": before, "after": d}})
	return d, err
}

// Step is one transition applied to a pointer read from the store: it reports whether it
// changed anything (an idempotent retry changes nothing and writes nothing).
type Step func(*Deployment) (changed bool, err error)

// PromoteIf makes a registered version production (Deployment.Promote) if the pointer is
// still at expectedETag: what an operator does after reading the pointer.
func (r *Registry) PromoteIf(ctx context.Context, m string, version int, expectedETag string, ch Change) (Deployment, error) {
	if _, err := r.Version(ctx, m, version); err != nil {
		return Deployment{}, err
	}
	ch.Action = TransPromote
	return r.ApplyIf(ctx, m, expectedETag, ch, func(d *Deployment) (bool, error) { return d.Promote(version) })
}

// RollbackIf restores the previous production version (Deployment.Rollback) if the pointer
// is still at expectedETag.
func (r *Registry) RollbackIf(ctx context.Context, m, expectedETag string, ch Change) (Deployment, error) {
	ch.Action = TransRollback
	return r.ApplyIf(ctx, m, expectedETag, ch, (*Deployment).Rollback)
}

// SetAliasIf points an alias at a registered version, 0 removes it (Deployment.SetAlias), if
// the pointer is still at expectedETag.
func (r *Registry) SetAliasIf(ctx context.Context, m, alias string, version int, expectedETag string, ch Change) (Deployment, error) {
	if version > 0 {
		if _, err := r.Version(ctx, m, version); err != nil {
			return Deployment{}, err
		}
	}
	ch.Action = TransSetAlias
	return r.ApplyIf(ctx, m, expectedETag, ch, func(d *Deployment) (bool, error) { return d.SetAlias(alias, version) })
}
