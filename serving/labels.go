package serving

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/predlog"
)

// Feedback labels and the label tokens that authorise them.

// randomID is an unguessable request id (128 random bits): a label token binds its label to
// it, and nobody should be able to name another client's request.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// labelToken is the answer's label token ("" without a label key).
func (s *Server) labelToken(model string, version int, requestID string, at time.Time) string {
	if len(s.opts.LabelKey) == 0 {
		return ""
	}
	return predlog.LabelToken(s.opts.LabelKey, model, version, requestID, at)
}

// FeedbackRequest carries ground-truth labels by request id, each with the label token its
// prediction came with.
type FeedbackRequest struct {
	RequestID  string      `json:"request_id"`
	Label      *float64    `json:"label"`
	LabelToken string      `json:"label_token"`
	Labels     []LabelItem `json:"labels"`
}

// LabelItem is one label of a batch.
type LabelItem struct {
	RequestID  string  `json:"request_id"`
	Label      float64 `json:"label"`
	LabelToken string  `json:"label_token"`
}

// feedback takes labels whose token verifies; a request with any refused label is refused as
// a whole (400 malformed, 403 altered or expired, 409 duplicate), the reason counted.
func (s *Server) feedback(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, ok := s.watchers[name]; !ok {
		httpError(w, http.StatusNotFound, "unknown model %q", name)
		return
	}
	if len(s.opts.LabelKey) == 0 {
		httpError(w, http.StatusServiceUnavailable, "feedback is off: serving runs without a label key (--label-key-file)")
		return
	}
	var req FeedbackRequest
	if code, err := decodeStrict(w, r, &req); err != nil {
		httpError(w, code, "%v", err)
		return
	}
	items := req.Labels
	if req.RequestID != "" || req.Label != nil {
		if req.RequestID == "" || req.Label == nil {
			httpError(w, http.StatusBadRequest, "request_id and label go together")
			return
		}
		items = append(items, LabelItem{RequestID: req.RequestID, Label: *req.Label, LabelToken: req.LabelToken})
	}
	if len(items) == 0 {
		httpError(w, http.StatusBadRequest, "no labels: give request_id, label and label_token, or labels")
		return
	}
	now := time.Now()
	bounds := s.watchers[name].current.Load().labels
	for i, it := range items {
		if it.RequestID == "" {
			httpError(w, http.StatusBadRequest, "labels[%d].request_id: required", i)
			return
		}
		if err := bounds.check(it.Label); err != nil {
			s.metrics.LabelsRefused.WithLabelValues(name, predlog.RefusedOutOfRange).Inc()
			httpError(w, http.StatusUnprocessableEntity, "labels[%d] (request %s): %v", i, it.RequestID, err)
			return
		}
		_, err := predlog.VerifyLabelToken(s.opts.LabelKey, it.LabelToken, name, it.RequestID, now, s.opts.LabelTTL)
		if err == nil && !s.seen.add(it.LabelToken, now) {
			err = &predlog.ErrLabelToken{Reason: predlog.RefusedDuplicate, Msg: "this label was sent already"}
		}
		if err == nil {
			// Shared by every replica and kept across restarts: one marker per answer in the
			// bucket, created once.
			created, serr := objstore.CreateOnce(r.Context(), s.opts.Store, seenKey(name, it.RequestID), nil, "")
			switch {
			case serr != nil:
				httpError(w, http.StatusServiceUnavailable, "labels[%d] (request %s): the duplicate check is unavailable (%v): send it again", i, it.RequestID, serr)
				return
			case !created:
				err = &predlog.ErrLabelToken{Reason: predlog.RefusedDuplicate, Msg: "this answer was labelled already"}
			}
		}
		if err != nil {
			var lt *predlog.ErrLabelToken
			errors.As(err, &lt)
			s.metrics.LabelsRefused.WithLabelValues(name, lt.Reason).Inc()
			code := http.StatusForbidden
			switch lt.Reason {
			case predlog.RefusedMissing, predlog.RefusedMalformed:
				code = http.StatusBadRequest
			case predlog.RefusedDuplicate:
				code = http.StatusConflict
			}
			httpError(w, code, "labels[%d] (request %s): %v", i, it.RequestID, err)
			return
		}
	}
	for _, it := range items {
		s.labels.Add(predlog.Label{RequestID: it.RequestID, TimeUnixMs: now.UnixMilli(), Model: name, Label: it.Label, Token: it.LabelToken})
	}
	s.metrics.LabelsAccepted.WithLabelValues(name).Add(float64(len(items)))
	writeJSON(w, http.StatusAccepted, map[string]any{"accepted": len(items)})
}

// seenTokens remembers the label tokens taken in the last ttl, so a label is taken once (per
// replica: the canary also keeps one label per request id).
type seenTokens struct {
	mu   sync.Mutex
	ttl  time.Duration
	seen map[string]time.Time
	next time.Time
}

func newSeenTokens(ttl time.Duration) *seenTokens {
	return &seenTokens{ttl: ttl, seen: map[string]time.Time{}}
}

// add records a token; false when it was seen already.
func (t *seenTokens) add(token string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.After(t.next) { // forget expired tokens now and then
		for k, at := range t.seen {
			if now.Sub(at) > t.ttl {
				delete(t.seen, k)
			}
		}
		t.next = now.Add(time.Minute)
	}
	if _, ok := t.seen[token]; ok {
		return false
	}
	if len(t.seen) >= maxSeenTokens { // bounded: forget some (the canary keeps one label per answer anyway)
		n := 0
		for k := range t.seen {
			delete(t.seen, k)
			if n++; n >= maxSeenTokens/10 {
				break
			}
		}
	}
	t.seen[token] = now
	return true
}

// maxSeenTokens bounds a replica's set of label tokens taken (about 100 MB at most).
const maxSeenTokens = 1 << 20

// seenKey is the marker of a labelled answer: feedback/_seen/<model>/<digest of the request
// id>. A label is taken at most LabelTTL after its answer, so a bucket lifecycle rule that
// expires the prefix's objects after LabelTTL (7 days) bounds the set without letting a
// duplicate through.
func seenKey(model, requestID string) string {
	sum := sha256.Sum256([]byte(requestID))
	return fmt.Sprintf("feedback/_seen/%s/%s", model, hex.EncodeToString(sum[:16]))
}
