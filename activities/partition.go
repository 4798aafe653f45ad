package activities

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"go.temporal.io/sdk/activity"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/training"
)

// partitionState is a partition's mergeable summary as stored: each accumulator's own
// encoding (the ones its checkpoints use), the production version its drift window compared
// with, and the file that broke the contract's shape, if one did.
type partitionState struct {
	Reference  int
	Validation []byte
	Drift      []byte
	Prep       []byte
	ScanError  string
}

// InspectPartition is the one pass over one partition of the window (the window's pieces
// [FromFile, ToFile): its files, or pieces of row groups of large ones): rejected rows and
// files are kept aside as the whole pass keeps them, a retry resumes from the partition's
// checkpoint, and the partition's mergeable summary (the validation counts, the drift window,
// the training preparation) is stored in the bucket. Its result names the summary, never
// rows; MergePartitions merges them. With pieces of split files and a unique key, the first
// pass also stores the keys each piece saw first (CheckPartitionKeys merges them); a second
// pass (in.RejectsKey) rejects the rows whose key an earlier piece saw first.
func (d *Data) InspectPartition(ctx context.Context, in pipeline.PartitionInput) (pipeline.PartitionResult, error) {
	out := pipeline.PartitionResult{Partition: in.Partition, Files: in.ToFile - in.FromFile, Rechecked: in.RejectsKey != ""}
	step, summary := fmt.Sprintf("inspect-part%05d", in.Partition), fmt.Sprintf("partitions/%05d.gob", in.Partition)
	if out.Rechecked {
		step, summary = step+"-keys", fmt.Sprintf("partitions/%05d-keys.gob", in.Partition)
	}
	ip, err := newInspection(ctx, d.Store, d.Registry, in.StepInput, passAll, d.CheckpointEvery, step)
	if err != nil {
		return out, err
	}
	if err := ip.partition(in); err != nil {
		return out, err
	}
	if out.ResumedAfter, _, err = ip.resume(); err != nil {
		return out, err
	}
	scanErr, err := ip.scan(dataset.AllDays)
	if err != nil {
		return out, err
	}
	broken := ""
	if scanErr != nil {
		broken = scanErr.Error()
	}
	out.StateKey = reportKey(in.Model, in.RunID, summary)
	if out.Bytes, err = ip.storeState(out.StateKey, broken); err != nil {
		return out, err
	}
	if ip.keys != nil && !out.Rechecked {
		if err := ip.storeSpills(in.Partition); err != nil {
			return out, err
		}
	}
	ip.cp.clear(ctx)
	return out, nil
}

// partition sets the pass to the partition's files or pieces, with the key state its split
// files' pieces need.
func (ip *inspection) partition(in pipeline.PartitionInput) error {
	rows := in.Spec.Dataset.PartitionRows
	if rows <= 0 {
		if err := partitionable(ip.s, in); err != nil {
			return err
		}
		ip.from, ip.to = in.FromFile, in.ToFile
		return nil
	}
	all := ip.s.Pieces(rows)
	if in.FromFile < 0 || in.ToFile > len(all) || in.FromFile >= in.ToFile {
		return invalid("partition %d: pieces [%d, %d) of a window cut into %d", in.Partition, in.FromFile, in.ToFile, len(all))
	}
	ip.pieces = all[in.FromFile:in.ToFile]
	split := slices.ContainsFunc(ip.pieces, dataset.Piece.Split)
	if !split || len(in.Spec.Contract.UniqueKey) == 0 {
		return nil
	}
	ip.keys = &dataset.KeyCheck{}
	if in.RejectsKey == "" {
		return nil
	}
	ip.rewrite = true
	return getGob(ip.ctx, ip.store, in.RejectsKey, &ip.keys.Rejects)
}

// rejectsKey is where CheckPartitionKeys stores the rows a partition must reject.
func rejectsKey(in pipeline.StepInput, partition int) string {
	return reportKey(in.Model, in.RunID, fmt.Sprintf("partitions/rejects/p%05d.gob", partition))
}

// spillKey is where a partition's first pass stores the keys its pieces of a split file saw
// first.
func spillKey(in pipeline.StepInput, file, partition int) string {
	return reportKey(in.Model, in.RunID, fmt.Sprintf("partitions/keys/f%06d/p%05d.bin", file, partition))
}

// storeSpills stores, for each split file of the partition, the keys its pieces saw first
// (sorted; an empty object when none did, so a lost spill is told from an empty one).
func (ip *inspection) storeSpills(partition int) error {
	byFile := map[int][]dataset.KeyRow{}
	for _, k := range ip.keys.Spill {
		byFile[int(k.File)] = append(byFile[int(k.File)], k)
	}
	stored := map[int]bool{}
	for _, p := range ip.pieces {
		if !p.Split() || stored[p.File] {
			continue
		}
		stored[p.File] = true
		body := dataset.EncodeSpill(byFile[p.File])
		if _, err := ip.store.Put(ip.ctx, spillKey(ip.in, p.File, partition), body, objstore.PutOptions{}); err != nil {
			return classify("store key spill", err)
		}
	}
	return nil
}

