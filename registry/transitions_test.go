package registry

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/spec"
)

// TestEveryTransitionFromEveryState applies each transition to each state the pointer can be
// in and checks the state after it, whether it changed, and which are refused.
func TestEveryTransitionFromEveryState(t *testing.T) {
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	earlier := now.Add(-time.Hour)
	states := map[string]Deployment{
		"empty":          {Model: "m"},
		"production":     {Model: "m", Production: 1},
		"with previous":  {Model: "m", Production: 2, Previous: 1},
		"canary split":   {Model: "m", Production: 1, Canary: 2, CanaryShare: 0.1, CanarySince: earlier, CanaryMode: spec.ModeSplit},
		"canary shadow":  {Model: "m", Production: 1, Canary: 2, CanaryShare: 0.1, CanarySince: earlier, CanaryMode: spec.ModeShadow},
		"canary aliased": {Model: "m", Production: 2, Previous: 1, Canary: 3, CanaryShare: 0.5, CanarySince: earlier, CanaryMode: spec.ModeSplit, Aliases: map[string]int{"challenger": 3}},
	}
	type step struct {
		name string
		do   func(*Deployment) (bool, error)
	}
	steps := []step{
		{"promote 2", func(d *Deployment) (bool, error) { return d.Promote(2) }},
		{"promote 3", func(d *Deployment) (bool, error) { return d.Promote(3) }},
		{"set canary 2 at 10%", func(d *Deployment) (bool, error) { return d.SetCanary(2, 0.1, spec.ModeSplit, now) }},
		{"set canary 2 at 30%", func(d *Deployment) (bool, error) { return d.SetCanary(2, 0.3, spec.ModeSplit, now) }},
		{"abort canary 2", func(d *Deployment) (bool, error) { return d.AbortCanary(2) }},
		{"rollback", func(d *Deployment) (bool, error) { return d.Rollback() }},
		{"alias challenger 3", func(d *Deployment) (bool, error) { return d.SetAlias("challenger", 3) }},
	}
	cleared := func(d Deployment) Deployment {
		d.Canary, d.CanaryShare, d.CanarySince, d.CanaryMode = 0, 0, time.Time{}, ""
		return d
	}
	with := func(d Deployment, f func(*Deployment)) Deployment { f(&d); return d }
	const refused = "refused"
	// want[state][step]: the state after, or refused (ErrConflict, nothing changed).
	want := map[string]map[string]any{
		"empty": {
			"promote 2": Deployment{Model: "m", Production: 2}, "promote 3": Deployment{Model: "m", Production: 3},
			"set canary 2 at 10%": refused, "set canary 2 at 30%": refused, "abort canary 2": states["empty"],
			"rollback": refused, "alias challenger 3": Deployment{Model: "m", Aliases: map[string]int{"challenger": 3}},
		},
		"production": {
			"promote 2": Deployment{Model: "m", Production: 2, Previous: 1}, "promote 3": Deployment{Model: "m", Production: 3, Previous: 1},
			"set canary 2 at 10%": Deployment{Model: "m", Production: 1, Canary: 2, CanaryShare: 0.1, CanarySince: now, CanaryMode: spec.ModeSplit},
			"set canary 2 at 30%": Deployment{Model: "m", Production: 1, Canary: 2, CanaryShare: 0.3, CanarySince: now, CanaryMode: spec.ModeSplit},
			"abort canary 2":      states["production"], "rollback": refused,
			"alias challenger 3": Deployment{Model: "m", Production: 1, Aliases: map[string]int{"challenger": 3}},
		},
		"with previous": {
			"promote 2": states["with previous"], "promote 3": Deployment{Model: "m", Production: 3, Previous: 2},
			"set canary 2 at 10%": refused, "set canary 2 at 30%": refused, "abort canary 2": states["with previous"],
			"rollback":           Deployment{Model: "m", Production: 1, Previous: 2},
			"alias challenger 3": Deployment{Model: "m", Production: 2, Previous: 1, Aliases: map[string]int{"challenger": 3}},
		},
		"canary split": {
			"promote 2": Deployment{Model: "m", Production: 2, Previous: 1}, "promote 3": refused,
			"set canary 2 at 10%": states["canary split"],
			"set canary 2 at 30%": with(states["canary split"], func(d *Deployment) { d.CanaryShare, d.CanarySince = 0.3, now }),
			"abort canary 2":      cleared(states["canary split"]), "rollback": refused,
			"alias challenger 3": with(states["canary split"], func(d *Deployment) { d.Aliases = map[string]int{"challenger": 3} }),
		},
		"canary shadow": {
			"promote 2": Deployment{Model: "m", Production: 2, Previous: 1}, "promote 3": refused,
			// A split step for the version in shadow changes the mode and starts a new step.
			"set canary 2 at 10%": with(states["canary shadow"], func(d *Deployment) { d.CanaryMode, d.CanarySince = spec.ModeSplit, now }),
			"set canary 2 at 30%": Deployment{Model: "m", Production: 1, Canary: 2, CanaryShare: 0.3, CanarySince: now, CanaryMode: spec.ModeSplit},
			"abort canary 2":      cleared(states["canary shadow"]), "rollback": refused,
			"alias challenger 3": with(states["canary shadow"], func(d *Deployment) { d.Aliases = map[string]int{"challenger": 3} }),
		},
		"canary aliased": {
			"promote 2": states["canary aliased"], "promote 3": Deployment{Model: "m", Production: 3, Previous: 2, Aliases: map[string]int{"challenger": 3}},
			"set canary 2 at 10%": refused, "set canary 2 at 30%": refused, "abort canary 2": states["canary aliased"],
			"rollback":           Deployment{Model: "m", Production: 1, Previous: 2, Aliases: map[string]int{"challenger": 3}},
			"alias challenger 3": states["canary aliased"],
		},
	}
	for name, st := range states {
		for _, s := range steps {
			d := st
			if st.Aliases != nil {
				d.Aliases = map[string]int{}
				for k, v := range st.Aliases {
					d.Aliases[k] = v
				}
			}
			changed, err := s.do(&d)
			exp := want[name][s.name]
			require.NotNil(t, exp, "%s / %s: the table has a row", name, s.name)
			if exp == refused {
				require.ErrorIs(t, err, ErrConflict, "%s / %s", name, s.name)
				require.False(t, changed)
				continue
			}
			require.NoError(t, err, "%s / %s", name, s.name)
			require.Equal(t, exp, d, "%s / %s", name, s.name)
			require.Equal(t, !equalDeployment(st, d), changed, "%s / %s: changed reports whether the state moved", name, s.name)
		}
	}
	// Refused outright whatever the state.
	d := states["production"]
	_, err := d.SetCanary(1, 0.1, spec.ModeSplit, now)
	require.ErrorIs(t, err, ErrConflict, "production cannot be its own canary")
	_, err = d.SetCanary(2, 0, spec.ModeSplit, now)
	require.ErrorIs(t, err, ErrConflict, "zero share")
	_, err = d.SetCanary(2, 0.1, "sideways", now)
	require.ErrorIs(t, err, ErrConflict, "unknown mode")
	for _, a := range []string{"", "production", "canary", "shadow"} {
		_, err = d.SetAlias(a, 2)
		require.ErrorIs(t, err, ErrConflict, "reserved alias %q", a)
	}
	_, err = d.Promote(0)
	require.ErrorIs(t, err, ErrConflict)
	changed, err := (&Deployment{Aliases: map[string]int{"x": 2}}).SetAlias("x", 0)
	require.NoError(t, err)
	require.True(t, changed, "alias removed")
}

func equalDeployment(a, b Deployment) bool {
	if a.Production != b.Production || a.Previous != b.Previous || a.Canary != b.Canary || a.CanaryShare != b.CanaryShare ||
		!a.CanarySince.Equal(b.CanarySince) || a.CanaryMode != b.CanaryMode || len(a.Aliases) != len(b.Aliases) {
		return false
	}
	for k, v := range a.Aliases {
		if b.Aliases[k] != v {
			return false
		}
	}
	return true
}
