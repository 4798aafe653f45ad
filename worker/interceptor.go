package worker

import (
	"context"
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

func (s *stepTimerInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	start := time.Now()
	out, err := s.Next.ExecuteActivity(ctx, in)
	result := "ok"
	if err != nil {
		result = "error"
	}
	s.metrics.StepDuration.WithLabelValues(activity.GetInfo(ctx).ActivityType.Name, result).Observe(time.Since(start).Seconds())
	return out, err
}
