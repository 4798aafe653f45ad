package pipeline

// ExternalTrainActivity's input is ExternalTrainInput and its output ExternalTrainOutput, both
// plain JSON, so a trainer can be written with any Temporal SDK (docs/models.md, "External
// trainers").

// Artifact formats an external trainer may write.
const (
	FormatDriftline   = "driftline"     // a driftline.model/v2 envelope (model package)
	FormatXGBoostJSON = "xgboost-json"  // Booster.save_model("model.json")
	FormatLightGBM    = "lightgbm-text" // LightGBM's Booster.save_model("model.txt")
	FormatONNX        = "onnx"          // an ONNX tree ensemble (docs/models.md, "ONNX tree models")
)

// ExternalTrainInput is what an external trainer receives.
type ExternalTrainInput struct {
	Model    string             `json:"model"`
	RunID    string             `json:"run_id"`
	Features []string           `json:"features"` // column order the artifact must use
	Schema   []Input            `json:"schema"`   // per feature: name, type (double, int, bool), kind (numeric, categorical)
	Target   string             `json:"target"`
	Trainer  string             `json:"trainer"` // the spec's trainer name (free for external trainers)
	Params   map[string]float64 `json:"params,omitempty"`
	// SnapshotURI is the pinned file list of the window (JSON: files with key, etag, rows);
	// Files are the Parquet files themselves. Rows whose EventTime column is on or after
	// HoldoutFrom are the evaluation holdout: train only on earlier rows.
	SnapshotURI string   `json:"snapshot_uri"`
	Files       []string `json:"files"`
	EventTime   string   `json:"event_time"`
	HoldoutFrom string   `json:"holdout_from"`
	// OutputURI is where the trainer writes its artifact (same bucket).
	OutputURI string `json:"output_uri"`
	// TrainURI and ValidationURI are the accepted rows before HoldoutFrom as CSV (a header
	// of the features and the target; a missing value empty), split by a hash of the row:
	// ValidationShare of them are the validation rows (for early stopping; the holdout stays
	// out of both). Command is the spec's trainer command: the name of a command a command
	// trainer runs (docs/models.md, "Command trainers").
	TrainURI        string  `json:"train_uri,omitempty"`
	ValidationURI   string  `json:"validation_uri,omitempty"`
	TrainRows       int     `json:"train_rows,omitempty"`
	ValidationRows  int     `json:"validation_rows,omitempty"`
	ValidationShare float64 `json:"validation_share,omitempty"`
	Command         string  `json:"command,omitempty"`
}

// ExternalTrainOutput is what an external trainer returns.
type ExternalTrainOutput struct {
	ArtifactURI string             `json:"artifact_uri"`
	Format      string             `json:"format"` // driftline, xgboost-json, lightgbm-text or onnx; empty: detected
	TrainRows   int                `json:"train_rows"`
	Metrics     map[string]float64 `json:"metrics,omitempty"`
}

// AdoptInput hands an external trainer's output to the built-in side.
type AdoptInput struct {
	StepInput
	TaskQueue string
	Output    ExternalTrainOutput
	// ProfileKey is the reference profile the window's first pass built (empty: built here).
	ProfileKey string `json:",omitempty"`
}

// Input describes one model input: its name, value type and whether it is a category code
// (the artifact format's input schema; model.Input has the same JSON).
type Input struct {
	Name string `json:"name"`
	Type string `json:"type"` // double or int
	Kind string `json:"kind"` // numeric or categorical
}
