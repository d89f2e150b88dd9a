package lpauthctl

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

var (
	keysOnce sync.Once
	testKeys [3]jose.JSONWebKey // private, with their thumbprints as kids
)

// key is test key i (0, 1, 2), generated once for the package's tests.
func key(t *testing.T, i int) jose.JSONWebKey {
	t.Helper()
	keysOnce.Do(func() {
		for j := range testKeys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			jwk := jose.JSONWebKey{Key: k, Algorithm: "RS256", Use: "sig"}
			tp, _ := jwk.Thumbprint(crypto.SHA256)
			jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
			testKeys[j] = jwk
		}
	})
	return testKeys[i]
}

func public(t *testing.T, i int) jose.JSONWebKey { k := key(t, i); return k.Public() }

func statusJWK(t *testing.T, i int) string {
	b, err := public(t, i).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCompareKeys(t *testing.T) {
	sk := &v1alpha1.SigningKey{}
	sk.Name = "brand-keys"
	sk.Status.ActiveKeyID = key(t, 0).KeyID
	sk.Status.Keys = []v1alpha1.KeyStatus{
		{KeyID: key(t, 0).KeyID, State: v1alpha1.KeyActive, PublicJWK: statusJWK(t, 0)},
		{KeyID: key(t, 1).KeyID, State: v1alpha1.KeyNext, PublicJWK: statusJWK(t, 1)},
	}
	sk.Status.RevokedKeyIDs = []string{key(t, 2).KeyID}
	set := func(keys ...jose.JSONWebKey) jose.JSONWebKeySet { return jose.JSONWebKeySet{Keys: keys} }
	other := public(t, 2)
	other.KeyID = key(t, 1).KeyID // the Next key's kid on another key
	for _, tc := range []struct {
		name     string
		set      jose.JSONWebKeySet
		problems []string
	}{
		{"all published", set(public(t, 0), public(t, 1)), nil},
		{"the Active key missing", set(public(t, 1)), []string{"Active key: " + key(t, 0).KeyID + " signs every token, but is NOT published"}},
		{"the Next key missing", set(public(t, 0)), []string{"Next key: " + key(t, 1).KeyID + " is NOT published"}},
		{"a revoked key published", set(public(t, 0), public(t, 1), public(t, 2)), []string{"published key: " + key(t, 2).KeyID + " is REVOKED, and still published"}},
		{"a private key published", set(key(t, 0), public(t, 1)), []string{"is a PRIVATE key: revoke it now"}},
		{"another key under a held kid", set(public(t, 0), other), []string{"published with another public key", "is not the key's RFC 7638 thumbprint"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := compareKeys(sk, tc.set)
			var got []string
			for _, f := range fs {
				if f.problem {
					got = append(got, f.subject+": "+f.text)
				}
			}
			if len(got) != len(tc.problems) {
				t.Fatalf("problems %q, want %d: %q", got, len(tc.problems), tc.problems)
			}
			for i, want := range tc.problems {
				if !strings.Contains(got[i], want) {
					t.Errorf("problem %d = %q, want it to contain %q", i, got[i], want)
				}
			}
		})
	}
	noActive := &v1alpha1.SigningKey{}
	if fs := compareKeys(noActive, set()); len(fs) != 1 || !fs[0].problem || !strings.Contains(fs[0].text, "no Active key") {
		t.Errorf("a SigningKey without an Active key: %+v", fs)
	}
}

func TestCompareDiscovery(t *testing.T) {
	issuer := "https://auth.brand.example/lp"
	good := discoveryDoc{Issuer: issuer, JWKSURI: issuer + "/.well-known/jwks.json", TokenEndpoint: issuer + "/token", AuthorizationEndpoint: issuer + "/authorize"}
	if n := countProblems(compareDiscovery(issuer, good)); n != 0 {
		t.Errorf("a matching document: %d problems", n)
	}
	bad := good
	bad.Issuer = "https://auth.brand.example/lp/" // a trailing slash: LivePerson compares exactly
	bad.TokenEndpoint = "https://other.example/token"
	fs := compareDiscovery(issuer, bad)
	if n := countProblems(fs); n != 2 {
		t.Errorf("issuer and token endpoint wrong: %d problems: %+v", n, fs)
	}
}

func countProblems(fs []finding) int {
	n := 0
	for _, f := range fs {
		if f.problem {
			n++
		}
	}
	return n
}

func TestVerifyTokenAsLivePersonDoes(t *testing.T) {
	now := time.Now()
	const issuer = "https://auth.brand.example"
	published := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{public(t, 0)}}
	want := expectedToken{issuer: issuer, subject: "customer-42", audience: "lp-abc"}
	claims := func(edit func(*jwt.Claims)) jwt.Claims {
		c := jwt.Claims{Issuer: issuer, Subject: "customer-42", Audience: jwt.Audience{"lp-abc"},
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour))}
		if edit != nil {
			edit(&c)
		}
		return c
	}
	sign := func(k jose.JSONWebKey, alg jose.SignatureAlgorithm, c jwt.Claims) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: k}, nil)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.Signed(s).Claims(c).Claims(map[string]any{"lp_sdes": []any{}}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	summary, err := verifyToken(sign(key(t, 0), jose.RS256, claims(nil)), published, want, now)
	if err != nil || !strings.Contains(summary, "RS256 signature verifies with published key "+key(t, 0).KeyID) || !strings.Contains(summary, "lp_sdes") {
		t.Fatalf("a good token: %q, %v", summary, err)
	}
	for _, tc := range []struct {
		name  string
		token string
		want  string
	}{
		{"signed by a key not published", sign(key(t, 1), jose.RS256, claims(nil)), "which the JWKS does not publish"},
		{"not RS256", sign(key(t, 0), jose.PS256, claims(nil)), "not an RS256 JWT"},
		{"another issuer", sign(key(t, 0), jose.RS256, claims(func(c *jwt.Claims) { c.Issuer = issuer + "/" })), "but LivePerson's JWT issuer (spec.issuer) is"},
		{"exp in milliseconds", sign(key(t, 0), jose.RS256, claims(func(c *jwt.Claims) { ms := jwt.NumericDate(now.Add(time.Hour).UnixMilli()); c.Expiry = &ms })), "milliseconds instead of seconds"},
		{"expired", sign(key(t, 0), jose.RS256, claims(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(-time.Hour)) })), "expired at"},
		{"no iat", sign(key(t, 0), jose.RS256, claims(func(c *jwt.Claims) { c.IssuedAt = nil })), "no iat"},
		{"another subject", sign(key(t, 0), jose.RS256, claims(func(c *jwt.Claims) { c.Subject = "someone" })), `sub is "someone"`},
		{"a JWE for a client without encryption", "a.b.c.d.e", "the token is encrypted (JWE), but the client has no spec.encryption"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := verifyToken(tc.token, published, want, now); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	encrypted := want
	encrypted.encrypted = true
	if _, err := verifyToken(sign(key(t, 0), jose.RS256, claims(nil)), published, encrypted, now); err == nil || !strings.Contains(err.Error(), "not encrypted") {
		t.Errorf("a plain token for a client with encryption: %v", err)
	}
}
