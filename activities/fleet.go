package activities

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/driftline/driftline/canary"
	"github.com/driftline/driftline/edge/agent"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/registry"
)

// Fleet carries out a fleet rollout's changes (workflow FleetRollout): it signs the bundles a
// rollout serves with the registry's edge key, moves the fleet's share, and judges the
// rollout from the logs the devices uploaded.
type Fleet struct {
	Store    objstore.Bucket
	Registry *registry.Registry
	EdgeKey  ed25519.PrivateKey
}

func (a *Fleet) key() (ed25519.PrivateKey, error) {
	if a.EdgeKey == nil {
		return nil, temporal.NewNonRetryableApplicationError("fleet rollout: this worker has no edge signing key (--edge-signing-key-file): it cannot sign the bundles a rollout serves",
			pipeline.ErrTypeInvalidData, nil)
	}
	return a.EdgeKey, nil
}

func fleetChange(in pipeline.FleetStepInput, action registry.Transition, what string) registry.Change {
	return registry.Change{Action: action, Actor: in.Actor, RunID: in.Rollout, Reason: in.Reason,
		Key: fmt.Sprintf("fleet/%s/%s/%s/%s", in.Model, in.Fleet, in.Rollout, what)}
}

// FleetBegin starts a rollout of in.Version: the version's bundle is signed again under a new
// counter (above any bundle the fleet's devices hold) and becomes the fleet's candidate, on
// no device yet. It returns the stable version and the guardrails of the model's registered
// spec. Idempotent: a retry finds the rollout begun.
func (a *Fleet) FleetBegin(ctx context.Context, in pipeline.FleetStepInput) (pipeline.FleetBeginResult, error) {
	key, err := a.key()
	if err != nil {
		return pipeline.FleetBeginResult{}, err
	}
	sp, _, _, err := a.Registry.CurrentSpec(ctx, in.Model)
	if err != nil {
		return pipeline.FleetBeginResult{}, classify("fleet rollout", err)
	}
	f, _, err := a.Registry.ReadFleet(ctx, in.Model, in.Fleet)
	if err != nil {
		return pipeline.FleetBeginResult{}, classify("fleet rollout", err)
	}
	if f.Rollout != in.Rollout && f.Stable != nil && f.Stable.Version == in.Version {
		return pipeline.FleetBeginResult{}, invalid("fleet %s runs v%d already", in.Fleet, in.Version)
	}
	rel, err := a.Registry.ReissueEdgeBundle(ctx, in.Model, in.Version, "fleet "+in.Fleet+" rollout "+in.Rollout+": candidate", key)
	if err != nil {
		return pipeline.FleetBeginResult{}, classify("fleet rollout", err)
	}
	f, err = a.Registry.UpdateFleet(ctx, in.Model, in.Fleet, fleetChange(in, registry.TransFleetBegin, "begin"), func(f *registry.Fleet, found bool) (bool, error) {
		switch {
		case !found:
			return false, fmt.Errorf("fleet %s of %s: %w", in.Fleet, in.Model, registry.ErrNotFound)
		case f.Rollout == in.Rollout:
			return false, nil
		case f.Rollout != "":
			return false, fmt.Errorf("fleet %s: rollout %s is under way: %w", in.Fleet, f.Rollout, registry.ErrConflict)
		}
		f.Candidate, f.Share, f.ShareSince, f.Rollout = &rel, 0, time.Time{}, in.Rollout
		return true, nil
	})
	if err != nil {
		return pipeline.FleetBeginResult{}, classify("fleet rollout", err)
	}
	g := sp.Canary
	// Devices send no protected attribute: fairness on live answers is the server's canary's.
	g.ProtectedAttribute, g.MinDisparateImpact, g.MinGroupRows = "", 0, 0
	return pipeline.FleetBeginResult{Stable: f.Stable.Version, Counter: rel.Counter, Guardrails: g}, nil
}

// FleetShare moves the share of the fleet's devices on the candidate (those whose
// registry.DeviceShare is below it) and returns when it took effect.
func (a *Fleet) FleetShare(ctx context.Context, in pipeline.FleetStepInput) (pipeline.FleetShareResult, error) {
	f, err := a.Registry.UpdateFleet(ctx, in.Model, in.Fleet, fleetChange(in, registry.TransFleetShare, fmt.Sprintf("share-%d", in.Step)),
		func(f *registry.Fleet, found bool) (bool, error) {
			if !found || f.Rollout != in.Rollout {
				return false, fmt.Errorf("fleet %s: rollout %s is not under way: %w", in.Fleet, in.Rollout, registry.ErrConflict)
			}
			if f.Share == in.Share && !f.ShareSince.IsZero() {
				return false, nil
			}
			f.Share, f.ShareSince = in.Share, time.Now().UTC()
			return true, nil
		})
	if err != nil {
		return pipeline.FleetShareResult{}, classify("fleet rollout", err)
	}
	return pipeline.FleetShareResult{Since: f.ShareSince}, nil
}

