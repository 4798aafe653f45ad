package api

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/driftline/driftline/audit"
)

// MaxRefusalKeys bounds the distinct (source, action, reason) counts one minute keeps; the
// rest are counted together under source "other".
const MaxRefusalKeys = 1000

// refusals aggregates the refused calls of callers with no verified identity: one audit record
// per minute with the counts per source, action and reason, instead of a record (and a chain
// append, and a chain for every model name tried) per call. Anonymous callers can send as many
// calls as they like; what they cost the audit trail is bounded by the minute.
type refusals struct {
	mu     sync.Mutex
	log    audit.Log
	minute time.Time
	counts map[refusalKey]int
	now    func() time.Time
}

type refusalKey struct{ Source, Action, Reason string }

// RefusalCount is one line of an aggregated record.
type RefusalCount struct {
	Source string `json:"source"`
	Action string `json:"action"`
	Reason string `json:"reason"`
	Count  int    `json:"count"`
}

// add counts one refusal; a new minute first flushes the last one's counts.
func (r *refusals) add(remote, action, reason string) {
	source := remote
	if host, _, err := net.SplitHostPort(remote); err == nil {
		source = host
	}
	now := r.now().UTC()
	r.mu.Lock()
	var flush map[refusalKey]int
	var minute time.Time
	if m := now.Truncate(time.Minute); !m.Equal(r.minute) {
		flush, minute = r.counts, r.minute
		r.minute, r.counts = m, map[refusalKey]int{}
	}
	k := refusalKey{source, action, reason}
	if _, ok := r.counts[k]; !ok && len(r.counts) >= MaxRefusalKeys {
		k.Source = "other"
	}
	r.counts[k]++
	r.mu.Unlock()
	if len(flush) > 0 {
		go r.write(context.Background(), minute, flush)
	}
}

// Flush writes the current minute's counts now (at shutdown, or for a test).
func (r *refusals) Flush(ctx context.Context) error {
	r.mu.Lock()
	counts, minute := r.counts, r.minute
	r.counts = map[refusalKey]int{}
	r.mu.Unlock()
	if len(counts) == 0 {
		return nil
	}
	return r.write(ctx, minute, counts)
}

// write appends the minute's record; records of the same minute from two flushes add up.
func (r *refusals) write(ctx context.Context, minute time.Time, counts map[refusalKey]int) error {
	lines := make([]RefusalCount, 0, len(counts))
	total := 0
	for k, n := range counts {
		lines = append(lines, RefusalCount{Source: k.Source, Action: k.Action, Reason: k.Reason, Count: n})
		total += n
	}
	sort.Slice(lines, func(i, j int) bool {
		a, b := lines[i], lines[j]
		return a.Source+a.Action+a.Reason < b.Source+b.Action+b.Reason
	})
	// Each flush is its own record (two flushes of one minute add up): the key names the flush.
	_, err := r.log.Append(ctx, fmt.Sprintf("api/refused-anonymous/%s/%d/%d", minute.Format(time.RFC3339), total, time.Now().UnixNano()), audit.Record{
		Actor: "anonymous", Action: "refused_anonymous", Decision: "refused",
		Reason:  fmt.Sprintf("%d calls without a verified identity refused in the minute from %s", total, minute.Format(time.RFC3339)),
		Details: map[string]any{"minute": minute, "total": total, "counts": lines}})
	if err != nil {
		slog.Error("audit: the minute's anonymous refusals", "minute", minute, "total", total, "err", err)
	}
	return err
}
