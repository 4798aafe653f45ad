package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/edge/agent"
	"github.com/driftline/driftline/objstore"
)

// A device offline for a while keeps its predictions and labels on disk and uploads them when
// the API is back: every record arrives, none twice, even when an answer is lost and the
// segment sent again; a device's segments are kept under its token's subject, not a name it
// claims; a caller without the edge role is refused, and so is a malformed segment.
func TestADeviceLogArrivesOnceAfterBeingOffline(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	device := f.idp.token(t, "RS256", "store-0042", []string{"edge-devices"})
	var offline, loseAnswer atomic.Bool
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if offline.Load() {
			http.Error(w, "no network", http.StatusBadGateway)
			return
		}
		if loseAnswer.Swap(false) { // the API keeps the segment, the answer never reaches the device
			rec := httptest.NewRecorder()
			f.server.Handler().ServeHTTP(rec, r)
			http.Error(w, "connection reset", http.StatusBadGateway)
			return
		}
		f.server.Handler().ServeHTTP(w, r)
	}))
	defer front.Close()
	url := front.URL + "/v1/models/demand/edge-log"

	log, err := agent.OpenLog(t.TempDir())
	require.NoError(t, err)
	log.SegmentRecords = 10
	offline.Store(true)
	const n = 95
	for i := range n {
		p := float64(i)
		require.NoError(t, log.Append(agent.Record{Time: time.Unix(int64(i), 0).UTC(), Kind: "prediction", ID: fmt.Sprint("p", i), Version: 1,
			Inputs: []*float64{&p, nil}, Prediction: &p}))
	}
	require.NoError(t, log.Flush())
	sent, err := log.Upload(ctx, url, device, nil)
	require.Error(t, err, "offline")
	require.Zero(t, sent)

	offline.Store(false)
	loseAnswer.Store(true)
	sent, err = log.Upload(ctx, url, device, nil)
	require.Error(t, err, "the first answer is lost")
	require.Zero(t, sent)
	sent, err = log.Upload(ctx, url, device, nil)
	require.NoError(t, err)
	require.Equal(t, 10, sent, "the segment whose answer was lost is sent again, then the rest")

	objs, err := f.store.List(ctx, "edge/demand/devices/")
	require.NoError(t, err)
	require.Len(t, objs, 10)
	records := 0
	for _, o := range objs {
		require.Equal(t, EdgeLogKey("demand", "store-0042", 0)[:len("edge/demand/devices/")+24], o.Key[:len("edge/demand/devices/")+24], "under the token's subject")
		data, _, err := objstore.ReadAll(ctx, f.store, o.Key)
		require.NoError(t, err)
		records += strings.Count(string(data), "\n")
	}
	require.Equal(t, n, records, "every record, once")

	// The same segment number with other content: refused; a bad line: refused naming it.
	put := func(token, seg, body string) int {
		req, _ := http.NewRequest(http.MethodPut, url+"/"+seg, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusConflict, put(device, "0", `{"time":"2026-01-01T00:00:00Z","kind":"label","id":"p0","label":3}`+"\n"))
	require.Equal(t, http.StatusBadRequest, put(device, "99", `{"kind":"prediction","id":"x","surprise":1}`+"\n"))
	require.Equal(t, http.StatusForbidden, put(f.idp.token(t, "RS256", "dave", nil), "100", `{"kind":"label","id":"p1","label":2}`+"\n"),
		"a data scientist is not a device")
}
