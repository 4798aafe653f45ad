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
	Previous    int       `json:"previous,omitempty"` // production before the last promotion
	UpdatedAt   time.Time `json:"updated_at"`
	UpdatedBy   string    `json:"updated_by"`
	RunID       string    `json:"run_id,omitempty"`
	Reason      string    `json:"reason,omitempty"`
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
		before := d
		if err := fn(&d); err != nil {
			return before, err
		}
		d.Model, d.UpdatedAt, d.UpdatedBy, d.RunID, d.Reason = m, time.Now().UTC(), ch.Actor, ch.RunID, ch.Reason
		body, err := json.MarshalIndent(d, "", " ")
		if err != nil {
			return d, err
		}
		opts := objstore.PutOptions{IfMatch: etag, ContentType: "application/json"}
		if etag == "" {
			opts = objstore.PutOptions{IfNoneMatch: true, ContentType: "application/json"}
		}
		_, err = r.Store.Put(ctx, DeploymentKey(m), body, opts)
		if errors.Is(err, objstore.ErrPreconditionFailed) {
			continue
		}
		if err != nil {
			return d, err
		}
		_, err = r.Audit.Append(ctx, ch.Key, audit.Record{Actor: ch.Actor, Action: ch.Action, Model: m, RunID: ch.RunID,
			Reason: ch.Reason, Version: max(d.Canary, d.Production),
			Details: map[string]any{"before": before, "after": d}})
		return d, err
	}
	return Deployment{}, fmt.Errorf("deployment of %s: %w: too many concurrent writers", m, ErrConflict)
}
