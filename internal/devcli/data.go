package devcli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/internal/cli"
	"github.com/driftline/driftline/internal/config"
	"github.com/driftline/driftline/objstore"
)

func datagenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "datagen", Short: "write the demo retail dataset to S3", Args: cli.NoArgs}
	fs := cmd.Flags()
	s3 := config.S3Flags(fs)
	name := fs.String("dataset", "retail_demand", "dataset name")
	cfg := dataset.DefaultRetail()
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed (same seed, same data)")
	fs.IntVar(&cfg.Days, "days", cfg.Days, "days of data from 2026-09-01")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		b, err := config.OpenBucket(ctx, s3)
		if err != nil {
			return err
		}
		return datagen(ctx, b, *name, cfg)
	}
	return cmd
}

// cmdWeather serves the demo's weather source: the mean temperature of a region on the last
// day of the demo dataset, at /v1/weather?region=<region>.
func weatherCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "weather", Short: "serve the demo's weather source (feature enrichment)", Args: cli.NoArgs}
	fs := cmd.Flags()
	listen := fs.String("listen", ":8095", "HTTP address")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		cfg := dataset.DefaultRetail()
		sums, counts := map[string]float64{}, map[string]float64{}
		for _, r := range cfg.RetailDay(cfg.Days - 1) {
			if r.Temperature == r.Temperature { // skip the NaN sensor outages
				sums[r.Region] += r.Temperature
				counts[r.Region]++
			}
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /v1/weather", func(w http.ResponseWriter, r *http.Request) {
			region := r.URL.Query().Get("region")
			if counts[region] == 0 {
				http.Error(w, `{"error": "unknown region"}`, http.StatusNotFound)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"temperature": %.2f}`, sums[region]/counts[region])
		})
		srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			<-ctx.Done()
			_ = srv.Close()
		}()
		fmt.Printf("weather source on %s\n", *listen)
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
	return cmd
}

func datagen(ctx context.Context, b objstore.Bucket, name string, cfg dataset.RetailConfig) error {
	// Partitions are immutable; the demo's own dataset is replaced as a whole when this
	// build's generator writes something different from what is stored.
	marker := "datasets/" + name + "/_generator.json"
	want := fmt.Sprintf(`{"generator":"retail","version":%d,"seed":%d,"days":%d}`, dataset.RetailGeneratorVersion, cfg.Seed, cfg.Days)
	have, _, err := objstore.ReadAll(ctx, b, marker)
	if err != nil && !errors.Is(err, objstore.ErrNotFound) {
		return err
	}
	if string(have) != want {
		objs, err := b.List(ctx, "datasets/"+name+"/")
		if err != nil {
			return err
		}
		for _, o := range objs {
			if err := b.Delete(ctx, o.Key); err != nil {
				return err
			}
		}
		if len(objs) > 0 {
			fmt.Printf("  replaced %d objects of an older demo dataset\n", len(objs))
		}
		if _, err := b.Put(ctx, marker, []byte(want), objstore.PutOptions{}); err != nil {
			return err
		}
	}
	w, e, err := dataset.WriteRetail(ctx, b, name, cfg)
	if err != nil {
		return err
	}
	fmt.Printf("dataset %s: %d stores x %d items x %d days from %s (seed %d); holiday season and price change from %s\n",
		name, cfg.Stores, cfg.Items, cfg.Days, cfg.Start.Format(dataset.DateLayout), cfg.Seed, cfg.ShiftDate().Format(dataset.DateLayout))
	fmt.Printf("  %d partitions written, %d already there (partitions are immutable) under %s\n", w, e, b.URI("datasets/"+name+"/"))
	return nil
}

// retailJSON is a demo row as a producer writes it (a missing temperature is null).
func retailJSON(r dataset.RetailRow) map[string]any {
	m := map[string]any{"date": r.Date, "store_id": r.StoreID, "item_id": r.ItemID, "region": r.Region, "price": r.Price,
		"promo": r.Promo, "weekday": r.Weekday, "item_popularity": r.ItemPopularity, "competitor_price": r.CompetitorPrice,
		"units_sold": r.UnitsSold, "temperature": nil}
	if r.Temperature == r.Temperature { // not NaN
		m["temperature"] = r.Temperature
	}
	return m
}
