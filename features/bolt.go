package features

import (
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bolt is the embedded online store (bbolt: one file, no server): a bucket per view, the
// entity key to its latest row.
type Bolt struct{ db *bolt.DB }

var _ Online = (*Bolt)(nil)

// OpenBolt opens (or creates) the store file.
func OpenBolt(path string) (*Bolt, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("online store %s: %w", path, err)
	}
	return &Bolt{db: db}, nil
}

func boltBucket(view string) []byte { return []byte("view/" + view) }

// Put implements Online, in one transaction.
func (s *Bolt) Put(_ context.Context, view string, rows []FeatureRow) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(boltBucket(view))
		if err != nil {
			return err
		}
		for _, r := range rows {
			enc := encodeRow(r)
			if cur := b.Get([]byte(r.Key)); len(cur) >= 16 && !newer(enc, cur) {
				continue
			}
			if err := b.Put([]byte(r.Key), enc); err != nil {
				return err
			}
		}
		return nil
	})
}

// Get implements Online: one read transaction over the views.
func (s *Bolt) Get(_ context.Context, views []string, key string) ([]Match, error) {
	out := make([]Match, len(views))
	err := s.db.View(func(tx *bolt.Tx) error {
		for i, v := range views {
			b := tx.Bucket(boltBucket(v))
			if b == nil {
				continue
			}
			raw := b.Get([]byte(key))
			if raw == nil {
				continue
			}
			m, err := decodeRow(raw)
			if err != nil {
				return fmt.Errorf("view %s key %s: %w", v, key, err)
			}
			out[i] = m
		}
		return nil
	})
	return out, err
}

// Close implements Online.
func (s *Bolt) Close() error { return s.db.Close() }
