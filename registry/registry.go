package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/internal/keys"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
)

// ErrNotFound: no such model, version or deployment.
var ErrNotFound = errors.New("not found")

// ErrConflict: a compare-and-swap lost against a concurrent writer, or the pointer is not in
// the state the change expects.
var ErrConflict = errors.New("conflict")

// ErrInvalid: the request names or holds something that cannot be (a bad name, an empty set).
var ErrInvalid = errors.New("invalid")

// Lineage is everything that explains where a version came from.
type Lineage struct {
	RunID        string             `json:"run_id"`
	WorkflowID   string             `json:"workflow_id"`
	CreatedBy    string             `json:"created_by"`
	SpecHash     string             `json:"spec_hash"`
	CodeRevision string             `json:"code_revision"`
	Trainer      string             `json:"trainer"`
	Params       map[string]float64 `json:"params"`
	SnapshotURI  string             `json:"snapshot_uri"`
	SnapshotID   string             `json:"snapshot_id"`
	// SnapshotFiles pins the training data: every file's key, ETag and row count.
	SnapshotFiles []SnapshotFile `json:"snapshot_files,omitempty"`
	// Table is the table version the training data was read from (a dataset that is a table).
	Table   *TableVersion     `json:"table,omitempty"`
	Reports map[string]string `json:"reports"` // validation, drift, evaluation -> URI
	// TrainingSample is the sample of the training days the built-in gbdt trained on, when
	// the window had more rows than its bound (nil: every row).
	TrainingSample *TrainingSample `json:"training_sample,omitempty"`
}

// TrainingSample says which rows of the window a model trained on: Rows of Of, every training
// day at Rate by a hash of the row's key in the window (reproducible), and each day's rows.
type TrainingSample struct {
	Rows int64      `json:"rows"`
	Of   int64      `json:"of"`
	Rate float64    `json:"rate"`
	Days []DayCount `json:"days"`
}

// DayCount is the rows a day contributed.
type DayCount struct {
	Day  string `json:"day"`
	Rows int64  `json:"rows"`
}

// TableVersion is the state of a table a version was trained from: a rerun that reads the
// same version (a Delta version, an Iceberg snapshot id) reads the same rows.
type TableVersion struct {
	Format     string    `json:"format"`
	URI        string    `json:"uri"`
	Version    int64     `json:"version"`
	CommitTime time.Time `json:"commit_time"`
	// Metadata is the metadata file the version was read from (an Iceberg table's).
	Metadata string `json:"metadata,omitempty"`
}

// SnapshotFile is one pinned data file of a version's training window.
type SnapshotFile struct {
	Key  string `json:"key"`
	ETag string `json:"etag"`
	Rows int64  `json:"rows"`
}

// RecordKey locates a record kept with a version (decisions/<id>.json, approvals/<id>.json).
func RecordKey(m string, n int, kind, id string) string {
	return fmt.Sprintf("%s%s/%s.json", versionDir(m, n), kind, strings.ReplaceAll(id, "/", "_"))
}

// PutRecord stores an immutable record with a version (a retry finds it there).
func (r *Registry) PutRecord(ctx context.Context, m string, n int, kind, id string, v any) (string, error) {
	body, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return "", err
	}
	key := RecordKey(m, n, kind, id)
	if _, err := objstore.CreateOnce(ctx, r.Store, key, body, "application/json"); err != nil {
		return "", err
	}
	return r.Store.URI(key), nil
}

// Version is a registered model version's metadata (models/<m>/versions/<n>/metadata.json).
type Version struct {
	Model          string    `json:"model"`
	Version        int       `json:"version"`
	CreatedAt      time.Time `json:"created_at"`
	ArtifactURI    string    `json:"artifact_uri"`
	ArtifactSHA256 string    `json:"artifact_sha256"`
	ProfileURI     string    `json:"profile_uri"`
	// PredictionProfileURI is the reference distribution of the model's outputs (holdout).
	PredictionProfileURI string `json:"prediction_profile_uri,omitempty"`
	// LossEstimatorURI is the version's loss estimator (the monitor's estimated MAE).
	LossEstimatorURI string             `json:"loss_estimator_uri,omitempty"`
	Metrics          map[string]float64 `json:"metrics"`
	Lineage          Lineage            `json:"lineage"`
	// Quantization is the int8 variant's evidence (size, speed, holdout accuracy loss).
	Quantization *pipeline.QuantizationReport `json:"quantization,omitempty"`
	// Importance is the global feature importance: mean |SHAP| on the holdout.
	Importance map[string]float64 `json:"feature_importance,omitempty"`
}

