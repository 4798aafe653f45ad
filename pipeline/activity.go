package pipeline

import (
	"time"

	"github.com/driftline/driftline/spec"
)

// SnapshotInput pins a dataset window.
type SnapshotInput struct {
	Model, RunID string
	Dataset      string
	From, To     string // inclusive dates, YYYY-MM-DD
	// PartitionRows is the spec's dataset.partition_rows: files of more rows are cut into
	// pieces of row groups (0: a piece a file).
	PartitionRows int64 `json:"partition_rows,omitempty"`
	// Table is the spec's dataset.table (nil: day partitions under datasets/<dataset>/), and
	// EventTime the column a table is partitioned by.
	Table     *spec.TableSource `json:"table,omitempty"`
	EventTime string            `json:"event_time,omitempty"`
}

// SnapshotResult points at the pinned manifest.
type SnapshotResult struct {
	Key   string `json:"key"`
	URI   string `json:"uri"`
	ID    string `json:"id"`
	Files int    `json:"files"`
	Rows  int64  `json:"rows"`
	Bytes int64  `json:"bytes"`
	// Pieces is how many pieces the window is cut into when PartitionRows splits files (0:
	// none is split, a piece a file); Splits are the split files' pieces.
	Pieces int         `json:"pieces,omitempty"`
	Splits []PieceSpan `json:"splits,omitempty"`
}

// PieceSpan is the pieces [From, To) of one file split by row groups.
type PieceSpan struct {
	From int `json:"from"`
	To   int `json:"to"`
}

// StepInput is what most data steps need: the run, the spec and the snapshot.
type StepInput struct {
	Model, RunID string
	Spec         spec.Spec
	SnapshotKey  string
}

// ValidateResult summarises the validation report.
type ValidateResult struct {
	ReportURI       string  `json:"report_uri"`
	QuarantineURI   string  `json:"quarantine_uri"`
	RowsRead        int64   `json:"rows_read"`
	RowsAccepted    int64   `json:"rows_accepted"`
	RowsQuarantined int64   `json:"rows_quarantined"`
	BadShare        float64 `json:"bad_share"`
}

// DriftResult summarises the drift report.
type DriftResult struct {
	ReferenceVersion int      `json:"reference_version"` // production version compared against; 0 = none yet
	Drifted          bool     `json:"drifted"`
	Score            float64  `json:"score"`
	Share            float64  `json:"share"`
	DriftedFeatures  []string `json:"drifted_features"`
	Why              string   `json:"why"`
	ReportURI        string   `json:"report_uri"`
}

// TrainResult points at the staged candidate.
type TrainResult struct {
	ArtifactKey string  `json:"artifact_key"`
	ArtifactURI string  `json:"artifact_uri"`
	ProfileKey  string  `json:"profile_key"`
	TrainRows   int     `json:"train_rows"`
	TrainRMSE   float64 `json:"train_rmse"` // squared-error trainers
	// TrainMetric (rmse, mae or logloss) and TrainLoss: the objective's training loss.
	TrainMetric string  `json:"train_metric,omitempty"`
	TrainLoss   float64 `json:"train_loss,omitempty"`
	// Trees kept by early stopping (gbdt).
	Trees int `json:"trees,omitempty"`
	// ReadSeconds and FitSeconds split the step's time: reading (and binning) the rows, and
	// fitting (gbdt: the boosting rounds).
	ReadSeconds float64 `json:"read_seconds,omitempty"`
	FitSeconds  float64 `json:"fit_seconds,omitempty"`
	// SampledFrom (gbdt) is how many training rows the trained sample (TrainRows of them) was
	// drawn from, every day at the same rate (0: it trained on every row; the model's lineage
	// has the rows each day kept).
	SampledFrom int64 `json:"sampled_from,omitempty"`
	// ResumedRounds is how many boosting rounds a retry took from its attempt's last
	// checkpoint instead of boosting them again (gbdt; 0: from the start).
	ResumedRounds int `json:"resumed_rounds,omitempty"`
}

// EvaluateInput compares the staged candidate with the champion on the same holdout.
type EvaluateInput struct {
	StepInput
	ArtifactKey     string
	ChampionVersion int
}

