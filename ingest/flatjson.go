package ingest

import "encoding/json"

// A field of a flat JSON object: its value's kind and raw bytes.
type field struct {
	kind byte   // 's' string, 'n' number, 't' true, 'f' false, 'z' null, 'o' object, 'a' array
	raw  []byte // a string's contents (still escaped when esc), a number's text
	esc  bool
}

// scanObject reads the top-level fields of a JSON object into fields (reused), after
// json.Valid has vouched for the syntax: a record is decoded without reflection or a map of
// interfaces. ok is false when the value is not an object.
func scanObject(b []byte, fields map[string]field) bool {
	clear(fields)
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i++
	for {
		i = skipSpace(b, i)
		if b[i] == '}' {
			return true
		}
		if b[i] == ',' {
			i = skipSpace(b, i+1)
		}
		// The key.
		ks := i + 1
		ke, kesc := endOfString(b, ks)
		key := b[ks:ke]
		var name string
		if kesc {
			name = field{raw: key, esc: true}.str()
		} else {
			name = string(key)
		}
		i = skipSpace(b, ke+1)
		i = skipSpace(b, i+1) // the colon
		var f field
		switch c := b[i]; {
		case c == '"':
			e, esc := endOfString(b, i+1)
			f, i = field{kind: 's', raw: b[i+1 : e], esc: esc}, e+1
		case c == '{' || c == '[':
			f, i = field{kind: map[byte]byte{'{': 'o', '[': 'a'}[c]}, skipNested(b, i)
		case c == 't':
			f, i = field{kind: 't'}, i+4
		case c == 'f':
			f, i = field{kind: 'f'}, i+5
		case c == 'n':
			f, i = field{kind: 'z'}, i+4
		default:
			s := i
			for i < len(b) && (b[i] == '-' || b[i] == '+' || b[i] == '.' || b[i] == 'e' || b[i] == 'E' || (b[i] >= '0' && b[i] <= '9')) {
				i++
			}
			f = field{kind: 'n', raw: b[s:i]}
		}
		fields[name] = f
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// endOfString returns the index of the closing quote of a string starting at i (after its
// opening quote) and whether it must be decoded by encoding/json: it holds escapes, or bytes
// beyond ASCII (invalid UTF-8 becomes U+FFFD, as encoding/json does).
func endOfString(b []byte, i int) (int, bool) {
	esc := false
	for ; i < len(b); i++ {
		if b[i] >= 0x80 {
			esc = true
			continue
		}
		switch b[i] {
		case '\\':
			esc = true
			i++
		case '"':
			return i, esc
		}
	}
	return i, esc
}

// skipNested returns the index after the object or array starting at i.
func skipNested(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			i, _ = endOfString(b, i+1)
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return i
}

// str is a string field's value.
func (f field) str() string {
	if !f.esc {
		return string(f.raw)
	}
	var s string
	q := make([]byte, 0, len(f.raw)+2)
	q = append(append(append(q, '"'), f.raw...), '"')
	_ = json.Unmarshal(q, &s)
	return s
}

func (f field) describe() string {
	return map[byte]string{'s': "a string", 'n': "a number", 't': "a boolean", 'f': "a boolean", 'o': "an object", 'a': "an array"}[f.kind]
}