// CheckPartitionKeys checks the unique key across the pieces of every split file of the
// partitions: their spills are merged file by file, streaming (memory: a 64 KiB buffer per
// partition holding pieces of the file, and the duplicates found), and each partition holding
// rows whose key an earlier piece saw first gets them stored at its rejects key, to pass again.
func (d *Data) CheckPartitionKeys(ctx context.Context, in pipeline.KeysInput) (pipeline.KeysResult, error) {
	var out pipeline.KeysResult
	s, err := loadSnapshot(ctx, d.Store, in.SnapshotKey)
	if err != nil {
		return out, err
	}
	all := s.Pieces(in.Spec.Dataset.PartitionRows)
	holders := map[int][]int{} // split file -> the partitions holding its pieces, in order
	var files []int
	for _, r := range in.Ranges {
		if r.FromFile < 0 || r.ToFile > len(all) || r.FromFile >= r.ToFile {
			return out, invalid("partition %d: pieces [%d, %d) of a window cut into %d", r.Partition, r.FromFile, r.ToFile, len(all))
		}
		for _, p := range all[r.FromFile:r.ToFile] {
			if h := holders[p.File]; p.Split() && (len(h) == 0 || h[len(h)-1] != r.Partition) {
				if len(h) == 0 {
					files = append(files, p.File)
				}
				holders[p.File] = append(h, r.Partition)
			}
		}
	}
	slices.Sort(files)
	rejects := map[int]map[int]map[int64]int64{}
	for _, f := range files {
		n, err := d.mergeSpills(ctx, in.StepInput, f, holders[f], rejects)
		if err != nil {
			return out, err
		}
		out.Duplicates += n
		activity.RecordHeartbeat(ctx, f)
	}
	parts := slices.Sorted(maps.Keys(rejects))
	for _, part := range parts {
		key := rejectsKey(in.StepInput, part)
		var buf bytes.Buffer
		if err := gob.NewEncoder(&buf).Encode(rejects[part]); err != nil {
			return out, err
		}
		if _, err := d.Store.Put(ctx, key, buf.Bytes(), objstore.PutOptions{}); err != nil {
			return out, classify("store rejects", err)
		}
		rows := int64(0)
		for _, m := range rejects[part] {
			rows += int64(len(m))
		}
		out.Recheck = append(out.Recheck, pipeline.Recheck{Partition: part, RejectsKey: key, Rows: rows})
	}
	return out, nil
}

// mergeSpills merges the spills of one split file's partitions into rejects (partition ->
// file -> row -> the key's first row) and says how many rows it rejected.
func (d *Data) mergeSpills(ctx context.Context, in pipeline.StepInput, file int, parts []int, rejects map[int]map[int]map[int64]int64) (int64, error) {
	readers := make([]io.Reader, len(parts))
	for i, part := range parts {
		rc, _, err := d.Store.Get(ctx, spillKey(in, file, part), objstore.GetOptions{})
		if err != nil {
			return 0, classify(fmt.Sprintf("read the key spill of partition %d", part), err)
		}
		defer rc.Close()
		readers[i] = rc
	}
	var n int64
	err := dataset.MergeKeySpills(parts, readers, func(part, file int, row, first int64) {
		if rejects[part] == nil {
			rejects[part] = map[int]map[int64]int64{}
		}
		if rejects[part][file] == nil {
			rejects[part][file] = map[int64]int64{}
		}
		rejects[part][file][row] = first
		n++
	})
	if errors.Is(err, dataset.ErrInvalidData) {
		return 0, invalid("file %d: %v", file, err)
	}
	return n, classify("merge the key spills", err)
}

