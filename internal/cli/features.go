package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/driftline/driftline/api"
	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/features"
	"github.com/driftline/driftline/internal/config"
)

const featuresUsage = "usage: driftline features plan|apply --definitions FILE --spec FILE [--repo R] [--reason TEXT] | materialize --view V --from T --to T [--chunk 24h] | get --service S --key K --at TIME [--online | --online-store ADDR] | retrieve --service S --entities KEY --time-column C --out PREFIX"

// cmdFeatures validates feature definitions and shows what applying them changes (plan),
// applies them through the control-plane API (apply: authenticated, authorised, audited),
// and retrieves a service's vector as of a time from the offline data (get).
func cmdFeatures(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New(featuresUsage)
	}
	fs := flag.NewFlagSet("features "+args[0], flag.ContinueOnError)
	s3 := config.S3Flags(fs)
	defsPath := fs.String("definitions", "examples/features.yaml", "feature definitions (YAML)")
	specPath := fs.String("spec", "examples/demand.yaml", "model spec whose dataset contract the definitions are checked against here (the API checks them against the model's registered spec)")
	repoName := fs.String("repo", "retail", "repository of the registry of definitions (features/_repos/<repo>/)")
	reason := fs.String("reason", "", "why (apply; recorded in the audit trail)")
	service := fs.String("service", "demand_forecast", "feature service (get)")
	key := fs.String("key", "1|1", "entity key, key values joined with | (get)")
	at := fs.String("at", "", "as of this time, RFC 3339 or a date (get)")
	view := fs.String("view", "demand_history", "feature view (materialize)")
	from := fs.String("from", "", "materialize from (RFC 3339 or a date)")
	to := fs.String("to", "", "... to")
	chunk := fs.String("chunk", "24h", "materialization chunk")
	queue := fs.String("task-queue", os.Getenv("DRIFTLINE_FEATURES_QUEUE"), "materialize: the task queue whose worker holds the online store (driftline serve --features-queue; empty: the pipeline worker's --online-store)")
	entities := fs.String("entities", "", "retrieve: the entity file, a Parquet object in the bucket (the entity's keys, a time column, any other columns)")
	timeColumn := fs.String("time-column", "event_time", "retrieve: the entity file's time column (a date or RFC 3339 string, or Unix seconds)")
	outPrefix := fs.String("out", "", "retrieve: where the training set goes (<out>part-<n>.parquet, 1,000,000 rows each)")
	onlineStore := fs.String("online-store", os.Getenv("DRIFTLINE_ONLINE_STORE"), "get: read this online store (bolt:<file> or redis://host:port) instead of the offline data; with a token, the API's (driftline api --online-store)")
	online := fs.Bool("online", false, "get: read the online store (with a token: the API's; without: --online-store's)")
	out := addOutput(fs)
	a := APIFlags(fs)
	if err := Parse(fs, args[1:]); err != nil {
		return err
	}
	_, sp, err := readSpec(*specPath)
	if err != nil {
		return err
	}
	contracts := map[string]contract.Contract{sp.Dataset.Name: sp.Contract}
	repo, raw, err := features.LoadRepo(*defsPath, contracts)
	if err != nil {
		return err
	}
	switch args[0] {
	case "plan":
		b, err := config.OpenBucket(ctx, s3)
		if err != nil {
			return err
		}
		cur, curRepo, _, ok, err := features.Current(ctx, b, *repoName)
		if err != nil {
			return err
		}
		if ok {
			fmt.Printf("%s: valid; against version %d (applied by %s at %s):\n", *defsPath, cur.Version, cur.AppliedBy, cur.AppliedAt.Format(time.RFC3339))
		} else {
			fmt.Printf("%s: valid; repository %s has no definitions yet:\n", *defsPath, *repoName)
		}
		changes := features.Plan(curRepo, repo)
		for _, c := range changes {
			fmt.Printf("  %s\n", c)
		}
		if len(changes) == 0 {
			fmt.Println("  no changes")
		}
		return nil
	case "apply":
		var out api.FeaturesApplied
		if err := a.Do(ctx, http.MethodPut, "/v1/features/"+*repoName, api.FeaturesRequest{Definitions: string(raw), Model: sp.Model, Reason: *reason}, &out); err != nil {
			return err
		}
		if !out.Changed {
			fmt.Printf("%s is already version %d: nothing changed\n", *repoName, out.Version)
			return nil
		}
		fmt.Printf("applied %s as version %d (%s):\n", *repoName, out.Version, out.Key)
		for _, c := range out.Changes {
			fmt.Printf("  %s\n", c)
		}
		return nil
	case "materialize":
		var out api.MaterializeStarted
		if err := a.Do(ctx, http.MethodPost, "/v1/features/"+*repoName+"/materialize", api.MaterializeRequest{View: *view, Model: sp.Model,
			From: *from, To: *to, Chunk: *chunk, TaskQueue: *queue}, &out); err != nil {
			return err
		}
		fmt.Printf("materializing %s/%s from %s to %s: workflow %s (run %s)\n", *repoName, *view, *from, *to, out.WorkflowID, out.RunID)
		return nil
	case "retrieve":
		if *entities == "" || *outPrefix == "" {
			return errors.New("features retrieve: --entities and --out are required")
		}
		b, err := config.OpenBucket(ctx, s3)
		if err != nil {
			return err
		}
		id := fmt.Sprintf("retrieve-%d", time.Now().UnixNano())
		pin := func(ctx context.Context, ds string, from, to time.Time) (dataset.Snapshot, error) {
			return dataset.TakeSnapshot(ctx, b, ds, id, from, to)
		}
		out, err := features.RetrieveFile(ctx, b, repo, *service, contracts, pin, *entities, *timeColumn, *outPrefix, "")
		if err != nil {
			return err
		}
		fmt.Printf("%s: %d rows with %s joined as of %s (point-in-time) in %d partitions -> %d files under %s\n", b.URI(*entities), out.Snapshot.Rows,
			*service, *timeColumn, out.Partitions, len(out.Snapshot.Files), b.URI(*outPrefix))
		for i, c := range out.Columns {
			fmt.Printf("  %-20s no value known by the row's time in %d rows\n", c, out.Missing[i])
		}
		return nil
	case "get":
		if *at == "" && (*online || *onlineStore != "") {
			*at = time.Now().UTC().Format(time.RFC3339) // the online store serves the latest rows
		}
		t, err := parseWhen(*at)
		if err != nil {
			return err
		}
		asJSON, err := out.JSON()
		if err != nil {
			return err
		}
		type value struct {
			Name    string   `json:"name"`
			Value   *float64 `json:"value"` // null: missing
			Missing string   `json:"missing,omitempty"`
			EventAt string   `json:"event_at,omitempty"`
		}
		type vector struct {
			Service string  `json:"service"`
			Key     string  `json:"key"`
			AsOf    string  `json:"as_of"`
			Source  string  `json:"source"`
			Values  []value `json:"values"`
		}
		if *online && *onlineStore == "" && *a.Token == "" {
			return errors.New("features get --online: name the store with --online-store, or read the API's with a token (DRIFTLINE_TOKEN)")
		}
		if (*online || *onlineStore != "") && *a.Token != "" { // through the API: view on the model, the API's store
			var fv api.FeatureVector
			q := url.Values{"model": {sp.Model}, "key": {*key}, "source": {"online"}}
			if err := a.Do(ctx, http.MethodGet, "/v1/features/"+url.PathEscape(*repoName)+"/services/"+url.PathEscape(*service)+"?"+q.Encode(), nil, &fv); err != nil {
				return err
			}
			if asJSON {
				v := vector{Service: *service, Key: *key, AsOf: fv.AsOf.Format(time.RFC3339), Source: "online, through the API"}
				for i, n := range fv.Names {
					x := value{Name: n, Value: fv.Values[i], Missing: fv.Missing[i]}
					if x.Missing == "" {
						x.EventAt = fv.EventTimes[i].UTC().Format(time.RFC3339)
					}
					v.Values = append(v.Values, x)
				}
				return printJSON(v)
			}
			fmt.Printf("%s of %s from the API's online store, read at %s:\n", *service, *key, fv.AsOf.Format(time.RFC3339))
			for i, n := range fv.Names {
				if fv.Missing[i] != "" {
					fmt.Printf("  %-36s missing: %s\n", n, fv.Missing[i])
					continue
				}
				fmt.Printf("  %-36s %.4f  (row of %s)\n", n, *fv.Values[i], fv.EventTimes[i].UTC().Format(time.RFC3339))
			}
			return nil
		}
		if *onlineStore != "" {
			o, err := features.OpenStore(ctx, *onlineStore)
			if err != nil {
				return err
			}
			defer o.Close()
			vec, err := features.ReadService(ctx, o, repo, *service, *key, t)
			if err != nil {
				return err
			}
			if asJSON {
				v := vector{Service: *service, Key: *key, AsOf: t.Format(time.RFC3339), Source: *onlineStore}
				for i, n := range vec.Names {
					x := value{Name: n, Missing: vec.Missing[i]}
					if x.Missing == "" {
						x.Value, x.EventAt = &vec.Values[i], vec.Event[i].UTC().Format(time.RFC3339)
					}
					v.Values = append(v.Values, x)
				}
				return printJSON(v)
			}
			fmt.Printf("%s of %s from the online store %s, read as of %s:\n", *service, *key, *onlineStore, t.Format(time.RFC3339))
			for i, n := range vec.Names {
				if vec.Missing[i] != "" {
					fmt.Printf("  %-36s missing: %s\n", n, vec.Missing[i])
					continue
				}
				fmt.Printf("  %-36s %.4f  (row of %s, %s old)\n", n, vec.Values[i], vec.Event[i].UTC().Format(time.RFC3339), vec.Age[i].Round(time.Minute))
			}
			return nil
		}
		if *a.Token != "" { // through the API: the applied definitions, view on the model
			var fv api.FeatureVector
			q := url.Values{"model": {sp.Model}, "key": {*key}, "at": {t.Format(time.RFC3339)}}
			if err := a.Do(ctx, http.MethodGet, "/v1/features/"+url.PathEscape(*repoName)+"/services/"+url.PathEscape(*service)+"?"+q.Encode(), nil, &fv); err != nil {
				return err
			}
			if asJSON {
				v := vector{Service: *service, Key: *key, AsOf: t.Format(time.RFC3339), Source: "offline (point-in-time), through the API"}
				for i, n := range fv.Names {
					x := value{Name: n, Value: fv.Values[i]}
					if x.Value == nil {
						x.Missing = "no value known by then"
					}
					v.Values = append(v.Values, x)
				}
				return printJSON(v)
			}
			fmt.Printf("%s of %s as of %s (point-in-time: only values known by then):\n", *service, *key, t.Format(time.RFC3339))
			for i, n := range fv.Names {
				if fv.Values[i] == nil {
					fmt.Printf("  %-36s missing\n", n)
					continue
				}
				fmt.Printf("  %-36s %.4f\n", n, *fv.Values[i])
			}
			return nil
		}
		b, err := config.OpenBucket(ctx, s3)
		if err != nil {
			return err
		}
		snap, err := dataset.TakeSnapshot(ctx, b, sp.Dataset.Name, "features-get", t.AddDate(0, 0, -90), t)
		if err != nil {
			return err
		}
		ts, err := features.Retrieve(ctx, b, repo, *service, contracts, map[string]dataset.Snapshot{sp.Dataset.Name: snap},
			[]features.EntityRow{{Key: *key, At: t.UnixMicro()}})
		if err != nil {
			return err
		}
		if asJSON {
			v := vector{Service: *service, Key: *key, AsOf: t.Format(time.RFC3339), Source: "offline (point-in-time)"}
			for i, n := range ts.Names {
				x := value{Name: n}
				if f := ts.Vectors[0][i]; math.IsNaN(f) {
					x.Missing = "no value known by then"
				} else {
					x.Value = &f
				}
				v.Values = append(v.Values, x)
			}
			return printJSON(v)
		}
		fmt.Printf("%s of %s as of %s (point-in-time: only values known by then):\n", *service, *key, t.Format(time.RFC3339))
		for i, n := range ts.Names {
			v := ts.Vectors[0][i]
			if math.IsNaN(v) {
				fmt.Printf("  %-36s missing\n", n)
				continue
			}
			fmt.Printf("  %-36s %.4f\n", n, v)
		}
		for i, v := range ts.Views {
			if e := ts.Events[0][i]; e != 0 {
				fmt.Printf("  view %s: the row of %s\n", v, time.UnixMicro(e).UTC().Format(time.RFC3339))
			}
		}
		return nil
	}
	return errors.New(featuresUsage)
}

func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("features get: --at is required")
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--at %q is not RFC 3339 or a date", s)
}
