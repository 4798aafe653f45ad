package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"
)

// output is a command's --output flag: table (the default, for people) or json (for
// programs: every key snake_case, by the structs' json tags).
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

// printJSON prints v as indented JSON. Every struct that reaches here has snake_case json tags
// (TestEveryPrintedTypeHasSnakeCaseTags); map keys, which are data, are as they are.
func printJSON(v any) error { return writeJSON(os.Stdout, v) }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
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
