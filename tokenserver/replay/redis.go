package replay

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Store shared by every replica: SET key <token> NX with the code's remaining
// lifetime, where token is unique to one claim.
//
// A claim must never be retried blindly. When Redis applies a SET NX but its reply is lost (it
// arrives after the read timeout, or the connection breaks), a plain retry finds the key and
// reports the first and only redemption of a code as a replay. So the client never retries, and
// each claim writes a random token of its own: after an error, Claim reads the key back, and the
// token says whether the key is this claim's (fresh) or another's (replay). Every later SET of
// the same claim writes the same token, so a first SET that reaches Redis late is recognised too.
type Redis struct {
	client redis.UniversalClient
	prefix string
	// ClaimTimeout bounds a whole claim (ClaimTimeout by default).
	ClaimTimeout time.Duration
}

// RedisTimeout bounds each Redis dial, read and write; ClaimTimeout bounds a whole claim,
// waiting for a pooled connection and finding out what happened to a lost reply included. A slow
// Redis must not hold token requests for long.
const (
	RedisTimeout = 500 * time.Millisecond
	ClaimTimeout = 2 * time.Second
)

// claimRounds bounds the round trips of one claim: the SET, then up to two reads back (each
// followed by a SET with the same token when the key is absent). A Redis that fails at once
// (connection refused) must not be hammered until ClaimTimeout.
const claimRounds = 3

// NewRedis connects to Redis and keeps keys as prefix + code ID. The URL says which Redis:
//
//	redis://[user:password@]host:port/db (rediss:// for TLS)     one server
//	redis://[...]sentinel:26379/db?master_name=NAME&addr=s2:26379  Sentinel: the primary it names
//	redis+cluster://[...]host:port?addr=host2:port2                Redis Cluster
//
// (go-redis's URL formats; a Sentinel URL names the sentinels, not the primary.)
func NewRedis(raw, prefix string) (*Redis, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parsing the Redis URL: %w", err)
	}
	var client redis.UniversalClient
	switch {
	case u.Scheme == "redis+cluster" || u.Scheme == "rediss+cluster":
		if p := strings.Trim(u.Path, "/"); p != "" && p != "0" {
			return nil, fmt.Errorf("a Redis Cluster URL names no database (Redis Cluster has only database 0): %q", u.Path)
		}
		u.Scheme = strings.TrimSuffix(u.Scheme, "+cluster")
		opts, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("parsing the Redis Cluster URL: %w", err)
		}
		opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = RedisTimeout, RedisTimeout, RedisTimeout
		opts.MaxRetries, opts.MaxRedirects, opts.ContextTimeoutEnabled = -1, 3, true
		opts.PoolSize, opts.PoolTimeout, opts.MinIdleConns = 128, 2*time.Second, 4
		client = redis.NewClusterClient(opts)
	case u.Query().Has("master_name"):
		opts, err := redis.ParseFailoverURL(raw)
		if err != nil {
			return nil, fmt.Errorf("parsing the Redis Sentinel URL: %w", err)
		}
		opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = RedisTimeout, RedisTimeout, RedisTimeout
		opts.MaxRetries, opts.ContextTimeoutEnabled = -1, true
		opts.PoolSize, opts.PoolTimeout, opts.MinIdleConns = 128, 2*time.Second, 4
		client = redis.NewFailoverClient(opts)
	default:
		opts, err := redis.ParseURL(raw)
		if err != nil {
			return nil, fmt.Errorf("parsing the Redis URL: %w", err)
		}
		opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = RedisTimeout, RedisTimeout, RedisTimeout
		// The client's own retries would resend a SET NX whose reply was lost; Claim resolves
		// that itself (see Redis). -1, not 0: 0 means go-redis's default of 3 retries.
		opts.MaxRetries = -1
		// Deadlines of the caller's context (the request's, and ClaimTimeout) bound each read
		// and write too, not only RedisTimeout.
		opts.ContextTimeoutEnabled = true
		// A burst of redemptions (LivePerson retries, a reconnect storm) must queue briefly for
		// a connection rather than fail: each command still has RedisTimeout.
		opts.PoolSize, opts.PoolTimeout, opts.MinIdleConns = 128, 2*time.Second, 4
		client = redis.NewClient(opts)
	}
	return &Redis{client: client, prefix: prefix, ClaimTimeout: ClaimTimeout}, nil
}

