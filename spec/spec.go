package spec

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/model/hparams"

	"github.com/driftline/driftline/drift"
)

// APIVersion is the only spec format this build reads.
const APIVersion = "driftline.dev/v1"

// Spec is one model's spec. It travels inside workflow inputs, so it stays small.
type Spec struct {
	APIVersion string   `yaml:"apiVersion" json:"apiVersion"`
	Kind       string   `yaml:"kind" json:"kind"`
	Model      string   `yaml:"model" json:"model"`
	Dataset    Dataset  `yaml:"dataset" json:"dataset"`
	Features   []string `yaml:"features" json:"features"`
	// FeatureService, when set, adds a feature service's features (docs/features.md) to the
	// raw features: each run builds a point-in-time correct training set from the window.
	FeatureService *FeatureService   `yaml:"feature_service,omitempty" json:"feature_service,omitempty"`
	Target         string            `yaml:"target" json:"target"`
	Trainer        Trainer           `yaml:"trainer" json:"trainer"`
	Contract       contract.Contract `yaml:"contract" json:"contract"`
	Drift          Drift             `yaml:"drift" json:"drift"`
	Evaluation     Evaluation        `yaml:"evaluation" json:"evaluation"`
	Fairness       Fairness          `yaml:"fairness" json:"fairness"`
	// Quantization: the int8 variant made at registration.
	Quantization Quantization `yaml:"quantization" json:"quantization"`
	Approval     Approval     `yaml:"approval" json:"approval"`
	Canary       Canary       `yaml:"canary" json:"canary"`
	// Monitoring: the monitor that watches the live model between runs (docs/monitoring.md).
	Monitoring Monitoring `yaml:"monitoring" json:"monitoring"`
	// Edge: what the model's devices may send back (docs/edge.md).
	Edge Edge `yaml:"edge,omitempty" json:"edge,omitzero"`
	// Hash is the SHA-256 of the YAML the spec was read from (set by Parse, for lineage).
	Hash string `yaml:"-" json:"hash"`
}

// Edge governs the model's fleets of devices.
type Edge struct {
	// DataStaysOnDevice: devices upload no input values, only their answers, the labels and
	// drift sketches (per-feature bin counts); the API refuses a log record with inputs.
	DataStaysOnDevice bool `yaml:"data_stays_on_device" json:"data_stays_on_device,omitempty"`
}

// Dataset says where the training data lives and how a window of it is chosen.
type Dataset struct {
	Name        string   `yaml:"name" json:"name"`
	EventTime   string   `yaml:"event_time" json:"event_time"`
	Keys        []string `yaml:"keys" json:"keys"`
	WindowDays  int      `yaml:"window_days" json:"window_days"`
	HoldoutDays int      `yaml:"holdout_days" json:"holdout_days"`
	// PartitionFiles splits the window's one pass into partitions of this many files, fanned
	// out over the pipeline workers and merged exactly (0: one activity reads the window).
	PartitionFiles int `yaml:"partition_files,omitempty" json:"partition_files,omitempty"`
	// PartitionRows splits a file of more rows than this into pieces of whole row groups,
	// each read as a partition's own (0: a file is never split). A window holding such a file
	// is read in partitions of partition_files pieces (1 when unset).
	PartitionRows int64 `yaml:"partition_rows,omitempty" json:"partition_rows,omitempty"`
	// Table, when set, makes the dataset a table (a Delta or Iceberg table partitioned by day
	// on the event time column) instead of day partitions under datasets/<name>/ (docs/data.md,
	// "Tables").
	Table *TableSource `yaml:"table,omitempty" json:"table,omitempty"`
}

// TableSource is a table a dataset reads: its format, where it is (a key prefix in the
// bucket, or an Iceberg table's name in a catalog the worker's operator configured), and which
// version (unset: the latest when the run pins its window).
type TableSource struct {
	Format string `yaml:"format" json:"format"`                 // delta or iceberg
	Path   string `yaml:"path,omitempty" json:"path,omitempty"` // the table's key prefix in the bucket
	// Catalog and Name (iceberg, instead of Path): a catalog the worker knows by this name
	// (`driftline worker --iceberg-catalog NAME=URI`) and the table's namespace.table in it.
	Catalog string `yaml:"catalog,omitempty" json:"catalog,omitempty"`
	Name    string `yaml:"name,omitempty" json:"name,omitempty"`
	// Version pins a Delta version, SnapshotID an Iceberg snapshot.
	Version    *int64 `yaml:"version,omitempty" json:"version,omitempty"`
	SnapshotID *int64 `yaml:"snapshot_id,omitempty" json:"snapshot_id,omitempty"`
	// AsOf pins the latest version committed at or before a time (RFC 3339).
	AsOf string `yaml:"as_of,omitempty" json:"as_of,omitempty"`
}