// Variant is another form of a version's model stored next to it (the int8 variant).
type Variant struct {
	Name     string
	Artifact []byte
}

// LossEstimator names the variant that is a version's loss estimator (evaluate.TrainLossEstimator:
// the monitor's estimated MAE), model.loss-estimator.json; serving never loads it.
const LossEstimator = "loss-estimator"

// LoadLossEstimator reads a version's loss estimator.
func (r *Registry) LoadLossEstimator(ctx context.Context, m string, n int) (*model.Model, error) {
	data, _, err := objstore.ReadAll(ctx, r.Store, VariantKey(m, n, LossEstimator))
	if err != nil {
		return nil, fmt.Errorf("model %s version %d loss estimator: %w", m, n, err)
	}
	est, err := model.Unmarshal(data)
	if err != nil {
		return nil, fmt.Errorf("model %s version %d loss estimator: %w", m, n, err)
	}
	return est, nil
}

// VariantKey locates a version's variant artifact (model.int8.json).
func VariantKey(m string, n int, name string) string {
	return versionDir(m, n) + "model." + name + ".json"
}

// ServingRecordKind and ServingRecordID locate the record that says which variant serving
// loads (written when policy allows the int8 variant).
const (
	ServingRecordKind = "serving"
	ServingRecordID   = "variant"
)

// ServingVariant is the serving record's content.
type ServingVariant struct {
	Variant    string `json:"variant"`
	DecisionID string `json:"decision_id"`
}

// Registry stores versions and deployments in a bucket.
type Registry struct {
	Store objstore.Bucket
	Audit audit.Log
}

// New returns a registry on the bucket, auditing to the same bucket.
func New(b objstore.Bucket) *Registry { return &Registry{Store: b, Audit: audit.Log{Store: b}} }

func versionPrefix(m string) string     { return keys.Model(m) + "versions/" }
func versionDir(m string, n int) string { return keys.Version(m, n) }

// ArtifactKey, ProfileKey and MetadataKey locate a version's objects.
func ArtifactKey(m string, n int) string { return versionDir(m, n) + "model.json" }
func ProfileKey(m string, n int) string  { return versionDir(m, n) + "profile.json" }
func MetadataKey(m string, n int) string { return versionDir(m, n) + "metadata.json" }

// PredictionProfileKey locates a version's prediction reference profile.
func PredictionProfileKey(m string, n int) string {
	return versionDir(m, n) + "prediction_profile.json"
}
func claimKey(m string, n int) string { return versionDir(m, n) + "claim.json" }

// DeploymentKey locates the model's deployment pointer.
func DeploymentKey(m string) string { return keys.Model(m) + "deployment.json" }

type claim struct {
	RunID string `json:"run_id"`
}

// claims lists claimed version numbers with the run that claimed each, ascending.
func (r *Registry) claims(ctx context.Context, m string) ([]int, map[int]string, error) {
	objs, err := r.Store.List(ctx, versionPrefix(m))
	if err != nil {
		return nil, nil, err
	}
	var nums []int
	runs := map[int]string{}
	for _, o := range objs {
		rest := strings.TrimPrefix(o.Key, versionPrefix(m))
		dir, file, ok := strings.Cut(rest, "/")
		n, err := strconv.Atoi(dir)
		if !ok || err != nil || file != "claim.json" {
			continue
		}
		data, _, err := objstore.ReadAll(ctx, r.Store, o.Key)
		if err != nil {
			return nil, nil, err
		}
		var c claim
		if err := json.Unmarshal(data, &c); err != nil {
			return nil, nil, fmt.Errorf("claim %s: %w", o.Key, err)
		}
		nums = append(nums, n)
		runs[n] = c.RunID
	}
	sort.Ints(nums)
	return nums, runs, nil
}

