package dataset

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/parquet-go/parquet-go"

	"github.com/driftline/driftline/objstore"
)

// ioTracker remembers whether the underlying reader failed, so a network fault is retried
// while a corrupt file is reported as invalid data.
type ioTracker struct {
	r   io.ReaderAt
	err error
}

func (t *ioTracker) ReadAt(p []byte, off int64) (int, error) {
	n, err := t.r.ReadAt(p, off)
	if err != nil && err != io.EOF && t.err == nil {
		t.err = err
	}
	return n, err
}

// windowReader serves reads inside a prefetched byte window from memory and the rest from
// the underlying reader: a row group's column chunks are read with one ranged GET.
type windowReader struct {
	r    io.ReaderAt
	off  int64
	data []byte
}

func (w *windowReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= w.off && off+int64(len(p)) <= w.off+int64(len(w.data)) {
		return copy(p, w.data[off-w.off:]), nil
	}
	return w.r.ReadAt(p, off)
}

// prefetch loads [off, off+n) into the window.
func (w *windowReader) prefetch(off, n int64) error {
	w.data = w.data[:0]
	if cap(w.data) < int(n) {
		w.data = make([]byte, n)
	}
	w.data = w.data[:n]
	w.off = off
	if _, err := w.r.ReadAt(w.data, off); err != nil && err != io.EOF {
		w.data = w.data[:0]
		return err
	}
	return nil
}

// OpenParquet opens a Parquet object for streaming, ranged reads. A malformed file yields a
// *DataError naming it; a storage fault a plain (retryable) error.
func OpenParquet(ctx context.Context, b objstore.Bucket, key string) (*parquet.File, objstore.Object, error) {
	f, obj, _, err := openParquet(ctx, b, key)
	return f, obj, err
}

func openParquet(ctx context.Context, b objstore.Bucket, key string) (*parquet.File, objstore.Object, *windowReader, error) {
	ra, obj, err := objstore.NewReaderAt(ctx, b, key)
	if err != nil {
		return nil, obj, nil, err
	}
	if obj.Size == 0 {
		return nil, obj, nil, dataErr(key, "", -1, "empty file (0 bytes), not Parquet")
	}
	tr := &ioTracker{r: ra}
	wr := &windowReader{r: tr}
	if err := checkFooter(tr, wr, obj.Size); err != nil {
		if tr.err != nil {
			return nil, obj, nil, fmt.Errorf("read %s: %w", b.URI(key), tr.err)
		}
		return nil, obj, nil, dataErr(key, "", -1, "not a readable Parquet file: %v", err)
	}
	f, err := openFile(wr, obj.Size) // the footer is read from the window checkFooter filled
	if err != nil {
		if tr.err != nil {
			return nil, obj, nil, fmt.Errorf("read %s: %w", b.URI(key), tr.err)
		}
		return nil, obj, nil, dataErr(key, "", -1, "not a readable Parquet file: %v", err)
	}
	return f, obj, wr, nil
}

// checkFooter validates the trailer and the footer before parquet-go sees the file:
// parquet-go allocates the footer length written in the file's last bytes without checking it
// against the file size, so a 100-byte hostile file could make it allocate gigabytes
// (decision 0003), and it loops over a footer list's declared size past the end of the data
// (checkThrift, decision 0013).
// The footer and trailer are fetched once, into wr's window, where parquet-go then reads them.
func checkFooter(r io.ReaderAt, wr *windowReader, size int64) error {
	if size < 12 {
		return fmt.Errorf("%d bytes is too short for Parquet (magic, footer, magic)", size)
	}
	var tail [8]byte
	if _, err := r.ReadAt(tail[:], size-8); err != nil && err != io.EOF {
		return err
	}
	if string(tail[4:]) != "PAR1" {
		return fmt.Errorf("no Parquet magic at the end of the file (truncated?)")
	}
	n := int64(binary.LittleEndian.Uint32(tail[:4]))
	if n > size-12 {
		return fmt.Errorf("footer length %d exceeds the file's %d bytes (truncated or corrupt)", n, size)
	}
	if err := wr.prefetch(size-8-n, n+8); err != nil {
		return err
	}
	return checkThrift(wr.data[:n])
}

// openFile guards parquet-go against panics on hostile input: bad input gets an error.
func openFile(r io.ReaderAt, size int64) (f *parquet.File, err error) {
	defer func() {
		if p := recover(); p != nil {
			f, err = nil, fmt.Errorf("corrupt file: %v", p)
		}
	}()
	// Neither bloom filters nor page indexes are used: skipping them saves their reads.
	return parquet.OpenFile(r, size, parquet.SkipBloomFilters(true), parquet.SkipPageIndex(true))
}

func toFloat(v parquet.Value) float64 {
	switch v.Kind() {
	case parquet.Boolean:
		if v.Boolean() {
			return 1
		}
		return 0
	case parquet.Int32:
		return float64(v.Int32())
	case parquet.Int64:
		return float64(v.Int64())
	case parquet.Float:
		return float64(v.Float())
	default:
		return v.Double()
	}
}

func columnNames(s *parquet.Schema) []string {
	var out []string
	for _, p := range s.Columns() {
		out = append(out, strings.Join(p, "."))
	}
	sort.Strings(out)
	return out
}
