package authorize_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lpauth/lpauth-operator/api/credentials"
	"github.com/lpauth/lpauth-operator/api/keys"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/tokenserver/authorize"
	"github.com/lpauth/lpauth-operator/tokenserver/idtoken"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

const (
	window   = "https://lpcdn.lpsnmedia.net/le_unified_window/index.html"
	codeID   = "lp-code"
	implID   = "lp-implicit"
	pkceID   = "lp-pkce"
	issuerTS = "https://auth.brand.example"
)

var (
	snapOnce sync.Once
	snap     *snapshot.Snapshot
	now      = time.Now()
)

func testSnapshot(t testing.TB) *snapshot.Snapshot {
	snapOnce.Do(func() {
		k, err := keys.Generate(v1alpha1.RS256, 2048)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := keys.Encode([]keys.Key{{JWK: k, State: v1alpha1.KeyActive, CreatedAt: now, ActivatesAt: now.Add(-time.Minute)}})
		client := func(name, id string, flow v1alpha1.AuthFlow, pkce v1alpha1.PKCEMode) v1alpha1.LivePersonAuthClient {
			return v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.LivePersonAuthClientSpec{
				TokenServerRef: v1alpha1.LocalObjectReference{Name: "ts"}, AccountID: "1", ClientID: id, Flow: flow, PKCE: pkce,
				RedirectURIs:    []string{window, "https://liveperson.net", "prefix:https://lpcdn.lpsnmedia.net/le_unified_window/legacy/"},
				ClientSecretRef: &v1alpha1.SecretKeyRef{Name: "secret", Key: "s"},
			}}
		}
		s, problems, err := snapshot.Build(snapshot.Inputs{
			TokenServer: &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "ts"}, Spec: v1alpha1.TokenServerSpec{Issuer: issuerTS}},
			KeySecret:   &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "keys"}, Data: data},
			Credentials: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds"}, Data: map[string][]byte{
				credentials.CodeKeyKey: bytes.Repeat([]byte{9}, 32), credentials.IssueAPITokenKey: []byte("issue-token-0123456789")}},
			Clients: []v1alpha1.LivePersonAuthClient{
				client("code", codeID, v1alpha1.FlowCode, v1alpha1.PKCEAllowed),
				client("implicit", implID, v1alpha1.FlowImplicit, ""),
				client("pkce", pkceID, v1alpha1.FlowCode, v1alpha1.PKCERequired),
			},
			BrandSecrets: map[string]*corev1.Secret{"secret": {Data: map[string][]byte{"s": []byte("Vb6nM1qW8xK3tR9zL4hJ2pC7dF5gY0sE")}}},
			Now:          now,
		})
		if err != nil || len(problems) > 0 {
			t.Fatalf("snapshot: %v %v", err, problems)
		}
		snap = s
	})
	return snap
}

func query(kv ...string) string {
	v := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}

