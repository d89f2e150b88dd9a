package lpauthctl

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

func TestPrintableEscapesWhatATerminalWouldObey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"v3vPVPpYnxcgc4DJVKbNmUeKFpFRyLUcI91bF-oJ5qg", "v3vPVPpYnxcgc4DJVKbNmUeKFpFRyLUcI91bF-oJ5qg"},
		{"invalid_grant: the code is used", "invalid_grant: the code is used"},
		{"clé «ok» ✓", "clé «ok» ✓"},
		{"\x1b]0;pwned\x07\x1b[2J", `\x1b]0;pwned\x07\x1b[2J`},
		{"a\r\nb\tc", `a\x0d\x0ab\x09c`},
		{"\u009b31m", `\x9b31m`}, // the one-byte CSI
		{"kid\u202egnp.exe", `kid\u202egnp.exe`},
		{"bad \xff byte", `bad \xff byte`},
	} {
		got := printable(tc.in)
		if got != tc.want {
			t.Errorf("printable(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if printable(got) != got {
			t.Errorf("printable(%q) is not printable itself: %q", got, printable(got))
		}
	}
	if got := excerpt([]byte(strings.Repeat("é", 150) + "\x1b")); !strings.HasSuffix(got, "é…") || len(got) > 204 {
		t.Errorf("excerpt cuts at a rune, within 200 bytes: %q", got)
	}
}

// What a server publishes or answers reaches the terminal escaped: kids in check's report, an
// error body, an OAuth error_description.
func TestServerTextIsPrintedEscaped(t *testing.T) {
	const esc = "\x1b[2J\x1b]52;c;cm0gLXJmIH4=\x07"
	sk := &v1alpha1.SigningKey{}
	sk.Name = "brand-keys"
	stranger := public(t, 0)
	stranger.KeyID = "kid" + esc
	private := key(t, 1)
	private.KeyID = "-" + strings.Repeat("A", 42)
	var out strings.Builder
	writeFindings(&out, compareKeys(sk, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{stranger, private}}))
	if strings.ContainsAny(out.String(), "\x1b\x07") || !strings.Contains(out.String(), `kid\x1b[2J\x1b]52;c;cm0gLXJmIH4=\x07: the cluster no longer holds it`) {
		t.Errorf("check's report of a kid with escapes:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "revoke it now (kubectl lpauth revoke brand-keys -- "+private.KeyID+")") {
		t.Errorf("check's revoke command for a kid starting with '-' has no --:\n%s", out.String())
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/token":
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant\x1b[31m", "error_description": esc})
		default:
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte("oops" + esc))
		}
	}))
	defer srv.Close()
	c := &cli{http: newHTTPClient(), now: time.Now}
	err := c.getJSON(context.Background(), srv.URL+"/.well-known/jwks.json", &struct{}{})
	if err == nil || strings.ContainsAny(err.Error(), "\x1b\x07") || !strings.Contains(err.Error(), `oops\x1b[2J`) {
		t.Errorf("an error body: %v", err)
	}
	tr := &trial{c: &cli{http: newHTTPClient(), stdout: &out}}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/token", nil)
	_, err = tr.do(req, &struct{}{})
	if err == nil || strings.ContainsAny(err.Error(), "\x1b\x07") || !strings.Contains(err.Error(), `answered 400 invalid_grant\x1b[31m: \x1b[2J`) {
		t.Errorf("an OAuth error: %v", err)
	}
	// The step's report and the error Main prints are escaped whatever the step put in them.
	out.Reset()
	if err := tr.fail("token endpoint", "POST /token", err); strings.ContainsAny(out.String()+err.Error(), "\x1b\x07") {
		t.Errorf("fail prints escapes: %q, %v", out.String(), err)
	}
}

