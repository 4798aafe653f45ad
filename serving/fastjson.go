package serving

import (
	"math"
	"strconv"
)

// fastDecodePredict parses the common shape of a predict body, {"request_id": "...",
// "routing_key": "...", "features": {"name": number, ...}, "explain": bool, "attributes":
// {"name": "..."}}, without reflection. It accepts only what the strict decoder accepts and
// gives up (ok false) on anything else (escapes, unknown or repeated keys, batches, other
// types), so the strict decoder still produces every error message.
func fastDecodePredict(b []byte) (req PredictRequest, ok bool) {
	p := &scanner{b: b}
	if !p.consume('{') {
		return req, false
	}
	seen := 0
	for first := true; ; first = false {
		p.ws()
		if p.peek() == '}' && first {
			p.i++
			break
		}
		key, ok := p.str()
		if !ok || !p.consume(':') {
			return req, false
		}
		var bit int
		switch key {
		case "request_id":
			bit = 1
			req.RequestID, ok = p.str()
		case "routing_key":
			bit = 2
			req.RoutingKey, ok = p.str()
		case "explain":
			bit = 4
			req.Explain, ok = p.boolean()
		case "features":
			bit = 8
			req.numeric, ok = p.numberObject()
		case "attributes":
			bit = 16
			req.Attributes, ok = p.stringObject()
		default:
			return req, false
		}
		if !ok || seen&bit != 0 {
			return req, false
		}
		seen |= bit
		p.ws()
		switch p.next() {
		case ',':
			continue
		case '}':
		default:
			return req, false
		}
		break
	}
	p.ws()
	return req, p.i == len(p.b) && req.numeric != nil
}

type scanner struct {
	b []byte
	i int
}

func (p *scanner) ws() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

func (p *scanner) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *scanner) next() byte {
	c := p.peek()
	p.i++
	return c
}

func (p *scanner) consume(c byte) bool {
	p.ws()
	if p.peek() != c {
		return false
	}
	p.i++
	return true
}

// str reads a string of printable ASCII without escapes.
func (p *scanner) str() (string, bool) {
	if !p.consume('"') {
		return "", false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := string(p.b[start:p.i])
			p.i++
			return s, true
		case c == '\\' || c < 0x20 || c >= 0x7f:
			return "", false
		}
		p.i++
	}
	return "", false
}

func (p *scanner) boolean() (bool, bool) {
	p.ws()
	switch {
	case len(p.b)-p.i >= 4 && string(p.b[p.i:p.i+4]) == "true":
		p.i += 4
		return true, true
	case len(p.b)-p.i >= 5 && string(p.b[p.i:p.i+5]) == "false":
		p.i += 5
		return false, true
	}
	return false, false
}

// number reads a JSON number (RFC 8259 grammar) that fits a float64.
func (p *scanner) number() (float64, bool) {
	p.ws()
	start := p.i
	if p.peek() == '-' {
		p.i++
	}
	switch c := p.peek(); {
	case c == '0':
		p.i++
	case c >= '1' && c <= '9':
		for c := p.peek(); c >= '0' && c <= '9'; c = p.peek() {
			p.i++
		}
	default:
		return 0, false
	}
	if p.peek() == '.' {
		p.i++
		if c := p.peek(); c < '0' || c > '9' {
			return 0, false
		}
		for c := p.peek(); c >= '0' && c <= '9'; c = p.peek() {
			p.i++
		}
	}
	if c := p.peek(); c == 'e' || c == 'E' {
		p.i++
		if c := p.peek(); c == '+' || c == '-' {
			p.i++
		}
		if c := p.peek(); c < '0' || c > '9' {
			return 0, false
		}
		for c := p.peek(); c >= '0' && c <= '9'; c = p.peek() {
			p.i++
		}
	}
	f, err := strconv.ParseFloat(string(p.b[start:p.i]), 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

func (p *scanner) numberObject() (map[string]float64, bool) {
	return objectOf(p, p.number)
}

func (p *scanner) stringObject() (map[string]string, bool) {
	return objectOf(p, p.str)
}

// objectOf reads {"k": value, ...} into a map, refusing repeated keys.
func objectOf[V any](p *scanner, value func() (V, bool)) (map[string]V, bool) {
	out := map[string]V{}
	ok := p.object(func(k string) bool {
		v, ok := value()
		n := len(out)
		out[k] = v
		return ok && len(out) > n // a repeated key does not grow the map
	})
	return out, ok
}

// object reads {"k": value, ...}, calling value for each key.
func (p *scanner) object(value func(string) bool) bool {
	if !p.consume('{') {
		return false
	}
	p.ws()
	if p.peek() == '}' {
		p.i++
		return true
	}
	for {
		k, ok := p.str()
		if !ok || !p.consume(':') || !value(k) {
			return false
		}
		p.ws()
		switch p.next() {
		case ',':
		case '}':
			return true
		default:
			return false
		}
	}
}

// appendPredictResponse writes the common single-prediction answer (no explanation) as JSON;
// ok false when a field needs the general encoder (escapes, non-finite numbers).
func appendPredictResponse(b []byte, r PredictResponse) ([]byte, bool) {
	if r.ClientRequestID != "" || r.Explanation != nil || r.Predictions != nil || r.Explanations != nil || r.LabelTokens != nil || r.Features != nil ||
		math.IsNaN(r.Prediction) || math.IsInf(r.Prediction, 0) {
		return b, false
	}
	for _, s := range []string{r.RequestID, r.Model, r.Route, r.Fallback, r.LabelToken} {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c == '"' || c == '\\' || c < 0x20 || c >= 0x7f {
				return b, false
			}
		}
	}
	b = append(b, `{"request_id":"`...)
	b = append(b, r.RequestID...)
	b = append(b, `","model":"`...)
	b = append(b, r.Model...)
	b = append(b, `","version":`...)
	b = strconv.AppendInt(b, int64(r.Version), 10)
	b = append(b, `,"route":"`...)
	b = append(b, r.Route...)
	b = append(b, `","prediction":`...)
	b = strconv.AppendFloat(b, r.Prediction, 'g', -1, 64)
	if r.Fallback != "" {
		b = append(b, `,"fallback":"`...)
		b = append(b, r.Fallback...)
		b = append(b, '"')
	}
	if r.LabelToken != "" {
		b = append(b, `,"label_token":"`...)
		b = append(b, r.LabelToken...)
		b = append(b, '"')
	}
	return append(b, "}\n"...), true
}
