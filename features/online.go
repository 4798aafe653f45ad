package features

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"time"
)

// Online is the online store: each view's latest materialized row per entity key. Two
// implementations share one contract test (online_test.go): Bolt (embedded, bbolt: no server,
// the default) and Redis (go-redis).
type Online interface {
	// Put stores rows of a view, keeping per key the row with the latest (event, created): a
	// row older than the stored one changes nothing, so re-materializing a chunk is idempotent.
	Put(ctx context.Context, view string, rows []FeatureRow) error
	// Get returns, in one read, the stored row of each view for the key (Found false: none).
	Get(ctx context.Context, views []string, key string) ([]Match, error)
	Close() error
}

// encodeRow is a stored row: event and created time (each as big-endian uint64 of the value
// plus 2^63, so bytes order like times), the value count, the values.
func encodeRow(r FeatureRow) []byte {
	b := make([]byte, 20+8*len(r.Values))
	binary.BigEndian.PutUint64(b[0:], uint64(r.Event)^(1<<63))
	binary.BigEndian.PutUint64(b[8:], uint64(r.Created)^(1<<63))
	binary.BigEndian.PutUint32(b[16:], uint32(len(r.Values)))
	for i, v := range r.Values {
		binary.BigEndian.PutUint64(b[20+8*i:], math.Float64bits(v))
	}
	return b
}

func decodeRow(b []byte) (Match, error) {
	if len(b) < 20 {
		return Match{}, fmt.Errorf("stored row of %d bytes: too short", len(b))
	}
	n := int(binary.BigEndian.Uint32(b[16:]))
	if len(b) != 20+8*n {
		return Match{}, fmt.Errorf("stored row of %d bytes does not hold %d values", len(b), n)
	}
	m := Match{Found: true, Event: int64(binary.BigEndian.Uint64(b[0:]) ^ (1 << 63)), Created: int64(binary.BigEndian.Uint64(b[8:]) ^ (1 << 63)),
		Values: make([]float64, n)}
	for i := range m.Values {
		m.Values[i] = math.Float64frombits(binary.BigEndian.Uint64(b[20+8*i:]))
	}
	return m, nil
}

// newer reports whether encoded row a is later than b by (event, created).
func newer(a, b []byte) bool { return string(a[:16]) >= string(b[:16]) }

// Vector is a feature service's vector for one entity as the online store serves it.
type Vector struct {
	Names  []string
	Values []float64 // NaN: missing
	// Event is each value's event time (0: missing) and Age how old it was when read;
	// Missing says why a value is missing (no row, expired: older than the view's
	// online_expiry, or a row stored by definitions with other features).
	Event   []time.Time
	Age     []time.Duration
	Missing []string
}

// ReadService reads a service's vector for an entity key from the online store in one read,
// as of now: a value whose event is older than its view's online_expiry is reported missing,
// not served.
func ReadService(ctx context.Context, o Online, r Repo, service, key string, now time.Time) (Vector, error) {
	svc, ok := r.Service(service)
	if !ok {
		return Vector{}, fmt.Errorf("feature service %q is not defined", service)
	}
	var views []string
	viewOf := make([]int, len(svc.Features))
	featOf := make([]int, len(svc.Features))
	for i, ref := range svc.Features {
		vn, fn, _ := strings.Cut(ref, ":")
		j := -1
		for k, v := range views {
			if v == vn {
				j = k
			}
		}
		if j < 0 {
			views, j = append(views, vn), len(views)
		}
		v, ok := r.View(vn)
		if !ok {
			return Vector{}, fmt.Errorf("service %q: view %q is not defined", service, vn)
		}
		viewOf[i], featOf[i] = j, -1
		for k, f := range v.Features {
			if f.Name == fn {
				featOf[i] = k
			}
		}
		if featOf[i] < 0 {
			return Vector{}, fmt.Errorf("service %q: view %q has no feature %q", service, vn, fn)
		}
	}
	got, err := o.Get(ctx, views, key)
	if err != nil {
		return Vector{}, err
	}
	out := Vector{Names: svc.Features, Values: make([]float64, len(svc.Features)), Event: make([]time.Time, len(svc.Features)),
		Age: make([]time.Duration, len(svc.Features)), Missing: make([]string, len(svc.Features))}
	for i := range svc.Features {
		v, _ := r.View(views[viewOf[i]])
		m := got[viewOf[i]]
		out.Values[i] = math.NaN()
		switch {
		case !m.Found:
			out.Missing[i] = "no value"
		case len(m.Values) != len(v.Features):
			out.Missing[i] = fmt.Sprintf("stored with %d features, the view has %d: materialize again", len(m.Values), len(v.Features))
		default:
			ev := time.UnixMicro(m.Event)
			age := now.Sub(ev)
			out.Event[i], out.Age[i] = ev, age
			if exp := v.OnlineExpiry.Duration; exp > 0 && age > exp {
				out.Missing[i] = fmt.Sprintf("expired: %s old, online_expiry %s", age.Round(time.Second), exp)
				continue
			}
			out.Values[i] = m.Values[featOf[i]]
		}
	}
	return out, nil
}

// OpenStore opens an online store from its address: bolt:<file> (embedded) or
// redis://<host:port>[/<key prefix>].
func OpenStore(ctx context.Context, addr string) (Online, error) {
	switch {
	case strings.HasPrefix(addr, "bolt:"):
		return OpenBolt(strings.TrimPrefix(addr, "bolt:"))
	case strings.HasPrefix(addr, "redis://"):
		hostPort, prefix, _ := strings.Cut(strings.TrimPrefix(addr, "redis://"), "/")
		if prefix == "" {
			prefix = "driftline:features:"
		}
		return OpenRedis(ctx, hostPort, prefix)
	}
	return nil, fmt.Errorf("online store %q: want bolt:<file> or redis://<host:port>[/<prefix>]", addr)
}
