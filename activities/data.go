package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/driftline/driftline/contract"
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

// ColumnStats is one column's validation numbers.
type ColumnStats struct {
	Nulls       int64 `json:"nulls"`
	NaN         int64 `json:"nan"`
	Infinite    int64 `json:"infinite"`
	OutOfRange  int64 `json:"out_of_range"`
	NotAllowed  int64 `json:"not_allowed"`
	Duplicates  int64 `json:"duplicate_keys,omitempty"`
	WrongType   int64 `json:"wrong_type"`
	Distinct    int64 `json:"distinct_estimate"`
	Quarantined int64 `json:"rows_quarantined"`
}

// FileReport is one file's validation result.
type FileReport struct {
	File        string `json:"file"`
	Read        int64  `json:"rows_read"`
	Accepted    int64  `json:"rows_accepted"`
	Quarantined int64  `json:"rows_quarantined"`
	Error       string `json:"error,omitempty"`
}

// ValidationReport is stored at reports/<model>/<run>/validation.json.
type ValidationReport struct {
	Snapshot        string                  `json:"snapshot"`
	Contract        contract.Contract       `json:"contract"`
	Files           []FileReport            `json:"files"`
	Columns         map[string]*ColumnStats `json:"columns"`
	RowsRead        int64                   `json:"rows_read"`
	RowsAccepted    int64                   `json:"rows_accepted"`
	RowsQuarantined int64                   `json:"rows_quarantined"`
	BadShare        float64                 `json:"bad_share"`
	MaxBadShare     float64                 `json:"max_bad_share"`
	Examples        []dataset.RowIssue      `json:"examples,omitempty"`
	Passed          bool                    `json:"passed"`
	Error           string                  `json:"error,omitempty"`
	Quarantine      string                  `json:"quarantine,omitempty"`
}

// Validate checks every pinned file against the spec's data contract, streaming row group by
// row group. Rows that break it go to quarantine/<dataset>/<snapshot>/rows/ with the reason
// and all their values; a file that cannot be read or lacks a contract column is copied to
// quarantine with its reason and fails the run, as does a bad-row share over the limit.
// Nothing is dropped silently: accepted + quarantined = read.
func (d *Data) Validate(ctx context.Context, in StepInput) (ValidateResult, error) {
	s, err := loadSnapshot(ctx, d.Store, in.SnapshotKey)
	if err != nil {
		return ValidateResult{}, err
	}
	c := in.Spec.Contract
	qdir := fmt.Sprintf("quarantine/%s/%s/", s.Dataset, s.ID)
	rep := ValidationReport{Snapshot: d.Store.URI(in.SnapshotKey), Contract: c, Columns: map[string]*ColumnStats{},
		MaxBadShare: c.MaxBadRowShare}
	hlls := map[string]*hll{}
	for _, col := range c.Columns {
		rep.Columns[col.Name] = &ColumnStats{}
		hlls[col.Name] = newHLL()
	}
	fileRep := map[int]*FileReport{}
	scanErr := dataset.Scan(ctx, d.Store, s, c, func(b *dataset.Batch) error {
		activity.RecordHeartbeat(ctx, fmt.Sprintf("%s row group %d", b.File, b.RowGroup))
		fr, ok := fileRep[b.FileIndex]
		if !ok {
			rep.Files = append(rep.Files, FileReport{File: b.File})
			fr = &rep.Files[len(rep.Files)-1]
			fileRep[b.FileIndex] = fr
		}
		fr.Read += int64(b.Rows)
		fr.Quarantined += int64(len(b.Issues))
		fr.Accepted += int64(b.Rows - len(b.Issues))
		for _, col := range c.Columns {
			h := hlls[col.Name]
			for r := 0; r < b.Rows; r++ {
				if !b.Cols[col.Name].Null[r] {
					h.add(b.Value(col, r))
				}
			}
		}
		if len(b.Issues) == 0 {
			return nil
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		for _, is := range b.Issues {
			st := rep.Columns[is.Column]
			st.Quarantined++
			switch {
			case is.Reason == "null value":
				st.Nulls++
			case is.Reason == "NaN value":
				st.NaN++
			case is.Reason == "infinite value":
				st.Infinite++
			case strings.HasPrefix(is.Reason, "below min"), strings.HasPrefix(is.Reason, "above max"):
				st.OutOfRange++
			case is.Reason == "not an allowed value":
				st.NotAllowed++
			case strings.HasPrefix(is.Reason, "duplicate key"):
				st.Duplicates++
			}
			if len(rep.Examples) < 5 {
				rep.Examples = append(rep.Examples, is)
			}
			_ = enc.Encode(is)
		}
		return d.putOnce(ctx, fmt.Sprintf("%srows/%05d-%05d.jsonl", qdir, b.FileIndex, b.RowGroup), buf.Bytes())
	})
	for _, fr := range rep.Files {
		rep.RowsRead += fr.Read
		rep.RowsAccepted += fr.Accepted
		rep.RowsQuarantined += fr.Quarantined
	}
	for name, h := range hlls {
		rep.Columns[name].Distinct = h.estimate()
	}
	if rep.RowsQuarantined > 0 {
		rep.Quarantine = d.Store.URI(qdir + "rows/")
	}
	var failure error
	var de *dataset.DataError
	switch {
	case errors.As(scanErr, &de):
		// Keep the broken file aside with the reason, then fail the run.
		if err := d.quarantineFile(ctx, qdir, de); err != nil {
			return ValidateResult{}, err
		}
		if st, ok := rep.Columns[de.Column]; ok {
			st.WrongType++
		}
		rep.Files = append(rep.Files, FileReport{File: de.File, Error: de.Error()})
		failure = invalid("validate: %v", scanErr)
	case scanErr != nil:
		return ValidateResult{}, classify("validate", scanErr)
	}
	if rep.RowsRead > 0 {
		rep.BadShare = float64(rep.RowsQuarantined) / float64(rep.RowsRead)
	}
	if failure == nil && rep.BadShare > rep.MaxBadShare {
		failure = invalid("validate: %d of %d rows (%.2f%%) broke the contract, over the limit of %.2f%%; for example %s; all of them are in %s",
			rep.RowsQuarantined, rep.RowsRead, 100*rep.BadShare, 100*rep.MaxBadShare, examples(rep.Examples), rep.Quarantine)
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

func examples(issues []dataset.RowIssue) string {
	parts := make([]string, 0, 3)
	for _, is := range issues[:min(3, len(issues))] {
		parts = append(parts, fmt.Sprintf("file %s row %d column %s: %s (%s)", is.File, is.Row, is.Column, is.Reason, is.Value))
	}
	return strings.Join(parts, "; ")
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
	base := qdir + "files/" + strings.ReplaceAll(de.File, "/", "__")
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
