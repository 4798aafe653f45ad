package objstoretest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/driftline/driftline/objstore"
)

// ContractTest checks the semantics every objstore.Bucket implementation must have. It is run against
// the in-memory fake and against a real MinIO server, so the fake cannot drift from S3.
func ContractTest(t *testing.T, b objstore.Bucket) {
	t.Helper()
	ctx := context.Background()
	contractMissing(ctx, t, b)
	o1 := contractCreateAndRead(ctx, t, b)
	contractCompareAndSwap(ctx, t, b, o1)
	contractListAndDelete(ctx, t, b)
}

// contractMissing: a missing key is objstore.ErrNotFound.
func contractMissing(ctx context.Context, t *testing.T, b objstore.Bucket) {
	t.Helper()
	fail := func(format string, args ...any) { t.Helper(); t.Fatalf(format, args...) }
	if _, _, err := b.Get(ctx, "contract/missing", objstore.GetOptions{}); !errors.Is(err, objstore.ErrNotFound) {
		fail("get missing: want objstore.ErrNotFound, got %v", err)
	}
	if _, err := b.Head(ctx, "contract/missing"); !errors.Is(err, objstore.ErrNotFound) {
		fail("head missing: want objstore.ErrNotFound, got %v", err)
	}
}

// contractCreateAndRead: a create-once write, then reads whole, conditional and ranged.
func contractCreateAndRead(ctx context.Context, t *testing.T, b objstore.Bucket) objstore.Object {
	t.Helper()
	fail := func(format string, args ...any) { t.Helper(); t.Fatalf(format, args...) }
	o1, err := b.Put(ctx, "contract/a.txt", []byte("hello world"), objstore.PutOptions{IfNoneMatch: true})
	if err != nil {
		fail("create: %v", err)
	}
	if o1.ETag == "" {
		fail("create returned no ETag")
	}
	if _, err := b.Put(ctx, "contract/a.txt", []byte("again"), objstore.PutOptions{IfNoneMatch: true}); !errors.Is(err, objstore.ErrPreconditionFailed) {
		fail("second create: want objstore.ErrPreconditionFailed, got %v", err)
	}
	data, obj, err := objstore.ReadAll(ctx, b, "contract/a.txt")
	if err != nil || string(data) != "hello world" || obj.ETag != o1.ETag {
		fail("read back: %q %v %v (etag %s want %s)", data, obj, err, obj.ETag, o1.ETag)
	}
	if _, _, err := b.Get(ctx, "contract/a.txt", objstore.GetOptions{IfNoneMatch: o1.ETag}); !errors.Is(err, objstore.ErrNotModified) {
		fail("conditional get same etag: want objstore.ErrNotModified, got %v", err)
	}
	rc, _, err := b.Get(ctx, "contract/a.txt", objstore.GetOptions{Offset: 6, Length: 3})
	if err != nil {
		fail("ranged get: %v", err)
	}
	part, _ := io.ReadAll(rc)
	rc.Close()
	if string(part) != "wor" {
		fail("ranged get: got %q want %q", part, "wor")
	}
	ra, _, err := objstore.NewReaderAt(ctx, b, "contract/a.txt")
	if err != nil {
		fail("reader at: %v", err)
	}
	buf := make([]byte, 5)
	if n, err := ra.ReadAt(buf, 6); n != 5 || string(buf) != "world" || (err != nil && err != io.EOF) {
		fail("ReadAt: %d %q %v", n, buf, err)
	}
	return o1
}

// contractCompareAndSwap: a write conditional on the ETag; exactly one of many racing
// compare-and-swap writers wins.
func contractCompareAndSwap(ctx context.Context, t *testing.T, b objstore.Bucket, o1 objstore.Object) {
	t.Helper()
	fail := func(format string, args ...any) { t.Helper(); t.Fatalf(format, args...) }
	if _, err := b.Put(ctx, "contract/a.txt", []byte("stale"), objstore.PutOptions{IfMatch: `"0000"`}); !errors.Is(err, objstore.ErrPreconditionFailed) {
		fail("if-match wrong etag: want objstore.ErrPreconditionFailed, got %v", err)
	}
	o2, err := b.Put(ctx, "contract/a.txt", []byte("v2"), objstore.PutOptions{IfMatch: o1.ETag})
	if err != nil {
		fail("if-match right etag: %v", err)
	}
	if o2.ETag == o1.ETag {
		fail("etag did not change on update")
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := b.Put(ctx, "contract/a.txt", fmt.Appendf(nil, "writer %d", i), objstore.PutOptions{IfMatch: o2.ETag})
			if err == nil {
				wins.Add(1)
			} else if !errors.Is(err, objstore.ErrPreconditionFailed) {
				t.Errorf("racing writer: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		fail("racing if-match writers: %d won, want exactly 1", wins.Load())
	}
}

// contractListAndDelete: a listing is the prefix's keys in order; a deleted key is gone.
func contractListAndDelete(ctx context.Context, t *testing.T, b objstore.Bucket) {
	t.Helper()
	fail := func(format string, args ...any) { t.Helper(); t.Fatalf(format, args...) }
	for _, k := range []string{"contract/list/b", "contract/list/a", "contract/list/c", "contract/listx"} {
		if _, err := b.Put(ctx, k, []byte(k), objstore.PutOptions{}); err != nil {
			fail("put %s: %v", k, err)
		}
	}
	objs, err := b.List(ctx, "contract/list/")
	if err != nil {
		fail("list: %v", err)
	}
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	if fmt.Sprint(keys) != "[contract/list/a contract/list/b contract/list/c]" {
		fail("list: got %v", keys)
	}
	if err := b.Delete(ctx, "contract/list/a"); err != nil {
		fail("delete: %v", err)
	}
	if _, err := b.Head(ctx, "contract/list/a"); !errors.Is(err, objstore.ErrNotFound) {
		fail("deleted object still there: %v", err)
	}
}
