package ingest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/driftline/driftline/contract"
)

// Avro records framed the schema registry's way (Confluent wire format): a zero byte, the
// writer's schema ID (4 bytes, big-endian), then the record in Avro's binary encoding. The
// schema is fetched from the registry once per ID (IDs are immutable), parsed with hamba/avro,
// and the bytes are decoded here, strictly: a truncated record or trailing bytes is an error
// naming the field and the offset (hamba's own Unmarshal returns no error for some truncated
// records, which would let a short record through with nulls).

// schemaSource is the registry as the decoder uses it.
type schemaSource interface {
	SchemaByID(ctx context.Context, id int) (sr.Schema, error)
}

// NewRegistry is a schema registry client for the ingest worker (a 10 s timeout per call).
func NewRegistry(url string) (*sr.Client, error) {
	return sr.NewClient(sr.URLs(url), sr.HTTPClient(&http.Client{Timeout: 10 * time.Second}))
}

type avroDecoder struct {
	reg schemaSource
	c   contract.Contract
	mu  sync.Mutex
	// plans by schema ID: how each of the writer schema's fields lands in the contract.
	plans map[int]*avroPlan
}

type avroPlan struct {
	id     int
	fields []*avro.Field
	// col[i] is the contract column of field i (-1: not a column, decoded and skipped).
	col []int
	// unusable: the schema cannot be read into the contract (why); records written with it
	// are quarantined with the reason.
	unusable string
}

func newAvroDecoder(reg schemaSource, c contract.Contract) *avroDecoder {
	return &avroDecoder{reg: reg, c: c, plans: map[int]*avroPlan{}}
}

// plan returns the schema's plan; an error is the registry failing (not the record's fault:
// the worker stops rather than quarantine good records), a missing schema is a plan that
// quarantines.
func (d *avroDecoder) plan(ctx context.Context, id int) (*avroPlan, error) {
	d.mu.Lock()
	p := d.plans[id]
	d.mu.Unlock()
	if p != nil {
		return p, nil
	}
	s, err := d.reg.SchemaByID(ctx, id)
	var re *sr.ResponseError
	switch {
	case errors.As(err, &re) && re.StatusCode == http.StatusNotFound:
		p = &avroPlan{id: id, unusable: fmt.Sprintf("schema id %d is not in the registry", id)}
	case err != nil:
		return nil, fmt.Errorf("schema registry: schema id %d: %w", id, err)
	default:
		p = d.compile(id, s)
	}
	d.mu.Lock()
	d.plans[id] = p
	d.mu.Unlock()
	return p, nil
}

func (d *avroDecoder) compile(id int, s sr.Schema) *avroPlan {
	p := &avroPlan{id: id}
	if s.Type != sr.TypeAvro {
		p.unusable = fmt.Sprintf("schema id %d is %s, not Avro", id, s.Type)
		return p
	}
	if len(s.References) > 0 {
		p.unusable = fmt.Sprintf("schema id %d has references (not supported)", id)
		return p
	}
	// A cache of its own: two schemas may name the same record differently.
	parsed, err := avro.ParseWithCache(s.Schema, "", &avro.SchemaCache{})
	if err != nil {
		p.unusable = fmt.Sprintf("schema id %d: %v", id, err)
		return p
	}
	rec, ok := parsed.(*avro.RecordSchema)
	if !ok {
		p.unusable = fmt.Sprintf("schema id %d is a %s, not a record", id, parsed.Type())
		return p
	}
	p.fields = rec.Fields()
	p.col = make([]int, len(p.fields))
	for i, f := range p.fields {
		p.col[i] = -1
		for j, c := range d.c.Columns {
			if c.Name == f.Name() {
				p.col[i] = j
			}
		}
	}
	return p
}

// decode reads one framed record into cells (by contract column; a column the schema lacks
// is null). A problem is the record's fault; an error is the registry's.
func (d *avroDecoder) decode(ctx context.Context, value []byte, cells []cell) (*problem, error) {
	if len(value) < 5 || value[0] != 0 {
		first := "empty"
		if len(value) > 0 {
			first = fmt.Sprintf("first byte 0x%02x", value[0])
		}
		return &problem{Reason: fmt.Sprintf("not schema-registry framed Avro (%s, %d bytes; want a 0 byte and a 4-byte schema ID)", first, len(value))}, nil
	}
	id := int(binary.BigEndian.Uint32(value[1:5]))
	p, err := d.plan(ctx, id)
	if err != nil {
		return nil, err
	}
	if p.unusable != "" {
		return &problem{Reason: p.unusable}, nil
	}
	for i := range cells {
		cells[i] = cell{null: true}
	}
	r := &avroReader{b: value, i: 5}
	for i, f := range p.fields {
		if j := p.col[i]; j >= 0 {
			col := d.c.Columns[j]
			c, why := r.cell(f.Type(), col.Type)
			if r.err != "" {
				return &problem{Field: f.Name(), Reason: fmt.Sprintf("avro (schema id %d): %s", id, r.err)}, nil
			}
			if why != "" {
				return &problem{Field: f.Name(), Reason: why}, nil
			}
			cells[j] = c
		} else {
			r.skip(f.Type(), 0)
		}
		if r.err != "" {
			return &problem{Field: f.Name(), Reason: fmt.Sprintf("avro (schema id %d): %s", id, r.err)}, nil
		}
	}
	if r.i != len(value) {
		return &problem{Reason: fmt.Sprintf("avro (schema id %d): %d bytes after the record (ends at offset %d of %d)", id, len(value)-r.i, r.i, len(value))}, nil
	}
	return nil, nil
}

