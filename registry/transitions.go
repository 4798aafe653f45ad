package registry

import (
	"fmt"
	"time"

	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/spec"
)

// Transition names a change of the deployment pointer (the audit record's action).
type Transition string

// The transitions, the only ways the pointer changes. Each is a method of Deployment with a
// row for every state in the table test; the activities and the CLI use only these.
const (
	TransPromote     Transition = "promote"
	TransSetCanary   Transition = "set_canary"
	TransAbortCanary Transition = "abort_canary"
	TransRollback    Transition = "rollback"
	TransSetAlias    Transition = "set_alias"
)

func (d *Deployment) clearCanary() {
	d.Canary, d.CanaryShare, d.CanarySince, d.CanaryMode = 0, 0, time.Time{}, ""
}

// Promote makes version production; the production it replaces becomes the rollback target
// and a canary of the same version ends. Promoting the production version changes nothing
// (a retried activity). A canary of another version is a conflict: abort it first.
func (d *Deployment) Promote(version int) (bool, error) {
	switch {
	case version <= 0:
		return false, fmt.Errorf("promote: version %d is not a version: %w", version, ErrConflict)
	case d.Production == version:
		return false, nil
	case d.Canary != 0 && d.Canary != version:
		return false, fmt.Errorf("v%d is in canary, not v%d: abort the canary first: %w", d.Canary, version, ErrConflict)
	}
	d.Previous, d.Production = d.Production, version
	d.clearCanary()
	return true, nil
}

// SetCanary routes share of the traffic to version in mode (split or shadow; empty is split,
// the spec's default), starting a step at now (CanarySince). The same version at the same share changes nothing; at a new share it
// starts a new step. Another version in canary, or no production to compare with, is a conflict.
func (d *Deployment) SetCanary(version int, share float64, mode spec.CanaryMode, now time.Time) (bool, error) {
	if mode == "" {
		mode = spec.ModeSplit
	}
	switch {
	case !(share > 0 && share <= 1):
		return false, fmt.Errorf("canary share %g is not in (0, 1]: %w", share, ErrConflict)
	case mode != spec.ModeSplit && mode != spec.ModeShadow:
		return false, fmt.Errorf("canary mode %q is not split or shadow: %w", mode, ErrConflict)
	case d.Production == 0:
		return false, fmt.Errorf("no production version to canary against: %w", ErrConflict)
	case version == d.Production:
		return false, fmt.Errorf("v%d is production already: %w", version, ErrConflict)
	case d.Canary == version && d.CanaryShare == share && d.CanaryMode == mode:
		return false, nil
	case d.Canary != 0 && d.Canary != version:
		return false, fmt.Errorf("v%d is already in canary: %w", d.Canary, ErrConflict)
	}
	d.Canary, d.CanaryShare, d.CanarySince, d.CanaryMode = version, share, now.UTC(), mode
	return true, nil
}

// AbortCanary takes version out of the canary: production answers everything again. Nothing
// changes when version is not in canary.
func (d *Deployment) AbortCanary(version int) (bool, error) {
	if d.Canary != version || version == 0 {
		return false, nil
	}
	d.clearCanary()
	return true, nil
}

// Rollback restores the previous production version (the current one becomes previous, so a
// second rollback undoes the first) and ends any canary.
func (d *Deployment) Rollback() (bool, error) {
	if d.Previous == 0 {
		return false, fmt.Errorf("model %s has no previous production version to roll back to: %w", d.Model, ErrConflict)
	}
	d.Production, d.Previous = d.Previous, d.Production
	d.clearCanary()
	return true, nil
}

// SetAlias points an alias at a version (0 removes it). production and canary are not
// aliases: they change only by the transitions above.
func (d *Deployment) SetAlias(alias string, version int) (bool, error) {
	if alias == "" || alias == string(pipeline.RouteProduction) || alias == string(pipeline.RouteCanary) || alias == string(pipeline.RouteShadow) {
		return false, fmt.Errorf("alias %q is reserved or empty: %w", alias, ErrConflict)
	}
	if version < 0 {
		return false, fmt.Errorf("alias %s: version %d is not a version: %w", alias, version, ErrConflict)
	}
	if d.Aliases[alias] == version {
		return false, nil
	}
	if version == 0 {
		delete(d.Aliases, alias)
		return true, nil
	}
	if d.Aliases == nil {
		d.Aliases = map[string]int{}
	}
	d.Aliases[alias] = version
	return true, nil
}
