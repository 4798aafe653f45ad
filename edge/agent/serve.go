package agent

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sync/atomic"
	"time"
)

// Handler answers predictions on the device's local port:
//
//	POST /predict {"rows": [[...], ...], "ids": [...]}  ->  {"predictions": [...], "model": ..., "version": ..., "counter": ...}
//	                                        (null in a row is a missing value; a null prediction is NaN)
//	POST /label {"id": ..., "label": x}    ->  204: the outcome of a prediction, when it is known
//	GET  /healthz                          ->  200 when a model is installed, 503 before
//
// With a log, every prediction with an id and every label is kept for upload (Log); the
// state counts both, sketches the inputs of the installed version when it has a sketcher for
// it, and keeps the inputs out of the log when they must stay on the device.
func Handler(s *Store, log *Log, counts *State) http.Handler {
	if counts == nil {
		counts = &State{}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /label", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID    string   `json:"id"`
			Label *float64 `json:"label"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || req.ID == "" || req.Label == nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("want {\"id\": ..., \"label\": x}: %v", err)})
			return
		}
		counts.Labels.Add(1)
		if log != nil {
			if err := log.Append(Record{Time: time.Now().UTC(), Kind: "label", ID: req.ID, Label: req.Label}); err != nil {
				writeJSON(w, http.StatusInsufficientStorage, map[string]string{"error": err.Error()})
				return
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		m := s.Model()
		if m == nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "no bundle installed yet"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"model": m.Manifest.Model, "version": m.Manifest.Version, "counter": m.Manifest.Counter})
	})
	mux.HandleFunc("POST /predict", predictHandler(s, log, counts))
	return mux
}

// predictHandler answers POST /predict with the installed model, logging what it answered.
func predictHandler(s *Store, log *Log, counts *State) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		m := s.Model()
		if m == nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "no bundle installed yet"})
			return
		}
		var req struct {
			Rows [][]*float64 `json:"rows"`
			IDs  []string     `json:"ids"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body: " + err.Error()})
			return
		}
		out := make([]*float64, len(req.Rows)) // null: NaN (a missing value reaching a linear model)
		x := make([]float64, len(m.Features()))
		paired := s.Paired()
		for i, row := range req.Rows {
			if len(row) != len(x) {
				writeJSON(w, http.StatusBadRequest, map[string]any{"error": fmt.Sprintf("a row of %d values for %d features", len(row), len(x)), "row": i})
				return
			}
			for j, v := range row {
				x[j] = math.NaN()
				if v != nil {
					x[j] = *v
				}
			}
			start := time.Now()
			p, err := m.Predict(x)
			took := time.Since(start)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error(), "row": i})
				return
			}
			out[i] = finite(p)
			counts.Predictions.Add(1)
			if sk := counts.Sketcher.Load(); sk != nil && sk.Version() == m.Manifest.Version {
				sk.Add(x)
			}
			if log != nil && i < len(req.IDs) && req.IDs[i] != "" {
				rec := Record{Time: time.Now().UTC(), Kind: "prediction", ID: req.IDs[i], Version: m.Manifest.Version,
					Inputs: req.Rows[i], Prediction: out[i], LatencyUs: took.Microseconds()}
				if counts.inputsStay != nil && counts.inputsStay() {
					rec.Inputs = nil
				}
				if paired != nil {
					if pp, err := paired.Predict(x); err == nil {
						rec.PairedVersion, rec.PairedPrediction = paired.Manifest.Version, finite(pp)
					}
				}
				_ = log.Append(rec) // a full log is counted in Dropped
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"predictions": out, "model": m.Manifest.Model, "version": m.Manifest.Version, "counter": m.Manifest.Counter})
	}
}

// State is what the agent's local port shares with the rest of the agent: the predictions
// answered and the labels received since it started, the sketcher of the installed version's
// inputs (nil: none), and whether the inputs must stay on the device.
type State struct {
	Predictions, Labels atomic.Uint64
	Sketcher            atomic.Pointer[Sketcher]
	// inputsStay reads the source's last answer (Fetcher.SketchesOnly), which arrives with
	// the bundle: no prediction is logged with inputs before it is known.
	inputsStay func() bool
}

// finite is p, or nil for NaN (JSON has no NaN).
func finite(p float64) *float64 {
	if p != p {
		return nil
	}
	return &p
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
