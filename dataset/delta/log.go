package delta

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/driftline/driftline/objstore"
)

// ErrTable marks a table Driftline cannot read: a broken or truncated log, an unsupported
// protocol or feature, a version that does not exist.
var ErrTable = errors.New("delta table")

// At chooses the table version: Version when set (>= 0), else the latest version committed
// at or before Time when set, else the latest.
type At struct {
	Version int64
	Time    time.Time
}

// Latest is the newest version.
var Latest = At{Version: -1}

// Snapshot is a table as of one version: what a run pins.
type Snapshot struct {
	Path       string    `json:"path"`
	Version    int64     `json:"version"`
	CommitTime time.Time `json:"commit_time"` // the version's commit timestamp
	Protocol   Protocol  `json:"protocol"`
	Metadata   Metadata  `json:"metadata"`
	Schema     []Field   `json:"schema"`
	Files      []File    `json:"files"` // sorted by path
}

// File is a data file of a snapshot.
type File struct {
	Path            string             `json:"path"` // relative to the table, decoded
	Size            int64              `json:"size"`
	PartitionValues map[string]*string `json:"partition_values,omitempty"` // nil: a null partition value
	ModificationMs  int64              `json:"modification_time_ms"`
	Stats           string             `json:"stats,omitempty"`
}

// Protocol is the table's protocol action.
type Protocol struct {
	MinReaderVersion int      `json:"minReaderVersion"`
	MinWriterVersion int      `json:"minWriterVersion"`
	ReaderFeatures   []string `json:"readerFeatures,omitempty"`
	WriterFeatures   []string `json:"writerFeatures,omitempty"`
}

// Metadata is the table's metaData action.
type Metadata struct {
	ID               string            `json:"id"`
	SchemaString     string            `json:"schemaString"`
	PartitionColumns []string          `json:"partitionColumns"`
	Configuration    map[string]string `json:"configuration"`
}

type deletionVector struct {
	StorageType    string `json:"storageType"`
	PathOrInlineDv string `json:"pathOrInlineDv"`
	Offset         *int64 `json:"offset"`
	Cardinality    int64  `json:"cardinality"`
}

type addAction struct {
	Path             string             `json:"path"`
	PartitionValues  map[string]*string `json:"partitionValues"`
	Size             int64              `json:"size"`
	ModificationTime int64              `json:"modificationTime"`
	Stats            *string            `json:"stats"`
	DeletionVector   *deletionVector    `json:"deletionVector"`
}

type removeAction struct {
	Path           string          `json:"path"`
	DeletionVector *deletionVector `json:"deletionVector"`
}

type action struct {
	Add        *addAction      `json:"add"`
	Remove     *removeAction   `json:"remove"`
	MetaData   *Metadata       `json:"metaData"`
	Protocol   *Protocol       `json:"protocol"`
	CommitInfo *commitInfo     `json:"commitInfo"`
	Checkpoint json.RawMessage `json:"checkpointMetadata"`
	Sidecar    json.RawMessage `json:"sidecar"`
}

type commitInfo struct {
	Timestamp          int64  `json:"timestamp"`
	InCommitTimestamp  *int64 `json:"inCommitTimestamp"`
	Operation          string `json:"operation"`
	IsolationLevel     string `json:"isolationLevel"`
	EngineInfo         string `json:"engineInfo"`
	ReadVersion        *int64 `json:"readVersion"`
	IsBlindAppend      *bool  `json:"isBlindAppend"`
	OperationParameter any    `json:"operationParameters"`
}

// logFiles is what the table's _delta_log holds.
type logFiles struct {
	commits     map[int64]objstore.Object // version -> its JSON commit
	checkpoints map[int64][]string        // version -> its checkpoint parts (sorted)
	latest      int64
}

func fail(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrTable, fmt.Sprintf(format, args...))
}

// Load reads the table at path (a key prefix of the bucket, no trailing slash) as of at.
func Load(ctx context.Context, b objstore.Bucket, tablePath string, at At) (*Snapshot, error) {
	tablePath = strings.TrimSuffix(tablePath, "/")
	lf, err := listLog(ctx, b, tablePath)
	if err != nil {
		return nil, err
	}
	version, err := lf.resolve(ctx, b, tablePath, at)
	if err != nil {
		return nil, err
	}
	st := newState()
	start := int64(0)
	if cp := lf.checkpointAtOrBefore(version); cp >= 0 {
		for _, key := range lf.checkpoints[cp] {
			if err := st.readCheckpoint(ctx, b, key); err != nil {
				return nil, err
			}
		}
		start = cp + 1
	}
	for v := start; v <= version; v++ {
		obj, ok := lf.commits[v]
		if !ok {
			return nil, fail("%s: version %d cannot be read: commit %d is missing and no checkpoint covers it (the log was cleaned up past it)", b.URI(tablePath), version, v)
		}
		if err := st.readCommit(ctx, b, obj.Key, v); err != nil {
			return nil, err
		}
	}
	s, err := st.snapshot(b, tablePath, version)
	if err == nil && s.CommitTime.IsZero() { // read from a checkpoint of this very version
		if obj, ok := lf.commits[version]; ok {
			t, terr := commitTime(ctx, b, obj)
			if terr != nil {
				return nil, terr
			}
			s.CommitTime = t.UTC()
		}
	}
	return s, err
}

