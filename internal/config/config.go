package config

import (
	"context"
	"flag"
	"fmt"
	"os"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"

	"github.com/driftline/driftline/objstore/s3store"
)

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// S3Flags registers the object-store flags on fs, defaulting from DRIFTLINE_S3_* variables
// (and to the local MinIO that `make up` starts).
func S3Flags(fs *flag.FlagSet) *s3store.Config {
	c := &s3store.Config{}
	fs.StringVar(&c.Endpoint, "s3-endpoint", env("DRIFTLINE_S3_ENDPOINT", "http://127.0.0.1:9000"), "S3 endpoint; empty for AWS (env DRIFTLINE_S3_ENDPOINT)")
	fs.StringVar(&c.Region, "s3-region", env("DRIFTLINE_S3_REGION", "us-east-1"), "S3 region (env DRIFTLINE_S3_REGION)")
	fs.StringVar(&c.Bucket, "s3-bucket", env("DRIFTLINE_S3_BUCKET", "driftline"), "bucket (env DRIFTLINE_S3_BUCKET)")
	fs.StringVar(&c.Prefix, "s3-prefix", env("DRIFTLINE_S3_PREFIX", ""), "key prefix inside the bucket (env DRIFTLINE_S3_PREFIX)")
	fs.StringVar(&c.AccessKey, "s3-access-key", env("DRIFTLINE_S3_ACCESS_KEY", "driftline"), "access key; empty for the AWS credential chain (env DRIFTLINE_S3_ACCESS_KEY)")
	fs.StringVar(&c.SecretKey, "s3-secret-key", env("DRIFTLINE_S3_SECRET_KEY", "driftline-secret"), "secret key (env DRIFTLINE_S3_SECRET_KEY)")
	return c
}

// OpenBucket validates the config and connects.
func OpenBucket(ctx context.Context, c *s3store.Config) (*s3store.S3, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return s3store.New(ctx, *c)
}

// TemporalClient dials Temporal with options from TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE and
// the rest of the standard environment (envconfig), defaulting to localhost:7233.
func TemporalClient() (client.Client, error) {
	opts, err := envconfig.LoadDefaultClientOptions()
	if err != nil {
		return nil, fmt.Errorf("temporal client options: %w", err)
	}
	c, err := client.Dial(opts)
	if err != nil {
		return nil, fmt.Errorf("connect to temporal at %s: %w", orDefault(opts.HostPort, client.DefaultHostPort), err)
	}
	return c, nil
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// Connect opens the bucket and dials Temporal; the caller closes the client.
func Connect(ctx context.Context, c *s3store.Config) (*s3store.S3, client.Client, error) {
	b, err := OpenBucket(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	tc, err := TemporalClient()
	if err != nil {
		return nil, nil, err
	}
	return b, tc, nil
}
