package tablewatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/driftline/driftline/dataset/delta"
	"github.com/driftline/driftline/dataset/iceberg"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/spec"
)

// Closed is a day a table's version closed: the trigger's input.
type Closed struct {
	Day     string // YYYY-MM-DD
	Version int64  // the table version that closed it (Delta version, Iceberg snapshot id)
	URI     string // the table
}

// Watcher follows one table dataset.
type Watcher struct {
	Store     objstore.Bucket
	Dataset   string
	Table     spec.TableSource
	EventTime string
	// Catalogs are the Iceberg catalogs Table.Catalog may name.
	Catalogs map[string]*iceberg.Catalog
	// OnClosed is called once per check that closes days, with the newest of them.
	OnClosed func(ctx context.Context, c Closed) error
	Log      *slog.Logger
}

// state is what the watchers of a dataset share: the version last seen and its newest day.
type state struct {
	Version int64     `json:"version"`
	Newest  string    `json:"newest"`
	Seen    time.Time `json:"seen"`
}

func stateKey(ds string) string       { return fmt.Sprintf("tablewatch/%s/state.json", ds) }
func closedKey(ds, day string) string { return fmt.Sprintf("tablewatch/%s/closed/%s.json", ds, day) }

func (w *Watcher) logger() *slog.Logger {
	if w.Log == nil {
		return slog.Default()
	}
	return w.Log
}

// days is the table's latest version, the days it holds and the table's URI.
func (w *Watcher) days(ctx context.Context) (int64, []string, string, error) {
	if w.Table.Format == "iceberg" {
		src, err := iceberg.Resolve(w.Catalogs, w.Table.Path, w.Table.Catalog, w.Table.Name)
		if err != nil {
			return 0, nil, "", err
		}
		v, days, err := iceberg.Days(ctx, w.Store, src, w.EventTime)
		return v, days, src.URI(w.Store), err
	}
	v, days, err := delta.Days(ctx, w.Store, w.Table.Path, w.EventTime)
	return v, days, w.Store.URI(w.Table.Path), err
}

// Check reads the table's latest version once. The first check records it (days already in
// the table are history, not news); a later version whose newest day is past the recorded
// one closes the days from the recorded newest up to (not including) its own newest that
// hold rows. It returns the days it closed.
func (w *Watcher) Check(ctx context.Context) ([]string, error) {
	version, days, uri, err := w.days(ctx)
	if err != nil || len(days) == 0 {
		return nil, err
	}
	newest := days[len(days)-1]
	raw, obj, err := objstore.ReadAll(ctx, w.Store, stateKey(w.Dataset))
	var prev state
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		return nil, w.putState(ctx, state{Version: version, Newest: newest}, "")
	case err != nil:
		return nil, err
	}
	if err := json.Unmarshal(raw, &prev); err != nil {
		return nil, fmt.Errorf("%s: %w", w.Store.URI(stateKey(w.Dataset)), err)
	}
	if version == prev.Version || newest <= prev.Newest {
		if version != prev.Version {
			return nil, w.putState(ctx, state{Version: version, Newest: prev.Newest}, obj.ETag)
		}
		return nil, nil
	}
	var closed []string
	for _, d := range days {
		if d >= prev.Newest && d < newest {
			closed = append(closed, d)
		}
	}
	if err := w.putState(ctx, state{Version: version, Newest: newest}, obj.ETag); err != nil {
		return nil, err
	}
	var fresh []string
	for _, d := range closed {
		body, _ := json.Marshal(map[string]any{"day": d, "version": version, "closed_at": time.Now().UTC()})
		_, err := w.Store.Put(ctx, closedKey(w.Dataset, d), body, objstore.PutOptions{IfNoneMatch: true, ContentType: "application/json"})
		if errors.Is(err, objstore.ErrPreconditionFailed) {
			continue // another watcher closed it
		}
		if err != nil {
			return fresh, err
		}
		fresh = append(fresh, d)
	}
	if len(fresh) > 0 {
		w.logger().Info("table days closed", "dataset", w.Dataset, "table", uri, "version", version, "days", fresh)
		if w.OnClosed != nil {
			if err := w.OnClosed(ctx, Closed{Day: slices.Max(fresh), Version: version, URI: uri}); err != nil {
				return fresh, fmt.Errorf("trigger for %s: %w", slices.Max(fresh), err)
			}
		}
	}
	return fresh, nil
}

// putState records the version seen: created once, then replaced only over the ETag read
// (a watcher that lost the race leaves the closing to the winner).
func (w *Watcher) putState(ctx context.Context, s state, etag string) error {
	s.Seen = time.Now().UTC()
	body, _ := json.Marshal(s)
	opts := objstore.PutOptions{IfNoneMatch: etag == "", IfMatch: etag, ContentType: "application/json"}
	_, err := w.Store.Put(ctx, stateKey(w.Dataset), body, opts)
	if errors.Is(err, objstore.ErrPreconditionFailed) {
		return errRace
	}
	return err
}

// errRace: another watcher recorded the version first.
var errRace = errors.New("another watcher recorded this version first")

// Run checks every interval until ctx is done; a failed check is logged and retried at the
// next tick.
func (w *Watcher) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := w.Check(ctx); err != nil && !errors.Is(err, errRace) && ctx.Err() == nil {
			w.logger().Warn("table watch", "dataset", w.Dataset, "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
