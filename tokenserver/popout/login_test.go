package popout_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lpauth/lpauth-operator/api/credentials"
	"github.com/lpauth/lpauth-operator/api/keys"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/tokenserver/limiter"
	"github.com/lpauth/lpauth-operator/tokenserver/replay"
	"github.com/lpauth/lpauth-operator/tokenserver/server"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

const (
	window       = "https://lpcdn.lpsnmedia.net/le_unified_window/index.html"
	clientID     = "lp-popout"
	clientSecret = "Zx5cV8bN2mQ7wE4rT1yU9iO3pL6kJ0hG"
	implicitID   = "lp-popout-implicit"
	issueToken   = "issue-token-0123456789abcdef"
	// htpasswd -B: demo / lpauth-demo
	demoHtpasswd = "demo:$2a$10$8Nt5GEAdlhHr0fOu93n40eZvZnlPNmHGL4AdqBtUBYRtdLarcsirq\n"
)

var (
	keyOnce sync.Once
	keyData map[string][]byte
)

// fixture is a token server over real HTTP whose snapshot uses one login connector.
type fixture struct {
	srv   *httptest.Server
	snap  *snapshot.Snapshot
	clock atomic.Int64 // Unix seconds added to the real time
	start time.Time
}

func (f *fixture) now() time.Time { return time.Now().Add(time.Duration(f.clock.Load()) * time.Second) }

// limiterNow is the login limiter's clock: it moves only with f.clock, so failures drain only
// when a test says so, however long bcrypt takes on a busy machine.
func (f *fixture) limiterNow() time.Time {
	return f.start.Add(time.Duration(f.clock.Load()) * time.Second)
}

func newFixture(t testing.TB, login *v1alpha1.LoginSpec, redirects ...string) *fixture {
	t.Helper()
	return newFixtureBehind(t, nil, login, redirects...)
}

// newFixtureBehind is newFixture behind proxies (the TokenServer's spec.trustedProxyCIDRs).
func newFixtureBehind(t testing.TB, proxies []string, login *v1alpha1.LoginSpec, redirects ...string) *fixture {
	t.Helper()
	return newFixtureWith(t, proxies, defaultBranding, login, redirects...)
}

// defaultBranding is the "branding" ConfigMap's data, used when the login spec refers to it.
var defaultBranding = map[string]string{"title": "Brand & Co", "logoURL": "https://cdn.brand.example/logo.svg", "primaryColor": "#0a7", "backgroundColor": "#fafafa"}

// newBrandedFixture is newFixture with the "branding" ConfigMap's data, and a login spec that
// refers to it.
func newBrandedFixture(t testing.TB, branding map[string]string, login *v1alpha1.LoginSpec, redirects ...string) *fixture {
	t.Helper()
	login.BrandingConfigMapRef = &v1alpha1.LocalObjectReference{Name: "branding"}
	return newFixtureWith(t, nil, branding, login, redirects...)
}

