package worker

import (
	"context"
	"syscall"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"

	"github.com/driftline/driftline/activities"
)

// stepTimer observes every activity execution's duration by activity type and result.
type stepTimer struct {
	interceptor.WorkerInterceptorBase
	metrics *activities.Metrics
}

func (s *stepTimer) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &stepTimerInbound{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, metrics: s.metrics}
}

type stepTimerInbound struct {
	interceptor.ActivityInboundInterceptorBase
	metrics *activities.Metrics
}

// ExecuteActivity times the activity and, when it has a heartbeat timeout, heartbeats for it
// at a third of that timeout while it runs: a worker that dies is noticed within the timeout
// (30 s), not the step's start-to-close, whatever phase the activity is in (the boosting
// rounds of a training, an S3 write) and whether or not it heartbeats itself. It repeats the
// activity's latest heartbeat details (its checkpoint), which an empty heartbeat would clear.
func (s *stepTimerInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	start := time.Now()
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
	step := activity.GetInfo(ctx).ActivityType.Name
	s.metrics.StepDuration.WithLabelValues(step, result).Observe(time.Since(start).Seconds())
	s.metrics.StepCPU.WithLabelValues(step).Add(max(0, processCPU()-cpu0))
	return out, err
}

// processCPU is the process's user + system CPU time, seconds.
func processCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}
