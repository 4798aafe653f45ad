package api

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/edge"
	"github.com/driftline/driftline/edge/agent"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
)

// fleetFixture is the API fixture with both versions of demand given a signed bundle.
func fleetFixture(t *testing.T) (*fixture, ed25519.PublicKey, ed25519.PrivateKey) {
	f := newFixture(t)
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	issueEdgeBundles(t, f, key)
	return f, pub, key
}

// issueEdgeBundles signs the bundles of demand's two versions with key.
func issueEdgeBundles(t *testing.T, f *fixture, key ed25519.PrivateKey) {
	ctx := context.Background()
	for n := 1; n <= 2; n++ {
		art, _, err := objstore.ReadAll(ctx, f.store, registry.ArtifactKey("demand", n))
		require.NoError(t, err)
		m, err := model.Unmarshal(art)
		require.NoError(t, err)
		q, err := m.Quantise()
		require.NoError(t, err)
		qa, err := q.Marshal()
		require.NoError(t, err)
		_, err = f.reg.IssueEdgeBundle(ctx, "demand", n, qa, nil, key)
		require.NoError(t, err)
	}
}

// An admin defines a fleet (others may not); a member device gets the release its place in
// the fleet assigns (the candidate below the rollout's share), with an ETag and a 304 while it
// is unchanged; a device outside the fleet, or without the edge role, gets nothing; the fleet
// and its devices' statuses are readable with view.
func TestFleetMembersGetTheirAssignedBundle(t *testing.T) {
	f, pub, key := fleetFixture(t)
	ctx := context.Background()
	erin := f.idp.token(t, "RS256", "erin", []string{"ml-platform"})
	dave := f.idp.token(t, "RS256", "dave", nil) // a data scientist of the retail models
	const path = "/v1/models/demand/fleets/stores"
	code, out := f.call(t, http.MethodPut, path, dave, `{"groups": ["edge-devices"]}`)
	require.Equal(t, http.StatusForbidden, code, "%v", out)
	code, out = f.call(t, http.MethodPut, path, erin, `{"groups": []}`)
	require.Equal(t, http.StatusBadRequest, code, "%v", out)
	code, out = f.call(t, http.MethodPut, path, erin, `{"groups": ["edge-devices"], "share": 1}`)
	require.Equal(t, http.StatusBadRequest, code, "a caller cannot set the share: %v", out)
	code, out = f.call(t, http.MethodPut, path, erin, `{"groups": ["edge-devices"]}`)
	require.Equal(t, http.StatusOK, code, "%v", out)

	get := func(token, etag string) (int, []byte, http.Header) {
		return getBundle(t, f.srv.URL+path+"/bundle", token, etag)
	}
	// Two devices: one below 10% by hash, one above.
	var low, high string
	for i := 0; low == "" || high == ""; i++ {
		d := fmt.Sprintf("store-%04d", i)
		if registry.DeviceShare("stores", d) < 0.1 {
			low = cmpOr(low, d)
		} else {
			high = cmpOr(high, d)
		}
	}
	lowTok, highTok := f.idp.token(t, "RS256", low, []string{"edge-devices"}), f.idp.token(t, "RS256", high, []string{"edge-devices"})
	code, body, h := get(lowTok, "")
	require.Equal(t, http.StatusOK, code, "%s", body)
	require.Equal(t, "1", h.Get("X-Driftline-Version"))
	code, _, _ = get(lowTok, h.Get("ETag"))
	require.Equal(t, http.StatusNotModified, code)

	rel, err := f.reg.ReissueEdgeBundle(ctx, "demand", 2, "test rollout", key)
	require.NoError(t, err)
	_, err = f.reg.UpdateFleet(ctx, "demand", "stores", registry.Change{Action: registry.TransFleetShare, Actor: "driftline", Key: "share"},
		func(fl *registry.Fleet, _ bool) (bool, error) {
			fl.Candidate, fl.Share, fl.Rollout = &rel, 0.1, "r"
			return true, nil
		})
	require.NoError(t, err)
	code, body, h2 := get(lowTok, h.Get("ETag"))
	require.Equal(t, http.StatusOK, code, "the device below the share moves")
	require.Equal(t, "2", h2.Get("X-Driftline-Version"))
	dev, err := edge.Load(body, edge.Options{Keys: []ed25519.PublicKey{pub}})
	require.NoError(t, err)
	require.Equal(t, rel.Counter, dev.Manifest.Counter)
	code, _, h3 := get(highTok, "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "1", h3.Get("X-Driftline-Version"), "the device above the share stays")

	code, body, _ = get(f.idp.token(t, "RS256", "store-9999", []string{"other-devices"}), "")
	require.Equal(t, http.StatusForbidden, code, "no edge role: %s", body)
	code, out = f.call(t, http.MethodPut, "/v1/models/demand/fleets/depots", erin, `{"members": ["depot-1"]}`)
	require.Equal(t, http.StatusOK, code, "%v", out)
	code, out = f.call(t, http.MethodGet, "/v1/models/demand/fleets/depots/bundle", lowTok, "")
	require.Equal(t, http.StatusForbidden, code, "a device of another fleet: %v", out)
	require.Contains(t, out["error"], "is not a member of fleet depots")

	req, err := http.NewRequest(http.MethodPut, f.srv.URL+path+"/status", strings.NewReader(`{"version": 2, "counter": 7, "predictions": 12, "device": "someone-else"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+lowTok)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	code, out = f.call(t, http.MethodGet, path, dave, "")
	require.Equal(t, http.StatusOK, code, "%v", out)
	var view FleetView
	raw, _ := json.Marshal(out)
	require.NoError(t, json.Unmarshal(raw, &view))
	require.Len(t, view.Devices, 1)
	require.Equal(t, DeviceHash(low), view.Devices[0].Device, "the device is who its token says, not what it claims")
	require.Equal(t, uint64(12), view.Devices[0].Predictions)
	require.WithinDuration(t, time.Now(), view.Devices[0].ReportedAt, time.Minute)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// A rollout is of the production version only, started by someone who may promote, as the
// token says (the request cannot name a requester or guardrails); stopping it needs rollback;
// devices can do neither.
func TestFleetRolloutsAreOfProductionAndByPromoters(t *testing.T) {
	f, _, _ := fleetFixture(t)
	erin := f.idp.token(t, "RS256", "erin", []string{"ml-platform"})
	alice := f.idp.token(t, "RS256", "alice", nil) // approver of demand: rollback, not promote
	device := f.idp.token(t, "RS256", "store-1", []string{"edge-devices"})
	const path = "/v1/models/demand/fleets/stores"
	code, out := f.call(t, http.MethodPost, path+"/rollouts", erin, `{"version": 1}`)
	require.Equal(t, http.StatusNotFound, code, "no such fleet: %v", out)
	code, out = f.call(t, http.MethodPut, path, erin, `{"groups": ["edge-devices"]}`)
	require.Equal(t, http.StatusOK, code, "%v", out)
	code, out = f.call(t, http.MethodPost, path+"/rollouts", erin, `{"version": 2, "reason": "x"}`)
	require.Equal(t, http.StatusConflict, code, "v2 is not production: %v", out)
	require.Contains(t, out["error"], "a fleet runs only what the loop promoted")
	code, out = f.call(t, http.MethodPost, path+"/rollouts", erin, `{"version": 1, "requester": "mallory"}`)
	require.Equal(t, http.StatusBadRequest, code, "%v", out)
	code, _ = f.call(t, http.MethodPost, path+"/rollouts", device, `{"version": 1}`)
	require.Equal(t, http.StatusForbidden, code)
	code, _ = f.call(t, http.MethodPost, path+"/rollouts", alice, `{"version": 1}`)
	require.Equal(t, http.StatusForbidden, code)
	code, out = f.call(t, http.MethodPost, path+"/rollouts", erin, `{"version": 1, "reason": "stores get v1"}`)
	require.Equal(t, http.StatusOK, code, "%v", out)
	require.Equal(t, "fleet/demand/stores", out["workflow_id"])
	require.Len(t, f.runs.rollouts, 1)
	require.Equal(t, "erin", f.runs.rollouts[0].Requester)
	require.Equal(t, 1, f.runs.rollouts[0].Version)

	code, _ = f.call(t, http.MethodPost, path+"/rollouts/stop", device, `{"reason": "x"}`)
	require.Equal(t, http.StatusForbidden, code)
	code, out = f.call(t, http.MethodPost, path+"/rollouts/stop", alice, `{"reason": "stores report errors"}`)
	require.Equal(t, http.StatusOK, code, "%v", out)
	require.Equal(t, "alice", f.runs.stops[0].By)
}

// Where the spec keeps data on the devices, a device is told so with its bundle, and a log
// record with input values is refused naming its line; a sketch is accepted, an oversized
// one refused; the sketch reference is of a version the fleet runs only.
func TestDataStaysOnTheDevicesWhereTheSpecSaysSo(t *testing.T) {
	f, _, _ := fleetFixture(t)
	ctx := context.Background()
	_, _, etag, err := f.reg.CurrentSpec(ctx, "demand")
	require.NoError(t, err)
	raw := strings.Replace(specYAML(t), "canary:", "edge:\n  data_stays_on_device: true\ncanary:", 1)
	sp2, err := spec.Parse([]byte(raw))
	require.NoError(t, err)
	require.True(t, sp2.Edge.DataStaysOnDevice)
	_, _, err = f.reg.ApplySpec(ctx, sp2, []byte(raw), etag, "grace", "devices keep their data", nil)
	require.NoError(t, err)
	erin := f.idp.token(t, "RS256", "erin", []string{"ml-platform"})
	code, out := f.call(t, http.MethodPut, "/v1/models/demand/fleets/stores", erin, `{"groups": ["edge-devices"]}`)
	require.Equal(t, http.StatusOK, code, "%v", out)
	device := f.idp.token(t, "RS256", "store-1", []string{"edge-devices"})

	req, err := http.NewRequest(http.MethodGet, f.srv.URL+"/v1/models/demand/fleets/stores/bundle", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+device)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, agent.DataSketchesOnly, resp.Header.Get(agent.DataHeader))

	put := func(segment int, body string) (int, map[string]any) {
		return f.call(t, http.MethodPut, fmt.Sprintf("/v1/models/demand/fleets/stores/log/%d", segment), device, body)
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	code, out = put(0, `{"time":"`+now+`","kind":"prediction","id":"a","version":1,"prediction":1}`+"\n"+
		`{"time":"`+now+`","kind":"prediction","id":"b","version":1,"inputs":[3.5],"prediction":1}`+"\n")
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, out["error"], "segment 0 line 2: a record with input values: the spec of demand keeps data on the devices")
	code, out = put(0, `{"time":"`+now+`","kind":"sketch","id":"s1","version":1,"sketch":{"version":1,"count":2,"counts":[[1,1]],"nulls":[0]}}`+"\n")
	require.Equal(t, http.StatusCreated, code, "%v", out)
	big := `{"time":"` + now + `","kind":"sketch","id":"s2","version":1,"sketch":{"version":1,"count":2,"counts":[[` + strings.Repeat("1,", 6000) + `1]],"nulls":[0]}}`
	code, out = put(1, big+"\n")
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, out["error"], "a sketch of")

	code, out = f.call(t, http.MethodGet, "/v1/models/demand/fleets/stores/reference?version=2", device, "")
	require.Equal(t, http.StatusBadRequest, code, "v2 is not the fleet's: %v", out)
	code, out = f.call(t, http.MethodGet, "/v1/models/demand/fleets/stores/reference?version=1", device, "")
	require.Equal(t, http.StatusOK, code, "%v", out)
	require.EqualValues(t, 1, out["version"])
}
