package replay

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
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
	client *redis.Client
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

// NewRedis connects to a redis:// or rediss:// URL. Keys are prefix + code ID.
func NewRedis(url, prefix string) (*Redis, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parsing the Redis URL: %w", err)
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = RedisTimeout, RedisTimeout, RedisTimeout
	// The client's own retries would resend a SET NX whose reply was lost; Claim resolves that
	// itself (see Redis). -1, not 0: 0 means go-redis's default of 3 retries.
	opts.MaxRetries = -1
	// Deadlines of the caller's context (the request's, and ClaimTimeout) bound each read and
	// write too, not only RedisTimeout.
	opts.ContextTimeoutEnabled = true
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
	// A value no other claim writes: 128 random bits.
	token, key := rand.Text(), r.prefix+id
	set, err := r.client.SetNX(ctx, key, token, ttl).Result()
	if err == nil {
		return set, nil // a definite answer: nothing was lost
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
			return held == token, nil
		case !errors.Is(gerr, redis.Nil):
			err = gerr
			continue
		}
		// Nobody holds the ID: our SET never applied (or has not arrived yet). Claim again with
		// the same token; if that finds the key held, the next read tells whose it is.
		set, serr := r.client.SetNX(ctx, key, token, ttl).Result()
		if serr == nil && set {
			return true, nil
		}
		if serr != nil {
			err = serr
		}
	}
	return false, fmt.Errorf("redis SET NX: outcome unknown: %w", err)
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
