// Package drift builds reference profiles of training data and compares a current window
// against them feature by feature: Kolmogorov-Smirnov, PSI, Wasserstein-1 for numeric
// features; chi-squared, PSI and Jensen-Shannon for categorical ones; multiple-testing
// correction across features and effect-size thresholds for the decision.
//
// It imports nothing of Driftline (a leaf): pure statistics, tested against scipy.
package drift
