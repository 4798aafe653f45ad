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

// RidgeAccumulator gathers what ridge regression needs from streamed rows in O(p^2)
// memory: the means and the co-moment matrix of the features and the target, updated one row
// at a time (Welford), which stays accurate where raw sums of squares would cancel.
type RidgeAccumulator struct {
	p    int
	n    int64
	mean []float64 // p features, then the target
	c    []float64 // (p+1) x (p+1) co-moments
	d    []float64
}

// NewRidgeAccumulator prepares an accumulator for p features.
func NewRidgeAccumulator(p int) *RidgeAccumulator {
	q := p + 1
	return &RidgeAccumulator{p: p, mean: make([]float64, q), c: make([]float64, q*q), d: make([]float64, q)}
}

// Rows is the number of rows added.
func (a *RidgeAccumulator) Rows() int64 { return a.n }

// Add adds one row: features in order, then the target.
func (a *RidgeAccumulator) Add(x []float64, y float64) {
	q := a.p + 1
	a.n++
	n := float64(a.n)
	for j := 0; j < a.p; j++ {
		a.d[j] = x[j] - a.mean[j]
		a.mean[j] += a.d[j] / n
	}
	a.d[a.p] = y - a.mean[a.p]
	a.mean[a.p] += a.d[a.p] / n
	// C += d_old (x) (v - mean_new) = d_old d_old (n-1)/n
	f := (n - 1) / n
	for j := 0; j < q; j++ {
		dj := a.d[j] * f
		row := a.c[j*q : j*q+q]
		for k := 0; k <= j; k++ {
			row[k] += dj * a.d[k]
		}
	}
}

// Fit solves ridge regression with an unpenalised intercept on standardised features.
func (a *RidgeAccumulator) Fit(alpha float64) (*Linear, error) {
	p, q := a.p, a.p+1
	if p == 0 {
		return nil, errors.New("ridge: no features")
	}
	if a.n < 2 {
		return nil, fmt.Errorf("ridge: need at least 2 rows, got %d", a.n)
	}
	n := float64(a.n)
	m := &Linear{Intercept: a.mean[p], Coef: make([]float64, p), Means: make([]float64, p), Scales: make([]float64, p)}
	var constant []int
	for j := 0; j < p; j++ {
		m.Means[j] = a.mean[j]
		m.Scales[j] = math.Sqrt(a.c[j*q+j] / n)
		if m.Scales[j] == 0 {
			m.Scales[j] = 1 // a constant feature: its z is 0 everywhere, so its weight is 0
			constant = append(constant, j)
		}
	}
	// Normal equations on standardised data: (Z'Z + alpha I) w = Z'(y - ymean).
	A := make([]float64, p*p)
	b := make([]float64, p)
	for j := 0; j < p; j++ {
		for k := 0; k <= j; k++ {
			v := a.c[j*q+k] / (m.Scales[j] * m.Scales[k])
			A[j*p+k], A[k*p+j] = v, v
		}
		b[j] = a.c[p*q+j] / m.Scales[j]
		A[j*p+j] += alpha
	}
	for _, j := range constant {
		A[j*p+j] += 1 // keeps the system solvable with alpha = 0; the weight stays 0
	}
	w, err := choleskySolve(A, b, p)
	if err != nil {
		return nil, fmt.Errorf("ridge: %w (try alpha > 0)", err)
	}
	m.Coef = w
	return m, nil
}

// TrainRidge fits ridge regression on in-memory columns (column-major, one slice per feature).
func TrainRidge(cols [][]float64, y []float64, alpha float64) (*Linear, error) {
	acc := NewRidgeAccumulator(len(cols))
	x := make([]float64, len(cols))
	for j, c := range cols {
		if len(c) != len(y) {
			return nil, fmt.Errorf("ridge: feature %d has %d rows, target has %d", j, len(c), len(y))
		}
	}
	for i := range y {
		for j := range cols {
			x[j] = cols[j][i]
		}
		acc.Add(x, y[i])
	}
	return acc.Fit(alpha)
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

// Margin is the linear score of a row (the log-odds for logistic regression).
func (m *Linear) Margin(x []float64) float64 { return m.Predict(x) }

// ExpectedMargin is the explanations' base value: the score of the mean row.
func (m *Linear) ExpectedMargin() float64 { return m.Intercept }

// Predict scores one row given in feature order (no link function).
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

// TrainingRMSE is the root mean squared error of a fitted model on the accumulated rows,
// computed from the co-moments without another pass over the data.
func (a *RidgeAccumulator) TrainingRMSE(m *Linear) float64 {
	p, q := a.p, a.p+1
	n := float64(a.n)
	at := func(j, k int) float64 {
		if k > j {
			j, k = k, j
		}
		return a.c[j*q+k]
	}
	// RSS = S_yy - 2 sum_j w_j S_zy_j + sum_jk w_j w_k S_zz_jk, on standardised features.
	rss := at(p, p)
	for j := 0; j < p; j++ {
		rss -= 2 * m.Coef[j] * at(p, j) / m.Scales[j]
		for k := 0; k < p; k++ {
			rss += m.Coef[j] * m.Coef[k] * at(j, k) / (m.Scales[j] * m.Scales[k])
		}
	}
	return math.Sqrt(math.Max(rss, 0) / n)
}
