package serving

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/registry"
)

// FuzzDecodePredict feeds arbitrary bodies to request decoding: it must answer 200, 400 or
// 413 with an error message, never panic.
func FuzzDecodePredict(f *testing.F) {
	for _, seed := range []string{
		`{"routing_key":"a","features":{"x":1},"explain":true}`,
		`{"features":{"x":"1"}}`, `{"features":{"x":1e400}}`, `{"features":null}`, `[]`, `{`, ``,
		`{"features":{"x":1}} {"features":{}}`, `{"request_id":7}`, `{"features":{"\u0000":-0}}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/v1/models/demand:predict", strings.NewReader(body))
		var pr PredictRequest
		code, err := decodeStrict(rec, req, &pr)
		if err != nil {
			if code != http.StatusBadRequest && code != http.StatusRequestEntityTooLarge {
				t.Fatalf("error %v with code %d", err, code)
			}
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if _, err := numbers(pr.Features, "features."); err != nil && !strings.Contains(err.Error(), "features.") {
			t.Fatalf("feature error does not name the field: %v", err)
		}
	})
}

// FuzzFastDecodeAgrees: whenever the fast path accepts a body, the strict decoder accepts it
// too and yields the same request.
func FuzzFastDecodeAgrees(f *testing.F) {
	for _, seed := range []string{
		`{"routing_key":"store-1/item-1","features":{"price":9.5,"promo":1,"weekday":5},"explain":true}`,
		`{"request_id":"a","features":{},"attributes":{"region":"north"}}`,
		` { "features" : { "x" : -0.5e-3 } } `, `{"features":{"x":1},"features":{"x":2}}`,
		`{"features":{"x":01}}`, `{"features":{"x":1.}}`, `{"features":{"x":1e400}}`, `{"features":{"x":"1"}}`,
		`{"request_id":"a\"b","features":{}}`, `{"features":{"x":1}} x`, `{"explain":true}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		fast, ok := fastDecodePredict([]byte(body))
		if !ok {
			return
		}
		var slow PredictRequest
		if code, err := decodeStrictBytes([]byte(body), &slow); err != nil {
			t.Fatalf("fast path accepted what the strict decoder refuses (%d %v): %q", code, err, body)
		}
		if fast := asDecoded(fast); !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast %+v != strict %+v for %q", fast, slow, body)
		}
	})
}

// asDecoded is a fast-path request in the strict decoder's shape: features as JSON values.
func asDecoded(req PredictRequest) PredictRequest {
	if req.numeric != nil {
		req.Features = map[string]any{}
		for k, v := range req.numeric {
			req.Features[k] = v
		}
		req.numeric = nil
	}
	return req
}

// FuzzV2Infer posts arbitrary bodies to the Open Inference Protocol v2 endpoint of a serving
// worker with a model loaded: every answer is 200 or a 4xx with an error that names what was
// wrong, never a 5xx or a panic.
// fuzzServer is a server with the test model's production version loaded (logs in memory).
func fuzzServer(f *testing.F) *Server {
	b := objstore.NewMem()
	r := registry.New(b)
	s, err := New(Options{Store: b, Models: []string{"demand"}, Poll: time.Hour, LogFlush: time.Hour, LabelKey: testLabelKey})
	if err != nil {
		f.Fatal(err)
	}
	deploy(f, r, register(f, r, "r1", 2, false), 0, 0)
	if err := s.watchers["demand"].poll(context.Background()); err != nil {
		f.Fatal(err)
	}
	return s
}

func FuzzV2Infer(f *testing.F) {
	for _, seed := range []string{
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":[1]}]}`,
		`{"inputs":[{"name":"x","shape":[2],"datatype":"INT32","data":[1,2]}],"parameters":{"explain":true,"routing_key":"k"}}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","data":["a"]}]}`,
		`{"inputs":[{"name":"x","shape":[-1],"datatype":"FP64","data":[]}]}`,
		`{"inputs":[]}`, `{"id":7}`, `[]`, `{`, ``, `{"inputs":[{"name":"x","shape":[1],"datatype":"BOOL","data":[true]}]}`,
		`{"inputs":[{"name":"input-0","shape":[1,1],"datatype":"FP32","data":[[9.5]]}]}`,
		`{"inputs":[{"name":"input-0","shape":[2,1],"datatype":"UINT8","data":[1,2]}],"outputs":[{"name":"prediction"}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":[1]},{"name":"region","shape":[1],"datatype":"BYTES","data":["north"]}]}`,
		`{"inputs":[{"name":"x","shape":[1,1,1],"datatype":"INT8","data":[[[[[[[[[[1]]]]]]]]]]}]}`,
	} {
		f.Add(seed)
	}
	h := fuzzServer(f).Handler()
	f.Add(`{"inputs":[{"name":"x","shape":[400000],"datatype":"UINT8","data":[` + strings.TrimSuffix(strings.Repeat("1,", 400000), ",") + `]}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		rec := httptest.NewRecorder()
		if used := allocated(func() {
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v2/models/demand/infer", strings.NewReader(body)))
		}); used > allocationBound(len(body)) {
			t.Fatalf("a %d-byte request allocated %d bytes", len(body), used)
		}
		switch {
		case rec.Code == http.StatusOK:
		case rec.Code >= 400 && rec.Code < 500:
			if !strings.Contains(rec.Body.String(), `"error"`) {
				t.Fatalf("HTTP %d without an error message: %s", rec.Code, rec.Body.String())
			}
		default:
			t.Fatalf("HTTP %d for %q: %s", rec.Code, body, rec.Body.String())
		}
	})
}
