package cmdtrainer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
)

const (
	defaultTimeout = time.Hour
	maxLog         = 32 << 20 // bytes of a command's output kept with the run
	maxLine        = 4 << 10  // bytes of a line quoted in heartbeats and errors
	drainAfterExit = 2 * time.Second
)

// result is how an attempt's command ended: its output, and the error that ends the attempt
// (nil: it exited 0).
type result struct {
	log []byte
	err error
}

// Progress is the attempt's heartbeat detail (the Temporal UI shows it on the pending
// activity).
type Progress struct {
	Command  string  `json:"command"`
	Seconds  float64 `json:"seconds"`
	Lines    int     `json:"lines"`
	LastLine string  `json:"last_line"`
}

// output gathers what the command prints (stdout and stderr in the order written): the log
// kept with the run, the last lines, a count.
type output struct {
	mu    sync.Mutex
	log   []byte
	cut   bool
	line  []byte
	tail  []string
	keep  int
	lines int
}

func (o *output) write(chunk []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.log)+len(chunk) <= maxLog {
		o.log = append(o.log, chunk...)
	} else if !o.cut {
		o.cut = true
		o.log = append(o.log, fmt.Sprintf("\n[driftline: output past %d bytes not kept]\n", maxLog)...)
	}
	for len(chunk) > 0 {
		i := bytes.IndexByte(chunk, '\n')
		part := chunk
		if i >= 0 {
			part = chunk[:i]
		}
		if room := maxLine - len(o.line); room > 0 {
			o.line = append(o.line, part[:min(len(part), room)]...)
		}
		if i < 0 {
			return
		}
		o.endLine()
		chunk = chunk[i+1:]
	}
}

func (o *output) endLine() {
	o.lines++
	o.tail = append(o.tail, strings.TrimRight(string(o.line), "\r"))
	if len(o.tail) > o.keep {
		o.tail = o.tail[len(o.tail)-o.keep:]
	}
	o.line = o.line[:0]
}

func (o *output) snapshot() (lines int, last string, tail []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.line) > 0 { // a line still being written
		return o.lines, string(o.line), append(append([]string(nil), o.tail...), string(o.line))
	}
	if len(o.tail) > 0 {
		last = o.tail[len(o.tail)-1]
	}
	return o.lines, last, append([]string(nil), o.tail...)
}

// run runs the command in the attempt's directory and waits for it: killed with its process
// group at the time limit or when the activity is cancelled.
func (t *Trainer) run(ctx context.Context, c Command, ws workspace) result {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = defaultTimeout
	}
	argv := c.Argv
	if c.Memory > 0 {
		p, err := prlimitPath()
		if err != nil {
			return result{err: temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeConfig, nil)}
		}
		argv = append([]string{p, fmt.Sprintf("--data=%d", c.Memory), "--"}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir, cmd.Env, cmd.SysProcAttr = ws.dir, t.env(c, ws), sysProcAttr(c.Network)
	r, w, err := os.Pipe()
	if err != nil {
		return result{err: err}
	}
	defer r.Close()
	cmd.Stdout, cmd.Stderr = w, w
	start := time.Now()
	// Start and wait on one locked thread: the command's parent-death signal follows the
	// thread that started it, and this one lives until the command ends.
	started, waited := make(chan error, 1), make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		waited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		w.Close()
		return result{err: temporal.NewNonRetryableApplicationError(fmt.Sprintf("command %s (%s) did not start: %v%s", c.Name, strings.Join(c.Argv, " "), err, isolationHint(c, err)), ErrTypeConfig, nil)}
	}
	w.Close()
	out := &output{keep: max(t.Tail, 1)}
	if t.Tail == 0 {
		out.keep = 20
	}
	read := make(chan struct{})
	go func() { defer close(read); drain(r, out) }()
	stopBeat := t.heartbeat(ctx, c.Name, start, out)
	var werr error
	var limit, cancelled bool
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case werr = <-waited:
	case <-timer.C:
		limit = true
	case <-ctx.Done():
		cancelled = true
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the whole group, whatever it left behind
	if limit || cancelled {
		werr = <-waited
	}
	select { // what the group wrote before it died; a process that left the group may hold the pipe
	case <-read:
	case <-time.After(drainAfterExit):
		r.Close()
		<-read
	}
	stopBeat()
	res := result{log: out.log}
	res.err = t.verdict(ctx, c, time.Since(start), werr, limit, cancelled, out)
	return res
}

