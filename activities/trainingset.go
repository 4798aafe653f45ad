package activities

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/features"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
)

// TrainingSetReport is the training set's manifest (reports/<model>/<run>/training_set.json):
// what it was built from, for lineage.
type TrainingSetReport struct {
	pipeline.TrainingSetResult
	Window      string            `json:"window"`  // the run's snapshot
	Sources     map[string]string `json:"sources"` // view -> the pinned snapshot of its source
	Definitions features.Applied  `json:"definitions"`
}

// TrainingSet builds the run's training set from its window and the spec's feature service
// (features.BuildTrainingSet) and pins it as a snapshot the rest of the run reads. The
// definitions and each view's source window are pinned on the first attempt, so a retry
// builds the same set; once the manifest exists a retry returns it.
func (d *Data) TrainingSet(ctx context.Context, in pipeline.StepInput) (pipeline.TrainingSetResult, error) {
	fsv := in.Spec.FeatureService
	if fsv == nil {
		return pipeline.TrainingSetResult{}, invalid("training set: the spec names no feature_service")
	}
	manifest := reportKey(in.Model, in.RunID, "training_set.json")
	var done TrainingSetReport
	if err := getJSON(ctx, d.Store, manifest, &done); err == nil {
		return done.TrainingSetResult, nil
	}
	base, err := loadSnapshot(ctx, d.Store, in.SnapshotKey)
	if err != nil {
		return pipeline.TrainingSetResult{}, err
	}
	applied, repo, err := pinDefinitions(ctx, d.Store, fsv.Repo, reportKey(in.Model, in.RunID, "training_set_definitions.json"))
	if err != nil {
		return pipeline.TrainingSetResult{}, err
	}
	ds := in.Spec.Dataset.Name
	contracts := map[string]contract.Contract{ds: in.Spec.Contract}
	if err := repo.Validate(contracts); err != nil {
		return pipeline.TrainingSetResult{}, invalid("feature repository %s version %d against the spec's contract: %v", fsv.Repo, applied.Version, err)
	}
	from, err1 := time.Parse(dataset.DateLayout, base.From)
	to, err2 := time.Parse(dataset.DateLayout, base.To)
	if err1 != nil || err2 != nil {
		return pipeline.TrainingSetResult{}, invalid("training set: snapshot %s has a bad window %s..%s", base.ID, base.From, base.To)
	}
	svc, history, err := serviceHistory(repo, fsv.Name, ds, in.Model)
	if err != nil {
		return pipeline.TrainingSetResult{}, err
	}
	// Each view's source: the window reaching back as far as a row of the window can see.
	srcKey := dataset.SnapshotKey(ds, in.RunID+"-features-source")
	src, err := snapshotOnce(ctx, d.Store, ds, in.RunID+"-features-source", from.Add(-history).Truncate(24*time.Hour), to)
	if err != nil {
		return pipeline.TrainingSetResult{}, err
	}
	out, err := features.BuildTrainingSet(ctx, d.Store, features.TrainingSetInput{
		Repo: repo, Service: fsv.Name, Base: base, BaseContract: in.Spec.Contract, EventTime: in.Spec.Dataset.EventTime,
		Sources: map[string]dataset.Snapshot{ds: src}, Contracts: contracts,
		Prefix:   fmt.Sprintf("trainingsets/%s/%s/", in.Model, in.RunID),
		Progress: func(day string, rows int64) { activity.RecordHeartbeat(ctx, day) },
	})
	if err != nil {
		return pipeline.TrainingSetResult{}, classify("training set", err)
	}
	key := dataset.SnapshotKey(ds, out.Snapshot.ID)
	if err := putJSON(ctx, d.Store, key, out.Snapshot, false); err != nil {
		return pipeline.TrainingSetResult{}, classify("training set", err)
	}
	res := pipeline.TrainingSetResult{Key: key, URI: d.Store.URI(key), Rows: out.Snapshot.Rows, Columns: out.Columns, Repo: fsv.Repo, Service: fsv.Name,
		DefinitionsVersion: applied.Version, DefinitionsURI: d.Store.URI(applied.Key), Missing: out.Missing, ReportURI: d.Store.URI(manifest)}
	rep := TrainingSetReport{TrainingSetResult: res, Window: d.Store.URI(in.SnapshotKey), Sources: map[string]string{}, Definitions: applied}
	for _, ref := range svc.Features {
		rep.Sources[viewOf(ref)] = d.Store.URI(srcKey)
	}
	if err := putJSON(ctx, d.Store, manifest, rep, false); err != nil {
		return pipeline.TrainingSetResult{}, classify("training set", err)
	}
	return res, nil
}

// serviceHistory is the feature service and how far back of a row its views look; a view of
// another dataset than the run's is refused (the run knows only its own dataset's contract).
func serviceHistory(repo features.Repo, service, ds, model string) (features.Service, time.Duration, error) {
	if _, err := features.ColumnNames(repo, service); err != nil {
		return features.Service{}, 0, invalid("training set: %v", err)
	}
	history := time.Duration(0)
	svc, _ := repo.Service(service)
	for _, ref := range svc.Features {
		v, _ := repo.View(viewOf(ref))
		if v.Source.Dataset != ds {
			return features.Service{}, 0, invalid("feature service %s: view %s reads dataset %s; a run of %s knows the contract of %s only",
				service, v.Name, v.Source.Dataset, model, ds)
		}
		history = max(history, features.History(v))
	}
	return svc, history, nil
}

// snapshotOnce takes the snapshot id of ds's days from..to once: a retry loads the one stored
// first, so every attempt reads the same files.
func snapshotOnce(ctx context.Context, store objstore.Bucket, ds, id string, from, to time.Time) (dataset.Snapshot, error) {
	key := dataset.SnapshotKey(ds, id)
	if src, err := loadSnapshot(ctx, store, key); err == nil {
		return src, nil
	}
	src, err := dataset.TakeSnapshot(ctx, store, ds, id, from, to)
	if err != nil {
		return dataset.Snapshot{}, classify("training set: source", err)
	}
	if err := putJSON(ctx, store, key, src, true); err != nil {
		return dataset.Snapshot{}, classify("training set: source", err)
	}
	return loadSnapshot(ctx, store, key) // the one stored first
}

func viewOf(ref string) string { v, _, _ := strings.Cut(ref, ":"); return v }

// pinDefinitions returns the repository's definitions as first read by this run: the
// current version is recorded at key on the first call, and later calls (retries) read that
// version back, whatever has been applied since.
func pinDefinitions(ctx context.Context, b objstore.Bucket, repoName, key string) (features.Applied, features.Repo, error) {
	var applied features.Applied
	if err := getJSON(ctx, b, key, &applied); err != nil {
		cur, _, _, ok, err := features.Current(ctx, b, repoName)
		switch {
		case err != nil:
			return applied, features.Repo{}, classify("feature definitions", err)
		case !ok:
			return applied, features.Repo{}, invalid("feature repository %q has no applied definitions (driftline features apply)", repoName)
		}
		if err := putJSON(ctx, b, key, cur, true); err != nil {
			return applied, features.Repo{}, classify("feature definitions", err)
		}
		if err := getJSON(ctx, b, key, &applied); err != nil {
			return applied, features.Repo{}, err
		}
	}
	raw, _, err := objstore.ReadAll(ctx, b, applied.Key)
	if err != nil {
		return applied, features.Repo{}, classify("feature definitions "+applied.Key, err)
	}
	repo, err := features.ParseRepo(raw)
	if err != nil {
		return applied, features.Repo{}, invalid("feature definitions %s: %v", b.URI(applied.Key), err)
	}
	return applied, repo, nil
}
