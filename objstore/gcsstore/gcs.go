package gcsstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/driftline/driftline/objstore"
)

// Config names the bucket.
type Config struct {
	Bucket string
	Prefix string // optional key prefix inside the bucket, e.g. "driftline/"
	// Endpoint is an emulator's URL (http://127.0.0.1:4443/storage/v1/); empty: Google Cloud
	// Storage with application default credentials.
	Endpoint string
}

// GCS is an objstore.Bucket on Google Cloud Storage.
type GCS struct {
	client *storage.Client
	bucket *storage.BucketHandle
	cfg    Config
}

// New opens the bucket.
func New(ctx context.Context, cfg Config) (*GCS, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("gcs config: bucket is required")
	}
	var opts []option.ClientOption
	if cfg.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(cfg.Endpoint), option.WithoutAuthentication())
	}
	client, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("gcs client: %w", err)
	}
	if cfg.Prefix != "" && !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	return &GCS{client: client, bucket: client.Bucket(cfg.Bucket), cfg: cfg}, nil
}

// EnsureBucket creates the bucket when it does not exist yet (in project, for Google Cloud
// Storage; an emulator takes any).
func (g *GCS) EnsureBucket(ctx context.Context, project string) error {
	if _, err := g.bucket.Attrs(ctx); err == nil {
		return nil
	}
	if err := g.bucket.Create(ctx, project, nil); err != nil && !isStatus(err, http.StatusConflict) {
		return fmt.Errorf("create bucket %s: %w", g.cfg.Bucket, err)
	}
	return nil
}

// Close releases the client.
func (g *GCS) Close() error { return g.client.Close() }

func (g *GCS) full(key string) string { return g.cfg.Prefix + key }

// URI implements objstore.Bucket.
func (g *GCS) URI(key string) string { return "gs://" + g.cfg.Bucket + "/" + g.full(key) }

// The ETag of an object is its generation, quoted: a write conditional on it is a write
// conditional on the generation, which GCS checks atomically.
func etag(generation int64) string { return `"` + strconv.FormatInt(generation, 10) + `"` }

func generation(tag string) (int64, bool) {
	g, err := strconv.ParseInt(strings.Trim(tag, `"`), 10, 64)
	return g, err == nil && g > 0
}

func isStatus(err error, code int) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == code
}

// mapErr turns GCS errors into the package's sentinel errors.
func (g *GCS) mapErr(op, key string, err error) error {
	switch {
	case errors.Is(err, storage.ErrObjectNotExist), isStatus(err, http.StatusNotFound):
		return fmt.Errorf("%s %s: %w", op, g.URI(key), objstore.ErrNotFound)
	case isStatus(err, http.StatusPreconditionFailed), isStatus(err, http.StatusConflict):
		return fmt.Errorf("%s %s: %w", op, g.URI(key), objstore.ErrPreconditionFailed)
	case isStatus(err, http.StatusNotModified):
		return fmt.Errorf("%s %s: %w", op, g.URI(key), objstore.ErrNotModified)
	}
	return fmt.Errorf("%s %s: %w", op, g.URI(key), err)
}

func object(key string, a *storage.ObjectAttrs) objstore.Object {
	return objstore.Object{Key: key, Size: a.Size, ETag: etag(a.Generation), LastModified: a.Updated}
}

// Get implements objstore.Bucket. A conditional read asks GCS for a generation other than the
// one named.
func (g *GCS) Get(ctx context.Context, key string, opts objstore.GetOptions) (io.ReadCloser, objstore.Object, error) {
	o := g.bucket.Object(g.full(key))
	if opts.IfNoneMatch != "" {
		if gen, ok := generation(opts.IfNoneMatch); ok {
			a, err := o.Attrs(ctx)
			if err != nil {
				return nil, objstore.Object{}, g.mapErr("get", key, err)
			}
			if a.Generation == gen {
				return nil, object(key, a), fmt.Errorf("get %s: %w", g.URI(key), objstore.ErrNotModified)
			}
			o = o.Generation(a.Generation)
		}
	}
	length := int64(-1)
	if opts.Length > 0 {
		length = opts.Length
	}
	r, err := o.NewRangeReader(ctx, opts.Offset, length)
	if err != nil {
		return nil, objstore.Object{}, g.mapErr("get", key, err)
	}
	return r, objstore.Object{Key: key, Size: r.Attrs.Size, ETag: etag(r.Attrs.Generation), LastModified: r.Attrs.LastModified}, nil
}

// Put implements objstore.Bucket: IfNoneMatch is "generation 0" (no live object), IfMatch the
// generation its ETag names.
func (g *GCS) Put(ctx context.Context, key string, body []byte, opts objstore.PutOptions) (objstore.Object, error) {
	o := g.bucket.Object(g.full(key))
	switch {
	case opts.IfNoneMatch:
		o = o.If(storage.Conditions{DoesNotExist: true})
	case opts.IfMatch != "":
		gen, ok := generation(opts.IfMatch)
		if !ok {
			return objstore.Object{}, fmt.Errorf("put %s: ETag %s is no generation of it: %w", g.URI(key), opts.IfMatch, objstore.ErrPreconditionFailed)
		}
		o = o.If(storage.Conditions{GenerationMatch: gen})
	}
	w := o.NewWriter(ctx)
	w.ContentType = opts.ContentType
	w.ChunkSize = 0 // one request: the body is in memory
	if _, err := w.Write(body); err != nil {
		_ = w.Close()
		return objstore.Object{}, g.mapErr("put", key, err)
	}
	if err := w.Close(); err != nil {
		return objstore.Object{}, g.mapErr("put", key, err)
	}
	return object(key, w.Attrs()), nil
}

// Head implements objstore.Bucket.
func (g *GCS) Head(ctx context.Context, key string) (objstore.Object, error) {
	a, err := g.bucket.Object(g.full(key)).Attrs(ctx)
	if err != nil {
		return objstore.Object{}, g.mapErr("head", key, err)
	}
	return object(key, a), nil
}

// List implements objstore.Bucket (GCS lists in lexicographic order).
func (g *GCS) List(ctx context.Context, prefix string) ([]objstore.Object, error) {
	var out []objstore.Object
	it := g.bucket.Objects(ctx, &storage.Query{Prefix: g.full(prefix)})
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil {
			return nil, g.mapErr("list", prefix, err)
		}
		out = append(out, object(strings.TrimPrefix(a.Name, g.cfg.Prefix), a))
	}
}

// Delete implements objstore.Bucket.
func (g *GCS) Delete(ctx context.Context, key string) error {
	if err := g.bucket.Object(g.full(key)).Delete(ctx); err != nil {
		return g.mapErr("delete", key, err)
	}
	return nil
}
