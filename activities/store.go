package activities

import (
	"context"
	"encoding/json"
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
	var s dataset.Snapshot
	return s, getJSON(ctx, b, key, &s)
}

// holdoutCut is the first holdout date: the last HoldoutDays days of the window are held out.
func holdoutCut(s dataset.Snapshot, sp spec.Spec) (string, error) {
	to, err := time.Parse(dataset.DateLayout, s.To)
	if err != nil {
		return "", invalid("snapshot %s: bad window end %q", s.ID, s.To)
	}
	return to.AddDate(0, 0, 1-sp.Dataset.HoldoutDays).Format(dataset.DateLayout), nil
}
