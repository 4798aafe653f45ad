package policies

import "github.com/driftline/driftline/spec"

// PromotionInput is the promotion policy's input (input.* in promotion.rego): the evidence of
// one candidate, decided on the model's registered spec. Rego reads it through its JSON.
type PromotionInput struct {
	Model   string `json:"model"`
	Version int    `json:"version"` // the candidate's registry version
	// Candidate and Champion are measured on the same holdout; no champion on a first run.
	Candidate Candidate `json:"candidate"`
	Champion  *Champion `json:"champion,omitempty"`
	// Spec is the model's registered spec (never the run's own): thresholds, approval,
	// fairness floors and quantization tolerance.
	Spec       spec.Spec         `json:"spec"`
	Reports    map[string]string `json:"reports"` // report name -> object URI
	Governance GovernanceInput   `json:"governance"`
	// Quantization is the int8 variant's measurement, when one was made and succeeded.
	Quantization *QuantizationInput `json:"quantization,omitempty"`
	// Fairness is the disparate impact of the candidate's predictions on the holdout.
	Fairness *FairnessInput `json:"fairness,omitempty"`
}

// Candidate is the candidate's holdout error.
type Candidate struct {
	MAE float64 `json:"mae"`
}

// Champion is production's error on the candidate's holdout.
type Champion struct {
	Version int     `json:"version"`
	MAE     float64 `json:"mae"`
}

// GovernanceInput is what the policy step established before asking: the registered spec's
// version, who requested the run (from the API's origin attestation) and the governed fields
// where the run's spec departs from the registered one.
type GovernanceInput struct {
	SpecVersion       int      `json:"spec_version"`
	Requester         string   `json:"requester"`
	RequesterVerified bool     `json:"requester_verified"`
	ChangedFields     []string `json:"changed_fields"`
}

// QuantizationInput is the int8 variant against the float model.
type QuantizationInput struct {
	Variant        string  `json:"variant"`
	MAELoss        float64 `json:"mae_loss"`
	MAE            float64 `json:"mae"`
	FloatMAE       float64 `json:"float_mae"`
	SizeBytes      int     `json:"size_bytes"`
	FloatSizeBytes int     `json:"float_size_bytes"`
}

// FairnessInput is the disparate impact by a protected attribute.
type FairnessInput struct {
	Attribute       string  `json:"attribute"`
	DisparateImpact float64 `json:"disparate_impact"`
	LowestGroup     string  `json:"lowest_group"`
	HighestGroup    string  `json:"highest_group"`
}
