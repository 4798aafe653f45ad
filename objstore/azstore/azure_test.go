package azstore_test

import (
	"testing"

	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/objstore/objstoretest"
)

// The objstore contract (create-once, conditional and ranged reads, compare-and-swap with 16
// racing writers, listings, deletes) on Azurite.
func TestAzuriteContract(t *testing.T) {
	objstoretest.ContractTest(t, stack.NewAzuriteBucket(t))
}
