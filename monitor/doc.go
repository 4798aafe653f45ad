// Package monitor computes one monitoring window of a live model from its prediction log and
// feedback: requests, errors, fallbacks and latency against the SLO; input drift of the live
// requests against the production version's reference profile and prediction drift against its
// holdout predictions (the drift suite and decision of the loop); live MAE once labels arrive,
// with the label delay; disparate impact by the protected attribute with a bootstrap interval,
// and the error gap between groups. It is pure: the activity (activities.Monitoring) reads the
// log and stores the report; the workflow (workflows.Monitor) decides what to start.
//
// It imports the domain packages (drift, evaluate, predlog, spec) and must not import
// activities, workflows, Temporal or an S3 client.
package monitor
