package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/objstore"
)

// Deployment is the pointer serving follows (models/<m>/deployment.json).
type Deployment struct {
	Model       string    `json:"model"`
	Production  int       `json:"production"` // 0: nothing deployed yet
	Canary      int       `json:"canary,omitempty"`
	CanaryShare float64   `json:"canary_share,omitempty"`
	CanarySince time.Time `json:"canary_since,omitzero"`
	// CanaryMode is "split" (the canary answers its share) or "shadow" (production answers
	// everything; the candidate is scored on its share and only logged).
	CanaryMode string `json:"canary_mode,omitempty"`
	Previous   int    `json:"previous,omitempty"` // production before the last promotion
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
	Action string // set_canary, promote, clear_canary, rollback
	Actor  string
	RunID  string
	Reason string
	// Key makes the change idempotent: a retried activity passes the same key.
	Key string
}

// UpdateDeployment applies fn to the current pointer and writes it with compare-and-swap
// (If-Match on the ETag, If-None-Match for the first write). On a lost race it re-reads and
// re-applies fn, which may refuse with ErrConflict when the state no longer fits.
func (r *Registry) UpdateDeployment(ctx context.Context, m string, ch Change, fn func(*Deployment) error) (Deployment, error) {
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
func (r *Registry) ApplyIf(ctx context.Context, m, expectedETag string, ch Change, fn func(*Deployment) error) (Deployment, error) {
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
// the change. A lost race is objstore.ErrPreconditionFailed.
func (r *Registry) swap(ctx context.Context, m string, d Deployment, etag string, ch Change, fn func(*Deployment) error) (Deployment, error) {
	before := d
	if err := fn(&d); err != nil {
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
	_, err = r.Audit.Append(ctx, ch.Key, audit.Record{Actor: ch.Actor, Action: ch.Action, Model: m, RunID: ch.RunID,
		Reason: ch.Reason, Version: max(d.Canary, d.Production), Details: map[string]any{"before": before, "after": d}})
	return d, err
}

// Promote makes version production (the current production becomes the rollback target), if
// the pointer is still at expectedETag.
func (r *Registry) Promote(ctx context.Context, m string, version int, expectedETag string, ch Change) (Deployment, error) {
	if _, err := r.Version(ctx, m, version); err != nil {
		return Deployment{}, err
	}
	ch.Action = "promote"
	return r.ApplyIf(ctx, m, expectedETag, ch, func(d *Deployment) error {
		if d.Production == version {
			return fmt.Errorf("v%d is already production: %w", version, ErrConflict)
		}
		if d.Canary == version {
			d.Canary, d.CanaryShare, d.CanarySince = 0, 0, time.Time{}
		}
		d.Previous, d.Production = d.Production, version
		return nil
	})
}

// Rollback restores the previous production version, if the pointer is still at expectedETag.
func (r *Registry) Rollback(ctx context.Context, m, expectedETag string, ch Change) (Deployment, error) {
	ch.Action = "rollback"
	return r.ApplyIf(ctx, m, expectedETag, ch, func(d *Deployment) error {
		if d.Previous == 0 {
			return fmt.Errorf("model %s has no previous production version to roll back to: %w", m, ErrConflict)
		}
		d.Production, d.Previous = d.Previous, d.Production
		d.Canary, d.CanaryShare, d.CanarySince = 0, 0, time.Time{}
		return nil
	})
}

// SetAlias points an alias at a version (0 removes it), if the pointer is still at
// expectedETag. production and canary are not aliases: use Promote and the canary.
func (r *Registry) SetAlias(ctx context.Context, m, alias string, version int, expectedETag string, ch Change) (Deployment, error) {
	if alias == "" || alias == "production" || alias == "canary" {
		return Deployment{}, fmt.Errorf("alias %q is reserved or empty: %w", alias, ErrConflict)
	}
	if version > 0 {
		if _, err := r.Version(ctx, m, version); err != nil {
			return Deployment{}, err
		}
	}
	ch.Action = "set_alias"
	return r.ApplyIf(ctx, m, expectedETag, ch, func(d *Deployment) error {
		if d.Aliases == nil {
			d.Aliases = map[string]int{}
		}
		if version == 0 {
			delete(d.Aliases, alias)
		} else {
			d.Aliases[alias] = version
		}
		return nil
	})
}