// Register creates the next version for a run. Numbers come from conditional creates of a
// claim object, so racing registrations get distinct, gap-free numbers; the same run
// registering again (an activity retry) gets its version back.
func (r *Registry) Register(ctx context.Context, v Version, artifact []byte, profile drift.Profile, predictions *drift.Profile, variants ...Variant) (Version, error) {
	m := v.Model
	n, err := r.claim(ctx, m, v.Lineage.RunID)
	if err != nil {
		return v, err
	}
	if existing, err := r.Version(ctx, m, n); err == nil {
		return existing, nil
	}
	if _, err := model.Unmarshal(artifact); err != nil {
		return v, err
	}
	var env struct {
		SHA256 string `json:"sha256"`
	}
	_ = json.Unmarshal(artifact, &env)
	objects, err := r.versionObjects(&v, n, artifact, profile, predictions, variants)
	if err != nil {
		return v, err
	}
	// Immutable objects: a retry finds them already there, with the same content.
	for key, body := range objects {
		if _, err := objstore.CreateOnce(ctx, r.Store, key, body, "application/json"); err != nil {
			return v, err
		}
	}
	v.Version = n
	v.ArtifactURI = r.Store.URI(ArtifactKey(m, n))
	v.ArtifactSHA256 = env.SHA256
	v.ProfileURI = r.Store.URI(ProfileKey(m, n))
	if v.CreatedAt.IsZero() {
		v.CreatedAt = time.Now().UTC()
	}
	meta, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return v, err
	}
	if _, err := r.Store.Put(ctx, MetadataKey(m, n), meta, objstore.PutOptions{IfNoneMatch: true, ContentType: "application/json"}); err != nil {
		if errors.Is(err, objstore.ErrPreconditionFailed) {
			return r.Version(ctx, m, n)
		}
		return v, err
	}
	_, err = r.Audit.Append(ctx, fmt.Sprintf("register/%s/%d", m, n), audit.Record{
		Actor: v.Lineage.CreatedBy, Action: "register", Model: m, Version: n, RunID: v.Lineage.RunID,
		Details: map[string]any{"artifact": v.ArtifactURI, "metrics": v.Metrics}})
	return v, err
}

// claim is the version number the run registers as: the one it claimed already (a retry),
// or the next free one, taken by a conditional create (racing runs get distinct numbers).
func (r *Registry) claim(ctx context.Context, m, runID string) (int, error) {
	nums, runs, err := r.claims(ctx, m)
	if err != nil {
		return 0, err
	}
	for _, k := range slices.Backward(nums) { // the run's latest claim, if it has one
		if runs[k] == runID {
			return k, nil
		}
	}
	next := 1
	if len(nums) > 0 {
		next = nums[len(nums)-1] + 1
	}
	body, _ := json.Marshal(claim{RunID: runID})
	for ; ; next++ {
		_, err := r.Store.Put(ctx, claimKey(m, next), body, objstore.PutOptions{IfNoneMatch: true})
		if err == nil {
			return next, nil
		}
		if !errors.Is(err, objstore.ErrPreconditionFailed) {
			return 0, err
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
	}
}

// versionObjects are version n's immutable objects by key (artifact, profiles, variants, each
// checked), and sets the URIs of v that name them.
func (r *Registry) versionObjects(v *Version, n int, artifact []byte, profile drift.Profile, predictions *drift.Profile, variants []Variant) (map[string][]byte, error) {
	m := v.Model
	prof, err := json.Marshal(profile)
	if err != nil {
		return nil, err
	}
	objects := map[string][]byte{ArtifactKey(m, n): artifact, ProfileKey(m, n): prof}
	if predictions != nil {
		pp, err := json.Marshal(predictions)
		if err != nil {
			return nil, err
		}
		objects[PredictionProfileKey(m, n)] = pp
		v.PredictionProfileURI = r.Store.URI(PredictionProfileKey(m, n))
	}
	for _, vr := range variants {
		if _, err := model.Unmarshal(vr.Artifact); err != nil {
			return nil, fmt.Errorf("variant %s: %w", vr.Name, err)
		}
		objects[VariantKey(m, n, vr.Name)] = vr.Artifact
		if vr.Name == LossEstimator {
			v.LossEstimatorURI = r.Store.URI(VariantKey(m, n, vr.Name))
		}
		if v.Quantization != nil && v.Quantization.Variant == vr.Name {
			q := *v.Quantization
			q.Key = VariantKey(m, n, vr.Name)
			v.Quantization = &q
		}
	}
	return objects, nil
}

// Version reads a complete version's metadata.
func (r *Registry) Version(ctx context.Context, m string, n int) (Version, error) {
	var v Version
	data, _, err := objstore.ReadAll(ctx, r.Store, MetadataKey(m, n))
	if errors.Is(err, objstore.ErrNotFound) {
		return v, fmt.Errorf("model %s version %d: %w", m, n, ErrNotFound)
	}
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("metadata of %s v%d: %w", m, n, err)
	}
	return v, nil
}

