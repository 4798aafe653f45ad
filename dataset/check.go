package dataset

import "github.com/driftline/driftline/contract"

// A RowChecker applies a contract's row rules (nulls, NaN and infinities, min and max,
// allowed values) to rows that did not come from a scan, e.g. records consumed from a stream,
// with the same reasons and words a scan's quarantine records use. Unique keys are not
// checked (they span a partition).
type RowChecker struct {
	c       contract.Contract
	allowed []allowedSet
	data    []*ColumnData
}

// NewRowChecker prepares the contract's checks.
func NewRowChecker(c contract.Contract) *RowChecker {
	k := &RowChecker{c: c, allowed: make([]allowedSet, len(c.Columns)), data: make([]*ColumnData, len(c.Columns))}
	for i, col := range c.Columns {
		if len(col.Allowed) > 0 {
			k.allowed[i] = newAllowedSet(col)
		}
	}
	return k
}

// Check returns row r's first breach (ok false) with its column, kind and words; cols holds
// every contract column.
func (k *RowChecker) Check(cols map[string]*ColumnData, r int) (column string, kind contract.Reason, reason string, ok bool) {
	for i, col := range k.c.Columns {
		k.data[i] = cols[col.Name]
	}
	col, kind, reason := rowProblem(k.data, k.c, k.allowed, r)
	return col.Name, kind, reason, kind == ""
}
