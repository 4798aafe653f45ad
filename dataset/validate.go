package dataset

import (
	"fmt"
	"math"
)

// RowIssue is one rejected row with the reason, kept in quarantine.
type RowIssue struct {
	File   string  `json:"file"`
	Row    int64   `json:"row"`
	Column string  `json:"column"`
	Reason string  `json:"reason"`
	Value  *string `json:"value,omitempty"`
}

// CheckRows applies the row-level contract (every model column present and finite) and
// returns the accepted mask plus one issue per rejected row (its first broken column).
func CheckRows(c *Columns) (accepted []bool, issues []RowIssue) {
	accepted = make([]bool, c.Rows)
	for r := 0; r < c.Rows; r++ {
		accepted[r] = true
		for i, name := range c.Names {
			v := c.Data[i][r]
			var reason string
			switch {
			case c.Null[i][r]:
				reason = "null value"
			case math.IsNaN(v):
				reason = "NaN value"
			case math.IsInf(v, 0):
				reason = "infinite value"
			default:
				continue
			}
			s := fmt.Sprint(v)
			if c.Null[i][r] {
				s = "null"
			}
			issues = append(issues, RowIssue{File: c.File, Row: int64(r), Column: name, Reason: reason, Value: &s})
			accepted[r] = false
			break
		}
	}
	return accepted, issues
}
