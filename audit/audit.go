package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/driftline/driftline/objstore"
)

// Record is one audited action. Seq and Prev chain the records of one model and day: Prev is
// the SHA-256 of the previous record's stored bytes (empty for the first of the day), so a
// deleted or altered record breaks the chain (Verify).
type Record struct {
	ID       string         `json:"id"`
	Time     time.Time      `json:"time"`
	Actor    string         `json:"actor"`
	Action   string         `json:"action"` // register, set_canary, promote, rollback, policy_decision, approve, reject, ...
	Model    string         `json:"model"`
	Version  int            `json:"version,omitempty"`
	RunID    string         `json:"run_id,omitempty"`
	Decision string         `json:"decision,omitempty"`
	Reason   string         `json:"reason,omitempty"`
	Details  map[string]any `json:"details,omitempty"`
	Seq      int64          `json:"seq"`
	Prev     string         `json:"prev,omitempty"`
}

// Log appends records to a bucket.
type Log struct{ Store objstore.Bucket }

// InvalidChain is the chain of records whose model is not a valid name (a refused call whose
// path named one): such a name never becomes part of a key.
const InvalidChain = "_invalid"

var chainName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// positionName is the object name of a record in its chain.
var positionName = regexp.MustCompile(`^[0-9]{12}\.json$`)

// chain names a model's chain ("_" for records of no model, InvalidChain for a model that is
// not a valid name).
func chain(model string) string {
	switch {
	case model == "":
		return "_"
	case model == InvalidChain || !chainName.MatchString(model):
		return InvalidChain
	}
	return model
}

// chainPrefix is where one model's records of one day are: audit/YYYY/MM/DD/<model>/.
func chainPrefix(day time.Time, model string) string {
	return fmt.Sprintf("audit/%s/%s/", day.UTC().Format("2006/01/02"), chain(model))
}

// Key is where a record is stored: its chain and position (one object per position, so a
// conditional create gives each position to one writer).
func Key(r Record) string { return posKey(r.Time, r.Model, r.Seq) }

func posKey(day time.Time, model string, seq int64) string {
	return fmt.Sprintf("%s%012d.json", chainPrefix(day, model), seq)
}

// head is a hint of a chain's last record (the records themselves are the chain).
type head struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
	Key  string `json:"key"`
}

