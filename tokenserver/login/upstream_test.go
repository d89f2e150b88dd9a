package login_test

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// The upstreamOIDC connector against a third-party OpenID provider running in the test
// (github.com/oauth2-proxy/mockoidc: discovery, code flow with PKCE and nonce, RS256 id_tokens).

func startIdP(t *testing.T) *mockoidc.MockOIDC {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
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
	return &v1alpha1.LoginSpec{UpstreamOIDC: &v1alpha1.UpstreamOIDCLogin{Issuer: m.Issuer(), ClientID: m.ClientID,
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