// Claim implements Store.
func (r *Redis) Claim(ctx context.Context, id string, issued, expiry time.Time) (bool, error) {
	ttl := time.Until(expiry)
	if ttl < time.Second {
		ttl = time.Second // the code is about to expire; keep the ID long enough to refuse a replay
	}
	ctx, cancel := context.WithTimeout(ctx, r.ClaimTimeout)
	defer cancel()
	// A value no other claim writes: 128 random bits.
	token, key := rand.Text(), r.prefix+id
	// One round trip: when the records begin, and the claim.
	pipe := r.client.Pipeline()
	since := pipe.Get(ctx, r.prefix+epochKey)
	claim := pipe.SetNX(ctx, key, token, ttl)
	_, _ = pipe.Exec(ctx)
	set, err := claim.Result()
	if err == nil {
		// A definite answer: nothing was lost. Unless the ID predates the records.
		if complete, eerr := r.completeSince(ctx, since); eerr != nil {
			return false, eerr
		} else if issued.Unix() < complete {
			return false, nil
		}
		return set, nil
	}
	if notSent(err) {
		return false, fmt.Errorf("redis SET NX: %w", err)
	}
	// The SET may or may not have been applied: ask Redis whose token the key holds.
	for range claimRounds - 1 {
		if ctx.Err() != nil {
			break
		}
		held, gerr := r.client.Get(ctx, key).Result()
		switch {
		case gerr == nil:
			if held != token {
				return false, nil
			}
			complete, eerr := r.completeSince(ctx, r.client.Get(ctx, r.prefix+epochKey))
			if eerr != nil {
				return false, eerr
			}
			return issued.Unix() >= complete, nil
		case !errors.Is(gerr, redis.Nil):
			err = gerr
			continue
		}
		// Nobody holds the ID: our SET never applied (or has not arrived yet). Claim again with
		// the same token; if that finds the key held, the next read tells whose it is.
		set, serr := r.client.SetNX(ctx, key, token, ttl).Result()
		if serr == nil && set {
			complete, eerr := r.completeSince(ctx, r.client.Get(ctx, r.prefix+epochKey))
			if eerr != nil {
				return false, eerr
			}
			return issued.Unix() >= complete, nil
		}
		if serr != nil {
			err = serr
		}
	}
	return false, fmt.Errorf("redis SET NX: outcome unknown: %w", err)
}

// epochKey holds, under the store's prefix, when its records begin (Unix seconds): written when
// missing, which is when Redis lost what it held (a restart without persistence, a flush). The
// key is replicated with the rest, so a failover keeps it (and loses only the writes the replica
// had not received: see the README).
const epochKey = "records-since"

// completeSince is when the records begin: the epoch key's value, or, when the key is missing
// (Redis lost its data), the time the Redis server started, written for the next claims. Every
// claim made before that start is lost, so an ID issued before it may have been claimed.
func (r *Redis) completeSince(ctx context.Context, got *redis.StringCmd) (int64, error) {
	v, err := got.Int64()
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("redis GET %s: %w", epochKey, err)
	}
	info, err := r.client.Info(ctx, "server").Result()
	if err != nil {
		return 0, fmt.Errorf("redis INFO: %w", err)
	}
	now, err := r.client.Time(ctx).Result()
	if err != nil {
		return 0, fmt.Errorf("redis TIME: %w", err)
	}
	start := now.Unix() - uptimeSeconds(info)
	// Another replica may write it first: theirs and ours are the same server start.
	if _, err := r.client.SetNX(ctx, r.prefix+epochKey, start, 0).Result(); err != nil {
		return 0, fmt.Errorf("redis SET %s: %w", epochKey, err)
	}
	return start, nil
}

// uptimeSeconds reads uptime_in_seconds from INFO server (0 when absent: the whole past is
// then assumed lost, which refuses more, never less).
func uptimeSeconds(info string) int64 {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "uptime_in_seconds:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// notSent reports errors that leave no doubt the command never reached Redis: no connection
// could be dialled or taken from the pool. Reading the key back would only wait again.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" || errors.Is(err, redis.ErrPoolTimeout)
}

// Ping checks the connection (readiness).
func (r *Redis) Ping(ctx context.Context) error { return r.client.Ping(ctx).Err() }

// Close releases the connections.
func (r *Redis) Close() error { return r.client.Close() }
