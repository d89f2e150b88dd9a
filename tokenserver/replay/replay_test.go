package replay

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lpauth/lpauth-operator/tokenserver/replay/replaytest"
)

// stores makes each store for a subtest. Without redis-server only the Redis subtest is
// skipped (outside CI): the memory store is always tested.
func stores() map[string]func(*testing.T) Store {
	return map[string]func(*testing.T) Store{
		"memory": func(*testing.T) Store { return NewMemory(1000, nil) },
		"redis": func(t *testing.T) Store {
			r := openStore(t, replaytest.StartRedis(t), "test:")
			return r
		},
		"redis-cluster": func(t *testing.T) Store {
			r := openStore(t, replaytest.RedisCluster(t, 3, 0).URL, "test:")
			return r
		},
	}
}

func TestExactlyOneOfManyConcurrentClaimsWins(t *testing.T) {
	for name, newStore := range stores() {
		t.Run(name, func(t *testing.T) {
			s := newStore(t)
			var wins atomic.Int64
			var wg sync.WaitGroup
			for range 1000 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ok, err := s.Claim(context.Background(), "code-1", time.Now(), time.Now().Add(time.Minute))
					if err != nil {
						t.Error(err)
					}
					if ok {
						wins.Add(1)
					}
				}()
			}
			wg.Wait()
			if wins.Load() != 1 {
				t.Errorf("%d claims won, want exactly 1", wins.Load())
			}
			if ok, _ := s.Claim(context.Background(), "code-2", time.Now(), time.Now().Add(time.Minute)); !ok {
				t.Error("a different code was refused")
			}
		})
	}
}

func TestMemoryForgetsExpiredAndIsBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	m := NewMemory(2, func() time.Time { return now })
	ctx := context.Background()
	m.Claim(ctx, "a", now, now.Add(time.Minute))
	m.Claim(ctx, "b", now, now.Add(2*time.Minute))
	if _, err := m.Claim(ctx, "c", now, now.Add(time.Minute)); !errors.Is(err, ErrFull) {
		t.Fatalf("third claim in a full store = %v, want ErrFull", err)
	}
	now = now.Add(90 * time.Second) // "a" expired
	if ok, err := m.Claim(ctx, "c", now, now.Add(time.Minute)); !ok || err != nil {
		t.Fatalf("claim after expiry = %v, %v; want true", ok, err)
	}
	if ok, _ := m.Claim(ctx, "b", now, now.Add(time.Minute)); ok {
		t.Error("b was claimed twice")
	}
}

// Check says whether a claim could be made now (full or not), without claiming: the token
// server's metrics call it on a timer, so lpauth_replay_store_up comes back once claims expire.
// An expired claim behind a long-lived one makes room too.
func TestMemoryCheckSaysWhetherItIsFull(t *testing.T) {
	now := time.Unix(1000, 0)
	m := NewMemory(2, func() time.Time { return now })
	ctx := context.Background()
	if err := m.Check(ctx); err != nil {
		t.Fatalf("Check of an empty store = %v, want nil", err)
	}
	m.Claim(ctx, "long", now, now.Add(10*time.Minute))
	m.Claim(ctx, "short", now, now.Add(time.Minute))
	if err := m.Check(ctx); !errors.Is(err, ErrFull) || KindOf(err) != KindRefused {
		t.Fatalf("Check of a full store = %v (kind %q), want ErrFull (refused)", err, KindOf(err))
	}
	if n := m.Len(); n != 2 {
		t.Errorf("Len after Check = %d, want 2: Check claims nothing", n)
	}
	now = now.Add(90 * time.Second) // "short" expired, behind "long"
	if err := m.Check(ctx); err != nil {
		t.Fatalf("Check once a claim expired = %v, want nil", err)
	}
	if ok, err := m.Claim(ctx, "next", now, now.Add(time.Minute)); !ok || err != nil {
		t.Errorf("claim after Check said there is room = %v, %v; want true", ok, err)
	}
}

