package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/driftline/driftline/edge/agent"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
)

// ActManageFleet defines a fleet's members (docs/edge.md, "Fleets").
const ActManageFleet = "manage_fleet"

// FleetRequest sets a fleet's members: device ids (their tokens' subjects) and token groups.
type FleetRequest = registry.FleetDefinition

// FleetView is a fleet with what its devices last reported.
type FleetView struct {
	Fleet   registry.Fleet `json:"fleet"`
	Devices []DeviceStatus `json:"devices"`
}

// DeviceStatus is what a device reports about itself (PUT .../fleets/{fleet}/status, an
// agent.Status); the API adds who it is (a hash of its token's subject, whatever the device
// sent) and when it reported.
type DeviceStatus struct {
	Device     string    `json:"device,omitempty"`
	ReportedAt time.Time `json:"reported_at,omitzero"`
	agent.Status
}

// FleetRolloutRequest rolls the model's production version out to a fleet.
type FleetRolloutRequest struct {
	Version int    `json:"version"`
	Reason  string `json:"reason"`
}

// FleetRolloutStarted names the rollout's workflow.
type FleetRolloutStarted struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
}

// FleetStopRequest stops a fleet's rollout: the fleet rolls back.
type FleetStopRequest struct {
	Reason string `json:"reason"`
}

func (s *Server) fleetRoutes(mux *http.ServeMux) {
	const p = "/v1/models/{model}/fleets/{fleet}"
	mux.HandleFunc("PUT "+p, s.putFleet)
	mux.HandleFunc("GET "+p, s.getFleet)
	mux.HandleFunc("GET "+p+"/bundle", s.fleetBundle)
	mux.HandleFunc("PUT "+p+"/log/{segment}", s.fleetLog)
	mux.HandleFunc("PUT "+p+"/status", s.fleetStatus)
	mux.HandleFunc("GET "+p+"/reference", s.fleetReference)
	mux.HandleFunc("POST "+p+"/rollouts", s.startFleetRollout)
	mux.HandleFunc("POST "+p+"/rollouts/stop", s.stopFleetRollout)
}

// fleetCall begins a call on a fleet: the fleet's name is checked and kept in the audit.
func (s *Server) fleetCall(w http.ResponseWriter, r *http.Request, action string) (*call, string, bool) {
	c, ok := s.begin(w, r, action, r.PathValue("model"))
	if !ok {
		return nil, "", false
	}
	name := r.PathValue("fleet")
	if !spec.ValidName(name) {
		c.fail(fmt.Errorf("%w: %q is not a fleet name (lowercase letters, digits, _ and -, at most 63)", errBadRequest, clip(name, 64)))
		return nil, "", false
	}
	c.detail["fleet"] = name
	return c, name, true
}

// device begins a device's call: the caller must hold the edge action on the model and be a
// member of the fleet by its token (its subject, or one of its groups).
func (s *Server) device(w http.ResponseWriter, r *http.Request) (*call, registry.Fleet, bool) {
	c, name, ok := s.fleetCall(w, r, ActEdgeReport)
	if !ok {
		return nil, registry.Fleet{}, false
	}
	f, _, err := s.Registry.ReadFleet(r.Context(), c.model, name)
	if err != nil {
		c.fail(err)
		return nil, f, false
	}
	if !f.Member(c.who.ID, c.who.Groups) {
		c.refuse(http.StatusForbidden, "denied", fmt.Sprintf("%s is not a member of fleet %s of %s", c.who.ID, name, c.model))
		return nil, f, false
	}
	return c, f, true
}

func (s *Server) putFleet(w http.ResponseWriter, r *http.Request) {
	c, name, ok := s.fleetCall(w, r, ActManageFleet)
	if !ok {
		return
	}
	var req FleetRequest
	if err := decode(r, w, &req); err != nil {
		c.fail(err)
		return
	}
	c.detail["members"], c.detail["groups"] = len(req.Members), req.Groups
	if !c.permit("") {
		return
	}
	f, err := s.Registry.ApplyFleet(r.Context(), c.model, name, req, registry.Change{Actor: c.who.ID,
		Key: fmt.Sprintf("api/fleet/%s/%s/%d", c.model, name, time.Now().UnixNano())})
	if errors.Is(err, registry.ErrInvalid) {
		err = fmt.Errorf("%w: %v", errBadRequest, err)
	}
	if err != nil {
		c.fail(err)
		return
	}
	c.done(f)
}

func (s *Server) getFleet(w http.ResponseWriter, r *http.Request) {
	c, name, ok := s.fleetCall(w, r, ActView)
	if !ok {
		return
	}
	f, _, err := s.Registry.ReadFleet(r.Context(), c.model, name)
	if err != nil {
		c.fail(err)
		return
	}
	view := FleetView{Fleet: f, Devices: []DeviceStatus{}}
	objs, err := s.Registry.Store.List(r.Context(), registry.FleetStatusPrefix(c.model, name))
	if err != nil {
		c.fail(err)
		return
	}
	for _, o := range objs {
		if len(o.Key) < 12 || o.Key[len(o.Key)-12:] != "/status.json" {
			continue
		}
		data, _, err := objstore.ReadAll(r.Context(), s.Registry.Store, o.Key)
		if err != nil {
			c.fail(err)
			return
		}
		var st DeviceStatus
		if json.Unmarshal(data, &st) == nil {
			view.Devices = append(view.Devices, st)
		}
	}
	reply(w, http.StatusOK, view)
}

