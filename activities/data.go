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

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/dataset/delta"
	"github.com/driftline/driftline/dataset/iceberg"
	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/training"
)

// Data pins dataset windows and reads them once: validation, drift and training preparation
// in one pass.
type Data struct {
	Store    objstore.Bucket
	Registry *registry.Registry
	Metrics  *Metrics
	// CheckpointEvery is how often a pass stores its state to resume from (0: the default).
	CheckpointEvery time.Duration
	// Catalogs are the Iceberg catalogs a spec's dataset.table.catalog may name.
	Catalogs map[string]*iceberg.Catalog
}

// Snapshot lists the window's partitions and stores the pinned manifest. It is idempotent:
// the manifest is keyed by run, and a retry returns the one already stored.
func (d *Data) Snapshot(ctx context.Context, in pipeline.SnapshotInput) (pipeline.SnapshotResult, error) {
	from, err1 := time.Parse(dataset.DateLayout, in.From)
	to, err2 := time.Parse(dataset.DateLayout, in.To)
	if err := errors.Join(err1, err2); err != nil {
		return pipeline.SnapshotResult{}, invalid("snapshot: window %s..%s: %v", in.From, in.To, err)
	}
	key := dataset.SnapshotKey(in.Dataset, in.RunID)
	if s, err := loadSnapshot(ctx, d.Store, key); err == nil {
		return piecesResult(d.Store, key, s, in.PartitionRows)
	}
	var s dataset.Snapshot
	var err error
	if in.Table != nil {
		s, err = d.tableSnapshot(ctx, in, from, to)
	} else {
		s, err = dataset.TakeSnapshot(ctx, d.Store, in.Dataset, in.RunID, from, to)
	}
	if err != nil {
		return pipeline.SnapshotResult{}, classify("snapshot", err)
	}
	if err := putJSON(ctx, d.Store, key, s, true); err != nil {
		return pipeline.SnapshotResult{}, classify("snapshot", err)
	}
	return piecesResult(d.Store, key, s, in.PartitionRows)
}

// tableSnapshot pins the window of a table dataset: the table's version the spec names (or
// the latest), and the files of the window's days.
func (d *Data) tableSnapshot(ctx context.Context, in pipeline.SnapshotInput, from, to time.Time) (dataset.Snapshot, error) {
	t := in.Table
	var when time.Time
	if t.AsOf != "" {
		var err error
		if when, err = time.Parse(time.RFC3339, t.AsOf); err != nil {
			return dataset.Snapshot{}, invalid("dataset.table.as_of %q: %v", t.AsOf, err)
		}
	}
	if t.Format == "iceberg" {
		src, err := iceberg.Resolve(d.Catalogs, t.Path, t.Catalog, t.Name)
		if err != nil {
			return dataset.Snapshot{}, err
		}
		at := iceberg.At{Time: when}
		if t.SnapshotID != nil {
			at.SnapshotID = *t.SnapshotID
		}
		return iceberg.TakeSnapshot(ctx, d.Store, in.Dataset, in.RunID, src, at, in.EventTime, from, to)
	}
	at := delta.Latest
	switch {
	case t.Version != nil:
		at = delta.At{Version: *t.Version}
	case t.AsOf != "":
		at = delta.At{Version: -1, Time: when}
	}
	return delta.TakeSnapshot(ctx, d.Store, in.Dataset, in.RunID, t.Path, at, in.EventTime, from, to)
}

// maxPiecesPerFile bounds how finely one file is cut: its pieces' partitions run in one batch
// (their unique key is checked across them there), whose history grows with them.
const maxPiecesPerFile = 2000

// piecesResult is the snapshot's result with the pieces partition_rows cuts it into.
func piecesResult(b objstore.Bucket, key string, s dataset.Snapshot, partitionRows int64) (pipeline.SnapshotResult, error) {
	out := snapshotResult(b, key, s)
	if partitionRows <= 0 {
		return out, nil
	}
	pieces := s.Pieces(partitionRows)
	for i := 0; i < len(pieces); {
		j := i + 1
		for j < len(pieces) && pieces[j].File == pieces[i].File {
			j++
		}
		if pieces[i].Split() {
			if j-i > maxPiecesPerFile {
				return out, invalid("dataset.partition_rows: %d cuts %s (%d rows) into %d pieces, more than %d: raise it", partitionRows, s.Files[pieces[i].File].Key, s.Files[pieces[i].File].Rows, j-i, maxPiecesPerFile)
			}
			out.Splits = append(out.Splits, pipeline.PieceSpan{From: i, To: j})
		}
		i = j
	}
	if len(out.Splits) > 0 {
		out.Pieces = len(pieces)
	}
	return out, nil
}