func TestParseKeepsStateByteForByte(t *testing.T) {
	t.Parallel()
	// LivePerson's window state: a JSON document of several KB, URL-encoded.
	state := `{"ssoKey":"` + strings.Repeat("x", 4000) + `","lpUnifiedWindowConfig":{"a":"b c/d?e=f&g"}}`
	rawState := url.QueryEscape(state)
	q := "response_type=code&client_id=" + codeID + "&scope=openid&redirect_uri=" + url.QueryEscape(window) +
		"&state=" + rawState + "&parentWindowOrigin=" + url.QueryEscape("https://www.brand.example")
	req, err := authorize.Parse(q)
	if err != nil {
		t.Fatal(err)
	}
	if req.RawState != rawState || req.State() != state || !req.HasState {
		t.Fatal("state not kept exactly")
	}
	loc, err := authorize.Complete(testSnapshot(t), testSnapshot(t).Clients[codeID], req, idtoken.Identity{Subject: "customer-1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(loc, "&state="+rawState) {
		t.Fatal("the redirect does not end with the state as received")
	}
	u, _ := url.Parse(loc)
	if u.Query().Get("state") != state || u.Query().Get("code") == "" {
		t.Fatalf("redirect query: %v", u.Query())
	}
}

func TestParseRefuses(t *testing.T) {
	t.Parallel()
	for name, q := range map[string]string{
		"repeated client_id":    "client_id=a&client_id=b",
		"repeated state":        "state=a&state=b",
		"bad escape":            "client_id=%zz",
		"bad escape in a name":  "%zz=1",
		"not UTF-8":             "client_id=%ff%fe",
		"oversize query":        "state=" + strings.Repeat("a", authorize.MaxQueryBytes),
		"repeated redirect_uri": "redirect_uri=https%3A%2F%2Fa&redirect_uri=https%3A%2F%2Fb",
	} {
		if _, err := authorize.Parse(q); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Unknown and repeated unknown parameters are LivePerson's business, not ours.
	if _, err := authorize.Parse("parentWindowOrigin=a&parentWindowOrigin=b&client_id=x"); err != nil {
		t.Errorf("unknown parameters refused: %v", err)
	}
}

func TestCheckTable(t *testing.T) {
	t.Parallel()
	s := testSnapshot(t)
	challenge := strings.Repeat("a", 43)
	cases := []struct {
		name  string
		query string
		page  bool
		code  string // "" means accepted
	}{
		{"good code request", query("client_id", codeID, "response_type", "code", "redirect_uri", window, "scope", "openid", "state", "s"), false, ""},
		{"good implicit id_token", query("client_id", implID, "response_type", "id_token", "redirect_uri", window, "state", "s"), false, ""},
		{"legacy token, config in redirect_uri, no state", query("client_id", implID, "response_type", "token",
			"redirect_uri", "https://lpcdn.lpsnmedia.net/le_unified_window/legacy/index.html?lpUnifiedWindowConfig=abc"), false, ""},
		{"good PKCE", query("client_id", pkceID, "response_type", "code", "redirect_uri", window, "code_challenge", challenge, "code_challenge_method", "S256"), false, ""},
		{"no scope is fine", query("client_id", codeID, "response_type", "code", "redirect_uri", window), false, ""},
		{"challenge without a method (S256)", query("client_id", codeID, "response_type", "code", "redirect_uri", window, "code_challenge", challenge), false, ""},

		{"missing client_id", query("response_type", "code", "redirect_uri", window), true, "invalid_request"},
		{"unknown client_id", query("client_id", "nope", "response_type", "code", "redirect_uri", window), true, "invalid_request"},
		{"missing redirect_uri", query("client_id", codeID, "response_type", "code"), true, "invalid_request"},
		{"unregistered redirect_uri", query("client_id", codeID, "response_type", "code", "redirect_uri", "https://evil.example/"), true, "invalid_request"},
		{"redirect_uri sharing a prefix without the slash", query("client_id", codeID, "response_type", "code",
			"redirect_uri", "https://lpcdn.lpsnmedia.net/le_unified_window/legacyevil"), true, "invalid_request"},
		{"relative redirect_uri", query("client_id", codeID, "response_type", "code", "redirect_uri", "/callback"), true, "invalid_request"},
		{"redirect_uri with a fragment", query("client_id", codeID, "response_type", "code", "redirect_uri", window+"#x"), true, "invalid_request"},
		{"javascript redirect_uri", query("client_id", codeID, "response_type", "code", "redirect_uri", "javascript:alert(1)"), true, "invalid_request"},

		{"missing response_type", query("client_id", codeID, "redirect_uri", window), false, "invalid_request"},
		{"unknown response_type", query("client_id", codeID, "response_type", "code id_token", "redirect_uri", window), false, "unsupported_response_type"},
		{"code for an implicit client", query("client_id", implID, "response_type", "code", "redirect_uri", window), false, "unauthorized_client"},
		{"id_token for a code client", query("client_id", codeID, "response_type", "id_token", "redirect_uri", window), false, "unauthorized_client"},
		{"scope without openid", query("client_id", codeID, "response_type", "code", "redirect_uri", window, "scope", "profile"), false, "invalid_scope"},
		{"PKCE required, no challenge", query("client_id", pkceID, "response_type", "code", "redirect_uri", window), false, "invalid_request"},
		{"short challenge", query("client_id", codeID, "response_type", "code", "redirect_uri", window, "code_challenge", "abc"), false, "invalid_request"},
		{"bad challenge characters", query("client_id", codeID, "response_type", "code", "redirect_uri", window, "code_challenge", strings.Repeat("+", 43)), false, "invalid_request"},
		{"unknown challenge method", query("client_id", codeID, "response_type", "code", "redirect_uri", window, "code_challenge", challenge, "code_challenge_method", "S512"), false, "invalid_request"},
		{"method without challenge", query("client_id", codeID, "response_type", "code", "redirect_uri", window, "code_challenge_method", "S256"), false, "invalid_request"},
		{"plain for a client without allowPlainPKCE", query("client_id", codeID, "response_type", "code", "redirect_uri", window, "code_challenge", challenge, "code_challenge_method", "plain"), false, "invalid_request"},
	}
	for _, tc := range cases {
		req, err := authorize.Parse(tc.query)
		if err != nil {
			t.Fatalf("%s: parse: %v", tc.name, err)
		}
		_, aerr := authorize.Check(s, req)
		switch {
		case tc.code == "" && aerr != nil:
			t.Errorf("%s: refused: %v", tc.name, aerr)
		case tc.code != "" && aerr == nil:
			t.Errorf("%s: accepted", tc.name)
		case aerr != nil && (aerr.Page != tc.page || aerr.Code != tc.code):
			t.Errorf("%s: page=%v code=%s, want page=%v code=%s (%s)", tc.name, aerr.Page, aerr.Code, tc.page, tc.code, aerr.Description)
		}
		if aerr != nil && !aerr.Page {
			loc := authorize.ErrorLocation(req, aerr)
			if !strings.HasPrefix(loc, window+"?error=") {
				t.Errorf("%s: error redirect %q", tc.name, loc)
			}
		}
	}
}

func TestCompleteCodeCarriesPKCEAndIdentity(t *testing.T) {
	t.Parallel()
	s := testSnapshot(t)
	verifier := strings.Repeat("v", 50)
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	req, _ := authorize.Parse(query("client_id", pkceID, "response_type", "code", "redirect_uri", window, "code_challenge", challenge, "code_challenge_method", "S256", "state", "st"))
	client, aerr := authorize.Check(s, req)
	if aerr != nil {
		t.Fatal(aerr)
	}
	loc, err := authorize.Complete(s, client, req, idtoken.Identity{Subject: "customer-7", Claims: map[string]string{"email": "a@b.example"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(loc)
	p, err := s.Codes.Open(u.Query().Get("code"), now)
	if err != nil {
		t.Fatal(err)
	}
	if p.ClientID != pkceID || p.Subject != "customer-7" || p.RedirectURI != window || p.CodeChallenge != challenge || p.CodeChallengeMethod != "S256" {
		t.Fatalf("code payload = %+v", p)
	}
	var claims map[string]string
	_ = json.Unmarshal(p.Claims, &claims)
	if claims["email"] != "a@b.example" {
		t.Fatalf("claims = %s", p.Claims)
	}
	if _, err := authorize.Complete(s, client, req, idtoken.Identity{}, now); err == nil {
		t.Fatal("completed without a subject")
	}
}

func TestCompleteImplicitKeepsTheWindowsOwnQuery(t *testing.T) {
	t.Parallel()
	s := testSnapshot(t)
	redirect := "https://lpcdn.lpsnmedia.net/le_unified_window/legacy/index.html?lpUnifiedWindowConfig=%7B%22a%22%3A1%7D"
	req, _ := authorize.Parse(query("client_id", implID, "response_type", "token", "redirect_uri", redirect))
	client, aerr := authorize.Check(s, req)
	if aerr != nil {
		t.Fatal(aerr)
	}
	loc, err := authorize.Complete(s, client, req, idtoken.Identity{Subject: "customer-9"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(loc, redirect+"&token=") || strings.Contains(loc, "state=") {
		t.Fatalf("location %q", loc)
	}
	u, _ := url.Parse(loc)
	jws, err := jose.ParseSigned(u.Query().Get("token"), []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	if jws.Signatures[0].Header.KeyID != s.SigningKeyID {
		t.Fatal("token not signed with the active key")
	}
}

func FuzzParse(f *testing.F) {
	f.Add("response_type=code&client_id=lp-code&redirect_uri=https%3A%2F%2Fliveperson.net&state=%7B%7D")
	f.Add("state=&state=")
	f.Add("%zz=%zz&&&=")
	f.Add("client_id=%ff")
	f.Fuzz(func(t *testing.T, q string) {
		req, err := authorize.Parse(q)
		if err != nil {
			return
		}
		// Whatever parses either is refused by Check or yields a redirect to a registered URI.
		client, aerr := authorize.Check(testSnapshot(t), req)
		if aerr != nil {
			if !aerr.Page && !testSnapshot(t).Clients[req.ClientID].Redirects.Allowed(req.RedirectURI) {
				t.Fatalf("a redirected error for an unregistered redirect_uri %q", req.RedirectURI)
			}
			return
		}
		if !client.Redirects.Allowed(req.RedirectURI) {
			t.Fatalf("accepted unregistered redirect_uri %q", req.RedirectURI)
		}
	})
}
