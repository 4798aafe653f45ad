package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"
	"gopkg.in/yaml.v3"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/objstore/s3store"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/policies"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
	"github.com/driftline/driftline/starter"
)

// historyStats is what a workflow's history holds: its events, their encoded size, and the
// largest event (its type and size).
type historyStats struct {
	id            string
	events, bytes int
	largest       int
	largestEvent  string
}

// manyPartitions is the partition-count run: a window of files day files (a few rows each),
// read by a real run of the loop with one partition a file, on worker processes; it reports
// the run's outcome and every history it made (the run and its batch children).
func manyPartitions(ctx context.Context, c client.Client, b *s3store.S3, bin, endpoint, temporal string, s3cfg s3store.Config, files, holdout, workers int) error {
	sp, err := spec.Load("examples/demand.yaml")
	if err != nil {
		return err
	}
	cfg := dataset.DefaultRetail()
	cfg.Stores, cfg.Items, cfg.Days = 1, 20, files
	sp.Dataset.WindowDays, sp.Dataset.PartitionFiles, sp.Dataset.HoldoutDays = files, 1, holdout
	sp.Approval.Required = false
	t0 := time.Now()
	if _, _, err := dataset.WriteRetail(ctx, b, sp.Dataset.Name, cfg); err != nil {
		return err
	}
	if err := registerSpec(ctx, b, sp); err != nil {
		return err
	}
	fmt.Printf("window: %d day files of %d rows written in %.0f s\n", files, cfg.Stores*cfg.Items, time.Since(t0).Seconds())
	rbac, err := rbacWithoutFloors()
	if err != nil {
		return err
	}
	defer os.Remove(rbac)
	stop, err := startWorkers(bin, endpoint, temporal, s3cfg, workers, "4", "--rbac", rbac)
	if err != nil {
		return err
	}
	defer stop()
	from, to := cfg.Start.Format(dataset.DateLayout), cfg.Start.AddDate(0, 0, files-1).Format(dataset.DateLayout)
	t0 = time.Now()
	run, err := starter.StartRun(ctx, c, pipeline.RunInput{Spec: sp, From: from, To: to, RequestedBy: "fanoutbench"})
	if err != nil {
		return err
	}
	var res pipeline.RunResult
	if err := run.Get(ctx, &res); err != nil {
		return err
	}
	fmt.Printf("run over %d partitions (its holdout evaluated as %d) on %d worker(s): %s in %.0f s (%s)\n", files, holdout, workers, res.Outcome, time.Since(t0).Seconds(), res.Reason)
	ids := []string{run.GetID()}
	for i := 0; i*500 < files && files > 500; i++ {
		ids = append(ids, fmt.Sprintf("%s/partitions/%d", run.GetID(), i))
	}
	for i := 0; i*500 < holdout && holdout > 500; i++ {
		ids = append(ids, fmt.Sprintf("%s/evaluation/%d", run.GetID(), i))
	}
	var all []historyStats
	for _, id := range ids {
		h, err := history(ctx, c, id)
		if err != nil {
			return err
		}
		all = append(all, h)
	}
	report(all)
	return nil
}

// report prints the run's history, the children's largest and smallest, and the largest
// event of all.
func report(all []historyStats) {
	run, children := all[0], slices.Clone(all[1:])
	fmt.Printf("  the run %s: %d events, %.1f KB, largest event %s of %.1f KB\n", run.id, run.events, float64(run.bytes)/1024, run.largestEvent, float64(run.largest)/1024)
	if len(children) == 0 {
		return
	}
	slices.SortFunc(children, func(a, b historyStats) int { return b.events - a.events })
	big := children[0]
	fmt.Printf("  %d batch children: the largest %s: %d events, %.1f KB; the smallest %d events\n", len(children), big.id, big.events, float64(big.bytes)/1024, children[len(children)-1].events)
	slices.SortFunc(all, func(a, b historyStats) int { return b.largest - a.largest })
	fmt.Printf("  the largest event of all: %s in %s, %.1f KB; under the warning of 10,240 events: %v\n", all[0].largestEvent, all[0].id, float64(all[0].largest)/1024, big.events < 10240 && run.events < 10240)
}

