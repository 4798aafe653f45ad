package devcli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/internal/cli"
	"github.com/driftline/driftline/traffic"
)

func trafficCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "traffic", Short: "send demo traffic to the serving worker", Args: cli.NoArgs}
	fs := cmd.Flags()
	url := fs.String("url", "http://127.0.0.1:8080", "serving worker URL")
	model := cli.ModelFlag(cmd, "model")
	rps := fs.Int("rps", 50, "requests per second")
	dur := fs.Duration("for", 30*time.Second, "how long")
	day := fs.Int("day", 59, "which day of the demo dataset the rows come from")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		ctx, cancel := context.WithTimeout(ctx, *dur)
		defer cancel()
		var st traffic.Stats
		traffic.Run(ctx, *url, *model, dataset.DefaultRetail().RetailDay(*day), *rps, &st)
		sent, failed, fb, byV := st.Snapshot()
		fmt.Printf("sent %d, failed %d, canary fallbacks %d, answered by version %s\n", sent, failed, fb, cli.FormatMap(byV))
		return nil
	}
	return cmd
}