// FeatureService names a feature service of an applied feature repository.
type FeatureService struct {
	Repo string `yaml:"repo" json:"repo"`
	Name string `yaml:"name" json:"name"`
}

// WithFeatures returns the spec a run trains with once its training set holds the feature
// service's columns: names are added to the features and to the contract as nullable doubles
// (a value may be unknown as of a row's time). The spec itself is left unchanged.
func (s Spec) WithFeatures(names []string) Spec {
	out := s
	out.Features = append(slices.Clone(s.Features), names...)
	out.Contract.Columns = slices.Clone(s.Contract.Columns)
	for _, n := range names {
		out.Contract.Columns = append(out.Contract.Columns, contract.Column{Name: n, Type: contract.TypeDouble, Role: contract.RoleFeature, Nullable: true})
	}
	return out
}

// Trainer names the training algorithm and its hyperparameters.
type Trainer struct {
	// Name is ridge, logistic or gbdt (docs/models.md has each one's parameters), command (a
	// command trainer runs the named Command) or file (ModelFile is the candidate).
	Name string `yaml:"name" json:"name"`
	// Command (name command) names a command that the command trainer on TaskQueue runs: the
	// trainer's operator maps names to command lines (`driftline trainer --command`), so a
	// spec chooses among the commands the operator allowed and never supplies one.
	Command string `yaml:"command,omitempty" json:"command,omitempty"`
	// ModelFile (name file) is a model file in Driftline's bucket (a key or an s3:// URI of
	// it) in any importable format (docs/models.md): each run evaluates it as the candidate.
	ModelFile string `yaml:"model_file,omitempty" json:"model_file,omitempty"`
	// Objective (gbdt): squared_error (default), absolute_error or binary_logloss.
	Objective string `yaml:"objective,omitempty" json:"objective,omitempty"`
	// Growth (gbdt): depthwise (default) or leafwise.
	Growth string             `yaml:"growth,omitempty" json:"growth,omitempty"`
	Params map[string]float64 `yaml:"params" json:"params"`
	// ValidationShare (gbdt) of the training rows, chosen by a hash of the row, drives early
	// stopping (default 0.1 when early_stopping_rounds is set).
	ValidationShare float64 `yaml:"validation_share,omitempty" json:"validation_share,omitempty"`
	// TaskQueue, when set, dispatches the train step to an external trainer polling that
	// queue (docs/models.md, "External trainers").
	TaskQueue string `yaml:"task_queue,omitempty" json:"task_queue,omitempty"`
	// MaxRows (gbdt) is the most training rows the built-in gbdt trains on; a window with more
	// is sampled, every day at the same rate by a hash of the row, and the sample recorded in
	// the model's lineage (0: 268,435,456 over the features, a 256 MiB training matrix;
	// docs/scaling.md).
	MaxRows int64 `yaml:"max_rows,omitempty" json:"max_rows,omitempty"`
}

// ObjectiveName is the trainer's objective with its default.
func (t Trainer) ObjectiveName() string {
	switch {
	case t.Name == "logistic":
		return hparams.BinaryLogLoss
	case (t.Name == "gbdt" || t.Name == "command" || t.Name == "file") && t.Objective != "":
		return t.Objective
	default:
		return hparams.SquaredError
	}
}

// Quantization decides whether an int8 variant is made and when it may be served.
type Quantization struct {
	// Disabled turns the int8 variant off (it is made by default).
	Disabled bool `yaml:"disabled,omitempty" json:"disabled,omitempty"`
	// MaxMAELoss is the largest relative holdout MAE increase at which policy lets serving
	// use the int8 variant (default 0.01 = 1%); 0 after defaults never happens.
	MaxMAELoss float64 `yaml:"max_mae_loss" json:"max_mae_loss"`
	// Serve asks for the int8 variant in serving when policy allows it.
	Serve bool `yaml:"serve,omitempty" json:"serve,omitempty"`
}

// Drift holds the drift decision's settings (defaults: drift.DefaultConfig).
type Drift struct {
	Alpha                float64  `yaml:"alpha" json:"alpha"`
	Correction           string   `yaml:"correction" json:"correction"`
	PSIThreshold         float64  `yaml:"psi_threshold" json:"psi_threshold"`
	KSThreshold          float64  `yaml:"ks_threshold" json:"ks_threshold"`
	JSThreshold          float64  `yaml:"js_threshold" json:"js_threshold"`
	WassersteinThreshold float64  `yaml:"wasserstein_threshold" json:"wasserstein_threshold"`
	DriftShare           float64  `yaml:"drift_share" json:"drift_share"`
	Critical             []string `yaml:"critical_features" json:"critical_features,omitempty"`
	// NewCategoryShare: unseen categories count as drift only when they hold at least this
	// share of the window's rows (default 0.01).
	NewCategoryShare float64 `yaml:"new_category_share" json:"new_category_share,omitempty"`
}

