package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/driftline/driftline/objstore/s3store"
	"github.com/driftline/driftline/starter"
)

// Topology is the Temporal a Stack runs on.
type Topology string

const (
	// DevServer is the Temporal CLI's dev server (SQLite in a file).
	DevServer Topology = "dev"
	// PostgresServer is the Temporal server v1.30.4 on PostgreSQL, the persistence production
	// users run.
	PostgresServer Topology = "postgres"
)

// Stack is what the loop runs on in the end-to-end test and the fault campaigns: Temporal and
// MinIO, each a Service a test can stop and start again with its state kept (the server's
// database, MinIO's data directory), and the Driftline processes started on them with the
// stack's configuration.
type Stack struct {
	t            testing.TB
	Root         string // the repository, where Driftline processes run
	Topology     Topology
	TemporalAddr string
	Temporal     *Service
	MinIO        *Service
	S3           s3store.Config
	Store        *s3store.S3
	env          []string
}

// New starts Temporal on topology and MinIO with bucket created.
func New(t testing.TB, topology Topology, bucket string) *Stack {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	s := &Stack{t: t, Root: root, Topology: topology}
	switch topology {
	case DevServer:
		s.TemporalAddr, s.Temporal = startTemporalDev(t)
	case PostgresServer:
		s.TemporalAddr, s.Temporal = StartTemporalServer(t)
	default:
		t.Fatalf("stack: unknown topology %q", topology)
	}
	s.MinIO, s.S3 = startMinIO(t, bucket)
	if s.Store, err = s3store.New(context.Background(), s.S3); err != nil {
		t.Fatal(err)
	}
	return s
}

// Dial connects to the stack's Temporal with opts (its HostPort set here) and makes sure the
// namespace "default" and Driftline's search attributes exist, retrying while the server
// comes up (up to 2 minutes).
func (s *Stack) Dial(ctx context.Context, opts client.Options) client.Client {
	s.t.Helper()
	opts.HostPort = s.TemporalAddr
	var err error
	deadline := time.Now().Add(2 * time.Minute)
	for ; time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if err = s.registerNamespace(ctx); err != nil {
			continue
		}
		var c client.Client
		if c, err = client.Dial(opts); err != nil {
			continue
		}
		if err = starter.Setup(ctx, c, "default"); err != nil {
			c.Close()
			continue
		}
		s.t.Cleanup(c.Close)
		return c
	}
	s.t.Fatalf("temporal at %s: %v", s.TemporalAddr, err)
	return nil
}

// registerNamespace registers "default" on the Temporal server, which starts with none but
// its own (the dev server has it).
func (s *Stack) registerNamespace(ctx context.Context) error {
	if s.Topology != PostgresServer {
		return nil
	}
	nc, err := client.NewNamespaceClient(client.Options{HostPort: s.TemporalAddr})
	if err != nil {
		return err
	}
	defer nc.Close()
	err = nc.Register(ctx, &workflowservice.RegisterNamespaceRequest{Namespace: "default", WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour)})
	if _, exists := errors.AsType[*serviceerror.NamespaceAlreadyExists](err); exists {
		return nil
	}
	return err
}

// SetEnv adds variables (KEY=value) to the environment of the Driftline processes started
// after it.
func (s *Stack) SetEnv(kv ...string) { s.env = append(s.env, kv...) }

// Env is a Driftline process's environment on this stack: its bucket and Temporal, and what
// SetEnv added.
func (s *Stack) Env() []string {
	return append([]string{"DRIFTLINE_S3_ENDPOINT=" + s.S3.Endpoint, "DRIFTLINE_S3_BUCKET=" + s.S3.Bucket, "DRIFTLINE_S3_ACCESS_KEY=" + s.S3.AccessKey,
		"DRIFTLINE_S3_SECRET_KEY=" + s.S3.SecretKey, "TEMPORAL_ADDRESS=" + s.TemporalAddr}, s.env...)
}

// Driftline starts bin (a build of cmd/driftline or cmd/driftline-dev) with args as a
// restartable service on this stack.
func (s *Stack) Driftline(name, bin string, args ...string) *Service {
	s.t.Helper()
	return NewService(s.t, name, s.Root, s.Env(), bin, args...)
}

// RestartTemporal stops the Temporal server gracefully, leaves it down for down, starts it
// again and waits until it listens (up to a minute). It does not fail the test, so a fault
// goroutine can call it: the error says what went wrong.
func (s *Stack) RestartTemporal(down time.Duration) error {
	s.Temporal.Stop()
	time.Sleep(down)
	s.Temporal.Start()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if conn, err := net.DialTimeout("tcp", s.TemporalAddr, time.Second); err == nil {
			conn.Close()
			return nil
		}
	}
	return fmt.Errorf("temporal at %s did not listen within a minute of its restart", s.TemporalAddr)
}

// RestartMinIO stops MinIO gracefully, leaves it down for down and starts it again.
func (s *Stack) RestartMinIO(down time.Duration) {
	s.MinIO.Stop()
	time.Sleep(down)
	s.MinIO.Start()
}