func snapshotResult(b objstore.Bucket, key string, s dataset.Snapshot) pipeline.SnapshotResult {
	return pipeline.SnapshotResult{Key: key, URI: b.URI(key), ID: s.ID, Files: len(s.Files), Rows: s.Rows, Bytes: s.Bytes}
}

// Inspect reads the whole window once: every row is checked against the contract (rejected
// rows go to quarantine with the reason and all their values, a broken file is copied there
// and fails the run), accepted rows feed the drift window against the production reference,
// and accepted training rows feed the candidate's reference profile and the gbdt bin sample.
func (d *Data) Inspect(ctx context.Context, in pipeline.StepInput) (pipeline.InspectResult, error) {
	return inspect(ctx, d.Store, d.Registry, d.Metrics, in, passAll, d.CheckpointEvery)
}

// Validate is the validation part of Inspect alone (runs started before the one-pass shape).
func (d *Data) Validate(ctx context.Context, in pipeline.StepInput) (pipeline.ValidateResult, error) {
	res, err := inspect(ctx, d.Store, d.Registry, d.Metrics, in, passValidate, d.CheckpointEvery)
	return res.Validation, err
}

// Detect is the drift part of Inspect alone (runs started before the one-pass shape).
func (d *Data) Detect(ctx context.Context, in pipeline.StepInput) (pipeline.DriftResult, error) {
	res, err := inspect(ctx, d.Store, d.Registry, d.Metrics, in, passDrift, d.CheckpointEvery)
	return res.Drift, err
}

type pass uint8

const (
	passValidate pass = 1 << iota
	passDrift
	passPrep
	passAll = passValidate | passDrift | passPrep
)

// inspect is the one pass; what it computes and stores is chosen by p.
func inspect(ctx context.Context, store objstore.Bucket, reg *registry.Registry, m *Metrics, in pipeline.StepInput, p pass, every time.Duration) (pipeline.InspectResult, error) {
	var out pipeline.InspectResult
	ip, err := newInspection(ctx, store, reg, in, p, every, fmt.Sprintf("inspect%d", p))
	if err != nil {
		return out, err
	}
	out.ResumedAfter, out.ResumedRows, err = ip.resume()
	if err != nil {
		return out, err
	}
	scanErr, err := ip.scan(dataset.AllDays)
	if err != nil {
		return out, err
	}
	return ip.finish(out, m, scanErr)
}

// newInspection loads the run's snapshot and starts the pass's state; step names its
// checkpoints.
func newInspection(ctx context.Context, store objstore.Bucket, reg *registry.Registry, in pipeline.StepInput, p pass, every time.Duration, step string) (*inspection, error) {
	s, err := loadSnapshot(ctx, store, in.SnapshotKey)
	if err != nil {
		return nil, err
	}
	cut, err := holdoutCut(s, in.Spec)
	if err != nil {
		return nil, err
	}
	ip := &inspection{ctx: ctx, store: store, reg: reg, in: in, p: p, s: s, cut: cut, every: every, step: step,
		qdir: fmt.Sprintf("quarantine/%s/%s/", s.Dataset, s.ID)}
	return ip, ip.fresh()
}

// resume restores the pass's state from its last checkpoint, if a retry finds one; it says
// after which batch the scan goes on, with the rows the checkpoint had counted.
func (ip *inspection) resume() (string, int64, error) {
	after, why := ip.cp.resume(ip.ctx)
	if why != "" {
		activity.GetLogger(ip.ctx).Warn("inspect starts over", "reason", why)
		if err := ip.fresh(); err != nil { // a partly restored state is dropped
			return "", 0, err
		}
	}
	ip.after = after
	if after == nil {
		return "", 0, nil
	}
	activity.GetLogger(ip.ctx).Info("inspect resumes from its checkpoint", "file_index", after.FileIndex, "row_group", after.RowGroup, "rows", ip.cp.rows)
	return fmt.Sprintf("file %d row group %d", after.FileIndex, after.RowGroup), ip.cp.rows, nil
}

