package serving

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/registry"
)

// BenchmarkPredictHandler is the predict handler's own cost (no network): decoding, scoring,
// the prediction log record, metrics and the answer, for the common single-record body.
func BenchmarkPredictHandler(b *testing.B) {
	store := objstore.NewMem()
	r := registry.New(store)
	t := &testing.T{}
	v := register(t, r, "bench", 2, true)
	deploy(t, r, v, 0, 0)
	s, err := New(Options{Store: store, Models: []string{"demand"}, Poll: time.Hour, LogFlush: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.watchers["demand"].poll(context.Background()); err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	body := []byte(`{"routing_key":"store-1/item-1","features":{"x":9.5,"z":1}}`)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		req := httptest.NewRequest(http.MethodPost, "/v1/models/demand:predict", bytes.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}