// Versions lists complete versions, oldest first.
func (r *Registry) Versions(ctx context.Context, m string) ([]Version, error) {
	nums, _, err := r.claims(ctx, m)
	if err != nil {
		return nil, err
	}
	var out []Version
	for _, n := range nums {
		v, err := r.Version(ctx, m, n)
		if errors.Is(err, ErrNotFound) {
			continue // claimed, not complete yet
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// LoadModel reads and verifies a version's artifact.
func (r *Registry) LoadModel(ctx context.Context, m string, n int) (*model.Model, error) {
	data, _, err := objstore.ReadAll(ctx, r.Store, ArtifactKey(m, n))
	if errors.Is(err, objstore.ErrNotFound) {
		return nil, fmt.Errorf("model %s version %d artifact: %w", m, n, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	mdl, err := model.Unmarshal(data)
	if err != nil {
		return nil, fmt.Errorf("model %s version %d: %w", m, n, err)
	}
	return mdl, nil
}

// LoadServingModel reads the model serving should answer with: the int8 variant when the
// version's serving record (written on a policy allow) names it, else the float model.
func (r *Registry) LoadServingModel(ctx context.Context, m string, n int) (*model.Model, string, error) {
	data, _, err := objstore.ReadAll(ctx, r.Store, RecordKey(m, n, ServingRecordKind, ServingRecordID))
	if err == nil {
		var sv ServingVariant
		if json.Unmarshal(data, &sv) == nil && sv.Variant != "" {
			art, _, err := objstore.ReadAll(ctx, r.Store, VariantKey(m, n, sv.Variant))
			if err != nil {
				return nil, "", fmt.Errorf("model %s version %d variant %s: %w", m, n, sv.Variant, err)
			}
			mdl, err := model.Unmarshal(art)
			if err != nil {
				return nil, "", fmt.Errorf("model %s version %d variant %s: %w", m, n, sv.Variant, err)
			}
			return mdl, sv.Variant, nil
		}
	} else if !errors.Is(err, objstore.ErrNotFound) {
		return nil, "", err
	}
	mdl, err := r.LoadModel(ctx, m, n)
	return mdl, "float64", err
}

// LoadProfile reads a version's reference profile.
func (r *Registry) LoadProfile(ctx context.Context, m string, n int) (drift.Profile, error) {
	return r.loadProfile(ctx, m, n, ProfileKey(m, n))
}

// LoadPredictionProfile reads the reference distribution of a version's predictions.
func (r *Registry) LoadPredictionProfile(ctx context.Context, m string, n int) (drift.Profile, error) {
	return r.loadProfile(ctx, m, n, PredictionProfileKey(m, n))
}

func (r *Registry) loadProfile(ctx context.Context, m string, n int, key string) (drift.Profile, error) {
	var p drift.Profile
	data, _, err := objstore.ReadAll(ctx, r.Store, key)
	if errors.Is(err, objstore.ErrNotFound) {
		return p, fmt.Errorf("model %s version %d profile: %w", m, n, ErrNotFound)
	}
	if err != nil {
		return p, err
	}
	return p, json.Unmarshal(data, &p)
}
