package activities

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/edge/agent"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/registry"
)

// fleetDrift compares the drift sketches each fleet of the model uploaded for its stable
// version in the window (their end in (from, to]) with that version's reference, over the
// bins the devices counted in (registry.SketchReference): the devices' inputs never left them.
func (m *Monitoring) fleetDrift(ctx context.Context, model string, from, to time.Time, cfg drift.Config) ([]pipeline.FleetDrift, error) {
	fleets, err := m.Registry.Fleets(ctx, model)
	if err != nil {
		return nil, err
	}
	var out []pipeline.FleetDrift
	for _, f := range fleets {
		if f.Stable == nil {
			continue
		}
		prof, err := m.Registry.LoadProfile(ctx, model, f.Stable.Version)
		if err != nil {
			return nil, err
		}
		ref := registry.SketchReference(prof, f.Stable.Version)
		fd := pipeline.FleetDrift{Fleet: f.Name, Version: f.Stable.Version}
		counts, nulls, err := m.sumSketches(ctx, model, f.Name, ref, from, to, &fd)
		if err != nil {
			return nil, err
		}
		if fd.Sketches == 0 {
			out = append(out, fd)
			continue
		}
		var binned []drift.Binned
		for i, rf := range ref.Features {
			if len(rf.Edges) > 0 {
				binned = append(binned, drift.Binned{Name: rf.Name, Edges: rf.Edges, Counts: counts[i], Nulls: nulls[i]})
			}
		}
		rep, err := drift.BinnedReport(prof, binned, cfg)
		if err != nil {
			return nil, fmt.Errorf("fleet %s: %w", f.Name, err)
		}
		fd.Score, fd.Drifted, fd.Why = rep.Score, rep.Drifted, rep.Why
		out = append(out, fd)
	}
	return out, nil
}

// sumSketches adds up the window's sketches of the fleet's devices that match the reference;
// one that does not (another version's bins, a malformed one) is counted in fd.Skipped. A
// segment stored before the window (less the devices' clock slack) holds no sketch of it and
// is not read; the others are read eight at a time.
func (m *Monitoring) sumSketches(ctx context.Context, model, fleet string, ref agent.Reference, from, to time.Time, fd *pipeline.FleetDrift) ([][]uint64, []uint64, error) {
	counts, nulls := make([][]uint64, len(ref.Features)), make([]uint64, len(ref.Features))
	for i, f := range ref.Features {
		counts[i] = make([]uint64, len(f.Edges)+1)
	}
	var keys []string
	for h := from.Add(-uploadSlack).Truncate(time.Hour); !h.After(to.Add(uploadSlack)); h = h.Add(time.Hour) {
		objs, err := m.Store.List(ctx, registry.FleetLogHour(model, fleet, h))
		if err != nil {
			return nil, nil, err
		}
		for _, o := range objs {
			if o.LastModified.IsZero() || !o.LastModified.Before(from.Add(-uploadSlack)) {
				keys = append(keys, o.Key)
			}
		}
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, key := range keys {
		g.Go(func() error {
			heartbeat(ctx)
			data, _, err := objstore.ReadAll(gctx, m.Store, key)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			addSketches(data, ref, from, to, fd, counts, nulls)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	return counts, nulls, nil
}

// addSketches adds a log segment's sketches of the window to the sums.
func addSketches(data []byte, ref agent.Reference, from, to time.Time, fd *pipeline.FleetDrift, counts [][]uint64, nulls []uint64) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		if !bytes.Contains(sc.Bytes(), []byte(`"kind":"sketch"`)) {
			continue
		}
		var rec agent.Record
		if json.Unmarshal(sc.Bytes(), &rec) != nil || rec.Sketch == nil {
			continue
		}
		s := rec.Sketch
		if !s.To.After(from) || s.To.After(to) {
			continue
		}
		if s.Version != ref.Version || !sameBins(s, ref) {
			fd.Skipped++
			continue
		}
		fd.Sketches++
		fd.Predictions += s.Count
		for i := range counts {
			for j := range counts[i] {
				counts[i][j] += s.Counts[i][j]
			}
			nulls[i] += s.Nulls[i]
		}
	}
}

func sameBins(s *agent.Sketch, ref agent.Reference) bool {
	if len(s.Counts) != len(ref.Features) || len(s.Nulls) != len(ref.Features) {
		return false
	}
	for i, f := range ref.Features {
		if n := len(s.Counts[i]); n != len(f.Edges)+1 && !(n == 0 && len(f.Edges) == 0) {
			return false
		}
	}
	return true
}

// fleetsWhy is the drifted fleets' reasons, for the window's.
func fleetsWhy(fl []pipeline.FleetDrift) string {
	var why []string
	for _, f := range fl {
		if f.Drifted {
			why = append(why, fmt.Sprintf("fleet %s (v%d, %d sketches of %d predictions): %s", f.Fleet, f.Version, f.Sketches, f.Predictions, f.Why))
		}
	}
	return strings.Join(why, "; ")
}
