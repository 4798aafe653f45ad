package objstore_test

import (
	"testing"

	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/objstore/objstoretest"
)

func TestMemContract(t *testing.T) { objstoretest.ContractTest(t, objstore.NewMem()) }
