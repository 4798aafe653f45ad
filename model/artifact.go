package model

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/driftline/driftline/model/hparams"
)

// Format is the artifact format this build writes. It also reads FormatV1 (linear models
// without an input schema).
const (
	Format   = "driftline.model/v2"
	FormatV1 = "driftline.model/v1"
)

// ErrBadArtifact marks an artifact that cannot be loaded: retrying will not help.
var ErrBadArtifact = errors.New("bad model artifact")

// Model families.
const (
	FamilyLinear = "linear"
	FamilyGBDT   = "gbdt"
	FamilyInt8   = "int8"
)

// Input describes one model input: its name, value type and whether it is a category code.
type Input struct {
	Name string `json:"name"`
	Type string `json:"type"` // double or int
	Kind string `json:"kind"` // numeric or categorical
}

// Model is a trained model with its self-description.
type Model struct {
	Family  string `json:"family"`  // linear or gbdt
	Trainer string `json:"trainer"` // ridge, logistic, gbdt, xgboost, or external:<queue>
	// Objective is squared_error (regression), absolute_error or binary_logloss
	// (classification: Predict returns the probability of class 1).
	Objective string `json:"objective,omitempty"`
	// Features is the feature order; Inputs their schema, in the same order.
	Features []string           `json:"features"`
	Inputs   []Input            `json:"inputs,omitempty"`
	Target   string             `json:"target"`
	Params   map[string]float64 `json:"params"`
	Settings map[string]string  `json:"settings,omitempty"`
	// TrainingFingerprint identifies the data it was trained on (snapshot id + row count).
	TrainingFingerprint string    `json:"training_fingerprint"`
	Linear              *Linear   `json:"linear,omitempty"`
	GBDT                *Ensemble `json:"gbdt,omitempty"`
	// Int8 is set for the quantised variant (family int8).
	Int8 *Int8 `json:"int8,omitempty"`
}

type envelope struct {
	Format  string          `json:"format"`
	SHA256  string          `json:"sha256"`
	Payload json.RawMessage `json:"payload"`
}

// Marshal encodes the model as a self-describing artifact carrying the SHA-256 of its payload,
// compact: an indented artifact put every number of the trees on its own line, which made it
// twice the size and its loading a third slower (`jq .` shows one to a reader).
func (m *Model) Marshal() ([]byte, error) {
	payload, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(payload)
	return json.Marshal(envelope{Format: Format, SHA256: hex.EncodeToString(sum[:]), Payload: payload})
}

// Unmarshal decodes an artifact and verifies its checksum and shape.
func Unmarshal(data []byte) (*Model, error) {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%w: not a driftline artifact: %v", ErrBadArtifact, err)
	}
	if env.Format != Format && env.Format != FormatV1 {
		return nil, fmt.Errorf("%w: format %q, this build reads %q and %q", ErrBadArtifact, env.Format, Format, FormatV1)
	}
	// The checksum is of the compact payload, which is how Marshal writes it: hashed as it is
	// first, compacted (one more pass over it) only when that does not match.
	sum := sha256.Sum256(env.Payload)
	if hex.EncodeToString(sum[:]) != env.SHA256 {
		var compact bytes.Buffer
		if err := json.Compact(&compact, env.Payload); err != nil {
			return nil, fmt.Errorf("%w: payload: %v", ErrBadArtifact, err)
		}
		sum = sha256.Sum256(compact.Bytes())
	}
	if got := hex.EncodeToString(sum[:]); got != env.SHA256 {
		return nil, fmt.Errorf("%w: checksum mismatch (payload %s, recorded %s): altered or truncated", ErrBadArtifact, got, env.SHA256)
	}
	var m Model
	if err := json.Unmarshal(env.Payload, &m); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrBadArtifact, err)
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadArtifact, err)
	}
	return &m, nil
}