func newFixtureWith(t testing.TB, proxies []string, branding map[string]string, login *v1alpha1.LoginSpec, redirects ...string) *fixture {
	t.Helper()
	keyOnce.Do(func() {
		k, err := keys.Generate(v1alpha1.RS256, 2048)
		if err != nil {
			t.Fatal(err)
		}
		n := time.Now()
		keyData, _ = keys.Encode([]keys.Key{{JWK: k, State: v1alpha1.KeyActive, CreatedAt: n, ActivatesAt: n.Add(-time.Minute)}})
	})
	f := &fixture{start: time.Now()}
	f.srv = httptest.NewUnstartedServer(nil)
	issuer := "http://" + f.srv.Listener.Addr().String()
	lpac := func(name, id string, flow v1alpha1.AuthFlow) v1alpha1.LivePersonAuthClient {
		return v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.LivePersonAuthClientSpec{
			TokenServerRef: v1alpha1.LocalObjectReference{Name: "ts"}, AccountID: "1", ClientID: id, Flow: flow, PKCE: v1alpha1.PKCEAllowed,
			RedirectURIs:    append([]string{window, "prefix:https://lpcdn.lpsnmedia.net/le_unified_window/legacy/"}, redirects...),
			ClientSecretRef: &v1alpha1.SecretKeyRef{Name: "client", Key: "secret"},
			IDToken:         v1alpha1.IDTokenSpec{ClaimsFromIdentity: map[string]string{"email": "email", "preferred_username": "preferred_username"}},
		}}
	}
	snap, problems, err := snapshot.Build(snapshot.Inputs{
		TokenServer: &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "ts"}, Spec: v1alpha1.TokenServerSpec{Issuer: issuer, Login: login, TrustedProxyCIDRs: proxies}},
		KeySecret:   &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "keys"}, Data: keyData},
		Credentials: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds"}, Data: map[string][]byte{
			credentials.CodeKeyKey: bytes.Repeat([]byte{5}, 32), credentials.IssueAPITokenKey: []byte(issueToken)}},
		Clients: []v1alpha1.LivePersonAuthClient{lpac("popout", clientID, v1alpha1.FlowCode), lpac("implicit", implicitID, v1alpha1.FlowImplicit)},
		BrandSecrets: map[string]*corev1.Secret{
			"client": {Data: map[string][]byte{"secret": []byte(clientSecret)}},
			"users":  {Data: map[string][]byte{"htpasswd": []byte(demoHtpasswd)}},
			"oidc":   {Data: map[string][]byte{"secret": []byte("upstream-secret")}},
		},
		ConfigMaps: map[string]*corev1.ConfigMap{"branding": {Data: branding}},
		Now:        time.Now(),
	})
	if err != nil || len(problems) > 0 {
		t.Fatalf("snapshot: %v %v", err, problems)
	}
	f.snap = snap
	holder := &snapshot.Holder{}
	holder.Store(snap)
	limiter := limiter.NewFailureLimiter(5, 12*time.Second) // the server's default
	limiter.Now = f.limiterNow
	f.srv.Config = server.NewHTTPServer("", server.Handler(server.Config{
		Issuer: issuer, Source: holder, Replay: replay.NewMemory(1000, nil), Log: logr.Discard(), Now: f.now, LoginLimiter: limiter,
	}))
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	return f
}

func staticUsers() *v1alpha1.LoginSpec {
	return &v1alpha1.LoginSpec{StaticUsers: &v1alpha1.StaticUsersLogin{HtpasswdSecretRef: v1alpha1.SecretKeyRef{Name: "users", Key: "htpasswd"}}}
}

// browser follows no redirects, so each hop is checked, and keeps cookies.
func browser(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func authorizeURL(f *fixture, kv ...string) string {
	v := url.Values{"client_id": {clientID}, "response_type": {"code"}, "scope": {"openid"}, "redirect_uri": {window}}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "" {
			v.Del(kv[i])
		} else {
			v.Set(kv[i], kv[i+1])
		}
	}
	return f.srv.URL + "/authorize?" + v.Encode()
}

var hidden = regexp.MustCompile(`name="(request|csrf)" value="([^"]*)"`)

// loginForm GETs /authorize and returns the form's hidden fields.
func loginForm(t *testing.T, c *http.Client, u string) url.Values {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /authorize: %d %s", resp.StatusCode, body)
	}
	checkPageHeaders(t, resp)
	form := url.Values{}
	for _, m := range hidden.FindAllSubmatch(body, -1) {
		form.Set(string(m[1]), htmlUnescape(string(m[2])))
	}
	if form.Get("request") == "" || form.Get("csrf") == "" {
		t.Fatalf("no login form in:\n%s", body)
	}
	return form
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(s)
}

func checkPageHeaders(t *testing.T, resp *http.Response) {
	t.Helper()
	h := resp.Header
	if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
		h.Get("Cache-Control") != "no-store" || h.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("page headers: %v", h)
	}
}

