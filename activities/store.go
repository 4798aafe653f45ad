package activities

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/spec"
)

// putJSON stores v as JSON; once creates it only if absent (a retry finds it there).
func putJSON(ctx context.Context, b objstore.Bucket, key string, v any, once bool) error {
	if _, err := json.Marshal(v); err != nil {
		return invalid("encode %s: %v", key, err)
	}
	if once {
		_, err := objstore.CreateJSONOnce(ctx, b, key, v)
		return err
	}
	return objstore.PutJSON(ctx, b, key, v)
}

// getJSON reads a JSON object into v; a body that does not decode is invalid data.
func getJSON(ctx context.Context, b objstore.Bucket, key string, v any) error {
	data, _, err := objstore.ReadAll(ctx, b, key)
	if err != nil {
		return classify("read "+key, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return invalid("%s: %v", b.URI(key), err)
	}
	return nil
}

func putOnce(ctx context.Context, b objstore.Bucket, key string, body []byte) error {
	if _, err := objstore.CreateOnce(ctx, b, key, body, ""); err != nil {
		return classify("quarantine", err)
	}
	return nil
}

// loadSnapshot reads a stored manifest.
func loadSnapshot(ctx context.Context, b objstore.Bucket, key string) (dataset.Snapshot, error) {
	uri := b.URI(key)
	cached, etag, ok := snapshots.get(uri)
	var opts objstore.GetOptions
	if ok {
		opts.IfNoneMatch = etag
	}
	rc, obj, err := b.Get(ctx, key, opts)
	if ok && errors.Is(err, objstore.ErrNotModified) {
		return cached.Clone(), nil
	}
	if err != nil {
		return dataset.Snapshot{}, classify("read "+key, err)
	}
	defer rc.Close()
	var s dataset.Snapshot
	if err := json.NewDecoder(rc).Decode(&s); err != nil {
		return dataset.Snapshot{}, invalid("%s: %v", uri, err)
	}
	snapshots.put(uri, obj.ETag, s.Clone())
	return s, nil
}

// snapshots keeps the manifests this worker parsed, by URI and ETag: each partition of a
// window loads the window's manifest (10,000 files: about 1.5 MB of JSON), and a conditional
// GET answered "not modified" skips the download and the parse.
var snapshots = &manifestCache{max: 8}

// manifestCache is a small most-recently-used cache of parsed snapshots.
type manifestCache struct {
	mu      sync.Mutex
	max     int
	entries []manifestEntry // most recent last
}

type manifestEntry struct {
	uri, etag string
	s         dataset.Snapshot
}

func (c *manifestCache) get(uri string) (dataset.Snapshot, string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		if e.uri == uri {
			return e.s, e.etag, true
		}
	}
	return dataset.Snapshot{}, "", false
}

func (c *manifestCache) put(uri, etag string, s dataset.Snapshot) {
	if etag == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = slices.DeleteFunc(c.entries, func(e manifestEntry) bool { return e.uri == uri })
	c.entries = append(c.entries, manifestEntry{uri, etag, s})
	if len(c.entries) > c.max {
		c.entries = c.entries[1:]
	}
}

// holdoutCut is the first holdout date: the last HoldoutDays days of the window are held out.
func holdoutCut(s dataset.Snapshot, sp spec.Spec) (string, error) {
	to, err := time.Parse(dataset.DateLayout, s.To)
	if err != nil {
		return "", invalid("snapshot %s: bad window end %q", s.ID, s.To)
	}
	return to.AddDate(0, 0, 1-sp.Dataset.HoldoutDays).Format(dataset.DateLayout), nil
}
