package agent

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// Agent is a device's agent: its installed bundle, its source, its log and where the log goes.
type Agent struct {
	Store     *Store
	Fetcher   *Fetcher
	Log       *Log
	ReportURL string // empty: the log stays on disk
	Listen    string
	Poll      time.Duration
	// Ready, when set, is called once the local port listens.
	Ready func()
}

// Run serves the local port, follows the source and uploads the log after every poll, until
// ctx is done; then it closes the log's open segment, so nothing logged is lost.
func (a *Agent) Run(ctx context.Context) error {
	srv := &http.Server{Addr: a.Listen, Handler: Handler(a.Store, a.Log), ReadHeaderTimeout: 5 * time.Second}
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
		switch {
		case err != nil:
			slog.Warn("bundle not installed; the installed one keeps serving", "err", err)
		case installed:
			m := a.Store.Model().Manifest
			slog.Info("bundle installed", "model", m.Model, "version", m.Version, "counter", m.Counter)
		}
		if err := a.Log.Flush(); err != nil {
			slog.Warn("edge log", "err", err)
		}
		if a.ReportURL != "" {
			if _, err := a.Log.Upload(ctx, a.ReportURL, a.Fetcher.Token, nil); err != nil {
				slog.Warn("edge log not uploaded; kept for the next try", "err", err)
			}
		}
	}
}