// Config is the drift package's view of these settings.
func (d Drift) Config() drift.Config {
	return drift.Config{Alpha: d.Alpha, Correction: d.Correction, PSI: d.PSIThreshold, KS: d.KSThreshold,
		JS: d.JSThreshold, Wasserstein: d.WassersteinThreshold, DriftShare: d.DriftShare, Critical: d.Critical,
		NewCategoryShare: d.NewCategoryShare}
}

// Evaluation holds the offline quality gates.
type Evaluation struct {
	MaxMAE float64 `yaml:"max_mae" json:"max_mae"`
	// MaxRegression is how much worse than the champion (relative MAE) a candidate may be.
	MaxRegression float64 `yaml:"max_regression" json:"max_regression"`
	// SegmentBy is the column per-segment metrics group by (default: the protected attribute).
	SegmentBy string `yaml:"segment_by,omitempty" json:"segment_by,omitempty"`
}

// Fairness is the fairness gate: the disparate-impact ratio of the protected attribute.
type Fairness struct {
	// ProtectedAttribute defaults to the contract's first protected_attribute column.
	ProtectedAttribute string `yaml:"protected_attribute" json:"protected_attribute,omitempty"`
	// MinDisparateImpact: the lowest group's favorable-outcome rate over the highest's (0.8).
	MinDisparateImpact float64 `yaml:"min_disparate_impact" json:"min_disparate_impact"`
	// MinGroupRows: groups with fewer holdout rows are left out of the ratio (30).
	MinGroupRows int `yaml:"min_group_rows" json:"min_group_rows"`
}

// Approval is the human-approval rule.
type Approval struct {
	Required bool `yaml:"required" json:"required"`
	// Approvers optionally narrows who may approve this model to these user ids; who may
	// approve at all comes from the RBAC policy.
	Approvers []string `yaml:"approvers" json:"approvers,omitempty"`
	Timeout   Duration `yaml:"timeout" json:"timeout"`
	// BreakGlass lets an approval without the control-plane API's attestation through (sent
	// to Temporal directly, e.g. while the API is down). It is recorded as break-glass with
	// the Temporal client's identity, never under a claimed approver's name. Default false.
	BreakGlass bool `yaml:"break_glass" json:"break_glass,omitempty"`
}

// Canary holds the live rollout settings and guardrails.
type Canary struct {
	Share      float64  `yaml:"share" json:"share"`
	Bake       Duration `yaml:"bake" json:"bake"`
	MaxBakes   int      `yaml:"max_bakes" json:"max_bakes"`
	MinRequest int      `yaml:"min_requests" json:"min_requests"`
	// MaxErrorRateDelta: candidate error rate may exceed production's by at most this.
	MaxErrorRateDelta float64 `yaml:"max_error_rate_delta" json:"max_error_rate_delta"`
	// MaxP99LatencyMs: candidate p99 may exceed production's p99 by at most this many ms.
	MaxP99LatencyDeltaMs float64 `yaml:"max_p99_latency_delta_ms" json:"max_p99_latency_delta_ms"`
	// Steps ramp the share (e.g. 0.05, 0.25, 0.5); empty means one step at Share.
	Steps []float64 `yaml:"steps" json:"steps,omitempty"`
	// Mode is split (the candidate answers its share) or shadow (scored and logged only).
	Mode CanaryMode `yaml:"mode" json:"mode,omitempty"`
	// MaxFallbackRateDelta: the candidate's fallback rate may exceed production's by this.
	MaxFallbackRateDelta float64 `yaml:"max_fallback_rate_delta" json:"max_fallback_rate_delta"`
	// MinLabels: labelled requests answered by both models before live MAE counts; the
	// candidate then fails when its MAE is worse than production's by more than
	// MaxMAERegression on the same requests AND the paired sequential test (decision 0015) is
	// significant at MAEAlpha, over every look of the canary together.
	MinLabels int `yaml:"min_labels" json:"min_labels"`
	// PairedShare is the share of each route's requests that serving also scores with the
	// other model, off the request path, so both answers are logged (default 1: all of them).
	PairedShare      float64 `yaml:"paired_share" json:"paired_share,omitempty"`
	MaxMAERegression float64 `yaml:"max_mae_regression" json:"max_mae_regression"`
	MAEAlpha         float64 `yaml:"mae_alpha" json:"mae_alpha"`
	// Fairness on live answers: the spec's fairness section (attribute, minimum ratio).
	ProtectedAttribute string  `yaml:"-" json:"protected_attribute,omitempty"`
	MinDisparateImpact float64 `yaml:"-" json:"min_disparate_impact,omitempty"`
	MinGroupRows       int     `yaml:"-" json:"min_group_rows,omitempty"`
}

