package ingest

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

// An oversized record is quarantined with its first bytes whatever max_record_bytes is: a
// limit under the kept prefix (1,024 bytes) once made the size check slice past the record's
// end, a panic on every restart (a poison pill).
func TestOversizedRecordsAreQuarantinedWhateverTheLimit(t *testing.T) {
	for _, c := range []struct{ size, max, kept int }{{500, 100, 500}, {2000, 1024, 1024}, {101, 100, 101}, {5000, 10, 1024}} {
		r := &kgo.Record{Topic: "ev", Partition: 1, Offset: 7, Value: bytes.Repeat([]byte("x"), c.size)}
		q := oversized(r, c.max)
		require.Equal(t, c.size, q.Bytes)
		require.Len(t, q.Value, c.kept)
		require.Contains(t, q.Reason, "max_record_bytes")
		require.Equal(t, int64(7), q.Offset)
	}
}
