package dataset

import (
	"bytes"

	"github.com/parquet-go/parquet-go"
)

// EncodeParquet writes rows (structs with parquet tags) as one Parquet file: the prediction
// log, feedback labels and the demo dataset are written with it.
func EncodeParquet[T any](rows []T) ([]byte, error) {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[T](&buf)
	if _, err := w.Write(rows); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
