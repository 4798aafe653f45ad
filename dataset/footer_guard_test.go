package dataset

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/objstore"
)

// The hang FuzzScanFile found: a footer declaring a list far longer than its bytes made
// parquet-go's decoder spin. The guard refuses it at once, naming the problem.
func TestFooterListLongerThanItsBytesIsRefused(t *testing.T) {
	good, err := EncodeParquet(smallRetail().RetailDay(0))
	require.NoError(t, err)
	n := int(binary.LittleEndian.Uint32(good[len(good)-8:]))
	footer := good[len(good)-8-n : len(good)-8]
	require.NoError(t, checkThrift(footer), "a real footer walks")

	// FileMetaData field 2 (schema) is a list of structs: declare 2^31 of them.
	hostile := []byte{0x15, 0x02, // field 1 (version), i32 1
		0x19, 0xfc, 0xff, 0xff, 0xff, 0xff, 0x07, // field 2: list, size 15 = varint follows (2^31-1), structs
		0x00, 0x00}
	err = checkThrift(hostile)
	require.ErrorContains(t, err, "a list of 2147483647 elements in the 2 bytes left")
	for _, bad := range [][]byte{
		{0x18, 0x80, 0x80, 0x80, 0x80, 0x08}, // a string of 2^31 bytes
		{0x1b, 0xff, 0xff, 0xff, 0xff, 0x07}, // a map of 2^31 entries
		{0x15},                               // truncated
		[]byte(strings.Repeat("\x1c", 40)),   // nested too deep
	} {
		require.Error(t, checkThrift(bad), "% x", bad)
	}
	// As a file: a scan fails fast with a *DataError naming the file, no hang.
	file := append([]byte("PAR1"), hostile...)
	file = binary.LittleEndian.AppendUint32(file, uint32(len(hostile)))
	file = append(file, "PAR1"...)
	b := objstore.NewMem()
	_, err = b.Put(context.Background(), "h.parquet", file, objstore.PutOptions{})
	require.NoError(t, err)
	t0 := time.Now()
	_, err = ScanFile(context.Background(), b, File{Key: "h.parquet", Rows: -1}, 0, 0, retailContract(), func(*Batch) error { return nil })
	var de *DataError
	require.ErrorAs(t, err, &de)
	require.Contains(t, err.Error(), "corrupt footer")
	require.Less(t, time.Since(t0), time.Second)
}

func TestPageHeaderDeclaringHugeSizesIsRefused(t *testing.T) {
	// PageHeader: type DATA_PAGE (field 1, i32 0), uncompressed (2) and compressed (3) sizes.
	header := func(uncompressed, compressed int64) []byte {
		zz := func(v int64) []byte { return binary.AppendUvarint(nil, uint64((v<<1)^(v>>63))) }
		b := []byte{0x15}
		b = append(b, zz(0)...)
		b = append(b, 0x15)
		b = append(b, zz(uncompressed)...)
		b = append(b, 0x15)
		b = append(b, zz(compressed)...)
		return append(b, 0x00)
	}
	ok := append(header(4, 4), 1, 2, 3, 4)
	require.NoError(t, checkPages(ok))
	require.NoError(t, checkPages(append(ok, ok...)), "two pages")
	require.ErrorContains(t, checkPages(append(header(1<<31-1, 4), 1, 2, 3, 4)), "more than the 268435456 a page may hold")
	require.ErrorContains(t, checkPages(append(header(4, 1<<31-1), 1, 2, 3, 4)), "the column chunk has 4 left")
	require.ErrorContains(t, checkPages(header(4, -1)), "negative")
	require.Error(t, checkPages([]byte{0x15}), "truncated header")
	good, err := EncodeParquet(smallRetail().RetailDay(0))
	require.NoError(t, err)
	b := objstore.NewMem()
	_, err = b.Put(context.Background(), "g.parquet", good, objstore.PutOptions{})
	require.NoError(t, err)
	n, err := ScanFile(context.Background(), b, File{Key: "g.parquet", Rows: -1}, 0, 0, retailContract(), func(*Batch) error { return nil })
	require.NoError(t, err, "real files pass the guards")
	require.Positive(t, n)
}
