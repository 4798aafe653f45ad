package agent

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// DataHeader, on a bundle's answer, says what the device may send back: DataSketchesOnly
// when the model's spec keeps data on the devices (no input values leave; drift sketches do).
const (
	DataHeader       = "X-Driftline-Data"
	DataSketchesOnly = "sketches-only"
)

// Fetcher asks a source (the control-plane API, or any HTTP server holding the fleet's bundle)
// for the bundle the device should run, with If-None-Match: an unchanged bundle costs a 304.
type Fetcher struct {
	URL    string
	Token  string // the device's bearer token, when the source wants one
	Client *http.Client
	// MaxBytes bounds a bundle's size (default 64 MiB).
	MaxBytes int64
	etag     string
	// sketchesOnly is the last answer's DataHeader (set on 200 and 304 alike).
	sketchesOnly atomic.Bool
}

// SketchesOnly says whether the source's last answer kept the inputs on the device.
func (f *Fetcher) SketchesOnly() bool { return f.sketchesOnly.Load() }

// Fetch returns a new bundle, or nil when the source says it is unchanged.
func (f *Fetcher) Fetch(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.URL, nil)
	if err != nil {
		return nil, err
	}
	if f.etag != "" {
		req.Header.Set("If-None-Match", f.etag)
	}
	if f.Token != "" {
		req.Header.Set("Authorization", "Bearer "+f.Token)
	}
	c := f.Client
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNotModified {
		f.sketchesOnly.Store(resp.Header.Get(DataHeader) == DataSketchesOnly)
	}
	switch resp.StatusCode {
	case http.StatusNotModified:
		return nil, nil
	case http.StatusOK:
	default:
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("bundle source %s: %s: %s", f.URL, resp.Status, msg)
	}
	limit := f.MaxBytes
	if limit <= 0 {
		limit = 64 << 20
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("bundle source %s: more than %d bytes", f.URL, limit)
	}
	f.etag = resp.Header.Get("ETag")
	return data, nil
}

// FleetURLs are a fleet's endpoints on the control-plane API, from the fleet's URL
// (https://<api>/v1/models/<model>/fleets/<fleet>): the bundle the device should run, where
// its log goes, where its status goes, where the sketch reference of a version is.
func FleetURLs(fleet string) (source, log, status, reference string) {
	fleet = strings.TrimSuffix(fleet, "/")
	return fleet + "/bundle", fleet + "/log", fleet + "/status", fleet + "/reference"
}

// Backoff is the wait after the n-th failure in a row (n >= 1): doubling from base up to
// max, with up to half of it random so a fleet that lost its network does not come back in
// step.
func Backoff(n int, base, maxWait time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < maxWait; i++ {
		d *= 2
	}
	d = min(d, maxWait)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// Follow fetches every interval (after failures, with Backoff) and installs what changed,
// until ctx is done. Each outcome is reported to report (nil error: installed or unchanged).
func Follow(ctx context.Context, f *Fetcher, s *Store, interval time.Duration, report func(installed bool, err error)) {
	failures := 0
	for {
		data, err := f.Fetch(ctx)
		installed := false
		if err == nil && data != nil {
			_, err = s.Install(data)
			installed = err == nil
			if err != nil {
				f.etag = "" // a refused bundle: ask for it whole next time
			}
		}
		if report != nil {
			report(installed, err)
		}
		wait := interval
		if err != nil {
			failures++
			wait = Backoff(failures, time.Second, max(interval, time.Minute))
		} else {
			failures = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
