package dataset

import (
	"bufio"
	"container/heap"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/parquet-go/parquet-go"

	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/objstore"
)

// Piece is a unit of a partitioned pass: a whole file of the snapshot, or a range
// [FromRowGroup, ToRowGroup) of a large file's row groups (ToRowGroup < 0: the whole file).
type Piece struct {
	File         int `json:"file"`
	FromRowGroup int `json:"from_row_group"`
	ToRowGroup   int `json:"to_row_group"`
}

// Split says whether the piece is part of a file split by row groups.
func (p Piece) Split() bool { return p.ToRowGroup >= 0 }

// Pieces cuts the snapshot's files into pieces: a file of more than maxRows rows whose row
// groups the snapshot recorded becomes ranges of whole row groups of at most maxRows rows (a
// larger row group is a piece of its own); every other file is one piece. maxRows <= 0: one
// piece a file. The cut depends only on the snapshot, so every worker cuts it alike.
func (s Snapshot) Pieces(maxRows int64) []Piece {
	out := make([]Piece, 0, len(s.Files))
	for fi, f := range s.Files {
		if maxRows <= 0 || f.Rows <= maxRows || len(f.RowGroups) < 2 {
			out = append(out, Piece{File: fi, ToRowGroup: -1})
			continue
		}
		from, rows := 0, int64(0)
		for rg, n := range f.RowGroups {
			if rg > from && rows+n > maxRows {
				out = append(out, Piece{File: fi, FromRowGroup: from, ToRowGroup: rg})
				from, rows = rg, 0
			}
			rows += n
		}
		out = append(out, Piece{File: fi, FromRowGroup: from, ToRowGroup: len(f.RowGroups)})
	}
	return out
}

// pieceMatches checks that the file's row groups are those the snapshot recorded, so a
// piece reads the rows the cut gave it.
func (f File) pieceMatches(rgs []parquet.RowGroup, from, to int) error {
	if len(rgs) != len(f.RowGroups) || from < 0 || to > len(rgs) || from >= to {
		return dataErr(f.Key, "", -1, "row groups [%d, %d): the file has %d row groups, its snapshot recorded %d", from, to, len(rgs), len(f.RowGroups))
	}
	for i, rg := range rgs {
		if rg.NumRows() != f.RowGroups[i] {
			return dataErr(f.Key, "", -1, "row group %d has %d rows, its snapshot recorded %d", i, rg.NumRows(), f.RowGroups[i])
		}
	}
	return nil
}

// ScanPiecesAfter is ScanFilesAfter over pieces (in snapshot order): each piece's row groups
// are visited, with the row keys and row numbers of a scan of the whole window. keys carries
// the unique key across the pieces of split files (nil: no key state is kept across pieces,
// which is exact when no piece is split).
func ScanPiecesAfter(ctx context.Context, b objstore.Bucket, s Snapshot, c contract.Contract, pieces []Piece, keys *KeyCheck, after *Position, visit func(*Batch) error) error {
	rowKey := make([]uint64, len(s.Files)+1)
	for fi, f := range s.Files {
		if f.Rows < 0 {
			return dataErr(f.Key, "", -1, "no row count in snapshot %s: the window cannot be read in pieces", s.ID)
		}
		rowKey[fi+1] = rowKey[fi] + uint64(f.Rows)
	}
	for _, p := range pieces {
		if p.File < 0 || p.File >= len(s.Files) {
			return fmt.Errorf("%w: piece of file %d in a window of %d files", ErrInvalidData, p.File, len(s.Files))
		}
		f := s.Files[p.File]
		if after != nil && p.File < after.FileIndex && !p.Split() {
			continue // before the resumed batch; a split file's pieces are read again for their keys
		}
		fs := fileScan{file: f, index: p.File, rowKey0: rowKey[p.File], from: p.FromRowGroup, to: p.ToRowGroup, after: after}
		if p.Split() {
			fs.keys = keys.forPiece()
		}
		if _, err := scanPinned(ctx, b, s, fs, c, visit); err != nil {
			return err
		}
	}
	return nil
}

// KeyCheck is the unique key across the pieces of files split by row groups, exact as one
// pass over each file: a piece's first pass records, for every row that passes the other
// checks and whose key it sees first, the key's hash and row (Spill); MergeKeySpills finds
// the rows whose key an earlier piece of the same file saw first; the pieces holding such
// rows pass again with them (Rejects: file, row -> the key's first row), rejecting them as
// one pass would.
type KeyCheck struct {
	Spill   []KeyRow
	Rejects map[int]map[int64]int64
}