// Expired IDs leave as time passes, not only when the store fills, and an ID may be claimed
// again once its first claim expired (its code can no longer be opened by then anyway).
func TestMemoryFollowsLiveCodes(t *testing.T) {
	now := time.Unix(1000, 0)
	m := NewMemory(1_000_000, func() time.Time { return now })
	ctx := context.Background()
	for i := range 5000 {
		now = now.Add(time.Millisecond)
		if ok, err := m.Claim(ctx, fmt.Sprint("code-", i), now, now.Add(time.Second)); !ok || err != nil {
			t.Fatalf("claim %d = %v, %v", i, ok, err)
		}
	}
	// Claims live one second; the last 5,000 ms made 5,000, so about 1,000 are live.
	if n := m.Len(); n > 1001 {
		t.Errorf("Len = %d after 5 s of 1 s codes, want at most 1,001", n)
	}
	if ok, _ := m.Claim(ctx, "code-4999", now, now.Add(time.Second)); ok {
		t.Error("a live code was claimed twice")
	}
	if ok, _ := m.Claim(ctx, "code-0", now, now.Add(time.Second)); !ok {
		t.Error("an ID whose claim expired could not be claimed again")
	}
	now = now.Add(2 * time.Second)
	if ok, _ := m.Claim(ctx, "code-0", now, now.Add(time.Second)); !ok {
		t.Error("the re-claimed ID could not be claimed after its second claim expired")
	}
}

// A long-lived claim at the front of the queue must not keep expired claims behind it from
// making room when the store is full.
func TestMemoryFullSweepsBehindALongClaim(t *testing.T) {
	now := time.Unix(1000, 0)
	m := NewMemory(3, func() time.Time { return now })
	ctx := context.Background()
	m.Claim(ctx, "long", now, now.Add(10*time.Minute))
	m.Claim(ctx, "b", now, now.Add(time.Minute))
	m.Claim(ctx, "c", now, now.Add(time.Minute))
	now = now.Add(2 * time.Minute)
	for _, id := range []string{"d", "e"} {
		if ok, err := m.Claim(ctx, id, now, now.Add(time.Minute)); !ok || err != nil {
			t.Fatalf("claim %s = %v, %v; want room from the expired b and c", id, ok, err)
		}
	}
	if _, err := m.Claim(ctx, "f", now, now.Add(time.Minute)); !errors.Is(err, ErrFull) {
		t.Errorf("claim with three live IDs in a store of three = %v, want ErrFull", err)
	}
	if ok, _ := m.Claim(ctx, "long", now, now.Add(time.Minute)); ok {
		t.Error("the long-lived ID was claimed twice")
	}
}

// BenchmarkMemoryClaim claims fresh IDs into a store holding about 360,000 live ones (two
// minutes of codes at 3,000/s).
func BenchmarkMemoryClaim(b *testing.B) {
	now := time.Unix(1000, 0)
	m := NewMemory(1_000_000, func() time.Time { return now })
	ctx := context.Background()
	ids := make([]string, 0, b.N+360_000)
	for i := range b.N + 360_000 {
		ids = append(ids, fmt.Sprintf("code-id-%016d", i))
	}
	for _, id := range ids[:360_000] {
		now = now.Add(333 * time.Microsecond)
		m.Claim(ctx, id, now, now.Add(2*time.Minute))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, id := range ids[360_000:] {
		now = now.Add(333 * time.Microsecond)
		if ok, err := m.Claim(ctx, id, now, now.Add(2*time.Minute)); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func TestRedisDownFailsClosed(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	r := openStore(t, "redis://"+addr+"/0", "x:")
	ok, err := r.Claim(context.Background(), "code", time.Now(), time.Now().Add(time.Minute))
	if ok || err == nil {
		t.Errorf("Claim with Redis down = %v, %v; want false and an error", ok, err)
	}
}

// delayingProxy forwards TCP connections to a Redis server and holds back the first SET: its
// reply (delayReply) or the command itself (delayRequest) by delay, longer than RedisTimeout.
// Later SETs, and every other command, pass at once.
type delayingProxy struct {
	target       string
	delay        time.Duration
	delayRequest bool
	claims       atomic.Int64 // claims seen (EVAL of the claim script, or a plain SET)
}

func startDelayingProxy(t *testing.T, redisURL string, delay time.Duration, delayRequest bool) string {
	t.Helper()
	u, err := url.Parse(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &delayingProxy{target: u.Host, delay: delay, delayRequest: delayRequest}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { p.serve(c) })
		}
	})
	return "redis://" + l.Addr().String() + "/0"
}

