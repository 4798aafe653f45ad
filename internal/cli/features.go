package cli

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/driftline/driftline/api"
	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/features"
	"github.com/driftline/driftline/internal/config"
	"github.com/driftline/driftline/objstore/s3store"
	"github.com/driftline/driftline/spec"
)

// featureDefs are the flags every features subcommand shares: the definitions, the spec whose
// contract they are checked against here (the API checks them against the model's registered
// spec), and the repository; loaded after parsing.
type featureDefs struct {
	defsPath, specPath, repoName *string
	s3                           *s3store.Config
	a                            APIClient

	spec      spec.Spec
	repo      features.Repo
	raw       []byte
	contracts map[string]contract.Contract
}

func addFeatureDefs(fs *pflag.FlagSet) *featureDefs {
	return &featureDefs{
		defsPath: fs.String("definitions", "examples/features.yaml", "feature definitions (YAML)"),
		specPath: fs.String("spec", "examples/demand.yaml", "model spec whose dataset contract the definitions are checked against here (the API checks them against the model's registered spec)"),
		repoName: fs.String("repo", "retail", "repository of the registry of definitions (features/_repos/<repo>/)"),
		s3:       config.S3Flags(fs),
		a:        APIFlags(fs),
	}
}

func (d *featureDefs) load() error {
	_, sp, err := readSpec(*d.specPath)
	if err != nil {
		return err
	}
	d.spec, d.contracts = sp, map[string]contract.Contract{sp.Dataset.Name: sp.Contract}
	d.repo, d.raw, err = features.LoadRepo(*d.defsPath, d.contracts)
	return err
}

// featuresCmd validates feature definitions and shows what applying them changes (plan),
// applies them through the control-plane API (apply: authenticated, authorised, audited),
// materializes a view (through the API), retrieves a training set (retrieve) and a service's
// vector (get). Each subcommand takes its own flags and the definitions' group.
func featuresCmd() *cobra.Command {
	return parent("features", "feature definitions: plan, apply (through the API), materialize, retrieve a training set, get a vector",
		featureSub("plan", "validate definitions and show what applying them changes", featuresPlan),
		featureSub("apply", "apply definitions through the control-plane API", featuresApply),
		featureSub("materialize", "materialize a feature view into the online store (through the API)", featuresMaterialize),
		featureSub("retrieve", "retrieve a point-in-time training set for an entity file", featuresRetrieve),
		featureSub("get", "a feature service's vector for one key: point in time, or online", featuresGet))
}

// featureSub is a features subcommand: the definitions' flag group, then the subcommand's own
// flags (declared by declare, which returns what it runs once the definitions are loaded).
func featureSub(use, short string, declare func(fs *pflag.FlagSet, d *featureDefs) func(context.Context) error) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Args: NoArgs}
	d := addFeatureDefs(cmd.Flags())
	run := declare(cmd.Flags(), d)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := d.load(); err != nil {
			return err
		}
		return run(cmd.Context())
	}
	return cmd
}

func featuresPlan(_ *pflag.FlagSet, d *featureDefs) func(context.Context) error {
	return func(ctx context.Context) error {
		b, err := config.OpenBucket(ctx, d.s3)
		if err != nil {
			return err
		}
		cur, curRepo, _, ok, err := features.Current(ctx, b, *d.repoName)
		if err != nil {
			return err
		}
		if ok {
			fmt.Printf("%s: valid; against version %d (applied by %s at %s):\n", *d.defsPath, cur.Version, cur.AppliedBy, cur.AppliedAt.Format(time.RFC3339))
		} else {
			fmt.Printf("%s: valid; repository %s has no definitions yet:\n", *d.defsPath, *d.repoName)
		}
		changes := features.Plan(curRepo, d.repo)
		for _, c := range changes {
			fmt.Printf("  %s\n", c)
		}
		if len(changes) == 0 {
			fmt.Println("  no changes")
		}
		return nil
	}
}

func featuresApply(fs *pflag.FlagSet, d *featureDefs) func(context.Context) error {
	reason := fs.String("reason", "", "why (recorded in the audit trail)")
	return func(ctx context.Context) error {
		c, err := d.a.Client()
		if err != nil {
			return err
		}
		out, err := c.ApplyFeatures(ctx, *d.repoName, api.FeaturesRequest{Definitions: string(d.raw), Model: d.spec.Model, Reason: *reason})
		if err != nil {
			return hint(err)
		}
		if !out.Changed {
			fmt.Printf("%s is already version %d: nothing changed\n", *d.repoName, out.Version)
			return nil
		}
		fmt.Printf("applied %s as version %d (%s):\n", *d.repoName, out.Version, out.Key)
		for _, c := range out.Changes {
			fmt.Printf("  %s\n", c)
		}
		return nil
	}
}

