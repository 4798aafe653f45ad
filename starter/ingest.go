package starter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/spec"
)

// RunOnClosedDay is an ingest worker's trigger (trigger.on_new_partition, action run): when a
// day of the dataset closes, it starts the model's loop on the window ending that day
// (window_days of the spec), requested by ingest:<group>. A run already in progress is
// pipeline.ErrRunInProgress, which is ingest.ErrBusy (the worker counts it; the day does not
// trigger again).
func RunOnClosedDay(c client.Client, sp spec.Spec, group, dataset string) func(ctx context.Context, day string) error {
	return func(ctx context.Context, day string) error {
		d, err := time.Parse(time.DateOnly, day)
		if err != nil {
			return err
		}
		from := d.AddDate(0, 0, 1-sp.Dataset.WindowDays).Format(time.DateOnly)
		_, err = StartRun(ctx, c, pipeline.RunInput{Spec: sp, From: from, To: day, RequestedBy: "ingest:" + group,
			Reason: fmt.Sprintf("new partition datasets/%s/dt=%s closed", dataset, day)})
		return err
	}
}

// MonitorOnClosedDay is the trigger for action monitor: when a day of the dataset closes, the
// model's monitor is signalled (pipeline.SignalNewPartition) and runs its next window at once.
// A model without a running monitor is an error naming it (the worker counts it).
func MonitorOnClosedDay(c client.Client, model, group, dataset string) func(ctx context.Context, day string) error {
	return func(ctx context.Context, day string) error {
		err := c.SignalWorkflow(ctx, pipeline.MonitorWorkflowID(model), "", pipeline.SignalNewPartition,
			pipeline.NewPartition{Dataset: dataset, Day: day, By: group, At: time.Now().UTC()})
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return fmt.Errorf("model %s has no monitor running (%s): start it with driftline monitor start", model, pipeline.MonitorWorkflowID(model))
		}
		return err
	}
}
