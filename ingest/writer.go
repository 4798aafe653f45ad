package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/objstore"
)

// Manifest records one file's range of a topic-partition: written once, before the file.
type Manifest struct {
	Dataset     string `json:"dataset"`
	Topic       string `json:"topic"`
	Partition   int32  `json:"partition"`
	First       int64  `json:"first_offset"`
	Last        int64  `json:"last_offset"`
	Day         string `json:"day,omitempty"` // the event day of its accepted records
	Late        bool   `json:"late,omitempty"`
	Accepted    int    `json:"accepted"`
	Quarantined int    `json:"quarantined"`
	// RowGroupRows is the data file's row group size (a replay rebuilds it with the same).
	RowGroupRows int `json:"row_group_rows,omitempty"`
	// MaxEvent is the latest event time of its accepted records (Unix microseconds).
	MaxEvent      int64  `json:"max_event_us,omitempty"`
	DataKey       string `json:"data_key,omitempty"`
	DataSHA256    string `json:"data_sha256,omitempty"`
	QuarantineKey string `json:"quarantine_key,omitempty"`
	QuarantineSHA string `json:"quarantine_sha256,omitempty"`
}

// ManifestKey is where the manifest of the range starting at first lives.
func ManifestKey(ds, topic string, partition int32, first int64) string {
	return fmt.Sprintf("ingest/%s/manifests/%s/%d/%020d.json", ds, topic, partition, first)
}

// DataKey is a range's data file: in the dataset's day partition, or its late partition.
func DataKey(ds, topic string, partition int32, first, last int64, day string, late bool) string {
	if late {
		return fmt.Sprintf("late/%s/dt=%s/%s-%d-%020d-%020d.parquet", ds, day, topic, partition, first, last)
	}
	return fmt.Sprintf("datasets/%s/dt=%s/%s-%d-%020d-%020d.parquet", ds, day, topic, partition, first, last)
}

// QuarantineKey is a range's quarantined records (JSON lines).
func QuarantineKey(ds, topic string, partition int32, first, last int64) string {
	return fmt.Sprintf("quarantine/%s/ingest/%s/%d/%020d-%020d.jsonl", ds, topic, partition, first, last)
}

// span is the open range of one topic-partition: records first..last, one destination.
type span struct {
	first, last int64
	day         string
	late        bool
	// rows is the row group being decoded; earlier groups are encoded into w (flushed rows).
	rows         *rows
	w            *dataset.RowWriter
	flushed      int
	rowGroupRows int
	quarantined  []quarantined
	maxEvent     int64
	opened       time.Time
	lastRecord   time.Time
	// replay: the range is recorded already (manifest without its file): rebuild it exactly.
	replay *Manifest
}

// accepted is how many accepted records the span holds (encoded and decoded).
func (s *span) accepted() int { return s.flushed + s.rows.n }

// endGroup encodes the decoded records as one row group of the span's file.
func (s *span) endGroup() error {
	if s.rows.n == 0 {
		return nil
	}
	if s.w == nil {
		w, err := dataset.NewRowWriter(s.rows.c, nil)
		if err != nil {
			return err
		}
		s.w = w
	}
	b := s.rows.batch()
	for r := 0; r < b.Rows; r++ {
		if err := s.w.Write(b, r, nil); err != nil {
			return err
		}
	}
	if err := s.w.Flush(); err != nil {
		return err
	}
	s.flushed += s.rows.n
	s.rows.reset()
	return nil
}

// encode builds the span's files and manifest.
func (s *span) encode(ds, topic string, partition int32) (Manifest, []byte, []byte, error) {
	m := Manifest{Dataset: ds, Topic: topic, Partition: partition, First: s.first, Last: s.last, Day: s.day, Late: s.late,
		Accepted: s.accepted(), Quarantined: len(s.quarantined), MaxEvent: s.maxEvent}
	var data, q []byte
	if s.accepted() > 0 {
		if err := s.endGroup(); err != nil {
			return m, nil, nil, err
		}
		var err error
		if data, err = s.w.Close(); err != nil {
			return m, nil, nil, err
		}
		m.RowGroupRows = s.rowGroupRows
		sum := sha256.Sum256(data)
		m.DataKey, m.DataSHA256 = DataKey(ds, topic, partition, s.first, s.last, s.day, s.late), hex.EncodeToString(sum[:])
	}
	if len(s.quarantined) > 0 {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		for _, r := range s.quarantined {
			if err := enc.Encode(r); err != nil {
				return m, nil, nil, err
			}
		}
		q = buf.Bytes()
		sum := sha256.Sum256(q)
		m.QuarantineKey, m.QuarantineSHA = QuarantineKey(ds, topic, partition, s.first, s.last), hex.EncodeToString(sum[:])
	}
	return m, data, q, nil
}

// errConflict: a manifest of the same start offset records different content.
var errConflict = errors.New("manifest conflict")

// write stores a span: the manifest first (once), then its files. A manifest already there
// (a replay) must record the same range and content, and its files are written if missing.
func write(ctx context.Context, b objstore.Bucket, m Manifest, data, q []byte) error {
	body, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return err
	}
	key := ManifestKey(m.Dataset, m.Topic, m.Partition, m.First)
	if _, err := b.Put(ctx, key, body, objstore.PutOptions{IfNoneMatch: true, ContentType: "application/json"}); err != nil {
		if !errors.Is(err, objstore.ErrPreconditionFailed) {
			return fmt.Errorf("manifest %s: %w", key, err)
		}
		prev, err := readManifest(ctx, b, key)
		if err != nil {
			return err
		}
		if prev.Last != m.Last || prev.DataSHA256 != m.DataSHA256 || prev.QuarantineSHA != m.QuarantineSHA {
			return fmt.Errorf("%w: %s records offsets %d..%d (data %s), this write %d..%d (data %s)", errConflict, key,
				prev.First, prev.Last, prev.DataSHA256, m.First, m.Last, m.DataSHA256)
		}
	}
	put := func(k string, body []byte) error {
		if k == "" {
			return nil
		}
		_, err := objstore.CreateOnce(ctx, b, k, body, "") // written before a crash: same key, same content (the manifest's hash)
		return err
	}
	if err := put(m.DataKey, data); err != nil {
		return err
	}
	return put(m.QuarantineKey, q)
}

func readManifest(ctx context.Context, b objstore.Bucket, key string) (Manifest, error) {
	var m Manifest
	raw, _, err := objstore.ReadAll(ctx, b, key)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("manifest %s: %w", b.URI(key), err)
	}
	return m, nil
}

// Manifests reads every manifest of a dataset, in key order (by topic, partition and first
// offset): what the worker has written, for tests, benchmarks and the demo.
func Manifests(ctx context.Context, b objstore.Bucket, ds string) ([]Manifest, error) {
	objs, err := b.List(ctx, "ingest/"+ds+"/manifests/")
	if err != nil {
		return nil, err
	}
	out := make([]Manifest, 0, len(objs))
	for _, o := range objs {
		m, err := readManifest(ctx, b, o.Key)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}
