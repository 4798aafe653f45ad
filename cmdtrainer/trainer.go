package cmdtrainer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
)

// Error types of the trainer's failures (the activity's ApplicationError types).
const (
	ErrTypeConfig  = "TrainerConfig"  // no such command, or the trainer cannot run it as configured
	ErrTypeFailed  = "TrainerFailed"  // the command exited non-zero
	ErrTypeTimeout = "TrainerTimeout" // the command ran past its time limit
	ErrTypeKilled  = "TrainerKilled"  // a signal the trainer did not send ended it (retried)
	ErrTypeOutput  = "TrainerOutput"  // no model, a model in the wrong place, or the wrong model
)

// Network modes of a command.
const (
	NetworkNone = "none" // a network namespace of its own: no interface but a loopback that is down
	NetworkHost = "host" // the worker's network, and the bucket's credentials in its environment
)

// Command is a command the trainer may run.
type Command struct {
	Name string
	Argv []string
	// Timeout bounds one attempt (default 1 h; under the train step's 2 h).
	Timeout time.Duration
	// Memory bounds the command's data segment in bytes (RLIMIT_DATA, through prlimit): an
	// allocation past it fails in the command. 0: no limit.
	Memory int64
	// Network is NetworkNone (default) or NetworkHost.
	Network string
}

// Trainer runs the configured commands for the runs that name them.
type Trainer struct {
	Store    objstore.Bucket
	Commands map[string]Command
	// WorkDir holds each attempt's directory (removed when the attempt ends).
	WorkDir string
	// BucketEnv is the environment that lets a command of network host reach the bucket
	// (S3 endpoint and credentials); a command without network gets none of it.
	BucketEnv []string
	// Heartbeat is how often the attempt heartbeats with its progress (default 5 s).
	Heartbeat time.Duration
	// Tail is how many of the command's last lines an error quotes (default 20).
	Tail int
}

var commandName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Check validates the configuration: command names, command lines, network modes, and
// prlimit for the memory limits.
func (t *Trainer) Check() error {
	if len(t.Commands) == 0 {
		return errors.New("cmdtrainer: no commands configured")
	}
	for name, c := range t.Commands {
		switch {
		case !commandName.MatchString(name) || c.Name != name:
			return fmt.Errorf("cmdtrainer: command name %q (1-63 lowercase letters, digits, - or _)", name)
		case len(c.Argv) == 0 || c.Argv[0] == "":
			return fmt.Errorf("cmdtrainer: command %s has no command line", name)
		case c.Network != "" && c.Network != NetworkNone && c.Network != NetworkHost:
			return fmt.Errorf("cmdtrainer: command %s: network %q (none or host)", name, c.Network)
		case c.Timeout < 0 || c.Memory < 0:
			return fmt.Errorf("cmdtrainer: command %s: a negative limit", name)
		}
		if (c.Network == "" || c.Network == NetworkNone) && runtime.GOOS != "linux" {
			return fmt.Errorf("cmdtrainer: command %s: network none needs Linux's network namespaces; configure network host here", name)
		}
		if c.Memory > 0 {
			if _, err := prlimitPath(); err != nil {
				return fmt.Errorf("cmdtrainer: command %s has a memory limit: %w", name, err)
			}
		}
	}
	return nil
}

