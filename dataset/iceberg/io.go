package iceberg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"time"

	icebergio "github.com/apache/iceberg-go/io"

	"github.com/driftline/driftline/objstore"
)

// bucketIO is iceberg-go's file system over an objstore.Bucket: a metadata or manifest file
// (small, read whole) named by a URI of the bucket (s3://bucket/key, gs://..., az://...) or
// by a key relative to the bucket's root. It only reads: Driftline never writes a table.
type bucketIO struct {
	ctx    context.Context
	bucket objstore.Bucket
}

var _ icebergio.ReadFileIO = bucketIO{}

// key maps a path of the table's metadata to a key of the bucket; a path on another bucket
// or store is refused by name.
func key(b objstore.Bucket, name string) (string, error) {
	root := b.URI("")
	if strings.HasPrefix(name, root) {
		return strings.TrimPrefix(name, root), nil
	}
	u, err := url.Parse(name)
	if err == nil && u.Scheme != "" {
		if u.Scheme == "file" {
			return "", fmt.Errorf("%s is a local file: Driftline reads tables in its bucket %s", name, root)
		}
		// s3a:// and s3n:// are Hadoop's names for s3://.
		if alt := "s3://" + u.Host + "/"; (u.Scheme == "s3a" || u.Scheme == "s3n") && strings.HasPrefix(root, alt) {
			return strings.TrimPrefix(strings.TrimPrefix(u.Path, "/"), strings.TrimPrefix(root, alt)), nil
		}
		return "", fmt.Errorf("%s is outside Driftline's bucket %s: a table's files must be in it", name, root)
	}
	name = strings.TrimPrefix(name, "/")
	if !fs.ValidPath(name) {
		return "", fmt.Errorf("%q is not a path in the bucket", name)
	}
	return name, nil
}

func (f bucketIO) ReadFile(name string) ([]byte, error) {
	k, err := key(f.bucket, name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	data, _, err := objstore.ReadAll(f.ctx, f.bucket, k)
	if errors.Is(err, objstore.ErrNotFound) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return data, nil
}

func (f bucketIO) Open(name string) (icebergio.File, error) {
	data, err := f.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return &memFile{Reader: bytes.NewReader(data), name: name, size: int64(len(data))}, nil
}

func (f bucketIO) Remove(name string) error {
	return &fs.PathError{Op: "remove", Path: name, Err: errors.ErrUnsupported}
}

// memFile is a file read whole.
type memFile struct {
	*bytes.Reader
	name string
	size int64
}

func (m *memFile) Stat() (fs.FileInfo, error) { return fileInfo{m}, nil }
func (m *memFile) Close() error               { return nil }

type fileInfo struct{ m *memFile }

func (i fileInfo) Name() string       { return i.m.name }
func (i fileInfo) Size() int64        { return i.m.size }
func (i fileInfo) Mode() fs.FileMode  { return 0o444 }
func (i fileInfo) ModTime() time.Time { return time.Time{} }
func (i fileInfo) IsDir() bool        { return false }
func (i fileInfo) Sys() any           { return nil }