// avroReader reads Avro's binary encoding with bounds checks; the first failure is kept in
// err (with the offset) and every later read returns zero values.
type avroReader struct {
	b   []byte
	i   int
	err string
}

func (r *avroReader) fail(format string, args ...any) {
	if r.err == "" {
		r.err = fmt.Sprintf(format, args...) + fmt.Sprintf(" at offset %d", r.i)
	}
}

// long reads a zig-zag varint (int and long are encoded alike).
func (r *avroReader) long() int64 {
	if r.err != "" {
		return 0
	}
	var u uint64
	for shift := uint(0); ; shift += 7 {
		if r.i >= len(r.b) {
			r.fail("truncated number")
			return 0
		}
		if shift >= 64 {
			r.fail("number longer than 10 bytes")
			return 0
		}
		c := r.b[r.i]
		r.i++
		u |= uint64(c&0x7f) << shift
		if c < 0x80 {
			break
		}
	}
	return int64(u>>1) ^ -int64(u&1)
}

// int reads an Avro int: a long that must fit in 32 bits.
func (r *avroReader) int() int64 {
	v := r.long()
	if r.err == "" && (v < math.MinInt32 || v > math.MaxInt32) {
		r.fail("int %d out of the 32-bit range", v)
		return 0
	}
	return v
}

func (r *avroReader) take(n int64, what string) []byte {
	if r.err != "" {
		return nil
	}
	if n < 0 || n > int64(len(r.b)-r.i) {
		r.fail("%s of %d bytes runs past the record's end", what, n)
		return nil
	}
	b := r.b[r.i : r.i+int(n)]
	r.i += int(n)
	return b
}

// branch reads a union's branch index and returns its schema.
func (r *avroReader) branch(u *avro.UnionSchema) avro.Schema {
	k := r.int()
	if r.err != "" {
		return nil
	}
	types := u.Types()
	if k < 0 || k >= int64(len(types)) {
		r.fail("union branch %d of %d", k, len(types))
		return nil
	}
	return types[k]
}

func deref(s avro.Schema) avro.Schema {
	if ref, ok := s.(*avro.RefSchema); ok {
		return ref.Schema()
	}
	return s
}

// cell reads a value of schema s for a column of type want.
func (r *avroReader) cell(s avro.Schema, want string) (cell, string) {
	s = deref(s)
	if u, ok := s.(*avro.UnionSchema); ok {
		s = r.branch(u)
		if s == nil {
			return cell{}, ""
		}
		s = deref(s)
	}
	got := s.Type()
	logical := avro.LogicalType("")
	if ls, ok := s.(avro.LogicalTypeSchema); ok && ls.Logical() != nil {
		logical = ls.Logical().Type()
	}
	var c cell
	var problem string
	ok := true
	switch got {
	case avro.Null:
		return cell{null: true}, ""
	case avro.Boolean:
		if ok = want == contract.TypeBool; ok {
			c = r.boolean()
		}
	case avro.Int, avro.Long:
		c, problem, ok = r.integer(got, logical, want)
	case avro.Float, avro.Double:
		if ok = want == contract.TypeDouble; ok {
			c = r.float(got)
		}
	case avro.String:
		if ok = want == contract.TypeString; ok {
			c = cell{str: string(r.take(r.long(), "string"))}
		}
	case avro.Enum:
		if ok = want == contract.TypeString; ok {
			c = r.enum(s.(*avro.EnumSchema))
		}
	default:
		ok = false
	}
	if !ok { // the value is skipped, the row refused with what was wanted
		r.skip(s, 0)
		name := string(got)
		if logical != "" {
			name += " (" + string(logical) + ")"
		}
		return cell{}, fmt.Sprintf("want %s, got an Avro %s", wantWords(want), name)
	}
	if r.err != "" {
		return cell{}, ""
	}
	return c, problem
}

