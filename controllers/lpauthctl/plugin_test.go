package lpauthctl_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/lpauth/lpauth-operator/api/credentials"
	"github.com/lpauth/lpauth-operator/api/endpoints"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

func TestStatusShowsKeysAndEveryClientsConsoleValues(t *testing.T) {
	s := needSystem(t)
	t.Parallel()
	sk := s.signingKey(t, ns, "brand-keys")
	code := s.lpac(t, "brand-liveperson")
	implicit := s.lpac(t, "brand-implicit")
	secret := s.secret(t, v1alpha1.ClientSecretName("brand-liveperson"), v1alpha1.ClientSecretKey)
	for _, args := range [][]string{{"-n", ns, "status", "brand"}, {"status", "-n", ns}} {
		r := s.plugin(t, args...)
		if r.code != 0 {
			t.Fatalf("status %q: %s", args, r)
		}
		want := []string{"TokenServer brand (namespace brand-auth)", s.issuer, "Ready", "True (Reconciled)",
			s.issuer + endpoints.TokenPath, s.issuer + endpoints.JWKSPath,
			"SigningKey brand-keys: RS256 2048 bits, rotates every 2160h", sk.Status.ActiveKeyID, "Active", "Next",
			"Clients: 4", "brand-liveperson: account 12345678, Code flow", code.Status.ClientID, "JWKS Endpoint",
			"brand-implicit: account 87654321, Implicit flow", implicit.Status.ClientID, "JWT Public Key", sk.Status.ActivePublicKey,
			"(hidden: --show-secret prints it; Secret brand-liveperson-client, key clientSecret)"}
		for _, w := range want {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("status %q does not show %q:\n%s", args, w, r.stdout)
			}
		}
		if strings.Contains(r.stdout, secret) {
			t.Errorf("status %q prints the client secret", args)
		}
	}
}

// The namespace comes from the kubeconfig's context unless -n says otherwise, and KUBECONFIG
// is read as kubectl reads it.
func TestTheNamespaceComesFromTheContextAsInKubectl(t *testing.T) {
	s := needSystem(t)
	t.Setenv("KUBECONFIG", s.kubeconfigIn(t, ns))
	if r := runPlugin(t, "status"); r.code != 0 || !strings.Contains(r.stdout, "TokenServer brand (namespace brand-auth)") {
		t.Errorf("status with the context's namespace: %s", r)
	}
	if r := runPlugin(t, "status", "-n", "default"); r.code != 0 || !strings.Contains(r.stdout, `No TokenServers in namespace "default"`) {
		t.Errorf("status -n default: %s", r)
	}
}

func TestConsolePrintsLivePersonsFormAndHidesTheSecret(t *testing.T) {
	s := needSystem(t)
	t.Parallel()
	lpac := s.lpac(t, "brand-liveperson")
	secret := s.secret(t, v1alpha1.ClientSecretName("brand-liveperson"), v1alpha1.ClientSecretKey)
	hidden := s.plugin(t, "-n", ns, "console", "brand-liveperson")
	shown := s.plugin(t, "-n", ns, "console", "brand-liveperson", "--show-secret")
	for _, r := range []result{hidden, shown} {
		for _, w := range []string{"Authentication type      Code", "PKCE                     Disabled", "JWT issuer               " + s.issuer,
			"Token endpoint           " + s.issuer + "/token", "Client ID                " + lpac.Status.ClientID,
			"Certificate type         JWKS Endpoint", "JWKS endpoint            " + s.issuer + "/.well-known/jwks.json",
			"JS method name           lpGetAuthenticationToken"} {
			if r.code != 0 || !strings.Contains(r.stdout, w) {
				t.Errorf("console does not show %q: %s", w, r)
			}
		}
	}
	if strings.Contains(hidden.stdout, secret) || !strings.Contains(hidden.stdout, "(hidden: --show-secret prints it") {
		t.Errorf("console without --show-secret must hide the secret:\n%s", hidden.stdout)
	}
	if !strings.Contains(shown.stdout, "Client secret            "+secret+"\n") {
		t.Errorf("console --show-secret does not print the secret:\n%s", shown.stdout)
	}

	implicit := s.plugin(t, "-n", ns, "console", "brand-implicit", "--show-secret")
	sk := s.signingKey(t, ns, "brand-keys")
	if implicit.code != 0 || !strings.Contains(implicit.stdout, "JWT public key           "+sk.Status.ActivePublicKey) ||
		strings.Contains(implicit.stdout, "Token endpoint") || strings.Contains(implicit.stdout, "Client secret") {
		t.Errorf("console of an implicit PEM-mode client: %s", implicit)
	}
}