// scan runs the pass over the window's files keep takes. A file that breaks the contract's
// shape is kept aside with the reason and returned as scanErr (the validation reports it and
// fails the run); any other failure is err.
func (ip *inspection) scan(keep dataset.Days) (scanErr, err error) {
	s := ip.s
	visit := func(b *dataset.Batch) error { return ip.batch(b, ip.cut) }
	if ip.pieces != nil {
		var pieces []dataset.Piece
		for _, p := range ip.pieces {
			if keep(s.Files[p.File].Date) {
				pieces = append(pieces, p)
			}
		}
		scanErr = dataset.ScanPiecesAfter(ip.ctx, ip.store, s, ip.in.Spec.Contract, pieces, ip.keys, ip.after, visit)
	} else {
		scanErr = dataset.ScanFilesAfter(ip.ctx, ip.store, s, ip.in.Spec.Contract, func(fi int) bool { return keep(s.Files[fi].Date) && ip.takes(fi) }, ip.after, visit)
	}
	var de *dataset.DataError
	switch {
	case errors.As(scanErr, &de) && ip.p&passValidate != 0:
		// Keep the broken file aside with the reason, report it, then fail the run.
		if err := quarantineFile(ip.ctx, ip.store, ip.qdir, de); err != nil {
			return nil, err
		}
		ip.val.FileFailed(de)
		return scanErr, nil
	case scanErr != nil:
		return nil, classify("inspect", scanErr)
	}
	return nil, nil
}

// takes says whether file fi is in the pass (every file, or the partition's range).
func (ip *inspection) takes(fi int) bool { return ip.to == 0 || (fi >= ip.from && fi < ip.to) }

// finish stores what the pass found: the validation report (failing the run when the window
// breaks its contract, or scanErr), the drift report, the candidate's reference profile and
// bins; then drops the checkpoints.
func (ip *inspection) finish(out pipeline.InspectResult, m *Metrics, scanErr error) (pipeline.InspectResult, error) {
	var err error
	if ip.p&passValidate != 0 {
		if out.Validation, err = ip.validation(m, scanErr); err != nil {
			return out, err
		}
	}
	if ip.dw != nil {
		if out.Drift, err = ip.dw.finish(ip.ctx, ip.store, m, ip.in); err != nil {
			return out, err
		}
	}
	if ip.prep != nil {
		if out.ProfileKey, out.BinsKey, err = storePrep(ip.ctx, ip.store, ip.in, ip.prep); err != nil {
			return out, err
		}
	}
	ip.cp.clear(ip.ctx)
	return out, nil
}

// inspection is the one pass's state: the validation, the drift window and the training
// preparation it feeds, and the checkpointer that stores them for a retry.
type inspection struct {
	ctx   context.Context
	store objstore.Bucket
	reg   *registry.Registry
	in    pipeline.StepInput
	p     pass
	s     dataset.Snapshot
	cut   string // the holdout's first day: training rows are before it
	every time.Duration
	step  string // names the checkpoints
	qdir  string // where rejected rows and files are kept aside
	// from, to: the partition's files [from, to) (to 0: every file); after: where a resumed
	// scan goes on (nil: from the start).
	from, to int
	after    *dataset.Position
	// pieces: the partition's pieces when the window is cut into pieces (nil: files from, to);
	// keys: the unique key across split files' pieces; rewrite: a second pass of the
	// partition, whose quarantined rows replace its first pass's.
	pieces  []dataset.Piece
	keys    *dataset.KeyCheck
	rewrite bool

	val  *dataset.Validation
	dw   *driftWindow
	prep *training.Prep
	cp   *checkpointer
}