func (p *delayingProxy) serve(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer server.Close()
	var replyDelay atomic.Int64 // nanoseconds to hold the next reply
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, err := server.Read(buf)
			if err != nil {
				client.Close()
				return
			}
			time.Sleep(time.Duration(replyDelay.Swap(0)))
			if _, err := client.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := client.Read(buf)
		if err != nil {
			server.Close()
			break
		}
		// go-redis writes one command per write here (no pipelining), as an array of bulk
		// strings: "*9\r\n$4\r\neval\r\n…" (a claim) or "*5\r\n$3\r\nset\r\n…".
		lower := bytes.ToLower(buf[:n])
		if (bytes.Contains(lower, []byte("\r\n$4\r\neval\r\n")) || bytes.Contains(lower, []byte("\r\n$3\r\nset\r\n"))) && p.claims.Add(1) == 1 {
			if p.delayRequest {
				// The command reaches Redis late, on a connection the client has given up on.
				cmd := bytes.Clone(buf[:n])
				go func() {
					time.Sleep(p.delay)
					server.Write(cmd)
				}()
				continue
			}
			replyDelay.Store(int64(p.delay)) // before Redis can answer
		}
		if _, err := server.Write(buf[:n]); err != nil {
			break
		}
	}
	<-done
}

// TestSlowRedisReplyNeverRefusesFirstRedemption: Redis applies the first SET NX of a code but
// its reply comes after the read timeout. The first and only redemption must not be reported as
// a replay (a blind retry of the SET would find the key and say "already redeemed"), and a
// second redemption still must be.
func TestSlowRedisReplyNeverRefusesFirstRedemption(t *testing.T) {
	direct := replaytest.StartRedis(t)
	r := openStore(t, startDelayingProxy(t, direct, 2*RedisTimeout, false), "slow:")
	ctx := context.Background()
	expiry := time.Now().Add(time.Minute)
	start := time.Now()
	fresh, err := r.Claim(ctx, "code-1", time.Now(), expiry)
	if took := time.Since(start); took > ClaimTimeout+RedisTimeout {
		t.Errorf("claim took %v, want at most ClaimTimeout (%v)", took, ClaimTimeout)
	}
	if err != nil || !fresh {
		t.Fatalf("first redemption with a slow reply = %v, %v; want fresh (true, nil)", fresh, err)
	}
	if fresh, err := r.Claim(ctx, "code-1", time.Now(), expiry); fresh || err != nil {
		t.Errorf("second redemption = %v, %v; want a replay (false, nil)", fresh, err)
	}
	// Redis itself holds exactly one claim of the code.
	other := openStore(t, direct, "slow:")
	if fresh, err := other.Claim(ctx, "code-1", time.Now(), expiry); fresh || err != nil {
		t.Errorf("redemption through another replica = %v, %v; want a replay (false, nil)", fresh, err)
	}
}

// A first SET that reaches Redis only after the client gave up on it, after the claim was made
// again, is recognised as the same claim: the redemption is fresh, and later ones are replays.
func TestLateRedisSetIsTheSameClaim(t *testing.T) {
	direct := replaytest.StartRedis(t)
	r := openStore(t, startDelayingProxy(t, direct, RedisTimeout+RedisTimeout/2, true), "late:")
	ctx := context.Background()
	expiry := time.Now().Add(time.Minute)
	if fresh, err := r.Claim(ctx, "code-1", time.Now(), expiry); err != nil || !fresh {
		t.Fatalf("first redemption with a late SET = %v, %v; want fresh (true, nil)", fresh, err)
	}
	time.Sleep(RedisTimeout) // the late SET lands now
	if fresh, err := r.Claim(ctx, "code-1", time.Now(), expiry); fresh || err != nil {
		t.Errorf("second redemption = %v, %v; want a replay (false, nil)", fresh, err)
	}
}

