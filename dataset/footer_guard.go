package dataset

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// checkThrift walks a Parquet footer (Thrift compact protocol) without decoding it, before
// parquet-go does: every list, set, map and string must fit in the bytes that are left (each
// element takes at least one byte). parquet-go's decoder loops over a list's declared size even
// past the end of the data, so a footer of a few KB declaring a list of 2^31 elements kept a
// scan spinning at 100% CPU (found by FuzzScanFile; decision 0013).
func checkThrift(b []byte) error {
	w := thriftWalker{b: b}
	if err := w.value(ctStruct, 0); err != nil {
		return fmt.Errorf("corrupt footer at byte %d of %d: %w", w.pos, len(b), err)
	}
	return nil
}

// Compact-protocol types.
const (
	ctStop   = 0
	ctTrue   = 1
	ctFalse  = 2
	ctByte   = 3
	ctI16    = 4
	ctI32    = 5
	ctI64    = 6
	ctDouble = 7
	ctBinary = 8
	ctList   = 9
	ctSet    = 10
	ctMap    = 11
	ctStruct = 12
)

// maxDepth bounds nesting (the Parquet footer nests a few levels).
const maxDepth = 32

var errTruncated = errors.New("truncated")

type thriftWalker struct {
	b   []byte
	pos int
}

func (w *thriftWalker) left() int { return len(w.b) - w.pos }

func (w *thriftWalker) byte() (byte, error) {
	if w.pos >= len(w.b) {
		return 0, errTruncated
	}
	c := w.b[w.pos]
	w.pos++
	return c, nil
}

func (w *thriftWalker) varint() (uint64, error) {
	v, n := binary.Uvarint(w.b[w.pos:])
	if n <= 0 {
		return 0, errors.New("bad varint")
	}
	w.pos += n
	return v, nil
}

// count reads a declared size and checks n elements of at least one byte each can follow.
func (w *thriftWalker) count(n uint64, what string) (int, error) {
	if n > uint64(w.left()) {
		return 0, fmt.Errorf("a %s of %d elements in the %d bytes left", what, n, w.left())
	}
	return int(n), nil
}

// value skips a value of compact-protocol type t, checking every size it declares against
// the bytes left.
func (w *thriftWalker) value(t byte, depth int) error {
	if depth > maxDepth {
		return errors.New("nested too deep")
	}
	switch t {
	case ctTrue, ctFalse:
		return nil // in a list a bool takes one byte; handled there
	case ctByte:
		_, err := w.byte()
		return err
	case ctI16, ctI32, ctI64:
		_, err := w.varint()
		return err
	case ctDouble:
		if w.left() < 8 {
			return errTruncated
		}
		w.pos += 8
		return nil
	case ctBinary:
		n, err := w.varint()
		if err != nil {
			return err
		}
		if n > uint64(w.left()) {
			return fmt.Errorf("a string of %d bytes in the %d bytes left", n, w.left())
		}
		w.pos += int(n)
		return nil
	case ctList, ctSet:
		return w.list(depth)
	case ctMap:
		return w.mapValue(depth)
	case ctStruct:
		return w.structValue(depth)
	}
	return fmt.Errorf("unknown type %d", t)
}

func (w *thriftWalker) list(depth int) error {
	h, err := w.byte()
	if err != nil {
		return err
	}
	size, elem := uint64(h>>4), h&0x0f
	if size == 15 {
		if size, err = w.varint(); err != nil {
			return err
		}
	}
	n, err := w.count(size, "list")
	if err != nil {
		return err
	}
	for range n {
		if elem == ctTrue || elem == ctFalse {
			if _, err := w.byte(); err != nil {
				return err
			}
			continue
		}
		if err := w.value(elem, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func (w *thriftWalker) mapValue(depth int) error {
	size, err := w.varint()
	if err != nil {
		return err
	}
	n, err := w.count(size, "map")
	if err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	kv, err := w.byte()
	if err != nil {
		return err
	}
	for range n {
		if err := w.value(kv>>4, depth+1); err != nil {
			return err
		}
		if err := w.value(kv&0x0f, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func (w *thriftWalker) structValue(depth int) error {
	for {
		h, err := w.byte()
		if err != nil {
			return err
		}
		if h == ctStop {
			return nil
		}
		if h>>4 == 0 { // long form: the field id follows
			if _, err := w.varint(); err != nil {
				return err
			}
		}
		if err := w.value(h&0x0f, depth+1); err != nil {
			return err
		}
	}
}

// maxPageBytes bounds a page's declared size (compressed or not): parquet-go allocates what a
// page header declares before reading it, so a header of a few bytes declaring 2 GiB made a
// scan allocate and zero 2 GiB (found by FuzzScanFile; decision 0013).
const maxPageBytes = 256 << 20

// checkPages walks the page headers of one column chunk, held in memory (chunk), before
// parquet-go reads it: every page must declare sizes that fit the chunk and the bound.
func checkPages(chunk []byte) error {
	for pos := 0; pos < len(chunk); {
		w := thriftWalker{b: chunk[pos:]}
		uncompressed, compressed, err := w.pageSizes()
		if err != nil {
			return fmt.Errorf("page header at byte %d of the column chunk: %w", pos, err)
		}
		pos += w.pos
		switch {
		case compressed < 0 || uncompressed < 0:
			return fmt.Errorf("page at byte %d declares a negative size", pos)
		case compressed > int64(len(chunk)-pos):
			return fmt.Errorf("page at byte %d declares %d bytes, the column chunk has %d left", pos, compressed, len(chunk)-pos)
		case uncompressed > maxPageBytes:
			return fmt.Errorf("page at byte %d declares %d uncompressed bytes, more than the %d a page may hold", pos, uncompressed, maxPageBytes)
		}
		pos += int(compressed)
	}
	return nil
}

// pageSizes reads a PageHeader struct, returning fields 2 (uncompressed_page_size) and 3
// (compressed_page_size); the rest is walked with the same bounds as the footer.
func (w *thriftWalker) pageSizes() (uncompressed, compressed int64, err error) {
	var id int64
	seen := 0
	for {
		h, err := w.byte()
		if err != nil {
			return 0, 0, err
		}
		if h == ctStop {
			break
		}
		if delta := int64(h >> 4); delta != 0 {
			id += delta
		} else {
			v, err := w.varint()
			if err != nil {
				return 0, 0, err
			}
			id = zigzag(v)
		}
		t := h & 0x0f
		if (id == 2 || id == 3) && t == ctI32 {
			v, err := w.varint()
			if err != nil {
				return 0, 0, err
			}
			if id == 2 {
				uncompressed = zigzag(v)
			} else {
				compressed = zigzag(v)
			}
			seen++
			continue
		}
		if err := w.value(t, 1); err != nil {
			return 0, 0, err
		}
	}
	if seen < 2 {
		return 0, 0, errors.New("no page sizes")
	}
	return uncompressed, compressed, nil
}

func zigzag(v uint64) int64 { return int64(v>>1) ^ -int64(v&1) }
