package traffic

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/driftline/driftline/dataset"
)

// Request is the body sent to POST /v1/models/{model}:predict.
type Request struct {
	RequestID  string             `json:"request_id,omitempty"`
	RoutingKey string             `json:"routing_key"`
	Features   map[string]float64 `json:"features"`
	Explain    bool               `json:"explain,omitempty"`
	Attributes map[string]string  `json:"attributes,omitempty"`
	// Label is the ground truth this client learns later (not sent with the request).
	Label float64 `json:"-"`
}

// FromRetail builds the request an online client sends for a row: it knows price, promo,
// weekday, temperature and item popularity, but not the competitor price, which only the
// offline dataset has.
func FromRetail(r dataset.RetailRow) Request {
	return Request{RoutingKey: fmt.Sprintf("store-%d/item-%d", r.StoreID, r.ItemID), Features: map[string]float64{
		"price": r.Price, "promo": float64(r.Promo), "weekday": float64(r.Weekday),
		"temperature": r.Temperature, "item_popularity": r.ItemPopularity,
	}, Attributes: map[string]string{"region": r.Region}, Label: r.UnitsSold}
}

// Response is what serving answers.
type Response struct {
	RequestID  string  `json:"request_id"` // the server's: labels name it
	Model      string  `json:"model"`
	Version    int     `json:"version"`
	Route      string  `json:"route"`
	Prediction float64 `json:"prediction"`
	Fallback   string  `json:"fallback"`
	Error      string  `json:"error"`
	LabelToken string  `json:"label_token"`
}

// Stats counts what a run of the generator saw.
type Stats struct {
	mu        sync.Mutex
	Sent      int
	Failed    int
	ByVersion map[int]int
	Fallbacks int
}

func (s *Stats) add(r Response, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Sent++
	if err != nil {
		s.Failed++
		return
	}
	if s.ByVersion == nil {
		s.ByVersion = map[int]int{}
	}
	s.ByVersion[r.Version]++
	if r.Fallback != "" {
		s.Fallbacks++
	}
}

// Snapshot copies the counters.
func (s *Stats) Snapshot() (sent, failed, fallbacks int, byVersion map[int]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	byVersion = map[int]int{}
	for k, v := range s.ByVersion {
		byVersion[k] = v
	}
	return s.Sent, s.Failed, s.Fallbacks, byVersion
}

// Predict sends one request.
func Predict(ctx context.Context, hc *http.Client, baseURL, model string, req Request) (Response, error) {
	body, _ := json.Marshal(req)
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("%s/v1/models/%s:predict", baseURL, model), bytes.NewReader(body))
	if err != nil {
		return Response{}, err
	}
	hr.Header.Set("Content-Type", "application/json")
	if req.RequestID != "" {
		// A prediction with its id is safe to send again: net/http then replays it when a
		// kept-alive connection turns out dead (a replica gone) before any answer arrived.
		hr.Header.Set("Idempotency-Key", req.RequestID)
	}
	resp, err := hc.Do(hr)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	var out Response
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return out, fmt.Errorf("decode response (HTTP %d): %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("HTTP %d: %s", resp.StatusCode, out.Error)
	}
	return out, nil
}

// Feedback sends the ground-truth label of an answered request, with the label token the
// answer came with.
func Feedback(ctx context.Context, hc *http.Client, baseURL, model, requestID, labelToken string, label float64) error {
	body, _ := json.Marshal(map[string]any{"request_id": requestID, "label": label, "label_token": labelToken})
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("%s/v1/models/%s/feedback", baseURL, model), bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(hr)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("feedback: HTTP %d", resp.StatusCode)
	}
	return nil
}

// Run sends requests cycling over rows at about rps per second until ctx is done, and posts
// each answered request's true units sold as feedback, as a store system would. Eight
// clients share the ticks, so a slow answer does not lower the rate.
func Run(ctx context.Context, baseURL, model string, rows []dataset.RetailRow, rps int, st *Stats) {
	hc := &http.Client{Timeout: 5 * time.Second}
	run := time.Now().UnixNano()
	ticks := Ticks(ctx, rps)
	var wg sync.WaitGroup
	defer wg.Wait()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ticks {
				req := FromRetail(rows[i%len(rows)])
				req.RequestID = fmt.Sprintf("t%x-%d", run, i)
				r, err := Predict(ctx, hc, baseURL, model, req)
				if ctx.Err() != nil {
					return
				}
				st.add(r, err)
				if err == nil {
					_ = Feedback(ctx, hc, baseURL, model, r.RequestID, r.LabelToken, req.Label)
				}
			}
		}()
	}
}

// Ticks numbers the requests to send at about rps per second (0, 1, 2, ...) until ctx is
// done, then closes. A tick no client is ready for (the buffer of 64 full) is skipped, so a
// slow server lowers the rate rather than piling requests up.
func Ticks(ctx context.Context, rps int) <-chan int {
	out := make(chan int, 64)
	go func() {
		defer close(out)
		t := time.NewTicker(time.Second / time.Duration(max(rps, 1)))
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			select {
			case out <- i:
			default:
			}
		}
	}()
	return out
}
