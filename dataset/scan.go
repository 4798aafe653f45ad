package dataset

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/objstore"
)

// ColumnData holds one column of one row group. Int, double and bool values are in Num
// (bool as 0/1), strings in Str; Null marks nulls.
type ColumnData struct {
	Num  []float64
	Str  []string
	Null []bool
	// inexact holds the rows of an int column whose stored value is beyond ±2^53 (with the
	// value, for the words): a float64 would round it, so the contract rejects the row.
	inexact map[int]int64
}

// Batch is one row group of one file, with the contract applied: Accepted says which rows
// passed, Issues holds one reason per rejected row.
type Batch struct {
	File      string
	FileIndex int
	Date      string
	RowGroup  int
	FirstRow  int64  // index in the file of the batch's first row
	RowKey0   uint64 // ordinal of the first row across the snapshot: row keys for sampling
	Rows      int
	Cols      map[string]*ColumnData
	Accepted  []bool
	Issues    []RowIssue
	// fileRows is, for a batch of one day's rows of a file (File.EventTime), each row's index
	// in the file; nil when the batch's rows are the file's from FirstRow on.
	fileRows []int64
}

// FileRow is row r's index in its file, for messages and quarantine records.
func (b *Batch) FileRow(r int) int64 {
	if b.fileRows != nil {
		return b.fileRows[r]
	}
	return b.FirstRow + int64(r)
}

// Num returns a numeric column of the batch.
func (b *Batch) Num(name string) []float64 { return b.Cols[name].Num }

// Value renders a cell for reports and quarantine records.
func (b *Batch) Value(c contract.Column, r int) string {
	d := b.Cols[c.Name]
	switch {
	case d.Null[r]:
		return "null"
	case c.Type == contract.TypeString:
		return d.Str[r]
	default:
		return FormatNumber(c, d.Num[r])
	}
}