func TestBadInputIsToldWhatIsWrong(t *testing.T) {
	s := needSystem(t)
	t.Parallel()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-n", ns, "console", "nope"}, 1, `LivePersonAuthClient "nope" not found in namespace "brand-auth" (it has: brand-encrypted, brand-implicit, brand-liveperson, brand-pkce)`},
		{[]string{"-n", ns, "check", "nope"}, 1, `TokenServer "nope" not found in namespace "brand-auth" (it has: brand)`},
		{[]string{"-n", "default", "rotate", "brand-keys"}, 1, `SigningKey "brand-keys" not found in namespace "default" (it has none; another namespace? -n NAMESPACE)`},
		{[]string{"-n", ns, "rotate"}, 2, "rotate takes SIGNINGKEY, got 0 argument(s)"},
		{[]string{"-n", ns, "console", "a", "b"}, 2, "console takes CLIENT, got 2 argument(s)"},
		{[]string{"-n", ns, "revoke", "brand-keys"}, 2, "revoke takes SIGNINGKEY KID..., got 1 argument(s)"},
		{[]string{"-n", ns, "revoke", "brand-keys", "not-a-kid"}, 2, `"not-a-kid" is not a kid`},
		{[]string{"-n", ns, "frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"-n", ns}, 2, "no command given"},
		{[]string{"-n", ns, "status", "--no-such-flag"}, 2, "flag provided but not defined: -no-such-flag"},
		{[]string{"--context", "nope", "status"}, 1, `context "nope" does not exist`},
		{[]string{"-n", ns, "try", "brand-liveperson", "--client-auth", "digest"}, 2, "--client-auth must be basic or post"},
		{[]string{"-n", ns, "check", "brand", "--issuer-url", "ftp://x"}, 2, `--issuer-url "ftp://x" is not an http(s) URL`},
		// Credentials in clear text, or to a host that is not the issuer's, are refused before
		// anything is sent.
		{[]string{"-n", ns, "try", "brand-liveperson", "--issuer-url", "http://auth.brand.example/lp"}, 2,
			`--issuer-url "http://auth.brand.example/lp" is http on a host that is not loopback`},
		{[]string{"-n", ns, "check", "brand", "--issuer-url", "http://10.1.2.3:8080"}, 2, "is http on a host that is not loopback"},
		{[]string{"-n", ns, "try", "brand-liveperson", "--issuer-url", "https://elsewhere.example"}, 2,
			"is not the issuer's host (" + strings.TrimPrefix(s.issuer, "http://") + "): try would send it the issue-API credential and the client secret; if that host is the token server's, say so with --send-credentials-to elsewhere.example"},
		{[]string{"-n", ns, "try", "brand-liveperson", "--send-credentials-to", "elsewhere.example"}, 2, `--send-credentials-to "elsewhere.example" is not the host try would send them to`},
		// A kid starting with '-' that is not a whole kid: a hint at "--".
		{[]string{"-n", ns, "revoke", "brand-keys", "-ZcTaPN"}, 2, "a key id starting with '-' goes after --: kubectl lpauth revoke SIGNINGKEY -- KID"},
		// A value flag of the command before it keeps its value.
		{[]string{"--wait", "5s", "-n", ns, "rotate", "nope"}, 1, `SigningKey "nope" not found in namespace "brand-auth"`},
		{[]string{"--sub", "x", "--client-auth", "post", "-n", ns, "try", "nope"}, 1, `LivePersonAuthClient "nope" not found`},
	} {
		r := s.plugin(t, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%q: want exit %d and %q on stderr, got %s", tc.args, tc.code, tc.want, r)
		}
	}
}

func TestCheckAgreesWithTheRunningTokenServer(t *testing.T) {
	s := needSystem(t)
	t.Parallel()
	sk := s.signingKey(t, ns, "brand-keys")
	for _, args := range [][]string{{"-n", ns, "check", "brand"}, {"-n", ns, "check", "brand", "--issuer-url", s.issuer + "/"}} {
		r := s.plugin(t, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "No problem found") || strings.Contains(r.stdout, "PROBLEM") {
			t.Fatalf("check %q: %s", args, r)
		}
		if !strings.Contains(r.stdout, "Active key              "+sk.Status.ActiveKeyID+" published") {
			t.Errorf("check %q does not say the Active key is published:\n%s", args, r.stdout)
		}
	}
}

// What LivePerson would trip on, made by a proxy in front of the real token server: a stale
// cache, another server answering for the issuer.
func TestCheckFindsWhatLivePersonWouldTripOn(t *testing.T) {
	s := needSystem(t)
	t.Parallel()
	active := s.signingKey(t, ns, "brand-keys").Status.ActiveKeyID
	stranger := strangerJWK(t)
	for _, tc := range []struct {
		name string
		edit func(path string, doc map[string]any)
		want string
	}{
		{"the Active key not published", dropKey(active), "PROBLEM  Active key              " + active + " signs every token, but is NOT published"},
		{"a key the cluster does not hold", addKey(stranger), "PROBLEM  published key           " + stranger.KeyID + ": the cluster no longer holds it"},
		{"another issuer", func(path string, doc map[string]any) {
			if path == endpoints.DiscoveryPath {
				doc["issuer"] = "https://auth.other.example"
			}
		}, `"https://auth.other.example" is served, spec.issuer is "` + s.issuer + `"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			proxy := tamper(t, s.issuer, tc.edit, nil)
			r := s.plugin(t, "-n", ns, "check", "brand", "--issuer-url", proxy)
			if r.code != 1 || !strings.Contains(r.stdout, "PROBLEM") || !strings.Contains(r.stdout, tc.want) || !strings.Contains(r.stderr, "problem(s) found") {
				t.Errorf("want exit 1 and %q: %s", tc.want, r)
			}
		})
	}
	t.Run("nothing answers", func(t *testing.T) {
		t.Parallel()
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		r := s.plugin(t, "-n", ns, "check", "brand", "--issuer-url", dead.URL)
		if r.code != 1 || !strings.Contains(r.stdout, "PROBLEM  discovery") || !strings.Contains(r.stdout, "connection refused") {
			t.Errorf("check against a closed port: %s", r)
		}
	})
}

func TestTryRunsLivePersonsFlowAgainstTheTokenServer(t *testing.T) {
	s := needSystem(t)
	t.Parallel()
	secret := s.secret(t, v1alpha1.ClientSecretName("brand-liveperson"), v1alpha1.ClientSecretKey)
	issueToken := s.secret(t, credentials.SecretName("brand"), credentials.IssueAPITokenKey)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"code flow, Basic auth", []string{"try", "brand-liveperson"}, []string{
			"1. issue API       POST /api/v1/codes for sub \"kubectl-lpauth-try\", redirect_uri https://liveperson.net: a code, expires in 120s",
			"2. token endpoint  POST /token, client_secret_basic as " + s.lpac(t, "brand-liveperson").Status.ClientID + ": 200, token_type Bearer",
			"3. JWKS", "4. id_token        RS256 signature verifies with published key " + s.signingKey(t, ns, "brand-keys").Status.ActiveKeyID,
			"5. replay          the same code again: refused with invalid_grant"}},
		{"code flow, secret in the form", []string{"try", "brand-liveperson", "--client-auth=post", "--sub", "customer-42"}, []string{
			`sub "customer-42"`, "client_secret_post", `sub "customer-42", expires in `}},
		{"PKCE required, a prefix redirect URI", []string{"try", "brand-pkce", "--issuer-url", s.issuer}, []string{
			"redirect_uri https://lpcdn.lpsnmedia.net/le_unified_window/, PKCE S256: a code", "5. replay"}},
		{"implicit flow", []string{"try", "brand-implicit"}, []string{
			"1. issue API       POST /api/v1/tokens", "a JWT for LivePerson's SDK", "3. id_token        RS256 signature verifies"}},
		{"implicit flow, encrypted for LivePerson", []string{"try", "brand-encrypted"}, []string{
			`3. id_token        a JWE for LivePerson's key "` + lpEncKeyID + `" (enc A256GCM, cty JWT): only LivePerson can decrypt it`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := s.plugin(t, append([]string{"-n", ns}, tc.args...)...)
			if r.code != 0 || !strings.Contains(r.stdout, "OK: LivePerson can log this client's customers in.") {
				t.Fatalf("try: %s", r)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("try does not say %q:\n%s", w, r.stdout)
				}
			}
			if strings.Contains(r.stdout+r.stderr, secret) || strings.Contains(r.stdout+r.stderr, issueToken) {
				t.Error("try prints a secret")
			}
		})
	}
}

