package worker

import (
	"context"
	"log/slog"
	"syscall"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"

	"github.com/driftline/driftline/activities"
	"github.com/driftline/driftline/objstore"
)

// stepTimer observes every activity execution's duration by activity type and result.
// With a store, it also keeps each step attempt's accounting of a run (ct/<model>) at
// activities.CostKey, which the run's outcome adds up (activities.RunCost).
type stepTimer struct {
	interceptor.WorkerInterceptorBase
	metrics *activities.Metrics
	store   objstore.Bucket
}

func (s *stepTimer) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &stepTimerInbound{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, metrics: s.metrics, store: s.store}
}

type stepTimerInbound struct {
	interceptor.ActivityInboundInterceptorBase
	metrics *activities.Metrics
	store   objstore.Bucket
}

// ExecuteActivity times the activity and, when it has a heartbeat timeout, heartbeats for it
// at a third of that timeout while it runs: a worker that dies is noticed within the timeout
// (30 s), not the step's start-to-close, whatever phase the activity is in (the boosting
// rounds of a training, an S3 write) and whether or not it heartbeats itself. It repeats the
// activity's latest heartbeat details (its checkpoint), which an empty heartbeat would clear.
func (s *stepTimerInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	start := time.Now()
	// First attempts only: a retry's ScheduledTime is its first attempt's, so its wait would
	// include the earlier attempts and the backoff.
	if i := activity.GetInfo(ctx); i.Attempt == 1 && !i.ScheduledTime.IsZero() && !i.StartedTime.IsZero() {
		s.metrics.ScheduleToStart.WithLabelValues(i.TaskQueue, i.ActivityType.Name).Observe(max(0, i.StartedTime.Sub(i.ScheduledTime).Seconds()))
	}
	ctx, latest := activities.TrackProgress(ctx)
	if hb := activity.GetInfo(ctx).HeartbeatTimeout; hb > 0 {
		done := make(chan struct{})
		defer close(done)
		go func() {
			t := time.NewTicker(max(hb/3, time.Second))
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-ctx.Done():
					return
				case <-t.C:
					activity.RecordHeartbeat(ctx, latest()...) // the latest details, not none
				}
			}
		}()
	}
	cpu0 := processCPU()
	out, err := s.Next.ExecuteActivity(ctx, in)
	result := "ok"
	if err != nil {
		result = "error"
	}
	info := activity.GetInfo(ctx)
	step := info.ActivityType.Name
	wall, cpu := time.Since(start).Seconds(), max(0, processCPU()-cpu0)
	s.metrics.StepDuration.WithLabelValues(step, result).Observe(wall)
	s.metrics.StepCPU.WithLabelValues(step).Add(cpu)
	if model := activities.ModelOfRun(info.WorkflowExecution.ID); s.store != nil && model != "" {
		s.keepCost(model, info, activities.StepCost{Step: step, ActivityID: info.ActivityID, Attempt: info.Attempt, Result: result,
			CPUSeconds: cpu, WallSeconds: wall})
	}
	return out, err
}

// keepCost stores a step attempt's accounting; it never fails the step (a lost record makes
// the run's cost read low, logged).
func (s *stepTimerInbound) keepCost(model string, info activity.Info, c activities.StepCost) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := activities.CostKey(model, info.WorkflowExecution.RunID, info.ActivityID, info.Attempt)
	if err := objstore.PutJSON(ctx, s.store, key, c); err != nil {
		slog.Warn("cost accounting of a step not kept", "key", key, "err", err)
	}
}

// processCPU is the process's user + system CPU time, seconds.
func processCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}