// EvaluateResult holds the offline metrics.
type EvaluateResult struct {
	CandidateMAE         float64         `json:"candidate_mae"`
	ChampionMAE          float64         `json:"champion_mae"`
	HasChampion          bool            `json:"has_champion"`
	HoldoutRows          int             `json:"holdout_rows"`
	ReportURI            string          `json:"report_uri"`
	PredictionProfileKey string          `json:"prediction_profile_key"` // the candidate's holdout predictions, reference for prediction drift
	Fairness             *FairnessResult `json:"fairness,omitempty"`
	// Metrics: every candidate metric on the holdout (mae, rmse, r2, mape; logloss, auc,
	// accuracy for classifiers); the report has them per segment and for the champion.
	Metrics    map[string]float64 `json:"metrics,omitempty"`
	Importance map[string]float64 `json:"importance,omitempty"`
	Int8Key    string             `json:"int8_key,omitempty"` // staged int8 variant
	// LossEstimatorKey is the staged loss estimator (regression; the monitor's estimated MAE).
	LossEstimatorKey string              `json:"loss_estimator_key,omitempty"`
	Quantization     *QuantizationReport `json:"quantization,omitempty"`
}

// FairnessResult is the candidate's disparate impact on the holdout.
type FairnessResult struct {
	Attribute       string               `json:"attribute"`
	FavorableAbove  float64              `json:"favorable_at_or_above"`
	DisparateImpact float64              `json:"disparate_impact"`
	Lowest          string               `json:"lowest_group"`
	Highest         string               `json:"highest_group"`
	Groups          map[string]GroupRate `json:"groups"`
}

// GroupRate is one group's favorable-outcome rate.
type GroupRate struct {
	Rows      int     `json:"rows"`
	Favorable int     `json:"favorable"`
	Rate      float64 `json:"rate"`
}

// RegisterInput registers a staged candidate with its lineage.
type RegisterInput struct {
	StepInput
	WorkflowID, RequestedBy string
	ArtifactKey, ProfileKey string
	PredictionProfileKey    string
	Metrics                 map[string]float64
	Reports                 map[string]string
	// The int8 variant and its measurements, and the global feature importance.
	Int8Key          string              `json:",omitempty"`
	LossEstimatorKey string              `json:",omitempty"`
	Quantization     *QuantizationReport `json:",omitempty"`
	Importance       map[string]float64  `json:",omitempty"`
}

// RegisterResult names the new version.
type RegisterResult struct {
	Version     int
	MetadataURI string
	// EdgeBundleURI is the version's signed edge bundle, when the worker holds the signing key
	// and the model has an int8 variant.
	EdgeBundleURI string `json:",omitempty"`
}

// PolicyInput is the evidence the promotion policy judges.
type PolicyInput struct {
	Model, RunID    string
	Version         int
	CandidateMAE    float64
	ChampionVersion int     // 0 = first deployment
	ChampionMAE     float64 // meaningful when ChampionVersion > 0
	Spec            spec.Spec
	Reports         map[string]string
	Fairness        *FairnessResult
	Quantization    *QuantizationReport `json:",omitempty"`
	// Origin (RunInput.Origin) proves who requested the run; StartedAt is the run's start
	// time as the Temporal server recorded it (a run's origin must be issued just before).
	Origin    string    `json:",omitempty"`
	StartedAt time.Time `json:",omitzero"`
}

// PolicyResult is the decision with where its record is stored.
type PolicyResult struct {
	Allow            bool `json:"allow"`
	ApprovalRequired bool `json:"approval_required"`
	// ServeQuantized: policy lets serving answer with the int8 variant.
	ServeQuantized bool     `json:"serve_quantized,omitempty"`
	Reasons        []string `json:"reasons"`
	Revision       string   `json:"revision"`
	DecisionURI    string   `json:"decision_uri"`
	// Governed: the decision was taken on the model's registered spec with the organisation's
	// floors (runs from before registered specs decide break-glass from their own spec).
	Governed bool `json:"governed,omitempty"`
	// DistinctApprover: the approver must not be Requester, the attested requester.
	DistinctApprover bool   `json:"distinct_approver,omitempty"`
	Requester        string `json:"requester,omitempty"`
	// BreakGlass: an approval without attestation may be accepted (spec and floors agree).
	BreakGlass  bool `json:"break_glass,omitempty"`
	SpecVersion int  `json:"spec_version,omitempty"`
}