func TestTryFailsWhereLivePersonWould(t *testing.T) {
	s := needSystem(t)
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(path string, doc map[string]any)
		req  func(*http.Request)
		want string
	}{
		{"a wrong client secret", nil, wrongSecret, "2. token endpoint  POST /token, client_secret_basic as"},
		{"the signing key not published", dropAllKeys, nil, "which the JWKS does not publish: LivePerson cannot verify it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := s.plugin(t, "-n", ns, "try", "brand-liveperson", "--issuer-url", tamper(t, s.issuer, tc.edit, tc.req))
			if r.code != 1 || !strings.Contains(r.stdout, tc.want) || !strings.Contains(r.stdout, "FAILED") || strings.Contains(r.stdout, "OK:") {
				t.Errorf("want exit 1 and %q: %s", tc.want, r)
			}
		})
	}
	// The token server itself refuses the wrong secret (401 invalid_client), as LivePerson would see.
	r := s.plugin(t, "-n", ns, "try", "brand-liveperson", "--issuer-url", tamper(t, s.issuer, nil, wrongSecret))
	if !strings.Contains(r.stdout, "answered 401 invalid_client") {
		t.Errorf("a wrong secret is not refused as invalid_client: %s", r)
	}
}

func TestRotateMakesTheNextKeySign(t *testing.T) {
	s := needSystem(t)
	t.Parallel()
	keyNS, sk := s.keyNamespace(t, "rotate")
	before, next := sk.Status.ActiveKeyID, keyIn(sk, v1alpha1.KeyNext)
	r := s.plugin(t, "-n", keyNS, "rotate", "keys")
	if r.code != 0 || !strings.Contains(r.stdout, "Rotated: "+next+" signs now (was "+before+").") {
		t.Fatalf("rotate: %s", r)
	}
	sk = s.signingKey(t, keyNS, "keys")
	if sk.Status.ActiveKeyID != next || !strings.HasPrefix(sk.Annotations[v1alpha1.AnnotationRotate], "kubectl-lpauth-") {
		t.Errorf("after rotate: Active %s (want %s), annotation %q", sk.Status.ActiveKeyID, next, sk.Annotations[v1alpha1.AnnotationRotate])
	}
	// --force is the documented force- prefix; --wait=0 only annotates.
	r = s.plugin(t, "-n", keyNS, "rotate", "keys", "--force", "--wait=0")
	sk = s.signingKey(t, keyNS, "keys")
	if r.code != 0 || !strings.HasPrefix(sk.Annotations[v1alpha1.AnnotationRotate], v1alpha1.ForceRotatePrefix+"kubectl-lpauth-") || strings.Contains(r.stdout, "Rotated") {
		t.Errorf("rotate --force --wait=0: annotation %q, %s", sk.Annotations[v1alpha1.AnnotationRotate], r)
	}
}

