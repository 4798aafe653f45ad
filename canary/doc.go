// Package canary judges a canary step from live traffic: the candidate against production on
// error rate, p99 latency, fallback rate, live MAE from feedback labels and disparate impact,
// each a guardrail with its own minimum evidence. A guardrail that cannot be evaluated (a model
// failed to load, the evidence is missing) makes the step inconclusive, never a silent pass.
//
// Pure domain code over prediction-log records, labels and loaded models: no Temporal, HTTP or
// object storage (the EvaluateCanary activity reads the log and stores the evidence).
package canary