// StepShares are the canary's ramp.
func (c Canary) StepShares() []float64 {
	if len(c.Steps) == 0 {
		return []float64{c.Share}
	}
	return c.Steps
}

// Monitoring configures the model's monitor (workflow monitor/<model>).
type Monitoring struct {
	// Interval between windows (5m).
	Interval Duration `yaml:"interval" json:"interval"`
	// DriftWindows: live input drift in this many consecutive windows starts the loop (2).
	DriftWindows int `yaml:"drift_windows" json:"drift_windows"`
	// MinRequests: a window with fewer requests is reported but decides nothing (200).
	MinRequests int `yaml:"min_requests" json:"min_requests"`
	// MaxLiveMAE: live MAE above it (on at least min_labels labels) starts the loop
	// (default: evaluation.max_mae).
	MaxLiveMAE float64 `yaml:"max_live_mae" json:"max_live_mae"`
	// MinAccuracy (classifiers): live accuracy, or the accuracy estimated before labels
	// (CBPE), under it starts the loop (0: off).
	MinAccuracy float64 `yaml:"min_accuracy,omitempty" json:"min_accuracy,omitempty"`
	MinLabels   int     `yaml:"min_labels" json:"min_labels"`
	// LabelHorizon: labels join predictions made up to this long before them (24h).
	LabelHorizon Duration `yaml:"label_horizon" json:"label_horizon"`
	// LatencySLOMs is the latency objective the KPIs are reported against (50).
	LatencySLOMs float64 `yaml:"latency_slo_ms" json:"latency_slo_ms"`
	// Settle: a log part is taken once it was written at least this long ago, so a part
	// still being uploaded is not skipped past (30s).
	Settle Duration `yaml:"settle" json:"settle"`
	// Decision is the business rule the prediction drives, evaluated against labels.
	Decision *Decision `yaml:"decision,omitempty" json:"decision,omitempty"`
	// ReviewTimeout: a fairness review unacknowledged this long escalates (24h), to
	// EscalateTo (RBAC subjects, e.g. group:ml-platform) besides the reviewers.
	ReviewTimeout Duration `yaml:"review_timeout" json:"review_timeout"`
	EscalateTo    []string `yaml:"escalate_to,omitempty" json:"escalate_to,omitempty"`
}

// zero reports whether nothing of the section is set (a spec from before monitoring existed).
func (m Monitoring) zero() bool {
	return len(m.EscalateTo) == 0 && m.comparable() == (monitoringFields{})
}

// monitoringFields is Monitoring without its slice, so it compares with ==.
type monitoringFields struct {
	interval, horizon, settle, review   time.Duration
	driftWindows, minRequests, minLabel int
	maxMAE, slo, minAccuracy            float64
	decision                            *Decision
}

func (m Monitoring) comparable() monitoringFields {
	return monitoringFields{m.Interval.Duration, m.LabelHorizon.Duration, m.Settle.Duration, m.ReviewTimeout.Duration,
		m.DriftWindows, m.MinRequests, m.MinLabels, m.MaxLiveMAE, m.LatencySLOMs, m.MinAccuracy, m.Decision}
}

// Decision is a rule on the prediction, "act when the prediction is over a threshold" (e.g.
// order when the forecast exceeds the stock): right when the label falls on the same side.
type Decision struct {
	Name string `yaml:"name" json:"name"`
	// Threshold, or ThresholdAttribute: the request attribute holding it (e.g. stock).
	Threshold          float64 `yaml:"threshold" json:"threshold"`
	ThresholdAttribute string  `yaml:"threshold_attribute,omitempty" json:"threshold_attribute,omitempty"`
	// MinAccuracy is the KPI's target (0.9).
	MinAccuracy float64 `yaml:"min_accuracy" json:"min_accuracy"`
}

// Duration is a time.Duration written as "30s", "24h" in YAML.
type Duration struct{ time.Duration }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 30s or 24h", n.Line, n.Value)
	}
	d.Duration = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidName reports whether s can name a model, a dataset or a feature repository.
func ValidName(s string) bool { return namePattern.MatchString(s) }

// Load reads and validates a spec file.
func Load(path string) (Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, fmt.Errorf("read spec: %w", err)
	}
	s, err := Parse(b)
	if err != nil {
		return Spec{}, fmt.Errorf("spec %s: %w", path, err)
	}
	return s, nil
}

// Parse decodes YAML strictly (unknown fields are errors), applies defaults and validates.
func Parse(b []byte) (Spec, error) {
	var s Spec
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("decode: %w", err)
	}
	s.applyDefaults()
	if err := s.Validate(); err != nil {
		return Spec{}, err
	}
	sum := sha256.Sum256(b)
	s.Hash = hex.EncodeToString(sum[:])
	return s, nil
}

// def sets *v to d when it is the zero value (a field the spec leaves out).
func def[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}

