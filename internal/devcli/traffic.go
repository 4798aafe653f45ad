package devcli

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/internal/cli"
	"github.com/driftline/driftline/traffic"
)

func cmdTraffic(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("traffic", flag.ContinueOnError)
	url := fs.String("url", "http://127.0.0.1:8080", "serving worker URL")
	model := cli.ModelFlag(fs, "model")
	rps := fs.Int("rps", 50, "requests per second")
	dur := fs.Duration("for", 30*time.Second, "how long")
	day := fs.Int("day", 59, "which day of the demo dataset the rows come from")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *dur)
	defer cancel()
	var st traffic.Stats
	traffic.Run(ctx, *url, *model, dataset.DefaultRetail().RetailDay(*day), *rps, &st)
	sent, failed, fb, byV := st.Snapshot()
	fmt.Printf("sent %d, failed %d, canary fallbacks %d, answered by version %s\n", sent, failed, fb, cli.FormatMap(byV))
	return nil
}
