package cli

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/activity"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/driftline/driftline/cmdtrainer"
	"github.com/driftline/driftline/internal/config"
	"github.com/driftline/driftline/internal/memlimit"
	"github.com/driftline/driftline/objstore/s3store"
	"github.com/driftline/driftline/pipeline"
)

func trainerCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "trainer", Short: "run the command trainer: the train step as a command you name, e.g. python3 train.py (docs/models.md, \"Command trainers\")", Args: NoArgs,
		Example: `  driftline trainer --task-queue python --command sklearn-gbr='/usr/bin/python3 examples/sklearn/train.py' --memory 4GiB`}
	fs := cmd.Flags()
	s3 := config.S3Flags(fs)
	queue := EnvFlag(fs, "task-queue", "DRIFTLINE_TRAINER_QUEUE", "driftline-trainer", "task queue the specs' trainer.task_queue names")
	commands := fs.StringArray("command", nil, "NAME=COMMAND LINE that a spec's trainer.command may name (repeatable; the line is split at spaces: give a script for anything more)")
	timeout := fs.Duration("timeout", time.Hour, "time limit of an attempt of a command (the train step allows 2h)")
	memory := fs.String("memory", "", "limit of a command's data segment, e.g. 4GiB (empty: none; needs prlimit)")
	network := fs.String("network", cmdtrainer.NetworkNone, "a command's network: none (a network namespace of its own) or host (the worker's, with the bucket's credentials in its environment)")
	workDir := fs.String("work-dir", filepath.Join(os.TempDir(), "driftline-trainer"), "where each attempt's directory is made (and removed)")
	concurrency := fs.Int("concurrency", 1, "commands run at once")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		t, err := commandTrainer(*commands, *timeout, *memory, *network, *workDir, s3)
		if err != nil {
			return usageError{cmd, err}
		}
		ctx := cmd.Context()
		if t.Store, err = config.OpenBucket(ctx, s3); err != nil {
			return err
		}
		c, err := config.TemporalClient()
		if err != nil {
			return err
		}
		defer c.Close()
		w := sdkworker.New(c, *queue, sdkworker.Options{MaxConcurrentActivityExecutionSize: max(*concurrency, 1)})
		w.RegisterActivityWithOptions(t.Train, activity.RegisterOptions{Name: pipeline.ExternalTrainActivity})
		names := make([]string, 0, len(t.Commands))
		for n, c := range t.Commands {
			names = append(names, fmt.Sprintf("%s=%q", n, strings.Join(c.Argv, " ")))
		}
		fmt.Printf("command trainer on task queue %s: %s (time limit %s, memory %s, network %s)\n", *queue, strings.Join(names, ", "), *timeout, cmp.Or(*memory, "none"), *network)
		return w.Run(sdkworker.InterruptCh())
	}
	return cmd
}

// commandTrainer builds the trainer the flags describe (its bucket opened by the caller).
func commandTrainer(commands []string, timeout time.Duration, memory, network, workDir string, s3 *s3store.Config) (*cmdtrainer.Trainer, error) {
	var mem int64
	if memory != "" {
		var err error
		if mem, err = memlimit.ParseSize(memory); err != nil {
			return nil, fmt.Errorf("--memory: %w", err)
		}
	}
	t := &cmdtrainer.Trainer{Commands: map[string]cmdtrainer.Command{}, WorkDir: workDir}
	for _, c := range commands {
		name, line, ok := strings.Cut(c, "=")
		if !ok || len(strings.Fields(line)) == 0 {
			return nil, fmt.Errorf("--command %q: want NAME=COMMAND LINE", c)
		}
		if _, dup := t.Commands[name]; dup {
			return nil, fmt.Errorf("--command: %s given twice", name)
		}
		t.Commands[name] = cmdtrainer.Command{Name: name, Argv: strings.Fields(line), Timeout: timeout, Memory: mem, Network: network}
	}
	if len(commands) == 0 {
		return nil, errors.New("--command: name at least one command")
	}
	if network == cmdtrainer.NetworkHost {
		t.BucketEnv = []string{"DRIFTLINE_S3_BUCKET=" + s3.Bucket, "DRIFTLINE_S3_PREFIX=" + s3.Prefix, "AWS_REGION=" + s3.Region}
		if s3.Endpoint != "" {
			t.BucketEnv = append(t.BucketEnv, "AWS_ENDPOINT_URL="+s3.Endpoint, "DRIFTLINE_S3_ENDPOINT="+s3.Endpoint)
		}
		if s3.AccessKey != "" {
			t.BucketEnv = append(t.BucketEnv, "AWS_ACCESS_KEY_ID="+s3.AccessKey, "AWS_SECRET_ACCESS_KEY="+s3.SecretKey)
		}
	}
	return t, t.Check()
}
