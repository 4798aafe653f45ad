package starter

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/driftline/driftline/ingest"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/spec"
)

// RunOnClosedDay is an ingest worker's trigger (trigger.on_new_partition, action run): when a
// day of the dataset closes, it starts the model's loop on the window ending that day
// (window_days of the spec), requested by ingest:<group>. A run already in progress is
// ingest.ErrBusy (the worker counts it; the day does not trigger again).
func RunOnClosedDay(c client.Client, sp spec.Spec, group, dataset string) func(ctx context.Context, day string) error {
	return func(ctx context.Context, day string) error {
		d, err := time.Parse(time.DateOnly, day)
		if err != nil {
			return err
		}
		from := d.AddDate(0, 0, 1-sp.Dataset.WindowDays).Format(time.DateOnly)
		_, err = StartRun(ctx, c, pipeline.RunInput{Spec: sp, From: from, To: day, RequestedBy: "ingest:" + group,
			Reason: fmt.Sprintf("new partition datasets/%s/dt=%s closed", dataset, day)})
		if err != nil && strings.Contains(err.Error(), "already has a run in progress") {
			return fmt.Errorf("%w: %v", ingest.ErrBusy, err)
		}
		return err
	}
}
