package popout_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// The upstreamOIDC connector against a third-party OpenID provider running in the test
// (github.com/oauth2-proxy/mockoidc: discovery, code flow with PKCE and nonce, RS256 id_tokens).

func startIdP(t *testing.T, middleware ...func(http.Handler) http.Handler) *mockoidc.MockOIDC {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, mw := range middleware {
		if err := m.AddMiddleware(mw); err != nil {
			t.Fatal(err)
		}
	}
	m.ClientID, m.ClientSecret = "lpauth-upstream", "upstream-secret" // the fixture's "oidc" Secret
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return m
}

func upstreamLogin(m *mockoidc.MockOIDC) *v1alpha1.LoginSpec {
	return upstreamLoginAt(m.Issuer(), m.ClientID)
}

func upstreamLoginAt(issuer, clientID string) *v1alpha1.LoginSpec {
	return &v1alpha1.LoginSpec{UpstreamOIDC: &v1alpha1.UpstreamOIDCLogin{Issuer: issuer, ClientID: clientID,
		ClientSecretRef: v1alpha1.SecretKeyRef{Name: "oidc", Key: "secret"}, Scopes: []string{"openid", "email", "profile"}}}
}

// follow GETs u and returns the Location of the redirect, failing on anything else.
func follow(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GET %s: %d, want a redirect", u[:min(len(u), 80)], resp.StatusCode)
	}
	return resp.Header.Get("Location")
}

func TestUpstreamOIDC(t *testing.T) {
	t.Parallel()
	m := startIdP(t)
	f := newFixture(t, upstreamLogin(m))
	m.QueueUser(&mockoidc.MockUser{Subject: "okta|00u1abc", Email: "ada@brand.example", PreferredUsername: "ada"})

	c := browser(t)
	state := `{"w":"` + strings.Repeat("s", 2000) + `"}`
	toIdP := follow(t, c, authorizeURL(f, "state", state))
	u, _ := url.Parse(toIdP)
	q := u.Query()
	if !strings.HasPrefix(toIdP, m.AuthorizationEndpoint()) || q.Get("nonce") == "" || q.Get("code_challenge_method") != "S256" ||
		q.Get("redirect_uri") != f.srv.URL+"/authorize/callback" || q.Get("client_id") != m.ClientID {
		t.Fatalf("to the identity provider: %s", toIdP)
	}
	callback := follow(t, c, toIdP)
	back := follow(t, c, callback)
	if !strings.HasPrefix(back, window+"?code=") || !strings.HasSuffix(back, "&state="+url.QueryEscape(state)) {
		t.Fatalf("back to the window: %q", back)
	}
	bu, _ := url.Parse(back)
	p, err := f.snap.Codes.Open(bu.Query().Get("code"), f.now())
	if err != nil || p.Subject != "okta|00u1abc" || !strings.Contains(string(p.Claims), "ada@brand.example") {
		t.Fatalf("code: %+v %v", p, err)
	}
	redeem(t, f, back)

	// The callback is single use and bound to the browser that started the login.
	if resp, _ := c.Get(callback); resp.StatusCode != http.StatusForbidden {
		t.Errorf("callback replayed: %d, want 403", resp.StatusCode)
	}
	other := browser(t)
	follow(t, other, authorizeURL(f))
	toIdP2 := follow(t, other, authorizeURL(f))
	callback2 := follow(t, other, toIdP2)
	if resp, _ := browser(t).Get(callback2); resp.StatusCode != http.StatusForbidden {
		t.Errorf("callback in another browser: %d, want 403", resp.StatusCode)
	}
	cb, _ := url.Parse(callback2)
	forged := cb.Query()
	forged.Set("state", "forged")
	cb.RawQuery = forged.Encode()
	if resp, _ := other.Get(cb.String()); resp.StatusCode != http.StatusForbidden {
		t.Errorf("callback with a forged state: %d, want 403", resp.StatusCode)
	}
}

func TestUpstreamOIDCFailuresGoBackToTheWindow(t *testing.T) {
	t.Parallel()
	m := startIdP(t)
	f := newFixture(t, upstreamLogin(m))

	// The provider refuses the person.
	c := browser(t)
	toIdP := follow(t, c, authorizeURL(f, "state", "st"))
	cb, _ := url.Parse(follow(t, c, toIdP))
	q := cb.Query()
	q.Del("code")
	q.Set("error", "access_denied")
	cb.RawQuery = q.Encode()
	if loc := follow(t, c, cb.String()); !strings.HasPrefix(loc, window+"?error=access_denied") || !strings.HasSuffix(loc, "&state=st") {
		t.Errorf("refused upstream: %q", loc)
	}

	// The token exchange fails.
	c = browser(t)
	toIdP = follow(t, c, authorizeURL(f, "state", "st"))
	callback := follow(t, c, toIdP)
	m.QueueError(&mockoidc.ServerError{Code: http.StatusInternalServerError, Error: "server_error", Description: "down"})
	if loc := follow(t, c, callback); !strings.HasPrefix(loc, window+"?error=server_error") {
		t.Errorf("failed exchange: %q", loc)
	}
}

