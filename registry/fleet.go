package registry

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/edge"
	"github.com/driftline/driftline/edge/agent"
	"github.com/driftline/driftline/internal/keys"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/spec"
)

// Fleet is a named set of devices running one model at the edge, and what they should run:
// the stable release, and during a rollout a candidate release on a share of the devices
// chosen by a stable hash of their ids (docs/edge.md, "Fleets").
type Fleet struct {
	Name  string `json:"name"`
	Model string `json:"model"`
	// Members are device ids (the subjects of the devices' tokens); Groups admit every
	// device whose token carries one of them. Nothing a device claims about itself counts.
	Members []string `json:"members,omitempty"`
	Groups  []string `json:"groups,omitempty"`
	Stable  *Release `json:"stable,omitempty"`
	// Candidate, Share and Rollout are set while a rollout (workflow Rollout) ramps a version.
	Candidate *Release `json:"candidate,omitempty"`
	Share     float64  `json:"share"`
	// ShareSince is when the share took effect (the devices move at their next poll).
	ShareSince time.Time `json:"share_since,omitzero"`
	Rollout    string    `json:"rollout,omitempty"`
	UpdatedAt  time.Time `json:"updated_at"`
	UpdatedBy  string    `json:"updated_by"`
	Reason     string    `json:"reason,omitempty"`
}

// Release is a signed bundle a fleet serves: a version, under a counter of its own (a
// version's bundle is issued again, with a new counter, whenever devices must move to it from
// a bundle with a higher one: a rollback, or a version ramped again).
type Release struct {
	Version int    `json:"version"`
	Bundle  string `json:"bundle"` // the object key
	Counter uint64 `json:"counter"`
}

// Fleet transitions (the audit record's action).
const (
	TransFleetApply    Transition = "fleet_apply"
	TransFleetBegin    Transition = "fleet_rollout_begin"
	TransFleetShare    Transition = "fleet_rollout_share"
	TransFleetPromote  Transition = "fleet_rollout_promote"
	TransFleetRollback Transition = "fleet_rollout_rollback"
)

// FleetKey is where model m's fleet is kept.
func FleetKey(m, name string) string { return keys.Model(m) + "fleets/" + name + ".json" }

// FleetStatusKey is where a device of model m's fleet keeps its last status (device: a hash
// of its token's subject).
func FleetStatusKey(m, fleet, device string) string {
	return fmt.Sprintf("edge/%s/fleets/%s/devices/%s/status.json", m, fleet, device)
}

// FleetStatusPrefix holds every device's status of model m's fleet.
func FleetStatusPrefix(m, fleet string) string {
	return fmt.Sprintf("edge/%s/fleets/%s/devices/", m, fleet)
}

// FleetLogHour is the prefix of the log segments of model m's fleet whose first record was
// made in hour h (UTC, by the device's clock): a rollout's judge lists only the hours since
// it began, however long the fleet has run.
func FleetLogHour(m, fleet string, h time.Time) string {
	return fmt.Sprintf("edge/%s/fleets/%s/log/%s/", m, fleet, h.UTC().Format("2006-01-02/15"))
}

// FleetLogKey is where segment n of a device's log is kept, under the hour of its first
// record: the same segment sent again lands on the same key.
func FleetLogKey(m, fleet, device string, first time.Time, n uint64) string {
	return fmt.Sprintf("%s%s/%020d.jsonl", FleetLogHour(m, fleet, first), device, n)
}

// FleetBundleKey is where a bundle issued again under counter c is kept.
func FleetBundleKey(m string, c uint64) string {
	return fmt.Sprintf("models/%s/edge/bundles/%020d.bundle", m, c)
}

// DeviceShare is the device's place in [0, 1) for fleet's ramps: the first 8 bytes of
// SHA-256 of fleet, a zero byte and the device id, over 2^64. A device's place never changes,
// so a ramp from 10% to 50% keeps the first 10% and adds devices.
func DeviceShare(fleet, device string) float64 {
	h := sha256.Sum256([]byte(fleet + "\x00" + device))
	return float64(binary.BigEndian.Uint64(h[:8])>>11) / (1 << 53)
}

// Member says whether the device (its token's subject and groups) belongs to the fleet.
func (f *Fleet) Member(device string, groups []string) bool {
	if slices.Contains(f.Members, device) {
		return true
	}
	for _, g := range groups {
		if slices.Contains(f.Groups, g) {
			return true
		}
	}
	return false
}

// Assign is the release the device should run: the candidate when its place is below the
// share, the stable release otherwise (nil: the fleet has none yet).
func (f *Fleet) Assign(device string) *Release {
	if f.Candidate != nil && DeviceShare(f.Name, device) < f.Share {
		return f.Candidate
	}
	return f.Stable
}

