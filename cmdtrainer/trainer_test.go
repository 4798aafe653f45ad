package cmdtrainer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"go.temporal.io/sdk/activity"

	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
)

// lgbModel is a LightGBM text model of the given feature names: y = 10 when the first is at
// most 5, else 4.
func lgbModel(names ...string) string {
	return fmt.Sprintf("tree\nversion=v3\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx=%d\nobjective=regression\nfeature_names=%s\n\n"+
		"Tree=0\nnum_leaves=2\nnum_cat=0\nsplit_feature=0\nthreshold=5\ndecision_type=2\nleft_child=-1\nright_child=-2\nleaf_value=10 4\nleaf_weight=1 1\n\nend of trees\n",
		len(names)-1, strings.Join(names, " "))
}

// rig is a trainer over an in-memory bucket with one run's input staged in it.
type rig struct {
	t     *testing.T
	store *objstore.Mem
	in    pipeline.ExternalTrainInput
	dir   string // files the test's commands read or write
}

func newRig(t *testing.T) *rig {
	r := &rig{t: t, store: objstore.NewMem(), dir: t.TempDir()}
	ctx := context.Background()
	for name, body := range map[string]string{"train.csv": "a,b,c,y\n1,2,3,10\n7,,1,4\n", "validation.csv": "a,b,c,y\n2,2,2,10\n"} {
		_, err := r.store.Put(ctx, "reports/demand/run-1/external/"+name, []byte(body), objstore.PutOptions{})
		require.NoError(t, err)
	}
	require.NoError(t, os.WriteFile(filepath.Join(r.dir, "model.txt"), []byte(lgbModel("a", "b", "c")), 0o644))
	r.in = pipeline.ExternalTrainInput{Model: "demand", RunID: "run-1", Features: []string{"a", "b", "c"}, Target: "y",
		Params: map[string]float64{"depth": 3}, TrainURI: r.store.URI("reports/demand/run-1/external/train.csv"),
		ValidationURI: r.store.URI("reports/demand/run-1/external/validation.csv"), TrainRows: 2, ValidationRows: 1,
		OutputURI: r.store.URI("reports/demand/run-1/external/model.json"), Command: "fit"}
	return r
}

// trainer runs script with sh (its first argument: the test's directory).
func (r *rig) trainer(script string, c Command) *Trainer {
	c.Name, c.Argv = "fit", []string{"/bin/sh", "-c", script, "sh", r.dir}
	return &Trainer{Store: r.store, Commands: map[string]Command{"fit": c}, WorkDir: filepath.Join(r.dir, "work"), Heartbeat: 20 * time.Millisecond}
}

func (r *rig) object(key string) string {
	raw, _, err := objstore.ReadAll(context.Background(), r.store, key)
	require.NoError(r.t, err, key)
	return string(raw)
}

