package devcli

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/internal/cli"
)

// cmdKafkaDev runs franz-go's kfake cluster as its own process: a Kafka-protocol broker for
// the tests and the demo (not for production: docker-compose.yml has a real one).
func kafkaDevCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "kafka-dev", Short: "run a Kafka-protocol broker for development and tests (franz-go's kfake)", Args: cli.NoArgs}
	fs := cmd.Flags()
	port := fs.Int("port", 9092, "port of the broker on 127.0.0.1")
	topics := fs.String("topics", "retail.sales:4", "topics to create, name:partitions,...")
	dataDir := fs.String("data-dir", "", "keep the log here across restarts (empty: in memory)")
	registry := fs.Int("registry-port", 0, "also serve a schema registry (franz-go's srfake, in memory) on this port of 127.0.0.1 (0: none)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if *registry > 0 {
			srv := &http.Server{Addr: fmt.Sprintf("127.0.0.1:%d", *registry), Handler: srfake.NewRegistry().Handler(), ReadHeaderTimeout: 5 * time.Second}
			ln, err := net.Listen("tcp", srv.Addr)
			if err != nil {
				return fmt.Errorf("--registry-port: %w", err)
			}
			go func() { _ = srv.Serve(ln) }()
			defer srv.Close()
			fmt.Printf("schema registry (srfake) on http://%s\n", srv.Addr)
		}
		opts := []kfake.Opt{kfake.Ports(*port), kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(time.Second)}
		if *dataDir != "" {
			opts = append(opts, kfake.DataDir(*dataDir))
		}
		for _, t := range strings.Split(*topics, ",") {
			name, n, ok := strings.Cut(t, ":")
			parts, err := strconv.Atoi(n)
			if !ok || err != nil || parts < 1 {
				return fmt.Errorf("--topics: %q is not name:partitions", t)
			}
			opts = append(opts, kfake.SeedTopics(int32(parts), name))
		}
		c, err := kfake.NewCluster(opts...)
		if err != nil {
			return err
		}
		defer c.Close()
		fmt.Printf("kafka-dev (kfake) on %s, topics %s\n", strings.Join(c.ListenAddrs(), ","), *topics)
		<-ctx.Done()
		return nil
	}
	return cmd
}

// cmdProduce streams the demo's retail days as JSON records (key store-item) into a topic.
func produceCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "produce", Short: "stream the demo's retail days into a Kafka topic as JSON records", Args: cli.NoArgs}
	fs := cmd.Flags()
	brokers := fs.String("brokers", "127.0.0.1:9092", "Kafka brokers")
	topic := fs.String("topic", "retail.sales", "topic")
	from := fs.Int("from-day", 0, "first day of the demo data (0: 2026-09-01)")
	days := fs.Int("days", 1, "days to produce")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		cfg := dataset.DefaultRetail()
		n, err := produceRetail(ctx, strings.Split(*brokers, ","), *topic, cfg, *from, *days)
		if err != nil {
			return err
		}
		fmt.Printf("produced %d records (%d days from %s) to %s\n", n, *days, cfg.Start.AddDate(0, 0, *from).Format(time.DateOnly), *topic)
		return nil
	}
	return cmd
}
