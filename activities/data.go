package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/objstore"
)

// Data pins dataset windows and validates them.
type Data struct {
	Store   objstore.Bucket
	Metrics *Metrics
}

// Snapshot lists the window's partitions and stores the pinned manifest. It is idempotent:
// the manifest is keyed by run, and a retry returns the one already stored.
func (d *Data) Snapshot(ctx context.Context, in SnapshotInput) (SnapshotResult, error) {
	from, err1 := time.Parse(dataset.DateLayout, in.From)
	to, err2 := time.Parse(dataset.DateLayout, in.To)
	if err := errors.Join(err1, err2); err != nil {
		return SnapshotResult{}, invalid("snapshot: window %s..%s: %v", in.From, in.To, err)
	}
	id := in.RunID
	key := dataset.SnapshotKey(in.Dataset, id)
	if data, _, err := objstore.ReadAll(ctx, d.Store, key); err == nil {
		var s dataset.Snapshot
		if err := json.Unmarshal(data, &s); err == nil {
			return snapshotResult(d.Store, key, s), nil
		}
	}
	s, err := dataset.TakeSnapshot(ctx, d.Store, in.Dataset, id, from, to)
	if err != nil {
		return SnapshotResult{}, classify("snapshot", err)
	}
	body, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		return SnapshotResult{}, err
	}
	if _, err := d.Store.Put(ctx, key, body, objstore.PutOptions{IfNoneMatch: true, ContentType: "application/json"}); err != nil && !errors.Is(err, objstore.ErrPreconditionFailed) {
		return SnapshotResult{}, classify("snapshot", err)
	}
	return snapshotResult(d.Store, key, s), nil
}

func snapshotResult(b objstore.Bucket, key string, s dataset.Snapshot) SnapshotResult {
	return SnapshotResult{Key: key, URI: b.URI(key), ID: s.ID, Files: len(s.Files), Rows: s.Rows, Bytes: s.Bytes}
}

