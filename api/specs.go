package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
)

// SpecRequest applies a model's spec (YAML) as its next registered version. ExpectedVersion
// (optional) makes it conditional on the version the caller read (0: none yet; -1 or absent:
// whatever is current).
type SpecRequest struct {
	Spec            string `json:"spec"`
	Reason          string `json:"reason"`
	ExpectedVersion *int   `json:"expected_version,omitempty"`
}

// SpecResponse is a registered spec version: its record and, for GET, its YAML.
type SpecResponse struct {
	registry.SpecVersion
	Changed bool          `json:"changed"`
	Changes []spec.Change `json:"changes,omitempty"`
	YAML    string        `json:"yaml,omitempty"`
	Floors  []string      `json:"organisation_floors,omitempty"`
}

// applySpec registers a model's spec: change_spec on the model, and change_governance too when
// a governed field changes; refused when the spec loosens an organisation floor, whoever asks.
// The audit record holds the diff.
func (s *Server) applySpec(w http.ResponseWriter, r *http.Request) {
	c, ok := s.begin(w, r, ActChangeSpec, r.PathValue("model"))
	if !ok {
		return
	}
	var req SpecRequest
	if err := decode(r, w, &req); err != nil {
		c.fail(err)
		return
	}
	next, err := spec.Parse([]byte(req.Spec))
	switch {
	case err != nil:
		c.fail(fmt.Errorf("%w: spec: %v", errBadRequest, err))
		return
	case next.Model != c.model:
		c.fail(fmt.Errorf("%w: the spec is for model %q, the path names %q", errBadRequest, next.Model, c.model))
		return
	case strings.TrimSpace(req.Reason) == "":
		c.fail(fmt.Errorf("%w: a reason is required", errBadRequest))
		return
	}
	cur, ver, etag, err := s.Registry.CurrentSpec(r.Context(), c.model)
	var old *spec.Spec
	switch {
	case errors.Is(err, registry.ErrNotFound):
	case err != nil:
		c.fail(err)
		return
	default:
		old = &cur
	}
	if req.ExpectedVersion != nil && *req.ExpectedVersion >= 0 && *req.ExpectedVersion != ver.Version {
		c.fail(fmt.Errorf("%w: the spec of %s is at v%d, not v%d: read it again", errConflict, c.model, ver.Version, *req.ExpectedVersion))
		return
	}
	changes := spec.Diff(old, next)
	governed := spec.GovernanceChanges(old, next)
	c.detail["from_version"], c.detail["hash"], c.detail["changes"], c.detail["governance_changes"] = ver.Version, next.Hash, changes, governed
	if len(governed) > 0 && !c.authorize(ActChangeGovernance, c.model, nil) {
		return
	}
	g, err := s.Engine.Organisation(r.Context(), c.model, next)
	if err != nil {
		reply(w, http.StatusInternalServerError, ErrorResponse{Error: err.Error()})
		return
	}
	if len(g.Violations) > 0 {
		c.refuse(http.StatusForbidden, "forbidden", "the spec loosens the organisation's floors: "+strings.Join(g.Violations, "; "))
		return
	}
	if !c.permit(req.Reason) {
		return
	}
	applied, changed, err := s.Registry.ApplySpec(r.Context(), next, []byte(req.Spec), etag, c.who.ID, req.Reason, governed)
	if err != nil {
		c.fail(err)
		return
	}
	c.done(SpecResponse{SpecVersion: applied, Changed: changed, Changes: changes})
}

// getSpec answers the model's current spec (view).
func (s *Server) getSpec(w http.ResponseWriter, r *http.Request) {
	c, ok := s.begin(w, r, ActView, r.PathValue("model"))
	if !ok {
		return
	}
	_, ver, _, err := s.Registry.CurrentSpec(r.Context(), c.model)
	if err != nil {
		c.fail(err)
		return
	}
	raw, err := s.Registry.SpecSource(r.Context(), c.model)
	if err != nil {
		c.fail(err)
		return
	}
	reply(w, http.StatusOK, SpecResponse{SpecVersion: ver, YAML: string(raw)})
}
