package evaluate

import (
	"fmt"
	"math"
	"time"

	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/pipeline"
)

// MeasureQuantization scores the holdout rows (row-major) with the model and its int8
// variant and reports sizes, speed and the accuracy lost.
func MeasureQuantization(m, q *model.Model, rows []float64, y []float64) (pipeline.QuantizationReport, error) {
	p := len(m.Features)
	if len(y) == 0 || len(rows) != len(y)*p {
		return pipeline.QuantizationReport{}, fmt.Errorf("quantization: %d values for %d rows of %d features", len(rows), len(y), p)
	}
	fb, err := m.Marshal()
	if err != nil {
		return pipeline.QuantizationReport{}, err
	}
	qb, err := q.Marshal()
	if err != nil {
		return pipeline.QuantizationReport{}, err
	}
	r := pipeline.QuantizationReport{Variant: "int8", SizeBytes: len(qb), FloatSizeBytes: len(fb), Rows: len(y)}
	measure := func(mm *model.Model) (mae, ns float64) {
		start := time.Now()
		for i := range y {
			mae += math.Abs(mm.Predict(rows[i*p:i*p+p]) - y[i])
		}
		return mae / float64(len(y)), float64(time.Since(start).Nanoseconds()) / float64(len(y))
	}
	r.FloatMAE, r.FloatNsPerRow = measure(m)
	r.MAE, r.NsPerRow = measure(q)
	if r.FloatMAE > 0 {
		r.MAELoss = (r.MAE - r.FloatMAE) / r.FloatMAE
	}
	return r, nil
}
