package testsuite

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/objstore/s3store"
)

// BenchmarkAuditAppendConcurrent appends 200 records to one chain at once on MinIO, as 200
// concurrent refused calls of signed-in callers on one model do: the time per batch of 200
// (bench: go test -run '^$' -bench AuditAppend ./testsuite).
func BenchmarkAuditAppendConcurrent(b *testing.B) {
	cfg := stack.StartMinIO(b)
	ctx := context.Background()
	store, err := s3store.New(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := store.EnsureBucket(ctx); err != nil {
		b.Fatal(err)
	}
	log := audit.Log{Store: store}
	const writers = 200
	b.ResetTimer()
	for i := range b.N {
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := log.Append(ctx, fmt.Sprintf("bench/%d/%d/%d", time.Now().UnixNano(), i, w), audit.Record{Actor: "victor", Action: "rollback",
					Model: "demand", Decision: "refused", Reason: "forbidden"})
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/200-appends")
}
