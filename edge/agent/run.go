package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Agent is a device's agent: its installed bundle, its source, its log and where the log and
// its status go.
type Agent struct {
	Store     *Store
	Fetcher   *Fetcher
	Log       *Log
	ReportURL string // empty: the log stays on disk
	// StatusURL receives the agent's Status after every poll (PUT, JSON; empty: none).
	StatusURL string
	Listen    string
	Poll      time.Duration
	// FlushEvery closes the log's open segment for upload once its first record is this old
	// (default: Poll); full segments leave at once.
	FlushEvery time.Duration
	// ReferenceURL serves the sketch reference of a version (the fleet's .../reference; empty:
	// no sketches). SketchEvery closes a sketch of fewer than SketchRows predictions once it
	// is this old (default 1 hour).
	ReferenceURL string
	SketchEvery  time.Duration
	// Ready, when set, is called once the local port listens.
	Ready func()

	counts  State
	mu      sync.Mutex
	lastErr string
}

// Status is what the agent reports about itself: the installed bundle, what it answered,
// what its log could not keep or has not uploaded yet, and its last failure.
type Status struct {
	Version     int    `json:"version"`
	Counter     uint64 `json:"counter"`
	Predictions uint64 `json:"predictions"`
	Labels      uint64 `json:"labels"`
	Dropped     uint64 `json:"dropped"`
	Backlog     int    `json:"backlog"`
	LastError   string `json:"last_error,omitempty"`
}

// Run serves the local port, follows the source and uploads the log after every poll, until
// ctx is done; then it closes the log's open segment, so nothing logged is lost.
func (a *Agent) Run(ctx context.Context) error {
	a.counts.inputsStay = a.Fetcher.SketchesOnly
	srv := &http.Server{Addr: a.Listen, Handler: Handler(a.Store, a.Log, &a.counts), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	go Follow(ctx, a.Fetcher, a.Store, a.Poll, a.afterPoll(ctx))
	if a.Ready != nil {
		a.Ready()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(srv.Shutdown(sctx), a.Log.Flush())
}

func (a *Agent) afterPoll(ctx context.Context) func(bool, error) {
	return func(installed bool, err error) {
		a.mu.Lock()
		a.lastErr = "" // this poll's failures only
		a.mu.Unlock()
		switch {
		case err != nil:
			a.failed(err)
			slog.Warn("bundle not installed; the installed one keeps serving", "err", err)
		case installed:
			m := a.Store.Model().Manifest
			slog.Info("bundle installed", "model", m.Model, "version", m.Version, "counter", m.Counter)
		}
		flush := a.FlushEvery
		if flush <= 0 {
			flush = a.Poll
		}
		if err := a.Log.FlushOlder(flush); err != nil {
			a.failed(err)
			slog.Warn("edge log", "err", err)
		}
		if a.ReportURL != "" {
			if _, err := a.Log.Upload(ctx, a.ReportURL, a.Fetcher.Token, nil); err != nil {
				a.failed(err)
				slog.Warn("edge log not uploaded; kept for the next try", "err", err)
			}
		}
		a.sketch(ctx)
		if a.StatusURL != "" {
			if err := a.report(ctx); err != nil {
				slog.Warn("status not reported", "err", err)
			}
		}
	}
}

// sketch keeps the installed version's sketcher (fetching its reference when the version
// changed) and puts a finished sketch in the log.
func (a *Agent) sketch(ctx context.Context) {
	m := a.Store.Model()
	if a.ReferenceURL == "" || m == nil {
		return
	}
	sk := a.counts.Sketcher.Load()
	if sk != nil {
		every := a.SketchEvery
		if every <= 0 {
			every = time.Hour
		}
		if s := sk.Take(every); s != nil {
			rec := Record{Time: s.To, Kind: "sketch", ID: fmt.Sprintf("sketch-%d", s.To.UnixNano()), Version: s.Version, Sketch: s}
			if err := a.Log.Append(rec); err != nil {
				a.failed(err)
			}
		}
	}
	if sk == nil || sk.Version() != m.Manifest.Version {
		ref, err := FetchReference(ctx, a.ReferenceURL, a.Fetcher.Token, m.Manifest.Version)
		if err != nil {
			a.failed(err)
			return
		}
		a.counts.Sketcher.Store(NewSketcher(ref, m.Manifest.Features))
	}
}

func (a *Agent) failed(err error) {
	a.mu.Lock()
	if a.lastErr != "" {
		a.lastErr += "; "
	}
	a.lastErr += err.Error()
	a.mu.Unlock()
}

// Status is the agent's status now.
func (a *Agent) Status() Status {
	st := Status{Predictions: a.counts.Predictions.Load(), Labels: a.counts.Labels.Load(), Dropped: a.Log.Dropped()}
	if m := a.Store.Model(); m != nil {
		st.Version, st.Counter = m.Manifest.Version, m.Manifest.Counter
	}
	if segs, err := a.Log.segments(); err == nil {
		st.Backlog = len(segs)
	}
	a.mu.Lock()
	st.LastError = a.lastErr
	a.mu.Unlock()
	return st
}

func (a *Agent) report(ctx context.Context) error {
	body, err := json.Marshal(a.Status())
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, a.StatusURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if a.Fetcher.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.Fetcher.Token)
	}
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("status report: %s: %s", resp.Status, msg)
	}
	return nil
}