// A command trainer runs the named command on the run's rows as files, with the contract's
// environment and nothing of the worker's, streams its output to heartbeats, stores its log
// and its model next to the run's reports, and a retry replaces what the first attempt stored.
func TestACommandTrainsOnTheRunsRowsAndItsModelIsStored(t *testing.T) {
	r := newRig(t)
	t.Setenv("DRIFTLINE_API_TOKEN", "worker-secret")
	script := `set -e
echo "rows: $(wc -l < "$DRIFTLINE_TRAIN") $(head -1 "$DRIFTLINE_VALIDATION")"
echo "features=$DRIFTLINE_FEATURES target=$DRIFTLINE_TARGET params=$DRIFTLINE_PARAMS"
grep -q '"output_dir"' "$DRIFTLINE_INPUT"
env | sort
for i in 1 2 3; do echo "round $i"; sleep 0.05; done
cp "$1/model.txt" "$DRIFTLINE_OUTPUT_DIR/model.txt"
echo '{"train_rmse": 1.5}' > "$DRIFTLINE_OUTPUT_DIR/metrics.json"`
	tr := r.trainer(script, Command{})
	require.NoError(t, tr.Check())
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivityWithOptions(tr.Train, activity.RegisterOptions{Name: pipeline.ExternalTrainActivity})
	var beats []Progress
	aenv.SetOnActivityHeartbeatListener(func(_ *activity.Info, details converter.EncodedValues) {
		var p Progress
		if details.Get(&p) == nil {
			beats = append(beats, p)
		}
	})
	val, err := aenv.ExecuteActivity(pipeline.ExternalTrainActivity, r.in)
	require.NoError(t, err)
	var out pipeline.ExternalTrainOutput
	require.NoError(t, val.Get(&out))
	require.Equal(t, r.store.URI("reports/demand/run-1/external/model.txt"), out.ArtifactURI)
	require.Equal(t, "lightgbm-text", out.Format)
	require.Equal(t, map[string]float64{"train_rmse": 1.5}, out.Metrics)
	require.Equal(t, 2, out.TrainRows)
	require.Equal(t, lgbModel("a", "b", "c"), r.object("reports/demand/run-1/external/model.txt"))
	log := r.object("reports/demand/run-1/external/trainer-attempt-1.log")
	require.Contains(t, log, "rows: 3 a,b,c,y")
	require.Contains(t, log, `features=a,b,c target=y params={"depth":3}`)
	require.Contains(t, log, "round 3")
	require.NotContains(t, log, "worker-secret", "the worker's environment stays out of the command's")
	require.Equal(t, "fit", beats[len(beats)-1].Command)
	// The SDK sends the first heartbeat at once and throttles the others to the heartbeat
	// timeout (what a beat carries: TestTheOutputKeepsTheLogAndTheLastLines).
	require.NotEmpty(t, beats, "the attempt heartbeats")
	require.Equal(t, "fit", beats[0].Command)
	_, err = os.Stat(filepath.Join(r.dir, "work", "demand", "run-1", "attempt-1"))
	require.ErrorIs(t, err, os.ErrNotExist, "the attempt's directory is removed")

	// A second attempt of the same run: the same keys, replaced.
	again, err := tr.Train(context.Background(), r.in)
	require.NoError(t, err)
	require.Equal(t, out.ArtifactURI, again.ArtifactURI)
	objs, err := r.store.List(context.Background(), "reports/demand/run-1/external/model")
	require.NoError(t, err)
	require.Len(t, objs, 1, "one model object for the run, whatever the attempts: %v", objs)
}

// Every way a command can fail is an error naming the cause: the exit status and its last
// lines, the time limit, no model, a model in the wrong place, two models, a model of other
// features, something that is no model, a command the trainer does not run.
func TestACommandsFailuresAreNamed(t *testing.T) {
	for _, c := range []struct {
		name, script string
		cmd          Command
		command      string
		kind         string
		want         []string
	}{
		{"exit", "echo working; echo 'Traceback: boom' >&2; exit 3", Command{}, "fit", ErrTypeFailed, []string{"exited with status 3", "Traceback: boom", "working"}},
		{"timeout", "echo started; sleep 30", Command{Timeout: 300 * time.Millisecond}, "fit", ErrTypeTimeout, []string{"time limit of 300ms", "started"}},
		{"no output", "exit 0", Command{}, "fit", ErrTypeOutput, []string{"wrote no model in $DRIFTLINE_OUTPUT_DIR", "it printed nothing"[:0]}},
		{"wrong place", `cp "$1/model.txt" ./model.txt`, Command{}, "fit", ErrTypeOutput, []string{"wrote no model", "it wrote model.txt outside it"}},
		{"two models", `cp "$1/model.txt" "$DRIFTLINE_OUTPUT_DIR/"; echo '{}' > "$DRIFTLINE_OUTPUT_DIR/model.json"`, Command{}, "fit", ErrTypeOutput, []string{"model.json and model.txt", "write one model"}},
		{"other features", fmt.Sprintf("printf '%%s' '%s' > \"$DRIFTLINE_OUTPUT_DIR/model.txt\"", lgbModel("a", "c", "b")), Command{}, "fit", ErrTypeOutput, []string{"features [a c b] differ from the spec's [a b c]"}},
		{"no model", `echo 'not a model' > "$DRIFTLINE_OUTPUT_DIR/model.json"`, Command{}, "fit", ErrTypeOutput, []string{"none of the formats"}},
		{"truncated", `head -c 200 "$1/model.txt" > "$DRIFTLINE_OUTPUT_DIR/model.txt"`, Command{}, "fit", ErrTypeOutput, []string{"not a model of this run", "LightGBM"}},
		{"bad metrics", `cp "$1/model.txt" "$DRIFTLINE_OUTPUT_DIR/"; echo '{"rmse": "low"}' > "$DRIFTLINE_OUTPUT_DIR/metrics.json"`, Command{}, "fit", ErrTypeOutput, []string{"metrics.json is not an object of numbers"}},
		{"unknown command", "exit 0", Command{}, "torch", ErrTypeConfig, []string{`the spec names command "torch"; this trainer runs fit`}},
		{"not executable", "", Command{}, "fit", ErrTypeConfig, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t)
			tr := r.trainer(c.script, c.cmd)
			if c.name == "not executable" {
				tr.Commands["fit"] = Command{Name: "fit", Argv: []string{filepath.Join(r.dir, "missing.py")}}
				c.want = []string{"did not start", "missing.py"}
			}
			r.in.Command = c.command
			start := time.Now()
			_, err := tr.Train(context.Background(), r.in)
			require.Error(t, err)
			var ae *temporal.ApplicationError
			require.True(t, errors.As(err, &ae), "%v", err)
			require.Equal(t, c.kind, ae.Type(), "%v", err)
			require.True(t, ae.NonRetryable(), "a command's fault is not retried: %v", err)
			for _, w := range c.want {
				require.Contains(t, err.Error(), w)
			}
			require.Less(t, time.Since(start), 10*time.Second)
		})
	}
}

