package token_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
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
	"github.com/lpauth/lpauth-operator/tokenserver/codes"
	"github.com/lpauth/lpauth-operator/tokenserver/issueapi"
	"github.com/lpauth/lpauth-operator/tokenserver/limiter"
	"github.com/lpauth/lpauth-operator/tokenserver/replay"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
	"github.com/lpauth/lpauth-operator/tokenserver/token"
)

const (
	window     = "https://lpcdn.lpsnmedia.net/le_unified_window/index.html"
	issueToken = "issue-token-0123456789abcdef"

	codeID     = "lp-code-client"
	codeSecret = "Cq8vN2xL5kR9tW3zH7mJ4pB6dF1gY0sE"
	// A secret a brand chose (the operator's rules: 32+ printable characters, no space) with
	// the characters form-decoding changes: '+', '%' escapes, and ':' '/' '=' beside them.
	brandID     = "lp-brand-chosen"
	brandSecret = "a+b/c%2Fd:e==K7q+Zp/3%41mW9:xR2vT8="
	// A client that allows plain PKCE (spec.allowPlainPKCE).
	plainOKID     = "lp-plain-allowed"
	plainOKSecret = "Pw3kX9rT6vN1qZ8mL4hJ7cB2fD5gS0aY"
)

var (
	keyOnce sync.Once
	keyData map[string][]byte
)

// fixture is a token endpoint and an issue API over one snapshot, with a clock tests move.
type fixture struct {
	snap  *snapshot.Snapshot
	token http.Handler
	issue http.Handler
	clock atomic.Int64 // seconds added to the real time
}

func (f *fixture) now() time.Time { return time.Now().Add(time.Duration(f.clock.Load()) * time.Second) }

// newFixture serves the test clients; trusted are the TokenServer's spec.trustedProxyCIDRs.
func newFixture(t testing.TB, trusted ...string) *fixture {
	t.Helper()
	keyOnce.Do(func() {
		k, err := keys.Generate(v1alpha1.RS256, 2048)
		if err != nil {
			t.Fatal(err)
		}
		n := time.Now()
		keyData, _ = keys.Encode([]keys.Key{{JWK: k, State: v1alpha1.KeyActive, CreatedAt: n, ActivatesAt: n.Add(-time.Minute)}})
	})
	client := func(name, id, secretKey string, mutate func(*v1alpha1.LivePersonAuthClientSpec)) v1alpha1.LivePersonAuthClient {
		c := v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.LivePersonAuthClientSpec{
			TokenServerRef: v1alpha1.LocalObjectReference{Name: "ts"}, AccountID: "1", ClientID: id, Flow: v1alpha1.FlowCode,
			PKCE: v1alpha1.PKCEAllowed, RedirectURIs: []string{window},
			ClientSecretRef: &v1alpha1.SecretKeyRef{Name: "secrets", Key: secretKey},
		}}
		if mutate != nil {
			mutate(&c.Spec)
		}
		return c
	}
	snap, problems, err := snapshot.Build(snapshot.Inputs{
		TokenServer: &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "ts"}, Spec: v1alpha1.TokenServerSpec{
			Issuer: "https://auth.brand.example", TrustedProxyCIDRs: trusted}},
		KeySecret: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "keys"}, Data: keyData},
		Credentials: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds"}, Data: map[string][]byte{
			credentials.CodeKeyKey: bytes.Repeat([]byte{3}, 32), credentials.IssueAPITokenKey: []byte(issueToken)}},
		Clients: []v1alpha1.LivePersonAuthClient{
			client("code", codeID, "code", nil),
			client("brand", brandID, "brand", nil),
			client("plain", plainOKID, "plain", func(s *v1alpha1.LivePersonAuthClientSpec) { s.AllowPlainPKCE = true }),
		},
		BrandSecrets: map[string]*corev1.Secret{"secrets": {Data: map[string][]byte{
			"code": []byte(codeSecret), "brand": []byte(brandSecret), "plain": []byte(plainOKSecret)}}},
		Now: time.Now(),
	})
	if err != nil || len(problems) > 0 {
		t.Fatalf("snapshot: %v %v", err, problems)
	}
	f := &fixture{snap: snap}
	holder := &snapshot.Holder{}
	holder.Store(snap)
	limiter := limiter.NewFailureLimiter(10, 6*time.Second)
	limiter.Now = f.now
	f.token = &token.Handler{Source: holder, Replay: replay.NewMemory(1000, f.now), Now: f.now, Log: logr.Discard(), Limiter: limiter}
	f.issue = (&issueapi.Handler{Source: holder, Now: f.now, Log: logr.Discard()}).Codes()
	return f
}

// code seals a code for p (ID and expiry filled in), as if issued a moment ago.
func (f *fixture) code(t testing.TB, p codes.Payload) string {
	t.Helper()
	p.ID, _ = codes.NewID()
	p.Issued, p.Expiry = f.now().Unix(), f.now().Add(time.Minute).Unix()
	c, err := f.snap.Codes.Seal(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// issueCode calls POST /api/v1/codes and returns the status and the code (or the error).
func (f *fixture) issueCode(t testing.TB, body map[string]any) (int, string) {
	t.Helper()
	b, _ := json.Marshal(body)
	req := httptest.NewRequest(http.MethodPost, "/api/v1/codes", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+issueToken)
	w := httptest.NewRecorder()
	f.issue.ServeHTTP(w, req)
	var out map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &out)
	if w.Code != http.StatusOK {
		return w.Code, out["error_description"].(string)
	}
	return w.Code, out["code"].(string)
}

// tokenCall is one request to the token endpoint.
type tokenCall struct {
	form          url.Values
	authorization string // the raw Authorization header
	remote        string // RemoteAddr, default 192.0.2.1:4000
	forwardedFor  string
}

type tokenAnswer struct {
	status     int
	err        string
	retryAfter string
	idToken    bool
	raw        string // the id_token
}

func (f *fixture) post(t testing.TB, c tokenCall) tokenAnswer {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(c.form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = "192.0.2.1:4000"
	if c.remote != "" {
		req.RemoteAddr = c.remote
	}
	if c.authorization != "" {
		req.Header.Set("Authorization", c.authorization)
	}
	if c.forwardedFor != "" {
		req.Header.Set("X-Forwarded-For", c.forwardedFor)
	}
	w := httptest.NewRecorder()
	f.token.ServeHTTP(w, req)
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("token response is not JSON: %q", w.Body)
	}
	e, _ := out["error"].(string)
	raw, hasToken := out["id_token"].(string)
	return tokenAnswer{status: w.Code, err: e, retryAfter: w.Header().Get("Retry-After"), idToken: hasToken, raw: raw}
}

// basic is an Authorization header with id and secret exactly as given (no form-encoding).
func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

// redeem is the form of an authorization_code grant.
func redeem(code string, extra ...string) url.Values {
	v := url.Values{"grant_type": {"authorization_code"}, "code": {code}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return v
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
