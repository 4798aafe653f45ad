// Package keys owns where Driftline's objects are in the bucket (docs/architecture.md, Storage
// layout): the reports of runs and of the monitor, and the prefixes of a model's registry
// objects, predictions and labels. Every other package asks it rather than spelling a key.
package keys

import (
	"fmt"
	"time"
)

// Models is the prefix of every model's registry objects.
const Models = "models/"

// Model is the prefix of one model's registry objects (specs, versions, deployment).
func Model(model string) string { return Models + model + "/" }

// Version is the directory of one registered version.
func Version(model string, n int) string { return fmt.Sprintf("%sversions/%d/", Model(model), n) }

// Records is the directory of one kind of a version's records (decisions, approvals, serving,
// cost).
func Records(model string, n int, kind string) string { return Version(model, n) + kind + "/" }

// ModelReports is the prefix of every report of a model: its runs' and its monitor's.
func ModelReports(model string) string { return "reports/" + model + "/" }

// RunReports is the prefix of one run's reports.
func RunReports(model, run string) string { return ModelReports(model) + run + "/" }

// Report is one report of a run: validation.json, drift.json, evaluation.json, policy.json,
// outcome.json, ...
func Report(model, run, name string) string { return RunReports(model, run) + name }

// Checkpoints is the prefix of the checkpoints of a run's step (train, pass, ...).
func Checkpoints(model, run, step string) string {
	return RunReports(model, run) + "checkpoints/" + step + "-"
}

// MonitorWindows is the prefix of a model's monitoring windows (and its reviews).
func MonitorWindows(model string) string { return ModelReports(model) + "monitor/" }

// WindowLayout is the time format of a window's name.
const WindowLayout = "20060102T150405Z"

// MonitorWindow is the report of the monitoring window that ended at until.
func MonitorWindow(model string, until time.Time) string {
	return MonitorWindows(model) + until.UTC().Format(WindowLayout) + ".json"
}

// Review is a fairness review of the monitor.
func Review(model, id string) string { return MonitorWindows(model) + "reviews/" + id + ".json" }

// Predictions and Feedback are the prefixes of a model's prediction log and labels.
func Predictions(model string) string { return "predictions/" + model + "/" }

// Feedback: see Predictions.
func Feedback(model string) string { return "feedback/" + model + "/" }