func TestPopoutInBrowserUpstreamOIDC(t *testing.T) {
	ctx := browserContext(t)
	_, windowURL, got := lpWindow(t)
	m := startIdP(t)
	f := newFixture(t, upstreamLogin(m), windowURL)
	state := windowState()
	// The first action starts the browser, which lives as long as that action's context.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(waitCtx,
		chromedp.Navigate(authorizeURL(f, "redirect_uri", windowURL, "state", state)),
		chromedp.WaitVisible(`#window`),
	); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		html, _ := chromedp.Run(ctx, chromedp.OuterHTML(`html`))
		t.Fatalf("browser: %v (at %s: %.300s)", err, loc, html)
	}
	checkWindowQuery(t, f, windowURL, waitWindow(t, got), state)
}

// slowIdP is an identity provider whose discovery document takes its time: answer decides, per
// request, after how long and with what (ok false: a 503). It counts discovery requests.
type slowIdP struct {
	srv       *httptest.Server
	discovery atomic.Int64
	answer    func(r *http.Request) (ok bool)
}

func startSlowIdP(t *testing.T, answer func(r *http.Request) bool) *slowIdP {
	t.Helper()
	idp := &slowIdP{answer: answer}
	idp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		idp.discovery.Add(1)
		if !idp.answer(r) {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		u := idp.srv.URL
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"issuer":%q,"authorization_endpoint":%q,"token_endpoint":%q,"jwks_uri":%q,"id_token_signing_alg_values_supported":["RS256"]}`,
			u, u+"/authorize", u+"/token", u+"/jwks")
	}))
	t.Cleanup(idp.srv.Close)
	return idp
}

// authorizeStatus GETs /authorize as a new browser and returns the status, and for a
// redirect where it goes.
func authorizeStatus(t *testing.T, f *fixture) (int, string, error) {
	resp, err := browser(t).Get(authorizeURL(f))
	if err != nil {
		return 0, "", err
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location"), nil
}

// TestSlowUpstreamDoesNotSerialiseAuthorize: visitors arriving together while the identity
// provider is slow share one discovery fetch and all answer after about one fetch time, not
// one after the other (N fetch times), whether the provider then answers or fails.
func TestSlowUpstreamDoesNotSerialiseAuthorize(t *testing.T) {
	t.Parallel()
	const visitors, fetchTime = 10, 300 * time.Millisecond
	for _, tc := range []struct {
		name string
		up   bool
		want int
	}{
		{"provider answers", true, http.StatusFound},
		{"provider fails", false, http.StatusBadGateway},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			idp := startSlowIdP(t, func(*http.Request) bool { time.Sleep(fetchTime); return tc.up })
			f := newFixture(t, upstreamLoginAt(idp.srv.URL, "lpauth-upstream"))
			start := time.Now()
			var wg sync.WaitGroup
			for range visitors {
				wg.Go(func() {
					code, loc, err := authorizeStatus(t, f)
					if err != nil || code != tc.want || (tc.up && !strings.HasPrefix(loc, idp.srv.URL+"/authorize?")) {
						t.Errorf("GET /authorize = %d %q %v, want %d", code, loc, err, tc.want)
					}
				})
			}
			wg.Wait()
			// One fetch is fetchTime; serialised, ten would be 3 s.
			if took := time.Since(start); took > 3*fetchTime {
				t.Errorf("%d concurrent visitors took %v, want about one fetch (%v)", visitors, took, fetchTime)
			}
			if n := idp.discovery.Load(); n != 1 {
				t.Errorf("%d discovery requests for %d concurrent visitors, want 1", n, visitors)
			}
		})
	}
}

// TestUpstreamFailureIsNegativelyCached: a down identity provider is asked once per window
// (10 s), not once per visitor; once it is back, the next window's visitor finds it, and its
// document is then kept.
func TestUpstreamFailureIsNegativelyCached(t *testing.T) {
	t.Parallel()
	var up atomic.Bool
	idp := startSlowIdP(t, func(*http.Request) bool { return up.Load() })
	f := newFixture(t, upstreamLoginAt(idp.srv.URL, "lpauth-upstream"))
	expect := func(wantCode int, wantFetches int64) {
		t.Helper()
		if code, _, err := authorizeStatus(t, f); err != nil || code != wantCode {
			t.Fatalf("GET /authorize = %d %v, want %d", code, err, wantCode)
		}
		if n := idp.discovery.Load(); n != wantFetches {
			t.Fatalf("%d discovery requests, want %d", n, wantFetches)
		}
	}
	for range 5 {
		expect(http.StatusBadGateway, 1)
	}
	f.clock.Add(5)
	expect(http.StatusBadGateway, 1) // still within the window
	f.clock.Add(6)
	expect(http.StatusBadGateway, 2) // the next window asks once more
	up.Store(true)
	expect(http.StatusBadGateway, 2) // back, but not asked again before the window ends
	f.clock.Add(11)
	expect(http.StatusFound, 3)
	for range 5 {
		expect(http.StatusFound, 3)
	}
}

// TestUpstreamWaitHonoursRequestContext: a visitor waiting for a discovery fetch in flight
// stops waiting as soon as it gives up, and the visitor who started the fetch leaving does not
// cancel it: once the provider answers, the document is cached for everyone.
func TestUpstreamWaitHonoursRequestContext(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	asked := make(chan struct{}, 10)
	idp := startSlowIdP(t, func(r *http.Request) bool {
		select {
		case asked <- struct{}{}:
		default:
		}
		select {
		case <-release:
			return true
		case <-r.Context().Done():
			return false
		}
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	f := newFixture(t, upstreamLoginAt(idp.srv.URL, "lpauth-upstream"))
	handler := f.srv.Config.Handler

	// visit serves /authorize in this process, so the test sees when the handler itself returns.
	visit := func(ctx context.Context) <-chan int {
		done := make(chan int, 1)
		go func() {
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, authorizeURL(f), nil))
			done <- rec.Code
		}()
		return done
	}
	first, leaveFirst := context.WithCancel(context.Background())
	firstDone := visit(first)
	select {
	case <-asked:
	case <-time.After(5 * time.Second):
		t.Fatal("the provider was not asked for its discovery document")
	}

	second, leaveSecond := context.WithCancel(context.Background())
	secondDone := visit(second)
	time.Sleep(50 * time.Millisecond) // the second visitor is waiting now
	leaveSecond()
	select {
	case <-secondDone:
	case <-time.After(time.Second):
		t.Error("a visitor who gave up was still waiting for the fetch 1 s later")
	}
	leaveFirst()
	select {
	case <-firstDone:
	case <-time.After(time.Second):
		t.Error("the visitor who started the fetch was still waiting 1 s after it gave up")
	}

	close(release)
	// The fetch both left behind completes and serves later visitors without a second one.
	deadline := time.Now().Add(5 * time.Second)
	for {
		code := <-visit(context.Background())
		if code == http.StatusFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /authorize = %d after the provider answered, want %d", code, http.StatusFound)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := idp.discovery.Load(); n != 1 {
		t.Errorf("%d discovery requests, want 1: a visitor leaving cancelled the shared fetch", n)
	}
}

// TestUpstreamKeysAreFetchedOnceAcrossLogins: the provider's JWKS is cached across logins, not
// fetched again to verify every id_token.
func TestUpstreamKeysAreFetchedOnceAcrossLogins(t *testing.T) {
	t.Parallel()
	var jwks atomic.Int64
	m := startIdP(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == mockoidc.JWKSEndpoint {
				jwks.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	})
	f := newFixture(t, upstreamLogin(m))
	for range 3 {
		c := browser(t)
		back := follow(t, c, follow(t, c, follow(t, c, authorizeURL(f))))
		if !strings.HasPrefix(back, window+"?code=") {
			t.Fatalf("back to the window: %q", back)
		}
	}
	if n := jwks.Load(); n != 1 {
		t.Errorf("%d JWKS requests for 3 logins, want 1", n)
	}
}

// TestStaleUpstreamDocumentServesWhileRefreshed: after an hour the discovery document is
// fetched again in the background; visitors keep the last good one meanwhile, and when the
// provider is down, still (and it is asked once per window, not per visitor).
func TestStaleUpstreamDocumentServesWhileRefreshed(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	idp := startSlowIdP(t, func(*http.Request) bool { return !down.Load() })
	f := newFixture(t, upstreamLoginAt(idp.srv.URL, "lpauth-upstream"))
	if code, _, err := authorizeStatus(t, f); err != nil || code != http.StatusFound {
		t.Fatalf("GET /authorize = %d %v, want %d", code, err, http.StatusFound)
	}
	down.Store(true)
	f.clock.Add(3601)
	for range 5 {
		if code, _, err := authorizeStatus(t, f); err != nil || code != http.StatusFound {
			t.Fatalf("GET /authorize with a stale document and the provider down = %d %v, want %d", code, err, http.StatusFound)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); idp.discovery.Load() < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stale document was not fetched again")
		}
	}
	time.Sleep(50 * time.Millisecond)
	if n := idp.discovery.Load(); n != 2 {
		t.Errorf("%d discovery requests, want 2 (one at start, one refresh)", n)
	}
}