// FormatNumber renders a value of a numeric or bool column as reports and drift's category
// counts show it (an int column's 3 is "3", a bool's 1 is "true"), so a value read from a
// request renders as the same value read from Parquet.
func FormatNumber(c contract.Column, v float64) string {
	switch c.Type {
	case contract.TypeBool:
		return strconv.FormatBool(v != 0)
	case contract.TypeInt:
		return strconv.FormatInt(int64(v), 10)
	default:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
}

// RowIssue is one rejected row with the reason and its values, kept in quarantine.
type RowIssue struct {
	File   string          `json:"file"`
	Row    int64           `json:"row"`
	Column string          `json:"column"`
	Kind   contract.Reason `json:"kind"`
	// Reason says it for people: "below min 0", "duplicate key store_id=1 (first at row 7)".
	Reason string            `json:"reason"`
	Value  string            `json:"value"`
	Values map[string]string `json:"values"`
}

func compatible(t string, k parquet.Kind) bool {
	switch t {
	case contract.TypeInt:
		return k == parquet.Int32 || k == parquet.Int64
	case contract.TypeDouble:
		return k == parquet.Float || k == parquet.Double || k == parquet.Int32 || k == parquet.Int64
	case contract.TypeString:
		return k == parquet.ByteArray
	case contract.TypeBool:
		return k == parquet.Boolean
	}
	return false
}

// Scan reads every file of the snapshot row group by row group (memory bounded by one row
// group of the contract's columns), checks each pinned file is unchanged and has the
// contract's columns with compatible types, applies the row checks and calls visit for each
// batch. File-level problems are *DataError naming file and column.
func Scan(ctx context.Context, b objstore.Bucket, s Snapshot, c contract.Contract, visit func(*Batch) error) error {
	return ScanDays(ctx, b, s, c, AllDays, visit)
}

// ScanDays is Scan over the files of the selected days only; the others are not opened.
func ScanDays(ctx context.Context, b objstore.Bucket, s Snapshot, c contract.Contract, days Days, visit func(*Batch) error) error {
	return ScanDaysAfter(ctx, b, s, c, days, nil, visit)
}

// Position is a batch of a scan: the file's index in the snapshot and its row group.
type Position struct {
	FileIndex int `json:"file_index"`
	RowGroup  int `json:"row_group"`
}

// covers reports whether batch (file, row group) is p or comes before it.
func (p *Position) covers(file, rowGroup int) bool {
	return p != nil && (file < p.FileIndex || file == p.FileIndex && rowGroup <= p.RowGroup)
}

// ScanDaysAfter is ScanDays resumed after a batch (nil: from the start): the batches up to and
// including after are not visited, and the files before its file are not opened. Row keys and
// row numbers are those of a scan from the start. With a unique key, the row groups of after's
// file up to after are decoded and checked again (not visited) so a duplicate of a key seen
// there is still found.
func ScanDaysAfter(ctx context.Context, b objstore.Bucket, s Snapshot, c contract.Contract, days Days, after *Position, visit func(*Batch) error) error {
	return ScanFilesAfter(ctx, b, s, c, func(fi int) bool { return days(s.Files[fi].Date) }, after, visit)
}

// ScanFilesAfter is ScanDaysAfter over the files keep takes (by their index in the
// snapshot): a partition of the window. Row keys and row numbers are those of a scan of the
// whole window, counted over the files left out from their row counts.
func ScanFilesAfter(ctx context.Context, b objstore.Bucket, s Snapshot, c contract.Contract, keep func(fileIndex int) bool, after *Position, visit func(*Batch) error) error {
	var rowKey uint64
	for fi, f := range s.Files {
		if !keep(fi) || (after != nil && fi < after.FileIndex && f.Rows >= 0) {
			rowKey += uint64(max(f.Rows, 0))
			continue
		}
		n, err := scanPinned(ctx, b, s, fileScan{file: f, index: fi, rowKey0: rowKey, to: -1, after: after}, c, visit)
		if err != nil {
			return err
		}
		rowKey += uint64(n)
	}
	return nil
}

// scanPinned is scanFile once the file is checked to be the one the snapshot pinned.
func scanPinned(ctx context.Context, b objstore.Bucket, s Snapshot, fs fileScan, c contract.Contract, visit func(*Batch) error) (int64, error) {
	head, err := b.Head(ctx, fs.file.Key)
	if err != nil {
		return 0, err
	}
	if head.ETag != fs.file.ETag {
		return 0, dataErr(fs.file.Key, "", -1, "changed since snapshot %s was taken (etag %s, pinned %s): datasets are immutable", s.ID, head.ETag, fs.file.ETag)
	}
	return scanFile(ctx, b, fs, c, visit)
}

// ScanFile scans one file; f.Rows < 0 skips the row-count check. It returns the rows read.
func ScanFile(ctx context.Context, b objstore.Bucket, f File, fileIndex int, rowKey0 uint64, c contract.Contract, visit func(*Batch) error) (int64, error) {
	return scanFile(ctx, b, fileScan{file: f, index: fileIndex, rowKey0: rowKey0, to: -1}, c, visit)
}

// fileScan is what a scan of one file needs: the file, its index in the snapshot and the row
// key of its first row; the row groups [from, to) it visits (to < 0: all of them); the batch
// a resumed scan goes on after; and, for a piece of a file split by row groups, the unique
// key's state across the file's other pieces (keys, nil: the whole file is read).
type fileScan struct {
	file     File
	index    int
	rowKey0  uint64
	from, to int
	after    *Position
	keys     *pieceKeys
}

// scanFile is ScanFile that visits the row groups fs names, not those fs.after covers. With
// a unique key, the row groups of the piece up to fs.after are decoded and checked again (not
// visited) so a duplicate of a key seen there is still found.
func scanFile(ctx context.Context, b objstore.Bucket, fs fileScan, c contract.Contract, visit func(*Batch) error) (int64, error) {
	f := fs.file
	pf, obj, wr, err := openParquet(ctx, b, f.Key)
	if err != nil {
		return 0, err
	}
	idx, err := contractLeaves(pf, f, c)
	if err != nil {
		return 0, err
	}
	allowed := make([]allowedSet, len(c.Columns))
	for i, col := range c.Columns {
		if len(col.Allowed) > 0 {
			allowed[i] = newAllowedSet(col)
		}
	}
	var keyCols []contract.Column
	for _, k := range c.UniqueKey {
		col, _ := c.Column(k)
		keyCols = append(keyCols, col)
	}
	rgs := pf.RowGroups()
	to := fs.to
	if to < 0 {
		to = len(rgs)
	} else if err := fs.file.pieceMatches(rgs, fs.from, to); err != nil {
		return 0, err
	}
	seenKeys := map[uint64]int64{}
	var read int64
	for _, rg := range rgs[:fs.from] {
		read += rg.NumRows()
	}
	// Row group i+1 is decoded while row group i is checked and visited: two cores for one
	// file's pass, one more row group in memory.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan decoded, 1)
	r := rowGroupReader{b: b, pf: pf, wr: wr, size: obj.Size, f: f, c: c, idx: idx}
	if f.EventTime != "" {
		if r.event, r.dec, err = eventLeaf(pf, f); err != nil {
			return 0, err
		}
		d, err := time.Parse(DateLayout, f.Date)
		if err != nil {
			return 0, dataErr(f.Key, f.EventTime, -1, "the entry's day %q: %v", f.Date, err)
		}
		r.day = d.Unix() / 86400
	}
	go decodeRowGroups(ctx, r, fs, len(keyCols) > 0, to, next)
	for d := range next {
		if d.err != nil {
			return read, d.err
		}
		if d.batch == nil {
			read += d.rows
			continue
		}
		batch := d.batch
		batch.FileIndex, batch.FirstRow, batch.RowKey0 = fs.index, read, fs.rowKey0+uint64(read)
		checkRows(batch, c, allowed, keyCols, seenKeys, fs.keys)
		read += int64(batch.Rows)
		if d.skip {
			continue
		}
		if err := visit(batch); err != nil {
			return read, err
		}
	}
	if err := ctx.Err(); err != nil {
		return read, err
	}
	if f.Rows >= 0 && fs.to < 0 && read != f.Rows {
		return read, dataErr(f.Key, "", -1, "read %d rows, the footer said %d", read, f.Rows)
	}
	return read, nil
}

// rowGroupReader is what decoding a file's row groups needs.
type rowGroupReader struct {
	b    objstore.Bucket
	pf   *parquet.File
	wr   *windowReader
	size int64
	f    File
	c    contract.Contract
	idx  []int
	// For a file entry of one day (f.EventTime set): the event-time column, its decoder and
	// the day kept.
	event int
	dec   dayDecoder
	day   int64
}

// decodeRowGroups decodes the row groups [fs.from, to) of the file in order and hands them over
// on next (closed at the end or at the first error, which is handed over too); a row group a
// resumed scan skips is only counted when there is no key to find in it.
func decodeRowGroups(ctx context.Context, r rowGroupReader, fs fileScan, keyed bool, to int, next chan<- decoded) {
	defer close(next)
	rgs := r.pf.RowGroups()
	for rgi := fs.from; rgi < to; rgi++ {
		d := decoded{skip: fs.after.covers(fs.index, rgi)}
		if d.err = ctx.Err(); d.err == nil {
			switch {
			case r.dec != nil && !mayHold(rgs[rgi].ColumnChunks()[r.event], r.dec, r.day, r.day):
				// none of the entry's day in it
			case d.skip && !keyed:
				d.rows = rgs[rgi].NumRows()
				if r.dec != nil {
					d.rows, d.err = dayRows(rgs[rgi].ColumnChunks()[r.event], r.dec, r.day)
				}
			default:
				d.batch, d.err = readRowGroup(r.b, r.pf, r.wr, r.size, r.f, r.c, r.idx, rgi)
				if d.err == nil && r.dec != nil {
					d.err = keepDay(d.batch, rgs[rgi].ColumnChunks()[r.event], r.dec, r.day, rowsBefore(rgs, rgi))
				}
			}
		}
		select {
		case next <- d:
		case <-ctx.Done():
			return
		}
		if d.err != nil {
			return
		}
	}
}

// rowsBefore is the index in the file of row group rgi's first row.
func rowsBefore(rgs []parquet.RowGroup, rgi int) int64 {
	var n int64
	for _, rg := range rgs[:rgi] {
		n += rg.NumRows()
	}
	return n
}

// decoded is a row group as the decoding goroutine hands it over: its batch (nil when it was
// not decoded: then its rows), whether a resumed scan skips it, or the error that stopped.
type decoded struct {
	batch *Batch
	rows  int64
	skip  bool
	err   error
}

// contractLeaves finds the contract's columns in the file's schema, checking their types.
func contractLeaves(pf *parquet.File, f File, c contract.Contract) ([]int, error) {
	schema := pf.Schema()
	idx := make([]int, len(c.Columns))
	for i, col := range c.Columns {
		if _, ok := f.Partition[col.Name]; ok {
			idx[i] = -1 // a partition value, not in the file
			continue
		}
		name := col.Name
		if pn, ok := f.Physical[col.Name]; ok {
			name = pn
		}
		leaf, ok := schema.Lookup(name)
		if !ok {
			return nil, dataErr(f.Key, col.Name, -1, "column not found: the contract requires it (the file has: %s)", strings.Join(columnNames(schema), ", "))
		}
		if k := leaf.Node.Type().Kind(); !compatible(col.Type, k) && !(col.Type == contract.TypeString && isDateNode(leaf.Node)) {
			return nil, dataErr(f.Key, col.Name, -1, "physical type %s does not hold the contract's type %s", k, col.Type)
		}
		idx[i] = leaf.ColumnIndex
	}
	return idx, nil
}

// readRowGroup reads row group rgi's contract columns (idx: their leaf columns) into a batch:
// one ranged GET for the columns' chunks, every page header checked before parquet-go reads
// it, every column of the same length.
func readRowGroup(b objstore.Bucket, pf *parquet.File, wr *windowReader, size int64, f File, c contract.Contract, idx []int, rgi int) (*Batch, error) {
	rg := pf.RowGroups()[rgi]
	batch := &Batch{File: f.Key, Date: f.Date, RowGroup: rgi, Cols: map[string]*ColumnData{}}
	// One ranged GET for the contract's column chunks of this row group (they are
	// contiguous in the file), instead of one per page.
	// The page headers of every chunk are checked first (checkPages): parquet-go allocates
	// what a header declares.
	var stored []int
	for _, j := range idx {
		if j >= 0 {
			stored = append(stored, j)
		}
	}
	lo, hi, ok := int64(0), int64(0), true
	if len(stored) > 0 {
		lo, hi, ok = chunkSpan(pf, rgi, stored, size)
	}
	if !ok {
		return nil, dataErr(f.Key, "", -1, "row group %d: its column chunks are not inside the file's %d bytes (or span over 256 MiB)", rgi, size)
	}
	if len(stored) > 0 {
		if err := wr.prefetch(lo, hi-lo); err != nil {
			return nil, fmt.Errorf("read %s row group %d: %w", b.URI(f.Key), rgi, err)
		}
	}
	for i, col := range c.Columns {
		if idx[i] < 0 {
			continue
		}
		start, end := chunkRange(pf, rgi, idx[i])
		if err := checkPages(wr.data[start-lo : end-lo]); err != nil {
			return nil, dataErr(f.Key, col.Name, -1, "row group %d: %v", rgi, err)
		}
	}
	chunks := rg.ColumnChunks()
	for i, col := range c.Columns {
		if idx[i] < 0 {
			d, err := constantColumn(f.Partition[col.Name], col.Type, rg.NumRows())
			if err != nil {
				return nil, dataErr(f.Key, col.Name, -1, "partition value: %v", err)
			}
			batch.Cols[col.Name] = d
			continue
		}
		d, err := readColumn(chunks[idx[i]], col.Type, rg.NumRows())
		if err != nil {
			return nil, dataErr(f.Key, col.Name, -1, "decode row group %d: %v", rgi, err)
		}
		batch.Cols[col.Name] = d
	}
	batch.Rows = len(batch.Cols[c.Columns[0].Name].Null)
	for _, col := range c.Columns {
		if n := len(batch.Cols[col.Name].Null); n != batch.Rows {
			return nil, dataErr(f.Key, col.Name, -1, "row group %d has %d values, column %s has %d", rgi, n, c.Columns[0].Name, batch.Rows)
		}
	}
	return batch, nil
}

// chunkRange is one column chunk's byte range (chunkSpan checked it lies in the file).
func chunkRange(pf *parquet.File, rg, col int) (start, end int64) {
	m := pf.Metadata().RowGroups[rg].Columns[col].MetaData
	start = m.DataPageOffset
	if m.DictionaryPageOffset > 0 && m.DictionaryPageOffset < start {
		start = m.DictionaryPageOffset
	}
	return start, start + m.TotalCompressedSize
}

// chunkSpan is the byte range of the given columns' chunks in row group rg, when the file's
// metadata describes a sane one: inside the file, at most 256 MiB.
func chunkSpan(pf *parquet.File, rg int, cols []int, size int64) (lo, hi int64, ok bool) {
	md := pf.Metadata()
	if rg >= len(md.RowGroups) {
		return 0, 0, false
	}
	lo, hi = math.MaxInt64, 0
	for _, ci := range cols {
		if ci >= len(md.RowGroups[rg].Columns) {
			return 0, 0, false
		}
		m := md.RowGroups[rg].Columns[ci].MetaData
		start := m.DataPageOffset
		if m.DictionaryPageOffset > 0 && m.DictionaryPageOffset < start {
			start = m.DictionaryPageOffset
		}
		if start < 0 || m.TotalCompressedSize < 0 || start+m.TotalCompressedSize > size {
			return 0, 0, false
		}
		lo, hi = min(lo, start), max(hi, start+m.TotalCompressedSize)
	}
	const maxSpan = 256 << 20
	if lo < 0 || hi > size || hi <= lo || hi-lo > maxSpan {
		return 0, 0, false
	}
	return lo, hi, true
}

// checkRows applies the row-level contract: presence, finiteness, ranges, allowed values and
// key uniqueness within the file (one partition). For a piece of a split file, keys holds the
// duplicates of keys first seen in the file's earlier pieces and records the piece's own
// first keys.
func checkRows(b *Batch, c contract.Contract, allowed []allowedSet, keyCols []contract.Column, seen map[uint64]int64, keys *pieceKeys) {
	b.Accepted = make([]bool, b.Rows)
	h := fnv.New64a()
	data := make([]*ColumnData, len(c.Columns))
	for i, col := range c.Columns {
		data[i] = b.Cols[col.Name]
	}
	for r := 0; r < b.Rows; r++ {
		col, kind, reason := rowProblem(data, c, allowed, r)
		if kind == "" && len(keyCols) > 0 {
			key, row := keyHash(h, b, keyCols, r), b.FileRow(r)
			first, dup := seen[key]
			if !dup && keys != nil {
				if first, dup = keys.earlier(b.FileIndex, row); dup {
					seen[key] = first
				}
			}
			if dup {
				col, kind, reason = keyCols[0], contract.ReasonDuplicateKey, fmt.Sprintf("duplicate key %s (first at row %d)", keyString(b, keyCols, r), first)
			} else {
				seen[key] = row
				keys.record(b.FileIndex, key, row)
			}
		}
		if kind == "" {
			b.Accepted[r] = true
			continue
		}
		values := make(map[string]string, len(c.Columns))
		for _, cc := range c.Columns {
			values[cc.Name] = b.Value(cc, r)
		}
		b.Issues = append(b.Issues, RowIssue{File: b.File, Row: b.FileRow(r), Column: col.Name, Kind: kind, Reason: reason,
			Value: b.Value(col, r), Values: values})
	}
}

// keyHash is row r's unique key hashed (FNV-1a over the key's values).
func keyHash(h hash.Hash64, b *Batch, keyCols []contract.Column, r int) uint64 {
	var raw [8]byte
	h.Reset()
	for _, k := range keyCols {
		d := b.Cols[k.Name]
		if k.Type == contract.TypeString {
			_, _ = h.Write([]byte(d.Str[r]))
		} else {
			binary.LittleEndian.PutUint64(raw[:], math.Float64bits(d.Num[r]))
			_, _ = h.Write(raw[:])
		}
		_, _ = h.Write([]byte{0})
	}
	return h.Sum64()
}

func keyString(b *Batch, keyCols []contract.Column, r int) string {
	parts := make([]string, len(keyCols))
	for i, k := range keyCols {
		parts[i] = k.Name + "=" + b.Value(k, r)
	}
	return strings.Join(parts, ",")
}

// allowedSet holds a column's allowed values, as numbers for numeric columns so the check
// needs no formatting.
type allowedSet struct {
	nums map[float64]bool
	strs map[string]bool
}

func newAllowedSet(col contract.Column) allowedSet {
	a := allowedSet{strs: map[string]bool{}}
	if col.Type != contract.TypeString {
		a.nums = map[float64]bool{}
	}
	for _, v := range col.Allowed {
		a.strs[v] = true
		if a.nums == nil {
			continue
		}
		switch {
		case col.Type == contract.TypeBool && (v == "true" || v == "false"):
			a.nums[map[string]float64{"true": 1, "false": 0}[v]] = true
		default:
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				a.nums[f] = true
			}
		}
	}
	return a
}

