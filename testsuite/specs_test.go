package testsuite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/policies"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
)

// RegisterSpec writes sp as its model's current registered spec straight into the bucket,
// as whoever holds the bucket can (tests that start runs without the API use it).
func RegisterSpec(ctx context.Context, b objstore.Bucket, sp spec.Spec) error {
	raw, err := yaml.Marshal(sp)
	if err != nil {
		return err
	}
	parsed, err := spec.Parse(raw)
	if err != nil {
		return fmt.Errorf("the spec does not survive YAML: %w", err)
	}
	reg := registry.New(b)
	_, _, etag, err := reg.CurrentSpec(ctx, sp.Model)
	if err != nil && !errors.Is(err, registry.ErrNotFound) {
		return err
	}
	_, _, err = reg.ApplySpec(ctx, parsed, raw, etag, "test", "registered by the test", spec.GovernanceChanges(nil, parsed))
	return err
}

// RBACWithoutFloors writes the example RBAC file without its organisation floors (a campaign
// about faults, not people, runs without approvals) and returns its path.
func RBACWithoutFloors(t *testing.T, root string) string {
	t.Helper()
	rbac, err := policies.LoadRBAC(filepath.Join(root, "examples/rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rbac.Organisation = nil
	raw, err := yaml.Marshal(rbac)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "rbac.yaml")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
