package features

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Redis is the online store on Redis, for when one machine is not enough: a key per view and
// entity (<prefix><view>:<key>) holding its latest row.
type Redis struct {
	c      *redis.Client
	prefix string
}

var _ Online = (*Redis)(nil)

// OpenRedis connects to addr (host:port); keys start with prefix.
func OpenRedis(ctx context.Context, addr, prefix string) (*Redis, error) {
	c := redis.NewClient(&redis.Options{Addr: addr})
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("online store redis %s: %w", addr, err)
	}
	return &Redis{c: c, prefix: prefix}, nil
}

func (s *Redis) key(view, key string) string { return s.prefix + view + ":" + key }

// putNewer sets each key to its value unless the stored one is later by (event, created):
// the first 16 bytes, which order as the times do.
var putNewer = redis.NewScript(`
for i, k in ipairs(KEYS) do
  local v = ARGV[i]
  local cur = redis.call('GET', k)
  if (not cur) or string.sub(v, 1, 16) >= string.sub(cur, 1, 16) then
    redis.call('SET', k, v)
  end
end
return #KEYS`)

// Put implements Online: batches of 512 rows, each one atomic script.
func (s *Redis) Put(ctx context.Context, view string, rows []FeatureRow) error {
	const batch = 512
	for lo := 0; lo < len(rows); lo += batch {
		hi := min(lo+batch, len(rows))
		keys := make([]string, 0, hi-lo)
		args := make([]any, 0, hi-lo)
		for _, r := range rows[lo:hi] {
			keys = append(keys, s.key(view, r.Key))
			args = append(args, encodeRow(r))
		}
		if err := putNewer.Run(ctx, s.c, keys, args...).Err(); err != nil {
			return fmt.Errorf("online store redis: put %d rows of %s: %w", len(keys), view, err)
		}
	}
	return nil
}

// Get implements Online: one MGET for every view.
func (s *Redis) Get(ctx context.Context, views []string, key string) ([]Match, error) {
	keys := make([]string, len(views))
	for i, v := range views {
		keys[i] = s.key(v, key)
	}
	vals, err := s.c.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("online store redis: get %s: %w", key, err)
	}
	out := make([]Match, len(views))
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue // nil: no row
		}
		m, err := decodeRow([]byte(str))
		if err != nil {
			return nil, fmt.Errorf("view %s key %s: %w", views[i], key, err)
		}
		out[i] = m
	}
	return out, nil
}

// Close implements Online.
func (s *Redis) Close() error { return s.c.Close() }
