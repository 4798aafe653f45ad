package objstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

var _ Bucket = (*Mem)(nil)

// Mem is an in-memory Bucket for unit tests. It honours the same conditional semantics as S3.
type Mem struct {
	mu      sync.Mutex
	objects map[string]memObject
	now     func() time.Time
}

type memObject struct {
	data []byte
	meta Object
}

// NewMem returns an empty in-memory bucket.
func NewMem() *Mem { return &Mem{objects: map[string]memObject{}, now: time.Now} }

func etagOf(b []byte) string {
	sum := md5.Sum(b)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

// Get implements Bucket.
func (m *Mem) Get(_ context.Context, key string, opts GetOptions) (io.ReadCloser, Object, error) {
	m.mu.Lock()
	o, ok := m.objects[key]
	m.mu.Unlock()
	if !ok {
		return nil, Object{}, fmt.Errorf("get %s: %w", m.URI(key), ErrNotFound)
	}
	if opts.IfNoneMatch != "" && opts.IfNoneMatch == o.meta.ETag {
		return nil, o.meta, fmt.Errorf("get %s: %w", m.URI(key), ErrNotModified)
	}
	data := o.data
	if opts.Offset > 0 || opts.Length > 0 {
		if opts.Offset >= int64(len(data)) {
			return nil, o.meta, fmt.Errorf("get %s: range %d beyond size %d", m.URI(key), opts.Offset, len(data))
		}
		end := int64(len(data))
		if opts.Length > 0 && opts.Offset+opts.Length < end {
			end = opts.Offset + opts.Length
		}
		data = data[opts.Offset:end]
	}
	return io.NopCloser(bytes.NewReader(data)), o.meta, nil
}

// Put implements Bucket.
func (m *Mem) Put(_ context.Context, key string, body []byte, opts PutOptions) (Object, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, exists := m.objects[key]
	if opts.IfNoneMatch && exists {
		return Object{}, fmt.Errorf("put %s: %w", m.URI(key), ErrPreconditionFailed)
	}
	if opts.IfMatch != "" && (!exists || cur.meta.ETag != opts.IfMatch) {
		return Object{}, fmt.Errorf("put %s: %w", m.URI(key), ErrPreconditionFailed)
	}
	data := append([]byte(nil), body...)
	meta := Object{Key: key, Size: int64(len(data)), ETag: etagOf(data), LastModified: m.now()}
	m.objects[key] = memObject{data: data, meta: meta}
	return meta, nil
}

// Head implements Bucket.
func (m *Mem) Head(_ context.Context, key string) (Object, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[key]
	if !ok {
		return Object{}, fmt.Errorf("head %s: %w", m.URI(key), ErrNotFound)
	}
	return o.meta, nil
}

// List implements Bucket.
func (m *Mem) List(_ context.Context, prefix string) ([]Object, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Object
	for k, o := range m.objects {
		if strings.HasPrefix(k, prefix) {
			out = append(out, o.meta)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete implements Bucket.
func (m *Mem) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objects, key)
	return nil
}

// URI implements Bucket.
func (m *Mem) URI(key string) string { return "mem://test/" + key }