// Regression (make faults, Redis killed): Redis restarted without persistence forgot every
// claim, and a code redeemed before could be redeemed again. A store that lost its records
// refuses IDs issued before they begin: Redis from its server's start, memory from its own.
func TestAStoreThatLostItsRecordsRefusesOlderIDs(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		now := time.Unix(1_000_000, 0)
		m := NewMemory(10, func() time.Time { return now })
		if ok, err := m.Claim(context.Background(), "from-the-last-process", now.Add(-time.Second), now.Add(time.Minute)); ok || !errors.Is(err, ErrBeforeRecords) {
			t.Error("an ID issued before the store began was accepted")
		}
		if ok, _ := m.Claim(context.Background(), "fresh", now, now.Add(time.Minute)); !ok {
			t.Error("an ID issued since the store began was refused")
		}
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		srv := replaytest.Redis(t)
		r := openStore(t, srv.URL, "test:")
		ctx := context.Background()
		// Issued after Redis started (its start is kept to the second), redeemed once.
		time.Sleep(1100 * time.Millisecond)
		issued := time.Now()
		if ok, err := r.Claim(ctx, "code-1", issued, time.Now().Add(time.Minute)); !ok || err != nil {
			t.Fatalf("first redemption: %v %v", ok, err)
		}
		time.Sleep(newKeyMargin*time.Second + 1100*time.Millisecond) // the loss comes after the margin
		srv.Restart(t)
		if ok, err := r.Claim(ctx, "code-1", issued, time.Now().Add(time.Minute)); ok || !errors.Is(err, ErrBeforeRecords) {
			t.Fatalf("the same code after Redis lost its records: %v %v, want ErrBeforeRecords", ok, err)
		}
		time.Sleep(1100 * time.Millisecond) // the records begin in the second the loss was seen
		if ok, err := r.Claim(ctx, "code-2", time.Now(), time.Now().Add(time.Minute)); !ok || err != nil {
			t.Fatalf("a code issued after the restart: %v %v, want accepted", ok, err)
		}
		if ok, err := r.Claim(ctx, "code-2", time.Now(), time.Now().Add(time.Minute)); ok || err != nil {
			t.Fatalf("the same code again: %v %v, want a replay", ok, err)
		}
	})
}

