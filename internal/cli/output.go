package cli

import (
	"encoding"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strings"
	"unicode"

	"github.com/spf13/pflag"
)

// output is a command's --output flag: table (the default, for people) or json (for
// programs: every key snake_case, whatever Go struct it came from).
type output struct {
	format string
	json   bool
}

func addOutput(fs *pflag.FlagSet) *output {
	o := &output{}
	fs.StringVar(&o.format, "output", "table", "output: table or json")
	fs.BoolVar(&o.json, "json", false, "the same as --output json")
	return o
}

// JSON says whether to print JSON; an unknown format is an error naming the choices.
func (o *output) JSON() (bool, error) {
	switch o.format {
	case "json":
		return true, nil
	case "table", "":
		return o.json, nil
	}
	return false, fmt.Errorf("--output %q: want table or json", o.format)
}

// printJSON prints v as indented JSON with snake_case keys (json tags are kept; untagged
// fields get their name in snake_case; map keys, which are data, are kept as they are).
func printJSON(v any) error { return writeJSON(os.Stdout, v) }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(snakeValue(reflect.ValueOf(v)))
}

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// snakeValue is v as maps, slices and scalars, its struct fields named in snake_case.
func snakeValue(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	t := v.Type()
	if t.Implements(jsonMarshaler) || t.Implements(textMarshaler) {
		if (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && v.IsNil() {
			return nil
		}
		return v.Interface() // its own encoding (times, raw JSON)
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return snakeValue(v.Elem())
	case reflect.Struct:
		out := map[string]any{}
		snakeFields(v, out)
		return out
	case reflect.Map:
		if v.IsNil() {
			return nil
		}
		out := make(map[string]any, v.Len())
		it := v.MapRange()
		for it.Next() {
			out[fmt.Sprint(it.Key().Interface())] = snakeValue(it.Value())
		}
		return out
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return nil
		}
		if t.Elem().Kind() == reflect.Uint8 {
			return v.Interface() // bytes: base64, as encoding/json
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = snakeValue(v.Index(i))
		}
		return out
	}
	return v.Interface()
}

func snakeFields(v reflect.Value, out map[string]any) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		fv := v.Field(i)
		if f.Anonymous && name == "" {
			ev := fv
			if ev.Kind() == reflect.Pointer {
				if ev.IsNil() {
					continue
				}
				ev = ev.Elem()
			}
			if ev.Kind() == reflect.Struct {
				snakeFields(ev, out) // embedded: its fields are the outer's
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if strings.Contains(","+opts+",", ",omitempty,") && fv.IsZero() {
			continue
		}
		if name == "" {
			name = snakeCase(f.Name)
		}
		out[name] = snakeValue(fv)
	}
}

// snakeCase turns a Go name into snake_case: CandidateMAE candidate_mae, RunID run_id,
// PValue p_value, KS ks.
func snakeCase(s string) string {
	r := []rune(s)
	var b strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) && i > 0 {
			prev := r[i-1]
			nextLower := i+1 < len(r) && unicode.IsLower(r[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}

// formatMap prints a map as "k=v, k=v" in key order ("-" when empty), never Go's map[...].
func FormatMap[K comparable, V any](m map[K]V) string {
	if len(m) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%v=%v", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
