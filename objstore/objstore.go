package objstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Sentinel errors; implementations wrap them so callers test with errors.Is.
var (
	// ErrNotFound: the key does not exist.
	ErrNotFound = errors.New("object not found")
	// ErrPreconditionFailed: an If-None-Match: * or If-Match write lost a race.
	ErrPreconditionFailed = errors.New("precondition failed")
	// ErrNotModified: a conditional read found the same ETag.
	ErrNotModified = errors.New("not modified")
)

// Object describes a stored object.
type Object struct {
	Key          string
	Size         int64
	ETag         string
	LastModified time.Time
}

// PutOptions makes a write conditional.
type PutOptions struct {
	// IfNoneMatch creates the object only when the key is absent (If-None-Match: *).
	IfNoneMatch bool
	// IfMatch replaces the object only when its current ETag is this one.
	IfMatch     string
	ContentType string
}

// GetOptions makes a read conditional or partial.
type GetOptions struct {
	// IfNoneMatch returns ErrNotModified when the object's ETag equals it.
	IfNoneMatch string
	// Offset and Length select a byte range; Length 0 means to the end.
	Offset, Length int64
}

// Bucket is one bucket, optionally under a key prefix.
type Bucket interface {
	Get(ctx context.Context, key string, opts GetOptions) (io.ReadCloser, Object, error)
	Put(ctx context.Context, key string, body []byte, opts PutOptions) (Object, error)
	Head(ctx context.Context, key string) (Object, error)
	// List returns every object whose key starts with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]Object, error)
	Delete(ctx context.Context, key string) error
	// URI names the key for humans and lineage records (s3://bucket/prefix/key).
	URI(key string) string
}

// ReadAll reads a whole object.
func ReadAll(ctx context.Context, b Bucket, key string) ([]byte, Object, error) {
	rc, obj, err := b.Get(ctx, key, GetOptions{})
	if err != nil {
		return nil, obj, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, obj, fmt.Errorf("read %s: %w", b.URI(key), err)
	}
	return data, obj, nil
}

// ReaderAt reads an object with ranged GETs, so a Parquet footer and single row groups
// can be read without downloading the whole file.
type ReaderAt struct {
	ctx    context.Context
	bucket Bucket
	key    string
	size   int64
}

// NewReaderAt heads the object and returns a ReaderAt over it.
func NewReaderAt(ctx context.Context, b Bucket, key string) (*ReaderAt, Object, error) {
	obj, err := b.Head(ctx, key)
	if err != nil {
		return nil, obj, err
	}
	return &ReaderAt{ctx: ctx, bucket: b, key: key, size: obj.Size}, obj, nil
}

// ReadAt implements io.ReaderAt with one ranged GET per call.
func (r *ReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.size {
		return 0, io.EOF
	}
	want := int64(len(p))
	if off+want > r.size {
		want = r.size - off
	}
	if want == 0 {
		return 0, nil
	}
	rc, _, err := r.bucket.Get(r.ctx, r.key, GetOptions{Offset: off, Length: want})
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	n, err := io.ReadFull(rc, p[:want])
	if err != nil {
		return n, fmt.Errorf("ranged read %s at %d: %w", r.bucket.URI(r.key), off, err)
	}
	if int64(n) < int64(len(p)) {
		return n, io.EOF
	}
	return n, nil
}

// CreateOnce writes body at key only when the key is absent (If-None-Match: *). An object
// already there is left as it is: created is false and err nil, so a retried write of an
// immutable object (whose key names its content or its one writer) is a no-op.
func CreateOnce(ctx context.Context, b Bucket, key string, body []byte, contentType string) (created bool, err error) {
	_, err = b.Put(ctx, key, body, PutOptions{IfNoneMatch: true, ContentType: contentType})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrPreconditionFailed):
		return false, nil
	default:
		return false, err
	}
}

// PutJSON writes v as indented JSON at key (Content-Type application/json), replacing what is
// there.
func PutJSON(ctx context.Context, b Bucket, key string, v any) error {
	body, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	_, err = b.Put(ctx, key, body, PutOptions{ContentType: "application/json"})
	return err
}

// CreateJSONOnce writes v as indented JSON at key only when the key is absent, as CreateOnce.
func CreateJSONOnce(ctx context.Context, b Bucket, key string, v any) (created bool, err error) {
	body, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return false, fmt.Errorf("encode %s: %w", key, err)
	}
	return CreateOnce(ctx, b, key, body, "application/json")
}
