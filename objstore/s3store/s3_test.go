package s3store_test

import (
	"testing"

	"github.com/driftline/driftline/objstore/objstoretest"
	"github.com/driftline/driftline/testsuite"
)

func TestMinIOContract(t *testing.T) {
	objstoretest.ContractTest(t, testsuite.NewMinIOBucket(t))
}
