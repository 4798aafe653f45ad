package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/driftline/driftline/objstore/s3store"
)

// RepoRoot walks up from the working directory to the directory holding go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Binary returns the path of a tool in ./bin, failing the test with the fix when it is missing.
func Binary(t testing.TB, name string) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is missing: run `make tools` (make test does it for you)", p)
	}
	return p
}

// FreePort asks the kernel for a free loopback port. A connection to it is closed from the
// listening side first, which leaves the port in TIME_WAIT: the kernel does not hand it to
// another bind to port 0 for a minute (the dev server picks its internal ports that way), yet
// the process given the port can still listen on it.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if c, err := net.Dial("tcp", l.Addr().String()); err == nil {
		if s, err := l.Accept(); err == nil {
			s.Close()
		}
		defer c.Close()
	}
	return l.Addr().(*net.TCPAddr).Port
}

// WaitHTTP polls url until it answers 200 or the timeout passes.
func WaitHTTP(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not become ready within %s", url, timeout)
}

// RandomSecret is a fresh credential for a test server (nothing committed is a secret).
func RandomSecret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// StartMinIO starts a MinIO server on a free port with its data in a temp dir, creates the
// bucket and returns its config. The server stops when the test ends.
func StartMinIO(t testing.TB) s3store.Config {
	_, cfg := startMinIO(t, "driftline-test")
	return cfg
}

