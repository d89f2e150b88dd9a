package limiter_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/lpauth/lpauth-operator/tokenserver/limiter"
)

func stoppedClock(l *limiter.FailureLimiter) *time.Time {
	now := time.Unix(1_800_000_000, 0)
	l.Now = func() time.Time { return now }
	return &now
}

func TestFailureLimiterAllowsBurstThenOnePerInterval(t *testing.T) {
	t.Parallel()
	l := limiter.NewFailureLimiter(3, 10*time.Second)
	now := stoppedClock(l)
	k, rule := limiter.KeyOf("test", "a"), l.Rule
	for i := range 3 {
		if ok, _ := l.Allow(k, rule); !ok {
			t.Fatalf("failure %d: refused, want allowed", i+1)
		}
		l.Fail(k, rule)
	}
	ok, wait := l.Allow(k, rule)
	if ok || wait != 10*time.Second {
		t.Fatalf("after the burst: got allowed %v, wait %v, want refused for 10s", ok, wait)
	}
	*now = now.Add(wait)
	if ok, _ := l.Allow(k, rule); !ok {
		t.Fatal("after the wait: refused, want allowed")
	}
	l.Fail(k, rule)
	if ok, _ := l.Allow(k, rule); ok {
		t.Fatal("one failure after the wait: allowed, want refused")
	}
	if ok, _ := l.Allow(limiter.KeyOf("test", "b"), rule); !ok {
		t.Fatal("another key: refused, want allowed")
	}
	*now = now.Add(time.Minute)
	if l.Failing(k) {
		t.Fatal("a minute later: still failing, want drained")
	}
}

// TestFailureLimiterForgetsTheCounterClosestToDraining: a full table drops drained counters, then
// the emptiest; an attacker's flood of fresh counters does not push out a full one.
func TestFailureLimiterForgetsTheCounterClosestToDraining(t *testing.T) {
	t.Parallel()
	l := limiter.NewFailureLimiter(5, 12*time.Second)
	l.MaxEntries = 100
	now := stoppedClock(l)
	victim := limiter.KeyOf("test", "victim")
	for range 5 {
		l.Fail(victim, l.Rule)
	}
	for i := range 10_000 {
		l.Fail(limiter.KeyOf("test", strconv.Itoa(i)), l.Rule)
	}
	if got := l.Len(); got != 100 {
		t.Errorf("counters: got %d, want 100", got)
	}
	if ok, _ := l.Allow(victim, l.Rule); ok {
		t.Error("the victim's full counter after a flood of fresh ones: allowed, want still refused")
	}
	*now = now.Add(13 * time.Second) // the fresh counters drained, the victim's did not
	l.Fail(limiter.KeyOf("test", "new"), l.Rule)
	if got := l.Len(); got != 2 {
		t.Errorf("counters after the fresh ones drained: got %d, want 2", got)
	}
}

func TestKeyOfSeparatesParts(t *testing.T) {
	t.Parallel()
	if limiter.KeyOf("ab", "c") == limiter.KeyOf("a", "bc") {
		t.Error(`KeyOf("ab", "c") == KeyOf("a", "bc"), want different keys`)
	}
}

func TestNetworkCountsIPv6Per64(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"203.0.113.7":          "203.0.113.7",
		"::ffff:203.0.113.7":   "203.0.113.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2::99":     "2001:db8:1:2::/64",
		"not an address":       "not an address",
	} {
		if got := limiter.Network(in); got != want {
			t.Errorf("Network(%q): got %q, want %q", in, got, want)
		}
	}
}
