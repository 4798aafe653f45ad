package objstore_test

import (
	"context"
	"testing"

	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/objstore/objstoretest"
	"github.com/stretchr/testify/require"
)

func TestMemContract(t *testing.T) { objstoretest.ContractTest(t, objstore.NewMem()) }

func TestJSONWritesAndCreateOnce(t *testing.T) {
	ctx := context.Background()
	b := objstore.NewMem()
	require.NoError(t, objstore.PutJSON(ctx, b, "a.json", map[string]int{"n": 1}))
	created, err := objstore.CreateJSONOnce(ctx, b, "a.json", map[string]int{"n": 2})
	require.NoError(t, err)
	require.False(t, created, "an object already there is left as it is")
	data, _, err := objstore.ReadAll(ctx, b, "a.json")
	require.NoError(t, err)
	require.JSONEq(t, `{"n":1}`, string(data))
	created, err = objstore.CreateJSONOnce(ctx, b, "b.json", map[string]int{"n": 3})
	require.NoError(t, err)
	require.True(t, created)
	require.ErrorContains(t, objstore.PutJSON(ctx, b, "c.json", func() {}), "encode c.json")
}
