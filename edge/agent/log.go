package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Record is one line of the device's log: a prediction it made, or a label for one.
type Record struct {
	Time       time.Time  `json:"time"`
	Kind       string     `json:"kind"` // prediction, label or sketch
	ID         string     `json:"id"`   // the host program's id of the prediction (a label names it)
	Version    int        `json:"version,omitempty"`
	Inputs     []*float64 `json:"inputs,omitempty"` // null: a missing value
	Prediction *float64   `json:"prediction,omitempty"`
	LatencyUs  int64      `json:"latency_us,omitempty"` // the runtime's time for the prediction
	// PairedVersion and PairedPrediction are the previous bundle's answer to the same request
	// (Store.Paired), for the fleet canary's comparison.
	PairedVersion    int      `json:"paired_version,omitempty"`
	PairedPrediction *float64 `json:"paired_prediction,omitempty"`
	Label            *float64 `json:"label,omitempty"`
	Sketch           *Sketch  `json:"sketch,omitempty"` // kind sketch: the inputs' drift sketch
}

// Log keeps the device's records on disk until they are uploaded: closed segments of up to
// SegmentRecords records, numbered, each uploaded whole under its number (the receiver keeps
// the first copy of a number, so a retry after a lost answer sends nothing twice) and deleted
// only once the receiver answered. It holds at most MaxSegments segments: beyond, new
// records are counted in Dropped and not kept (the bound a device's disk sets).
type Log struct {
	Dir            string
	SegmentRecords int // default 100 (a segment is one request to the API, 64 KiB at most)
	MaxSegments    int // default 1,000

	mu      sync.Mutex
	next    uint64 // the number of the open segment
	open    []Record
	opened  time.Time // when the open segment got its first record
	dropped uint64
}

// nextFile keeps the number of the next segment: numbers are never used twice, even after
// every segment was uploaded and deleted (the receiver keeps a number's first content).
const nextFile = "next-segment"

// OpenLog reads the segments left by an earlier run; records that were in the open segment
// when the process stopped are lost only if they were never closed (Flush closes it).
func OpenLog(dir string) (*Log, error) {
	l := &Log{Dir: dir}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	segs, err := l.segments()
	if err != nil {
		return nil, err
	}
	if len(segs) > 0 {
		l.next = segs[len(segs)-1] + 1
	}
	if raw, err := os.ReadFile(filepath.Join(dir, nextFile)); err == nil {
		n, err := strconv.ParseUint(strings.TrimSpace(string(raw)), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", filepath.Join(dir, nextFile), err)
		}
		l.next = max(l.next, n)
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	return l, nil
}

func (l *Log) limits() (int, int) {
	per, most := l.SegmentRecords, l.MaxSegments
	if per <= 0 {
		per = 100
	}
	if most <= 0 {
		most = 1000
	}
	return per, most
}

// Append adds a record; a full open segment is closed (written and synced) first.
func (l *Log) Append(r Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	per, _ := l.limits()
	if len(l.open) == 0 {
		l.opened = time.Now()
	}
	l.open = append(l.open, r)
	if len(l.open) >= per {
		return l.closeLocked()
	}
	return nil
}

// Flush closes the open segment, if it has records.
func (l *Log) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closeLocked()
}

// FlushOlder closes the open segment if its first record is older than age: a quiet device's
// records still leave within age, a busy one's in full segments.
func (l *Log) FlushOlder(age time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.open) == 0 || time.Since(l.opened) < age {
		return nil
	}
	return l.closeLocked()
}

func (l *Log) closeLocked() error {
	if len(l.open) == 0 {
		return nil
	}
	segs, err := l.segments()
	if err != nil {
		return err
	}
	if _, most := l.limits(); len(segs) >= most {
		l.dropped += uint64(len(l.open))
		l.open = l.open[:0]
		return fmt.Errorf("edge log full (%d segments): %d records dropped so far", most, l.dropped)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, r := range l.open {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	name := fmt.Sprintf("%020d.jsonl", l.next)
	if err := writeSynced(filepath.Join(l.Dir, name+".tmp"), b.Bytes()); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(l.Dir, name+".tmp"), filepath.Join(l.Dir, name)); err != nil {
		return err
	}
	if err := writeSynced(filepath.Join(l.Dir, nextFile), []byte(strconv.FormatUint(l.next+1, 10))); err != nil {
		return err
	}
	l.next++
	l.open = l.open[:0]
	return nil
}

// Dropped is how many records the full log could not keep.
func (l *Log) Dropped() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropped
}

// segments lists the closed segments' numbers, oldest first.
func (l *Log) segments() ([]uint64, error) {
	entries, err := os.ReadDir(l.Dir)
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".jsonl")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(name, 10, 64)
		if err == nil {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// Upload sends every closed segment, oldest first, with PUT to url/<number> (the device's
// token as bearer), deleting each one the receiver accepted (201, or 200 for a number it holds
// already with the same content: a retry after a lost answer). It stops at the first failure:
// the rest wait for the next call. It returns how many segments it sent.
func (l *Log) Upload(ctx context.Context, url, token string, c *http.Client) (int, error) {
	segs, err := l.segments()
	if err != nil {
		return 0, err
	}
	if c == nil {
		c = &http.Client{Timeout: time.Minute}
	}
	sent := 0
	for _, n := range segs {
		path := filepath.Join(l.Dir, fmt.Sprintf("%020d.jsonl", n))
		data, err := os.ReadFile(path)
		if err != nil {
			return sent, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, fmt.Sprintf("%s/%d", strings.TrimSuffix(url, "/"), n), bytes.NewReader(data))
		if err != nil {
			return sent, err
		}
		req.Header.Set("Content-Type", "application/x-ndjson")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			return sent, err
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
			return sent, fmt.Errorf("upload of segment %d: %s: %s", n, resp.Status, msg)
		}
		if err := os.Remove(path); err != nil {
			return sent, err
		}
		sent++
	}
	return sent, nil
}