// KeyRow is a key's hash at a row of a file (its index in the snapshot).
type KeyRow struct {
	File int32
	Hash uint64
	Row  int64
}

// pieceKeys is a KeyCheck as one piece's scan uses it.
type pieceKeys struct{ kc *KeyCheck }

func (kc *KeyCheck) forPiece() *pieceKeys {
	if kc == nil {
		return nil
	}
	return &pieceKeys{kc}
}

// earlier says whether the row's key was first seen in an earlier piece, and at which row.
func (pk *pieceKeys) earlier(file int, row int64) (int64, bool) {
	if pk == nil {
		return 0, false
	}
	first, ok := pk.kc.Rejects[file][row]
	return first, ok
}

// record keeps a key the piece sees first.
func (pk *pieceKeys) record(file int, hash uint64, row int64) {
	if pk != nil {
		pk.kc.Spill = append(pk.kc.Spill, KeyRow{File: int32(file), Hash: hash, Row: row})
	}
}

const keyRowSize = 4 + 8 + 8

// EncodeSpill sorts the spill by file, hash and row and encodes it (20 bytes a key).
func EncodeSpill(spill []KeyRow) []byte {
	slices.SortFunc(spill, compareKeyRows)
	out := make([]byte, 0, len(spill)*keyRowSize)
	for _, k := range spill {
		out = binary.LittleEndian.AppendUint32(out, uint32(k.File))
		out = binary.LittleEndian.AppendUint64(out, k.Hash)
		out = binary.LittleEndian.AppendUint64(out, uint64(k.Row))
	}
	return out
}

func compareKeyRows(a, b KeyRow) int {
	switch {
	case a.File != b.File:
		return int(a.File - b.File)
	case a.Hash != b.Hash:
		if a.Hash < b.Hash {
			return -1
		}
		return 1
	case a.Row < b.Row:
		return -1
	case a.Row > b.Row:
		return 1
	}
	return 0
}

// spillReader reads an encoded spill in order.
type spillReader struct {
	part    int
	r       *bufio.Reader
	cur     KeyRow
	started bool
	buf     [keyRowSize]byte
}

func (sr *spillReader) next() (bool, error) {
	if _, err := io.ReadFull(sr.r, sr.buf[:]); err != nil {
		switch {
		case errors.Is(err, io.EOF):
			return false, nil
		case errors.Is(err, io.ErrUnexpectedEOF):
			return false, fmt.Errorf("%w: key spill of partition %d: cut short", ErrInvalidData, sr.part)
		}
		return false, fmt.Errorf("key spill of partition %d: %w", sr.part, err)
	}
	next := KeyRow{File: int32(binary.LittleEndian.Uint32(sr.buf[0:])), Hash: binary.LittleEndian.Uint64(sr.buf[4:]), Row: int64(binary.LittleEndian.Uint64(sr.buf[12:]))}
	if sr.started && compareKeyRows(next, sr.cur) <= 0 {
		return false, fmt.Errorf("%w: key spill of partition %d is not sorted", ErrInvalidData, sr.part)
	}
	sr.cur, sr.started = next, true
	return true, nil
}

type spillHeap []*spillReader

func (h spillHeap) Len() int           { return len(h) }
func (h spillHeap) Less(i, j int) bool { return compareKeyRows(h[i].cur, h[j].cur) < 0 }
func (h spillHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *spillHeap) Push(x any)        { *h = append(*h, x.(*spillReader)) }
func (h *spillHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// MergeKeySpills merges the partitions' spills (spills[i] is partition parts[i]'s) in one
// streaming pass, its memory one read buffer a spill: for each key of a file seen by more
// than one piece, the row where it was first seen is the key's first row, and every later
// row of it (another piece's first) is a duplicate, passed to reject with its partition.
func MergeKeySpills(parts []int, spills []io.Reader, reject func(part, file int, row, first int64)) error {
	h := make(spillHeap, 0, len(spills))
	for i, r := range spills {
		sr := &spillReader{part: parts[i], r: bufio.NewReaderSize(r, 64<<10)}
		ok, err := sr.next()
		if err != nil {
			return err
		}
		if ok {
			h = append(h, sr)
		}
	}
	heap.Init(&h)
	var first KeyRow
	started := false
	for h.Len() > 0 {
		sr := h[0]
		k := sr.cur
		if started && k.File == first.File && k.Hash == first.Hash {
			reject(sr.part, int(k.File), k.Row, first.Row)
		} else {
			first, started = k, true
		}
		ok, err := sr.next()
		switch {
		case err != nil:
			return err
		case ok:
			heap.Fix(&h, 0)
		default:
			heap.Pop(&h)
		}
	}
	return nil
}
