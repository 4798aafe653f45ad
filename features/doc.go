// Package features is Driftline's feature store: the point-in-time join that
// builds training sets (AsOf). See docs/features.md.
package features

import (
	"fmt"

	"github.com/driftline/driftline/dataset"
)

// dataError is a problem with the definitions or the data (a missing column or key, a bad
// time): it wraps dataset.ErrInvalidData, so the pipeline does not retry it.
type dataError struct{ err error }

func (e dataError) Error() string   { return e.err.Error() }
func (e dataError) Unwrap() []error { return []error{e.err, dataset.ErrInvalidData} }

func invalidf(format string, args ...any) error { return dataError{fmt.Errorf(format, args...)} }