func (a allowedSet) empty() bool { return a.strs == nil }

func (a allowedSet) has(d *ColumnData, r int) bool {
	if a.nums != nil {
		return a.nums[d.Num[r]]
	}
	return a.strs[d.Str[r]]
}

// rowProblem is the first contract breach of row r: the column, the kind and the words.
func rowProblem(data []*ColumnData, c contract.Contract, allowed []allowedSet, r int) (contract.Column, contract.Reason, string) {
	for i, col := range c.Columns {
		d := data[i]
		if d.Null[r] {
			if col.Nullable {
				continue
			}
			return col, contract.ReasonNull, "null value"
		}
		if v, ok := d.inexact[r]; ok {
			return col, contract.ReasonInexact, contract.InexactWords(v)
		}
		if col.Type != contract.TypeString {
			v := d.Num[r]
			switch {
			case math.IsNaN(v):
				return col, contract.ReasonNaN, "NaN value"
			case math.IsInf(v, 0):
				return col, contract.ReasonInfinite, "infinite value"
			case col.Min != nil && v < *col.Min:
				return col, contract.ReasonBelowMin, fmt.Sprintf("below min %g", *col.Min)
			case col.Max != nil && v > *col.Max:
				return col, contract.ReasonAboveMax, fmt.Sprintf("above max %g", *col.Max)
			}
		}
		if !allowed[i].empty() && !allowed[i].has(d, r) {
			return col, contract.ReasonNotAllowed, "not an allowed value"
		}
	}
	return contract.Column{}, "", ""
}

