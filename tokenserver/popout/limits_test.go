package popout_test

import (
	"encoding/binary"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lpauth/lpauth-operator/api/branding"
	"github.com/lpauth/lpauth-operator/tokenserver/limiter"
	"github.com/lpauth/lpauth-operator/tokenserver/popout"
)

// postLogin posts the login form as forwarded for an address (none when forwardedFor is empty)
// and returns the status and the page.
func postLogin(t *testing.T, c *http.Client, f *fixture, form url.Values, forwardedFor string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/authorize/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if forwardedFor != "" {
		req.Header.Set("X-Forwarded-For", forwardedFor)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestLoginLimiterMemoryIsBounded: failures with distinct user names from distinct addresses,
// none drained (the clock stands still), stay within a fixed number of counters of a fixed size.
// Not parallel: it measures the heap.
func TestLoginLimiterMemoryIsBounded(t *testing.T) {
	const failures = 200_000
	l := limiter.NewFailureLimiter(5, 12*time.Second) // the login form's default
	start := time.Now()
	l.Now = func() time.Time { return start }
	name := []byte(strings.Repeat("n", 256)) // the longest user name that is counted per name
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range failures {
		binary.BigEndian.PutUint32(name, uint32(i))
		addr := netip.AddrFrom4([4]byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}).String()
		popout.FailLogin(l, string(name), "guess", addr)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if got, want := l.Len(), limiter.DefaultMaxEntries; got > want {
		t.Errorf("after %d failures: got %d counters, want at most %d", failures, got, want)
	}
	const maxHeap = 8 << 20
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d failures: %d counters, heap grew by %d bytes", failures, l.Len(), grew)
	if grew > maxHeap {
		t.Errorf("after %d failures: the heap grew by %d bytes, want at most %d", failures, grew, maxHeap)
	}
	runtime.KeepAlive(l)
}

// TestLongUserNameIsRefusedBeforeBcrypt: an over-long user name or password gets the usual
// "wrong user name or password" page without a bcrypt (or a hash of the name). Not parallel: it
// counts bcrypt calls.
func TestLongUserNameIsRefusedBeforeBcrypt(t *testing.T) {
	f := newFixture(t, staticUsers())
	c := browser(t)
	form := loginForm(t, c, authorizeURL(f))
	for _, tc := range []struct {
		name, user, password string
		bcrypts              int64
	}{
		{"60 KB user name", strings.Repeat("u", 60<<10), "lpauth-demo", 0},
		{"257-byte user name", strings.Repeat("u", 257), "lpauth-demo", 0},
		{"73-byte password", "demo", strings.Repeat("p", 73), 0},
		{"wrong password", "demo", "nope", 1},
	} {
		form.Set("username", tc.user)
		form.Set("password", tc.password)
		calls := popout.BcryptCalls()
		status, page := postLogin(t, c, f, form, "")
		if status != http.StatusUnauthorized || !strings.Contains(page, branding.DefaultText.WrongCredentials) {
			t.Errorf("%s: got %d, want 401 with the wrong user name or password page", tc.name, status)
		}
		if got := popout.BcryptCalls() - calls; got != tc.bcrypts {
			t.Errorf("%s: got %d bcrypt comparisons, want %d", tc.name, got, tc.bcrypts)
		}
	}
}

// TestSharedIngressAddressDoesNotLockOutEveryone: behind an ingress every request comes from
// the ingress's address. Failures are counted for the forwarded client address, so an attacker
// holds up only their own address, and guessing one person's password from one address does not
// lock that person out elsewhere.
func TestSharedIngressAddressDoesNotLockOutEveryone(t *testing.T) {
	t.Parallel()
	f := newFixtureBehind(t, []string{"127.0.0.0/8"}, staticUsers()) // the test's requests come through "the ingress"
	const attackerAddr = "203.0.113.7"
	attacker := browser(t)
	form := loginForm(t, attacker, authorizeURL(f))
	try := func(c *http.Client, form url.Values, user, password, from string) int {
		form.Set("username", user)
		form.Set("password", password)
		status, _ := postLogin(t, c, f, form, from)
		return status
	}
	// Guessing demo's password from one address, then names too long to be anyone's: those cost
	// no bcrypt, so the address reaches its limit in moments, before anything drains.
	for i := range 5 {
		if got := try(attacker, form, "demo", "guess", attackerAddr); got != http.StatusUnauthorized {
			t.Fatalf("the attacker's guess %d: got %d, want 401", i+1, got)
		}
	}
	if !floodUntilLimited(t, attacker, f, form, attackerAddr) {
		t.Fatal("the attacker's address: never got 429")
	}
	if got := try(attacker, form, "demo", "lpauth-demo", attackerAddr); got != http.StatusTooManyRequests {
		t.Errorf("demo's password from the attacker's address: got %d, want 429", got)
	}

	person := browser(t)
	own := loginForm(t, person, authorizeURL(f))
	if got := try(person, own, "someone", "typo", "198.51.100.9"); got != http.StatusUnauthorized {
		t.Errorf("a mistyped login from another address: got %d, want 401, not 429", got)
	}
	if got := try(person, loginForm(t, person, authorizeURL(f)), "demo", "lpauth-demo", "198.51.100.10"); got != http.StatusFound {
		t.Errorf("demo signing in from their own address: got %d, want 302", got)
	}
}

// TestForwardedForFromAnUntrustedPeerIsNotBelieved: without trusted proxies an attacker does
// not escape its address's limit by writing X-Forwarded-For.
func TestForwardedForFromAnUntrustedPeerIsNotBelieved(t *testing.T) {
	t.Parallel()
	f := newFixture(t, staticUsers())
	c := browser(t)
	form := loginForm(t, c, authorizeURL(f))
	if !floodUntilLimited(t, c, f, form, "") {
		t.Error("failures with a different forged X-Forwarded-For each: never got 429")
	}
}

// floodUntilLimited posts user names too long to be anyone's (no bcrypt; they count against the
// address alone) until the address gets 429, with a different X-Forwarded-For each time when
// forwardedFor is empty. It reports whether 429 came within 40 attempts.
func floodUntilLimited(t *testing.T, c *http.Client, f *fixture, form url.Values, forwardedFor string) bool {
	t.Helper()
	form.Set("username", strings.Repeat("x", 300))
	form.Set("password", "guess")
	for i := range 40 {
		from := forwardedFor
		if from == "" {
			from = netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}).String()
		}
		status, _ := postLogin(t, c, f, form, from)
		switch status {
		case http.StatusTooManyRequests:
			return true
		case http.StatusUnauthorized:
		default:
			t.Fatalf("attempt %d: got %d, want 401 or 429", i+1, status)
		}
	}
	return false
}

// TestManyAddressesGuessingOneUserDoNotLockThemOut: the loose per-user limit refuses only
// addresses that already failed for that user.
func TestManyAddressesGuessingOneUserDoNotLockThemOut(t *testing.T) {
	t.Parallel()
	l := limiter.NewFailureLimiter(5, 12*time.Second)
	start := time.Now()
	l.Now = func() time.Time { return start }
	addr := func(i int) string { return netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}).String() }
	for i := range 50 { // 200 failures on one user, 4 per address: under the per-address limits
		for range 4 {
			popout.FailLogin(l, "demo", "guess", addr(i))
		}
	}
	if popout.AllowLogin(l, "demo", "guess", addr(0)) {
		t.Error("an address that failed for demo, once demo is over the per-user limit: allowed, want refused")
	}
	if !popout.AllowLogin(l, "demo", "lpauth-demo", "198.51.100.9") {
		t.Error("demo from an address that never failed: refused, want allowed")
	}
	if !popout.AllowLogin(l, "someone-else", "guess", addr(0)) {
		t.Error("another user from an attacking address under its limits: refused, want allowed")
	}
}
