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
	// runID is the run_id of the server this process's claims last went to.
	runID atomic.Value
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
		// together on one primary, and one script can touch them all.
		r.prefix = "{" + prefix + "}"
		cluster := redis.NewClusterClient(opts)
		// go-redis learns the slots again only on MOVED or once a minute: a primary that died
		// answers neither, and claims would go on failing for that minute after its replica
		// took over. A failed claim asks for the slots again (in the background; at most once
		// a second, since a reload that fails is retried by go-redis at once).
		var last atomic.Int64
		r.reload = func() {
			now := time.Now().UnixNano()
			if prev := last.Load(); now-prev >= int64(time.Second) && last.CompareAndSwap(prev, now) {
				cluster.ReloadState(context.Background())
			}
		}
		client = cluster
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
	// One round trip, one atomic script: the look at the server and when the records begin,
	// then the claim.
	epoch, set, err := r.claim(ctx, key, token, ttl)
	if err == nil {
		if err := beforeRecords(issued, epoch); err != nil {
			return false, err
		}
		if set {
			return true, nil
		}
		// Held: a replay, or this very claim resent after its reply was lost (a cluster client
		// resends on a timeout): the token says which.
		return r.heldBy(ctx, key, token)
	}
	if r.reload != nil {
		r.reload()
	}
	if notSent(err) {
		return false, fmt.Errorf("redis claim: %w", err)
	}
	// The claim may or may not have been applied: ask Redis whose token the key holds.
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
			// Ours: the script ran, but its answer (the epoch) was lost. Look again.
			epoch, _, cerr := r.claim(ctx, key, "", 0)
			if cerr != nil {
				return false, fmt.Errorf("redis claim: reading when the records begin: %w", cerr)
			}
			if err := beforeRecords(issued, epoch); err != nil {
				return false, err
			}
			return true, nil
		case !errors.Is(gerr, redis.Nil):
			err = gerr
			continue
		}
		// Nobody holds the ID: our claim never applied (or has not arrived yet). Claim again
		// with the same token; if that finds the key held, the next read tells whose it is.
		epoch, set, cerr := r.claim(ctx, key, token, ttl)
		if cerr == nil && set {
			if err := beforeRecords(issued, epoch); err != nil {
				return false, err
			}
			return true, nil
		}
		if cerr != nil {
			err = cerr
		}
	}
	return false, fmt.Errorf("redis claim: outcome unknown: %w", err)
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
// seconds): written when missing (Redis lost its data, or never had any), and raised when the
// server's run_id changes (runIDKey), which is a restart (even one that reloads a snapshot,
// which loses the claims made since) or a failover (which loses the claims the replica had not
// received). An ID issued in or before that second may have been claimed in what was lost.
const (
	epochKey = "records-since"
	runIDKey = "records-run-id"
	// newKeyMargin is how far back, in seconds, records written anew are taken to begin.
	newKeyMargin = 2
)

// claimScript is a claim, atomic with the look at the server that guards it, so the look is made
// on the very server that takes the claim whatever connection, node or failover brought it there.
//
//	KEYS: the claim, epochKey, runIDKey
//	ARGV: token, ttl in ms (0: no claim, only the look), the epoch to write if it is missing,
//	      the epoch after a run_id change (this process's last answered claim, or now),
//	      the run_id this process last saw ("" if none)
//	returns: the epoch, 1 if the claim was set, the server's run_id ("" without INFO)
//
// The run_id has changed if it is not the one recorded in Redis (the first process to see the
// new server) or not the one this process last saw (every other process: each raises the epoch to
// its own last answered claim, never lowers it). Without INFO (an ACL refusing it) only a loss of
// the whole data set is seen, by the epoch gone.
const claimScript = `
local runid = ''
local ok, info = pcall(redis.call, 'INFO', 'server')
if ok and type(info) == 'string' then runid = string.match(info, 'run_id:(%x+)') or '' end
redis.call('SET', KEYS[2], ARGV[3], 'NX')
if runid ~= '' then
  local prev = redis.call('GET', KEYS[3])
  if (prev and prev ~= runid) or (ARGV[5] ~= '' and ARGV[5] ~= runid) then
    if tonumber(redis.call('GET', KEYS[2])) < tonumber(ARGV[4]) then
      redis.call('SET', KEYS[2], ARGV[4])
    end
  end
  if prev ~= runid then redis.call('SET', KEYS[3], runid) end
end
local set = 0
if tonumber(ARGV[2]) > 0 and redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then set = 1 end
return {redis.call('GET', KEYS[2]), set, runid}
`

// claim runs claimScript: the claim of key with token for ttl (none when ttl is 0). It returns
// when the records begin and whether this call set the key.
func (r *Redis) claim(ctx context.Context, key, token string, ttl time.Duration) (epoch int64, set bool, err error) {
	now := time.Now().Unix()
	lastOK := r.lastOK.Load()
	since := lastOK
	if since == 0 || since > now {
		since = now
	}
	mine, _ := r.runID.Load().(string)
	res, err := r.client.Eval(ctx, claimScript, []string{key, r.prefix + epochKey, r.prefix + runIDKey},
		token, ttl.Milliseconds(), r.lossEpoch(now, lastOK), since, mine).Slice()
	if err != nil {
		return 0, false, err
	}
	r.lastOK.Store(time.Now().Unix())
	if len(res) != 3 {
		return 0, false, fmt.Errorf("redis claim: unexpected answer %v", res)
	}
	e, _ := res[0].(string)
	if epoch, err = strconv.ParseInt(e, 10, 64); err != nil {
		return 0, false, fmt.Errorf("redis claim: the epoch %q: %w", e, err)
	}
	n, _ := res[1].(int64)
	if id, _ := res[2].(string); id != "" {
		r.runID.Store(id)
	}
	return epoch, n == 1, nil
}

// lossEpoch is when the records begin after a loss of everything: from newKeyMargin ago, so an ID
// issued just now (its claim under way while the key was written) is not refused; and not before
// the last claim this process had answered, which the loss took. (What is left is the window a
// loss leaves: an ID another replica claimed after that, in the margin, could be claimed once
// more.)
func (r *Redis) lossEpoch(now, lastOK int64) int64 {
	return min(now, max(now-newKeyMargin, lastOK))
}

// beforeRecords is ErrBeforeRecords when issued is not after the records begin.
func beforeRecords(issued time.Time, epoch int64) error {
	if issued.Unix() <= epoch {
		return ErrBeforeRecords
	}
	return nil
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