// startMinIO starts MinIO as a restartable service (its data directory outlives a restart)
// with fresh credentials, and creates bucket.
func startMinIO(t testing.TB, bucket string) (*Service, s3store.Config) {
	t.Helper()
	port, console := FreePort(t), FreePort(t)
	user, password := "test-"+RandomSecret(6), RandomSecret(18)
	svc := NewService(t, "minio", "", []string{"MINIO_ROOT_USER=" + user, "MINIO_ROOT_PASSWORD=" + password, "MINIO_BROWSER=off", "MINIO_UPDATE=off"},
		Binary(t, "minio"), "server", t.TempDir(), "--quiet",
		"--address", fmt.Sprintf("127.0.0.1:%d", port), "--console-address", fmt.Sprintf("127.0.0.1:%d", console))
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
	WaitHTTP(t, endpoint+"/minio/health/live", 30*time.Second)
	cfg := s3store.Config{Endpoint: endpoint, AccessKey: user, SecretKey: password, Bucket: bucket, Region: "us-east-1"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := s3store.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for range 50 {
		if lastErr = s.EnsureBucket(ctx); lastErr == nil {
			return svc, cfg
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("create bucket on %s: %v", endpoint, lastErr)
	return nil, cfg
}

// NewMinIOBucket starts MinIO and returns a Bucket on it under a fresh prefix.
func NewMinIOBucket(t testing.TB) *s3store.S3 {
	t.Helper()
	cfg := StartMinIO(t)
	cfg.Prefix = strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")) + "/"
	s, err := s3store.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// StartTemporal starts `temporal server start-dev` from ./bin on free ports, with its state in
// a temp dir, and returns the frontend host:port. The server stops when the test ends.
func StartTemporal(t testing.TB) string {
	addr, _ := startTemporalDev(t)
	return addr
}

// startTemporalDev starts the dev server as a restartable service: its state is a database
// file, so a restart keeps every run. The dev server picks its internal services' ports
// itself and dies when another process took one meanwhile (a race no free-port choice here
// can close): it is ready only once its history and matching services answer, and it is
// started again on other ports when it died on the way (three tries).
func startTemporalDev(t testing.TB) (string, *Service) {
	t.Helper()
	for try := 1; ; try++ {
		port, httpPort, metrics := FreePort(t), FreePort(t), FreePort(t)
		svc := NewService(t, "temporal", "", nil, Binary(t, "temporal"), "server", "start-dev", "--headless",
			"--ip", "127.0.0.1", "--port", fmt.Sprint(port), "--http-port", fmt.Sprint(httpPort), "--metrics-port", fmt.Sprint(metrics),
			"--db-filename", filepath.Join(t.TempDir(), "temporal.db"), "--log-level", "warn")
		hostPort := fmt.Sprintf("127.0.0.1:%d", port)
		err := waitTemporalReady(svc, hostPort, 90*time.Second)
		if err == nil {
			return hostPort, svc
		}
		svc.Stop()
		if try == 3 {
			t.Fatalf("temporal dev server: %v (three tries)", err)
		}
		t.Logf("temporal dev server, try %d: %v; starting it again on other ports", try, err)
	}
}

// Service is a process a fault campaign can kill and start again: same binary, arguments,
// environment and ports; its output from every start is appended to one log.
type Service struct {
	t    testing.TB
	Name string
	bin  string
	args []string
	env  []string
	dir  string
	Log  string
	cmd  *exec.Cmd
	done chan struct{}
	// stopSignal is what Stop sends (SIGINT unless set): runuser, which runs PostgreSQL as
	// its user when the tests run as root, forwards SIGTERM but not SIGINT.
	stopSignal os.Signal
}

// NewService starts a restartable process; it is stopped (SIGTERM, then SIGKILL) when the test ends.
func NewService(t testing.TB, name, dir string, env []string, bin string, args ...string) *Service {
	t.Helper()
	s := &Service{t: t, Name: name, bin: bin, args: args, env: env, dir: dir, Log: filepath.Join(t.TempDir(), name+".log")}
	s.Start()
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			if b, err := os.ReadFile(s.Log); err == nil {
				if dir := os.Getenv("DRIFTLINE_TEST_LOGS"); dir != "" { // the whole log, kept
					name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + "-" + s.Name + ".log"
					if err := os.MkdirAll(dir, 0o755); err == nil {
						_ = os.WriteFile(filepath.Join(dir, name), b, 0o644)
					}
				}
				tail := string(b)
				if len(tail) > 3000 {
					tail = tail[len(tail)-3000:]
				}
				t.Logf("--- %s (tail) ---\n%s", name, tail)
			}
		}
	})
	return s
}

// Start starts the process (it must not be running).
func (s *Service) Start() {
	s.t.Helper()
	f, err := os.OpenFile(s.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = s.dir, f, f
	cmd.Env = append(os.Environ(), s.env...)
	if err := cmd.Start(); err != nil {
		f.Close()
		s.t.Fatalf("start %s: %v", s.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	s.cmd, s.done = cmd, done
}

// Pid is the running process's id (0 when it is not running): a Temporal worker's default
// identity begins with it.
func (s *Service) Pid() int {
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Kill sends SIGKILL and waits for the process to be gone.
func (s *Service) Kill() { s.signal(os.Kill, 0) }

// Term sends SIGTERM and waits for the process to exit, however long it takes.
func (s *Service) Term() { s.signal(syscall.SIGTERM, 0) }

// Dump sends SIGQUIT: a Go process writes every goroutine's stack to its log and exits (for a
// campaign that stalls: where it waits).
func (s *Service) Dump() { s.signal(syscall.SIGQUIT, 10*time.Second) }

// Stop sends SIGINT (PostgreSQL's fast shutdown, a graceful stop for the others; SIGTERM to a
// PostgreSQL run by runuser) and waits up to 30 s, then kills.
func (s *Service) Stop() {
	sig := s.stopSignal
	if sig == nil {
		sig = os.Interrupt
	}
	s.signal(sig, 30*time.Second)
}

// signal sends sig and waits for the process to exit; with a grace period, it is killed when
// it has not exited by then.
func (s *Service) signal(sig os.Signal, grace time.Duration) {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	if grace > 0 {
		select {
		case <-s.done:
		case <-time.After(grace):
			_ = s.cmd.Process.Kill()
		}
	}
	<-s.done
	s.cmd = nil
}

// BuildDriftline builds ./cmd/driftline from the working tree into a temp dir (so a campaign
// never runs a stale ./bin/driftline) and returns its path.
func BuildDriftline(t testing.TB) string { return buildCommand(t, "driftline") }

// BuildDriftlineDev builds ./cmd/driftline-dev (driftline with the demo's tools: kafka-dev,
// produce, datagen, weather, traffic) the same way.
func BuildDriftlineDev(t testing.TB) string { return buildCommand(t, "driftline-dev") }

// BuildEdgeAgent builds ./cmd/driftline-edge, the standalone device agent.
func BuildEdgeAgent(t testing.TB) string { return buildCommand(t, "driftline-edge") }

func buildCommand(t testing.TB, name string) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", out, "./cmd/"+name)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/%s: %v\n%s", name, err, b)
	}
	return out
}

// WaitPort waits until host:port accepts connections.
func WaitPort(t testing.TB, hostPort string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", hostPort, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not listen within %s", hostPort, timeout)
}

// runAs returns the command line that runs bin as the postgres user when the test runs as
// root (PostgreSQL refuses to run as root), and bin itself otherwise.
func runAs(bin string, args ...string) (string, []string) {
	if os.Geteuid() != 0 {
		return bin, args
	}
	return "runuser", append([]string{"-u", "postgres", "--", bin}, args...)
}

// StartPostgres initialises a PostgreSQL cluster (Debian's, /usr/lib/postgresql/<v>/bin) in a
// temp dir, starts it on a free loopback port and returns the port and the service.
func StartPostgres(t testing.TB) (int, *Service) {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		t.Fatal("PostgreSQL is missing: make test installs Debian's postgresql")
	}
	pgBin := filepath.Dir(bins[len(bins)-1])
	dir, err := os.MkdirTemp("", "driftline-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chown", "postgres:postgres", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown %s: %v %s", dir, err, out)
		}
	}
	data := filepath.Join(dir, "data")
	bin, args := runAs(filepath.Join(pgBin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8")
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	port := FreePort(t)
	bin, args = runAs(filepath.Join(pgBin, "postgres"), "-D", data, "-p", fmt.Sprint(port), "-k", dir, "-c", "listen_addresses=127.0.0.1",
		"-c", "max_connections=200")
	svc := NewService(t, "postgres", dir, nil, bin, args...)
	if bin == "runuser" {
		svc.stopSignal = syscall.SIGTERM // forwarded to PostgreSQL: its smart shutdown
	}
	WaitPort(t, fmt.Sprintf("127.0.0.1:%d", port), 60*time.Second)
	return port, svc
}

// StartTemporalServer starts the Temporal server (./bin/temporal-server, go.temporal.io/server
// v1.30.4, the build production users run) on PostgreSQL, with the schema applied by the
// server's own SQL tool (./bin/temporal-sql-tool) from the module's schema files
// (./bin/temporal-schema), and the namespace "default" registered. It returns the frontend
// host:port and the server's service (to restart it).
func StartTemporalServer(t testing.TB) (string, *Service) {
	t.Helper()
	server, sqlTool := Binary(t, "temporal-server"), Binary(t, "temporal-sql-tool")
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	schema := filepath.Join(root, "bin", "temporal-schema", "postgresql", "v12")
	pgPort, _ := StartPostgres(t)
	applyTemporalSchema(t, sqlTool, schema, pgPort)
	dir := t.TempDir()
	p := func() int { return FreePort(t) }
	// Membership ports are stored as smallint: pick them below 32768, outside the kernel's
	// ephemeral range.
	low := func() int {
		for {
			port := 20000 + int(randomByte())*40 + int(randomByte())%40
			if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
				l.Close()
				return port
			}
		}
	}
	frontend := p()
	dyn := filepath.Join(dir, "dynamicconfig.yaml")
	// Search attributes visible at once (as the dev server does) and quick namespace caches.
	if err := os.WriteFile(dyn, []byte("system.forceSearchAttributesCacheRefreshOnRead:\n  - value: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := temporalServerConfig(pgPort, frontend, p, low, dyn)
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	svc := NewService(t, "temporal-server", dir, nil, server, "--config-file", cfgPath, "--allow-no-auth", "start")
	hostPort := fmt.Sprintf("127.0.0.1:%d", frontend)
	WaitPort(t, hostPort, 120*time.Second)
	return hostPort, svc
}

// applyTemporalSchema creates the server's two databases on PostgreSQL and applies their
// schema with the server's own SQL tool.
func applyTemporalSchema(t testing.TB, sqlTool, schema string, pgPort int) {
	t.Helper()
	for _, db := range []struct{ name, dir string }{{"temporal", "temporal"}, {"temporal_visibility", "visibility"}} {
		base := []string{"--plugin", "postgres12", "--ep", "127.0.0.1", "-p", fmt.Sprint(pgPort), "-u", "postgres", "--db", db.name}
		for _, step := range [][]string{{"create-database"}, {"setup-schema", "-v", "0.0"}, {"update-schema", "-d", filepath.Join(schema, db.dir, "versioned")}} {
			if out, err := exec.Command(sqlTool, append(base, step...)...).CombinedOutput(); err != nil {
				t.Fatalf("temporal-sql-tool %s %v: %v\n%s", db.name, step, err, out)
			}
		}
	}
}

// temporalServerConfig is the Temporal server's configuration on PostgreSQL at pgPort: its
// frontend on frontend, other ports from port (and membership ports from low), dynamic
// configuration from the file dyn.
func temporalServerConfig(pgPort, frontend int, port, low func() int, dyn string) string {
	p := port
	ds := func(db string, conns int) string {
		return fmt.Sprintf(`      sql:
        pluginName: postgres12
        databaseName: %s
        connectAddr: "127.0.0.1:%d"
        connectProtocol: tcp
        user: postgres
        password: ""
        maxConns: %d
        maxIdleConns: %d
        maxConnLifetime: 1h
`, db, pgPort, conns, conns)
	}
	svcs := ""
	for _, s := range []string{"frontend", "history", "matching", "worker"} {
		grpc := p()
		if s == "frontend" {
			grpc = frontend
		}
		svcs += fmt.Sprintf("  %s:\n    rpc:\n      grpcPort: %d\n      membershipPort: %d\n      bindOnLocalHost: true\n", s, grpc, low())
		if s == "frontend" {
			svcs += fmt.Sprintf("      httpPort: %d\n", p())
		}
	}
	return fmt.Sprintf(`log:
  stdout: true
  level: warn
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: 4
  datastores:
    default:
%s    visibility:
%sglobal:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "127.0.0.1"
  pprof:
    port: 0
  metrics:
    prometheus:
      framework: tally
      timerType: histogram
      listenAddress: "127.0.0.1:%d"
services:
%sclusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "127.0.0.1:%d"
dcRedirectionPolicy:
  policy: noop
dynamicConfigClient:
  filepath: %q
  pollInterval: 10s
`, ds("temporal", 20), ds("temporal_visibility", 5), p(), svcs, frontend, dyn)
}

func randomByte() byte {
	b := make([]byte, 1)
	_, _ = rand.Read(b)
	return b[0]
}

// debianTool finds a binary of a Debian package (make tools installs prometheus and
// prometheus-alertmanager).
func debianTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is missing: make tools installs Debian's prometheus and prometheus-alertmanager", name)
	}
	return p
}