// Cancelling the train step kills the command and every process it started.
func TestCancellingKillsTheCommandsProcessTree(t *testing.T) {
	r := newRig(t)
	pids := filepath.Join(r.dir, "pids")
	tr := r.trainer(`sleep 300 & echo $! > "$1/pids.tmp"; echo $$ >> "$1/pids.tmp"; mv "$1/pids.tmp" "$1/pids"; wait`, Command{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := tr.Train(ctx, r.in); done <- err }()
	var list []int
	require.Eventually(t, func() bool {
		raw, err := os.ReadFile(pids)
		if err != nil {
			return false
		}
		for _, f := range strings.Fields(string(raw)) {
			pid, _ := strconv.Atoi(f)
			list = append(list, pid)
		}
		return len(list) == 2
	}, 10*time.Second, 20*time.Millisecond)
	cancel()
	err := <-done
	require.ErrorContains(t, err, "the train step was cancelled")
	for _, pid := range list {
		require.Eventually(t, func() bool { return gone(pid) }, 5*time.Second, 20*time.Millisecond, "process %d is gone", pid)
	}
}

// gone reports whether a process no longer runs (a zombie waiting for its reaper counts).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && (fields[0] == "Z" || fields[0] == "X")
}

// Without network (the default) a command reaches nothing, not even this host's loopback;
// with network host it does.
func TestACommandWithoutNetworkReachesNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan struct{}, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
			accepted <- struct{}{}
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	script := fmt.Sprintf(`/usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', %d), timeout=3); print('connected')" || exit 7
cp "$1/model.txt" "$DRIFTLINE_OUTPUT_DIR/"`, port)
	r := newRig(t)
	_, err = r.trainer(script, Command{}).Train(context.Background(), r.in)
	require.ErrorContains(t, err, "exited with status 7")
	require.ErrorContains(t, err, "Network is unreachable")
	require.Empty(t, accepted)
	_, err = r.trainer(script, Command{Network: NetworkHost}).Train(context.Background(), r.in)
	require.NoError(t, err)
	require.Len(t, accepted, 1)
}

// The memory limit stops an allocation past it, and the error says the limit was the cause.
func TestTheMemoryLimitHolds(t *testing.T) {
	r := newRig(t)
	script := `/usr/bin/python3 -c "x = bytearray(600 << 20); print('allocated')"`
	tr := r.trainer(script, Command{Memory: 200 << 20})
	require.NoError(t, tr.Check())
	_, err := tr.Train(context.Background(), r.in)
	require.ErrorContains(t, err, "MemoryError")
	require.ErrorContains(t, err, "its memory limit is 200 MiB")
	require.NotContains(t, err.Error(), "\n  allocated", "the allocation failed")
	// The same allocation under a limit that allows it.
	ok := r.trainer(script+`; cp "$1/model.txt" "$DRIFTLINE_OUTPUT_DIR/"`, Command{Memory: 2 << 30})
	_, err = ok.Train(context.Background(), r.in)
	require.NoError(t, err)
}

