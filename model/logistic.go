package model

import (
	"errors"
	"fmt"
	"math"
)

// RowSource streams the training rows (features in order, then the label) once per call; a
// trainer that needs several passes calls it several times, so rows never have to be held.
type RowSource func(visit func(x []float64, y float64)) error

// LogisticFit describes how a logistic regression converged.
type LogisticFit struct {
	Iterations int     `json:"iterations"`
	Rows       int64   `json:"rows"`
	LogLoss    float64 `json:"train_logloss"`
}

// TrainLogistic fits L2-regularised logistic regression (unpenalised intercept) on
// standardised features by Newton's method: one pass for the means and scales, then one pass
// per iteration accumulating the gradient and the (p+1)^2 Hessian. Labels must be 0 or 1.
// The coefficients live in a Linear whose Predict is the log-odds.
func TrainLogistic(p int, alpha float64, src RowSource) (*Linear, LogisticFit, error) {
	var fit LogisticFit
	if p == 0 {
		return nil, fit, errors.New("logistic: no features")
	}
	lin, n, positives, err := standardise(p, src)
	if err != nil {
		return nil, fit, err
	}
	fit.Rows = n
	rate := math.Min(math.Max(positives/float64(n), 1e-6), 1-1e-6)
	lin.Intercept = math.Log(rate / (1 - rate))
	for iter := 1; iter <= 100; iter++ {
		g, h, loss, err := logisticGradient(lin, alpha, src)
		if err != nil {
			return nil, fit, err
		}
		step, err := choleskySolve(h, g, p+1)
		if err != nil {
			return nil, fit, fmt.Errorf("logistic: %w (try alpha > 0)", err)
		}
		lin.Intercept -= step[0]
		biggest := math.Abs(step[0])
		for j := range p {
			lin.Coef[j] -= step[j+1]
			biggest = math.Max(biggest, math.Abs(step[j+1]))
		}
		fit.Iterations, fit.LogLoss = iter, loss/float64(n)
		if biggest < 1e-10 {
			return lin, fit, nil
		}
	}
	return lin, fit, fmt.Errorf("logistic: no convergence in %d Newton steps (try a larger alpha)", fit.Iterations)
}

// standardise is the first pass: each feature's mean and scale (1 for a constant feature),
// the rows and the positive labels, every label checked to be 0 or 1.
func standardise(p int, src RowSource) (*Linear, int64, float64, error) {
	mean, m2 := make([]float64, p), make([]float64, p)
	var n int64
	var positives float64
	var badRow int64 = -1
	var badLabel float64
	err := src(func(x []float64, y float64) {
		if y != 0 && y != 1 && badRow < 0 {
			badRow, badLabel = n, y
		}
		n++
		positives += y
		for j, v := range x {
			d := v - mean[j]
			mean[j] += d / float64(n)
			m2[j] += d * (v - mean[j])
		}
	})
	if err != nil {
		return nil, 0, 0, err
	}
	if badRow >= 0 {
		return nil, 0, 0, fmt.Errorf("logistic: labels must be 0 or 1; row %d has %g", badRow, badLabel)
	}
	if n < 2 {
		return nil, 0, 0, fmt.Errorf("logistic: need at least 2 rows, got %d", n)
	}
	lin := &Linear{Coef: make([]float64, p), Means: mean, Scales: make([]float64, p)}
	for j := range p {
		lin.Scales[j] = math.Sqrt(m2[j] / float64(n))
		if lin.Scales[j] == 0 {
			lin.Scales[j] = 1
		}
	}
	return lin, n, positives, nil
}

// logisticGradient is one Newton pass: the penalised gradient g and Hessian h (row-major,
// (p+1)^2, intercept first) of the log loss at lin, and the loss summed over the rows.
func logisticGradient(lin *Linear, alpha float64, src RowSource) (g, h []float64, loss float64, err error) {
	p := len(lin.Coef)
	q := p + 1
	z := make([]float64, q)
	g, h = make([]float64, q), make([]float64, q*q)
	err = src(func(x []float64, y float64) {
		z[0] = 1
		for j := range p {
			z[j+1] = (x[j] - lin.Means[j]) / lin.Scales[j]
		}
		m := lin.Intercept
		for j, w := range lin.Coef {
			m += w * z[j+1]
		}
		s := sigmoid(m)
		loss += logLoss(s, y)
		w := math.Max(s*(1-s), 1e-12)
		r := s - y
		for a := range q {
			g[a] += r * z[a]
			wa := w * z[a]
			row := h[a*q : a*q+a+1]
			for b := range row {
				row[b] += wa * z[b]
			}
		}
	})
	if err != nil {
		return nil, nil, 0, err
	}
	for a := range q {
		for b := 0; b < a; b++ {
			h[b*q+a] = h[a*q+b]
		}
	}
	for j := 1; j < q; j++ {
		g[j] += alpha * lin.Coef[j-1]
		h[j*q+j] += alpha
	}
	h[0] += 1e-12 // keeps a perfectly separated intercept solvable
	return g, h, loss, nil
}

// ColumnSource streams in-memory columns as a RowSource.
func ColumnSource(cols [][]float64, y []float64) RowSource {
	return func(visit func(x []float64, y float64)) error {
		x := make([]float64, len(cols))
		for i := range y {
			for j := range cols {
				x[j] = cols[j][i]
			}
			visit(x, y[i])
		}
		return nil
	}
}
