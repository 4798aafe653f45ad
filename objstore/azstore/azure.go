package azstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/driftline/driftline/objstore"
)

// Config names the container and how to reach it: ConnectionString, or AccountURL with the
// default credential chain.
type Config struct {
	Container        string
	Prefix           string // optional key prefix inside the container
	ConnectionString string // AZURE_STORAGE_CONNECTION_STRING's form
	AccountURL       string // https://<account>.blob.core.windows.net/
}

// Azure is an objstore.Bucket on one Azure Blob container.
type Azure struct {
	c   *container.Client
	cfg Config
}

// New opens the container.
func New(cfg Config) (*Azure, error) {
	if cfg.Container == "" {
		return nil, errors.New("azure config: container is required")
	}
	var client *azblob.Client
	var err error
	switch {
	case cfg.ConnectionString != "":
		client, err = azblob.NewClientFromConnectionString(cfg.ConnectionString, nil)
	case cfg.AccountURL != "":
		cred, cerr := azidentity.NewDefaultAzureCredential(nil)
		if cerr != nil {
			return nil, fmt.Errorf("azure credentials: %w", cerr)
		}
		client, err = azblob.NewClient(cfg.AccountURL, cred, nil)
	default:
		return nil, errors.New("azure config: give a connection string or the account URL (with the default credential chain)")
	}
	if err != nil {
		return nil, fmt.Errorf("azure client: %w", err)
	}
	if cfg.Prefix != "" && !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	return &Azure{c: client.ServiceClient().NewContainerClient(cfg.Container), cfg: cfg}, nil
}

// EnsureContainer creates the container when it does not exist yet.
func (a *Azure) EnsureContainer(ctx context.Context) error {
	if _, err := a.c.Create(ctx, nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return fmt.Errorf("create container %s: %w", a.cfg.Container, err)
	}
	return nil
}

func (a *Azure) full(key string) string { return a.cfg.Prefix + key }

// URI implements objstore.Bucket: the blob's URL.
func (a *Azure) URI(key string) string { return strings.TrimSuffix(a.c.URL(), "/") + "/" + a.full(key) }

// mapErr turns Azure errors into the package's sentinel errors.
func (a *Azure) mapErr(op, key string, err error) error {
	var re *azcore.ResponseError
	status := 0
	if errors.As(err, &re) {
		status = re.StatusCode
	}
	switch {
	case bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound), status == http.StatusNotFound:
		return fmt.Errorf("%s %s: %w", op, a.URI(key), objstore.ErrNotFound)
	case bloberror.HasCode(err, bloberror.ConditionNotMet, bloberror.BlobAlreadyExists), status == http.StatusPreconditionFailed, status == http.StatusConflict:
		return fmt.Errorf("%s %s: %w", op, a.URI(key), objstore.ErrPreconditionFailed)
	case status == http.StatusNotModified:
		return fmt.Errorf("%s %s: %w", op, a.URI(key), objstore.ErrNotModified)
	}
	return fmt.Errorf("%s %s: %w", op, a.URI(key), err)
}

func tag(e *azcore.ETag) string {
	if e == nil {
		return ""
	}
	return string(*e)
}

// Get implements objstore.Bucket. A conditional read compares the blob's ETag first: Azurite
// answered an If-None-Match read of an unchanged blob with the blob, not with 304.
func (a *Azure) Get(ctx context.Context, key string, opts objstore.GetOptions) (io.ReadCloser, objstore.Object, error) {
	o := &blob.DownloadStreamOptions{Range: blob.HTTPRange{Offset: opts.Offset, Count: opts.Length}}
	if opts.IfNoneMatch != "" {
		// The blob's current ETag decides; the read is then pinned to it (If-Match), so what
		// is read is what was compared.
		cur, err := a.Head(ctx, key)
		if err != nil {
			return nil, objstore.Object{}, err
		}
		if cur.ETag == opts.IfNoneMatch {
			return nil, cur, fmt.Errorf("get %s: %w", a.URI(key), objstore.ErrNotModified)
		}
		e := azcore.ETag(cur.ETag)
		o.AccessConditions = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: &e}}
	}
	resp, err := a.c.NewBlobClient(a.full(key)).DownloadStream(ctx, o)
	if err != nil {
		return nil, objstore.Object{}, a.mapErr("get", key, err)
	}
	obj := objstore.Object{Key: key, ETag: tag(resp.ETag)}
	if resp.ContentLength != nil {
		obj.Size = *resp.ContentLength
	}
	if resp.LastModified != nil {
		obj.LastModified = *resp.LastModified
	}
	return resp.Body, obj, nil
}

// Put implements objstore.Bucket: one Put Blob with If-None-Match: * or If-Match.
func (a *Azure) Put(ctx context.Context, key string, body []byte, opts objstore.PutOptions) (objstore.Object, error) {
	o := &blockblob.UploadOptions{}
	if opts.ContentType != "" {
		ct := opts.ContentType
		o.HTTPHeaders = &blob.HTTPHeaders{BlobContentType: &ct}
	}
	var cond blob.ModifiedAccessConditions
	switch {
	case opts.IfNoneMatch:
		any := azcore.ETagAny
		cond.IfNoneMatch = &any
	case opts.IfMatch != "":
		e := azcore.ETag(opts.IfMatch)
		cond.IfMatch = &e
	}
	o.AccessConditions = &blob.AccessConditions{ModifiedAccessConditions: &cond}
	resp, err := a.c.NewBlockBlobClient(a.full(key)).Upload(ctx, streaming.NopCloser(bytes.NewReader(body)), o)
	if err != nil {
		return objstore.Object{}, a.mapErr("put", key, err)
	}
	obj := objstore.Object{Key: key, Size: int64(len(body)), ETag: tag(resp.ETag)}
	if resp.LastModified != nil {
		obj.LastModified = *resp.LastModified
	}
	return obj, nil
}

// Head implements objstore.Bucket.
func (a *Azure) Head(ctx context.Context, key string) (objstore.Object, error) {
	p, err := a.c.NewBlobClient(a.full(key)).GetProperties(ctx, nil)
	if err != nil {
		return objstore.Object{}, a.mapErr("head", key, err)
	}
	obj := objstore.Object{Key: key, ETag: tag(p.ETag)}
	if p.ContentLength != nil {
		obj.Size = *p.ContentLength
	}
	if p.LastModified != nil {
		obj.LastModified = *p.LastModified
	}
	return obj, nil
}

// List implements objstore.Bucket (Azure lists blobs in lexicographic order).
func (a *Azure) List(ctx context.Context, prefix string) ([]objstore.Object, error) {
	full := a.full(prefix)
	pager := a.c.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &full})
	var out []objstore.Object
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, a.mapErr("list", prefix, err)
		}
		for _, it := range page.Segment.BlobItems {
			if it.Name == nil {
				continue
			}
			obj := objstore.Object{Key: strings.TrimPrefix(*it.Name, a.cfg.Prefix)}
			if p := it.Properties; p != nil {
				obj.ETag = tag(p.ETag)
				if p.ContentLength != nil {
					obj.Size = *p.ContentLength
				}
				if p.LastModified != nil {
					obj.LastModified = *p.LastModified
				}
			}
			out = append(out, obj)
		}
	}
	return out, nil
}

// Delete implements objstore.Bucket.
func (a *Azure) Delete(ctx context.Context, key string) error {
	if _, err := a.c.NewBlobClient(a.full(key)).Delete(ctx, nil); err != nil {
		return a.mapErr("delete", key, err)
	}
	return nil
}
