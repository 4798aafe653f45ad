package testsuite

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/objstore/gcsstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/registry"
)

// The loop with Google Cloud Storage as its store (fake-gcs-server, the processes pointed at
// it with --store gs://... and STORAGE_EMULATOR_HOST, as on Google Cloud with application
// default credentials): the Parquet days, the registry, the reports and the prediction log on
// GCS; v1 trained and promoted, then v2 on the holiday weeks, canaried on live traffic through
// serving and promoted, its lineage pinning gs:// files.
func TestTheLoopRunsOnGoogleCloudStorage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	st := stack.New(t, stack.DevServer, "driftline-gcs")
	c := st.Dial(ctx, client.Options{})
	cfg := stack.StartFakeGCS(t, "driftline-e2e")
	store, err := gcsstore.New(ctx, cfg)
	require.NoError(t, err)
	st.SetEnv("DRIFTLINE_STORE=gs://driftline-e2e", "STORAGE_EMULATOR_HOST="+strings.TrimSuffix(strings.TrimPrefix(cfg.Endpoint, "http://"), "/storage/v1/"))
	serveURL := loopProcesses(t, st, stack.BuildDriftline(t))
	sp := firstRun(ctx, t, c, store, st.Root)

	res, _, byVersion := runUnderTraffic(ctx, t, c, serveURL, pipeline.RunInput{Spec: sp, From: "2026-10-03", To: "2026-10-30", RequestedBy: "testsuite"})
	require.Equal(t, pipeline.OutcomePromoted, res.Outcome, res.Reason)
	require.Equal(t, 2, res.Version)
	require.Contains(t, res.Reason, "after canary")
	require.Positive(t, byVersion[2], "v2 answered live traffic from GCS")

	v, err := registry.New(store).Version(ctx, "demand", 2)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(v.Lineage.SnapshotURI, "gs://driftline-e2e/"), v.Lineage.SnapshotURI)
	require.NotEmpty(t, v.Lineage.SnapshotFiles)
	logs, err := store.List(ctx, "predictions/demand/")
	require.NoError(t, err)
	require.NotEmpty(t, logs, "the prediction log is on GCS")
	t.Logf("v2 on GCS: %s; %d prediction log objects", res.Reason, len(logs))
}