func post(t *testing.T, c *http.Client, u string, form url.Values) *http.Response {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// redeem plays LivePerson at /token with the code from the window's URL.
func redeem(t *testing.T, f *fixture, location string) {
	t.Helper()
	u, err := url.Parse(location)
	if err != nil {
		t.Fatal(err)
	}
	redeemAt(t, f, u.Query().Get("code"), window)
}

func redeemAt(t *testing.T, f *fixture, code, redirectURI string) {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}}
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, clientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"id_token"`)) {
		t.Fatalf("/token: %d %s", resp.StatusCode, body)
	}
}

func TestStaticUsersLoginAndRedeem(t *testing.T) {
	t.Parallel()
	f := newFixture(t, staticUsers())
	c := browser(t)
	state := `{"lpUnifiedWindowConfig":"` + strings.Repeat("z", 4000) + `","n":"a&b=c d"}`
	form := loginForm(t, c, authorizeURL(f, "state", state))
	form.Set("username", "demo")
	form.Set("password", "lpauth-demo")
	resp := post(t, c, f.srv.URL+"/authorize/login", form)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, window+"?code=") {
		t.Fatalf("login: %d Location %q", resp.StatusCode, loc)
	}
	u, _ := url.Parse(loc)
	if u.Query().Get("state") != state {
		t.Fatal("state not echoed exactly")
	}
	if !strings.HasSuffix(loc, "&state="+url.QueryEscape(state)) {
		t.Fatal("state not echoed byte for byte")
	}
	redeem(t, f, loc)
}

func TestStaticUsersRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t, staticUsers())
	c := browser(t)
	good := loginForm(t, c, authorizeURL(f, "state", "s"))
	with := func(mut func(v url.Values)) url.Values {
		v := url.Values{}
		for k, vs := range good {
			v[k] = append([]string(nil), vs...)
		}
		v.Set("username", "demo")
		v.Set("password", "lpauth-demo")
		mut(v)
		return v
	}
	for name, tc := range map[string]struct {
		client *http.Client
		form   url.Values
		status int
	}{
		"wrong password":            {c, with(func(v url.Values) { v.Set("password", "nope") }), http.StatusUnauthorized},
		"unknown user":              {c, with(func(v url.Values) { v.Set("username", "mallory") }), http.StatusUnauthorized},
		"no CSRF cookie":            {browser(t), with(func(url.Values) {}), http.StatusForbidden},
		"CSRF field differs":        {c, with(func(v url.Values) { v.Set("csrf", strings.Repeat("A", 43)) }), http.StatusForbidden},
		"tampered request":          {c, with(func(v url.Values) { v.Set("request", v.Get("request")[:40]+"AAAA"+v.Get("request")[44:]) }), http.StatusForbidden},
		"missing request":           {c, with(func(v url.Values) { v.Del("request") }), http.StatusForbidden},
		"over-long password":        {c, with(func(v url.Values) { v.Set("password", strings.Repeat("p", 100)) }), http.StatusUnauthorized},
		"another browser's request": {c, with(func(v url.Values) { v.Set("request", loginForm(t, browser(t), authorizeURL(f)).Get("request")) }), http.StatusForbidden},
	} {
		resp := post(t, tc.client, f.srv.URL+"/authorize/login", tc.form)
		if resp.StatusCode != tc.status || resp.Header.Get("Location") != "" {
			t.Errorf("%s: %d (Location %q), want %d and no redirect", name, resp.StatusCode, resp.Header.Get("Location"), tc.status)
		}
	}
	// An expired form.
	f.clock.Store(11 * 60)
	if resp := post(t, c, f.srv.URL+"/authorize/login", with(func(url.Values) {})); resp.StatusCode != http.StatusForbidden {
		t.Errorf("expired form: %d", resp.StatusCode)
	}
}

func TestLoginAttemptsAreLimited(t *testing.T) {
	t.Parallel()
	f := newFixture(t, staticUsers())
	c := browser(t)
	form := loginForm(t, c, authorizeURL(f))
	form.Set("username", "demo")
	var last int
	for range 7 {
		form.Set("password", "guess")
		last = post(t, c, f.srv.URL+"/authorize/login", form).StatusCode
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("after 7 wrong passwords: %d, want 429", last)
	}
	form.Set("password", "lpauth-demo")
	if got := post(t, c, f.srv.URL+"/authorize/login", form).StatusCode; got != http.StatusTooManyRequests {
		t.Fatalf("the right password during the slow-down: %d, want 429", got)
	}
}

func TestAuthorizeBadParameters(t *testing.T) {
	t.Parallel()
	f := newFixture(t, staticUsers())
	c := browser(t)
	challenge := strings.Repeat("c", 43)
	for _, tc := range []struct {
		name     string
		url      string
		status   int
		errParam string // for redirects: the error sent to the window
	}{
		{"unknown client", authorizeURL(f, "client_id", "nope"), 400, ""},
		{"no client", authorizeURL(f, "client_id", ""), 400, ""},
		{"unregistered redirect_uri", authorizeURL(f, "redirect_uri", "https://evil.example/cb"), 400, ""},
		{"no redirect_uri", authorizeURL(f, "redirect_uri", ""), 400, ""},
		{"redirect_uri with fragment", authorizeURL(f, "redirect_uri", window+"#f"), 400, ""},
		{"repeated parameter", authorizeURL(f) + "&client_id=" + clientID, 400, ""},
		{"malformed escape", authorizeURL(f) + "&state=%zz", 400, ""},
		{"oversize query", authorizeURL(f, "state", strings.Repeat("s", 33<<10)), 400, ""},
		{"no response_type", authorizeURL(f, "response_type", ""), 302, "invalid_request"},
		{"unsupported response_type", authorizeURL(f, "response_type", "code token"), 302, "unsupported_response_type"},
		{"implicit for a code client", authorizeURL(f, "response_type", "id_token"), 302, "unauthorized_client"},
		{"code for an implicit client", authorizeURL(f, "client_id", implicitID), 302, "unauthorized_client"},
		{"scope without openid", authorizeURL(f, "scope", "email"), 302, "invalid_scope"},
		{"bad code_challenge", authorizeURL(f, "code_challenge", "short"), 302, "invalid_request"},
		{"bad code_challenge_method", authorizeURL(f, "code_challenge", challenge, "code_challenge_method", "MD5"), 302, "invalid_request"},
	} {
		resp, err := c.Get(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.status)
			continue
		}
		if tc.status == 400 {
			checkPageHeaders(t, resp)
			if loc != "" {
				t.Errorf("%s: redirected to %q", tc.name, loc)
			}
			continue
		}
		u, _ := url.Parse(loc)
		if !strings.HasPrefix(loc, window+"?") || u.Query().Get("error") != tc.errParam || u.Query().Get("state") != "" && !strings.Contains(tc.url, "state=") {
			t.Errorf("%s: Location %q, want error=%s on the window", tc.name, loc, tc.errParam)
		}
	}
	// POST is not how LivePerson opens the endpoint.
	resp, _ := c.Post(authorizeURL(f), "text/plain", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /authorize: %d", resp.StatusCode)
	}
}

func TestTrustedHeaders(t *testing.T) {
	t.Parallel()
	spec := func(cidr string) *v1alpha1.LoginSpec {
		return &v1alpha1.LoginSpec{TrustedHeaders: &v1alpha1.TrustedHeadersLogin{UserHeader: "X-Forwarded-User", EmailHeader: "X-Forwarded-Email", TrustedProxyCIDRs: []string{cidr}}}
	}
	get := func(f *fixture, headers map[string]string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, authorizeURL(f, "state", "st"), nil)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := browser(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	trusted := newFixture(t, spec("127.0.0.0/8"))
	resp := get(trusted, map[string]string{"X-Forwarded-User": "customer-77", "X-Forwarded-Email": "c77@brand.example"})
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, window+"?code=") || !strings.HasSuffix(loc, "&state=st") {
		t.Fatalf("from the proxy: %d %q", resp.StatusCode, loc)
	}
	u, _ := url.Parse(loc)
	p, err := trusted.snap.Codes.Open(u.Query().Get("code"), time.Now())
	if err != nil || p.Subject != "customer-77" || !strings.Contains(string(p.Claims), "c77@brand.example") {
		t.Fatalf("code: %+v %v", p, err)
	}
	redeem(t, trusted, loc)
	if resp := get(trusted, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("no user header: %d, want 403", resp.StatusCode)
	}
	elsewhere := newFixture(t, spec("10.0.0.0/8"))
	if resp := get(elsewhere, map[string]string{"X-Forwarded-User": "customer-77", "X-Forwarded-For": "10.1.2.3", "X-Real-Ip": "10.1.2.3"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("not from the proxy (forwarded-for forged): %d, want 403", resp.StatusCode)
	}
}

func TestLandingPage(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &v1alpha1.LoginSpec{LandingPage: &v1alpha1.LandingPageLogin{URL: "https://www.brand.example/lp-login?lang=en", RequestTTL: metav1.Duration{Duration: 5 * time.Minute}}})
	state := `{"a":"b"}`
	resp, err := browser(t).Get(authorizeURL(f, "state", state, "response_type", "code"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Host != "www.brand.example" || loc.Query().Get("lang") != "en" || loc.Query().Get("login_request") == "" {
		t.Fatalf("to the landing page: %d %v", resp.StatusCode, loc)
	}
	loginRequest := loc.Query().Get("login_request")

	complete := func(bearer string, body map[string]any) (int, map[string]string) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/api/v1/authorizations", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	user := map[string]any{"login_request": loginRequest, "sub": "customer-5", "claims": map[string]string{"given_name": "Ada"},
		"lp_sdes": []any{map[string]any{"type": "ctmrinfo", "info": map[string]any{"customerId": "5"}}}}

	if status, _ := complete("wrong", user); status != http.StatusUnauthorized {
		t.Errorf("wrong bearer: %d", status)
	}
	flipped := map[bool]string{true: "A", false: "B"}[loginRequest[30] == 'B'] // a different character, whatever was there
	tampered := map[string]any{"login_request": loginRequest[:30] + flipped + loginRequest[31:], "sub": "x"}
	if status, out := complete(issueToken, tampered); status != http.StatusBadRequest {
		t.Errorf("tampered login request: %d %v", status, out)
	}
	if status, out := complete(issueToken, map[string]any{"login_request": loginRequest}); status != http.StatusBadRequest {
		t.Errorf("no sub: %d %v", status, out)
	}
	status, out := complete(issueToken, user)
	if status != http.StatusOK || !strings.HasPrefix(out["redirect_to"], window+"?code=") || !strings.HasSuffix(out["redirect_to"], "&state="+url.QueryEscape(state)) {
		t.Fatalf("complete: %d %v", status, out)
	}
	redeem(t, f, out["redirect_to"])
	if status, out := complete(issueToken, user); status != http.StatusBadRequest || !strings.Contains(out["error_description"], "already used") {
		t.Errorf("replayed login request: %d %v", status, out)
	}
	// Expired: a new request, completed after its TTL.
	resp, _ = browser(t).Get(authorizeURL(f))
	resp.Body.Close()
	later, _ := url.Parse(resp.Header.Get("Location"))
	f.clock.Store(6 * 60)
	if status, out := complete(issueToken, map[string]any{"login_request": later.Query().Get("login_request"), "sub": "c"}); status != http.StatusBadRequest || !strings.Contains(out["error_description"], "expired") {
		t.Errorf("expired login request: %d %v", status, out)
	}
}

func TestNoLoginConfigured(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	resp, err := browser(t).Get(authorizeURL(f))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Location") != "" {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }

func TestPagesAreBrandedAndStrict(t *testing.T) {
	t.Parallel()
	login := staticUsers()
	login.BrandingConfigMapRef = &v1alpha1.LocalObjectReference{Name: "branding"}
	f := newFixture(t, login)
	resp, err := browser(t).Get(authorizeURL(f))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	for _, want := range []string{"<title>Sign in · Brand &amp; Co</title>", `<img class="logo" src="https://cdn.brand.example/logo.svg" alt="">`,
		"background:#fafafa", "background:#0a7", `<label for="username">`, `<label for="password">`, `lang="en"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	policy := resp.Header.Get("Content-Security-Policy")
	style := page[strings.Index(page, "<style>")+len("<style>") : strings.Index(page, "</style>")]
	sum := sha256.Sum256([]byte(style))
	if !strings.Contains(policy, "style-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") {
		t.Errorf("the CSP does not allow the page's own style: %s", policy)
	}
	if !strings.Contains(policy, "img-src https://cdn.brand.example") || strings.Contains(policy, "unsafe") || strings.Contains(policy, "script-src") {
		t.Errorf("CSP = %s", policy)
	}
	if strings.Contains(page, "<script") || strings.Contains(page, "http://") {
		t.Error("the page loads scripts or plain-http resources")
	}
}

