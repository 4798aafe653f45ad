package activities

import (
	"bytes"
	"context"
	"encoding"
	"encoding/gob"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/internal/keys"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/objstore"
)

// Long steps resume where they stopped: every CheckpointEvery, at a row group's end, the
// pass stores its accumulators' state in S3 (reports/<model>/<run>/checkpoints/) and records
// the object's key and the position in its heartbeat details; a retry (after a worker crash,
// a timeout or a storage fault) reads the details of its attempt's last heartbeat, restores
// the state and scans on from the next row group. The checkpoints go once the step is done.

// DefaultCheckpointEvery is how often a pass over a window checkpoints.
const DefaultCheckpointEvery = 10 * time.Second

type progressKey struct{}

// progressHolder keeps an activity's latest heartbeat details, so a heartbeat sent on its
// behalf (worker.stepTimer) repeats them instead of clearing them.
type progressHolder struct {
	mu      sync.Mutex
	details []any
}

// TrackProgress returns a context in which heartbeat keeps the activity's latest details,
// and the function that returns them.
func TrackProgress(ctx context.Context) (context.Context, func() []any) {
	h := &progressHolder{}
	return context.WithValue(ctx, progressKey{}, h), func() []any {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.details
	}
}

// RecordProgress records a heartbeat with details that a retry reads back
// (activity.GetHeartbeatDetails): the worker's own heartbeats for the activity repeat them.
func RecordProgress(ctx context.Context, details ...any) {
	if details == nil {
		details = []any{nil}
	}
	heartbeat(ctx, details...)
}

// heartbeat records a heartbeat with details (nil: repeat the latest ones).
func heartbeat(ctx context.Context, details ...any) {
	h, _ := ctx.Value(progressKey{}).(*progressHolder)
	if h != nil {
		h.mu.Lock()
		if details == nil {
			details = h.details
		} else {
			h.details = details
		}
		h.mu.Unlock()
	}
	activity.RecordHeartbeat(ctx, details...)
}

// PassProgress is the heartbeat detail of a pass over a window: the last batch done and the
// checkpoint object holding the state after it.
type PassProgress struct {
	Step       string           `json:"step"`
	After      dataset.Position `json:"after"`
	Rows       int64            `json:"rows"`
	Checkpoint string           `json:"checkpoint"`
}

// checkpointState is a checkpoint object: the position and the accumulators' states.
type checkpointState struct {
	Step   string
	After  dataset.Position
	Rows   int64
	States map[string][]byte
}

// checkpointer stores a pass's state every interval and restores it on a retry.
type checkpointer struct {
	store  objstore.Bucket
	prefix string // reports/<model>/<run>/checkpoints/<step>-
	step   string
	every  time.Duration
	parts  map[string]interface {
		encoding.BinaryMarshaler
		encoding.BinaryUnmarshaler
	}
	last time.Time
	rows int64
}

func newCheckpointer(store objstore.Bucket, model, run, step string, every time.Duration) *checkpointer {
	if every <= 0 {
		every = DefaultCheckpointEvery
	}
	return &checkpointer{store: store, prefix: keys.Checkpoints(model, run, step), step: step, every: every,
		parts: map[string]interface {
			encoding.BinaryMarshaler
			encoding.BinaryUnmarshaler
		}{}, last: time.Now()}
}

// add names a part of the state (a validation, a drift window, a training preparation).
func (c *checkpointer) add(name string, p interface {
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}) {
	c.parts[name] = p
}

// resume restores the state of the previous attempt's last checkpoint, if it left one: it
// returns where to scan on from (nil: the start). A checkpoint that cannot be read or does not
// fit is not used (the pass starts over), and why is returned for the log.
func (c *checkpointer) resume(ctx context.Context) (*dataset.Position, string) {
	if !activity.HasHeartbeatDetails(ctx) {
		return nil, ""
	}
	var p PassProgress
	if err := activity.GetHeartbeatDetails(ctx, &p); err != nil || p.Checkpoint == "" || p.Step != c.step ||
		!strings.HasPrefix(p.Checkpoint, c.prefix) {
		return nil, "the last heartbeat holds no checkpoint of this step"
	}
	data, _, err := objstore.ReadAll(ctx, c.store, p.Checkpoint)
	if err != nil {
		return nil, fmt.Sprintf("checkpoint %s: %v", c.store.URI(p.Checkpoint), err)
	}
	var st checkpointState
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&st); err != nil {
		return nil, fmt.Sprintf("checkpoint %s: %v", c.store.URI(p.Checkpoint), err)
	}
	if st.Step != c.step || st.After != p.After || len(st.States) != len(c.parts) {
		return nil, fmt.Sprintf("checkpoint %s is not the one the heartbeat names", c.store.URI(p.Checkpoint))
	}
	for name, part := range c.parts {
		if err := part.UnmarshalBinary(st.States[name]); err != nil {
			// Parts restored before the failing one are rebuilt by the caller starting over.
			return nil, fmt.Sprintf("checkpoint %s: %s: %v", c.store.URI(p.Checkpoint), name, err)
		}
	}
	c.rows = st.Rows
	heartbeat(ctx, p)
	return &st.After, ""
}

