// Package hparams declares the built-in trainers' hyperparameters once: the gbdt parameter
// set, its defaults, and one table that drives spec parsing, validation and the settings an
// artifact records. It is a leaf (no Driftline imports), so a spec can be validated in
// workflow code without linking the trainers.
package hparams