// The three kinds of Redis a URL can name.
func TestRedisURLs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url  string
		kind string
	}{
		{"redis://127.0.0.1:6379/0", "*redis.Client"},
		{"rediss://user:pw@redis.example:6380/1", "*redis.Client"},
		{"redis://127.0.0.1:26379/0?master_name=lpauth&addr=127.0.0.1:26380", "*redis.Client"}, // a failover client is a *redis.Client
		{"redis+cluster://127.0.0.1:7000?addr=127.0.0.1:7001", "*redis.ClusterClient"},
	} {
		r, err := NewRedis(tc.url, "x:")
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if got := fmt.Sprintf("%T", r.client); got != tc.kind {
			t.Errorf("%s: client %s, want %s", tc.url, got, tc.kind)
		}
		r.Close()
	}
	for _, bad := range []string{"http://127.0.0.1:6379", "redis://127.0.0.1:26379/0?master_name=x&nope=1", "redis+cluster://127.0.0.1:7000/3"} {
		if _, err := NewRedis(bad, "x:"); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

// A flush (or eviction) takes the epoch key with the claims: the records begin again when that
// is seen, so a code redeemed before does not redeem again.
func TestAFlushedRedisRefusesOlderIDs(t *testing.T) {
	t.Parallel()
	srv := replaytest.Redis(t)
	r := openStore(t, srv.URL, "test:")
	ctx := context.Background()
	time.Sleep(1100 * time.Millisecond)
	issued := time.Now()
	if ok, err := r.Claim(ctx, "code-1", issued, time.Now().Add(time.Minute)); !ok || err != nil {
		t.Fatalf("first redemption: %v %v", ok, err)
	}
	time.Sleep(newKeyMargin*time.Second + 1100*time.Millisecond) // the loss comes after the margin
	if err := r.client.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if ok, err := r.Claim(ctx, "code-1", issued, time.Now().Add(time.Minute)); ok || !errors.Is(err, ErrBeforeRecords) {
		t.Fatalf("after a flush: %v %v, want ErrBeforeRecords", ok, err)
	}
}

// A Redis Cluster failover of the claims' slot loses what the replica had not received: the
// store sees the new primary's run_id when it first connects to it, and refuses codes issued
// before its last answered claim, as with Sentinel. (Before, cluster mode had no run_id watch,
// and such a code was accepted.)
func TestAClusterFailoverRefusesCodesIssuedBeforeTheLastClaim(t *testing.T) {
	t.Parallel()
	cluster := replaytest.RedisCluster(t, 3, 1)
	r := openStore(t, cluster.URL, "test:")
	ctx := context.Background()
	// A first claim writes the epoch (2 s back); the code below is issued after it, so only the
	// run_id watch can refuse it.
	if _, err := r.Claim(ctx, "warm-up", time.Now(), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	issuedBefore := time.Now()
	time.Sleep(1100 * time.Millisecond)
	if ok, err := r.Claim(ctx, "claimed", time.Now(), time.Now().Add(time.Minute)); !ok || err != nil {
		t.Fatalf("a claim before the failover: %v %v", ok, err)
	}
	// The client holds connections to the replicas too (it may ask any node for the slots),
	// made while they were replicas.
	if err := r.client.(*redis.ClusterClient).ForEachSlave(ctx, func(ctx context.Context, c *redis.Client) error {
		return c.Ping(ctx).Err()
	}); err != nil {
		t.Fatal(err)
	}
	_, shard := cluster.PrimaryFor(t, r.prefix+epochKey)
	cluster.Failover(t, shard)
	var ok bool
	var err error
	// The client follows the MOVED answers to the new primary.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ok, err = r.Claim(ctx, "issued-before", issuedBefore, time.Now().Add(time.Minute))
		if err == nil || errors.Is(err, ErrBeforeRecords) || time.Now().After(deadline) {
			break
		}
	}
	if ok || !errors.Is(err, ErrBeforeRecords) {
		t.Fatalf("a code issued before the last claim, after a failover: %v %v, want ErrBeforeRecords", ok, err)
	}
	if ok, err := r.Claim(ctx, "claimed", time.Now(), time.Now().Add(time.Minute)); ok {
		t.Fatalf("the code claimed before the failover was claimed again (%v)", err)
	}
	if ok, err := r.Claim(ctx, "issued-after", time.Now().Add(2*time.Second), time.Now().Add(time.Minute)); !ok || err != nil {
		t.Fatalf("a code issued after the failover: %v %v, want accepted", ok, err)
	}
}

// A Redis that lost everything (restarted without persistence) right after a claim: a code
// issued before that claim, within the new epoch's margin, is refused, because the records begin
// no earlier than the last claim this process had answered. (Before, they began newKeyMargin
// seconds before the loss was seen, and such a code redeemed.)
func TestALossRefusesCodesIssuedBeforeTheLastAnsweredClaim(t *testing.T) {
	t.Parallel()
	srv := replaytest.Redis(t)
	r := openStore(t, srv.URL, "test:")
	ctx := context.Background()
	time.Sleep(1100 * time.Millisecond)
	issued := time.Now()
	time.Sleep(1100 * time.Millisecond)
	if ok, err := r.Claim(ctx, "claimed", time.Now(), time.Now().Add(time.Minute)); !ok || err != nil {
		t.Fatalf("a claim before the loss: %v %v", ok, err)
	}
	srv.Restart(t)
	var ok bool
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ok, err = r.Claim(ctx, "issued-before", issued, time.Now().Add(time.Minute))
		if err == nil || errors.Is(err, ErrBeforeRecords) || time.Now().After(deadline) {
			break
		}
	}
	if ok || !errors.Is(err, ErrBeforeRecords) {
		t.Fatalf("a code issued before the last claim, after Redis lost everything: %v %v, want ErrBeforeRecords", ok, err)
	}
}

