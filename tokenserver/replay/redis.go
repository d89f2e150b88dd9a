package replay

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
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
	// lastOK is when (Unix seconds) this process last had a claim answered: after a failover
	// or a restart, the claims that can be lost are the ones made until then, not later.
	lastOK atomic.Int64
	// reload, for Redis Cluster, has the client learn which node holds which slots again.
	reload func()
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
	r := &Redis{prefix: prefix, ClaimTimeout: ClaimTimeout}
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
		// One hash slot for the claims, the epoch and the run_id, so they live and are lost
		// together on one primary.
		r.prefix = "{" + prefix + "}"
		// The run_id watch runs on every node's new connections; only the primary that holds the
		// slot answers it (the others answer MOVED). After a failover the client connects anew
		// to the new primary, which the watch sees (TestAClusterFailoverRefusesCodesIssued…
		// holds this, with the client connected to the replica before its promotion).
		opts.OnConnect = r.watchRunID
		cluster := redis.NewClusterClient(opts)
		// go-redis learns the slots again only on MOVED or once a minute: a primary that died
		// answers neither, and claims would go on failing for that minute after its replica
		// took over. Each failed claim asks for the slots again (in the background, at most
		// every 200 ms).
		r.reload = func() { cluster.ReloadState(context.Background()) }
		client = cluster
	case u.Query().Has("master_name"):
		opts, err := redis.ParseFailoverURL(raw)
		if err != nil {
			return nil, fmt.Errorf("parsing the Redis Sentinel URL: %w", err)
		}
		opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = RedisTimeout, RedisTimeout, RedisTimeout
		opts.MaxRetries, opts.ContextTimeoutEnabled = -1, true
		opts.PoolSize, opts.PoolTimeout, opts.MinIdleConns = 128, 2*time.Second, 4
		opts.OnConnect = r.watchRunID
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
		opts.OnConnect = r.watchRunID
		client = redis.NewClient(opts)
	}
	r.client = client
	return r, nil
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
	// One round trip: when the records begin (written now if the key is gone: Redis lost its
	// data, by a restart without persistence, a flush or eviction), and the claim.
	pipe := r.client.Pipeline()
	since := r.epoch(ctx, pipe)
	claim := pipe.SetNX(ctx, key, token, ttl)
	_, _ = pipe.Exec(ctx)
	set, err := claim.Result()
	if err != nil && r.reload != nil {
		r.reload()
	}
	if err == nil {
		r.lastOK.Store(time.Now().Unix())
		if err := r.beforeRecords(issued, since); err != nil {
			return false, err
		}
		if set {
			return true, nil
		}
		// Held: a replay, or this very claim resent after its reply was lost (a cluster client
		// resends on a timeout): the token says which.
		return r.heldBy(ctx, key, token)
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
			r.lastOK.Store(time.Now().Unix())
			if held != token {
				return false, nil
			}
			if err := r.checkEpoch(ctx, issued); err != nil {
				return false, err
			}
			return true, nil
		case !errors.Is(gerr, redis.Nil):
			err = gerr
			continue
		}
		// Nobody holds the ID: our SET never applied (or has not arrived yet). Claim again with
		// the same token; if that finds the key held, the next read tells whose it is.
		set, serr := r.client.SetNX(ctx, key, token, ttl).Result()
		if serr == nil && set {
			if err := r.checkEpoch(ctx, issued); err != nil {
				return false, err
			}
			return true, nil
		}
		if serr != nil {
			err = serr
		}
	}
	return false, fmt.Errorf("redis SET NX: outcome unknown: %w", err)
}

// heldBy reports whether key holds token (this claim's), reading it back.
func (r *Redis) heldBy(ctx context.Context, key, token string) (bool, error) {
	held, err := r.client.Get(ctx, key).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("redis GET: %w", err)
	}
	return held == token, nil
}

// Keys beside the claims, under the store's prefix. epochKey holds when the records begin (Unix
// seconds): written when missing, and raised when the server's run_id changes (runIDKey), which
// is a restart (even one that reloads a snapshot, which loses the claims made since) or a
// failover (which loses the claims the replica had not received). An ID issued in or before
// that second may have been claimed in what was lost.
const (
	epochKey = "records-since"
	runIDKey = "records-run-id"
	// newKeyMargin is how far back, in seconds, records written anew are taken to begin.
	newKeyMargin = 2
)

