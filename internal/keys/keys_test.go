package keys

import (
	"testing"
	"time"
)

// The layout docs/architecture.md describes: stored objects of earlier releases stay where
// they are, so these never change.
func TestTheStorageLayout(t *testing.T) {
	until := time.Date(2026, 12, 1, 10, 15, 0, 0, time.FixedZone("CET", 3600))
	for got, want := range map[string]string{
		Model("demand"):                      "models/demand/",
		Version("demand", 3):                 "models/demand/versions/3/",
		Records("demand", 3, "approvals"):    "models/demand/versions/3/approvals/",
		Report("demand", "r1", "drift.json"): "reports/demand/r1/drift.json",
		Checkpoints("demand", "r1", "train"): "reports/demand/r1/checkpoints/train-",
		MonitorWindow("demand", until):       "reports/demand/monitor/20261201T091500Z.json",
		Review("demand", "fairness-1"):       "reports/demand/monitor/reviews/fairness-1.json",
		Predictions("demand"):                "predictions/demand/",
		Feedback("demand"):                   "feedback/demand/",
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
}
