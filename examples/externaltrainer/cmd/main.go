// Command externaltrainer runs the example external trainer: a Temporal worker on its own
// task queue serving driftline.train.v1. Point a spec at it with trainer.task_queue:
//
//	go run ./examples/externaltrainer/cmd --task-queue external-trainer
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/pflag"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"

	"github.com/driftline/driftline/examples/externaltrainer"
	"github.com/driftline/driftline/internal/config"
	"github.com/driftline/driftline/objstore/s3store"
	"github.com/driftline/driftline/pipeline"
)

func main() {
	fs := pflag.NewFlagSet("externaltrainer", pflag.ExitOnError)
	s3 := config.S3Flags(fs)
	queue := fs.String("task-queue", "external-trainer", "task queue the spec's trainer.task_queue names")
	alpha := fs.Float64("alpha", 1, "ridge penalty")
	_ = fs.Parse(os.Args[1:])
	if err := run(*queue, *alpha, s3); err != nil {
		fmt.Fprintln(os.Stderr, "externaltrainer:", err)
		os.Exit(1)
	}
}

func run(queue string, alpha float64, s3 *s3store.Config) error {
	ctx := context.Background()
	store, c, err := config.Connect(ctx, s3)
	if err != nil {
		return err
	}
	defer c.Close()
	w := worker.New(c, queue, worker.Options{})
	t := &externaltrainer.Trainer{Store: store, Alpha: alpha}
	w.RegisterActivityWithOptions(t.Train, activity.RegisterOptions{Name: pipeline.ExternalTrainActivity})
	return w.Run(worker.InterruptCh())
}