func (s *Spec) applyDefaults() {
	def(&s.Dataset.WindowDays, 28)
	def(&s.Dataset.HoldoutDays, 7)
	def(&s.Trainer.Name, "ridge")
	if s.Trainer.Name == "gbdt" && s.Trainer.ValidationShare == 0 && s.Trainer.Params["early_stopping_rounds"] > 0 {
		s.Trainer.ValidationShare = 0.1
	}
	def(&s.Quantization.MaxMAELoss, 0.01)

	dc := drift.DefaultConfig()
	def(&s.Drift.Alpha, dc.Alpha)
	def(&s.Drift.Correction, dc.Correction)
	def(&s.Drift.PSIThreshold, dc.PSI)
	def(&s.Drift.KSThreshold, dc.KS)
	def(&s.Drift.JSThreshold, dc.JS)
	def(&s.Drift.WassersteinThreshold, dc.Wasserstein)
	def(&s.Drift.DriftShare, dc.DriftShare)
	def(&s.Drift.NewCategoryShare, dc.NewCategoryShare)
	if len(s.Contract.Columns) == 0 {
		// No contract: the model's columns are non-null doubles.
		for _, f := range s.Features {
			s.Contract.Columns = append(s.Contract.Columns, contract.Column{Name: f, Type: contract.TypeDouble, Role: contract.RoleFeature})
		}
		s.Contract.Columns = append(s.Contract.Columns, contract.Column{Name: s.Target, Type: contract.TypeDouble, Role: contract.RoleTarget})
	}
	def(&s.Contract.MaxBadRowShare, 0.01)
	def(&s.Fairness.MinDisparateImpact, 0.8)
	def(&s.Fairness.MinGroupRows, 30)
	if s.Fairness.ProtectedAttribute == "" {
		if p := s.Contract.WithRole(contract.RoleProtected); len(p) > 0 {
			s.Fairness.ProtectedAttribute = p[0].Name
		}
	}
	s.Canary.ProtectedAttribute = s.Fairness.ProtectedAttribute
	s.Canary.MinDisparateImpact = s.Fairness.MinDisparateImpact
	s.Canary.MinGroupRows = s.Fairness.MinGroupRows
	def(&s.Approval.Timeout.Duration, 24*time.Hour)
	def(&s.Canary.Share, 0.1)
	def(&s.Canary.Bake.Duration, 10*time.Minute)
	def(&s.Canary.MaxBakes, 3)
	def(&s.Canary.MinRequest, 100)
	def(&s.Canary.MaxErrorRateDelta, 0.01)
	def(&s.Canary.MaxP99LatencyDeltaMs, 20)
	def(&s.Canary.MaxFallbackRateDelta, 0.05)
	def(&s.Canary.MaxMAERegression, 0.05)
	def(&s.Canary.MAEAlpha, 0.05)
	def(&s.Canary.MinLabels, 30)
	def(&s.Canary.PairedShare, 1)
	def(&s.Canary.Mode, ModeSplit)
	def(&s.Evaluation.SegmentBy, s.Fairness.ProtectedAttribute)
	m := &s.Monitoring
	def(&m.Interval.Duration, 5*time.Minute)
	def(&m.DriftWindows, 2)
	def(&m.MinRequests, 200)
	def(&m.MaxLiveMAE, s.Evaluation.MaxMAE)
	def(&m.MinLabels, 100)
	def(&m.LabelHorizon.Duration, 24*time.Hour)
	def(&m.LatencySLOMs, 50)
	def(&m.Settle.Duration, 30*time.Second)
	def(&m.ReviewTimeout.Duration, 24*time.Hour)
	if d := m.Decision; d != nil {
		def(&d.MinAccuracy, 0.9)
		def(&d.Name, "decision")
	}
}

// Validate returns every problem of the spec at once, each naming its field.
func (s Spec) Validate() error {
	var p problems
	s.validateNames(&p)
	s.validateFeatures(&p)
	s.validateColumns(&p)
	s.validateMonitoring(&p)
	s.validateTrainer(&p)
	s.validateTable(p.add)
	s.validateThresholds(&p)
	return errors.Join(p...)
}

// problems collects a spec's problems, each naming its field.
type problems []error

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Errorf(format, args...)) }