// history reads a workflow's latest run's history.
func history(ctx context.Context, c client.Client, id string) (historyStats, error) {
	h := historyStats{id: id}
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return h, fmt.Errorf("history of %s: %w", id, err)
		}
		n := proto.Size(ev)
		h.events, h.bytes = h.events+1, h.bytes+n
		if n > h.largest {
			h.largest, h.largestEvent = n, strings.TrimPrefix(ev.GetEventType().String(), "EVENT_TYPE_")
		}
	}
	return h, nil
}

// registerSpec applies sp as its model's registered spec (runs carry the registered spec).
func registerSpec(ctx context.Context, b *s3store.S3, sp spec.Spec) error {
	raw, err := yaml.Marshal(sp)
	if err != nil {
		return err
	}
	parsed, err := spec.Parse(raw)
	if err != nil {
		return err
	}
	reg := registry.New(b)
	_, _, etag, err := reg.CurrentSpec(ctx, sp.Model)
	if err != nil && !errors.Is(err, registry.ErrNotFound) {
		return err
	}
	_, _, err = reg.ApplySpec(ctx, parsed, raw, etag, "fanoutbench", "the partition-count run", spec.GovernanceChanges(nil, parsed))
	return err
}

// startWorkers starts n worker processes (GOMAXPROCS=1 each, concurrency slots each) and
// returns what stops them, printing their CPU seconds.
func startWorkers(bin, endpoint, temporal string, s3cfg s3store.Config, n int, concurrency string, args ...string) (func(), error) {
	var procs []*exec.Cmd
	stop := func() {
		var cpu []string
		for _, p := range procs {
			_ = p.Process.Signal(os.Interrupt)
			_ = p.Wait()
			if st := p.ProcessState; st != nil {
				cpu = append(cpu, fmt.Sprintf("%.1f", (st.UserTime()+st.SystemTime()).Seconds()))
			}
		}
		fmt.Printf("  CPU seconds of the worker processes (start to stop): %s\n", strings.Join(cpu, ", "))
	}
	for i := range n {
		cmd := exec.Command(bin, append([]string{"worker", "--metrics", fmt.Sprintf("127.0.0.1:%d", 19600+i), "--attestation-keys", "http://127.0.0.1:1/unused",
			"--concurrency", concurrency}, args...)...)
		cmd.Env = append(os.Environ(), "GOMAXPROCS=1", "TEMPORAL_ADDRESS="+temporal, "DRIFTLINE_S3_ENDPOINT="+endpoint, "DRIFTLINE_S3_BUCKET="+s3cfg.Bucket,
			"DRIFTLINE_S3_ACCESS_KEY="+s3cfg.AccessKey, "DRIFTLINE_S3_SECRET_KEY="+s3cfg.SecretKey)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if os.Getenv("FANOUTBENCH_QUIET") != "" {
			cmd.Stdout, cmd.Stderr = nil, nil
		}
		if err := cmd.Start(); err != nil {
			stop()
			return nil, err
		}
		procs = append(procs, cmd)
	}
	time.Sleep(2 * time.Second) // the workers poll their task queue
	return stop, nil
}

// rbacWithoutFloors writes the example RBAC file without the organisation's floors (the run
// is about partitions, not people: no attested requester, no approval) and returns its path.
func rbacWithoutFloors() (string, error) {
	rbac, err := policies.LoadRBAC("examples/rbac.yaml")
	if err != nil {
		return "", err
	}
	rbac.Organisation = nil
	raw, err := yaml.Marshal(rbac)
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp("", "rbac-*.yaml")
	if err != nil {
		return "", err
	}
	defer f.Close()
	_, err = f.Write(raw)
	return f.Name(), err
}