func TestWhereTryAndCheckMaySendWhat(t *testing.T) {
	ts := func(issuer string) *v1alpha1.TokenServer {
		return &v1alpha1.TokenServer{Spec: v1alpha1.TokenServerSpec{Issuer: issuer}}
	}
	for _, tc := range []struct {
		issuer, issuerURL, sendTo string
		wantBase, wantHost        string // "" when refused
		wantErr                   string
	}{
		{"https://auth.brand.example/lp", "", "", "https://auth.brand.example/lp", "auth.brand.example", ""},
		{"https://auth.brand.example/lp", "http://127.0.0.1:8080/lp/", "", "http://127.0.0.1:8080/lp", "127.0.0.1:8080", ""},
		{"https://auth.brand.example", "http://localhost:8080", "", "http://localhost:8080", "localhost:8080", ""},
		{"https://auth.brand.example", "http://[::1]:8080", "", "http://[::1]:8080", "[::1]:8080", ""},
		{"https://auth.brand.example", "https://auth.brand.example:443", "", "https://auth.brand.example:443", "auth.brand.example:443", ""},
		// Another port of the issuer's host may be another server: named, or refused.
		{"https://auth.brand.example", "https://auth.brand.example:8443", "", "https://auth.brand.example:8443", "", "--send-credentials-to auth.brand.example"},
		{"https://auth.brand.example", "https://auth.brand.example:8443", "auth.brand.example:8443", "https://auth.brand.example:8443", "auth.brand.example:8443", ""},
		{"http://127.0.0.1:8080", "", "", "http://127.0.0.1:8080", "127.0.0.1:8080", ""},
		// http elsewhere than loopback: refused, as the CRD refuses such an issuer.
		{"https://auth.brand.example", "http://auth.brand.example", "", "", "", "is http on a host that is not loopback"},
		{"https://auth.brand.example", "http://10.0.0.7:8080", "10.0.0.7", "", "", "is http on a host that is not loopback"},
		{"http://auth.brand.example", "", "", "", "", "is http on a host that is not loopback, which the CRD refuses"},
		// Another host gets the credentials only when named.
		{"https://auth.brand.example", "https://evil.example", "", "https://evil.example", "", "--send-credentials-to evil.example"},
		{"https://auth.brand.example", "https://staging.brand.example", "staging.brand.example", "https://staging.brand.example", "staging.brand.example", ""},
		{"https://auth.brand.example", "https://evil.example", "staging.brand.example", "https://evil.example", "", `--send-credentials-to "staging.brand.example" is not the host`},
	} {
		c := &cli{opts: options{issuerURL: tc.issuerURL, sendCredentialsTo: tc.sendTo}}
		base, err := c.base(ts(tc.issuer))
		host := ""
		if err == nil {
			host, err = c.credentialsHost(ts(tc.issuer), base)
		}
		switch {
		case tc.wantErr == "" && (err != nil || base != tc.wantBase || host != tc.wantHost):
			t.Errorf("issuer %s, --issuer-url %q, --send-credentials-to %q: base %q, host %q, %v; want %q, %q", tc.issuer, tc.issuerURL, tc.sendTo, base, host, err, tc.wantBase, tc.wantHost)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("issuer %s, --issuer-url %q, --send-credentials-to %q: %v, want an error with %q", tc.issuer, tc.issuerURL, tc.sendTo, err, tc.wantErr)
		}
	}
}

// No redirect is followed: a 3xx is the answer, reported as a failure.
func TestRedirectsAreNotFollowed(t *testing.T) {
	var reached atomic.Bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Store(true) }))
	defer elsewhere.Close()
	srv := httptest.NewServer(http.RedirectHandler(elsewhere.URL+"/x", http.StatusPermanentRedirect))
	defer srv.Close()
	c := &cli{http: newHTTPClient()}
	err := c.getJSON(context.Background(), srv.URL+"/.well-known/jwks.json", &struct{}{})
	if err == nil || !strings.Contains(err.Error(), "answered 308 Permanent Redirect, a redirect to \""+elsewhere.URL+"/x\": LivePerson would not follow a redirect here") || reached.Load() {
		t.Errorf("a redirect: %v (followed: %v)", err, reached.Load())
	}
}