// fleetBundle serves the bundle the calling device should run: the fleet's candidate when
// the device's place (registry.DeviceShare) is below the rollout's share, the stable release
// otherwise; with the object's ETag, so an unchanged assignment costs a 304.
func (s *Server) fleetBundle(w http.ResponseWriter, r *http.Request) {
	c, f, ok := s.device(w, r)
	if !ok {
		return
	}
	rel := f.Assign(c.who.ID)
	obj, err := s.Registry.Store.Head(r.Context(), rel.Bundle) // a poll that changes nothing reads no bundle
	if err != nil {
		c.fail(err)
		return
	}
	etag := strconv.Quote(obj.ETag)
	w.Header().Set("ETag", etag)
	if c.inputsStay() {
		w.Header().Set(agent.DataHeader, agent.DataSketchesOnly)
	}
	w.Header().Set("X-Driftline-Version", strconv.Itoa(rel.Version))
	w.Header().Set("X-Driftline-Counter", strconv.FormatUint(rel.Counter, 10))
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	data, _, err := objstore.ReadAll(r.Context(), s.Registry.Store, rel.Bundle)
	if err != nil {
		c.fail(err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(data)
}

// fleetReference serves what a device needs to sketch its inputs for a version its fleet
// runs (registry.SketchReference).
func (s *Server) fleetReference(w http.ResponseWriter, r *http.Request) {
	c, f, ok := s.device(w, r)
	if !ok {
		return
	}
	n, err := strconv.Atoi(r.URL.Query().Get("version"))
	if err != nil || (f.Stable == nil || n != f.Stable.Version) && (f.Candidate == nil || n != f.Candidate.Version) {
		c.fail(fmt.Errorf("%w: version %q: want a version fleet %s runs", errBadRequest, clip(r.URL.Query().Get("version"), 12), f.Name))
		return
	}
	p, err := s.Registry.LoadProfile(r.Context(), c.model, n)
	if err != nil {
		c.fail(err)
		return
	}
	reply(w, http.StatusOK, registry.SketchReference(p, n))
}

func (s *Server) fleetLog(w http.ResponseWriter, r *http.Request) {
	c, f, ok := s.device(w, r)
	if !ok {
		return
	}
	dev := DeviceHash(c.who.ID)
	c.keepLog(func(n uint64, first time.Time) string { return registry.FleetLogKey(c.model, f.Name, dev, first, n) }, c.inputsStay())
}

// fleetStatus keeps what the device reports about itself (the latest report replaces the
// one before).
func (s *Server) fleetStatus(w http.ResponseWriter, r *http.Request) {
	c, f, ok := s.device(w, r)
	if !ok {
		return
	}
	var st DeviceStatus
	if err := decode(r, w, &st); err != nil {
		c.fail(err)
		return
	}
	st.Device, st.ReportedAt, st.LastError = DeviceHash(c.who.ID), time.Now().UTC(), clip(st.LastError, 512)
	body, _ := json.Marshal(st)
	key := registry.FleetStatusKey(c.model, f.Name, st.Device)
	if _, err := s.Registry.Store.Put(r.Context(), key, body, objstore.PutOptions{ContentType: "application/json"}); err != nil {
		c.fail(err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// startFleetRollout starts the rollout of the model's production version to the fleet: the
// edge runs only what passed the loop (evaluation, policy, approval, the serving canary).
func (s *Server) startFleetRollout(w http.ResponseWriter, r *http.Request) {
	c, name, ok := s.fleetCall(w, r, ActPromote)
	if !ok {
		return
	}
	var req FleetRolloutRequest
	if err := decode(r, w, &req); err != nil {
		c.fail(err)
		return
	}
	c.detail["version"] = req.Version
	if _, _, err := s.Registry.ReadFleet(r.Context(), c.model, name); err != nil {
		c.fail(err)
		return
	}
	d, _, err := s.Registry.Deployment(r.Context(), c.model)
	if err != nil {
		c.fail(err)
		return
	}
	if req.Version != d.Production {
		c.fail(fmt.Errorf("%w: v%d is not the production version of %s (v%d): a fleet runs only what the loop promoted", errConflict, req.Version, c.model, d.Production))
		return
	}
	if !c.permit(req.Reason) {
		return
	}
	id, err := s.Runs.StartFleetRollout(r.Context(), pipeline.FleetRolloutInput{Model: c.model, Fleet: name, Version: req.Version,
		Requester: c.who.ID, Reason: req.Reason})
	if err != nil {
		c.fail(err)
		return
	}
	c.done(FleetRolloutStarted{WorkflowID: pipeline.FleetWorkflowID(c.model, name), RunID: id})
}

func (s *Server) stopFleetRollout(w http.ResponseWriter, r *http.Request) {
	c, name, ok := s.fleetCall(w, r, ActRollback)
	if !ok {
		return
	}
	var req FleetStopRequest
	if err := decode(r, w, &req); err != nil {
		c.fail(err)
		return
	}
	if !c.permit(req.Reason) {
		return
	}
	if err := s.Runs.StopFleetRollout(r.Context(), c.model, name, pipeline.FleetStop{By: c.who.ID, Reason: req.Reason}); err != nil {
		c.fail(err)
		return
	}
	c.done(map[string]string{"stopped": pipeline.FleetWorkflowID(c.model, name)})
}