// brand-keys signs for a PEM-mode client (brand-implicit), whose LivePerson console pins the
// Active key: the operator holds the rotation, and rotate says why and what to do.
func TestRotateSaysWhyItWasHeld(t *testing.T) {
	s := needSystem(t)
	t.Parallel()
	before := s.signingKey(t, ns, "brand-keys")
	r := s.plugin(t, "-n", ns, "rotate", "brand-keys")
	after := s.signingKey(t, ns, "brand-keys")
	if r.code != 1 || after.Status.ActiveKeyID != before.Status.ActiveKeyID ||
		!strings.Contains(r.stderr, "held: "+before.Status.ActiveKeyID+" still signs, because PEM-mode client(s) brand-implicit have not acknowledged the Next key "+keyIn(before, v1alpha1.KeyNext)) ||
		!strings.Contains(r.stderr, "auth.lpauth.dev/console-updated="+keyIn(before, v1alpha1.KeyNext)) {
		t.Errorf("rotate held for a PEM-mode client: Active %s → %s; %s", before.Status.ActiveKeyID, after.Status.ActiveKeyID, r)
	}
}

func TestRevokeAddsToTheDocumentedAnnotation(t *testing.T) {
	s := needSystem(t)
	t.Parallel()
	keyNS, sk := s.keyNamespace(t, "revoke")
	next := keyIn(sk, v1alpha1.KeyNext)
	r := s.plugin(t, "-n", keyNS, "revoke", "keys", next)
	if r.code != 0 || !strings.Contains(r.stdout, "Revoked: "+next) {
		t.Fatalf("revoke the Next key: %s", r)
	}
	sk = s.signingKey(t, keyNS, "keys")
	active := sk.Status.ActiveKeyID
	if !slices.Contains(sk.Status.RevokedKeyIDs, next) || keyIn(sk, v1alpha1.KeyNext) == next {
		t.Fatalf("after revoke: revoked %v, keys %+v", sk.Status.RevokedKeyIDs, sk.Status.Keys)
	}
	// A second revoke adds to the list, as the README asks, and revoking the Active key
	// activates a fresh one.
	r = s.plugin(t, "-n", keyNS, "revoke", "keys", active)
	sk = s.signingKey(t, keyNS, "keys")
	if r.code != 0 || !strings.Contains(r.stdout, "The Active key was revoked") || sk.Status.ActiveKeyID == active || sk.Status.ActiveKeyID == "" {
		t.Fatalf("revoke the Active key: Active is %q; %s", sk.Status.ActiveKeyID, r)
	}
	if got, want := sk.Annotations[v1alpha1.AnnotationRevoke], next+","+active; got != want {
		t.Errorf("revoke annotation = %q, want %q", got, want)
	}
	// A kid the SigningKey does not hold is deny-listed all the same, with a warning.
	unknown := strings.Repeat("A", 43)
	r = s.plugin(t, "-n", keyNS, "revoke", "keys", unknown)
	if r.code != 0 || !strings.Contains(r.stderr, "warning: "+unknown+" is not one of keys's keys now") {
		t.Errorf("revoke of a kid not held: %s", r)
	}
}