func featuresMaterialize(fs *pflag.FlagSet, d *featureDefs) func(context.Context) error {
	view := fs.String("view", "demand_history", "feature view")
	from := fs.String("from", "", "materialize from (RFC 3339 or a date)")
	to := fs.String("to", "", "... to")
	chunk := fs.String("chunk", "24h", "materialization chunk")
	queue := EnvFlag(fs, "task-queue", "DRIFTLINE_FEATURES_QUEUE", "", "the task queue whose worker holds the online store (driftline serve --features-queue; empty: the pipeline worker's --online-store)")
	return func(ctx context.Context) error {
		c, err := d.a.Client()
		if err != nil {
			return err
		}
		out, err := c.Materialize(ctx, *d.repoName, api.MaterializeRequest{View: *view, Model: d.spec.Model, From: *from, To: *to, Chunk: *chunk, TaskQueue: *queue})
		if err != nil {
			return hint(err)
		}
		fmt.Printf("materializing %s/%s from %s to %s: workflow %s (run %s)\n", *d.repoName, *view, *from, *to, out.WorkflowID, out.RunID)
		return nil
	}
}

func featuresRetrieve(fs *pflag.FlagSet, d *featureDefs) func(context.Context) error {
	service := fs.String("service", "demand_forecast", "feature service")
	entities := fs.String("entities", "", "the entity file, a Parquet object in the bucket (the entity's keys, a time column, any other columns)")
	timeColumn := fs.String("time-column", "event_time", "the entity file's time column (a date or RFC 3339 string, or Unix seconds)")
	outPrefix := fs.String("out", "", "where the training set goes (<out>part-<n>.parquet, 1,000,000 rows each)")
	return func(ctx context.Context) error {
		if *entities == "" || *outPrefix == "" {
			return errors.New("features retrieve: --entities and --out are required")
		}
		b, err := config.OpenBucket(ctx, d.s3)
		if err != nil {
			return err
		}
		id := fmt.Sprintf("retrieve-%d", time.Now().UnixNano())
		pin := func(ctx context.Context, ds string, from, to time.Time) (dataset.Snapshot, error) {
			return dataset.TakeSnapshot(ctx, b, ds, id, from, to)
		}
		out, err := features.RetrieveFile(ctx, b, d.repo, *service, d.contracts, pin, *entities, *timeColumn, *outPrefix, "")
		if err != nil {
			return err
		}
		fmt.Printf("%s: %d rows with %s joined as of %s (point-in-time) in %d partitions -> %d files under %s\n", b.URI(*entities), out.Snapshot.Rows,
			*service, *timeColumn, out.Partitions, len(out.Snapshot.Files), b.URI(*outPrefix))
		for i, c := range out.Columns {
			fmt.Printf("  %-20s no value known by the row's time in %d rows\n", c, out.Missing[i])
		}
		return nil
	}
}

// featureValue and featureVector are what `features get` prints, whatever it read.
type featureValue struct {
	Name    string   `json:"name"`
	Value   *float64 `json:"value"` // null: missing
	Missing string   `json:"missing,omitempty"`
	EventAt string   `json:"event_at,omitempty"`
	row     string   // the table's note on the stored row
}

type featureVector struct {
	Service string         `json:"service"`
	Key     string         `json:"key"`
	AsOf    string         `json:"as_of"`
	Source  string         `json:"source"`
	Values  []featureValue `json:"values"`
	// heading is the table's first line; views the offline rows joined (table only).
	heading string
	views   []string
}

func (v featureVector) print(asJSON bool) error {
	if asJSON {
		return printJSON(v)
	}
	fmt.Println(v.heading)
	for _, x := range v.Values {
		switch {
		case x.Value == nil:
			fmt.Printf("  %-36s missing: %s\n", x.Name, x.Missing)
		case x.row != "":
			fmt.Printf("  %-36s %.4f  (row of %s)\n", x.Name, *x.Value, x.row)
		default:
			fmt.Printf("  %-36s %.4f\n", x.Name, *x.Value)
		}
	}
	for _, line := range v.views {
		fmt.Println("  " + line)
	}
	return nil
}