func readColumn(cc parquet.ColumnChunk, typ string, rows int64) (d *ColumnData, err error) {
	asString := typ == contract.TypeString
	date := asString && isDateType(cc.Type()) // a DATE read as a string: YYYY-MM-DD
	defer func() {
		if p := recover(); p != nil {
			d, err = nil, fmt.Errorf("corrupt column chunk: %v", p)
		}
	}()
	// The row count is the file's claim: it only sizes the first allocation, capped.
	n := min(max(rows, 0), 1<<20)
	d = &ColumnData{Null: make([]bool, 0, n)}
	if asString {
		d.Str = make([]string, 0, n)
	} else {
		d.Num = make([]float64, 0, n)
	}
	pages := cc.Pages()
	defer pages.Close()
	buf := make([]parquet.Value, 1024)
	for {
		p, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			return d, nil
		}
		if err != nil {
			return nil, err
		}
		vr := p.Values()
		for {
			n, err := vr.ReadValues(buf)
			for _, v := range buf[:n] {
				null := v.IsNull()
				d.Null = append(d.Null, null)
				if asString {
					s := ""
					switch {
					case null:
					case date:
						s = time.Unix(int64(v.Int32())*86400, 0).UTC().Format(DateLayout)
					default:
						s = string(v.ByteArray())
					}
					d.Str = append(d.Str, s)
				} else if null {
					d.Num = append(d.Num, math.NaN())
				} else {
					if typ == contract.TypeInt && v.Kind() == parquet.Int64 && !contract.ExactInt(v.Int64()) {
						if d.inexact == nil {
							d.inexact = map[int]int64{}
						}
						d.inexact[len(d.Num)] = v.Int64()
					}
					d.Num = append(d.Num, toFloat(v))
				}
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				parquet.Release(p)
				return nil, err
			}
		}
		parquet.Release(p)
	}
}

// constantColumn is a partition value as a column of rows rows: the value (nil: null) read as
// the contract's type reads a stored one.
func constantColumn(v *string, typ string, rows int64) (*ColumnData, error) {
	if rows < 0 || rows > 1<<31 {
		return nil, fmt.Errorf("a row group of %d rows", rows)
	}
	n := int(rows)
	d := &ColumnData{Null: make([]bool, n)}
	var num float64
	switch {
	case v == nil:
	case typ == contract.TypeString:
	case typ == contract.TypeBool:
		b, err := strconv.ParseBool(*v)
		if err != nil {
			return nil, fmt.Errorf("%q is not a bool", *v)
		}
		if b {
			num = 1
		}
	default:
		f, err := strconv.ParseFloat(*v, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", *v)
		}
		num = f
	}
	if typ == contract.TypeString {
		d.Str = make([]string, n)
	} else {
		d.Num = make([]float64, n)
	}
	for r := range n {
		switch {
		case v == nil:
			d.Null[r] = true
			if d.Num != nil {
				d.Num[r] = math.NaN()
			}
		case d.Str != nil:
			d.Str[r] = *v
		default:
			d.Num[r] = num
		}
	}
	return d, nil
}
