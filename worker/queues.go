package worker

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
)

// queueStats exports the backlog of the task queues a worker polls, read from Temporal
// (DescribeTaskQueue with its statistics) when Prometheus scrapes, at most every refresh:
// the tasks waiting, the age of the oldest, the rate tasks are added. These are what a worker
// kind scales on (KEDA's Temporal scaler reads the same statistics).
type queueStats struct {
	svc       workflowservice.WorkflowServiceClient
	namespace string
	queues    []string
	refresh   time.Duration

	backlog, age, addRate *prometheus.Desc

	mu      sync.Mutex
	read    time.Time
	samples []prometheus.Metric
}

var queueTypes = []struct {
	typ   enumspb.TaskQueueType
	label string
}{{enumspb.TASK_QUEUE_TYPE_WORKFLOW, "workflow"}, {enumspb.TASK_QUEUE_TYPE_ACTIVITY, "activity"}}

func newQueueStats(svc workflowservice.WorkflowServiceClient, namespace string, queues []string) *queueStats {
	labels := []string{"task_queue", "type"}
	if namespace == "" {
		namespace = "default"
	}
	return &queueStats{svc: svc, namespace: namespace, queues: queues, refresh: 10 * time.Second,
		backlog: prometheus.NewDesc("driftline_pipeline_task_queue_backlog",
			"Approximate number of tasks waiting in a task queue for a worker, by queue and type (workflow, activity).", labels, nil),
		age: prometheus.NewDesc("driftline_pipeline_task_queue_backlog_age_seconds",
			"Approximate age of the oldest task waiting in a task queue, by queue and type.", labels, nil),
		addRate: prometheus.NewDesc("driftline_pipeline_task_queue_add_rate",
			"Approximate tasks added to a task queue per second, by queue and type.", labels, nil),
	}
}

func (q *queueStats) Describe(ch chan<- *prometheus.Desc) {
	ch <- q.backlog
	ch <- q.age
	ch <- q.addRate
}

func (q *queueStats) Collect(ch chan<- prometheus.Metric) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if time.Since(q.read) >= q.refresh {
		q.samples, q.read = q.describe(), time.Now()
	}
	for _, m := range q.samples {
		ch <- m
	}
}

// describe reads each queue's statistics for both task types; a queue Temporal does not
// answer for is left out of the scrape (logged), never reported as empty.
func (q *queueStats) describe() []prometheus.Metric {
	var out []prometheus.Metric
	for _, name := range q.queues {
		for _, t := range queueTypes {
			typ, label := t.typ, t.label
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			resp, err := q.svc.DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{Namespace: q.namespace,
				TaskQueue: &taskqueuepb.TaskQueue{Name: name, Kind: enumspb.TASK_QUEUE_KIND_NORMAL}, TaskQueueType: typ, ReportStats: true})
			cancel()
			if err != nil {
				slog.Warn("task queue statistics not read", "task_queue", name, "type", label, "err", err)
				continue
			}
			st := resp.GetStats()
			out = append(out,
				prometheus.MustNewConstMetric(q.backlog, prometheus.GaugeValue, float64(st.GetApproximateBacklogCount()), name, label),
				prometheus.MustNewConstMetric(q.age, prometheus.GaugeValue, st.GetApproximateBacklogAge().AsDuration().Seconds(), name, label),
				prometheus.MustNewConstMetric(q.addRate, prometheus.GaugeValue, float64(st.GetTasksAddRate()), name, label))
		}
	}
	return out
}
