package benchutil

import (
	"context"
	"time"

	"github.com/driftline/driftline/objstore/s3store"
)

// MinIOBucket is a bench's bucket on MinIO, created once MinIO answers (it is often still
// starting when the bench begins); it panics after ten seconds of refusals.
func MinIOBucket(ctx context.Context, cfg s3store.Config) *s3store.S3 {
	b, err := s3store.New(ctx, cfg)
	if err != nil {
		panic(err)
	}
	for i := 0; ; i++ {
		if err = b.EnsureBucket(ctx); err == nil || i == 50 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		panic(err)
	}
	return b
}
