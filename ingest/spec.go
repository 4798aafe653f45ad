package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/spec"
)

// Spec is an ingest worker's configuration (examples/ingest.yaml).
type Spec struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	// Dataset is where the files go; its contract and event-time column come from ModelSpec.
	Dataset   string   `yaml:"dataset"`
	ModelSpec string   `yaml:"model_spec"`
	Brokers   []string `yaml:"brokers"`
	Topics    []string `yaml:"topics"`
	Group     string   `yaml:"group"`
	// MaxRows cuts a file at this many records (default 100,000); a file also ends where the
	// event day changes.
	MaxRows int `yaml:"max_rows"`
	// RowGroupRows: accepted records are encoded into the open file every this many (one
	// Parquet row group, default 10,000), so a partition's open file holds at most one row
	// group of decoded records; the rest are compressed Parquet.
	RowGroupRows int `yaml:"row_group_rows"`
	// Format of the records' values: json (default: one flat JSON object per record) or avro
	// (schema-registry framed: a 0 byte, the schema ID, the Avro binary record).
	Format string `yaml:"format"`
	// SchemaRegistry is the registry's URL (format avro).
	SchemaRegistry string `yaml:"schema_registry"`
	// MaxRecordBytes: a larger record is quarantined (default 1 MiB).
	MaxRecordBytes int `yaml:"max_record_bytes"`
	// FlushIdle writes the open files of a partition that has had no record for this long
	// (default 10s): the stream's tail is written without waiting for the next day.
	FlushIdle spec.Duration `yaml:"flush_idle"`
	// AllowedLateness: a day closes once every partition has seen event times this far past
	// its end (default 1h); later records of a closed day go to late/<dataset>/dt=<day>/.
	AllowedLateness spec.Duration `yaml:"allowed_lateness"`
	// SessionTimeout: a worker that stops heartbeating (killed) loses its partitions to the
	// group's other workers after this long (default 10s).
	SessionTimeout spec.Duration `yaml:"session_timeout"`
	Trigger        Trigger       `yaml:"trigger"`

	// Read from ModelSpec.
	Contract  contract.Contract `yaml:"-"`
	EventTime string            `yaml:"-"`
	Model     spec.Spec         `yaml:"-"`
}

// The record formats.
const (
	FormatJSON = "json"
	FormatAvro = "avro"
)

// Trigger says what a closed day starts.
type Trigger struct {
	// OnNewPartition: when a day closes, start the model's loop on the window ending that day
	// (action run) or signal the model's monitor to run its next window at once (action
	// monitor); at most once per day.
	OnNewPartition bool   `yaml:"on_new_partition"`
	Action         string `yaml:"action"`
}

// LoadSpec reads an ingest spec and the model spec it names (relative to the ingest spec's
// directory or the working directory).
func LoadSpec(path string) (Spec, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, err
	}
	var s Spec
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("%s: %w", path, err)
	}
	mp := s.ModelSpec
	if _, err := os.Stat(mp); err != nil && !filepath.IsAbs(mp) {
		mp = filepath.Join(filepath.Dir(path), s.ModelSpec)
	}
	if s.ModelSpec == "" {
		return s, fmt.Errorf("%s: model_spec: required (its contract is checked at the door)", path)
	}
	m, err := spec.Load(mp)
	if err != nil {
		return s, fmt.Errorf("%s: model_spec %s: %w", path, s.ModelSpec, err)
	}
	s.Model, s.Contract, s.EventTime = m, m.Contract, m.Dataset.EventTime
	s.defaults()
	if err := s.Validate(); err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

func (s *Spec) defaults() {
	if s.MaxRows <= 0 {
		s.MaxRows = 100_000
	}
	if s.RowGroupRows <= 0 {
		s.RowGroupRows = min(10_000, s.MaxRows)
	}
	if s.Format == "" {
		s.Format = FormatJSON
	}
	if s.MaxRecordBytes <= 0 {
		s.MaxRecordBytes = 1 << 20
	}
	if s.FlushIdle.Duration <= 0 {
		s.FlushIdle.Duration = 10 * time.Second
	}
	if s.AllowedLateness.Duration <= 0 {
		s.AllowedLateness.Duration = time.Hour
	}
	if s.SessionTimeout.Duration <= 0 {
		s.SessionTimeout.Duration = 10 * time.Second
	}
	if s.Trigger.Action == "" {
		s.Trigger.Action = "run"
	}
}

// Validate names every problem.
func (s Spec) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if s.APIVersion != "driftline.dev/v1" || s.Kind != "IngestSpec" {
		add("apiVersion/kind: want driftline.dev/v1 IngestSpec, got %s %s", s.APIVersion, s.Kind)
	}
	if s.Dataset == "" {
		add("dataset: required")
	} else if s.Model.Dataset.Name != "" && s.Model.Dataset.Name != s.Dataset {
		add("dataset: %q, but model_spec's dataset is %q (the contract is the model's)", s.Dataset, s.Model.Dataset.Name)
	}
	if s.RowGroupRows > s.MaxRows {
		add("row_group_rows: %d is more than max_rows %d (a file has at least one row group)", s.RowGroupRows, s.MaxRows)
	}
	switch s.Format {
	case FormatJSON:
	case FormatAvro:
		if s.SchemaRegistry == "" {
			add("schema_registry: required for format avro (the records carry schema IDs)")
		}
	default:
		add("format: %q: want json or avro (Protobuf is not built)", s.Format)
	}
	if len(s.Brokers) == 0 {
		add("brokers: at least one")
	}
	if len(s.Topics) == 0 {
		add("topics: at least one")
	}
	if s.Group == "" {
		add("group: required (workers of one group share the topics' partitions)")
	}
	if c, ok := s.Contract.Column(s.EventTime); !ok || c.Type != contract.TypeString {
		add("the model spec's event_time %q must be a string column (YYYY-MM-DD or RFC 3339)", s.EventTime)
	}
	if s.Trigger.Action != "run" && s.Trigger.Action != "monitor" {
		add("trigger.action: %q: want run (start the model's loop on the closed day's window) or monitor (signal the model's monitor to check at once)", s.Trigger.Action)
	}
	return errors.Join(errs...)
}
