package serving

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
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