func headKey(day time.Time, model string) string {
	return fmt.Sprintf("audit/heads/%s/%s.json", day.UTC().Format("2006/01/02"), chain(model))
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Append writes the record once, at the end of its model's chain for the day. The id is
// derived from the caller's idempotency key, so an activity retry that appends the same record
// again is a no-op. Positions are taken by conditional creates, so concurrent writers (the
// API, every worker) never overwrite each other or share a position.
func (l Log) Append(ctx context.Context, idempotencyKey string, r Record) (Record, error) {
	sum := sha256.Sum256([]byte(idempotencyKey))
	r.ID = hex.EncodeToString(sum[:8])
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	// The marker makes the record's place stable across retries with different clocks.
	marker := "audit/ids/" + r.ID
	if data, _, err := objstore.ReadAll(ctx, l.Store, marker); err == nil {
		var prev Record
		if json.Unmarshal(data, &prev) == nil {
			return prev, nil
		}
	}
	hk := headKey(r.Time, r.Model)
	// Writers of one process take a chain's positions one after another: concurrent writers
	// racing for each position cost a failed create and a read per writer per position
	// (200 at once took 19 s on MinIO, BenchmarkAuditAppendConcurrent); other processes are
	// still ordered by the conditional creates.
	mu := &chainLocks[fnv32(hk)%uint32(len(chainLocks))]
	mu.Lock()
	defer mu.Unlock()
	var h head
	if data, _, err := objstore.ReadAll(ctx, l.Store, hk); err == nil {
		_ = json.Unmarshal(data, &h)
	} else if !errors.Is(err, objstore.ErrNotFound) {
		return r, err
	}
	r.Seq, r.Prev = h.Seq+1, h.Hash
	var body []byte
	for attempt := 0; ; attempt++ {
		if attempt > 10000 {
			return r, errors.New("audit: could not find the end of the chain")
		}
		var err error
		if body, err = json.Marshal(r); err != nil {
			return r, err
		}
		_, err = l.Store.Put(ctx, Key(r), body, objstore.PutOptions{IfNoneMatch: true, ContentType: "application/json"})
		if err == nil {
			break
		}
		if !errors.Is(err, objstore.ErrPreconditionFailed) {
			return r, err
		}
		taken, _, err := objstore.ReadAll(ctx, l.Store, Key(r))
		if err != nil {
			return r, err
		}
		var other Record
		switch {
		case json.Unmarshal(taken, &other) != nil || other.ID == "":
			// Not a record: an object planted at the position. Move past it, still chained to
			// the last record (Verify names it as planted).
			r.Seq++
		case other.ID == r.ID:
			// This record, written by an earlier attempt that stopped before its marker.
			return other, l.putMarker(ctx, marker, taken)
		default:
			// Another writer took this position: move past it.
			r.Seq, r.Prev = r.Seq+1, digest(taken)
		}
	}
	if err := l.putMarker(ctx, marker, body); err != nil {
		return r, err
	}
	hb, _ := json.Marshal(head{Seq: r.Seq, Hash: digest(body), Key: Key(r)})
	_, _ = l.Store.Put(ctx, hk, hb, objstore.PutOptions{ContentType: "application/json"}) // a hint: the next writer corrects a stale one
	return r, nil
}

// chainLocks serialise one process's appends per chain (striped: a bounded number of locks
// whatever the number of chains).
var chainLocks [64]sync.Mutex

func fnv32(s string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	return h.Sum32()
}

func (l Log) putMarker(ctx context.Context, marker string, body []byte) error {
	_, err := objstore.CreateOnce(ctx, l.Store, marker, body, "")
	return err
}

// List returns the records of one model (all models when model is empty) since a time, oldest first.
func (l Log) List(ctx context.Context, model string, since time.Time) ([]Record, error) {
	var out []Record
	for day := since.UTC().Truncate(24 * time.Hour); !day.After(time.Now().UTC()); day = day.AddDate(0, 0, 1) {
		// The whole day, then filtered: records from before the chains are at its root.
		objs, err := l.Store.List(ctx, "audit/"+day.Format("2006/01/02")+"/")
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			data, _, err := objstore.ReadAll(ctx, l.Store, o.Key)
			if err != nil {
				return nil, err
			}
			var r Record
			if json.Unmarshal(data, &r) != nil || r.ID == "" {
				continue // not a record: planted, or altered past reading (Verify names it)
			}
			if (model == "" || r.Model == model) && !r.Time.Before(since) {
				out = append(out, r)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// Problem is one break in a chain.
type Problem struct {
	Chain, Key, What string
}

func (p Problem) String() string { return p.Chain + ": " + p.What }

// ChainReport is one chain's verification.
type ChainReport struct {
	Chain    string `json:"chain"` // audit/YYYY/MM/DD/<model>
	Records  int    `json:"records"`
	LastSeq  int64  `json:"last_seq"`
	LastHash string `json:"last_hash"`
	// Planted names objects in the chain that no writer put there as a record: keys that are
	// not positions, and unreadable objects the writers skipped over (the next record chains
	// to their digest) or that stand past the chain's head. They do not break the chain.
	Planted []string `json:"planted,omitempty"`
}

// Verify walks every chain of the days from since to now: positions must run 1, 2, 3, ...
// without a gap, every record's Prev must be the digest of the one before it, and the last
// must match the head. It returns each chain's summary and every problem found: a deleted
// record (a gap, or a head past the last record), an altered one (a digest that does not
// match), or one that does not parse.
func (l Log) Verify(ctx context.Context, since time.Time) ([]ChainReport, []Problem, error) {
	var reports []ChainReport
	var problems []Problem
	for day := since.UTC().Truncate(24 * time.Hour); !day.After(time.Now().UTC()); day = day.AddDate(0, 0, 1) {
		dayPrefix := "audit/" + day.Format("2006/01/02") + "/"
		objs, err := l.Store.List(ctx, dayPrefix)
		if err != nil {
			return nil, nil, err
		}
		chains := map[string][]objstore.Object{}
		var names []string
		for _, o := range objs {
			name, _, ok := strings.Cut(strings.TrimPrefix(o.Key, dayPrefix), "/")
			if !ok {
				continue
			}
			if _, seen := chains[name]; !seen {
				names = append(names, name)
			}
			chains[name] = append(chains[name], o)
		}
		sort.Strings(names)
		for _, name := range names {
			rep, probs, err := l.verifyChain(ctx, day, name, chains[name])
			if err != nil {
				return nil, nil, err
			}
			reports = append(reports, rep)
			problems = append(problems, probs...)
		}
	}
	return reports, problems, nil
}

func (l Log) verifyChain(ctx context.Context, day time.Time, name string, objs []objstore.Object) (ChainReport, []Problem, error) {
	id := strings.TrimSuffix(chainPrefix(day, name), "/")
	rep := ChainReport{Chain: id}
	var probs []Problem
	bad := func(key, format string, a ...any) {
		probs = append(probs, Problem{Chain: id, Key: key, What: fmt.Sprintf(format, a...)})
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].Key < objs[j].Key })
	prevHash := "" // the digest of the last record
	var want int64 = 1
	// unread are objects at positions that are not records: planted (the writers skipped them
	// and the next record chains past them) or altered records (the next record does not).
	type pending struct {
		key    string
		seq    int64
		digest string
	}
	var unread []pending
	for _, o := range objs {
		base := strings.TrimPrefix(o.Key, chainPrefix(day, name))
		if !positionName.MatchString(base) {
			rep.Planted = append(rep.Planted, o.Key)
			continue
		}
		seq, _ := strconv.ParseInt(strings.TrimSuffix(base, ".json"), 10, 64)
		data, _, err := objstore.ReadAll(ctx, l.Store, o.Key)
		if err != nil {
			return rep, nil, err
		}
		var r Record
		if err := json.Unmarshal(data, &r); err != nil || r.ID == "" {
			unread = append(unread, pending{o.Key, seq, digest(data)})
			want = seq + 1
			continue
		}
		chained := r.Prev == prevHash || (len(unread) > 0 && r.Prev == unread[len(unread)-1].digest) // the latter: writers before planted objects were skipped
		for _, u := range unread {
			if chained {
				rep.Planted = append(rep.Planted, u.key)
			} else {
				bad(u.key, "record %d (%s) does not parse (altered)", u.seq, u.key)
			}
		}
		switch {
		case seq > want:
			bad(o.Key, "records %d to %d are missing (deleted?): the chain jumps from %d to %d", want, seq-1, want-1, seq)
		case seq < want:
			bad(o.Key, "two records at position %d", seq)
		}
		if r.Seq != seq {
			bad(o.Key, "record at position %d says it is %d (altered)", seq, r.Seq)
		}
		if seq == want && !chained && len(unread) == 0 {
			bad(o.Key, "record %d does not follow record %d: its prev %.12s is not the digest %.12s of the record before (altered or replaced)", seq, rep.LastSeq, r.Prev, prevHash)
		}
		unread = nil
		prevHash, want = digest(data), seq+1
		rep.Records++
		rep.LastSeq, rep.LastHash = seq, prevHash
	}
	var h head
	if data, _, err := objstore.ReadAll(ctx, l.Store, headKey(day, name)); err == nil {
		if json.Unmarshal(data, &h) == nil && h.Seq >= rep.LastSeq && (h.Seq != rep.LastSeq || h.Hash != rep.LastHash) {
			bad(h.Key, "the chain's head is at record %d (%.12s) but the last record is %d (%.12s): the last records were deleted or altered", h.Seq, h.Hash, rep.LastSeq, rep.LastHash)
		}
	} else if !errors.Is(err, objstore.ErrNotFound) {
		return rep, nil, err
	}
	for _, u := range unread { // after the last record: planted when past the head no writer moved
		if u.seq > h.Seq {
			rep.Planted = append(rep.Planted, u.key)
		} else {
			bad(u.key, "record %d (%s) does not parse (altered)", u.seq, u.key)
		}
	}
	return rep, probs, nil
}

// String renders a record on one line.
func (r Record) String() string {
	parts := []string{r.Time.Format(time.RFC3339), r.Actor, r.Action, r.Model}
	if r.Version > 0 {
		parts = append(parts, fmt.Sprintf("v%d", r.Version))
	}
	if r.Decision != "" {
		parts = append(parts, r.Decision)
	}
	if r.Reason != "" {
		parts = append(parts, fmt.Sprintf("%q", r.Reason))
	}
	if r.RunID != "" {
		parts = append(parts, "run="+r.RunID)
	}
	return strings.Join(parts, "  ")
}
