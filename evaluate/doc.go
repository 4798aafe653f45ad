// Package evaluate scores a candidate and the production model (the champion) on the same
// holdout rows in one streaming pass: every metric overall and per segment, fairness
// (disparate impact by the protected attribute), the candidate's global feature importance,
// the reference distribution of its outputs, and its int8 variant with the accuracy it loses.
//
// Pure domain code over a dataset.Source and loaded models: no Temporal, HTTP or object
// storage; the Evaluate activity loads, calls Run and stores the results.
package evaluate