// FleetFinish ends the rollout: promoted, the candidate becomes the stable release on every
// device; rolled back, the stable version's bundle is signed again under a new counter (the
// devices on the candidate hold a higher one and would refuse the old bundle) and every device
// goes back to it. Idempotent: a retry finds the rollout ended.
func (a *Fleet) FleetFinish(ctx context.Context, in pipeline.FleetStepInput) error {
	var back *registry.Release
	if !in.Promote {
		f, _, err := a.Registry.ReadFleet(ctx, in.Model, in.Fleet)
		if err != nil {
			return classify("fleet rollout", err)
		}
		if f.Rollout != in.Rollout {
			return nil // ended already
		}
		key, err := a.key()
		if err != nil {
			return err
		}
		rel, err := a.Registry.ReissueEdgeBundle(ctx, in.Model, f.Stable.Version, "fleet "+in.Fleet+" rollout "+in.Rollout+": rollback", key)
		if err != nil {
			return classify("fleet rollout", err)
		}
		back = &rel
	}
	action, what := registry.TransFleetPromote, "promote"
	if back != nil {
		action, what = registry.TransFleetRollback, "rollback"
	}
	_, err := a.Registry.UpdateFleet(ctx, in.Model, in.Fleet, fleetChange(in, action, what), func(f *registry.Fleet, found bool) (bool, error) {
		if !found || f.Rollout != in.Rollout {
			return false, nil
		}
		if back != nil {
			f.Stable = back
		} else {
			f.Stable = f.Candidate
		}
		f.Candidate, f.Share, f.ShareSince, f.Rollout = nil, 0, time.Time{}, ""
		return true, nil
	})
	return classify("fleet rollout", err)
}

// FleetJudge reads what the fleet's devices uploaded and has canary.Judge decide with the
// serving canary's guardrails: a device on the candidate logs the candidate's answer (the
// canary route) and its previous bundle's answer to the same request (paired), a device on
// the stable release the stable answer (production); labels come back from the devices.
// Request ids are the device's (a hash of its token's subject) and the host program's id.
func (a *Fleet) FleetJudge(ctx context.Context, in pipeline.FleetJudgeInput) (pipeline.CanaryEvalResult, error) {
	all, labels, err := a.fleetRecords(ctx, in)
	if err != nil {
		return pipeline.CanaryEvalResult{}, classify("fleet judge", err)
	}
	since := in.Since.UnixMilli()
	var step []predlog.Record
	for _, r := range all {
		if r.TimeUnixMs >= since {
			step = append(step, r)
		}
	}
	return canary.Judge(canary.Input{Records: step, Paired: all, Labels: labels, Candidate: in.Candidate, Production: in.Stable,
		Step: in.Step, Share: in.Share, Guardrails: in.Guardrails}), nil
}

// uploadSlack covers the devices' clocks: a segment whose first record a device stamped a
// little before the rollout's start, or after the worker's now, is still read.
const uploadSlack = 2 * time.Minute

// fleetRecords turns the predictions logged since in.Start into prediction-log records, and
// the labels into a map by request id (the first label of an id counts). It reads the hours
// of segments since in.Start (less the slack for the devices' clocks) up to now.
func (a *Fleet) fleetRecords(ctx context.Context, in pipeline.FleetJudgeInput) ([]predlog.Record, map[string]float64, error) {
	start := in.Start.UnixMilli()
	labels := map[string]float64{}
	var out []predlog.Record
	read := 0
	for h := in.Start.Add(-uploadSlack).Truncate(time.Hour); !h.After(time.Now().Add(uploadSlack)); h = h.Add(time.Hour) {
		prefix := registry.FleetLogHour(in.Model, in.Fleet, h)
		objs, err := a.Store.List(ctx, prefix)
		if err != nil {
			return nil, nil, err
		}
		for _, o := range objs {
			if read++; read%100 == 0 {
				activity.RecordHeartbeat(ctx, read)
			}
			device, _, _ := strings.Cut(strings.TrimPrefix(o.Key, prefix), "/")
			data, _, err := objstore.ReadAll(ctx, a.Store, o.Key)
			if err != nil {
				return nil, nil, err
			}
			sc := bufio.NewScanner(bytes.NewReader(data))
			sc.Buffer(make([]byte, 0, 4096), 1<<20)
			for sc.Scan() {
				var rec agent.Record
				if json.Unmarshal(sc.Bytes(), &rec) != nil {
					continue // the API checked every line when it kept the segment
				}
				id := device + "/" + rec.ID
				if rec.Kind == "label" && rec.Label != nil {
					if _, dup := labels[id]; !dup {
						labels[id] = *rec.Label
					}
					continue
				}
				if rec.Kind != "prediction" || rec.Time.UnixMilli() < start {
					continue
				}
				out = appendFleetPrediction(out, in, id, rec)
			}
		}
	}
	return out, labels, nil
}

func appendFleetPrediction(out []predlog.Record, in pipeline.FleetJudgeInput, id string, rec agent.Record) []predlog.Record {
	route := map[int]pipeline.Route{in.Candidate: pipeline.RouteCanary, in.Stable: pipeline.RouteProduction}
	r, ok := route[rec.Version]
	if !ok {
		return out
	}
	base := predlog.Record{RequestID: id, TimeUnixMs: rec.Time.UnixMilli(), Model: in.Model, Version: int32(rec.Version), Route: string(r),
		LatencyUs: rec.LatencyUs, Prediction: answer(rec.Prediction)}
	if rec.Prediction == nil {
		base.Error = "no answer (NaN)"
	}
	out = append(out, base)
	if _, ok := route[rec.PairedVersion]; ok && rec.PairedVersion != rec.Version && rec.PairedPrediction != nil {
		p := base
		p.Version, p.Route, p.Prediction, p.Error, p.LatencyUs = int32(rec.PairedVersion), string(pipeline.RoutePaired), *rec.PairedPrediction, "", 0
		out = append(out, p)
	}
	return out
}

func answer(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}