func (m *Model) check() error {
	if m.Inputs != nil && len(m.Inputs) != len(m.Features) {
		return fmt.Errorf("%d inputs described for %d features", len(m.Inputs), len(m.Features))
	}
	for i, in := range m.Inputs {
		if in.Name != m.Features[i] {
			return fmt.Errorf("input %d is %q but feature %d is %q", i, in.Name, i, m.Features[i])
		}
	}
	switch m.Objective {
	case "", hparams.SquaredError, hparams.AbsoluteError, hparams.BinaryLogLoss:
	default:
		return fmt.Errorf("unknown objective %q", m.Objective)
	}
	switch m.Family {
	case FamilyInt8:
		if m.Int8 == nil {
			return errors.New("int8 family without parameters")
		}
		return m.Int8.prepare(len(m.Features))
	case FamilyGBDT:
		if m.GBDT == nil {
			return errors.New("gbdt family without trees")
		}
		if m.Objective != "" && m.Objective != m.GBDT.Objective {
			return fmt.Errorf("model objective %q but trees trained for %q", m.Objective, m.GBDT.Objective)
		}
		return m.GBDT.checked(len(m.Features))
	case FamilyLinear:
		l := m.Linear
		if l == nil {
			return errors.New("linear family without linear parameters")
		}
		p := len(m.Features)
		if len(l.Coef) != p || len(l.Means) != p || len(l.Scales) != p {
			return fmt.Errorf("linear model has %d/%d/%d parameters for %d features", len(l.Coef), len(l.Means), len(l.Scales), p)
		}
		for _, s := range l.Scales {
			if s == 0 || math.IsNaN(s) {
				return errors.New("linear model has a zero or NaN scale")
			}
		}
		return nil
	default:
		return fmt.Errorf("unknown model family %q", m.Family)
	}
}

// Predictor is what every model family answers: the margin of a row (feature order), its
// exact SHAP explanation in margin space, and the expected margin (the explanations' base).
// Linear, Ensemble and Int8 implement it; Model dispatches through it.
type Predictor interface {
	Margin(x []float64) float64
	Explain(x []float64) (base float64, contrib []float64)
	ExpectedMargin() float64
}

var (
	_ Predictor = (*Linear)(nil)
	_ Predictor = (*Ensemble)(nil)
	_ Predictor = (*Int8)(nil)
)

// Predictor is the model's family implementation.
func (m *Model) Predictor() Predictor {
	switch m.Family {
	case FamilyInt8:
		return m.Int8
	case FamilyGBDT:
		return m.GBDT
	}
	return m.Linear
}

// Predict scores a row in feature order: the regression value, or for binary_logloss the
// probability of class 1.
func (m *Model) Predict(x []float64) float64 {
	switch m.Family {
	case FamilyGBDT:
		return m.GBDT.Predict(x) // its own link, with the fast path
	case FamilyInt8:
		return m.Int8.Predict(x) // the edge runtime's link, the same on every CPU
	}
	v := m.Predictor().Margin(x)
	if m.Objective == hparams.BinaryLogLoss {
		return sigmoid(v)
	}
	return v
}

// Explain returns the base value and per-feature contributions (exact SHAP values), in
// margin space: base + sum(contributions) is the prediction for regression and its log-odds
// for binary_logloss.
func (m *Model) Explain(x []float64) (float64, []float64) { return m.Predictor().Explain(x) }

// Classifier reports whether Predict returns a probability.
func (m *Model) Classifier() bool { return m.Objective == hparams.BinaryLogLoss }

// ExpectedValue is the explanations' base value: the prediction (margin) for an average row.
func (m *Model) ExpectedValue() float64 { return m.Predictor().ExpectedMargin() }

// MissingFeatureError names a feature a request did not carry.
type MissingFeatureError struct{ Feature string }

func (e *MissingFeatureError) Error() string { return fmt.Sprintf("missing feature %q", e.Feature) }

// Vector orders named feature values as the model expects, naming the first missing or
// non-finite one.
func (m *Model) Vector(named map[string]float64) ([]float64, error) {
	x := make([]float64, len(m.Features))
	for i, f := range m.Features {
		v, ok := named[f]
		if !ok {
			return nil, &MissingFeatureError{Feature: f}
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("feature %q is not a finite number", f)
		}
		x[i] = v
	}
	return x, nil
}

// NumericInputs describes features that are all plain numbers (schema for a model whose
// trainer did not see the contract).
func NumericInputs(features []string) []Input {
	out := make([]Input, len(features))
	for i, f := range features {
		out[i] = Input{Name: f, Type: "double", Kind: "numeric"}
	}
	return out
}