// DeployInput changes the deployment pointer.
type DeployInput struct {
	Model, RunID, Actor, Reason string
	Version                     int
	Share                       float64
	Mode                        spec.CanaryMode // split or shadow (SetCanary)
	PairedShare                 float64         // SetCanary: share of requests scored by both models
}

// DeployResult is the pointer after the change.
type DeployResult struct {
	Production, Canary int
	Previous           int
	CanarySince        time.Time
}

// CanaryEvalInput asks for a comparison of live traffic since the step started.
type CanaryEvalInput struct {
	Model, RunID          string
	Candidate, Production int
	Since                 time.Time
	// Start is when the canary's first step began: the live MAE test takes every paired
	// request since then (its looks form one sequence); zero means Since.
	Start      time.Time `json:",omitzero"`
	Step, Bake int
	Share      float64
	Guardrails spec.Canary
}

// RouteStats are one route's live numbers.
type RouteStats struct {
	Version      int     `json:"version"`
	Requests     int     `json:"requests"`
	Errors       int     `json:"errors"`
	ErrorRate    float64 `json:"error_rate"`
	Fallbacks    int     `json:"fallbacks"`
	FallbackRate float64 `json:"fallback_rate"`
	P99Ms        float64 `json:"p99_ms"`
	// P99Samples is how many requests a p99 needs to be more than the maximum of a few
	// (canary.QuantileSamples); below it the latency guardrail is inconclusive.
	P99Samples int `json:"p99_samples,omitempty"`
}

// LiveMAE compares MAE on labelled live answers. Both models answer the same requests (one
// on the request path, the other paired off it), so the comparison is per request: Pairs is
// how many labelled requests carry both answers, Candidate and Production are the two MAEs
// on them, and the decision is the paired mixture sequential test of decision 0015 on
// |candidate error| - (1 + max regression) |production error|.
type LiveMAE struct {
	CandidateLabels  int `json:"candidate_labels"`
	ProductionLabels int `json:"production_labels"`
	MinLabels        int `json:"min_labels"`
	Pairs            int `json:"pairs,omitempty"`
	// IgnoredLabels: feedback labels whose label token did not verify (never used).
	IgnoredLabels int     `json:"ignored_labels,omitempty"`
	Candidate     float64 `json:"candidate"`
	Production    float64 `json:"production"`
	PValue        float64 `json:"p_value"`
	// Method names the test; LogEvidence is the log of its mixture likelihood ratio (rollback
	// at log(1/alpha)).
	Method      string  `json:"method,omitempty"`
	LogEvidence float64 `json:"log_evidence,omitempty"`
	Decided     bool    `json:"decided"`
}

// DeltaCI is a confidence interval of a difference, candidate minus production, on the same
// requests.
type DeltaCI struct {
	Estimate float64 `json:"estimate"`
	Low      float64 `json:"low"`
	High     float64 `json:"high"`
	Level    float64 `json:"level"` // e.g. 0.95: the interval's coverage
	Requests int     `json:"requests"`
}

// PredictionDrift summarises the candidate's live outputs against its holdout outputs.
type PredictionDrift struct {
	Answers int     `json:"answers"`
	KS      float64 `json:"ks"`
	PValue  float64 `json:"pvalue"`
	PSI     float64 `json:"psi"`
	Drifted bool    `json:"drifted"`
	Why     string  `json:"why"`
}

// CanaryEvalResult is one bake's verdict with its evidence.
type CanaryEvalResult struct {
	Decision           CanaryDecision  `json:"decision"`
	Reason             string          `json:"reason"`
	Step               int             `json:"step"`
	Share              float64         `json:"share"`
	Candidate          RouteStats      `json:"candidate"`
	Production         RouteStats      `json:"production"`
	MAE                *LiveMAE        `json:"mae,omitempty"`
	Fairness           *FairnessResult `json:"fairness,omitempty"`
	ProductionFairness *FairnessResult `json:"production_fairness,omitempty"` // production on the candidate\'s requests
	// DisparateImpactDelta is the candidate's disparate impact minus production's on the same
	// requests, with a bootstrap interval.
	DisparateImpactDelta *DeltaCI         `json:"disparate_impact_delta,omitempty"`
	PredictionDrift      *PredictionDrift `json:"prediction_drift,omitempty"`
	EvidenceURI          string           `json:"evidence_uri"`
}

