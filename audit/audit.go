package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/driftline/driftline/objstore"
)

// Record is one audited action.
type Record struct {
	ID       string         `json:"id"`
	Time     time.Time      `json:"time"`
	Actor    string         `json:"actor"`
	Action   string         `json:"action"` // register, set_canary, promote, rollback, policy_decision, approve, reject, ...
	Model    string         `json:"model"`
	Version  int            `json:"version,omitempty"`
	RunID    string         `json:"run_id,omitempty"`
	Decision string         `json:"decision,omitempty"`
	Reason   string         `json:"reason,omitempty"`
	Details  map[string]any `json:"details,omitempty"`
}

// Log appends records to a bucket.
type Log struct{ Store objstore.Bucket }

// Key is where a record is stored.
func Key(r Record) string {
	t := r.Time.UTC()
	return fmt.Sprintf("audit/%s/%s-%s.json", t.Format("2006/01/02"), t.Format("150405.000000000"), r.ID)
}

// Append writes the record once. The id is derived from the caller's idempotency key, so an
// activity retry that appends the same record again is a no-op.
func (l Log) Append(ctx context.Context, idempotencyKey string, r Record) (Record, error) {
	sum := sha256.Sum256([]byte(idempotencyKey))
	r.ID = hex.EncodeToString(sum[:8])
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	// The marker makes the record's key stable across retries with different clocks.
	marker := "audit/ids/" + r.ID
	if data, _, err := objstore.ReadAll(ctx, l.Store, marker); err == nil {
		var prev Record
		if json.Unmarshal(data, &prev) == nil {
			return prev, nil
		}
	}
	body, err := json.Marshal(r)
	if err != nil {
		return r, err
	}
	if _, err := l.Store.Put(ctx, Key(r), body, objstore.PutOptions{IfNoneMatch: true, ContentType: "application/json"}); err != nil && !errors.Is(err, objstore.ErrPreconditionFailed) {
		return r, err
	}
	if _, err := l.Store.Put(ctx, marker, body, objstore.PutOptions{IfNoneMatch: true}); err != nil && !errors.Is(err, objstore.ErrPreconditionFailed) {
		return r, err
	}
	return r, nil
}

// List returns the records of one model (all models when model is empty) since a time, oldest first.
func (l Log) List(ctx context.Context, model string, since time.Time) ([]Record, error) {
	var out []Record
	for day := since.UTC().Truncate(24 * time.Hour); !day.After(time.Now().UTC()); day = day.AddDate(0, 0, 1) {
		objs, err := l.Store.List(ctx, "audit/"+day.Format("2006/01/02")+"/")
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			data, _, err := objstore.ReadAll(ctx, l.Store, o.Key)
			if err != nil {
				return nil, err
			}
			var r Record
			if err := json.Unmarshal(data, &r); err != nil {
				return nil, fmt.Errorf("audit record %s: %w", o.Key, err)
			}
			if (model == "" || r.Model == model) && !r.Time.Before(since) {
				out = append(out, r)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// String renders a record on one line.
func (r Record) String() string {
	parts := []string{r.Time.Format(time.RFC3339), r.Actor, r.Action, r.Model}
	if r.Version > 0 {
		parts = append(parts, fmt.Sprintf("v%d", r.Version))
	}
	if r.Decision != "" {
		parts = append(parts, r.Decision)
	}
	if r.Reason != "" {
		parts = append(parts, fmt.Sprintf("%q", r.Reason))
	}
	if r.RunID != "" {
		parts = append(parts, "run="+r.RunID)
	}
	return strings.Join(parts, "  ")
}