var (
	headingRE = regexp.MustCompile(`<h[12] id="heading">([^<]*)</h[12]>`)
	alertRE   = regexp.MustCompile(`role="alert"[^>]*>([^<]*)</p>`)
)

// shown is a page's status, heading and alert (the error, on an error page), as a person reads
// them.
func shown(t *testing.T, resp *http.Response) (status int, heading, alert, body string) {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	body = string(b)
	if m := headingRE.FindStringSubmatch(body); m != nil {
		heading = htmlUnescape(m[1])
	}
	if m := alertRE.FindStringSubmatch(body); m != nil {
		alert = htmlUnescape(m[1])
	}
	return resp.StatusCode, heading, alert, body
}

// TestErrorPagesSpeakToTheCustomer: a refusal that cannot go back to LivePerson's window is a
// page a customer reads. It says what to do, in words they know; which check failed is for the
// log, never the page.
func TestErrorPagesSpeakToTheCustomer(t *testing.T) {
	t.Parallel()
	const (
		notValid = "This sign-in link is not valid. Please return to the chat and try again."
		expired  = "This sign-in page has expired. Please return to the chat and try again."
	)
	f := newFixture(t, staticUsers())
	c := browser(t)
	form := loginForm(t, c, authorizeURL(f))
	form.Set("username", "demo")
	form.Set("password", "lpauth-demo")
	get := func(u string) *http.Response {
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, tc := range []struct {
		name           string
		do             func() *http.Response
		status         int
		heading, alert string
	}{
		{"unknown client", func() *http.Response { return get(authorizeURL(f, "client_id", "nope")) }, 400, "Sign-in link not valid", notValid},
		{"no client", func() *http.Response { return get(authorizeURL(f, "client_id", "")) }, 400, "Sign-in link not valid", notValid},
		{"unregistered redirect_uri", func() *http.Response { return get(authorizeURL(f, "redirect_uri", "https://evil.example/cb")) }, 400, "Sign-in link not valid", notValid},
		{"malformed query", func() *http.Response { return get(authorizeURL(f) + "&state=%zz") }, 400, "Sign-in link not valid", notValid},
		{"POST to /authorize", func() *http.Response {
			resp, err := c.Post(authorizeURL(f), "text/plain", nil)
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}, 405, "Sign-in link not valid", notValid},
		{"form from another browser", func() *http.Response {
			resp, err := browser(t).PostForm(f.srv.URL+"/authorize/login", form)
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}, 403, "Sign-in expired", expired},
		{"expired form", func() *http.Response {
			f.clock.Store(11 * 60)
			defer f.clock.Store(0)
			resp, err := c.PostForm(f.srv.URL+"/authorize/login", form)
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}, 403, "Sign-in expired", expired},
	} {
		status, heading, alert, body := shown(t, tc.do())
		if status != tc.status || heading != tc.heading || alert != tc.alert {
			t.Errorf("%s: got %d %q %q, want %d %q %q", tc.name, status, heading, alert, tc.status, tc.heading, tc.alert)
		}
		for _, technical := range []string{"client_id", "redirect_uri", "registered", "escape", "malformed", "GET", "CSRF", "not sent by"} {
			if strings.Contains(body, technical) {
				t.Errorf("%s: the page says %q, a technical reason:\n%s", tc.name, technical, body)
			}
		}
	}

	proxy := newFixture(t, &v1alpha1.LoginSpec{TrustedHeaders: &v1alpha1.TrustedHeadersLogin{UserHeader: "X-Forwarded-User", TrustedProxyCIDRs: []string{"127.0.0.0/8"}}})
	status, heading, alert, body := shown(t, get(authorizeURL(proxy)))
	wantAlert := "We could not confirm who you are. Please sign in on our website, then return to the chat and try again."
	if status != http.StatusForbidden || heading != "Sign-in not allowed" || alert != wantAlert {
		t.Errorf("no user from the proxy: got %d %q %q, want 403 %q %q", status, heading, alert, "Sign-in not allowed", wantAlert)
	}
	if strings.Contains(body, "X-Forwarded-User") || strings.Contains(body, "header") {
		t.Errorf("no user from the proxy: the page names the header:\n%s", body)
	}
}

// french is a branding ConfigMap in French, with every page's text.
var french = map[string]string{
	"title": "Boulangerie Dupont", "primaryColor": "#8e24aa", "backgroundColor": "#f3e5c8", "lang": "fr",
	"text.signInTitle":       "Connexion",
	"text.signInPrompt":      "Connectez-vous pour reprendre votre conversation.",
	"text.username":          "Nom d’utilisateur",
	"text.password":          "Mot de passe",
	"text.signInButton":      "Se connecter",
	"text.wrongCredentials":  "Nom d’utilisateur ou mot de passe incorrect. Veuillez réessayer.",
	"text.tooManyAttempts":   "Trop de tentatives. Patientez une minute, puis réessayez.",
	"text.linkNotValidTitle": "Lien de connexion non valide",
	"text.linkNotValid":      "Ce lien de connexion n'est pas valide. Revenez à la conversation et réessayez.",
	"text.expiredTitle":      "Connexion expirée",
	"text.expired":           "Cette page de connexion a expiré. Revenez à la conversation et réessayez.",
	"text.unavailableTitle":  "Connexion indisponible",
	"text.unavailable":       "La connexion est indisponible pour le moment. Réessayez dans quelques minutes.",
	"text.notAllowedTitle":   "Connexion refusée",
	"text.notAllowed":        "Nous n'avons pas pu confirmer votre identité.",
	"text.failedTitle":       "Échec de la connexion",
	"text.failed":            "Nous n'avons pas pu vous connecter. Revenez à la conversation et réessayez.",
}

// TestPagesSpeakTheBrandsLanguage: the branding ConfigMap's title is the page's first heading,
// and its text replaces every sentence a customer reads, as text (never HTML).
func TestPagesSpeakTheBrandsLanguage(t *testing.T) {
	t.Parallel()
	branding := map[string]string{}
	for k, v := range french {
		branding[k] = v
	}
	branding["title"] = "Dupont & <Fils>"
	branding["text.signInPrompt"] = "Connectez-vous <b>ici</b>."
	f := newBrandedFixture(t, branding, staticUsers())
	c := browser(t)

	resp, err := c.Get(authorizeURL(f))
	if err != nil {
		t.Fatal(err)
	}
	status, heading, _, body := shown(t, resp)
	if status != http.StatusOK || heading != "Connexion" {
		t.Errorf("login form: got %d %q, want 200 %q", status, heading, "Connexion")
	}
	for _, want := range []string{
		`<html lang="fr">`, `<title>Connexion · Dupont &amp; &lt;Fils&gt;</title>`, `<h1 class="brand" id="brand">Dupont &amp; &lt;Fils&gt;</h1>`,
		`<p>Connectez-vous &lt;b&gt;ici&lt;/b&gt;.</p>`, `<label for="username">Nom d’utilisateur</label>`, `<label for="password">Mot de passe</label>`,
		`<button type="submit">Se connecter</button>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("login form lacks %s:\n%s", want, body)
		}
	}
	for _, english := range []string{"Sign in", "Username", "Password", "<b>", "<Fils>"} {
		if strings.Contains(body, english) {
			t.Errorf("login form says %q:\n%s", english, body)
		}
	}

	form := hiddenFields(t, body)
	form.Set("username", "demo")
	form.Set("password", "faux")
	resp, err = c.PostForm(f.srv.URL+"/authorize/login", form)
	if err != nil {
		t.Fatal(err)
	}
	if status, _, alert, _ := shown(t, resp); status != http.StatusUnauthorized || alert != french["text.wrongCredentials"] {
		t.Errorf("wrong password: got %d %q, want 401 %q", status, alert, french["text.wrongCredentials"])
	}

	resp, err = c.Get(authorizeURL(f, "client_id", "nope"))
	if err != nil {
		t.Fatal(err)
	}
	status, heading, alert, body := shown(t, resp)
	if status != http.StatusBadRequest || heading != french["text.linkNotValidTitle"] || alert != french["text.linkNotValid"] {
		t.Errorf("unknown client: got %d %q %q, want 400 %q %q", status, heading, alert, french["text.linkNotValidTitle"], french["text.linkNotValid"])
	}
	if !strings.Contains(body, `<h1 class="brand" id="brand">Dupont &amp; &lt;Fils&gt;</h1>`) {
		t.Errorf("the error page lacks the brand's heading:\n%s", body)
	}
}

// hiddenFields are a login form's hidden fields.
func hiddenFields(t *testing.T, body string) url.Values {
	t.Helper()
	form := url.Values{}
	for _, m := range hidden.FindAllStringSubmatch(body, -1) {
		form.Set(m[1], htmlUnescape(m[2]))
	}
	if form.Get("request") == "" || form.Get("csrf") == "" {
		t.Fatalf("no login form in:\n%s", body)
	}
	return form
}
