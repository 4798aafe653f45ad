package config

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"

	"github.com/driftline/driftline/codec"
	"github.com/driftline/driftline/objstore/s3store"
)

func env(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v // set, even to "": an empty key means the AWS credential chain
	}
	return def
}

// S3Flags registers the object-store flags on fs, defaulting from DRIFTLINE_S3_* variables.
// There are no default credentials: empty keys use the AWS credential chain; the local stack
// (`make up`) writes its generated MinIO credentials to .data/dev.env. A key can also come
// from a file named by DRIFTLINE_S3_ACCESS_KEY_FILE / DRIFTLINE_S3_SECRET_KEY_FILE (Docker
// secrets).
func S3Flags(fs *flag.FlagSet) *s3store.Config {
	c := &s3store.Config{}
	fs.StringVar(&c.Endpoint, "s3-endpoint", env("DRIFTLINE_S3_ENDPOINT", "http://127.0.0.1:9000"), "S3 endpoint; empty for AWS (env DRIFTLINE_S3_ENDPOINT)")
	fs.StringVar(&c.Region, "s3-region", env("DRIFTLINE_S3_REGION", "us-east-1"), "S3 region (env DRIFTLINE_S3_REGION)")
	fs.StringVar(&c.Bucket, "s3-bucket", env("DRIFTLINE_S3_BUCKET", "driftline"), "bucket (env DRIFTLINE_S3_BUCKET)")
	fs.StringVar(&c.Prefix, "s3-prefix", env("DRIFTLINE_S3_PREFIX", ""), "key prefix inside the bucket (env DRIFTLINE_S3_PREFIX)")
	fs.StringVar(&c.AccessKey, "s3-access-key", env("DRIFTLINE_S3_ACCESS_KEY", ""), "access key; empty for the AWS credential chain (env DRIFTLINE_S3_ACCESS_KEY or DRIFTLINE_S3_ACCESS_KEY_FILE)")
	fs.StringVar(&c.SecretKey, "s3-secret-key", env("DRIFTLINE_S3_SECRET_KEY", ""), "secret key (env DRIFTLINE_S3_SECRET_KEY or DRIFTLINE_S3_SECRET_KEY_FILE)")
	return c
}

// fromFile fills an empty value from the file named by the variable, if set.
func fromFile(v *string, fileVar string) error {
	f := os.Getenv(fileVar)
	if *v != "" || f == "" {
		return nil
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return fmt.Errorf("%s: %w", fileVar, err)
	}
	*v = strings.TrimSpace(string(b))
	return nil
}

// OpenBucket validates the config and connects.
func OpenBucket(ctx context.Context, c *s3store.Config) (*s3store.S3, error) {
	if err := errors.Join(fromFile(&c.AccessKey, "DRIFTLINE_S3_ACCESS_KEY_FILE"), fromFile(&c.SecretKey, "DRIFTLINE_S3_SECRET_KEY_FILE")); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return s3store.New(ctx, *c)
}

// TemporalClient dials Temporal with options from TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE and
// the rest of the standard environment (envconfig), defaulting to localhost:7233. With
// DRIFTLINE_PAYLOAD_KEY_FILE set, every payload it writes is encrypted (AES-256-GCM) and every
// payload it reads decrypted: workers, the API and the CLI must share the key.
func TemporalClient() (client.Client, error) {
	opts, err := envconfig.LoadDefaultClientOptions()
	if err != nil {
		return nil, fmt.Errorf("temporal client options: %w", err)
	}
	if path := os.Getenv("DRIFTLINE_PAYLOAD_KEY_FILE"); path != "" {
		c, err := codec.Load(path)
		if err != nil {
			return nil, err
		}
		opts.DataConverter = codec.DataConverter(c)
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
