package dataset

import (
	"errors"
	"fmt"
)

// ErrInvalidData marks problems of the data itself (schema, corrupt file, too many bad rows):
// retrying cannot fix them.
var ErrInvalidData = errors.New("invalid data")

// DataError names exactly what was wrong: file, column, row.
type DataError struct {
	File   string
	Column string
	Row    int64 // -1 when the problem is not one row
	Reason string
}

func (e *DataError) Error() string {
	msg := "file " + e.File
	if e.Column != "" {
		msg += " column " + e.Column
	}
	if e.Row >= 0 {
		msg += fmt.Sprintf(" row %d", e.Row)
	}
	return msg + ": " + e.Reason
}

// Unwrap lets callers test errors.Is(err, ErrInvalidData).
func (e *DataError) Unwrap() error { return ErrInvalidData }

func dataErr(file, column string, row int64, format string, args ...any) *DataError {
	return &DataError{File: file, Column: column, Row: row, Reason: fmt.Sprintf(format, args...)}
}
