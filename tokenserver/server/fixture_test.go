package server_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lpauth/lpauth-operator/api/credentials"
	"github.com/lpauth/lpauth-operator/api/keys"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/tokenserver/metrics"
	"github.com/lpauth/lpauth-operator/tokenserver/replay"
	"github.com/lpauth/lpauth-operator/tokenserver/server"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

const (
	issueToken   = "issue-api-credential-0123456789abcdef"
	codeClientID = "lp-code-client"
	codeSecret   = "Cq8vN2xL5kR9tW3zH7mJ4pB6dF1gY0sE"
	pkceClientID = "lp-pkce-client"
	pkceSecret   = "Kd7hQ2wN9xR4tL6vB1mZ8pC3jF5gH0sT"
	implicitID   = "lp-implicit-client"
	plainID      = "lp-implicit-plain"
	lpKeyID      = "lp-2026"
)

// Keys are slow to make; every fixture shares them.
var (
	keysOnce  sync.Once
	keySecret *corev1.Secret
	lpKey     *rsa.PrivateKey
	codeKey   = bytes.Repeat([]byte{7}, 32)
)

func sharedKeys(t testing.TB) {
	keysOnce.Do(func() {
		now := time.Now()
		active, err := keys.Generate(v1alpha1.RS256, 2048)
		if err != nil {
			t.Fatal(err)
		}
		next, _ := keys.Generate(v1alpha1.RS256, 2048)
		data, _ := keys.Encode([]keys.Key{
			{JWK: active, State: v1alpha1.KeyActive, CreatedAt: now, ActivatesAt: now},
			{JWK: next, State: v1alpha1.KeyNext, CreatedAt: now, ActivatesAt: now.Add(time.Hour)},
		})
		keySecret = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "keys-signing-keys"}, Data: data}
		lpKey, _ = rsa.GenerateKey(rand.Reader, 2048)
	})
}

// syncBuffer collects log lines from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) add(line string) { s.mu.Lock(); s.b.WriteString(line + "\n"); s.mu.Unlock() }
func (s *syncBuffer) String() string  { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type fixture struct {
	srv     *httptest.Server
	handler http.Handler // the server's handler, for benchmarks that skip the network
	issuer  string
	metrics *metrics.Metrics
	snap    *snapshot.Snapshot
	logs    *syncBuffer
}

// newFixture runs a token server on loopback whose issuer is its own URL, with the given
// replay store (a fresh memory store when nil).
func newFixture(t testing.TB, store replay.Store) *fixture {
	t.Helper()
	sharedKeys(t)
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	f := &fixture{srv: srv, issuer: srv.URL, logs: &syncBuffer{}}
	f.snap = buildSnapshot(t, f.issuer)
	holder := &snapshot.Holder{}
	holder.Store(f.snap)
	if store == nil {
		// As large as the server's own: a long benchmark redeems more than 10,000 codes.
		store = replay.NewMemory(1_000_000, nil)
	}
	log := funcr.New(func(prefix, args string) { f.logs.add(prefix + " " + args) }, funcr.Options{Verbosity: 10})
	f.metrics = metrics.New()
	h = server.Handler(server.Config{Issuer: f.issuer, Source: holder, Replay: store, Log: log, Metrics: f.metrics})
	f.handler = h
	return f
}

func buildSnapshot(t testing.TB, issuer string) *snapshot.Snapshot {
	der, _ := x509.MarshalPKIXPublicKey(&lpKey.PublicKey)
	lpPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	client := func(name, id string, mutate func(*v1alpha1.LivePersonAuthClientSpec)) v1alpha1.LivePersonAuthClient {
		c := v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.LivePersonAuthClientSpec{
			TokenServerRef: v1alpha1.LocalObjectReference{Name: "brand"}, AccountID: "123", ClientID: id,
			Flow: v1alpha1.FlowCode, PKCE: v1alpha1.PKCEAllowed,
			IDToken: v1alpha1.IDTokenSpec{Lifetime: metav1.Duration{Duration: time.Hour}},
		}}
		mutate(&c.Spec)
		return c
	}
	in := snapshot.Inputs{
		TokenServer: &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand"}, Spec: v1alpha1.TokenServerSpec{
			Issuer: issuer, SigningKeyRef: v1alpha1.LocalObjectReference{Name: "keys"}, CodeTTL: metav1.Duration{Duration: 2 * time.Minute},
		}},
		KeySecret: keySecret,
		Credentials: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "brand-credentials"}, Data: map[string][]byte{
			credentials.CodeKeyKey: codeKey, credentials.IssueAPITokenKey: []byte(issueToken),
		}},
		Clients: []v1alpha1.LivePersonAuthClient{
			client("code", codeClientID, func(s *v1alpha1.LivePersonAuthClientSpec) {
				s.ClientSecretRef = &v1alpha1.SecretKeyRef{Name: "code-secret", Key: "secret"}
				s.IDToken.StaticClaims = map[string]string{"brand": "acme"}
				s.IDToken.LPSdes = []apiextensionsv1.JSON{{Raw: []byte(`{"type":"ctmrinfo","info":{"ctype":"vip","cstatus":"gold"}}`)}}
			}),
			client("pkce", pkceClientID, func(s *v1alpha1.LivePersonAuthClientSpec) {
				s.ClientSecretRef = &v1alpha1.SecretKeyRef{Name: "pkce-secret", Key: "secret"}
				s.PKCE = v1alpha1.PKCERequired
			}),
			client("implicit", implicitID, func(s *v1alpha1.LivePersonAuthClientSpec) {
				s.Flow = v1alpha1.FlowImplicit
				s.Encryption = &v1alpha1.EncryptionSpec{KeysSecretRef: v1alpha1.LocalObjectReference{Name: "lp-jwe"}, Enc: v1alpha1.A256GCM}
			}),
			client("plain", plainID, func(s *v1alpha1.LivePersonAuthClientSpec) { s.Flow = v1alpha1.FlowImplicit }),
		},
		BrandSecrets: map[string]*corev1.Secret{
			"code-secret": {Data: map[string][]byte{"secret": []byte(codeSecret)}},
			"pkce-secret": {Data: map[string][]byte{"secret": []byte(pkceSecret)}},
			"lp-jwe":      {Data: map[string][]byte{lpKeyID: lpPEM}},
		},
		Now: time.Now(),
	}
	snap, problems, err := snapshot.Build(in)
	if err != nil || len(problems) > 0 {
		t.Fatalf("snapshot.Build: %v %v", err, problems)
	}
	return snap
}

// issue calls the issue API and returns the decoded body and status.
func (f *fixture) issue(t testing.TB, what string, body any) (map[string]any, int) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, f.issuer+"/api/v1/"+what, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+issueToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return out, resp.StatusCode
}

func (f *fixture) code(t testing.TB, body map[string]any) string {
	t.Helper()
	out, status := f.issue(t, "codes", body)
	if status != http.StatusOK {
		t.Fatalf("issue code: %d %v", status, out)
	}
	return out["code"].(string)
}

// postToken sends a raw token request.
func (f *fixture) postToken(t testing.TB, form string, header map[string]string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.issuer+"/token", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	_ = json.Unmarshal(raw, &out)
	return resp, out
}
