package model

import (
	"encoding/binary"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// The part of ONNX's protobuf schema (onnx/onnx.proto) a tree ensemble needs, read field by
// field: a ModelProto's opset imports and graph; the graph's nodes, inputs and outputs; a
// node's attributes; an attribute's scalar, list or tensor value.

// ONNX tensor element types used here.
const (
	onnxFloat  = 1
	onnxUint8  = 2
	onnxInt32  = 6
	onnxInt64  = 7
	onnxDouble = 11
)

type onnxModel struct {
	irVersion int64
	opsets    map[string]int64 // domain ("" is ai.onnx) -> version
	graph     onnxGraph
}

type onnxGraph struct {
	nodes   []onnxNode
	inputs  []onnxValue
	outputs []onnxValue
}

type onnxValue struct {
	name     string
	elemType int32
	dims     []int64 // -1: not fixed
}

type onnxNode struct {
	name, opType, domain string
	inputs, outputs      []string
	attrs                map[string]*onnxAttr
}

// onnxAttr is an attribute's value; numbers are kept as float64 (float32 ones converted
// exactly) with isDouble telling which they were.
type onnxAttr struct {
	f        float64
	i        int64
	s        string
	floats   []float64
	ints     []int64
	strings  []string
	t        *onnxTensor
	hasF     bool
	hasI     bool
	isDouble bool
}

type onnxTensor struct {
	dataType int32
	dims     []int64
	values   []float64 // every numeric type, converted exactly
}

// onnxFields calls fn for each field of a message; varint and fixed values arrive in x,
// length-delimited ones in b.
func onnxFields(msg []byte, fn func(num protowire.Number, typ protowire.Type, x uint64, b []byte) error) error {
	for off := 0; off < len(msg); {
		num, typ, n := protowire.ConsumeTag(msg[off:])
		if n < 0 {
			return fmt.Errorf("byte %d: %v", off, protowire.ParseError(n))
		}
		var (
			x uint64
			b []byte
			m int
		)
		switch typ {
		case protowire.VarintType:
			x, m = protowire.ConsumeVarint(msg[off+n:])
		case protowire.Fixed32Type:
			var v uint32
			v, m = protowire.ConsumeFixed32(msg[off+n:])
			x = uint64(v)
		case protowire.Fixed64Type:
			x, m = protowire.ConsumeFixed64(msg[off+n:])
		case protowire.BytesType:
			b, m = protowire.ConsumeBytes(msg[off+n:])
		default:
			m = protowire.ConsumeFieldValue(num, typ, msg[off+n:])
		}
		if m < 0 {
			return fmt.Errorf("byte %d (field %d): %v", off, num, protowire.ParseError(m))
		}
		if err := fn(num, typ, x, b); err != nil {
			return err
		}
		off += n + m
	}
	return nil
}

func parseONNX(data []byte) (*onnxModel, error) {
	m := &onnxModel{opsets: map[string]int64{}}
	sawGraph := false
	err := onnxFields(data, func(num protowire.Number, typ protowire.Type, x uint64, b []byte) error {
		switch {
		case num == 1 && typ == protowire.VarintType:
			m.irVersion = int64(x)
		case num == 8 && typ == protowire.BytesType:
			var domain string
			var version int64
			if err := onnxFields(b, func(num protowire.Number, typ protowire.Type, x uint64, b []byte) error {
				switch {
				case num == 1 && typ == protowire.BytesType:
					domain = string(b)
				case num == 2 && typ == protowire.VarintType:
					version = int64(x)
				}
				return nil
			}); err != nil {
				return fmt.Errorf("opset_import: %w", err)
			}
			m.opsets[domain] = version
		case num == 7 && typ == protowire.BytesType:
			sawGraph = true
			g, err := parseGraph(b)
			if err != nil {
				return fmt.Errorf("graph: %w", err)
			}
			m.graph = g
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !sawGraph || m.irVersion == 0 {
		return nil, fmt.Errorf("no ir_version or no graph: not an ONNX model")
	}
	return m, nil
}

func parseGraph(msg []byte) (onnxGraph, error) {
	var g onnxGraph
	err := onnxFields(msg, func(num protowire.Number, typ protowire.Type, x uint64, b []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 1:
			n, err := parseNode(b)
			if err != nil {
				return fmt.Errorf("node %d: %w", len(g.nodes), err)
			}
			g.nodes = append(g.nodes, n)
		case 11, 12:
			v, err := parseValueInfo(b)
			if err != nil {
				return fmt.Errorf("input/output: %w", err)
			}
			if num == 11 {
				g.inputs = append(g.inputs, v)
			} else {
				g.outputs = append(g.outputs, v)
			}
		}
		return nil
	})
	return g, err
}

// parseValueInfo reads a ValueInfoProto: its name and, for a tensor, its element type and
// shape (TypeProto.tensor_type).
func parseValueInfo(msg []byte) (onnxValue, error) {
	var v onnxValue
	err := onnxFields(msg, func(num protowire.Number, typ protowire.Type, x uint64, b []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			v.name = string(b)
		case num == 2 && typ == protowire.BytesType: // TypeProto
			return onnxFields(b, func(num protowire.Number, typ protowire.Type, x uint64, b []byte) error {
				if num != 1 || typ != protowire.BytesType { // tensor_type
					return nil
				}
				return onnxFields(b, func(num protowire.Number, typ protowire.Type, x uint64, b []byte) error {
					switch {
					case num == 1 && typ == protowire.VarintType:
						v.elemType = int32(x)
					case num == 2 && typ == protowire.BytesType: // TensorShapeProto
						return onnxFields(b, func(num protowire.Number, typ protowire.Type, x uint64, b []byte) error {
							if num != 1 || typ != protowire.BytesType {
								return nil
							}
							d := int64(-1)
							err := onnxFields(b, func(num protowire.Number, typ protowire.Type, x uint64, _ []byte) error {
								if num == 1 && typ == protowire.VarintType {
									d = int64(x)
								}
								return nil
							})
							v.dims = append(v.dims, d)
							return err
						})
					}
					return nil
				})
			})
		}
		return nil
	})
	return v, err
}

func parseNode(msg []byte) (onnxNode, error) {
	n := onnxNode{attrs: map[string]*onnxAttr{}}
	err := onnxFields(msg, func(num protowire.Number, typ protowire.Type, x uint64, b []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 1:
			n.inputs = append(n.inputs, string(b))
		case 2:
			n.outputs = append(n.outputs, string(b))
		case 3:
			n.name = string(b)
		case 4:
			n.opType = string(b)
		case 7:
			n.domain = string(b)
		case 5:
			name, a, err := parseAttr(b)
			if err != nil {
				return fmt.Errorf("attribute %q: %w", name, err)
			}
			n.attrs[name] = a
		}
		return nil
	})
	return n, err
}

func parseAttr(msg []byte) (string, *onnxAttr, error) {
	var name string
	a := &onnxAttr{}
	err := onnxFields(msg, func(num protowire.Number, typ protowire.Type, x uint64, b []byte) error {
		switch num {
		case 1:
			name = string(b)
		case 2: // f
			a.f, a.hasF = float64(math.Float32frombits(uint32(x))), true
		case 3: // i
			a.i, a.hasI = int64(x), true
		case 4: // s
			a.s = string(b)
		case 5: // t
			t, err := parseTensor(b)
			if err != nil {
				return err
			}
			a.t, a.isDouble = t, t.dataType == onnxDouble
		case 7: // floats
			return appendFixed32(&a.floats, typ, x, b)
		case 8: // ints
			return appendVarints(&a.ints, typ, x, b)
		case 9: // strings
			a.strings = append(a.strings, string(b))
		}
		return nil
	})
	return name, a, err
}

// appendFixed32 appends float32 values, packed or one a field.
func appendFixed32(dst *[]float64, typ protowire.Type, x uint64, b []byte) error {
	if typ == protowire.Fixed32Type {
		*dst = append(*dst, float64(math.Float32frombits(uint32(x))))
		return nil
	}
	if typ != protowire.BytesType || len(b)%4 != 0 {
		return fmt.Errorf("a float list of %d bytes", len(b))
	}
	for i := 0; i < len(b); i += 4 {
		*dst = append(*dst, float64(math.Float32frombits(binary.LittleEndian.Uint32(b[i:]))))
	}
	return nil
}

// appendFixed64 appends float64 values, packed or one a field.
func appendFixed64(dst *[]float64, typ protowire.Type, x uint64, b []byte) error {
	if typ == protowire.Fixed64Type {
		*dst = append(*dst, math.Float64frombits(x))
		return nil
	}
	if typ != protowire.BytesType || len(b)%8 != 0 {
		return fmt.Errorf("a double list of %d bytes", len(b))
	}
	for i := 0; i < len(b); i += 8 {
		*dst = append(*dst, math.Float64frombits(binary.LittleEndian.Uint64(b[i:])))
	}
	return nil
}

// appendVarints appends int64 values, packed or one a field.
func appendVarints(dst *[]int64, typ protowire.Type, x uint64, b []byte) error {
	if typ == protowire.VarintType {
		*dst = append(*dst, int64(x))
		return nil
	}
	if typ != protowire.BytesType {
		return fmt.Errorf("an integer list of wire type %d", typ)
	}
	for len(b) > 0 {
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return fmt.Errorf("a packed integer list: %v", protowire.ParseError(n))
		}
		*dst = append(*dst, int64(v))
		b = b[n:]
	}
	return nil
}