// fresh starts the pass's state from nothing.
func (ip *inspection) fresh() (err error) {
	sp, in := ip.in.Spec, ip.in
	ip.cp = newCheckpointer(ip.store, in.Model, in.RunID, ip.step, ip.every)
	ip.val = dataset.NewValidation(ip.store.URI(in.SnapshotKey), sp.Contract)
	ip.cp.add("validation", ip.val)
	ip.dw, ip.prep = nil, nil
	if ip.p&passDrift != 0 {
		if ip.dw, err = newDriftWindow(ip.ctx, ip.reg, in); err != nil {
			return classify("drift", err)
		}
		if ip.dw.w != nil {
			ip.cp.add("drift", ip.dw.w)
		}
	}
	if ip.p&passPrep != 0 {
		if ip.prep, err = training.NewPrep(sp, ip.s.Rows); err != nil {
			return classify("prepare training", err)
		}
		ip.cp.add("prep", ip.prep)
	}
	return nil
}

// batch feeds one batch to the validation, the drift window and (days before the holdout
// cut) training, keeps its rejected rows aside, and checkpoints.
func (ip *inspection) batch(b *dataset.Batch, cut string) error {
	ip.val.Add(b)
	train := ip.prep != nil && b.Date < cut
	for r := 0; r < b.Rows; r++ {
		if !b.Accepted[r] {
			continue
		}
		if ip.dw != nil {
			ip.dw.add(b, r)
		}
		if train {
			ip.prep.Add(b, r)
		}
	}
	if len(b.Issues) > 0 && ip.p&passValidate != 0 {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		for _, is := range b.Issues {
			_ = enc.Encode(is)
		}
		key := fmt.Sprintf("%srows/%05d-%05d.jsonl", ip.qdir, b.FileIndex, b.RowGroup)
		if ip.rewrite {
			if _, err := ip.store.Put(ip.ctx, key, buf.Bytes(), objstore.PutOptions{}); err != nil {
				return classify("quarantine", err)
			}
		} else if err := putOnce(ip.ctx, ip.store, key, buf.Bytes()); err != nil {
			return err
		}
	}
	ip.cp.done(ip.ctx, b)
	return nil
}

// validation stores the validation report and counts the rows; a window that fails its
// contract (or a file that could not be read, scanErr) fails the run, not retryable.
func (ip *inspection) validation(m *Metrics, scanErr error) (pipeline.ValidateResult, error) {
	in := ip.in
	rep, failure := ip.val.Report(ip.store.URI(ip.qdir + "rows/"))
	if scanErr != nil {
		failure = scanErr
		rep.Passed, rep.Error = false, scanErr.Error()
	}
	key := reportKey(in.Model, in.RunID, "validation.json")
	if err := putJSON(ip.ctx, ip.store, key, rep, false); err != nil {
		return pipeline.ValidateResult{}, classify("validate", err)
	}
	if m != nil {
		m.RowsRead.WithLabelValues(in.Model).Add(float64(rep.RowsRead))
		m.RowsRejected.WithLabelValues(in.Model).Add(float64(rep.RowsQuarantined))
	}
	if failure != nil {
		ip.cp.clear(ip.ctx)
		return pipeline.ValidateResult{}, invalid("validate: %v", failure)
	}
	return pipeline.ValidateResult{ReportURI: ip.store.URI(key), QuarantineURI: rep.Quarantine, RowsRead: rep.RowsRead,
		RowsAccepted: rep.RowsAccepted, RowsQuarantined: rep.RowsQuarantined, BadShare: rep.BadShare}, nil
}

// storePrep writes the candidate's reference profile and (gbdt) bins.
func storePrep(ctx context.Context, store objstore.Bucket, in pipeline.StepInput, prep *training.Prep) (profileKey, binsKey string, err error) {
	binner, err := prep.Binner()
	if err != nil {
		return "", "", invalid("prepare training: %v", err)
	}
	profileKey = reportKey(in.Model, in.RunID, "candidate/profile.json")
	if err := putJSON(ctx, store, profileKey, prep.Profile(), false); err != nil {
		return "", "", classify("prepare training", err)
	}
	if binner != nil {
		binsKey = reportKey(in.Model, in.RunID, "candidate/bins.json")
		if err := putJSON(ctx, store, binsKey, binner, false); err != nil {
			return "", "", classify("prepare training", err)
		}
	}
	return profileKey, binsKey, nil
}

