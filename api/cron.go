package api

import (
	"fmt"
	"time"

	"github.com/robfig/cron"
)

// CheckCron refuses a schedule whose firings can come closer together than min: every gap
// between the next firings over a year is checked (cron expressions repeat within one).
func CheckCron(expr string, min time.Duration) error {
	if expr == "" {
		return fmt.Errorf("cron is required")
	}
	sched, err := cron.ParseStandard(expr)
	if err != nil {
		return fmt.Errorf("cron %q: %v", expr, err)
	}
	t := sched.Next(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	end := t.AddDate(1, 0, 0)
	for i := 0; i < 10000 && t.Before(end); i++ {
		next := sched.Next(t)
		if next.IsZero() {
			return nil
		}
		if gap := next.Sub(t); gap < min {
			return fmt.Errorf("cron %q fires %s apart (at %s and %s); the shortest interval allowed is %s",
				expr, gap, t.Format(time.RFC3339), next.Format(time.RFC3339), min)
		}
		t = next
	}
	return nil
}