// StartAlertmanager starts Debian's Alertmanager with the given configuration (YAML) on a
// free port, clustering off, and returns its base URL.
func StartAlertmanager(t testing.TB, config string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	NewService(t, "alertmanager", "", nil, debianTool(t, "prometheus-alertmanager"), "--config.file="+cfg,
		"--storage.path="+filepath.Join(dir, "data"), fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--cluster.listen-address=")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	WaitHTTP(t, base+"/-/ready", 30*time.Second)
	return base
}

// StartPrometheus starts Debian's Prometheus with the given configuration (YAML; rule files
// named relative to the repository root are resolved by the caller) on a free port and
// returns its base URL.
func StartPrometheus(t testing.TB, config string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	NewService(t, "prometheus", "", nil, debianTool(t, "prometheus"), "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	WaitHTTP(t, base+"/-/ready", 60*time.Second)
	return base
}

// StartRedis starts Debian's redis-server on a free port without persistence and returns its
// host:port (make tools installs redis-server).
func StartRedis(t testing.TB) string {
	t.Helper()
	port := FreePort(t)
	NewService(t, "redis", "", nil, debianTool(t, "redis-server"), "--port", fmt.Sprint(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	WaitPort(t, addr, 30*time.Second)
	return addr
}

// StartJaeger starts Jaeger (./bin/jaeger, built from github.com/jaegertracing/jaeger v1.76.0
// by make tools) with in-memory storage, its OTLP/HTTP receiver and its query API on free
// loopback ports; it returns the OTLP endpoint (http://host:port) and the query API's base URL.
func StartJaeger(t testing.TB) (otlp, query string) {
	t.Helper()
	bin := Binary(t, "jaeger")
	otlpPort, queryPort, grpcPort := FreePort(t), FreePort(t), FreePort(t)
	cfg := filepath.Join(t.TempDir(), "jaeger.yaml")
	config := fmt.Sprintf(`service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:%d
    grpc:
      endpoint: 127.0.0.1:%d
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
processors:
  batch:
    timeout: 200ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`, queryPort, grpcPort, otlpPort)
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	NewService(t, "jaeger", "", nil, bin, "--config", cfg)
	query = fmt.Sprintf("http://127.0.0.1:%d", queryPort)
	WaitHTTP(t, query+"/api/services", 60*time.Second)
	return fmt.Sprintf("http://127.0.0.1:%d", otlpPort), query
}
