package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"go.opentelemetry.io/otel"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/driftline/driftline/objstore"
)

var _ objstore.Bucket = (*S3)(nil)

// Config selects a bucket on AWS S3 or an S3-compatible server such as MinIO.
type Config struct {
	Endpoint  string // empty for AWS; http://127.0.0.1:9000 for a local MinIO
	Region    string
	AccessKey string // empty: the AWS default credential chain
	SecretKey string
	Bucket    string
	Prefix    string // optional key prefix inside the bucket, e.g. "driftline/"
}

// Validate reports the first missing field.
func (c Config) Validate() error {
	if c.Bucket == "" {
		return errors.New("s3 config: bucket is required (DRIFTLINE_S3_BUCKET)")
	}
	if (c.AccessKey == "") != (c.SecretKey == "") {
		return errors.New("s3 config: access key and secret key must be set together")
	}
	return nil
}

// S3 is an objstore.Bucket on S3 or MinIO.
type S3 struct {
	client *s3.Client
	cfg    Config
}

// NewS3 builds an S3 bucket client. Path-style addressing is used whenever an endpoint is set.
func New(ctx context.Context, cfg Config) (*S3, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(region)}
	if cfg.AccessKey != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, "")))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load aws config: %w", err)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, traceOperations)
		o.DisableLogOutputChecksumValidationSkipped = true
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
			o.UsePathStyle = true
		}
	})
	if cfg.Prefix != "" && !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	return &S3{client: client, cfg: cfg}, nil
}

// EnsureBucket creates the bucket when it does not exist yet.
func (s *S3) EnsureBucket(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.cfg.Bucket)})
	if err == nil {
		return nil
	}
	_, err = s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.cfg.Bucket)})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("create bucket %s: %w", s.cfg.Bucket, err)
	}
	return nil
}

func (s *S3) full(key string) string { return s.cfg.Prefix + key }

// URI implements objstore.Bucket.
func (s *S3) URI(key string) string { return "s3://" + s.cfg.Bucket + "/" + s.full(key) }

// mapErr turns S3 status codes into the package's sentinel errors.
func (s *S3) mapErr(op, key string, err error) error {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusNotFound:
			return fmt.Errorf("%s %s: %w", op, s.URI(key), objstore.ErrNotFound)
		case http.StatusPreconditionFailed, http.StatusConflict:
			return fmt.Errorf("%s %s: %w", op, s.URI(key), objstore.ErrPreconditionFailed)
		case http.StatusNotModified:
			return fmt.Errorf("%s %s: %w", op, s.URI(key), objstore.ErrNotModified)
		}
	}
	return fmt.Errorf("%s %s: %w", op, s.URI(key), err)
}

// Get implements objstore.Bucket.
func (s *S3) Get(ctx context.Context, key string, opts objstore.GetOptions) (io.ReadCloser, objstore.Object, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(s.full(key))}
	if opts.IfNoneMatch != "" {
		in.IfNoneMatch = aws.String(opts.IfNoneMatch)
	}
	if opts.Offset > 0 || opts.Length > 0 {
		r := fmt.Sprintf("bytes=%d-", opts.Offset)
		if opts.Length > 0 {
			r += fmt.Sprint(opts.Offset + opts.Length - 1)
		}
		in.Range = aws.String(r)
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		return nil, objstore.Object{}, s.mapErr("get", key, err)
	}
	obj := objstore.Object{Key: key, Size: aws.ToInt64(out.ContentLength), ETag: aws.ToString(out.ETag)}
	if out.LastModified != nil {
		obj.LastModified = *out.LastModified
	}
	return out.Body, obj, nil
}

// Put implements objstore.Bucket.
func (s *S3) Put(ctx context.Context, key string, body []byte, opts objstore.PutOptions) (objstore.Object, error) {
	in := &s3.PutObjectInput{
		Bucket:        aws.String(s.cfg.Bucket),
		Key:           aws.String(s.full(key)),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
	}
	if opts.IfNoneMatch {
		in.IfNoneMatch = aws.String("*")
	}
	if opts.IfMatch != "" {
		in.IfMatch = aws.String(opts.IfMatch)
	}
	if opts.ContentType != "" {
		in.ContentType = aws.String(opts.ContentType)
	}
	out, err := s.client.PutObject(ctx, in)
	if err != nil {
		return objstore.Object{}, s.mapErr("put", key, err)
	}
	return objstore.Object{Key: key, Size: int64(len(body)), ETag: aws.ToString(out.ETag)}, nil
}

// Head implements objstore.Bucket.
func (s *S3) Head(ctx context.Context, key string) (objstore.Object, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(s.full(key))})
	if err != nil {
		return objstore.Object{}, s.mapErr("head", key, err)
	}
	obj := objstore.Object{Key: key, Size: aws.ToInt64(out.ContentLength), ETag: aws.ToString(out.ETag)}
	if out.LastModified != nil {
		obj.LastModified = *out.LastModified
	}
	return obj, nil
}

// List implements objstore.Bucket.
func (s *S3) List(ctx context.Context, prefix string) ([]objstore.Object, error) {
	var out []objstore.Object
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.cfg.Bucket), Prefix: aws.String(s.full(prefix)),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.mapErr("list", prefix, err)
		}
		for _, o := range page.Contents {
			obj := objstore.Object{Key: strings.TrimPrefix(aws.ToString(o.Key), s.cfg.Prefix), Size: aws.ToInt64(o.Size), ETag: aws.ToString(o.ETag)}
			if o.LastModified != nil {
				obj.LastModified = *o.LastModified
			}
			out = append(out, obj)
		}
	}
	return out, nil
}

// Delete implements objstore.Bucket.
func (s *S3) Delete(ctx context.Context, key string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(s.full(key))})
	if err != nil {
		return s.mapErr("delete", key, err)
	}
	return nil
}

// traceOperations makes every S3 operation (with its retries) a client span of the caller's
// trace, named after the operation ("S3 GetObject"); nothing is recorded without a tracer
// provider (internal/telemetry).
func traceOperations(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("DriftlineTracing",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			ctx, span := tracer.Start(ctx, "S3 "+awsmiddleware.GetOperationName(ctx), trace.WithSpanKind(trace.SpanKindClient))
			defer span.End()
			out, md, err := next.HandleInitialize(ctx, in)
			if err != nil {
				span.RecordError(err)
				span.SetStatus(otelcodes.Error, err.Error())
			}
			return out, md, err
		}), middleware.Before)
}

var tracer = otel.Tracer("github.com/driftline/driftline/objstore/s3store")
