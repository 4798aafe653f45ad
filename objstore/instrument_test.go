package objstore_test

import (
	"context"
	"io"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/objstore/objstoretest"
)

func TestCountingPassesTheContract(t *testing.T) {
	objstoretest.ContractTest(t, objstore.WrapWithCounting(objstore.NewMem(), nil))
}

func TestCountingCountsRequestsAndBytes(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	m := objstore.NewStoreMetrics(reg)
	c := objstore.WrapWithCounting(objstore.NewMem(), m)
	_, err := c.Put(ctx, "a", []byte("hello world"), objstore.PutOptions{IfNoneMatch: true})
	require.NoError(t, err)
	_, err = c.Put(ctx, "a", []byte("again"), objstore.PutOptions{IfNoneMatch: true})
	require.ErrorIs(t, err, objstore.ErrPreconditionFailed)
	rc, _, err := c.Get(ctx, "a", objstore.GetOptions{Offset: 6, Length: 5})
	require.NoError(t, err)
	b, _ := io.ReadAll(rc)
	require.NoError(t, rc.Close())
	require.Equal(t, "world", string(b))
	_, _, err = objstore.ReadAll(ctx, c, "a")
	require.NoError(t, err)
	_, _, err = c.Get(ctx, "missing", objstore.GetOptions{})
	require.ErrorIs(t, err, objstore.ErrNotFound)
	head, err := c.Head(ctx, "a")
	require.NoError(t, err)
	_, _, err = c.Get(ctx, "a", objstore.GetOptions{IfNoneMatch: head.ETag})
	require.ErrorIs(t, err, objstore.ErrNotModified, "a conditional read of the same ETag, counted as a request, not an error")
	_, err = c.Head(ctx, "a")
	require.NoError(t, err)
	_, err = c.List(ctx, "")
	require.NoError(t, err)
	st := c.Stats()
	require.Equal(t, objstore.OpStats{Requests: 4, Errors: 1, Bytes: 16}, st[objstore.OpGet])
	require.Equal(t, objstore.OpStats{Requests: 2, Errors: 1, Bytes: 11}, st[objstore.OpPut])
	require.Equal(t, int64(2), st[objstore.OpHead].Requests)
	require.Equal(t, map[string]int64{"a": 16}, c.BytesRead())
	require.Equal(t, 16.0, testutil.ToFloat64(m.Bytes.WithLabelValues("get")))
	require.Equal(t, 1.0, testutil.ToFloat64(m.Errors.WithLabelValues("put")))
	require.Equal(t, 0.0, testutil.ToFloat64(m.Requests.WithLabelValues("delete")), "pre-initialised")
	c.Reset()
	require.Empty(t, c.BytesRead())
	require.Zero(t, c.Stats()[objstore.OpGet].Requests)
}

func TestWrapWithMetricsKeepsNoKeys(t *testing.T) {
	ctx := context.Background()
	c := objstore.WrapWithMetrics(objstore.NewMem(), nil)
	_, err := c.Put(ctx, "a", []byte("x"), objstore.PutOptions{})
	require.NoError(t, err)
	_, _, err = objstore.ReadAll(ctx, c, "a")
	require.NoError(t, err)
	require.Empty(t, c.BytesRead(), "fixed memory in a long-running worker")
	require.Equal(t, int64(1), c.Stats()[objstore.OpGet].Bytes)
}
