// Package training fits the built-in trainers (ridge, logistic, gbdt) on a window's training
// rows, streamed from a dataset.Source, and prepares what they need from the window's first
// pass (the reference profile and, for gbdt, the bins) so training reads its days once.
//
// It is pure domain code: it imports dataset, drift, model and spec, never Temporal, HTTP or
// object storage; activities load the inputs, call it, and store what it returns.
package training
