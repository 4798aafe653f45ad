package model

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// Format is the artifact format identifier this build writes and reads.
const Format = "driftline.model/v1"

// ErrBadArtifact marks an artifact that cannot be loaded: retrying will not help.
var ErrBadArtifact = errors.New("bad model artifact")

// Model is a trained model with its self-description.
type Model struct {
	Family   string             `json:"family"` // "linear"
	Trainer  string             `json:"trainer"`
	Features []string           `json:"features"`
	Target   string             `json:"target"`
	Params   map[string]float64 `json:"params"`
	// TrainingFingerprint identifies the data it was trained on (snapshot id + row count).
	TrainingFingerprint string  `json:"training_fingerprint"`
	Linear              *Linear `json:"linear,omitempty"`
}

type envelope struct {
	Format  string          `json:"format"`
	SHA256  string          `json:"sha256"`
	Payload json.RawMessage `json:"payload"`
}

// Marshal encodes the model as a self-describing artifact carrying the SHA-256 of its payload.
func (m *Model) Marshal() ([]byte, error) {
	payload, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(payload)
	return json.MarshalIndent(envelope{Format: Format, SHA256: hex.EncodeToString(sum[:]), Payload: payload}, "", " ")
}

// Unmarshal decodes an artifact and verifies its checksum and shape.
func Unmarshal(data []byte) (*Model, error) {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%w: not a driftline artifact: %v", ErrBadArtifact, err)
	}
	if env.Format != Format {
		return nil, fmt.Errorf("%w: format %q, this build reads %q", ErrBadArtifact, env.Format, Format)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, env.Payload); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrBadArtifact, err)
	}
	sum := sha256.Sum256(compact.Bytes())
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
	switch m.Family {
	case "linear":
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

// Predict scores a row in feature order.
func (m *Model) Predict(x []float64) float64 { return m.Linear.Predict(x) }

// Explain returns the base value and per-feature contributions (SHAP values).
func (m *Model) Explain(x []float64) (float64, []float64) { return m.Linear.Explain(x) }

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

// MAE is the mean absolute error of the model over column-major rows.
func (m *Model) MAE(cols [][]float64, y []float64) (float64, error) {
	if len(y) == 0 {
		return 0, errors.New("mae: no rows")
	}
	if len(cols) != len(m.Features) {
		return 0, fmt.Errorf("mae: %d columns for %d features", len(cols), len(m.Features))
	}
	x := make([]float64, len(cols))
	var s float64
	for i := range y {
		for j := range cols {
			x[j] = cols[j][i]
		}
		s += math.Abs(m.Predict(x) - y[i])
	}
	return s / float64(len(y)), nil
}
