package features

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"os"
)

// A spill is a set of temporary files, one per partition, written sequentially and read
// back once: how a training set is built in bounded memory (rows are partitioned by a hash of
// their entity key, and each partition is joined on its own).
type spill struct {
	files []*os.File
	w     []*bufio.Writer
}

func newSpill(dir string, k int) (*spill, error) {
	s := &spill{}
	for range k {
		f, err := os.CreateTemp(dir, "driftline-spill-*")
		if err != nil {
			s.close()
			return nil, fmt.Errorf("spill: %w", err)
		}
		s.files = append(s.files, f)
		s.w = append(s.w, bufio.NewWriterSize(f, 32<<10))
	}
	return s, nil
}

// reader flushes partition p and returns a reader from its start.
func (s *spill) reader(p int) (*bufio.Reader, error) {
	if err := s.w[p].Flush(); err != nil {
		return nil, fmt.Errorf("spill: %w", err)
	}
	if _, err := s.files[p].Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("spill: %w", err)
	}
	return bufio.NewReaderSize(s.files[p], 32<<10), nil
}

// drop removes partition p's file once it has been read.
func (s *spill) drop(p int) {
	if f := s.files[p]; f != nil {
		f.Close()
		os.Remove(f.Name())
		s.files[p] = nil
	}
}

func (s *spill) close() {
	for p := range s.files {
		s.drop(p)
	}
}

func partitionOf(key string, k int) int {
	h := fnv.New64a()
	h.Write([]byte(key))
	return int(h.Sum64() % uint64(k))
}

// The records: integers as varints, strings length-prefixed, floats as 8 bytes.
type enc struct {
	w   *bufio.Writer
	buf [binary.MaxVarintLen64]byte
	err error
}

func (e *enc) int(v int64) {
	n := binary.PutVarint(e.buf[:], v)
	e.write(e.buf[:n])
}

func (e *enc) str(s string) {
	e.int(int64(len(s)))
	if e.err == nil {
		_, e.err = e.w.WriteString(s)
	}
}

func (e *enc) float(f float64) {
	binary.LittleEndian.PutUint64(e.buf[:8], math.Float64bits(f))
	e.write(e.buf[:8])
}

func (e *enc) write(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

type dec struct {
	r   *bufio.Reader
	buf [8]byte
	err error
}

// more reports whether another record follows (false at the end or after an error).
func (d *dec) more() bool {
	if d.err != nil {
		return false
	}
	_, err := d.r.Peek(1)
	if errors.Is(err, io.EOF) {
		return false
	}
	d.err = err
	return err == nil
}

func (d *dec) int() int64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadVarint(d.r)
	d.err = err
	return v
}

func (d *dec) str() string {
	n := d.int()
	if d.err != nil || n < 0 {
		return ""
	}
	b := make([]byte, n)
	_, d.err = io.ReadFull(d.r, b)
	return string(b)
}

func (d *dec) float() float64 {
	if d.err != nil {
		return 0
	}
	_, d.err = io.ReadFull(d.r, d.buf[:])
	return math.Float64frombits(binary.LittleEndian.Uint64(d.buf[:]))
}
