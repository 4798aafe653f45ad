package worker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/driftline/driftline/internal/stack"
)

// The backlog a worker kind scales on is read from Temporal: workflows started on a queue no
// worker polls are counted as its workflow tasks waiting, with the age of the oldest; a queue
// with nothing waiting reads zero.
func TestTheBacklogOfEachQueueIsExported(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.Dial(client.Options{HostPort: stack.StartTemporal(t)})
	require.NoError(t, err)
	defer c.Close()
	for i := range 3 {
		_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("waiting-%d", i), TaskQueue: "nobody-polls"}, "Nothing")
		require.NoError(t, err)
	}
	q := newQueueStats(c.WorkflowService(), "", []string{"nobody-polls", "empty-queue"})
	q.refresh = 0
	reg := prometheus.NewRegistry()
	reg.MustRegister(q)
	require.Eventually(t, func() bool {
		n, err := testutil.GatherAndCount(reg, "driftline_pipeline_task_queue_backlog")
		return err == nil && n == 4 && gaugeValue(t, reg, "driftline_pipeline_task_queue_backlog", "nobody-polls", "workflow") == 3
	}, time.Minute, 500*time.Millisecond, "three workflow tasks waiting on the queue nobody polls")
	require.Zero(t, gaugeValue(t, reg, "driftline_pipeline_task_queue_backlog", "empty-queue", "workflow"))
	require.Zero(t, gaugeValue(t, reg, "driftline_pipeline_task_queue_backlog", "nobody-polls", "activity"))
	require.Positive(t, gaugeValue(t, reg, "driftline_pipeline_task_queue_backlog_age_seconds", "nobody-polls", "workflow"))
}

// gaugeValue is the gauge name{task_queue, type} gathered from reg (-1: not there).
func gaugeValue(t *testing.T, reg *prometheus.Registry, name, queue, typ string) float64 {
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["task_queue"] == queue && labels["type"] == typ {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}
