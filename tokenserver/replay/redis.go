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
	if refused(err) {
		return false, &Error{Kind: KindRefused, Err: fmt.Errorf("redis refused the claim: %w", err)}
	}
	if notSent(err) {
		return false, &Error{Kind: KindUnavailable, Err: fmt.Errorf("redis claim: %w", err)}
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
	return false, &Error{Kind: KindUnknown, Err: fmt.Errorf("redis claim: outcome unknown: %w", err)}
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
// seconds, by Redis's clock): written when missing or damaged (Redis lost its data, or never had
// any), and raised to now when the server's run_id is not the one recorded in runIDKey, which is
// a restart (even one that reloads a snapshot, which loses the claims made since) or a failover
// (which loses the claims the replica had not received, whichever token server made them). An ID
// issued in or before that second may have been claimed in what was lost.
const (
	epochKey = "records-since"
	runIDKey = "records-run-id"
	// newKeyMargin is how far back, in seconds, records written anew are taken to begin.
	newKeyMargin = 2
)

// claimScript is a claim, atomic with the look at the server that guards it, so the look is made
// on the very server that takes the claim, whatever connection, node or failover brought it
// there, and by that server's clock.
//
//	KEYS: the claim, epochKey, runIDKey
//	ARGV: token, ttl in ms (0: no claim, only the look), this process's last answered claim
//	      (Unix seconds, 0 if none), newKeyMargin
//
// A missing or damaged epoch means the records were lost: they begin now less newKeyMargin (an ID
// issued just now, its claim under way, is not refused), and not before this process's last
// answered claim (capped at now: a process whose clock runs ahead cannot lock every code out).
//
//	returns: the epoch, and 1 if the claim was set
//
// A Redis that may evict keys (maxmemory with a policy other than noeviction) is refused: an
// evicted claim would let its code redeem again. Without INFO (an ACL refusing it) neither that
// nor the run_id is looked at, and only a loss of the whole data set is seen, by the epoch gone.
const claimScript = `
local now = tonumber(redis.call('TIME')[1])
local ok, mem = pcall(redis.call, 'INFO', 'memory')
if ok and type(mem) == 'string' then
  local maxmemory = tonumber(string.match(mem, 'maxmemory:(%d+)') or '0')
  local policy = string.match(mem, 'maxmemory_policy:([%w-]+)') or 'noeviction'
  if maxmemory > 0 and policy ~= 'noeviction' then
    return redis.error_reply('REFUSED maxmemory-policy is ' .. policy .. ': Redis may evict claims, and a code could then redeem twice; set maxmemory-policy noeviction')
  end
end
local okg, raw = pcall(redis.call, 'GET', KEYS[2])
local epoch = nil
if okg then epoch = tonumber(raw) end
if epoch == nil then
  epoch = math.min(now, math.max(now - tonumber(ARGV[4]), tonumber(ARGV[3])))
  redis.call('DEL', KEYS[2])
  redis.call('SET', KEYS[2], epoch)
end
local oki, info = pcall(redis.call, 'INFO', 'server')
if oki and type(info) == 'string' then
  local runid = string.match(info, 'run_id:(%x+)')
  if runid then
    local okp, prev = pcall(redis.call, 'GET', KEYS[3])
    if not okp or prev ~= runid then
      if (not okp or prev) and epoch < now then
        epoch = now
        redis.call('SET', KEYS[2], epoch)
      end
      redis.call('DEL', KEYS[3])
      redis.call('SET', KEYS[3], runid)
    end
  end
end
local set = 0
if tonumber(ARGV[2]) > 0 and redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then set = 1 end
return {epoch, set}
`

// claim runs claimScript: the claim of key with token for ttl (none when ttl is 0). It returns
// when the records begin and whether this call set the key.
func (r *Redis) claim(ctx context.Context, key, token string, ttl time.Duration) (epoch int64, set bool, err error) {
	res, err := r.client.Eval(ctx, claimScript, []string{key, r.prefix + epochKey, r.prefix + runIDKey},
		token, ttl.Milliseconds(), r.lastOK.Load(), newKeyMargin).Slice()
	if err != nil {
		return 0, false, err
	}
	r.lastOK.Store(time.Now().Unix())
	if len(res) != 2 {
		return 0, false, fmt.Errorf("redis claim: unexpected answer %v", res)
	}
	epoch, ok := res[0].(int64)
	n, _ := res[1].(int64)
	if !ok {
		return 0, false, fmt.Errorf("redis claim: unexpected epoch %v", res[0])
	}
	return epoch, n == 1, nil
}

// beforeRecords is ErrBeforeRecords when issued is not after the records begin.
func beforeRecords(issued time.Time, epoch int64) error {
	if issued.Unix() <= epoch {
		return ErrBeforeRecords
	}
	return nil
}

// refused reports an error answer from Redis (the script refused, or Redis could not run it:
// an ACL, LOADING, CLUSTERDOWN, READONLY): the claim was not made, so there is nothing to read
// back.
func refused(err error) bool {
	var reply redis.Error
	return errors.As(err, &reply)
}

// notSent reports errors that leave no doubt the command never reached Redis: no connection
// could be dialled or taken from the pool. Reading the key back would only wait again.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" || errors.Is(err, redis.ErrPoolTimeout)
}

// Check runs the claim script without claiming anything: the same look at the server a claim
// makes (eviction policy, restart, lost records) on a timer, so a Redis that would refuse or fail
// claims shows in the metrics before a customer's code is refused, and when no codes are
// redeemed. Its error has the Kind a claim's would.
func (r *Redis) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.ClaimTimeout)
	defer cancel()
	_, _, err := r.claim(ctx, r.prefix+"check", "", 0)
	switch {
	case err == nil:
		return nil
	case refused(err):
		return &Error{Kind: KindRefused, Err: fmt.Errorf("redis refused the check: %w", err)}
	case notSent(err):
		return &Error{Kind: KindUnavailable, Err: fmt.Errorf("redis check: %w", err)}
	}
	return &Error{Kind: KindUnavailable, Err: fmt.Errorf("redis check: %w", err)}
}

// Ping checks the connection (readiness).
func (r *Redis) Ping(ctx context.Context) error { return r.client.Ping(ctx).Err() }

// Close releases the connections.
func (r *Redis) Close() error { return r.client.Close() }