// parseTensor reads a TensorProto of a numeric type, its data typed or raw (little endian).
func parseTensor(msg []byte) (*onnxTensor, error) {
	t := &onnxTensor{}
	var raw []byte
	var ints []int64
	var hasRaw bool
	err := onnxFields(msg, func(num protowire.Number, typ protowire.Type, x uint64, b []byte) error {
		switch num {
		case 1:
			return appendVarints(&t.dims, typ, x, b)
		case 2:
			t.dataType = int32(x)
		case 4: // float_data
			return appendFixed32(&t.values, typ, x, b)
		case 5, 7: // int32_data (also uint8), int64_data
			return appendVarints(&ints, typ, x, b)
		case 10: // double_data
			return appendFixed64(&t.values, typ, x, b)
		case 9:
			raw, hasRaw = b, true
		case 14:
			if x == 1 {
				return fmt.Errorf("tensor data stored outside the model file (external data) is not supported")
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, v := range ints {
		switch t.dataType {
		case onnxInt32:
			v = int64(int32(v))
		case onnxUint8:
			v = int64(uint8(v))
		}
		t.values = append(t.values, float64(v))
	}
	if hasRaw {
		if t.values, err = rawValues(t.dataType, raw); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func rawValues(dataType int32, raw []byte) ([]float64, error) {
	size := map[int32]int{onnxFloat: 4, onnxUint8: 1, onnxInt32: 4, onnxInt64: 8, onnxDouble: 8}[dataType]
	if size == 0 {
		return nil, fmt.Errorf("a tensor of element type %d; only float, double, uint8, int32 and int64 are read", dataType)
	}
	if len(raw)%size != 0 {
		return nil, fmt.Errorf("raw tensor data of %d bytes for %d-byte elements", len(raw), size)
	}
	out := make([]float64, 0, len(raw)/size)
	for i := 0; i < len(raw); i += size {
		switch dataType {
		case onnxFloat:
			out = append(out, float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[i:]))))
		case onnxUint8:
			out = append(out, float64(raw[i]))
		case onnxInt32:
			out = append(out, float64(int32(binary.LittleEndian.Uint32(raw[i:]))))
		case onnxInt64:
			out = append(out, float64(int64(binary.LittleEndian.Uint64(raw[i:]))))
		case onnxDouble:
			out = append(out, math.Float64frombits(binary.LittleEndian.Uint64(raw[i:])))
		}
	}
	return out, nil
}
