package features

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/driftline/driftline/objstore"
)

// The registry of definitions: features/_repos/<repo>/versions/<n>.yaml (written once) and
// features/_repos/<repo>/current.json, the pointer to the applied version (compare-and-swap
// on its ETag). A version is written before the pointer moves to it, so nothing half-applied
// is ever current.

// Applied is the current definitions of a repository.
type Applied struct {
	Repo      string    `json:"repo"`
	Version   int       `json:"version"`
	Hash      string    `json:"hash"`
	Key       string    `json:"key"` // the version's YAML
	AppliedBy string    `json:"applied_by"`
	AppliedAt time.Time `json:"applied_at"`
	Reason    string    `json:"reason,omitempty"`
	// Owner is the model group ("group:<name>") or model ("model:<name>") whose models may
	// change the repository: set by its first apply, kept by every later one.
	Owner string `json:"owner,omitempty"`
}

func currentKey(repo string) string { return "features/_repos/" + repo + "/current.json" }

// VersionKey is where a repository's version n with content hash h is kept (an apply that
// lost the race leaves its file under another hash, never current).
func VersionKey(repo string, n int, hash string) string {
	return fmt.Sprintf("features/_repos/%s/versions/%06d-%s.yaml", repo, n, hash[:12])
}

// Current reads the applied definitions (ok false: none yet) and the pointer's ETag.
func Current(ctx context.Context, b objstore.Bucket, repo string) (Applied, Repo, string, bool, error) {
	data, obj, err := objstore.ReadAll(ctx, b, currentKey(repo))
	if errors.Is(err, objstore.ErrNotFound) {
		return Applied{}, Repo{}, "", false, nil
	}
	if err != nil {
		return Applied{}, Repo{}, "", false, err
	}
	var a Applied
	if err := json.Unmarshal(data, &a); err != nil {
		return Applied{}, Repo{}, "", false, fmt.Errorf("%s: %w", b.URI(currentKey(repo)), err)
	}
	raw, _, err := objstore.ReadAll(ctx, b, a.Key)
	if err != nil {
		return Applied{}, Repo{}, "", false, err
	}
	r, err := ParseRepo(raw)
	if err != nil {
		return Applied{}, Repo{}, "", false, fmt.Errorf("%s: %w", b.URI(a.Key), err)
	}
	return a, r, obj.ETag, true, nil
}

// Change is one difference between the applied definitions and new ones.
type Change struct {
	Kind   string `json:"kind"` // entity, view, feature, service
	Name   string `json:"name"`
	Action string `json:"action"` // add, remove, change
}

func (c Change) String() string { return c.Action + " " + c.Kind + " " + c.Name }

// Plan lists what applying next over cur would change (entities, views, each feature of a
// view, services), in a stable order.
func Plan(cur, next Repo) []Change {
	var out []Change
	diff := func(kind string, a, b map[string]any) {
		var names []string
		for n := range a {
			names = append(names, n)
		}
		for n := range b {
			if _, ok := a[n]; !ok {
				names = append(names, n)
			}
		}
		slices.Sort(names)
		for _, n := range names {
			x, inA := a[n]
			y, inB := b[n]
			switch {
			case !inA:
				out = append(out, Change{kind, n, "add"})
			case !inB:
				out = append(out, Change{kind, n, "remove"})
			case !reflect.DeepEqual(x, y):
				out = append(out, Change{kind, n, "change"})
			}
		}
	}
	index := func(r Repo) (ents, views, feats, svcs map[string]any) {
		ents, views, feats, svcs = map[string]any{}, map[string]any{}, map[string]any{}, map[string]any{}
		for _, e := range r.Entities {
			ents[e.Name] = e
		}
		for _, v := range r.Views {
			shape := v
			shape.Features = nil
			views[v.Name] = shape
			for _, f := range v.Features {
				feats[v.Name+":"+f.Name] = f
			}
		}
		for _, s := range r.Services {
			svcs[s.Name] = s
		}
		return
	}
	ae, av, af, as := index(cur)
	be, bv, bf, bs := index(next)
	diff("entity", ae, be)
	diff("view", av, bv)
	diff("feature", af, bf)
	diff("service", as, bs)
	return out
}

// ErrConflict: the definitions changed since they were read.
var ErrConflict = errors.New("feature definitions changed concurrently")

// Apply records raw (already validated) as the repository's next version and moves the
// pointer to it if it is still at expectedETag (empty: no definitions yet). Applying the
// definitions already current changes nothing.
func Apply(ctx context.Context, b objstore.Bucket, repo string, raw []byte, expectedETag, by, reason, owner string) (Applied, bool, error) {
	cur, _, etag, ok, err := Current(ctx, b, repo)
	if err != nil {
		return Applied{}, false, err
	}
	if etag != expectedETag {
		return cur, false, fmt.Errorf("%w: %s is at %q, not %q: plan again", ErrConflict, repo, etag, expectedETag)
	}
	h := Hash(raw)
	if ok && cur.Hash == h {
		return cur, false, nil
	}
	next := Applied{Repo: repo, Version: cur.Version + 1, Hash: h, Key: VersionKey(repo, cur.Version+1, h), AppliedBy: by,
		AppliedAt: time.Now().UTC(), Reason: reason, Owner: cmp.Or(cur.Owner, owner)}
	// The same content under the same key: a retried apply; written once either way.
	if _, err := objstore.CreateOnce(ctx, b, next.Key, raw, "application/yaml"); err != nil {
		return cur, false, err
	}
	body, _ := json.MarshalIndent(next, "", " ")
	opts := objstore.PutOptions{IfMatch: etag, ContentType: "application/json"}
	if etag == "" {
		opts = objstore.PutOptions{IfNoneMatch: true, ContentType: "application/json"}
	}
	if _, err := b.Put(ctx, currentKey(repo), body, opts); err != nil {
		if errors.Is(err, objstore.ErrPreconditionFailed) {
			return cur, false, fmt.Errorf("%w: %s moved while applying: plan again", ErrConflict, repo)
		}
		return cur, false, err
	}
	return next, true, nil
}
