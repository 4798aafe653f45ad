package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/features"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/spec"
)

// Features materializes feature views into the online store of this worker.
type Features struct {
	Store  objstore.Bucket
	Online features.Online
}

// MaterializeChunk writes, per entity of the view, the row the offline join gives as of
// in.End into the online store, reading only the source days that row can depend on
// (History). Idempotent: the store keeps each key's latest row, so a retry or a re-run
// writes nothing new.
func (f *Features) MaterializeChunk(ctx context.Context, in pipeline.MaterializeChunkInput) (pipeline.MaterializeChunkResult, error) {
	if f.Online == nil {
		return pipeline.MaterializeChunkResult{}, invalid("this worker has no online store (driftline worker --online-store)")
	}
	sp, err := spec.Parse([]byte(in.SpecYAML))
	if err != nil {
		return pipeline.MaterializeChunkResult{}, invalid("materialize %s/%s: spec: %v", in.Repo, in.View, err)
	}
	applied, repo, _, ok, err := features.Current(ctx, f.Store, in.Repo)
	switch {
	case err != nil:
		return pipeline.MaterializeChunkResult{}, classify("materialize: definitions", err)
	case !ok:
		return pipeline.MaterializeChunkResult{}, invalid("feature repository %q has no applied definitions (driftline features apply)", in.Repo)
	}
	v, ok := repo.View(in.View)
	if !ok {
		return pipeline.MaterializeChunkResult{}, invalid("feature repository %q (version %d) has no view %q", in.Repo, applied.Version, in.View)
	}
	ent, _ := repo.Entity(v.Entity)
	if v.Source.Dataset != sp.Dataset.Name {
		return pipeline.MaterializeChunkResult{}, invalid("view %q reads dataset %s; the spec's contract is of %s", in.View, v.Source.Dataset, sp.Dataset.Name)
	}
	if err := repo.Validate(map[string]contract.Contract{sp.Dataset.Name: sp.Contract}); err != nil {
		return pipeline.MaterializeChunkResult{}, invalid("feature repository %q version %d: %v", in.Repo, applied.Version, err)
	}
	from := in.End.Add(-features.History(v)).UTC().Truncate(24 * time.Hour)
	snap, err := dataset.TakeSnapshot(ctx, f.Store, sp.Dataset.Name, fmt.Sprintf("materialize-%s-%d", in.View, in.End.Unix()), from, in.End.UTC())
	if errors.Is(err, dataset.ErrEmptyWindow) {
		return pipeline.MaterializeChunkResult{DefinitionsVersion: applied.Version}, nil // nothing to write yet
	}
	if err != nil {
		return pipeline.MaterializeChunkResult{}, classify("materialize: source", err)
	}
	src, err := features.ReadSource(ctx, f.Store, v, ent, sp.Contract, snap)
	if err != nil {
		return pipeline.MaterializeChunkResult{}, classify("materialize: source", err)
	}
	n, err := features.Materialize(ctx, f.Online, v, src, in.End)
	if err != nil {
		return pipeline.MaterializeChunkResult{}, fmt.Errorf("materialize %s as of %s: %w", in.View, in.End.Format(time.RFC3339), err)
	}
	return pipeline.MaterializeChunkResult{Keys: n, SourceRows: len(src), DefinitionsVersion: applied.Version}, nil
}
