package contract

import (
	"errors"
	"fmt"
	"slices"
)

// DateLayout is the format of partition dates and window bounds: dt=YYYY-MM-DD.
const DateLayout = "2006-01-02"

// Column types of a contract.
const (
	TypeInt    = "int"    // Parquet INT32 or INT64
	TypeDouble = "double" // Parquet FLOAT or DOUBLE (INT32/INT64 are accepted and widened)
	TypeString = "string" // Parquet BYTE_ARRAY
	TypeBool   = "bool"   // Parquet BOOLEAN
)

// Column roles.
const (
	RoleFeature   = "feature"
	RoleTarget    = "target"
	RoleEntityKey = "entity_key"
	RoleEventTime = "event_time"
	RoleProtected = "protected_attribute"
	RoleOther     = "other"
)

// Column is one column of a data contract.
type Column struct {
	Name     string   `yaml:"name" json:"name"`
	Type     string   `yaml:"type" json:"type"`
	Role     string   `yaml:"role" json:"role"`
	Nullable bool     `yaml:"nullable" json:"nullable"`
	Min      *float64 `yaml:"min" json:"min,omitempty"`
	Max      *float64 `yaml:"max" json:"max,omitempty"`
	// Allowed lists the only values a column may hold (written as strings: "0", "north").
	Allowed []string `yaml:"allowed" json:"allowed,omitempty"`
	// Categorical marks a feature whose values are categories (strings always are).
	Categorical bool `yaml:"categorical" json:"categorical,omitempty"`
	// PII marks personal data: running the loop on the dataset needs the read_pii action.
	PII bool `yaml:"pii" json:"pii,omitempty"`
}

// HasPII reports whether any column holds personal data.
func (c Contract) HasPII() bool {
	for _, col := range c.Columns {
		if col.PII {
			return true
		}
	}
	return false
}

// IsCategorical reports whether drift treats the column as categories.
func (c Column) IsCategorical() bool {
	return c.Categorical || c.Type == TypeString || c.Type == TypeBool
}

// Contract is a dataset's data-quality contract.
type Contract struct {
	Columns []Column `yaml:"columns" json:"columns"`
	// UniqueKey columns identify a row within one partition (one event date).
	UniqueKey []string `yaml:"unique_key" json:"unique_key,omitempty"`
	// MaxBadRowShare is the share of rows that may be quarantined before a run fails.
	MaxBadRowShare float64 `yaml:"max_bad_row_share" json:"max_bad_row_share"`
}

// Column returns a column by name.
func (c Contract) Column(name string) (Column, bool) {
	for _, col := range c.Columns {
		if col.Name == name {
			return col, true
		}
	}
	return Column{}, false
}

// WithRole lists the columns of a role.
func (c Contract) WithRole(role string) []Column {
	var out []Column
	for _, col := range c.Columns {
		if col.Role == role {
			out = append(out, col)
		}
	}
	return out
}

// Validate checks the contract itself, naming the column and field of each problem.
func (c Contract) Validate() error {
	var errs []error
	seen := map[string]bool{}
	for i, col := range c.Columns {
		at := fmt.Sprintf("contract.columns[%d] (%s)", i, col.Name)
		if col.Name == "" {
			errs = append(errs, fmt.Errorf("contract.columns[%d]: name is required", i))
		}
		if seen[col.Name] {
			errs = append(errs, fmt.Errorf("%s: listed twice", at))
		}
		seen[col.Name] = true
		if !slices.Contains([]string{TypeInt, TypeDouble, TypeString, TypeBool}, col.Type) {
			errs = append(errs, fmt.Errorf("%s: type %q is not int, double, string or bool", at, col.Type))
		}
		if !slices.Contains([]string{RoleFeature, RoleTarget, RoleEntityKey, RoleEventTime, RoleProtected, RoleOther}, col.Role) {
			errs = append(errs, fmt.Errorf("%s: role %q is not feature, target, entity_key, event_time, protected_attribute or other", at, col.Role))
		}
		if (col.Min != nil || col.Max != nil) && (col.Type == TypeString || col.Type == TypeBool) {
			errs = append(errs, fmt.Errorf("%s: min/max need a numeric type", at))
		}
		if col.Min != nil && col.Max != nil && *col.Min > *col.Max {
			errs = append(errs, fmt.Errorf("%s: min %g is above max %g", at, *col.Min, *col.Max))
		}
		if col.Role == RoleTarget && col.Nullable {
			errs = append(errs, fmt.Errorf("%s: a target cannot be nullable", at))
		}
	}
	for _, k := range c.UniqueKey {
		if !seen[k] {
			errs = append(errs, fmt.Errorf("contract.unique_key: %q is not a contract column", k))
		}
	}
	if c.MaxBadRowShare < 0 || c.MaxBadRowShare > 1 {
		errs = append(errs, fmt.Errorf("contract.max_bad_row_share: must be between 0 and 1, got %g", c.MaxBadRowShare))
	}
	if len(c.WithRole(RoleTarget)) > 1 {
		errs = append(errs, errors.New("contract: at most one column has role target"))
	}
	return errors.Join(errs...)
}

// Reason is why a row was rejected: one of the constants below, recorded with every
// quarantined row (RowIssue.Kind) and counted per column in the validation report.
type Reason string

// The reasons a row breaks a contract.
const (
	ReasonNull         Reason = "null"          // a null in a column that is not nullable
	ReasonNaN          Reason = "nan"           // NaN in a numeric column
	ReasonInfinite     Reason = "infinite"      // +Inf or -Inf in a numeric column
	ReasonBelowMin     Reason = "below_min"     // under the column's min
	ReasonAboveMax     Reason = "above_max"     // over the column's max
	ReasonNotAllowed   Reason = "not_allowed"   // not one of the column's allowed values
	ReasonDuplicateKey Reason = "duplicate_key" // the unique key was seen before in the partition
	ReasonInexact      Reason = "inexact"       // an int beyond ±2^53, which a float64 cannot hold
)

// MaxExactInt is the largest magnitude of an int column's values: Driftline holds every
// numeric value as a float64 (features, drift, models), which counts integers exactly up to
// 2^53 and rounds beyond it, so a larger value is rejected (ReasonInexact), never rounded.
const MaxExactInt = 1 << 53

// ExactInt reports whether an int column can hold v without rounding it.
func ExactInt(v int64) bool { return v >= -MaxExactInt && v <= MaxExactInt }

// InexactWords says for people why v was rejected.
func InexactWords(v int64) string {
	return fmt.Sprintf("integer %d beyond ±2^53: held as a float64 it would be rounded", v)
}
