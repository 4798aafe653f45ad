// Command driftline-edge is the device agent on its own: the same agent as `driftline edge`
// (package edge/agent), built from the standard library only, small enough for a gateway or a
// Raspberry Pi (docs/edge.md, "Device quick start").
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/driftline/driftline/edge/agent"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "driftline-edge:", err)
		os.Exit(2)
	}
}

func run() error {
	fleet := flag.String("fleet", os.Getenv("DRIFTLINE_EDGE_FLEET"), "URL of the device's fleet on the API (.../v1/models/<model>/fleets/<fleet>): sets -source, -report-url and the status reports")
	source := flag.String("source", os.Getenv("DRIFTLINE_EDGE_SOURCE"), "URL of the bundle this device should run")
	keysFile := flag.String("keys", os.Getenv("DRIFTLINE_EDGE_KEYS"), "file of the registry's bundle-signing public keys, hex, one a line")
	tokenFile := flag.String("token-file", os.Getenv("DRIFTLINE_EDGE_TOKEN_FILE"), "the device's bearer token (optional)")
	dir := flag.String("dir", "/var/lib/driftline-edge", "where the bundles and the log are kept")
	listen := flag.String("listen", "127.0.0.1:9095", "local address of /predict, /label and /healthz")
	poll := flag.Duration("poll", 30*time.Second, "how often the source is asked")
	flushEvery := flag.Duration("flush", 0, "upload the log's open segment once its first record is this old (default: -poll); full segments leave at once")
	sketchEvery := flag.Duration("sketch-every", time.Hour, "close a drift sketch of the inputs this often (or every 10,000 predictions)")
	report := flag.String("report-url", os.Getenv("DRIFTLINE_EDGE_REPORT_URL"), "where the log is uploaded (empty: kept on disk)")
	flag.Parse()
	status, reference := "", ""
	if *fleet != "" {
		*source, *report, status, reference = agent.FleetURLs(*fleet)
	}
	if *source == "" || *keysFile == "" {
		return errors.New("-fleet or -source, and -keys, are required")
	}
	keys, err := agent.ReadPublicKeys(*keysFile)
	if err != nil {
		return err
	}
	f := &agent.Fetcher{URL: *source}
	if *tokenFile != "" {
		tok, err := os.ReadFile(*tokenFile)
		if err != nil {
			return err
		}
		f.Token = strings.TrimSpace(string(tok))
	}
	s := &agent.Store{Dir: *dir, Keys: keys}
	if err := s.Open(); err != nil {
		return err
	}
	log, err := agent.OpenLog(filepath.Join(*dir, "log"))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := &agent.Agent{Store: s, Fetcher: f, Log: log, ReportURL: *report, StatusURL: status, ReferenceURL: reference, SketchEvery: *sketchEvery, Listen: *listen, Poll: *poll, FlushEvery: *flushEvery}
	return a.Run(ctx)
}
