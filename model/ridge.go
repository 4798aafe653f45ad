// Package model holds trainers, the artifact format and predictors with explanations.
package model

import (
	"errors"
	"fmt"
	"math"
)

// Linear is a linear model over standardised features: y = b + sum(w_i * (x_i - mean_i)/scale_i).
type Linear struct {
	Intercept float64   `json:"intercept"`
	Coef      []float64 `json:"coef"`
	Means     []float64 `json:"means"`
	Scales    []float64 `json:"scales"`
}

// TrainRidge fits ridge regression with an unpenalised intercept on standardised features.
// cols is column-major (one slice per feature). alpha is the L2 penalty.
func TrainRidge(cols [][]float64, y []float64, alpha float64) (*Linear, error) {
	p, n := len(cols), len(y)
	if p == 0 {
		return nil, errors.New("ridge: no features")
	}
	if n < 2 {
		return nil, fmt.Errorf("ridge: need at least 2 rows, got %d", n)
	}
	m := &Linear{Coef: make([]float64, p), Means: make([]float64, p), Scales: make([]float64, p)}
	var constant []int
	for j, c := range cols {
		if len(c) != n {
			return nil, fmt.Errorf("ridge: feature %d has %d rows, target has %d", j, len(c), n)
		}
		var s float64
		for _, v := range c {
			s += v
		}
		m.Means[j] = s / float64(n)
		var ss float64
		for _, v := range c {
			ss += (v - m.Means[j]) * (v - m.Means[j])
		}
		m.Scales[j] = math.Sqrt(ss / float64(n))
		if m.Scales[j] == 0 {
			m.Scales[j] = 1 // a constant feature: its z is 0 everywhere, so its weight is 0
			constant = append(constant, j)
		}
	}
	var ymean float64
	for _, v := range y {
		ymean += v
	}
	ymean /= float64(n)
	m.Intercept = ymean
	// Normal equations on standardised data: (Z'Z + alpha I) w = Z'(y - ymean).
	a := make([]float64, p*p)
	b := make([]float64, p)
	z := make([]float64, p)
	for i := range n {
		for j := range p {
			z[j] = (cols[j][i] - m.Means[j]) / m.Scales[j]
		}
		yc := y[i] - ymean
		for j := range p {
			b[j] += z[j] * yc
			for k := 0; k <= j; k++ {
				a[j*p+k] += z[j] * z[k]
			}
		}
	}
	for j := range p {
		for k := 0; k < j; k++ {
			a[k*p+j] = a[j*p+k]
		}
		a[j*p+j] += alpha
	}
	for _, j := range constant {
		a[j*p+j] += 1 // keeps the system solvable with alpha = 0; the weight stays 0
	}
	w, err := choleskySolve(a, b, p)
	if err != nil {
		return nil, fmt.Errorf("ridge: %w (try alpha > 0)", err)
	}
	m.Coef = w
	return m, nil
}

// choleskySolve solves A x = b for a symmetric positive definite A (row-major p x p).
func choleskySolve(a, b []float64, p int) ([]float64, error) {
	l := make([]float64, p*p)
	for i := range p {
		for j := 0; j <= i; j++ {
			s := a[i*p+j]
			for k := range j {
				s -= l[i*p+k] * l[j*p+k]
			}
			if i == j {
				if s <= 0 {
					return nil, errors.New("matrix is not positive definite")
				}
				l[i*p+i] = math.Sqrt(s)
			} else {
				l[i*p+j] = s / l[j*p+j]
			}
		}
	}
	y := make([]float64, p)
	for i := range p {
		s := b[i]
		for k := range i {
			s -= l[i*p+k] * y[k]
		}
		y[i] = s / l[i*p+i]
	}
	x := make([]float64, p)
	for i := p - 1; i >= 0; i-- {
		s := y[i]
		for k := i + 1; k < p; k++ {
			s -= l[k*p+i] * x[k]
		}
		x[i] = s / l[i*p+i]
	}
	return x, nil
}

// Predict scores one row given in feature order.
func (m *Linear) Predict(x []float64) float64 {
	out := m.Intercept
	for j, w := range m.Coef {
		out += w * (x[j] - m.Means[j]) / m.Scales[j]
	}
	return out
}

// Explain returns the exact SHAP values of a linear model under feature independence with the
// training means as background: base = intercept, contribution_j = w_j (x_j - mean_j)/scale_j.
// base + sum(contributions) equals Predict(x).
func (m *Linear) Explain(x []float64) (base float64, contrib []float64) {
	contrib = make([]float64, len(m.Coef))
	for j, w := range m.Coef {
		contrib[j] = w * (x[j] - m.Means[j]) / m.Scales[j]
	}
	return m.Intercept, contrib
}