// Train is driftline.train.v1: it runs the command the run names on the run's rows and
// stores the model it wrote next to the run's other reports.
func (t *Trainer) Train(ctx context.Context, in pipeline.ExternalTrainInput) (pipeline.ExternalTrainOutput, error) {
	cmd, err := t.command(in.Command)
	if err != nil {
		return pipeline.ExternalTrainOutput{}, err
	}
	attempt := int32(1)
	if activity.IsActivity(ctx) {
		attempt = activity.GetInfo(ctx).Attempt
	}
	dir := filepath.Join(t.WorkDir, safe(in.Model), safe(in.RunID), fmt.Sprintf("attempt-%d", attempt))
	if err := os.RemoveAll(dir); err != nil {
		return pipeline.ExternalTrainOutput{}, err
	}
	defer os.RemoveAll(dir)
	ws, err := t.prepare(ctx, in, dir)
	if err != nil {
		return pipeline.ExternalTrainOutput{}, err
	}
	res := t.run(ctx, cmd, ws)
	outKey, ok := strings.CutPrefix(in.OutputURI, t.Store.URI(""))
	if !ok || outKey == "" {
		return pipeline.ExternalTrainOutput{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("output URI %q is not in %s", in.OutputURI, t.Store.URI("")), ErrTypeConfig, nil)
	}
	logKey := path.Join(path.Dir(outKey), fmt.Sprintf("trainer-attempt-%d.log", attempt))
	if _, perr := t.Store.Put(ctx, logKey, res.log, objstore.PutOptions{ContentType: "text/plain"}); perr != nil && res.err == nil {
		return pipeline.ExternalTrainOutput{}, fmt.Errorf("store the command's log: %w", perr)
	}
	if res.err != nil {
		return pipeline.ExternalTrainOutput{}, res.err
	}
	out, err := t.collect(ctx, cmd, in, ws, path.Dir(outKey))
	if err != nil {
		return pipeline.ExternalTrainOutput{}, err
	}
	if activity.IsActivity(ctx) {
		activity.GetLogger(ctx).Info("command trainer done", "command", cmd.Name, "artifact", out.ArtifactURI, "format", out.Format, "log", t.Store.URI(logKey))
	}
	return out, nil
}

func (t *Trainer) command(name string) (Command, error) {
	if name == "" && len(t.Commands) == 1 {
		for _, c := range t.Commands {
			return c, nil
		}
	}
	c, ok := t.Commands[name]
	if !ok {
		names := make([]string, 0, len(t.Commands))
		for n := range t.Commands {
			names = append(names, n)
		}
		slices.Sort(names)
		return Command{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("the spec names command %q; this trainer runs %s", name, strings.Join(names, ", ")), ErrTypeConfig, nil)
	}
	return c, nil
}

// safe makes a name a single path element.
func safe(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 {
			return '_'
		}
		return r
	}, s)
	if s == "" || s == "." || s == ".." {
		return "_"
	}
	return s
}

// workspace is an attempt's directory: the inputs, the output directory, the command's
// working directory.
type workspace struct {
	dir, input, output, tmp string
	train, validation       string
	inputJSON               string
}

// prepare fetches the rows into the attempt's directory and writes the contract's input.json.
func (t *Trainer) prepare(ctx context.Context, in pipeline.ExternalTrainInput, dir string) (workspace, error) {
	ws := workspace{dir: dir, input: filepath.Join(dir, "input"), output: filepath.Join(dir, "output"), tmp: filepath.Join(dir, "tmp")}
	for _, d := range []string{ws.input, ws.output, ws.tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return ws, err
		}
	}
	ws.train, ws.validation = filepath.Join(ws.input, "train.csv"), filepath.Join(ws.input, "validation.csv")
	for _, f := range []struct{ uri, path string }{{in.TrainURI, ws.train}, {in.ValidationURI, ws.validation}} {
		key, ok := strings.CutPrefix(f.uri, t.Store.URI(""))
		if !ok || key == "" {
			return ws, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("the run's rows %q are not in %s (a Driftline older than the command trainer prepared this input)", f.uri, t.Store.URI("")), ErrTypeConfig, nil)
		}
		data, _, err := objstore.ReadAll(ctx, t.Store, key)
		if err != nil {
			return ws, fmt.Errorf("fetch %s: %w", f.uri, err)
		}
		if err := os.WriteFile(f.path, data, 0o644); err != nil {
			return ws, err
		}
	}
	doc := map[string]any{
		"model": in.Model, "run_id": in.RunID, "features": in.Features, "schema": in.Schema, "target": in.Target,
		"params": in.Params, "train": ws.train, "validation": ws.validation, "output_dir": ws.output,
		"train_rows": in.TrainRows, "validation_rows": in.ValidationRows, "validation_share": in.ValidationShare,
		"snapshot_uri": in.SnapshotURI, "files": in.Files, "event_time": in.EventTime, "holdout_from": in.HoldoutFrom,
	}
	if doc["params"] == nil {
		doc["params"] = map[string]float64{}
	}
	raw, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return ws, err
	}
	ws.inputJSON = filepath.Join(ws.input, "input.json")
	return ws, os.WriteFile(ws.inputJSON, raw, 0o644)
}
