package serving

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/registry"
)

// Pairing: while a canary runs, serving also scores the model that did not answer a request
// (production for the candidate's requests, the candidate for production's) and logs that
// answer under the route "paired", so the canary compares both models on the same labelled
// requests (canary.PairedErrors). It happens off the request path: the answer is sent first;
// a bounded queue and one worker do the second scoring, and when the queue is full the pair is
// dropped and counted (driftline_serving_paired_total{result="dropped"}), never the request.

// pairQueue bounds the requests waiting for their second scoring.
const pairQueue = 8192

type pairJob struct {
	model string
	l     *loaded
	rows  []map[string]float64 // the request's rows (after enrichment); not changed after Score
	id    string
	at    time.Time
	key   string
	attrs string
}

// pairedShare is the deployment's paired share; pointers written before pairing existed (0)
// pair every request.
func pairedShare(d registry.Deployment) float64 {
	if d.PairedShare <= 0 {
		return 1
	}
	return d.PairedShare
}

// inPairs reports whether a request is in the paired share: a stable hash of its id.
func inPairs(requestID string, share float64) bool {
	if share >= 1 {
		return true
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(requestID))
	return float64(h.Sum64()%10000) < share*10000
}

// pair queues the second scoring of a request, or drops it when the queue is full.
func (s *Server) pair(j pairJob) {
	select {
	case s.pairs <- j:
	default:
		s.metrics.Paired.WithLabelValues(j.model, "dropped").Inc()
	}
}

// pairWorker scores queued pairs until ctx is done or the server closes.
func (s *Server) pairWorker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.stopPairs:
			return
		case j := <-s.pairs:
			s.scorePair(j)
		}
	}
}

func (s *Server) scorePair(j pairJob) {
	start := time.Now()
	preds, _, err := scoreAll(j.l.model, j.rows, false)
	took := time.Since(start).Microseconds()
	result := "scored"
	if err != nil {
		result = "failed"
	}
	s.metrics.Paired.WithLabelValues(j.model, result).Inc()
	for i := range j.rows {
		id := j.id
		if len(j.rows) > 1 {
			id = fmt.Sprintf("%s/%d", j.id, i)
		}
		rec := predlog.Record{RequestID: id, TimeUnixMs: j.at.UnixMilli(), Model: j.model, Version: int32(j.l.version),
			Route: string(pipeline.RoutePaired), RoutingKey: j.key, LatencyUs: took, Attributes: j.attrs}
		if err != nil {
			rec.Error = err.Error()
		} else {
			rec.Prediction = preds[i]
		}
		s.log.Add(rec)
	}
}