func (r *avroReader) boolean() cell {
	b := r.take(1, "boolean")
	if r.err != "" {
		return cell{}
	}
	if b[0] > 1 {
		r.i--
		r.fail("boolean byte %d", b[0])
		return cell{}
	}
	return cell{num: float64(b[0])}
}

// integer reads an int or long: a date or timestamp (logical types) for a string column, a
// plain integer for a number column; ok is false for any other pairing.
func (r *avroReader) integer(got avro.Type, logical avro.LogicalType, want string) (c cell, problem string, ok bool) {
	num := r.long
	if got == avro.Int {
		num = r.int
	}
	switch {
	case want == contract.TypeString && logical == avro.Date:
		return cell{str: time.Unix(num()*86400, 0).UTC().Format(time.DateOnly)}, "", true
	case want == contract.TypeString && (logical == avro.TimestampMillis || logical == avro.TimestampMicros):
		v := num()
		t := time.UnixMicro(v).UTC()
		if logical == avro.TimestampMillis {
			t = time.UnixMilli(v).UTC()
		}
		return cell{str: t.Format(time.RFC3339Nano)}, "", true
	case (want == contract.TypeInt || want == contract.TypeDouble) && logical == "":
		v := num()
		if want == contract.TypeInt && r.err == "" && !contract.ExactInt(v) {
			return cell{}, contract.InexactWords(v), true
		}
		return cell{num: float64(v)}, "", true
	}
	return cell{}, "", false
}

func (r *avroReader) float(got avro.Type) cell {
	if got == avro.Float {
		b := r.take(4, "float")
		if r.err != "" {
			return cell{}
		}
		return cell{num: float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))}
	}
	b := r.take(8, "double")
	if r.err != "" {
		return cell{}
	}
	return cell{num: math.Float64frombits(binary.LittleEndian.Uint64(b))}
}

func (r *avroReader) enum(e *avro.EnumSchema) cell {
	k := r.int()
	syms := e.Symbols()
	if r.err == "" && (k < 0 || k >= int64(len(syms))) {
		r.fail("enum symbol %d of %d", k, len(syms))
	}
	if r.err != "" {
		return cell{}
	}
	return cell{str: syms[k]}
}

func wantWords(t string) string {
	switch t {
	case contract.TypeString:
		return "a string"
	case contract.TypeInt:
		return "an integer"
	case contract.TypeDouble:
		return "a number"
	case contract.TypeBool:
		return "true or false"
	}
	return t
}

// skip reads past a value of schema s (a field that is not a contract column).
func (r *avroReader) skip(s avro.Schema, depth int) {
	if r.err != "" {
		return
	}
	if depth > 32 {
		r.fail("values nested deeper than 32")
		return
	}
	s = deref(s)
	switch s.Type() {
	case avro.Null:
	case avro.Boolean:
		r.take(1, "boolean")
	case avro.Int:
		r.int()
	case avro.Long:
		r.long()
	case avro.Enum:
		if k, n := r.int(), len(s.(*avro.EnumSchema).Symbols()); r.err == "" && (k < 0 || k >= int64(n)) {
			r.fail("enum symbol %d of %d", k, n)
		}
	case avro.Float:
		r.take(4, "float")
	case avro.Double:
		r.take(8, "double")
	case avro.String, avro.Bytes:
		r.take(r.long(), string(s.Type()))
	case avro.Fixed:
		r.take(int64(s.(*avro.FixedSchema).Size()), "fixed")
	case avro.Union:
		if b := r.branch(s.(*avro.UnionSchema)); b != nil {
			r.skip(b, depth+1)
		}
	case avro.Record, avro.Error:
		for _, f := range s.(*avro.RecordSchema).Fields() {
			r.skip(f.Type(), depth+1)
		}
	case avro.Array, avro.Map:
		// Blocks: a count (negative: followed by the block's size in bytes), then the items;
		// a zero count ends the value.
		for r.err == "" {
			n := r.long()
			if n == 0 || r.err != "" {
				return
			}
			if n < 0 {
				n = -n
				r.long() // the block's byte size
			}
			if n > int64(len(r.b)-r.i) {
				r.fail("%s block of %d items runs past the record's end", s.Type(), n)
				return
			}
			for range n {
				if s.Type() == avro.Map {
					r.take(r.long(), "map key")
					r.skip(s.(*avro.MapSchema).Values(), depth+1)
				} else {
					r.skip(s.(*avro.ArraySchema).Items(), depth+1)
				}
				if r.err != "" {
					return
				}
			}
		}
	default:
		r.fail("cannot read an Avro %s", strings.ToLower(string(s.Type())))
	}
}