// drain reads the command's output into out, line by line whatever their length.
func drain(r io.Reader, out *output) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			out.write(chunk)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// heartbeat records the attempt's progress every t.Heartbeat until stopped.
func (t *Trainer) heartbeat(ctx context.Context, name string, start time.Time, out *output) (stop func()) {
	every := t.Heartbeat
	if every <= 0 {
		every = 5 * time.Second
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				lines, last, _ := out.snapshot()
				if activity.IsActivity(ctx) {
					activity.RecordHeartbeat(ctx, Progress{Command: name, Seconds: time.Since(start).Seconds(), Lines: lines, LastLine: last})
				}
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// verdict is the attempt's error for how the command ended.
func (t *Trainer) verdict(ctx context.Context, c Command, took time.Duration, werr error, limit, cancelled bool, out *output) error {
	_, _, tail := out.snapshot()
	last := "it printed nothing"
	if len(tail) > 0 {
		last = "its last lines:\n  " + strings.Join(tail, "\n  ")
	}
	name := fmt.Sprintf("command %s (%s)", c.Name, strings.Join(c.Argv, " "))
	switch {
	case cancelled:
		return fmt.Errorf("%s killed: the train step was cancelled: %w", name, ctx.Err())
	case limit:
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s ran past its time limit of %s and was killed with its process group; %s", name, c.timeout(), last), ErrTypeTimeout, nil)
	case werr == nil:
		return nil
	}
	var ee *exec.ExitError
	if !errors.As(werr, &ee) {
		return fmt.Errorf("%s: %w", name, werr)
	}
	if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() {
		return temporal.NewApplicationError(fmt.Sprintf("%s was killed by signal %s after %s (the memory limit %s, or the host's OOM killer?); %s",
			name, st.Signal(), took.Round(time.Millisecond), memoryText(c.Memory), last), ErrTypeKilled)
	}
	why := ""
	if c.Memory > 0 && strings.Contains(strings.Join(tail, "\n"), "MemoryError") {
		why = fmt.Sprintf(" (its memory limit is %s)", memoryText(c.Memory))
	}
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s exited with status %d after %s%s; %s", name, ee.ExitCode(), took.Round(time.Millisecond), why, last), ErrTypeFailed, nil)
}

func (c Command) timeout() time.Duration {
	if c.Timeout == 0 {
		return defaultTimeout
	}
	return c.Timeout
}

func memoryText(b int64) string {
	if b == 0 {
		return "none"
	}
	return fmt.Sprintf("%d MiB", b>>20)
}

// env is the command's whole environment: nothing of the worker's but PATH (no tokens, no
// credentials), the contract's variables, and the bucket's credentials for network host.
func (t *Trainer) env(c Command, ws workspace) []string {
	p := os.Getenv("PATH")
	if p == "" {
		p = "/usr/local/bin:/usr/bin:/bin"
	}
	var in struct {
		Features []string           `json:"features"`
		Target   string             `json:"target"`
		Params   map[string]float64 `json:"params"`
	}
	if raw, err := os.ReadFile(ws.inputJSON); err == nil {
		_ = json.Unmarshal(raw, &in)
	}
	params, _ := json.Marshal(in.Params)
	env := []string{"PATH=" + p, "HOME=" + ws.dir, "TMPDIR=" + ws.tmp, "LANG=C.UTF-8", "PYTHONUNBUFFERED=1",
		"DRIFTLINE_INPUT=" + ws.inputJSON, "DRIFTLINE_TRAIN=" + ws.train, "DRIFTLINE_VALIDATION=" + ws.validation,
		"DRIFTLINE_OUTPUT_DIR=" + ws.output, "DRIFTLINE_FEATURES=" + strings.Join(in.Features, ","),
		"DRIFTLINE_TARGET=" + in.Target, "DRIFTLINE_PARAMS=" + string(params)}
	if c.Network == NetworkHost {
		env = append(env, t.BucketEnv...)
	}
	return env
}

func prlimitPath() (string, error) {
	p, err := exec.LookPath("prlimit")
	if err != nil {
		return "", fmt.Errorf("the memory limit needs prlimit (util-linux) on PATH: %w", err)
	}
	return p, nil
}

// isolationHint explains a start failure that the network namespace may have caused.
func isolationHint(c Command, err error) string {
	if (c.Network == "" || c.Network == NetworkNone) && errors.Is(err, syscall.EPERM) {
		return " (the command runs in a network namespace of its own, which this host refused; allow it, or configure the command with network host)"
	}
	return ""
}