// done is called after each batch; every interval it stores the state and heartbeats it.
// A checkpoint that cannot be stored is skipped (the pass goes on; a retry starts from the
// last one stored).
func (c *checkpointer) done(ctx context.Context, b *dataset.Batch) {
	c.rows += int64(b.Rows)
	if time.Since(c.last) < c.every {
		heartbeat(ctx)
		return
	}
	c.last = time.Now()
	at := dataset.Position{FileIndex: b.FileIndex, RowGroup: b.RowGroup}
	st := checkpointState{Step: c.step, After: at, Rows: c.rows, States: map[string][]byte{}}
	for name, part := range c.parts {
		data, err := part.MarshalBinary()
		if err != nil {
			heartbeat(ctx)
			return
		}
		st.States[name] = data
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(st); err != nil {
		heartbeat(ctx)
		return
	}
	key := fmt.Sprintf("%s%05d-%05d.gob", c.prefix, at.FileIndex, at.RowGroup)
	if _, err := c.store.Put(ctx, key, buf.Bytes(), objstore.PutOptions{}); err != nil {
		heartbeat(ctx)
		return
	}
	heartbeat(ctx, PassProgress{Step: c.step, After: at, Rows: c.rows, Checkpoint: key})
}

// clear deletes the step's checkpoints once it is done (best effort: leftovers are only
// storage, a later attempt of a finished step does not run).
func (c *checkpointer) clear(ctx context.Context) {
	objs, err := c.store.List(ctx, c.prefix)
	if err != nil {
		return
	}
	for _, o := range objs {
		_ = c.store.Delete(ctx, o.Key)
	}
}

// TrainProgress is the heartbeat detail of a gbdt training: the boosting rounds done and the
// checkpoint object holding the state after them.
type TrainProgress struct {
	Rounds     int    `json:"rounds"`
	Checkpoint string `json:"checkpoint"`
}

// boostCheckpoints stores a training's boosting state every interval. The rows are read again
// on a retry (the read is streamed and bounded by the row group; storing the binned matrix
// would cost as much as reading it), the rounds are not boosted again.
type boostCheckpoints struct {
	store  objstore.Bucket
	prefix string
	every  time.Duration
	last   time.Time
}

func newBoostCheckpoints(store objstore.Bucket, model, run string, every time.Duration) *boostCheckpoints {
	if every <= 0 {
		every = DefaultCheckpointEvery
	}
	return &boostCheckpoints{store: store, prefix: keys.Checkpoints(model, run, "train"), every: every, last: time.Now()}
}

// resume returns the previous attempt's last boosting state, if it left one.
func (c *boostCheckpoints) resume(ctx context.Context) (*model.BoostState, string) {
	if !activity.HasHeartbeatDetails(ctx) {
		return nil, ""
	}
	var p TrainProgress
	if err := activity.GetHeartbeatDetails(ctx, &p); err != nil || p.Checkpoint == "" || !strings.HasPrefix(p.Checkpoint, c.prefix) {
		return nil, "the last heartbeat holds no checkpoint of this training"
	}
	data, _, err := objstore.ReadAll(ctx, c.store, p.Checkpoint)
	if err != nil {
		return nil, fmt.Sprintf("checkpoint %s: %v", c.store.URI(p.Checkpoint), err)
	}
	var st model.BoostState
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&st); err != nil || st.Rounds != p.Rounds {
		return nil, fmt.Sprintf("checkpoint %s is not the one the heartbeat names (%v)", c.store.URI(p.Checkpoint), err)
	}
	heartbeat(ctx, p)
	activity.GetLogger(ctx).Info("training resumes from its checkpoint", "rounds", st.Rounds)
	return &st, ""
}

// offer stores the state when the interval has passed since the last one.
func (c *boostCheckpoints) offer(ctx context.Context, rounds int, state func() model.BoostState) {
	if time.Since(c.last) < c.every {
		return
	}
	c.last = time.Now()
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(state()); err != nil {
		return
	}
	key := fmt.Sprintf("%s%05d.gob", c.prefix, rounds)
	if _, err := c.store.Put(ctx, key, buf.Bytes(), objstore.PutOptions{}); err != nil {
		return
	}
	heartbeat(ctx, TrainProgress{Rounds: rounds, Checkpoint: key})
}

func (c *boostCheckpoints) clear(ctx context.Context) {
	objs, err := c.store.List(ctx, c.prefix)
	if err != nil {
		return
	}
	for _, o := range objs {
		_ = c.store.Delete(ctx, o.Key)
	}
}