// listLog lists _delta_log: the JSON commits and the checkpoints (classic single-part and
// multi-part; v2 checkpoints, named with a UUID, are refused where they would be used).
func listLog(ctx context.Context, b objstore.Bucket, tablePath string) (*logFiles, error) {
	objs, err := b.List(ctx, tablePath+"/_delta_log/")
	if err != nil {
		return nil, err
	}
	lf := &logFiles{commits: map[int64]objstore.Object{}, checkpoints: map[int64][]string{}, latest: -1}
	for _, o := range objs {
		name := path.Base(o.Key)
		if len(name) < 21 || name[20] != '.' {
			continue
		}
		v, err := strconv.ParseInt(name[:20], 10, 64)
		if err != nil {
			continue
		}
		rest := name[21:]
		switch {
		case rest == "json":
			lf.commits[v] = o
			lf.latest = max(lf.latest, v)
		case rest == "checkpoint.parquet" || (strings.HasPrefix(rest, "checkpoint.") && strings.HasSuffix(rest, ".parquet") && strings.Count(rest, ".") == 3):
			lf.checkpoints[v] = append(lf.checkpoints[v], o.Key)
		case strings.HasPrefix(rest, "checkpoint."):
			lf.checkpoints[v] = append(lf.checkpoints[v], "v2:"+o.Key)
		}
	}
	for v, parts := range lf.checkpoints {
		sort.Strings(parts)
		lf.latest = max(lf.latest, v)
	}
	if lf.latest < 0 {
		return nil, fail("%s has no _delta_log commits: not a Delta table", b.URI(tablePath))
	}
	return lf, nil
}

func (lf *logFiles) checkpointAtOrBefore(v int64) int64 {
	best := int64(-1)
	for c := range lf.checkpoints {
		if c <= v && c > best {
			best = c
		}
	}
	return best
}

// resolve picks the version at names: a version that exists, or the latest committed at or
// before the time (each commit's timestamp: its commitInfo's in-commit timestamp or
// timestamp, else the commit file's modification time).
func (lf *logFiles) resolve(ctx context.Context, b objstore.Bucket, tablePath string, at At) (int64, error) {
	switch {
	case at.Version >= 0:
		if at.Version > lf.latest {
			return 0, fail("%s has no version %d (the latest is %d)", b.URI(tablePath), at.Version, lf.latest)
		}
		return at.Version, nil
	case at.Time.IsZero():
		return lf.latest, nil
	}
	versions := make([]int64, 0, len(lf.commits))
	for v := range lf.commits {
		versions = append(versions, v)
	}
	slices.Sort(versions)
	found := int64(-1)
	for _, v := range versions {
		ts, err := commitTime(ctx, b, lf.commits[v])
		if err != nil {
			return 0, err
		}
		if ts.After(at.Time) {
			break
		}
		found = v
	}
	if found < 0 {
		return 0, fail("%s has no version committed at or before %s", b.URI(tablePath), at.Time.UTC().Format(time.RFC3339))
	}
	return found, nil
}