// Regression (make faults, Redis Cluster trial): when the primary holding the claims died, the
// cluster promoted its replica within seconds, but go-redis kept sending to the dead node (it
// learns the slots again only on MOVED, or once a minute), and every claim failed for that
// minute. Each failed claim now has the client learn the slots again.
func TestAClusterPrimaryKilledIsFollowedToItsReplica(t *testing.T) {
	t.Parallel()
	cluster := replaytest.RedisCluster(t, 3, 1)
	r := openStore(t, cluster.URL, "test:")
	ctx := context.Background()
	if _, err := r.Claim(ctx, "before", time.Now(), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	_, shard := cluster.PrimaryFor(t, r.prefix+epochKey)
	cluster.KillPrimary(t, shard)
	killed := time.Now()
	for i := 0; ; i++ {
		ok, err := r.Claim(ctx, fmt.Sprint("after-", i), time.Now().Add(time.Hour), time.Now().Add(time.Minute))
		if ok && err == nil {
			t.Logf("claims answered again %s after the kill", time.Since(killed).Round(time.Millisecond))
			return
		}
		if time.Since(killed) > 15*time.Second {
			t.Fatalf("claims still fail %s after the primary died: %v", time.Since(killed).Round(time.Second), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Two token servers share a Redis that fails over: each raises the epoch to its own last
// answered claim when it first sees the new server, so a code issued after the first one's last
// claim but before the second one's is refused too. (Before, only the first process to see the
// new run_id raised the epoch, and such a code, claimed through the second and lost, redeemed.)
func TestEveryReplicaRaisesTheEpochAfterAFailover(t *testing.T) {
	t.Parallel()
	cluster := replaytest.RedisCluster(t, 1, 1)
	a := openStore(t, cluster.URL, "two:")
	b := openStore(t, cluster.URL, "two:")
	ctx := context.Background()
	claim := func(s *Redis, id string, issued time.Time) (bool, error) {
		return s.Claim(ctx, id, issued, time.Now().Add(time.Minute))
	}
	if _, err := claim(a, "warm-up", time.Now()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if ok, err := claim(a, "a-last", time.Now()); !ok || err != nil {
		t.Fatalf("a's claim: %v %v", ok, err)
	}
	time.Sleep(1100 * time.Millisecond)
	issued := time.Now() // after a's last claim
	time.Sleep(1100 * time.Millisecond)
	if ok, err := claim(b, "b-last", time.Now()); !ok || err != nil {
		t.Fatalf("b's claim: %v %v", ok, err)
	}
	cluster.Failover(t, 0)
	// a sees the new server first, then b.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := claim(a, "a-after", time.Now().Add(time.Hour)); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	var ok bool
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ok, err = claim(b, "issued-between", issued)
		if err == nil || errors.Is(err, ErrBeforeRecords) || time.Now().After(deadline) {
			break
		}
	}
	if ok || !errors.Is(err, ErrBeforeRecords) {
		t.Fatalf("a code issued before b's last claim, after the failover: %v %v, want ErrBeforeRecords", ok, err)
	}
}

// A Redis that may evict keys would forget claims (the epoch key, read on every claim, stays;
// volatile-* policies evict only keys with a TTL: the claims). Claims there are refused with a
// message that says what to set; the same Redis with noeviction takes them. (Before, found by
// review, a claim evicted under memory pressure let its code redeem again.)
func TestARedisThatMayEvictIsRefused(t *testing.T) {
	t.Parallel()
	for policy, want := range map[string]bool{"volatile-lru": false, "allkeys-lru": false, "noeviction": true} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			srv := replaytest.RedisWith(t, "--maxmemory", "64mb", "--maxmemory-policy", policy)
			r := openStore(t, srv.URL, "evict:")
			ok, err := r.Claim(context.Background(), "code", time.Now(), time.Now().Add(time.Minute))
			if want && (!ok || err != nil) {
				t.Fatalf("claim with %s: %v %v, want accepted", policy, ok, err)
			}
			if !want && (ok || err == nil || !strings.Contains(err.Error(), "maxmemory-policy noeviction")) {
				t.Fatalf("claim with %s: %v %v, want refused, saying to set maxmemory-policy noeviction", policy, ok, err)
			}
			// The metrics' view: the claim's failure and the periodic check both say refused,
			// so the replay-store alert fires before (and without) a customer's claim.
			wantKind := map[bool]Kind{true: "", false: KindRefused}[want]
			if got := KindOf(err); got != wantKind {
				t.Errorf("KindOf(claim error %v) = %q, want %q", err, got, wantKind)
			}
			if got := KindOf(r.Check(context.Background())); got != wantKind {
				t.Errorf("KindOf(Check()) with %s = %q, want %q", policy, got, wantKind)
			}
		})
	}
}

// A damaged epoch key (garbage, or another type) is taken as a loss of the records, not as a
// reason to fail every claim forever; and a code whose claim was answered is never refused as
// already redeemed because its answer could not be read. (Before, found by review: the claim was
// set, the answer failed to parse, and the retry said "already redeemed".)
func TestADamagedEpochIsALossNotAWedge(t *testing.T) {
	t.Parallel()
	srv := replaytest.Redis(t)
	r := openStore(t, srv.URL, "damaged:")
	ctx := context.Background()
	for _, damage := range []func() error{
		func() error { return r.client.Set(ctx, "damaged:"+epochKey, "garbage", 0).Err() },
		func() error {
			r.client.Del(ctx, "damaged:"+epochKey)
			return r.client.HSet(ctx, "damaged:"+epochKey, "a", "b").Err()
		},
		func() error { return r.client.Set(ctx, "damaged:"+runIDKey, "not-a-run-id", 0).Err() },
	} {
		if err := damage(); err != nil {
			t.Fatal(err)
		}
		id := rand.Text()
		if ok, err := r.Claim(ctx, id, time.Now().Add(time.Second), time.Now().Add(time.Minute)); !ok || err != nil {
			t.Fatalf("a first claim after the damage: %v %v, want accepted", ok, err)
		}
		if ok, err := r.Claim(ctx, id, time.Now().Add(time.Second), time.Now().Add(time.Minute)); ok || err != nil {
			t.Fatalf("the same code again: %v %v, want a replay", ok, err)
		}
	}
}

// Two token servers share a Redis that fails over, and the failover loses a claim the second
// made after the first's last claim: the code, presented again through the first, is refused.
// (Before, found by review, each raised the records' start only to its own last claim.)
func TestAFailoverCoversTheOtherReplicasClaims(t *testing.T) {
	t.Parallel()
	cluster := replaytest.RedisCluster(t, 1, 1)
	a := openStore(t, cluster.URL, "other:")
	b := openStore(t, cluster.URL, "other:")
	ctx := context.Background()
	if _, err := a.Claim(ctx, "a-last", time.Now(), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	issued := time.Now() // after a's last claim
	if ok, err := b.Claim(ctx, "via-b", issued, time.Now().Add(time.Minute)); !ok || err != nil {
		t.Fatalf("b's claim: %v %v", ok, err)
	}
	cluster.Failover(t, 0)
	// What the failover lost: the claim b made (the replica had it; remove it to stand for the
	// claims asynchronous replication had not carried yet).
	primary, _ := cluster.PrimaryFor(t, "{other:}via-b")
	if err := primary.Client().Del(ctx, "{other:}via-b").Err(); err != nil {
		t.Fatal(err)
	}
	var ok bool
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ok, err = a.Claim(ctx, "via-b", issued, time.Now().Add(time.Minute))
		if err == nil || errors.Is(err, ErrBeforeRecords) || time.Now().After(deadline) {
			break
		}
	}
	if ok || !errors.Is(err, ErrBeforeRecords) {
		t.Fatalf("b's lost claim presented through a after the failover: %v %v, want ErrBeforeRecords", ok, err)
	}
}

// openStore connects a Redis store for the test, closed when it ends.
func openStore(t *testing.T, url, prefix string) *Redis {
	t.Helper()
	r, err := NewRedis(url, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// Each way a claim fails has its kind, for the metrics: nothing listening is unavailable, and
// an unknown error (another store's) is unknown; an answer is no failure.
func TestClaimErrorsHaveAKind(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	r := openStore(t, "redis://"+addr, "down:")
	_, claimErr := r.Claim(context.Background(), "code", time.Now(), time.Now().Add(time.Minute))
	for name, tc := range map[string]struct {
		err  error
		want Kind
	}{
		"claim, nothing listening": {claimErr, KindUnavailable},
		"check, nothing listening": {r.Check(context.Background()), KindUnavailable},
		"memory store full":        {ErrFull, KindRefused},
		"before the records":       {ErrBeforeRecords, ""},
		"no error":                 {nil, ""},
		"another store's error":    {errors.New("boom"), KindUnknown},
		"wrapped":                  {fmt.Errorf("replay store: %w", &Error{Kind: KindUnknown, Err: errors.New("lost reply")}), KindUnknown},
	} {
		if got := KindOf(tc.err); got != tc.want {
			t.Errorf("%s: KindOf(%v) = %q, want %q", name, tc.err, got, tc.want)
		}
	}
}
