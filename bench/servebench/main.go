// Command servebench serves the demo model (gbdt, trained on the demo data) through the real
// serving handler, its prediction log written to MinIO when -s3-endpoint is given, and a bare
// net/http handler that returns a constant, side by side, for bench/serve.sh to load with wrk
// and hey.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"time"

	"github.com/driftline/driftline/internal/benchutil"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/objstore/s3store"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/serving"
)

func main() {
	servingAddr := flag.String("serving", "127.0.0.1:18080", "serving worker address")
	bareAddr := flag.String("bare", "127.0.0.1:18081", "bare handler address")
	grpcAddr := flag.String("grpc", "", "also serve the Open Inference Protocol v2 over gRPC here")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof here (profiling the handler under load)")
	endpoint := flag.String("s3-endpoint", "", "log predictions to this S3 endpoint (MinIO) instead of memory")
	access := flag.String("s3-access-key", "", "S3 access key")
	secret := flag.String("s3-secret-key", "", "S3 secret key")
	flag.Parse()
	if *pprofAddr != "" {
		go func() { _ = http.ListenAndServe(*pprofAddr, nil) }()
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()
	var store objstore.Bucket = objstore.NewMem()
	if *endpoint != "" { // the registry and the prediction log on MinIO, as in production
		store = benchutil.MinIOBucket(ctx, s3store.Config{Endpoint: *endpoint, AccessKey: *access, SecretKey: *secret, Bucket: "servebench", Region: "us-east-1"})
	}
	v := benchutil.DeployDemoModel(ctx, registry.New(store), "demand", 100)
	s, err := serving.New(serving.Options{Store: store, Models: []string{"demand"}, Poll: time.Hour})
	if err != nil {
		panic(err)
	}
	s.Start(ctx)
	if *grpcAddr != "" {
		ln, err := net.Listen("tcp", *grpcAddr)
		if err != nil {
			panic(err)
		}
		go func() { _ = s.GRPCServer().Serve(ln) }()
	}
	go serveBare(*bareAddr)
	fmt.Printf("serving v%d on %s, bare handler on %s\n", v.Version, *servingAddr, *bareAddr)
	if err := s.ListenAndServe(ctx, *servingAddr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// serveBare serves a handler that answers a fixed prediction: the HTTP stack's own cost.
func serveBare(addr string) {
	bare := http.NewServeMux()
	bare.HandleFunc("POST /v1/models/{action}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"model":"demand","version":1,"route":"production","prediction":12.5}`+"\n")
	})
	srv := &http.Server{Addr: addr, Handler: bare, ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
