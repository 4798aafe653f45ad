package serving

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/driftline/driftline/internal/budget"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/serving/oippb"
)

// Request bodies in flight share one budget: while a request holds its share, another that
// would take the total over it gets 503 with Retry-After, and gets through once the first
// is answered. The server's handler applies it (a budget smaller than one body refuses it).
func TestRequestBodiesShareOneMemoryBudget(t *testing.T) {
	b := budget.New(Expansion << 20) // one 600 KiB body fits, two do not
	inside, release := make(chan struct{}), make(chan struct{})
	h := budgeted(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inside <- struct{}{}
		<-release
		w.WriteHeader(http.StatusOK)
	}))
	body := strings.Repeat("x", 600<<10)
	first := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		h.ServeHTTP(first, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)))
		close(done)
	}()
	<-inside
	second := httptest.NewRecorder()
	h.ServeHTTP(second, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)))
	require.Equal(t, http.StatusServiceUnavailable, second.Code)
	require.Equal(t, "1", second.Header().Get("Retry-After"))
	require.Contains(t, second.Body.String(), "serve --body-budget")
	release <- struct{}{}
	<-done
	require.Equal(t, http.StatusOK, first.Code)
	require.Zero(t, b.Used(), "released")
	go func() { <-inside; release <- struct{}{} }()
	third := httptest.NewRecorder()
	h.ServeHTTP(third, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)))
	require.Equal(t, http.StatusOK, third.Code)

	store := objstore.NewMem()
	r := registry.New(store)
	s, err := New(Options{Store: store, Models: []string{"demand"}, BodyBudget: 100})
	require.NoError(t, err)
	deploy(t, r, register(t, r, "r1", 2, false), 0, 0)
	require.NoError(t, s.watchers["demand"].poll(context.Background()))
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/models/demand:predict",
		strings.NewReader(`{"features":{"x":1},"attributes":{"pad":"`+strings.Repeat("p", 200)+`"}}`)))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
}

// gRPC calls share the budget: a message larger than what is left is RESOURCE_EXHAUSTED.
func TestGRPCCallsShareTheBudget(t *testing.T) {
	store := objstore.NewMem()
	r := registry.New(store)
	s, err := New(Options{Store: store, Models: []string{"demand"}, BodyBudget: 64 * Expansion})
	require.NoError(t, err)
	deploy(t, r, register(t, r, "r1", 2, false), 0, 0)
	require.NoError(t, s.watchers["demand"].poll(context.Background()))
	c := grpcClient(t, s)
	_, err = c.ModelInfer(context.Background(), &oippb.ModelInferRequest{ModelName: "demand", Id: strings.Repeat("i", 100),
		Inputs: []*oippb.ModelInferRequest_InferInputTensor{fp32("x", []int64{1}, 1)}})
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "serve --body-budget")
	_, err = c.ModelInfer(context.Background(), &oippb.ModelInferRequest{ModelName: "demand",
		Inputs: []*oippb.ModelInferRequest_InferInputTensor{fp32("x", []int64{1}, 1)}})
	require.NotEqual(t, codes.ResourceExhausted, status.Code(err), "a small call fits: %v", err)
}