func commitTime(ctx context.Context, b objstore.Bucket, o objstore.Object) (time.Time, error) {
	data, _, err := objstore.ReadAll(ctx, b, o.Key)
	if err != nil {
		return time.Time{}, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for sc.Scan() {
		if !bytes.Contains(sc.Bytes(), []byte(`"commitInfo"`)) {
			continue
		}
		var a action
		if json.Unmarshal(sc.Bytes(), &a) == nil && a.CommitInfo != nil {
			if a.CommitInfo.InCommitTimestamp != nil {
				return time.UnixMilli(*a.CommitInfo.InCommitTimestamp), nil
			}
			if a.CommitInfo.Timestamp > 0 {
				return time.UnixMilli(a.CommitInfo.Timestamp), nil
			}
		}
	}
	return o.LastModified, nil
}

// state is the log replayed so far.
type state struct {
	protocol *Protocol
	metadata *Metadata
	files    map[string]addAction
	commitMs int64
}

func newState() *state { return &state{files: map[string]addAction{}} }

func (st *state) apply(a action, where string) error {
	switch {
	case a.Protocol != nil:
		st.protocol = a.Protocol
	case a.MetaData != nil:
		st.metadata = a.MetaData
	case a.Add != nil:
		p, err := url.PathUnescape(a.Add.Path)
		if err != nil {
			return fail("%s: add of path %q: %v", where, a.Add.Path, err)
		}
		a.Add.Path = p
		st.files[p] = *a.Add
	case a.Remove != nil:
		p, err := url.PathUnescape(a.Remove.Path)
		if err != nil {
			return fail("%s: remove of path %q: %v", where, a.Remove.Path, err)
		}
		delete(st.files, p)
	case a.CommitInfo != nil:
		st.commitMs = a.CommitInfo.Timestamp
		if a.CommitInfo.InCommitTimestamp != nil {
			st.commitMs = *a.CommitInfo.InCommitTimestamp
		}
	case a.Sidecar != nil:
		return fail("%s: a v2 checkpoint's sidecar files are not supported", where)
	}
	return nil
}

// readCommit replays one JSON commit, line by line.
func (st *state) readCommit(ctx context.Context, b objstore.Bucket, key string, v int64) error {
	data, _, err := objstore.ReadAll(ctx, b, key)
	if err != nil {
		return err
	}
	st.commitMs = 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var a action
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			return fail("%s line %d: %v", b.URI(key), line, err)
		}
		if err := st.apply(a, fmt.Sprintf("%s line %d", b.URI(key), line)); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fail("%s: %v", b.URI(key), err)
	}
	return nil
}

// readCheckpoint replays a checkpoint part: each Parquet row is one action, read as the JSON
// commits' actions are.
func (st *state) readCheckpoint(ctx context.Context, b objstore.Bucket, key string) error {
	if k, ok := strings.CutPrefix(key, "v2:"); ok {
		return fail("%s is a v2 checkpoint (named by a UUID, with sidecars); not supported: the table's v2Checkpoint feature", b.URI(k))
	}
	data, _, err := objstore.ReadAll(ctx, b, key)
	if err != nil {
		return err
	}
	pf, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return fail("checkpoint %s: %v", b.URI(key), err)
	}
	r := parquet.NewGenericReader[any](pf)
	defer r.Close()
	rows := make([]any, 256)
	for {
		n, err := r.Read(rows)
		for _, row := range rows[:n] {
			raw, merr := json.Marshal(row)
			var a action
			if merr == nil {
				merr = json.Unmarshal(raw, &a)
			}
			if merr != nil {
				return fail("checkpoint %s: %v", b.URI(key), merr)
			}
			a.CommitInfo = nil // a checkpoint carries no commit
			if err := st.apply(a, "checkpoint "+b.URI(key)); err != nil {
				return err
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fail("checkpoint %s: %v", b.URI(key), err)
		}
	}
}

// snapshot checks the protocol and the files and builds the snapshot.
func (st *state) snapshot(b objstore.Bucket, tablePath string, version int64) (*Snapshot, error) {
	where := fmt.Sprintf("%s version %d", b.URI(tablePath), version)
	if st.protocol == nil || st.metadata == nil {
		return nil, fail("%s: the log has no protocol or no metaData action", where)
	}
	if err := checkProtocol(*st.protocol, where); err != nil {
		return nil, err
	}
	schema, err := parseSchema(st.metadata.SchemaString, st.metadata.Configuration["delta.columnMapping.mode"])
	if err != nil {
		return nil, fail("%s: schema: %v", where, err)
	}
	s := &Snapshot{Path: tablePath, Version: version, Protocol: *st.protocol, Metadata: *st.metadata, Schema: schema}
	if st.commitMs > 0 {
		s.CommitTime = time.UnixMilli(st.commitMs).UTC()
	}
	for _, f := range st.files {
		if f.DeletionVector != nil {
			return nil, fail("%s: file %s has a deletion vector (%d rows deleted in place); not supported: rewrite the table's files without them (REORG TABLE ... APPLY (PURGE))",
				where, f.Path, f.DeletionVector.Cardinality)
		}
		file := File{Path: f.Path, Size: f.Size, PartitionValues: f.PartitionValues, ModificationMs: f.ModificationTime}
		if f.Stats != nil {
			file.Stats = *f.Stats
		}
		s.Files = append(s.Files, file)
	}
	slices.SortFunc(s.Files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return s, nil
}