// validateNames checks the spec's kind, its model's and dataset's names and the window.
func (s Spec) validateNames(p *problems) {
	add := p.add
	if s.APIVersion != APIVersion {
		add("apiVersion: got %q, want %q", s.APIVersion, APIVersion)
	}
	if s.Kind != "ModelSpec" {
		add("kind: got %q, want ModelSpec", s.Kind)
	}
	if !namePattern.MatchString(s.Model) {
		add("model: %q must be 1-63 lowercase letters, digits, - or _", s.Model)
	}
	if !namePattern.MatchString(s.Dataset.Name) {
		add("dataset.name: %q must be 1-63 lowercase letters, digits, - or _", s.Dataset.Name)
	}
	if s.Dataset.EventTime == "" {
		add("dataset.event_time: required (the date column)")
	}
	if s.Dataset.PartitionFiles < 0 {
		add("dataset.partition_files: %d must not be negative (0: one pass reads the window)", s.Dataset.PartitionFiles)
	}
	if s.Dataset.PartitionRows < 0 {
		add("dataset.partition_rows: %d must not be negative (0: files are not split)", s.Dataset.PartitionRows)
	}
	if s.Dataset.HoldoutDays >= s.Dataset.WindowDays {
		add("dataset.holdout_days (%d) must be smaller than dataset.window_days (%d)", s.Dataset.HoldoutDays, s.Dataset.WindowDays)
	}
}

// validateFeatures checks the feature list (or feature service) and the target.
func (s Spec) validateFeatures(p *problems) {
	add := p.add
	if fsv := s.FeatureService; fsv != nil {
		if !namePattern.MatchString(fsv.Repo) || fsv.Name == "" {
			add("feature_service: give repo (1-63 lowercase letters, digits, - or _) and name, got %q/%q", fsv.Repo, fsv.Name)
		}
		if (s.Trainer.Name == "ridge" || s.Trainer.Name == "logistic") && s.Trainer.TaskQueue == "" {
			add("feature_service: trainer %s cannot take missing values, and a feature unknown as of a row's time is missing (use gbdt)", s.Trainer.Name)
		}
	} else if len(s.Features) == 0 {
		add("features: at least one feature is required (or a feature_service)")
	}
	seen := map[string]bool{}
	for i, f := range s.Features {
		if f == "" {
			add("features[%d]: empty name", i)
		}
		if seen[f] {
			add("features[%d]: %q listed twice", i, f)
		}
		seen[f] = true
	}
	if s.Target == "" {
		add("target: required")
	} else if seen[s.Target] {
		add("target: %q is also a feature", s.Target)
	}
}

// validateColumns checks the contract, and that every column the spec names is in it with
// the role and type its use needs.
func (s Spec) validateColumns(p *problems) {
	add := p.add
	if err := s.Contract.Validate(); err != nil {
		*p = append(*p, err)
	}
	for i, f := range s.Features {
		col, ok := s.Contract.Column(f)
		switch {
		case !ok:
			add("features[%d]: %q is not a contract column", i, f)
		case col.Role != contract.RoleFeature:
			add("features[%d]: contract column %q has role %s, not feature", i, f, col.Role)
		case col.Type == contract.TypeString:
			add("features[%d]: %q is a string; trainers need numbers (give categories as integer codes with categorical: true)", i, f)
		case col.Nullable && (s.Trainer.Name == "ridge" || s.Trainer.Name == "logistic"):
			add("features[%d]: %q is nullable; trainer %s cannot take missing values (gbdt can)", i, f, s.Trainer.Name)
		}
	}
	if col, ok := s.Contract.Column(s.Target); s.Target != "" && (!ok || col.Role != contract.RoleTarget || col.Type == contract.TypeString) {
		add("target: %q must be a numeric contract column with role target", s.Target)
	}
	for i, c := range s.Drift.Critical {
		if !slices.Contains(s.Features, c) {
			add("drift.critical_features[%d]: %q is not a feature", i, c)
		}
	}
	if c := s.Evaluation.SegmentBy; c != "" {
		if _, ok := s.Contract.Column(c); !ok {
			add("evaluation.segment_by: %q is not a contract column", c)
		}
	}
	if a := s.Fairness.ProtectedAttribute; a != "" {
		if col, ok := s.Contract.Column(a); !ok || col.Role != contract.RoleProtected {
			add("fairness.protected_attribute: %q must be a contract column with role protected_attribute", a)
		}
	}
	if !slices.Contains([]string{"bh", "bonferroni", "none"}, s.Drift.Correction) {
		add("drift.correction: %q is not bh, bonferroni or none", s.Drift.Correction)
	}
}