// A kid is base64url: one in 64 starts with '-'. revoke takes it after the SigningKey, or after "--".
func TestRevokeTakesAKidStartingWithADash(t *testing.T) {
	s := needSystem(t)
	t.Parallel()
	keyNS, _ := s.keyNamespace(t, "revoke-dash")
	a, b := "-"+strings.Repeat("A", 42), "-"+strings.Repeat("B", 42)
	r := s.plugin(t, "-n", keyNS, "revoke", "keys", a, "--", b)
	sk := s.signingKey(t, keyNS, "keys")
	if r.code != 0 || !strings.Contains(r.stdout, "Revoked: "+a+", "+b) || sk.Annotations[v1alpha1.AnnotationRevoke] != a+","+b {
		t.Errorf("revoke of kids starting with '-': annotation %q; %s", sk.Annotations[v1alpha1.AnnotationRevoke], r)
	}
}

// try sends the issue-API credential and the client secret to the host it says, and nowhere a
// redirect points: a redirect fails the step, as LivePerson would not follow it either.
func TestTryNeverSendsCredentialsWhereARedirectPoints(t *testing.T) {
	s := needSystem(t)
	t.Parallel()
	issueToken := s.secret(t, credentials.SecretName("brand"), credentials.IssueAPITokenKey)
	secret := s.secret(t, v1alpha1.ClientSecretName("brand-liveperson"), v1alpha1.ClientSecretKey)
	var mu sync.Mutex
	var received []string // what reached the recording server (said, not shown)
	recorder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, basicSecret, _ := r.BasicAuth()
		sent := r.Header.Get("Authorization") + " " + string(body)
		mu.Lock()
		received = append(received, fmt.Sprintf("%s %s (the issue-API credential: %v, the client secret: %v)", r.Method, r.URL.Path,
			strings.Contains(sent, issueToken), basicSecret == secret || strings.Contains(sent, url.QueryEscape(secret))))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"code":"c","token":"t","keys":[]}`))
	}))
	t.Cleanup(recorder.Close)
	to, _ := url.Parse(s.issuer)
	upstream := httputil.NewSingleHostReverseProxy(to)
	// fakeIssuer redirects the paths redirected (all when nil) to the recording server, on the
	// same host name (127.0.0.1), where net/http would keep the Authorization header.
	fakeIssuer := func(status int, redirected ...string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if redirected == nil || slices.Contains(redirected, r.URL.Path) {
				http.Redirect(w, r, recorder.URL+r.URL.Path, status)
				return
			}
			upstream.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	for _, tc := range []struct {
		name   string
		status int
		paths  []string
		want   string
	}{
		{"the issue API redirects", http.StatusTemporaryRedirect, nil, "1. issue API       POST /api/v1/codes"},
		{"the token endpoint redirects", http.StatusPermanentRedirect, []string{endpoints.TokenPath}, "2. token endpoint  POST /token"},
		{"the JWKS redirects", http.StatusFound, []string{endpoints.JWKSPath}, "3. JWKS            GET /.well-known/jwks.json"},
	} {
		for _, auth := range []string{"basic", "post"} {
			issuerURL := fakeIssuer(tc.status, tc.paths...)
			r := s.plugin(t, "-n", ns, "try", "brand-liveperson", "--issuer-url", issuerURL, "--client-auth", auth)
			host := strings.TrimPrefix(issuerURL, "http://")
			if r.code != 1 || !strings.Contains(r.stdout, tc.want) || !strings.Contains(r.stdout, "LivePerson would not follow a redirect here") ||
				!strings.Contains(r.stdout, "Sending the issue-API credential and the client secret to "+host+" only") {
				t.Errorf("%s, client_secret_%s: %s", tc.name, auth, r)
			}
		}
	}
	r := s.plugin(t, "-n", ns, "check", "brand", "--issuer-url", fakeIssuer(http.StatusMovedPermanently))
	if r.code != 1 || strings.Count(r.stdout, "LivePerson would not follow a redirect here") != 2 {
		t.Errorf("check of an issuer that redirects: %s", r)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(received) > 0 {
		t.Errorf("a redirect was followed: the recording server was sent %q", received)
	}
}

func keyIn(sk *v1alpha1.SigningKey, state v1alpha1.KeyState) string {
	for _, k := range sk.Status.Keys {
		if k.State == state {
			return k.KeyID
		}
	}
	return ""
}

// tamper starts a proxy to the token server at target that edits the JSON documents it returns
// (edit gets the path and the decoded object) and the requests it forwards (req). It returns
// the proxy's URL, for --issuer-url.
func tamper(t *testing.T, target string, edit func(path string, doc map[string]any), req func(*http.Request)) string {
	t.Helper()
	to, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(to)
			if req != nil {
				req(pr.Out)
			}
		},
		ModifyResponse: func(resp *http.Response) error {
			if edit == nil || resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				return nil
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			var doc map[string]any
			if err := json.Unmarshal(body, &doc); err != nil {
				return err
			}
			edit(resp.Request.URL.Path, doc)
			if body, err = json.Marshal(doc); err != nil {
				return err
			}
			resp.Body = io.NopCloser(bytes.NewReader(body))
			resp.ContentLength = int64(len(body))
			resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
			resp.Header.Del("ETag")
			return nil
		},
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv.URL
}

// dropKey removes the key kid from the JWKS: a cache that predates it.
func dropKey(kid string) func(string, map[string]any) {
	return func(path string, doc map[string]any) {
		if path != endpoints.JWKSPath {
			return
		}
		keys, _ := doc["keys"].([]any)
		doc["keys"] = slices.DeleteFunc(keys, func(k any) bool { return k.(map[string]any)["kid"] == kid })
	}
}

func dropAllKeys(path string, doc map[string]any) {
	if path == endpoints.JWKSPath {
		doc["keys"] = []any{}
	}
}

// addKey publishes a key the cluster does not hold: another server's, or an old cache's.
func addKey(jwk jose.JSONWebKey) func(string, map[string]any) {
	return func(path string, doc map[string]any) {
		if path != endpoints.JWKSPath {
			return
		}
		b, _ := jwk.MarshalJSON()
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		doc["keys"] = append(doc["keys"].([]any), m)
	}
}

func strangerJWK(t *testing.T) jose.JSONWebKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwk := jose.JSONWebKey{Key: &k.PublicKey, Algorithm: "RS256", Use: "sig"}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	return jwk
}

// wrongSecret changes the client secret LivePerson sends to /token.
func wrongSecret(r *http.Request) {
	if id, _, ok := r.BasicAuth(); ok && r.URL.Path == endpoints.TokenPath {
		r.SetBasicAuth(id, "not-the-secret-0123456789abcdefghijklmnop")
	}
}