// OutcomeInput records how a run ended.
type OutcomeInput struct {
	Model, RunID, WorkflowID string
	Outcome                  Outcome
	Reason                   string
	Version                  int
	Status                   any
}

// ApprovalRecord audits an approval decision.
type ApprovalRecord struct {
	Model, RunID     string
	Version          int
	Approver, Reason string
	Approved         bool
	Via              string // update or signal
	// Attestation is the signed decision the run accepted (empty for break-glass and for runs
	// from before attestations); AttestationID its jti.
	Attestation   string `json:",omitempty"`
	AttestationID string `json:",omitempty"`
	// BreakGlass: accepted without attestation, as the spec allows; MessageID is the Update's
	// id (or empty for a signal), by which the activity finds the Temporal client identity
	// that sent it in the run's history.
	BreakGlass bool   `json:",omitempty"`
	MessageID  string `json:",omitempty"`
}

// AttestationKeysInput asks for the keys that verify approval attestations.
type AttestationKeysInput struct{ Model string }

// ApproversInput asks who may approve a model.
type ApproversInput struct{ Model string }

// ApprovalRequest announces a run waiting for approval.
type ApprovalRequest struct {
	Model, RunID, WorkflowID string
	Version                  int
	Approvers                []string
	Timeout                  time.Duration
	Evidence                 map[string]any
}

// IgnoredApproval audits an approval signal the run refused.
type IgnoredApproval struct {
	Model, RunID, Approver, Why string
	Version                     int
	Approve                     bool
	// Signal is the ignored signal's place among the run's approval signals (1, 2, ...), so
	// its sender's identity is read from the history (0: from before it was recorded).
	Signal int `json:",omitempty"`
}

// QuantizationReport is the int8 variant's evidence, measured on the holdout and stored in
// the version's metadata.
type QuantizationReport struct {
	Variant        string  `json:"variant"` // int8
	Key            string  `json:"key,omitempty"`
	SizeBytes      int     `json:"size_bytes"`
	FloatSizeBytes int     `json:"float_size_bytes"`
	NsPerRow       float64 `json:"ns_per_row"`
	FloatNsPerRow  float64 `json:"float_ns_per_row"`
	MAE            float64 `json:"mae"`
	FloatMAE       float64 `json:"float_mae"`
	// MAELoss is the relative increase of the holdout MAE: (MAE - FloatMAE) / FloatMAE.
	MAELoss float64 `json:"mae_loss"`
	Rows    int     `json:"rows"`
	Error   string  `json:"error,omitempty"` // why no variant could be made
}

// InspectResult is the window's one pass: validation, drift against the production
// reference, and what training needs from its days (reference profile, gbdt bins).
type InspectResult struct {
	Validation ValidateResult
	Drift      DriftResult
	// ProfileKey is the candidate's reference profile (its training rows); BinsKey the gbdt
	// bins cut from a sample of them (empty for the other trainers).
	ProfileKey, BinsKey string
	// ResumedAfter names the batch a retry resumed after (its attempt's last checkpoint:
	// "file 3 row group 2"), with the rows the checkpoint had counted; empty when the pass
	// ran from the start.
	ResumedAfter string `json:",omitempty"`
	ResumedRows  int64  `json:",omitempty"`
	// HoldoutFrom is the first partition holding holdout rows, when the pass ran as
	// partitions (MergePartitions): the evaluation runs over that partition and the ones
	// after it. Nil after a pass in one activity.
	HoldoutFrom *int `json:",omitempty"`
}

// TrainInput is StepInput plus what the window's first pass prepared (empty: Train reads
// the training days once more to prepare it itself, as runs before the one-pass shape did).
type TrainInput struct {
	StepInput
	ProfileKey, BinsKey string `json:",omitempty"`
}