// ReadFleet reads model m's fleet and its ETag.
func (r *Registry) ReadFleet(ctx context.Context, m, name string) (Fleet, string, error) {
	var f Fleet
	data, obj, err := objstore.ReadAll(ctx, r.Store, FleetKey(m, name))
	if errors.Is(err, objstore.ErrNotFound) {
		return f, "", fmt.Errorf("fleet %s of model %s: %w", name, m, ErrNotFound)
	}
	if err != nil {
		return f, "", err
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return f, "", fmt.Errorf("fleet %s: %w", name, err)
	}
	return f, obj.ETag, nil
}

// Fleets lists model m's fleets.
func (r *Registry) Fleets(ctx context.Context, m string) ([]Fleet, error) {
	objs, err := r.Store.List(ctx, keys.Model(m)+"fleets/")
	if err != nil {
		return nil, err
	}
	var out []Fleet
	for _, o := range objs {
		var f Fleet
		data, _, err := objstore.ReadAll(ctx, r.Store, o.Key)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, fmt.Errorf("%s: %w", o.Key, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// FleetStep is one change of a fleet read from the store: it reports whether it changed
// anything (an idempotent retry changes nothing and writes nothing). found is false for a
// fleet not yet kept.
type FleetStep func(f *Fleet, found bool) (changed bool, err error)

// UpdateFleet applies fn to the fleet and writes it with compare-and-swap, re-reading after a
// lost race; every change is audited with the fleet before and after.
func (r *Registry) UpdateFleet(ctx context.Context, m, name string, ch Change, fn FleetStep) (Fleet, error) {
	if !spec.ValidName(name) {
		return Fleet{}, fmt.Errorf("%q is not a fleet name (lowercase letters, digits, _ and -, at most 63): %w", name, ErrInvalid)
	}
	for attempt := 0; attempt < 8; attempt++ {
		f, etag, err := r.ReadFleet(ctx, m, name)
		found := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return f, err
		}
		before := f
		if !found {
			f = Fleet{Name: name, Model: m}
		}
		changed, err := fn(&f, found)
		if err != nil || !changed {
			return before, err
		}
		f.Name, f.Model, f.UpdatedAt, f.UpdatedBy, f.Reason = name, m, time.Now().UTC(), ch.Actor, ch.Reason
		body, err := json.MarshalIndent(f, "", " ")
		if err != nil {
			return before, err
		}
		opts := objstore.PutOptions{IfMatch: etag, ContentType: "application/json"}
		if !found {
			opts = objstore.PutOptions{IfNoneMatch: true, ContentType: "application/json"}
		}
		if _, err := r.Store.Put(ctx, FleetKey(m, name), body, opts); errors.Is(err, objstore.ErrPreconditionFailed) {
			continue
		} else if err != nil {
			return before, err
		}
		version := 0
		if f.Stable != nil {
			version = f.Stable.Version
		}
		if f.Candidate != nil {
			version = f.Candidate.Version
		}
		_, err = r.Audit.Append(ctx, ch.Key, audit.Record{Actor: ch.Actor, Action: string(ch.Action), Model: m, RunID: ch.RunID,
			Reason: ch.Reason, Version: version, Details: map[string]any{"fleet": name, "before": before, "after": f}})
		return f, err
	}
	return Fleet{}, fmt.Errorf("fleet %s: %w: too many concurrent writers", name, ErrConflict)
}

// FleetDefinition is what an operator sets of a fleet: its members.
type FleetDefinition struct {
	Members []string `json:"members,omitempty"`
	Groups  []string `json:"groups,omitempty"`
}

// ApplyFleet creates model m's fleet or sets its members. A new fleet starts on the model's
// production version, with the bundle signed at its registration.
func (r *Registry) ApplyFleet(ctx context.Context, m, name string, def FleetDefinition, ch Change) (Fleet, error) {
	if len(def.Members) == 0 && len(def.Groups) == 0 {
		return Fleet{}, fmt.Errorf("fleet %s: no members and no groups: a fleet needs devices: %w", name, ErrInvalid)
	}
	for _, id := range append(slices.Clone(def.Members), def.Groups...) {
		if id == "" || len(id) > 256 {
			return Fleet{}, fmt.Errorf("fleet %s: a member or group of %d bytes: want 1 to 256: %w", name, len(id), ErrInvalid)
		}
	}
	ch.Action = TransFleetApply
	return r.UpdateFleet(ctx, m, name, ch, func(f *Fleet, found bool) (bool, error) {
		if found && slices.Equal(f.Members, def.Members) && slices.Equal(f.Groups, def.Groups) {
			return false, nil
		}
		if !found {
			rel, err := r.registrationRelease(ctx, m)
			if err != nil {
				return false, fmt.Errorf("fleet %s: %w", name, err)
			}
			f.Stable = &rel
		}
		f.Members, f.Groups = slices.Clone(def.Members), slices.Clone(def.Groups)
		return true, nil
	})
}

// registrationRelease is the model's production version with the bundle signed at its
// registration.
func (r *Registry) registrationRelease(ctx context.Context, m string) (Release, error) {
	d, _, err := r.Deployment(ctx, m)
	if err != nil {
		return Release{}, err
	}
	if d.Production == 0 {
		return Release{}, fmt.Errorf("model %s has no production version: %w", m, ErrNotFound)
	}
	key := EdgeBundleKey(m, d.Production)
	if _, err := r.Store.Head(ctx, key); errors.Is(err, objstore.ErrNotFound) {
		return Release{}, fmt.Errorf("version %d of %s has no edge bundle (the pipeline workers sign one at registration with --edge-signing-key-file): %w",
			d.Production, m, ErrNotFound)
	} else if err != nil {
		return Release{}, err
	}
	c, found, err := r.findCounter(ctx, m, counterClaim{Version: d.Production, Purpose: "register"})
	if err != nil {
		return Release{}, err
	}
	if !found {
		return Release{}, fmt.Errorf("version %d of %s: the counter of its edge bundle is not claimed: %w", d.Production, m, ErrNotFound)
	}
	return Release{Version: d.Production, Bundle: key, Counter: c}, nil
}

// ReissueEdgeBundle signs version n's bundle again under the model's next counter, for
// purpose (which makes it idempotent: a retry gets the same counter and bundle), so devices
// holding a bundle with a higher counter install it (a fleet rolling back, or ramping a
// version again). The body is the registration bundle's, checked against key first.
func (r *Registry) ReissueEdgeBundle(ctx context.Context, m string, n int, purpose string, key ed25519.PrivateKey) (Release, error) {
	data, _, err := objstore.ReadAll(ctx, r.Store, EdgeBundleKey(m, n))
	if errors.Is(err, objstore.ErrNotFound) {
		return Release{}, fmt.Errorf("version %d of %s has no edge bundle to issue again: %w", n, m, ErrNotFound)
	}
	if err != nil {
		return Release{}, err
	}
	man, body, err := edge.Open(data, []ed25519.PublicKey{key.Public().(ed25519.PublicKey)})
	if err != nil {
		return Release{}, fmt.Errorf("the registration bundle of %s v%d does not verify with this worker's key (rotated? docs/edge.md): %w", m, n, err)
	}
	counter, err := r.claimCounter(ctx, m, counterClaim{Version: n, Purpose: purpose})
	if err != nil {
		return Release{}, err
	}
	man.Counter = counter
	sealed, err := edge.Seal(man, body, key)
	if err != nil {
		return Release{}, err
	}
	rel := Release{Version: n, Bundle: FleetBundleKey(m, counter), Counter: counter}
	if _, err := objstore.CreateOnce(ctx, r.Store, rel.Bundle, sealed, "application/octet-stream"); err != nil {
		return Release{}, fmt.Errorf("edge bundle of %s v%d: %w", m, n, err)
	}
	_, err = r.Audit.Append(ctx, fmt.Sprintf("edge-bundle/%s/%d/%d", m, n, counter), audit.Record{Actor: "driftline", Action: "edge_bundle",
		Model: m, Version: n, Reason: purpose, Details: map[string]any{"bundle": r.Store.URI(rel.Bundle), "counter": counter, "key_id": man.KeyID, "bytes": len(sealed)}})
	return rel, err
}

// SketchReference is what a device of the model needs to sketch its inputs for version n
// (agent.Reference): every feature of the version's reference profile in its order, a
// numeric one with its drift bins' edges thinned (drift.CoarseEdges) so that a sketch of
// SketchRows predictions stays under agent.SketchMaxBytes; the monitor compares a sketch with
// the reference over the same edges.
func SketchReference(p drift.Profile, n int) agent.Reference {
	ref := agent.Reference{Version: n, Features: make([]agent.ReferenceFeature, len(p.Features))}
	// A count is at most 5 digits and a comma; each feature has its brackets and its nulls.
	bins := max(1, ((agent.SketchMaxBytes-512)/max(1, len(p.Features))-10)/6)
	for i, f := range p.Features {
		ref.Features[i].Name = f.Name
		if f.Kind == drift.Numeric && len(f.Props) == len(f.Edges)+1 {
			ref.Features[i].Edges = drift.CoarseEdges(f.Edges, bins)
		}
	}
	return ref
}
