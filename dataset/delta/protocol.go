package delta

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// readerFeatures are the table features a reader must know that this reader handles:
// column mapping (files' physical names mapped to the schema's), timestamps without a time
// zone, deletion vectors (only while no live file carries one: refused by file otherwise),
// the vacuum protocol check and domain metadata (nothing to do when reading).
var readerFeatures = []string{"columnMapping", "timestampNtz", "deletionVectors", "vacuumProtocolCheck", "domainMetadata", "typeWidening", "typeWidening-preview"}

// checkProtocol refuses a table this reader cannot read correctly, naming why.
func checkProtocol(p Protocol, where string) error {
	switch {
	case p.MinReaderVersion < 1:
		return fail("%s: protocol minReaderVersion %d", where, p.MinReaderVersion)
	case p.MinReaderVersion > 3:
		return fail("%s: protocol minReaderVersion %d; this reader reads versions 1 to 3", where, p.MinReaderVersion)
	}
	var unknown []string
	for _, f := range p.ReaderFeatures {
		if !slices.Contains(readerFeatures, f) {
			unknown = append(unknown, f)
		}
	}
	if len(unknown) > 0 {
		return fail("%s: reader features %s are not supported (supported: %s)", where, strings.Join(unknown, ", "), strings.Join(readerFeatures, ", "))
	}
	return nil
}

// Field is a top-level column of the table's schema.
type Field struct {
	Name     string `json:"name"`
	Type     string `json:"type"` // Delta's primitive type name, or struct/array/map
	Nullable bool   `json:"nullable"`
	// PhysicalName is the column's name in the data files (column mapping; else Name).
	PhysicalName string `json:"physical_name"`
}

// parseSchema reads the top-level fields of a schemaString; with column mapping (name or
// id), each field's physical name comes from its metadata.
func parseSchema(schemaString, mapping string) ([]Field, error) {
	var s struct {
		Type   string `json:"type"`
		Fields []struct {
			Name     string          `json:"name"`
			Type     json.RawMessage `json:"type"`
			Nullable bool            `json:"nullable"`
			Metadata map[string]any  `json:"metadata"`
		} `json:"fields"`
	}
	if err := json.Unmarshal([]byte(schemaString), &s); err != nil {
		return nil, err
	}
	if s.Type != "struct" {
		return nil, fmt.Errorf("type %q, want struct", s.Type)
	}
	switch mapping {
	case "", "none", "name", "id":
	default:
		return nil, fmt.Errorf("column mapping mode %q", mapping)
	}
	out := make([]Field, 0, len(s.Fields))
	for _, f := range s.Fields {
		field := Field{Name: f.Name, Nullable: f.Nullable, PhysicalName: f.Name}
		var prim string
		if json.Unmarshal(f.Type, &prim) == nil {
			field.Type = prim
		} else {
			var complex struct {
				Type string `json:"type"`
			}
			_ = json.Unmarshal(f.Type, &complex)
			field.Type = complex.Type
		}
		if mapping == "name" || mapping == "id" {
			pn, ok := f.Metadata["delta.columnMapping.physicalName"].(string)
			if !ok || pn == "" {
				return nil, fmt.Errorf("column %s has no delta.columnMapping.physicalName under column mapping mode %s", f.Name, mapping)
			}
			field.PhysicalName = pn
		}
		out = append(out, field)
	}
	return out, nil
}
