package ingest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/dataset"
)

// rows accumulates one file's accepted records as a scan's columns hold them.
type rows struct {
	c     contract.Contract
	cols  map[string]*dataset.ColumnData
	n     int
	check *dataset.RowChecker
	// fields is the record being decoded (reused), cells its values by contract column.
	fields map[string]field
	cells  []cell
	// the last event time parsed (records of a range mostly share their day).
	lastTime string
	lastT    time.Time
}

func newRows(c contract.Contract) *rows {
	r := &rows{c: c, cols: map[string]*dataset.ColumnData{}, check: dataset.NewRowChecker(c), cells: make([]cell, len(c.Columns))}
	for _, col := range c.Columns {
		r.cols[col.Name] = &dataset.ColumnData{}
	}
	return r
}

// A problem is why a record was quarantined: the field and the words.
type problem struct {
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

// add decodes a JSON record into a new row and checks it against the contract; a record that
// does not fit (not a JSON object, a field of the wrong type, a missing required field, a
// breach of the contract's rules, no event time) leaves the rows unchanged and says why. It
// returns the record's event day (UTC, YYYY-MM-DD) and time.
func (r *rows) add(value []byte, eventTime string) (string, time.Time, *problem) {
	if !json.Valid(value) {
		var v any
		err := json.Unmarshal(value, &v) // for the words of the error
		return "", time.Time{}, &problem{Reason: fmt.Sprintf("malformed JSON: %v", err)}
	}
	if r.fields == nil {
		r.fields = map[string]field{}
	}
	if !scanObject(value, r.fields) {
		return "", time.Time{}, &problem{Reason: "not a JSON object"}
	}
	for i, col := range r.c.Columns {
		c := &r.cells[i]
		*c = cell{}
		f, present := r.fields[col.Name]
		if !present || f.kind == 'z' {
			c.null = true
			continue
		}
		why := ""
		switch col.Type {
		case contract.TypeString:
			if f.kind != 's' {
				why = fmt.Sprintf("want a string, got %s", f.describe())
			} else {
				c.str = f.str()
			}
		case contract.TypeInt:
			if f.kind != 'n' {
				why = fmt.Sprintf("want an integer, got %s", f.describe())
			} else if i, err := strconv.ParseInt(string(f.raw), 10, 64); err != nil {
				why = fmt.Sprintf("want an integer, got %s", f.raw)
			} else if !contract.ExactInt(i) {
				why = contract.InexactWords(i)
			} else {
				c.num = float64(i)
			}
		case contract.TypeDouble:
			if f.kind != 'n' {
				why = fmt.Sprintf("want a number, got %s", f.describe())
			} else if x, err := strconv.ParseFloat(string(f.raw), 64); err != nil {
				why = fmt.Sprintf("want a number, got %s", f.raw)
			} else {
				c.num = x
			}
		case contract.TypeBool:
			if f.kind != 't' && f.kind != 'f' {
				why = fmt.Sprintf("want true or false, got %s", f.describe())
			} else if f.kind == 't' {
				c.num = 1
			}
		}
		if why != "" {
			return "", time.Time{}, &problem{Field: col.Name, Reason: why}
		}
	}
	return r.addCells(eventTime)
}

// A cell is one column's value of the record being added, checked against the column's type.
type cell struct {
	null bool
	num  float64
	str  string
}

// addCells appends the cells as a new row and checks it against the contract's rules and
// the event time (the part of adding a record every format shares).
func (r *rows) addCells(eventTime string) (string, time.Time, *problem) {
	for i, col := range r.c.Columns {
		d, c := r.cols[col.Name], r.cells[i]
		d.Null, d.Num, d.Str = append(d.Null, c.null), append(d.Num, c.num), append(d.Str, c.str)
	}
	r.n++
	if col, kind, why, ok := r.check.Check(r.cols, r.n-1); !ok {
		r.n--
		r.truncate()
		return "", time.Time{}, &problem{Field: col, Reason: fmt.Sprintf("%s (%s)", why, kind)}
	}
	ev := r.cols[eventTime]
	var t time.Time
	var err error
	if ev.Null[r.n-1] {
		err = fmt.Errorf("missing")
	} else {
		s := ev.Str[r.n-1]
		if s == r.lastTime {
			t = r.lastT
		} else if t, err = time.Parse(time.DateOnly, s); err != nil {
			t, err = time.Parse(time.RFC3339Nano, s)
		}
		if err == nil {
			r.lastTime, r.lastT = s, t
		}
	}
	if err != nil {
		r.n--
		r.truncate()
		return "", time.Time{}, &problem{Field: eventTime, Reason: "event time is not a date (2006-01-02) or an RFC 3339 time"}
	}
	t = t.UTC()
	return t.Format(time.DateOnly), t, nil
}

// reset empties the rows (keeping their memory for the next row group).
func (r *rows) reset() {
	r.n = 0
	r.truncate()
}

// truncate drops any partly added row (columns longer than n).
func (r *rows) truncate() {
	for _, d := range r.cols {
		d.Null, d.Num, d.Str = d.Null[:r.n], d.Num[:r.n], d.Str[:r.n]
	}
}

// batch is the rows as a dataset batch, all accepted, for the Parquet writer.
func (r *rows) batch() *dataset.Batch {
	b := &dataset.Batch{Rows: r.n, Cols: r.cols, Accepted: make([]bool, r.n)}
	for i := range b.Accepted {
		b.Accepted[i] = true
	}
	return b
}

// A quarantined record, kept with its position and why.
type quarantined struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Key       string `json:"key,omitempty"`
	problem
	Value       string `json:"value"`
	ValueBase64 bool   `json:"value_base64,omitempty"` // the value was not UTF-8
	Bytes       int    `json:"bytes"`
}

func quarantine(topic string, partition int32, offset int64, key, value []byte, p problem) quarantined {
	q := quarantined{Topic: topic, Partition: partition, Offset: offset, Key: string(key), problem: p, Bytes: len(value)}
	if utf8.Valid(value) {
		q.Value = string(value)
	} else {
		q.Value, q.ValueBase64 = encodeBase64(value), true
	}
	return q
}

func encodeBase64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