func featuresGet(fs *pflag.FlagSet, d *featureDefs) func(context.Context) error {
	service := fs.String("service", "demand_forecast", "feature service")
	key := fs.String("key", "1|1", "entity key, key values joined with |")
	at := fs.String("at", "", "as of this time, RFC 3339 or a date (the online store: now)")
	onlineStore := EnvFlag(fs, "online-store", "DRIFTLINE_ONLINE_STORE", "", "read this online store (bolt:<file> or redis://host:port) instead of the offline data; with a token, the API's (driftline api --online-store)")
	online := fs.Bool("online", false, "read the online store (with a token: the API's; without: --online-store's)")
	out := addOutput(fs)
	return func(ctx context.Context) error {
		wantOnline := *online || *onlineStore != ""
		if *at == "" && wantOnline {
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
		if *online && *onlineStore == "" && *d.a.Token == "" {
			return errors.New("features get --online: name the store with --online-store, or read the API's with a token (DRIFTLINE_TOKEN)")
		}
		v := featureVector{Service: *service, Key: *key, AsOf: t.Format(time.RFC3339)}
		switch {
		case *d.a.Token != "": // through the API: view on the model; the API's online store
			err = v.fromAPI(ctx, d, t, wantOnline)
		case *onlineStore != "":
			err = v.fromOnlineStore(ctx, d, *onlineStore, t)
		default:
			err = v.fromOffline(ctx, d, t)
		}
		if err != nil {
			return err
		}
		return v.print(asJSON)
	}
}

func (v *featureVector) fromAPI(ctx context.Context, d *featureDefs, t time.Time, online bool) error {
	c, err := d.a.Client()
	if err != nil {
		return err
	}
	fv, err := c.FeatureVector(ctx, *d.repoName, v.Service, d.spec.Model, v.Key, t, online)
	if err != nil {
		return hint(err)
	}
	if online {
		v.AsOf, v.Source = fv.AsOf.Format(time.RFC3339), "online, through the API"
		v.heading = fmt.Sprintf("%s of %s from the API's online store, read at %s:", v.Service, v.Key, v.AsOf)
		for i, n := range fv.Names {
			x := featureValue{Name: n, Value: fv.Values[i], Missing: fv.Missing[i]}
			if x.Missing == "" {
				x.EventAt = fv.EventTimes[i].UTC().Format(time.RFC3339)
				x.row = x.EventAt
			}
			v.Values = append(v.Values, x)
		}
		return nil
	}
	v.Source = "offline (point-in-time), through the API"
	v.heading = fmt.Sprintf("%s of %s as of %s (point-in-time: only values known by then):", v.Service, v.Key, v.AsOf)
	for i, n := range fv.Names {
		x := featureValue{Name: n, Value: fv.Values[i]}
		if x.Value == nil {
			x.Missing = "no value known by then"
		}
		v.Values = append(v.Values, x)
	}
	return nil
}

func (v *featureVector) fromOnlineStore(ctx context.Context, d *featureDefs, addr string, t time.Time) error {
	o, err := features.OpenStore(ctx, addr)
	if err != nil {
		return err
	}
	defer o.Close()
	vec, err := features.ReadService(ctx, o, d.repo, v.Service, v.Key, t)
	if err != nil {
		return err
	}
	v.Source = addr
	v.heading = fmt.Sprintf("%s of %s from the online store %s, read as of %s:", v.Service, v.Key, addr, v.AsOf)
	for i, n := range vec.Names {
		x := featureValue{Name: n, Missing: vec.Missing[i]}
		if x.Missing == "" {
			x.Value, x.EventAt = &vec.Values[i], vec.Event[i].UTC().Format(time.RFC3339)
			x.row = fmt.Sprintf("%s, %s old", x.EventAt, vec.Age[i].Round(time.Minute))
		}
		v.Values = append(v.Values, x)
	}
	return nil
}

func (v *featureVector) fromOffline(ctx context.Context, d *featureDefs, t time.Time) error {
	b, err := config.OpenBucket(ctx, d.s3)
	if err != nil {
		return err
	}
	snap, err := dataset.TakeSnapshot(ctx, b, d.spec.Dataset.Name, "features-get", t.AddDate(0, 0, -90), t)
	if err != nil {
		return err
	}
	ts, err := features.Retrieve(ctx, b, d.repo, v.Service, d.contracts, map[string]dataset.Snapshot{d.spec.Dataset.Name: snap},
		[]features.EntityRow{{Key: v.Key, At: t.UnixMicro()}})
	if err != nil {
		return err
	}
	v.Source = "offline (point-in-time)"
	v.heading = fmt.Sprintf("%s of %s as of %s (point-in-time: only values known by then):", v.Service, v.Key, v.AsOf)
	for i, n := range ts.Names {
		x := featureValue{Name: n}
		if f := ts.Vectors[0][i]; math.IsNaN(f) {
			x.Missing = "no value known by then"
		} else {
			x.Value = &f
		}
		v.Values = append(v.Values, x)
	}
	for i, view := range ts.Views {
		if e := ts.Events[0][i]; e != 0 {
			v.views = append(v.views, fmt.Sprintf("view %s: the row of %s", view, time.UnixMicro(e).UTC().Format(time.RFC3339)))
		}
	}
	return nil
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
