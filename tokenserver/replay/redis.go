package replay

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Store shared by every replica: SET key 1 NX with the code's remaining lifetime.
type Redis struct {
	client *redis.Client
	prefix string
	// ClaimTimeout bounds a whole claim (ClaimTimeout by default).
	ClaimTimeout time.Duration
}

// RedisTimeout bounds each Redis read and write; ClaimTimeout bounds a whole claim, waiting for a
// pooled connection included. A slow Redis must not hold token requests for long.
const (
	RedisTimeout = 500 * time.Millisecond
	ClaimTimeout = 2 * time.Second
)

// NewRedis connects to a redis:// or rediss:// URL. Keys are prefix + code ID.
func NewRedis(url, prefix string) (*Redis, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parsing the Redis URL: %w", err)
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = RedisTimeout, RedisTimeout, RedisTimeout
	opts.MaxRetries = 1
	// A burst of redemptions (LivePerson retries, a reconnect storm) must queue briefly for a
	// connection rather than fail: each command still has RedisTimeout.
	opts.PoolSize, opts.PoolTimeout, opts.MinIdleConns = 128, 2*time.Second, 4
	return &Redis{client: redis.NewClient(opts), prefix: prefix, ClaimTimeout: ClaimTimeout}, nil
}

// Claim implements Store.
func (r *Redis) Claim(ctx context.Context, id string, expiry time.Time) (bool, error) {
	ttl := time.Until(expiry)
	if ttl < time.Second {
		ttl = time.Second // the code is about to expire; keep the ID long enough to refuse a replay
	}
	ctx, cancel := context.WithTimeout(ctx, r.ClaimTimeout)
	defer cancel()
	ok, err := r.client.SetNX(ctx, r.prefix+id, 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("redis SET NX: %w", err)
	}
	return ok, nil
}

// Ping checks the connection (readiness).
func (r *Redis) Ping(ctx context.Context) error { return r.client.Ping(ctx).Err() }

// Close releases the connections.
func (r *Redis) Close() error { return r.client.Close() }