// loadSnapshot reads a stored manifest.
func loadSnapshot(ctx context.Context, b objstore.Bucket, key string) (dataset.Snapshot, error) {
	var s dataset.Snapshot
	data, _, err := objstore.ReadAll(ctx, b, key)
	if err != nil {
		return s, classify("read snapshot", err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, invalid("snapshot manifest %s: %v", key, err)
	}
	return s, nil
}

// ColumnStats counts problems per column.
type ColumnStats struct {
	Null, NaN, Inf int64
}

// FileReport is one file's validation result.
type FileReport struct {
	File        string `json:"file"`
	Read        int    `json:"rows_read"`
	Accepted    int    `json:"rows_accepted"`
	Quarantined int    `json:"rows_quarantined"`
}

// ValidationReport is stored at reports/<model>/<run>/validation.json.
type ValidationReport struct {
	Snapshot        string                 `json:"snapshot"`
	Columns         []string               `json:"columns"`
	Files           []FileReport           `json:"files"`
	ColumnProblems  map[string]ColumnStats `json:"column_problems"`
	RowsRead        int64                  `json:"rows_read"`
	RowsAccepted    int64                  `json:"rows_accepted"`
	RowsQuarantined int64                  `json:"rows_quarantined"`
	BadShare        float64                `json:"bad_share"`
	MaxBadShare     float64                `json:"max_bad_share"`
	Passed          bool                   `json:"passed"`
	Error           string                 `json:"error,omitempty"`
	Quarantine      string                 `json:"quarantine,omitempty"`
}

// Validate checks every pinned file against the spec's contract: the model's columns exist
// and are numeric, and every row's values are present and finite. Broken rows go to
// quarantine/<dataset>/<snapshot>/rows.jsonl with the reason; a broken file is copied to
// quarantine with its reason and fails the run, as does a bad-row share over the limit.
func (d *Data) Validate(ctx context.Context, in StepInput) (ValidateResult, error) {
	s, err := loadSnapshot(ctx, d.Store, in.SnapshotKey)
	if err != nil {
		return ValidateResult{}, err
	}
	qdir := fmt.Sprintf("quarantine/%s/%s/", s.Dataset, s.ID)
	rep := ValidationReport{Snapshot: d.Store.URI(in.SnapshotKey), Columns: in.Spec.Columns(),
		ColumnProblems: map[string]ColumnStats{}, MaxBadShare: in.Spec.Validation.MaxBadRowShare}
	var rows bytes.Buffer
	enc := json.NewEncoder(&rows)
	_, loadErr := dataset.Load(ctx, d.Store, s, in.Spec.Columns(), func(fc dataset.FileCheck) {
		activity.RecordHeartbeat(ctx, fc.File)
		rep.Files = append(rep.Files, FileReport{File: fc.File, Read: fc.Read, Accepted: fc.Accepted, Quarantined: len(fc.Issues)})
		rep.RowsRead += int64(fc.Read)
		rep.RowsAccepted += int64(fc.Accepted)
		rep.RowsQuarantined += int64(len(fc.Issues))
		for _, is := range fc.Issues {
			st := rep.ColumnProblems[is.Column]
			switch is.Reason {
			case "null value":
				st.Null++
			case "NaN value":
				st.NaN++
			default:
				st.Inf++
			}
			rep.ColumnProblems[is.Column] = st
			_ = enc.Encode(is)
		}
	})
	if d.Metrics != nil {
		d.Metrics.RowsRead.WithLabelValues(s.Dataset).Add(float64(rep.RowsRead))
		d.Metrics.RowsRejected.WithLabelValues(s.Dataset).Add(float64(rep.RowsQuarantined))
	}
	if rows.Len() > 0 {
		rep.Quarantine = d.Store.URI(qdir + "rows.jsonl")
		if err := d.putOnce(ctx, qdir+"rows.jsonl", rows.Bytes()); err != nil {
			return ValidateResult{}, err
		}
	}
	var failure error
	var de *dataset.DataError
	switch {
	case errors.As(loadErr, &de):
		// Keep the broken file aside with the reason, then fail the run.
		if err := d.quarantineFile(ctx, qdir, de); err != nil {
			return ValidateResult{}, err
		}
		failure = invalid("validate: %v", loadErr)
	case loadErr != nil:
		return ValidateResult{}, classify("validate", loadErr)
	}
	if rep.RowsRead > 0 {
		rep.BadShare = float64(rep.RowsQuarantined) / float64(rep.RowsRead)
	}
	if failure == nil && rep.BadShare > rep.MaxBadShare {
		failure = invalid("validate: %d of %d rows (%.2f%%) broke the contract, over the limit of %.2f%%; first: %s; all in %s",
			rep.RowsQuarantined, rep.RowsRead, 100*rep.BadShare, 100*rep.MaxBadShare, firstIssue(rows.Bytes()), rep.Quarantine)
	}
	rep.Passed = failure == nil
	if failure != nil {
		rep.Error = failure.Error()
	}
	key := reportKey(in.Model, in.RunID, "validation.json")
	body, _ := json.MarshalIndent(rep, "", " ")
	if _, err := d.Store.Put(ctx, key, body, objstore.PutOptions{ContentType: "application/json"}); err != nil {
		return ValidateResult{}, classify("validate", err)
	}
	if failure != nil {
		return ValidateResult{}, failure
	}
	return ValidateResult{ReportURI: d.Store.URI(key), QuarantineURI: rep.Quarantine, RowsRead: rep.RowsRead,
		RowsAccepted: rep.RowsAccepted, RowsQuarantined: rep.RowsQuarantined, BadShare: rep.BadShare}, nil
}

func firstIssue(jsonl []byte) string {
	line, _, _ := bytes.Cut(jsonl, []byte("\n"))
	var is dataset.RowIssue
	if json.Unmarshal(line, &is) != nil {
		return "none"
	}
	return fmt.Sprintf("file %s row %d column %s: %s", is.File, is.Row, is.Column, is.Reason)
}

func (d *Data) putOnce(ctx context.Context, key string, body []byte) error {
	_, err := d.Store.Put(ctx, key, body, objstore.PutOptions{IfNoneMatch: true})
	if err != nil && !errors.Is(err, objstore.ErrPreconditionFailed) {
		return classify("quarantine", err)
	}
	return nil
}

// quarantineFile copies a rejected file next to a JSON note of why.
func (d *Data) quarantineFile(ctx context.Context, qdir string, de *dataset.DataError) error {
	base := qdir + "files/" + bytesSafe(de.File)
	note, _ := json.MarshalIndent(map[string]any{"file": de.File, "column": de.Column, "reason": de.Reason}, "", " ")
	if err := d.putOnce(ctx, base+".reason.json", note); err != nil {
		return err
	}
	data, _, err := objstore.ReadAll(ctx, d.Store, de.File)
	if err != nil {
		return classify("quarantine", err)
	}
	return d.putOnce(ctx, base, data)
}

func bytesSafe(key string) string {
	return string(bytes.ReplaceAll([]byte(key), []byte("/"), []byte("__")))
}
