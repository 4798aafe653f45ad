package cli

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/driftline/driftline/edge/agent"
)

// edgeCmd is the device agent: it follows the bundle its source serves, installs it when it
// verifies, and answers predictions on a local port (docs/edge.md).
func edgeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "edge --source URL --keys FILE", Short: "run the device agent: follow a signed edge bundle, serve predictions locally", Args: NoArgs}
	fs := cmd.Flags()
	fleet := EnvFlag(fs, "fleet", "DRIFTLINE_EDGE_FLEET", "", "URL of the device's fleet on the API (.../v1/models/<model>/fleets/<fleet>): sets --source and --report-url, and the agent reports its status there")
	source := EnvFlag(fs, "source", "DRIFTLINE_EDGE_SOURCE", "", "URL of the bundle this device should run (answers ETag / If-None-Match)")
	keysFile := EnvFlag(fs, "keys", "DRIFTLINE_EDGE_KEYS", "", "file of the registry's bundle-signing public keys, hex, one a line (two during a rotation)")
	tokenFile := EnvFlag(fs, "token-file", "DRIFTLINE_EDGE_TOKEN_FILE", "", "the device's bearer token for the source (optional)")
	dir := EnvFlag(fs, "dir", "DRIFTLINE_EDGE_DIR", "/var/lib/driftline-edge", "where the installed and the previous bundle are kept")
	listen := fs.String("listen", "127.0.0.1:9095", "local address of POST /predict and GET /healthz")
	poll := fs.Duration("poll", 30*time.Second, "how often the source is asked (a 304 when unchanged; backoff when unreachable)")
	flushEvery := fs.Duration("flush", 0, "upload the log's open segment once its first record is this old (default: --poll); full segments leave at once")
	sketchEvery := fs.Duration("sketch-every", time.Hour, "close a drift sketch of the inputs this often (or every 10,000 predictions)")
	features := fs.String("features", "", "comma-separated feature order the host program sends; a bundle of another order is refused (empty: any)")
	reportURL := EnvFlag(fs, "report-url", "DRIFTLINE_EDGE_REPORT_URL", "", "where the log of predictions (with an id) and labels is uploaded, e.g. the API's /v1/models/<model>/edge-log (empty: kept on disk only)")
	_ = fs.SetAnnotation("keys", requiredAnnotation, []string{"the trusted public keys"})
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		keys, err := readPublicKeys(*keysFile)
		if err != nil {
			return usageError{cmd, err}
		}
		status, reference := "", ""
		if *fleet != "" {
			*source, *reportURL, status, reference = agent.FleetURLs(*fleet)
		}
		if *source == "" {
			return usageError{cmd, errors.New("--fleet or --source is required")}
		}
		f := &agent.Fetcher{URL: *source}
		if *tokenFile != "" {
			tok, err := readKeyFile(*tokenFile)
			if err != nil {
				return err
			}
			f.Token = string(tok)
		}
		s := &agent.Store{Dir: *dir, Keys: keys}
		if *features != "" {
			s.Features = strings.Split(*features, ",")
		}
		if err := s.Open(); err != nil {
			return err
		}
		log, err := agent.OpenLog(filepath.Join(*dir, "log"))
		if err != nil {
			return err
		}
		a := &agent.Agent{Store: s, Fetcher: f, Log: log, ReportURL: *reportURL, StatusURL: status, ReferenceURL: reference, SketchEvery: *sketchEvery, Listen: *listen, Poll: *poll, FlushEvery: *flushEvery,
			Ready: func() { fmt.Printf("edge agent: predictions on http://%s/predict; following %s\n", *listen, f.URL) }}
		return a.Run(cmd.Context())
	}
	return cmd
}

// readPublicKeys reads the trusted keys named by --keys.
func readPublicKeys(path string) ([]ed25519.PublicKey, error) {
	if path == "" {
		return nil, errors.New("--keys is required: the registry's bundle-signing public keys")
	}
	keys, err := agent.ReadPublicKeys(path)
	if err != nil {
		return nil, fmt.Errorf("--keys: %w", err)
	}
	return keys, nil
}