// driftWindow compares accepted rows with the production version's reference profile.
type driftWindow struct {
	reference int           // production version; 0: none, nothing to compare
	profile   drift.Profile // its reference profile, the spec's features
	w         *drift.Window
	fr        *dataset.Features
	idx       []int
}

func newDriftWindow(ctx context.Context, reg *registry.Registry, in pipeline.StepInput) (*driftWindow, error) {
	dep, _, err := reg.Deployment(ctx, in.Model)
	if err != nil || dep.Production == 0 {
		return &driftWindow{}, err
	}
	prof, err := reg.LoadProfile(ctx, in.Model, dep.Production)
	if err != nil {
		return nil, err
	}
	// Compare the features both the reference and this spec know.
	var keep drift.Profile
	for _, f := range in.Spec.Features {
		if fp, ok := prof.Feature(f); ok {
			keep.Features = append(keep.Features, fp)
		}
	}
	fr, err := training.NewFeatures(in.Spec)
	if err != nil {
		return nil, err
	}
	dw := &driftWindow{reference: dep.Production, profile: keep, w: drift.NewWindow(keep), fr: fr, idx: make([]int, len(in.Spec.Features))}
	for i, f := range in.Spec.Features {
		dw.idx[i] = dw.w.Index(f)
	}
	return dw, nil
}

func (dw *driftWindow) add(b *dataset.Batch, r int) {
	if dw.w == nil {
		return
	}
	key := b.RowKey0 + uint64(r)
	dw.fr.Observe(b, r, func(i int, v float64) {
		if dw.idx[i] >= 0 {
			dw.w.AddNumeric(dw.idx[i], v, key)
		}
	}, func(i int, v string) {
		if dw.idx[i] >= 0 {
			dw.w.AddCategory(dw.idx[i], v)
		}
	})
}

// DriftReport is stored at reports/<model>/<run>/drift.json.
type DriftReport struct {
	Model            string `json:"model"`
	RunID            string `json:"run_id"`
	ReferenceVersion int    `json:"reference_version"`
	Snapshot         string `json:"snapshot"`
	drift.Report
}

func (dw *driftWindow) finish(ctx context.Context, store objstore.Bucket, m *Metrics, in pipeline.StepInput) (pipeline.DriftResult, error) {
	if dw.reference == 0 {
		return pipeline.DriftResult{Why: "no production model yet: nothing to compare against"}, nil
	}
	rep := dw.w.Report(in.Spec.Drift.Config())
	key := reportKey(in.Model, in.RunID, "drift.json")
	if err := putJSON(ctx, store, key, DriftReport{Model: in.Model, RunID: in.RunID, ReferenceVersion: dw.reference,
		Snapshot: store.URI(in.SnapshotKey), Report: rep}, false); err != nil {
		return pipeline.DriftResult{}, classify("drift", err)
	}
	res := pipeline.DriftResult{ReferenceVersion: dw.reference, Drifted: rep.Drifted, Score: rep.Score, Share: rep.Share,
		Why: rep.Why, ReportURI: store.URI(key)}
	for _, f := range rep.Features {
		if f.Drifted {
			res.DriftedFeatures = append(res.DriftedFeatures, f.Name)
		}
		if m != nil {
			m.DriftPSI.WithLabelValues(in.Model, f.Name).Set(f.PSI)
			m.DriftKS.WithLabelValues(in.Model, f.Name).Set(f.KS)
		}
	}
	if m != nil {
		m.DriftScore.WithLabelValues(in.Model).Set(rep.Score)
	}
	return res, nil
}

// quarantineFile copies a rejected file next to a JSON note of why.
func quarantineFile(ctx context.Context, store objstore.Bucket, qdir string, de *dataset.DataError) error {
	base := qdir + "files/" + strings.ReplaceAll(de.File, "/", "__")
	note, _ := json.MarshalIndent(map[string]any{"file": de.File, "column": de.Column, "reason": de.Reason}, "", " ")
	if err := putOnce(ctx, store, base+".reason.json", note); err != nil {
		return err
	}
	data, _, err := objstore.ReadAll(ctx, store, de.File)
	if err != nil {
		return classify("quarantine", err)
	}
	return putOnce(ctx, store, base, data)
}
