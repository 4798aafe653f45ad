package ingest

import (
	"encoding/json"
	"testing"
)

// The flat scanner reads every valid JSON object's top-level fields as encoding/json does:
// the same keys (escaped ones too; the last of a repeated key wins), the same kinds, the same
// strings, the same number text.
func FuzzScanObject(f *testing.F) {
	for _, s := range []string{
		`{"a": 1, "b": "x", "c": true, "d": false, "e": null}`,
		` { "k\"ey" : "v\\u00e9\n" , "n": -1.5e+3, "o": {"x": [1, {"y": "}"}]}, "arr": [ "]" ] } `,
		`{"dup": 1, "dup": "two"}`,
		`{"\u0041": "é", "t":"\t"}`,
		`{}`, `[]`, `"s"`, `3`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		var want map[string]any
		isObject := json.Unmarshal(b, &want) == nil && want != nil
		fields := map[string]field{}
		if got := scanObject(b, fields); got != isObject {
			t.Fatalf("%q: object %v, encoding/json says %v", b, got, isObject)
		}
		if !isObject {
			return
		}
		if len(fields) != len(want) {
			t.Fatalf("%q: %d fields, encoding/json %d", b, len(fields), len(want))
		}
		for k, w := range want {
			g, ok := fields[k]
			if !ok {
				t.Fatalf("%q: no field %q", b, k)
			}
			switch w := w.(type) {
			case string:
				if g.kind != 's' || g.str() != w {
					t.Fatalf("%q: %q = %q (%c), want %q", b, k, g.str(), g.kind, w)
				}
			case float64:
				var n json.Number
				if g.kind != 'n' || json.Unmarshal(g.raw, &n) != nil {
					t.Fatalf("%q: %q is %c %q, want a number", b, k, g.kind, g.raw)
				}
			case bool:
				if (w && g.kind != 't') || (!w && g.kind != 'f') {
					t.Fatalf("%q: %q kind %c, want %v", b, k, g.kind, w)
				}
			case nil:
				if g.kind != 'z' {
					t.Fatalf("%q: %q kind %c, want null", b, k, g.kind)
				}
			case map[string]any:
				if g.kind != 'o' {
					t.Fatalf("%q: %q kind %c, want an object", b, k, g.kind)
				}
			case []any:
				if g.kind != 'a' {
					t.Fatalf("%q: %q kind %c, want an array", b, k, g.kind)
				}
			}
		}
	})
}