// validateMonitoring checks the monitoring section; a spec recorded before monitoring existed
// (a run's input) has none: nothing to check.
func (s Spec) validateMonitoring(p *problems) {
	add := p.add
	m := s.Monitoring
	if m.zero() {
		return
	}
	if d := m.Decision; d != nil && (d.MinAccuracy <= 0 || d.MinAccuracy > 1) {
		add("monitoring.decision.min_accuracy: %g must be in (0, 1]", d.MinAccuracy)
	}
	if m.Interval.Duration < 10*time.Second || m.Settle.Duration < 0 || m.Settle.Duration >= m.Interval.Duration {
		add("monitoring.interval: %s must be at least 10s and longer than monitoring.settle (%s)", m.Interval.Duration, m.Settle.Duration)
	}
	if m.DriftWindows < 1 || m.MinRequests < 1 || m.MinLabels < 1 {
		add("monitoring: drift_windows (%d), min_requests (%d) and min_labels (%d) must be at least 1", m.DriftWindows, m.MinRequests, m.MinLabels)
	}
	if m.MinAccuracy < 0 || m.MinAccuracy > 1 {
		add("monitoring.min_accuracy: %g must be in [0, 1]", m.MinAccuracy)
	}
	if m.LabelHorizon.Duration < 0 || m.MaxLiveMAE < 0 || m.LatencySLOMs < 0 || m.ReviewTimeout.Duration < 0 {
		add("monitoring: label_horizon, max_live_mae, latency_slo_ms and review_timeout must not be negative")
	}
	for i, sub := range m.EscalateTo {
		if !strings.HasPrefix(sub, "user:") && !strings.HasPrefix(sub, "group:") {
			add("monitoring.escalate_to[%d]: %q is not an RBAC subject (user:<id> or group:<name>)", i, sub)
		}
	}
}

// validateTrainer checks the trainer and its parameters.
func (s Spec) validateTrainer(p *problems) {
	add := p.add
	switch s.Trainer.Name {
	case "ridge", "logistic":
		for _, k := range sortedKeys(s.Trainer.Params) {
			v := s.Trainer.Params[k]
			if k != "alpha" {
				add("trainer.params.%s: %s takes only alpha", k, s.Trainer.Name)
			} else if v < 0 {
				add("trainer.params.alpha: must be >= 0, got %g", v)
			}
		}
		if s.Trainer.Objective != "" || s.Trainer.Growth != "" || s.Trainer.MaxRows != 0 {
			add("trainer: objective, growth and max_rows are gbdt settings")
		}
	case "gbdt":
		if _, err := hparams.From(s.Trainer.Objective, s.Trainer.Growth, s.Trainer.Params); err != nil {
			*p = append(*p, err)
		}
		if v := s.Trainer.ValidationShare; v < 0 || v >= 1 {
			add("trainer.validation_share: must be in [0, 1), got %g", v)
		}
		if s.Trainer.MaxRows < 0 {
			add("trainer.max_rows: must be 0 (the default bound) or more, got %d", s.Trainer.MaxRows)
		}
	case "command", "file":
		s.validateBringYourOwn(add)
	default:
		add("trainer.name: %q is not a known trainer (known: ridge, logistic, gbdt, command, file)", s.Trainer.Name)
	}
	if s.Trainer.Name != "command" && s.Trainer.Command != "" {
		add("trainer.command: only for trainer command, not %s", s.Trainer.Name)
	}
	if s.Trainer.Name != "file" && s.Trainer.ModelFile != "" {
		add("trainer.model_file: only for trainer file, not %s", s.Trainer.Name)
	}
	if q := s.Trainer.TaskQueue; q != "" && !namePattern.MatchString(strings.ToLower(q)) {
		add("trainer.task_queue: %q is not a valid task queue name", q)
	}
}

// validateTable checks a dataset's table source.
func (s Spec) validateTable(add func(string, ...any)) {
	t := s.Dataset.Table
	if t == nil {
		return
	}
	badPath := strings.Contains(t.Path, "..") || strings.HasPrefix(t.Path, "/")
	switch {
	case t.Format != "delta" && t.Format != "iceberg":
		add("dataset.table.format: %q; delta or iceberg", t.Format)
	case t.Format == "delta" && (t.Path == "" || badPath):
		add("dataset.table.path: the table's key prefix in the bucket, got %q", t.Path)
	case t.Format == "delta" && (t.Catalog != "" || t.Name != "" || t.SnapshotID != nil):
		add("dataset.table: catalog, name and snapshot_id are an Iceberg table's; a Delta table has a path and a version")
	case t.Format == "iceberg" && (t.Path == "") == (t.Catalog == ""):
		add("dataset.table: an Iceberg table has a path in the bucket or a catalog and a name, one of them")
	case t.Format == "iceberg" && badPath:
		add("dataset.table.path: the table's key prefix in the bucket, got %q", t.Path)
	case t.Format == "iceberg" && t.Catalog != "" && (!namePattern.MatchString(t.Catalog) || !tableName.MatchString(t.Name)):
		add("dataset.table: catalog %q (a name the worker's --iceberg-catalog gives) and name %q (namespace.table)", t.Catalog, t.Name)
	case t.Format == "iceberg" && t.Version != nil:
		add("dataset.table.version is a Delta version: pin an Iceberg snapshot with snapshot_id")
	case t.Version != nil && *t.Version < 0:
		add("dataset.table.version: must be >= 0, got %d", *t.Version)
	case (t.Version != nil || t.SnapshotID != nil) && t.AsOf != "":
		add("dataset.table: give a version (snapshot_id) or as_of, not both")
	}
	if t.AsOf != "" {
		if _, err := time.Parse(time.RFC3339, t.AsOf); err != nil {
			add("dataset.table.as_of: %q is not an RFC 3339 time", t.AsOf)
		}
	}
	if s.Dataset.PartitionRows > 0 {
		add("dataset.partition_rows: not for a table (yet)")
	}
}