// A configuration the trainer cannot run is refused when the worker starts.
func TestTheConfigurationIsChecked(t *testing.T) {
	for want, cmds := range map[string]map[string]Command{
		"no commands configured":    {},
		"command name \"Bad Name\"": {"Bad Name": {Name: "Bad Name", Argv: []string{"x"}}},
		"has no command line":       {"fit": {Name: "fit"}},
		"network \"vpn\"":           {"fit": {Name: "fit", Argv: []string{"x"}, Network: "vpn"}},
	} {
		err := (&Trainer{Commands: cmds}).Check()
		require.ErrorContains(t, err, want)
	}
}

// TestMain runs the test binary as a command trainer for TestACommandDiesWithItsTrainer when
// asked to (CMDTRAINER_HELPER_DIR set): the trainer runs a command that writes its pid to that
// directory and sleeps.
func TestMain(m *testing.M) {
	dir := os.Getenv("CMDTRAINER_HELPER_DIR")
	if dir == "" {
		os.Exit(m.Run())
	}
	store := objstore.NewMem()
	ctx := context.Background()
	for _, name := range []string{"train.csv", "validation.csv"} {
		_, _ = store.Put(ctx, "r/"+name, []byte("a,y\n1,2\n"), objstore.PutOptions{})
	}
	tr := &Trainer{Store: store, WorkDir: filepath.Join(dir, "work"),
		Commands: map[string]Command{"fit": {Name: "fit", Argv: []string{"/bin/sh", "-c", `echo $$ > "$1/pid.tmp" && mv "$1/pid.tmp" "$1/pid"; sleep 300`, "sh", dir}}}}
	_, err := tr.Train(ctx, pipeline.ExternalTrainInput{Model: "m", RunID: "r", Features: []string{"a"}, Target: "y",
		TrainURI: store.URI("r/train.csv"), ValidationURI: store.URI("r/validation.csv"), OutputURI: store.URI("r/model.json")})
	fmt.Println(err)
	os.Exit(3)
}

// When the trainer process dies (SIGKILL: no chance to clean up), its command dies with it.
func TestACommandDiesWithItsTrainer(t *testing.T) {
	dir := t.TempDir()
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), "CMDTRAINER_HELPER_DIR="+dir)
	require.NoError(t, helper.Start())
	var pid int
	require.Eventually(t, func() bool {
		raw, err := os.ReadFile(filepath.Join(dir, "pid"))
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(raw)))
		return err == nil
	}, 20*time.Second, 20*time.Millisecond, "the helper trainer starts its command")
	require.False(t, gone(pid))
	require.NoError(t, helper.Process.Kill())
	_ = helper.Wait()
	require.Eventually(t, func() bool { return gone(pid) }, 5*time.Second, 20*time.Millisecond, "the command %d dies with its trainer", pid)
}

// What a command prints is kept in order (up to the log's bound, then said to be cut), counted
// in lines, the last ones quoted (each up to 4 KiB), a line still being written shown as the
// last; written in chunks that split lines anywhere.
func TestTheOutputKeepsTheLogAndTheLastLines(t *testing.T) {
	o := &output{keep: 2}
	for _, chunk := range []string{"epoch 1\nep", "och 2\n", "epoch 3\nvalid", "ation loss 0.5"} {
		o.write([]byte(chunk))
	}
	lines, last, tail := o.snapshot()
	require.Equal(t, 3, lines)
	require.Equal(t, "validation loss 0.5", last)
	require.Equal(t, []string{"epoch 2", "epoch 3", "validation loss 0.5"}, tail)
	require.Equal(t, "epoch 1\nepoch 2\nepoch 3\nvalidation loss 0.5", string(o.log))
	o.write([]byte("\n" + strings.Repeat("x", 10_000) + "\r\n"))
	_, last, _ = o.snapshot()
	require.Len(t, last, maxLine, "a long line is quoted up to 4 KiB")
	big := &output{keep: 1}
	big.write(make([]byte, maxLog-10))
	big.write([]byte("past the bound\n"))
	require.Contains(t, string(big.log), "not kept")
	require.Less(t, len(big.log), maxLog+100)
}