// epoch queues, on pipe, the reading of when the records begin, written first if the key is gone
// (Redis lost its data, or never had any) as lossEpoch.
func (r *Redis) epoch(ctx context.Context, pipe redis.Pipeliner) *redis.StringCmd {
	pipe.SetNX(ctx, r.prefix+epochKey, r.lossEpoch(), 0)
	return pipe.Get(ctx, r.prefix+epochKey)
}

// lossEpoch is when the records begin after a loss of everything: from newKeyMargin ago, so an ID
// issued just now (its claim under way while the key was written) is not refused; and not before
// the last claim this process had answered, which the loss took. (What is left is the window a
// loss leaves: an ID another replica claimed after that, in the margin, could be claimed once
// more.)
func (r *Redis) lossEpoch() int64 {
	now := time.Now().Unix()
	return min(now, max(now-newKeyMargin, r.lastOK.Load()))
}

// checkEpoch is beforeRecords on its own round trip (after a lost reply).
func (r *Redis) checkEpoch(ctx context.Context, issued time.Time) error {
	pipe := r.client.Pipeline()
	since := r.epoch(ctx, pipe)
	_, _ = pipe.Exec(ctx)
	return r.beforeRecords(issued, since)
}

// beforeRecords is ErrBeforeRecords when issued is not after the records begin (the epoch, as
// read by since), and an error when the epoch cannot be read.
func (r *Redis) beforeRecords(issued time.Time, since *redis.StringCmd) error {
	epoch, err := since.Int64()
	switch {
	case errors.Is(err, redis.Nil):
		// Gone even after the SETNX before it (it has just been flushed again).
		epoch = r.lossEpoch()
	case err != nil:
		return fmt.Errorf("redis GET %s: %w", epochKey, err)
	}
	if issued.Unix() <= epoch {
		return ErrBeforeRecords
	}
	return nil
}

// watchRunID is each new connection's look at the server. A store seen for the first time (no
// run_id recorded: a new Redis, or one that lost everything) has records from now on. A run_id
// other than the recorded one means the server restarted (even reloading a snapshot, which loses
// the claims made since) or another took over (a failover loses the claims the replica had not
// received): what can be lost is what was claimed until this process last had an answer, so the
// records begin again from then (from now, if it never had one). Codes issued while Redis was
// away are not refused. Without INFO (an ACL that refuses it) only a loss of the whole data set
// is seen, by the epoch key gone.
func (r *Redis) watchRunID(ctx context.Context, cn *redis.Conn) error {
	return r.lookAtServer(ctx, cn)
}

// lookAtServer is the run_id watch, on a connection or a cluster node's client. It returns an
// error only when a command timed out or the network failed: go-redis then closes the connection,
// whose late reply would otherwise be read as the answer to the next command. (A Redis error, such
// as an ACL refusing INFO or MOVED from a cluster node that does not hold the slot, skips the
// watch.)
func (r *Redis) lookAtServer(ctx context.Context, cn redis.Cmdable) error {
	info, err := cn.Info(ctx, "server").Result()
	if err != nil {
		return broken(err)
	}
	runID := infoField(info, "run_id")
	if runID == "" || infoField(info, "redis_mode") == "sentinel" {
		return nil // a sentinel (the failover client connects to them too) holds no claims
	}
	prefix := r.prefix
	prev, err := cn.Get(ctx, prefix+runIDKey).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return broken(err)
	}
	switch now := time.Now().Unix(); {
	case prev == runID:
		return nil
	case prev == "":
		// Nothing recorded: a new store, or one that lost everything (lossEpoch, if the epoch
		// went too).
		err = cn.SetNX(ctx, prefix+epochKey, r.lossEpoch(), 0).Err()
	default:
		since := r.lastOK.Load()
		if since == 0 || since > now {
			since = now
		}
		epoch, gerr := cn.Get(ctx, prefix+epochKey).Int64()
		if gerr != nil && broken(gerr) != nil {
			return gerr
		}
		if gerr != nil || epoch < since {
			err = cn.Set(ctx, prefix+epochKey, since, 0).Err()
		}
	}
	if err != nil {
		// The run_id is recorded only once the epoch is: the next connection looks again.
		return broken(err)
	}
	return broken(cn.Set(ctx, prefix+runIDKey, runID, 0).Err())
}

// broken is err when it leaves the connection unusable (a timeout or a network error), and nil
// when Redis answered (an error reply, or no value).
func broken(err error) error {
	var reply redis.Error
	if err == nil || errors.Is(err, redis.Nil) || errors.As(err, &reply) {
		return nil
	}
	return err
}

// infoField reads one field of an INFO answer.
func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
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