// storeState stores the pass's state at key as a partition's summary; broken is what the scan
// said of a file that broke the contract's shape (empty: none did). It returns its size.
func (ip *inspection) storeState(key, broken string) (int, error) {
	st := partitionState{ScanError: broken}
	var err error
	if st.Validation, err = ip.val.MarshalBinary(); err != nil {
		return 0, err
	}
	if ip.dw != nil && ip.dw.w != nil {
		st.Reference = ip.dw.reference
		if st.Drift, err = ip.dw.w.MarshalBinary(); err != nil {
			return 0, err
		}
	}
	if st.Prep, err = ip.prep.MarshalBinary(); err != nil {
		return 0, err
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(st); err != nil {
		return 0, err
	}
	if _, err := ip.store.Put(ip.ctx, key, buf.Bytes(), objstore.PutOptions{}); err != nil {
		return 0, classify("store partition summary", err)
	}
	return buf.Len(), nil
}

// partitionable checks the partition's range, and that every file before its end has a row
// count (a row's key is its ordinal in the window, counted over the files left out).
func partitionable(s dataset.Snapshot, in pipeline.PartitionInput) error {
	if in.FromFile < 0 || in.ToFile > len(s.Files) || in.FromFile >= in.ToFile {
		return invalid("partition %d: files [%d, %d) of a window of %d files", in.Partition, in.FromFile, in.ToFile, len(s.Files))
	}
	for _, f := range s.Files[:in.ToFile] {
		if f.Rows < 0 {
			return invalid("partition %d: file %s has no row count in snapshot %s: the window cannot be partitioned", in.Partition, f.Key, s.ID)
		}
	}
	return nil
}

// MergePartitions merges the partitions' summaries (in any order: the merge is exact, see
// dataset.Validation.Merge, drift.Window.Merge, training.Prep.Merge) and stores what the one
// pass stores: the validation report, the drift report, the candidate's reference profile and
// bins. Its result is Inspect's, with the first partition holding holdout days (the
// evaluation's partitions start there).
func (d *Data) MergePartitions(ctx context.Context, in pipeline.MergeInput) (pipeline.InspectResult, error) {
	ip, broken, err := d.merged(ctx, in, "merge-partitions")
	if err != nil {
		return pipeline.InspectResult{}, err
	}
	var scanErr error
	if broken != "" {
		scanErr = errors.New(broken)
	}
	return ip.finish(pipeline.InspectResult{HoldoutFrom: holdoutPartition(ip.s, ip.in.Spec.Dataset, ip.cut)}, d.Metrics, scanErr)
}

// CombinePartitions merges partitions' summaries into one summary (a batch of a large
// window's partitions, run by a child workflow), which MergePartitions takes as it takes a
// partition's. Its partition number is the batch's first.
func (d *Data) CombinePartitions(ctx context.Context, in pipeline.MergeInput) (pipeline.PartitionResult, error) {
	if len(in.Partitions) == 0 {
		return pipeline.PartitionResult{}, invalid("combine: no partitions")
	}
	out := pipeline.PartitionResult{Partition: in.Partitions[0].Partition}
	for _, p := range in.Partitions {
		out.Partition, out.Files = min(out.Partition, p.Partition), out.Files+p.Files
	}
	ip, broken, err := d.merged(ctx, in, fmt.Sprintf("combine-part%05d", out.Partition))
	if err != nil {
		return out, err
	}
	out.StateKey = reportKey(in.Model, in.RunID, fmt.Sprintf("partitions/combined-%05d.gob", out.Partition))
	out.Bytes, err = ip.storeState(out.StateKey, broken)
	return out, err
}

// merged is the pass's state with the partitions' summaries merged in, and the first
// partition's word of a file that broke the contract's shape.
func (d *Data) merged(ctx context.Context, in pipeline.MergeInput, step string) (*inspection, string, error) {
	ip, err := newInspection(ctx, d.Store, d.Registry, in.StepInput, passAll, d.CheckpointEvery, step)
	if err != nil {
		return nil, "", err
	}
	broken := ""
	seen := map[int]bool{}
	for _, p := range in.Partitions {
		if seen[p.Partition] {
			return nil, "", invalid("merge: partition %d is given twice", p.Partition)
		}
		seen[p.Partition] = true
		b, err := ip.mergeState(p)
		if err != nil {
			return nil, "", err
		}
		if broken == "" {
			broken = b
		}
		activity.RecordHeartbeat(ctx, p.Partition)
	}
	return ip, broken, nil
}

// mergeState merges one partition's stored summary into the pass's state; it returns what
// the partition's scan said of a file that broke the contract's shape, if one did.
func (ip *inspection) mergeState(p pipeline.PartitionResult) (string, error) {
	var st partitionState
	if err := getGob(ip.ctx, ip.store, p.StateKey, &st); err != nil {
		return "", err
	}
	pv := dataset.NewValidation(ip.store.URI(ip.in.SnapshotKey), ip.in.Spec.Contract)
	if err := pv.UnmarshalBinary(st.Validation); err != nil {
		return "", invalid("partition %d: %v", p.Partition, err)
	}
	if err := ip.val.Merge(pv); err != nil {
		return "", invalid("partition %d: %v", p.Partition, err)
	}
	if ip.dw != nil && ip.dw.w != nil {
		if st.Reference != ip.dw.reference {
			return "", invalid("partition %d compared the window with v%d, the merge with v%d: production changed during the pass; run again", p.Partition, st.Reference, ip.dw.reference)
		}
		pw := drift.NewWindow(ip.dw.profile)
		if err := pw.UnmarshalBinary(st.Drift); err != nil {
			return "", invalid("partition %d: %v", p.Partition, err)
		}
		if err := ip.dw.w.Merge(pw); err != nil {
			return "", invalid("partition %d: %v", p.Partition, err)
		}
	}
	pp, err := training.NewPrep(ip.in.Spec, ip.s.Rows)
	if err != nil {
		return "", classify("prepare training", err)
	}
	if err := pp.UnmarshalBinary(st.Prep); err != nil {
		return "", invalid("partition %d: %v", p.Partition, err)
	}
	if err := ip.prep.Merge(pp); err != nil {
		return "", invalid("partition %d: %v", p.Partition, err)
	}
	return st.ScanError, nil
}

// getGob reads a gob-encoded object into v.
func getGob(ctx context.Context, b objstore.Bucket, key string, v any) error {
	data, _, err := objstore.ReadAll(ctx, b, key)
	if err != nil {
		return classify("read "+key, err)
	}
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(v); err != nil {
		return invalid("%s: %v", b.URI(key), err)
	}
	return nil
}
