package stack

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/driftline/driftline/objstore/azstore"
	"github.com/driftline/driftline/objstore/gcsstore"
)

// StartFakeGCS starts fake-gcs-server (github.com/fsouza/fake-gcs-server, from ./bin) in
// memory on a free port, creates bucket, and returns its configuration.
func StartFakeGCS(t testing.TB, bucket string) gcsstore.Config {
	t.Helper()
	port := FreePort(t)
	NewService(t, "fake-gcs-server", "", nil, Binary(t, "fake-gcs-server"), "-scheme", "http", "-host", "127.0.0.1",
		"-port", fmt.Sprint(port), "-backend", "memory", "-public-host", fmt.Sprintf("127.0.0.1:%d", port), "-log-level", "error")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	WaitHTTP(t, base+"/storage/v1/b", 30*time.Second)
	cfg := gcsstore.Config{Bucket: bucket, Endpoint: base + "/storage/v1/"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g, err := gcsstore.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.EnsureBucket(ctx, "driftline-test"); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// NewFakeGCSBucket is a fresh fake-gcs-server bucket under the test's own prefix.
func NewFakeGCSBucket(t testing.TB) *gcsstore.GCS {
	t.Helper()
	cfg := StartFakeGCS(t, "driftline-test")
	cfg.Prefix = strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")) + "/"
	g, err := gcsstore.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g
}

// azuriteKey is the Azure Storage emulator's well-known development account key (published
// by Microsoft for Azurite; it opens nothing but a local emulator).
const azuriteKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

// StartAzurite starts Azurite's blob service (Microsoft's Azure Storage emulator, npm, from
// ./bin/azurite) on a free port with its data in a temp dir, creates container, and returns
// its configuration (a connection string).
func StartAzurite(t testing.TB, containerName string) azstore.Config {
	t.Helper()
	port := FreePort(t)
	NewService(t, "azurite", "", nil, Binary(t, "azurite/node_modules/.bin/azurite-blob"), "--blobHost", "127.0.0.1",
		"--blobPort", fmt.Sprint(port), "--location", t.TempDir(), "--skipApiVersionCheck", "--silent", "--disableTelemetry")
	endpoint := fmt.Sprintf("http://127.0.0.1:%d/devstoreaccount1", port)
	cfg := azstore.Config{Container: containerName, ConnectionString: fmt.Sprintf(
		"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=%s;BlobEndpoint=%s;", azuriteKey, endpoint)}
	a, err := azstore.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var lastErr error
	for range 100 {
		if lastErr = a.EnsureContainer(ctx); lastErr == nil {
			return cfg
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("create container on Azurite %s: %v", endpoint, lastErr)
	return cfg
}

// NewAzuriteBucket is a fresh Azurite container under the test's own prefix.
func NewAzuriteBucket(t testing.TB) *azstore.Azure {
	t.Helper()
	cfg := StartAzurite(t, "driftline-test")
	cfg.Prefix = strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")) + "/"
	a, err := azstore.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
