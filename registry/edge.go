package registry

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/edge"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/objstore"
)

// EdgeBundleKey is where version n's edge bundle is kept (docs/edge.md).
func EdgeBundleKey(m string, n int) string {
	return fmt.Sprintf("models/%s/versions/%d/edge.bundle", m, n)
}

// edgeCounterKey is the claim of counter c of model m's edge bundles.
func edgeCounterKey(m string, c uint64) string {
	return fmt.Sprintf("models/%s/edge/counters/%020d.json", m, c)
}

// EdgeBundle is a bundle the registry issued.
type EdgeBundle struct {
	Key     string `json:"key"`
	Counter uint64 `json:"counter"`
	KeyID   string `json:"key_id"`
	Bytes   int    `json:"bytes"`
}

type counterClaim struct {
	Version int    `json:"version"`
	Purpose string `json:"purpose"`
}

// IssueEdgeBundle makes version n's edge bundle from its int8 variant (the contract's ranges
// for its features) and keeps it, signed with key and the model's next counter: counters are
// claimed by conditional creates, so every bundle the registry signs for a model has a higher
// one than the last. Idempotent: a retry finds the counter it claimed and the bundle it made
// (Ed25519 signatures are deterministic, and the manifest holds no time).
func (r *Registry) IssueEdgeBundle(ctx context.Context, m string, n int, int8Artifact []byte, ranges map[string][2]float64, key ed25519.PrivateKey) (EdgeBundle, error) {
	q, err := model.Unmarshal(int8Artifact)
	if err != nil || q.Int8 == nil {
		return EdgeBundle{}, fmt.Errorf("edge bundle of %s v%d: the int8 variant: %v", m, n, err)
	}
	v, err := r.Version(ctx, m, n)
	if err != nil {
		return EdgeBundle{}, err
	}
	counter, err := r.claimCounter(ctx, m, counterClaim{Version: n, Purpose: "register"})
	if err != nil {
		return EdgeBundle{}, err
	}
	body, err := edge.Encode(q.Int8.EdgeBody(q.Features, ranges))
	if err != nil {
		return EdgeBundle{}, err
	}
	art, _, err := objstore.ReadAll(ctx, r.Store, ArtifactKey(m, n))
	if err != nil {
		return EdgeBundle{}, err
	}
	data, err := edge.Seal(edge.Manifest{Model: m, Version: n, Counter: counter, Features: q.Features, Kind: edgeKind(q), Objective: q.Objective,
		ArtifactSHA256: v.ArtifactSHA256, ArtifactBytes: int64(len(art))}, body, key)
	if err != nil {
		return EdgeBundle{}, err
	}
	out := EdgeBundle{Key: EdgeBundleKey(m, n), Counter: counter, KeyID: edge.KeyID(key.Public().(ed25519.PublicKey)), Bytes: len(data)}
	if _, err := objstore.CreateOnce(ctx, r.Store, out.Key, data, "application/octet-stream"); err != nil {
		return EdgeBundle{}, fmt.Errorf("edge bundle of %s v%d: %w", m, n, err)
	}
	_, err = r.Audit.Append(ctx, fmt.Sprintf("edge-bundle/%s/%d/%d", m, n, counter), audit.Record{Actor: v.Lineage.CreatedBy, Action: "edge_bundle",
		Model: m, Version: n, RunID: v.Lineage.RunID, Details: map[string]any{"bundle": r.Store.URI(out.Key), "counter": counter, "key_id": out.KeyID, "bytes": len(data)}})
	return out, err
}

func edgeKind(q *model.Model) string {
	if q.Int8.Weights != nil {
		return "linear"
	}
	return "trees"
}

// claimCounter is the counter claimed for c already (a retry), or the next free one.
func (r *Registry) claimCounter(ctx context.Context, m string, c counterClaim) (uint64, error) {
	n, found, last, err := r.scanCounters(ctx, m, c)
	if err != nil || found {
		return n, err
	}
	body, _ := json.Marshal(c)
	for next := last + 1; ; next++ {
		_, err := r.Store.Put(ctx, edgeCounterKey(m, next), body, objstore.PutOptions{IfNoneMatch: true, ContentType: "application/json"})
		if err == nil {
			return next, nil
		}
		if !errors.Is(err, objstore.ErrPreconditionFailed) {
			return 0, err
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
	}
}

// findCounter is the counter claimed for c, if one is.
func (r *Registry) findCounter(ctx context.Context, m string, c counterClaim) (uint64, bool, error) {
	n, found, _, err := r.scanCounters(ctx, m, c)
	return n, found, err
}

// scanCounters reads the model's counter claims: the one made for c if any, and the highest.
func (r *Registry) scanCounters(ctx context.Context, m string, c counterClaim) (n uint64, found bool, last uint64, err error) {
	objs, err := r.Store.List(ctx, fmt.Sprintf("models/%s/edge/counters/", m))
	if err != nil {
		return 0, false, 0, err
	}
	for _, o := range objs {
		k, err := strconv.ParseUint(strings.TrimSuffix(o.Key[strings.LastIndex(o.Key, "/")+1:], ".json"), 10, 64)
		if err != nil {
			continue
		}
		last = max(last, k)
		data, _, err := objstore.ReadAll(ctx, r.Store, o.Key)
		if err != nil {
			return 0, false, 0, err
		}
		var got counterClaim
		if json.Unmarshal(data, &got) == nil && got == c {
			return k, true, last, nil
		}
	}
	return 0, false, last, nil
}
