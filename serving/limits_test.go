package serving

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/serving/oippb"
)

// allocated is how many bytes fn allocates on the heap.
func allocated(fn func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	fn()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// allocationBound is what a request of n bytes may allocate: a fixed allowance and a
// multiple of its size (a row costs more than its bytes on the wire, a bounded number of rows).
func allocationBound(n int) uint64 { return 64<<20 + 512*uint64(n) }

// A request's size is checked against its shapes before anything is allocated: an [N] tensor
// of 400,000 one-byte values in an 800 KB REST body, or of 4 million in a 4 MiB gRPC message, is refused naming the
// limit (413 / RESOURCE_EXHAUSTED) with a bounded allocation, and so is a batch to explain
// over the explanation limit.
func TestRequestsOverTheSizeLimitsAreRefusedBeforeAllocating(t *testing.T) {
	b := objstore.NewMem()
	r := registry.New(b)
	s, err := New(Options{Store: b, Models: []string{"demand"}, LabelKey: testLabelKey, MaxRows: 5000, MaxExplainRows: 100})
	require.NoError(t, err)
	deploy(t, r, register(t, r, "r1", 2, false), 0, 0)
	require.NoError(t, s.watchers["demand"].poll(context.Background()))
	h := s.Handler()
	infer := func(body string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v2/models/demand/infer", strings.NewReader(body)))
		return rec
	}
	ones := func(n int) string { return strings.TrimSuffix(strings.Repeat("1,", n), ",") }
	big := fmt.Sprintf(`{"inputs":[{"name":"x","shape":[%d],"datatype":"UINT8","data":[%s]}]}`, 400_000, ones(400_000))
	var rec *httptest.ResponseRecorder
	used := allocated(func() { rec = infer(big) })
	require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), "serve --max-rows")
	require.Less(t, used, allocationBound(len(big)), "allocated %d bytes", used)
	rec = infer(`{"inputs":[{"name":"x","shape":[1099511627776],"datatype":"UINT8","data":[1]}]}`)
	require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), "serve --max-values")
	rec = infer(fmt.Sprintf(`{"inputs":[{"name":"x","shape":[200],"datatype":"FP64","data":[%s]}],"parameters":{"explain":true}}`, ones(200)))
	require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), "explains at most 100")
	rec = infer(fmt.Sprintf(`{"inputs":[{"name":"x","shape":[200],"datatype":"FP64","data":[%s]}]}`, ones(200)))
	require.Equal(t, http.StatusOK, rec.Code, "within the limits: %s", rec.Body.String())

	g := &grpcInference{s: s}
	raw := make([]byte, 4<<20)
	var gerr error
	used = allocated(func() {
		_, gerr = g.ModelInfer(context.Background(), &oippb.ModelInferRequest{ModelName: "demand",
			Inputs:           []*oippb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "UINT8", Shape: []int64{4 << 20}}},
			RawInputContents: [][]byte{raw}})
	})
	require.Equal(t, codes.ResourceExhausted, status.Code(gerr), "%v", gerr)
	require.Contains(t, status.Convert(gerr).Message(), "serve --max-values")
	require.Less(t, used, allocationBound(len(raw)), "allocated %d bytes", used)
}