// tableName is an Iceberg table's namespace.table (namespaces may nest: a.b.table).
var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$`)

// validateBringYourOwn checks a command trainer (a command name, the queue of the trainer
// that runs it, any numeric params) or a model file (a bucket key, no queue).
func (s Spec) validateBringYourOwn(add func(string, ...any)) {
	t := s.Trainer
	switch {
	case t.Name == "command" && !namePattern.MatchString(strings.ToLower(t.Command)):
		add("trainer.command: name the command (1-63 lowercase letters, digits, - or _) the command trainer runs, got %q", t.Command)
	case t.Name == "command" && t.TaskQueue == "":
		add("trainer.task_queue: a command trainer polls a task queue; name it")
	case t.Name == "file" && (t.ModelFile == "" || strings.Contains(t.ModelFile, "..")):
		add("trainer.model_file: the key (or s3:// URI) of a model file in Driftline's bucket, got %q", t.ModelFile)
	case t.Name == "file" && t.TaskQueue != "":
		add("trainer.task_queue: a model file is adopted by the pipeline's own workers; no task queue")
	}
	switch t.Objective {
	case "", hparams.SquaredError, hparams.AbsoluteError, hparams.BinaryLogLoss:
	default:
		add("trainer.objective: %q (squared_error, absolute_error or binary_logloss)", t.Objective)
	}
	for _, k := range sortedKeys(t.Params) {
		if v := t.Params[k]; math.IsNaN(v) || math.IsInf(v, 0) {
			add("trainer.params.%s: must be a finite number, got %g", k, v)
		}
	}
	if t.Growth != "" || t.MaxRows != 0 {
		add("trainer: growth and max_rows are gbdt settings")
	}
	if v := t.ValidationShare; v < 0 || v >= 1 {
		add("trainer.validation_share: must be in [0, 1), got %g", v)
	}
}

// validateThresholds checks the quantization, drift, fairness, evaluation and canary numbers.
func (s Spec) validateThresholds(p *problems) {
	add := p.add
	if !(s.Quantization.MaxMAELoss > 0) {
		add("quantization.max_mae_loss: must be > 0, got %g", s.Quantization.MaxMAELoss)
	}
	share := func(field string, v float64) {
		if v < 0 || v > 1 {
			add("%s: must be between 0 and 1, got %g", field, v)
		}
	}
	share("drift.drift_share", s.Drift.DriftShare)
	share("drift.alpha", s.Drift.Alpha)
	share("drift.new_category_share", s.Drift.NewCategoryShare)
	share("fairness.min_disparate_impact", s.Fairness.MinDisparateImpact)
	if s.Evaluation.MaxMAE <= 0 {
		add("evaluation.max_mae: required and > 0")
	}
	if s.Canary.Share <= 0 || s.Canary.Share >= 1 {
		add("canary.share: must be in (0, 1), got %g", s.Canary.Share)
	}
	for i, st := range s.Canary.Steps {
		if st <= 0 || st > 1 || (i > 0 && st <= s.Canary.Steps[i-1]) {
			add("canary.steps[%d]: shares must rise within (0, 1], got %v", i, s.Canary.Steps)
			break
		}
	}
	if !(s.Canary.PairedShare >= 0 && s.Canary.PairedShare <= 1) { // 0: specs from before pairing, read as 1
		add("canary.paired_share: must be in (0, 1], got %g", s.Canary.PairedShare)
	}
	if s.Canary.Mode != ModeSplit && s.Canary.Mode != ModeShadow {
		add("canary.mode: %q is not split or shadow", s.Canary.Mode)
	}
}

// FeatureKinds says, per feature, whether drift treats it as numeric or categorical.
func (s Spec) FeatureKinds() []string {
	out := make([]string, len(s.Features))
	for i, f := range s.Features {
		out[i] = drift.Numeric
		if col, ok := s.Contract.Column(f); ok && col.IsCategorical() {
			out[i] = drift.Categorical
		}
	}
	return out
}

// sortedKeys lists a map's keys in order, so validation reports them deterministically (the
// workflow validates its spec).
func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	// Sorted below: the map's order does not matter.
	//workflowcheck:ignore
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// CanaryMode is how a candidate takes its share of the traffic.
type CanaryMode string

// The canary modes.
const (
	ModeSplit  CanaryMode = "split"  // the candidate answers its share
	ModeShadow CanaryMode = "shadow" // production answers everything; the candidate is scored on its share and logged
)
