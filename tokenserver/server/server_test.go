package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/lpauth/lpauth-operator/tokenserver/codes"
	"github.com/lpauth/lpauth-operator/tokenserver/replay"
	"github.com/lpauth/lpauth-operator/tokenserver/replay/replaytest"
	"github.com/lpauth/lpauth-operator/tokenserver/server"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

const lpRedirect = "https://liveperson.net"

// TestLivePersonRedeemsACodeAndVerifiesTheIDToken plays LivePerson with an independent relying
// party library: discovery, code redemption with client_secret_basic, id_token verification
// against the JWKS it fetched.
func TestLivePersonRedeemsACodeAndVerifiesTheIDToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, f.issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	conf := oauth2.Config{ClientID: codeClientID, ClientSecret: codeSecret, Endpoint: provider.Endpoint(), RedirectURL: lpRedirect}
	conf.Endpoint.AuthStyle = oauth2.AuthStyleInHeader

	code := f.code(t, map[string]any{
		"client_id": codeClientID, "sub": "cust-8f14e45f", "claims": map[string]string{"given_name": "Ada", "email": "ada@example.com"},
		"lp_sdes": json.RawMessage(`[{"type":"ctmrinfo","info":{"cstatus":"platinum","balance":12.5}}]`),
	})
	tok, err := conf.Exchange(ctx, code)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: codeClientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var claims struct {
		Sub, GivenName, Email, Brand string
		Iat, Exp                     int64
		LPSdes                       []map[string]any `json:"lp_sdes"`
	}
	_ = idt.Claims(&claims)
	var all map[string]any
	_ = idt.Claims(&all)
	if idt.Subject != "cust-8f14e45f" || all["given_name"] != "Ada" || all["brand"] != "acme" || idt.Issuer != f.issuer {
		t.Errorf("claims = %v", all)
	}
	if claims.Exp-claims.Iat != 3600 || claims.Exp > time.Now().Add(2*time.Hour).Unix() {
		t.Errorf("iat %d exp %d: want seconds, one hour apart", claims.Iat, claims.Exp)
	}
	sdes, _ := json.Marshal(all["lp_sdes"])
	if string(sdes) != `[{"info":{"balance":12.5,"cstatus":"platinum","ctype":"vip"},"type":"ctmrinfo"}]` {
		t.Errorf("lp_sdes = %s, want the template merged under the request", sdes)
	}
	if tok.TokenType != "Bearer" || tok.AccessToken == "" || tok.Expiry.IsZero() {
		t.Errorf("token response: %+v", tok)
	}
	jws, _ := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if kid := jws.Signatures[0].Header.KeyID; kid != f.snap.SigningKeyID {
		t.Errorf("kid = %q, want the active key %q", kid, f.snap.SigningKeyID)
	}
}

func TestTokenResponseHeadersAndPostAuth(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	code := f.code(t, map[string]any{"client_id": codeClientID, "sub": "u1"})
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {lpRedirect},
		"client_id": {codeClientID}, "client_secret": {codeSecret}}
	resp, body := f.postToken(t, form.Encode(), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d %v", resp.StatusCode, body)
	}
	for h, want := range map[string]string{"Cache-Control": "no-store", "Pragma": "no-cache", "Content-Type": "application/json"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if body["token_type"] != "Bearer" || body["expires_in"].(float64) != 3600 || body["id_token"] == "" {
		t.Errorf("body = %v", body)
	}
}

func TestImplicitTokenIsAJWSInAJWEForLivePerson(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	out, status := f.issue(t, "tokens", map[string]any{"client_id": implicitID, "sub": "cust-1"})
	if status != http.StatusOK {
		t.Fatalf("status %d %v", status, out)
	}
	enc, err := jose.ParseEncrypted(out["token"].(string), []jose.KeyAlgorithm{jose.RSA_OAEP_256}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		t.Fatal(err)
	}
	if enc.Header.KeyID != lpKeyID || enc.Header.ExtraHeaders["cty"] != "JWT" {
		t.Errorf("JWE header kid %q cty %v", enc.Header.KeyID, enc.Header.ExtraHeaders["cty"])
	}
	inner, err := enc.Decrypt(lpKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	verifier := oidc.NewVerifier(f.issuer, oidc.NewRemoteKeySet(ctx, f.issuer+"/.well-known/jwks.json"), &oidc.Config{ClientID: implicitID})
	if idt, err := verifier.Verify(ctx, string(inner)); err != nil || idt.Subject != "cust-1" {
		t.Fatalf("inner JWS: %v", err)
	}

	plain, _ := f.issue(t, "tokens", map[string]any{"client_id": plainID, "sub": "cust-2"})
	if strings.Count(plain["token"].(string), ".") != 2 {
		t.Errorf("an unencrypted client got %q, want a compact JWS", plain["token"])
	}
}

func TestDiscoveryAndJWKSAreCacheable(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/jwks.json"} {
		resp, err := http.Get(f.issuer + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		etag := resp.Header.Get("ETag")
		if resp.StatusCode != 200 || etag == "" || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age=") {
			t.Errorf("%s: %d etag %q cache %q", path, resp.StatusCode, etag, resp.Header.Get("Cache-Control"))
		}
		req, _ := http.NewRequest(http.MethodGet, f.issuer+path, nil)
		req.Header.Set("If-None-Match", etag)
		resp2, _ := http.DefaultClient.Do(req)
		resp2.Body.Close()
		if resp2.StatusCode != http.StatusNotModified {
			t.Errorf("%s with If-None-Match: %d, want 304", path, resp2.StatusCode)
		}
	}
	var jwks jose.JSONWebKeySet
	resp, _ := http.Get(f.issuer + "/.well-known/jwks.json")
	_ = json.NewDecoder(resp.Body).Decode(&jwks)
	resp.Body.Close()
	if len(jwks.Keys) != 2 {
		t.Errorf("JWKS has %d keys, want the Active and the Next key", len(jwks.Keys))
	}
	for _, k := range jwks.Keys {
		if !k.IsPublic() || k.KeyID == "" {
			t.Errorf("JWKS key %q: public %v", k.KeyID, k.IsPublic())
		}
	}
}

func basic(id, secret string) map[string]string {
	return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))}
}

func s256(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestBadTokenRequests: each refused with the exact status and RFC 6749 error code.
func TestBadTokenRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	verifier := strings.Repeat("v", 43)
	fresh := func(body map[string]any) string { return f.code(t, body) }
	codeFor := func() string { return fresh(map[string]any{"client_id": codeClientID, "sub": "u"}) }
	seal := func(p codes.Payload) string {
		p.ID, _ = codes.NewID()
		s, err := f.snap.Codes.Seal(p)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	otherKey, _ := codes.NewSealer(make([]byte, 32))
	foreign, _ := otherKey.Seal(codes.Payload{ID: "x", ClientID: codeClientID, Subject: "u", Expiry: time.Now().Add(time.Minute).Unix()})
	good := codeFor()
	tampered := good[:len(good)-2] + map[bool]string{true: "AA", false: "BB"}[strings.HasSuffix(good, "BB")]
	used := codeFor()
	if resp, _ := f.postToken(t, form(used, lpRedirect), basic(codeClientID, codeSecret)); resp.StatusCode != 200 {
		t.Fatal("the first redemption failed")
	}
	auth := basic(codeClientID, codeSecret)

	for _, tc := range []struct {
		name   string
		method string
		body   string
		header map[string]string
		query  string
		status int
		code   string
	}{
		{"GET", http.MethodGet, "", auth, "", 405, "invalid_request"},
		{"PUT", http.MethodPut, form(codeFor(), lpRedirect), auth, "", 405, "invalid_request"},
		{"JSON body", "", `{"grant_type":"authorization_code"}`, merge(auth, map[string]string{"Content-Type": "application/json"}), "", 400, "invalid_request"},
		{"content type with a charset", "", form(codeFor(), lpRedirect), merge(auth, map[string]string{"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}), "", 200, ""},
		{"content type of another case", "", form(codeFor(), lpRedirect), merge(auth, map[string]string{"Content-Type": "Application/X-WWW-Form-URLencoded"}), "", 200, ""},
		{"no content type", "", form(codeFor(), lpRedirect), merge(auth, map[string]string{"Content-Type": ""}), "", 400, "invalid_request"},
		{"malformed form", "", "grant_type=authorization_code&code=%zz", auth, "", 400, "invalid_request"},
		{"repeated code", "", form(codeFor(), lpRedirect) + "&code=x", auth, "", 400, "invalid_request"},
		{"repeated grant_type", "", form(codeFor(), lpRedirect) + "&grant_type=authorization_code", auth, "", 400, "invalid_request"},
		{"oversize body", "", "grant_type=authorization_code&code=" + strings.Repeat("a", 64<<10), auth, "", 413, "invalid_request"},
		{"code in the query", "", "grant_type=authorization_code", auth, "code=abc", 400, "invalid_request"},
		{"secret in the query", "", form(codeFor(), lpRedirect), nil, "client_secret=" + codeSecret, 400, "invalid_request"},
		// URL.Query drops pairs it cannot parse: each of these hid a code or a secret from it.
		{"code in the query, behind a semicolon", "", form(codeFor(), lpRedirect), auth, "code=abc;", 400, "invalid_request"},
		{"secret in the query, behind a bad escape", "", form(codeFor(), lpRedirect), auth, "client_secret=" + codeSecret + "%zz", 400, "invalid_request"},
		{"malformed query", "", form(codeFor(), lpRedirect), auth, "x=%zz", 400, "invalid_request"},
		{"no credentials", "", form(codeFor(), lpRedirect), nil, "", 401, "invalid_client"},
		{"unknown client (basic)", "", form(codeFor(), lpRedirect), basic("lp-nobody", codeSecret), "", 401, "invalid_client"},
		{"unknown client (post)", "", form(codeFor(), lpRedirect) + "&client_id=lp-nobody&client_secret=x", nil, "", 401, "invalid_client"},
		{"wrong secret (basic)", "", form(codeFor(), lpRedirect), basic(codeClientID, "wrong-secret-000000"), "", 401, "invalid_client"},
		{"wrong secret (post)", "", form(codeFor(), lpRedirect) + "&client_id=" + codeClientID + "&client_secret=nope", nil, "", 401, "invalid_client"},
		{"empty secret (post)", "", form(codeFor(), lpRedirect) + "&client_id=" + codeClientID, nil, "", 401, "invalid_client"},
		{"another client's secret", "", form(codeFor(), lpRedirect), basic(codeClientID, pkceSecret), "", 401, "invalid_client"},
		{"both basic and post secret", "", form(codeFor(), lpRedirect) + "&client_secret=" + codeSecret, auth, "", 400, "invalid_request"},
		{"client_id differs from basic", "", form(codeFor(), lpRedirect) + "&client_id=" + pkceClientID, auth, "", 400, "invalid_request"},
		{"bearer authorization", "", form(codeFor(), lpRedirect), map[string]string{"Authorization": "Bearer x"}, "", 401, "invalid_client"},
		{"basic that is not base64", "", form(codeFor(), lpRedirect), map[string]string{"Authorization": "Basic %%%"}, "", 401, "invalid_client"},
		{"implicit client at the token endpoint", "", form(codeFor(), lpRedirect), basic(implicitID, "anything-at-all-0000"), "", 401, "invalid_client"},
		{"no grant_type", "", "code=" + codeFor(), auth, "", 400, "invalid_request"},
		{"client_credentials grant", "", "grant_type=client_credentials", auth, "", 400, "unsupported_grant_type"},
		{"refresh_token grant", "", "grant_type=refresh_token&refresh_token=x", auth, "", 400, "unsupported_grant_type"},
		{"password grant", "", "grant_type=password&username=a&password=b", auth, "", 400, "unsupported_grant_type"},
		{"no code", "", "grant_type=authorization_code", auth, "", 400, "invalid_request"},
		{"garbage code", "", form("not-a-code", lpRedirect), auth, "", 400, "invalid_grant"},
		{"code too long", "", form(strings.Repeat("A", codes.MaxCodeLength+1), lpRedirect), auth, "", 400, "invalid_grant"},
		{"tampered code", "", form(tampered, lpRedirect), auth, "", 400, "invalid_grant"},
		{"code sealed with another key", "", form(foreign, lpRedirect), auth, "", 400, "invalid_grant"},
		{"expired code", "", form(seal(codes.Payload{ClientID: codeClientID, Subject: "u", Expiry: time.Now().Add(-time.Second).Unix()}), lpRedirect), auth, "", 400, "invalid_grant"},
		{"reused code", "", form(used, lpRedirect), auth, "", 400, "invalid_grant"},
		{"code of another client", "", form(fresh(map[string]any{"client_id": pkceClientID, "sub": "u", "code_challenge": s256(verifier), "code_challenge_method": "S256"}), lpRedirect), auth, "", 400, "invalid_grant"},
		{"redirect_uri differs from the code's", "", form(fresh(map[string]any{"client_id": codeClientID, "sub": "u", "redirect_uri": "https://liveperson.net/"}), lpRedirect), auth, "", 400, "invalid_grant"},
		{"redirect_uri not registered", "", form(codeFor(), "https://evil.example/cb"), auth, "", 400, "invalid_grant"},
		{"redirect_uri on a look-alike host", "", form(codeFor(), "https://liveperson.net.evil.example"), auth, "", 400, "invalid_grant"},
		{"PKCE code without verifier", "", form(fresh(map[string]any{"client_id": codeClientID, "sub": "u", "code_challenge": s256(verifier), "code_challenge_method": "S256"}), lpRedirect), auth, "", 400, "invalid_grant"},
		{"PKCE wrong verifier", "", form(fresh(map[string]any{"client_id": codeClientID, "sub": "u", "code_challenge": s256(verifier), "code_challenge_method": "S256"}), lpRedirect) + "&code_verifier=" + strings.Repeat("w", 43), auth, "", 400, "invalid_grant"},
		{"PKCE verifier too short", "", form(fresh(map[string]any{"client_id": codeClientID, "sub": "u", "code_challenge": s256("vvv"), "code_challenge_method": "S256"}), lpRedirect) + "&code_verifier=vvv", auth, "", 400, "invalid_grant"},
		{"plain PKCE code, client without allowPlainPKCE", "", form(seal(codes.Payload{ClientID: codeClientID, Subject: "u", Expiry: time.Now().Add(time.Minute).Unix(), CodeChallenge: verifier, CodeChallengeMethod: "plain"}), lpRedirect) + "&code_verifier=" + verifier, auth, "", 400, "invalid_grant"},
		{"code_verifier for a code without a challenge", "", form(codeFor(), lpRedirect) + "&code_verifier=" + verifier, auth, "", 400, "invalid_grant"},
		{"PKCE-required client, code without challenge", "", form(seal(codes.Payload{ClientID: pkceClientID, Subject: "u", Expiry: time.Now().Add(time.Minute).Unix()}), lpRedirect), basic(pkceClientID, pkceSecret), "", 400, "invalid_grant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			target := f.issuer + "/token"
			if tc.query != "" {
				target += "?" + tc.query
			}
			req, _ := http.NewRequest(method, target, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tc.header {
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
			var body map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&body)
			refused := tc.code != "" && body["error"] == tc.code
			accepted := tc.code == "" && body["error"] == nil && body["id_token"] != nil
			if resp.StatusCode != tc.status || !refused && !accepted {
				t.Errorf("got %d %v, want %d %s", resp.StatusCode, body["error"], tc.status, tc.code)
			}
			if resp.StatusCode == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Error("error response without Cache-Control: no-store")
			}
		})
	}

	// A PKCE code with the right verifier redeems: the table's refusals were for the stated reason.
	c := fresh(map[string]any{"client_id": codeClientID, "sub": "u", "code_challenge": s256(verifier), "code_challenge_method": "S256"})
	if resp, body := f.postToken(t, form(c, lpRedirect)+"&code_verifier="+verifier, auth); resp.StatusCode != 200 {
		t.Errorf("PKCE redemption with the right verifier: %d %v", resp.StatusCode, body)
	}
}

func form(code, redirectURI string) string {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}}.Encode()
}

func merge(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func TestBadIssueAPIRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for _, tc := range []struct {
		name, what, body, auth, ctype string
		status                        int
		code                          string
	}{
		{"no credential", "codes", `{"client_id":"` + codeClientID + `","sub":"u"}`, "", "", 401, "invalid_token"},
		{"wrong credential", "codes", `{"client_id":"` + codeClientID + `","sub":"u"}`, "Bearer wrong", "", 401, "invalid_token"},
		{"basic instead of bearer", "tokens", `{"client_id":"` + plainID + `","sub":"u"}`, "Basic " + issueToken, "", 401, "invalid_token"},
		{"form body", "codes", "client_id=x", "", "application/x-www-form-urlencoded", 400, "invalid_request"},
		{"malformed JSON", "codes", `{"client_id":`, "", "", 400, "invalid_request"},
		{"unknown field", "codes", `{"client_id":"` + codeClientID + `","sub":"u","subject":"v"}`, "", "", 400, "invalid_request"},
		{"two JSON values", "codes", `{"client_id":"` + codeClientID + `","sub":"u"} {}`, "", "", 400, "invalid_request"},
		{"no client_id", "codes", `{"sub":"u"}`, "", "", 400, "invalid_request"},
		{"unknown client", "codes", `{"client_id":"lp-nobody","sub":"u"}`, "", "", 400, "invalid_request"},
		{"no sub", "codes", `{"client_id":"` + codeClientID + `"}`, "", "", 400, "invalid_request"},
		{"sub too long", "tokens", `{"client_id":"` + plainID + `","sub":"` + strings.Repeat("s", 256) + `"}`, "", "", 400, "invalid_request"},
		{"reserved claim", "codes", `{"client_id":"` + codeClientID + `","sub":"u","claims":{"iss":"x"}}`, "", "", 400, "invalid_request"},
		{"bad lp_sdes", "codes", `{"client_id":"` + codeClientID + `","sub":"u","lp_sdes":[{"type":"purchase"}]}`, "", "", 400, "invalid_request"},
		{"lp_sdes field typo", "tokens", `{"client_id":"` + plainID + `","sub":"u","lp_sdes":[{"type":"personal","personal":{"firstName":"A"}}]}`, "", "", 400, "invalid_request"},
		{"code for an implicit client", "codes", `{"client_id":"` + plainID + `","sub":"u"}`, "", "", 400, "invalid_request"},
		{"unregistered redirect_uri", "codes", `{"client_id":"` + codeClientID + `","sub":"u","redirect_uri":"https://evil.example"}`, "", "", 400, "invalid_request"},
		{"PKCE required, no challenge", "codes", `{"client_id":"` + pkceClientID + `","sub":"u"}`, "", "", 400, "invalid_request"},
		{"unknown challenge method", "codes", `{"client_id":"` + codeClientID + `","sub":"u","code_challenge":"` + strings.Repeat("c", 43) + `","code_challenge_method":"S512"}`, "", "", 400, "invalid_request"},
		{"short challenge", "codes", `{"client_id":"` + codeClientID + `","sub":"u","code_challenge":"abc"}`, "", "", 400, "invalid_request"},
		{"oversize body", "tokens", `{"client_id":"` + plainID + `","sub":"` + strings.Repeat("s", 40<<10) + `"}`, "", "", 413, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, f.issuer+"/api/v1/"+tc.what, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+issueToken)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			if tc.name == "no credential" {
				req.Header.Del("Authorization")
			}
			ct := "application/json"
			if tc.ctype != "" {
				ct = tc.ctype
			}
			req.Header.Set("Content-Type", ct)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tc.status || body["error"] != tc.code {
				t.Errorf("got %d %v (%v), want %d %s", resp.StatusCode, body["error"], body["error_description"], tc.status, tc.code)
			}
		})
	}
}

func TestRepeatedFailedAuthenticationIsSlowed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for i := range 10 {
		if resp, _ := f.postToken(t, form("x", lpRedirect), basic(codeClientID, "wrong-secret-000000")); resp.StatusCode != 401 {
			t.Fatalf("attempt %d: %d, want 401", i, resp.StatusCode)
		}
	}
	resp, body := f.postToken(t, form("x", lpRedirect), basic(codeClientID, "wrong-secret-000000"))
	if resp.StatusCode != http.StatusTooManyRequests || body["error"] != "invalid_client" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("the 11th failure: %d %v (Retry-After %q), want 429 invalid_client with Retry-After", resp.StatusCode, body["error"], resp.Header.Get("Retry-After"))
	}
	// A correct secret is never refused (token's TestCorrectSecretIsNeverLockedOutByOthers).
	resp, body = f.postToken(t, form(f.code(t, map[string]any{"client_id": codeClientID, "sub": "u"}), lpRedirect), basic(codeClientID, codeSecret))
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the correct secret after 10 failures: %d %v, want 200", resp.StatusCode, body["error"])
	}
	if resp, _ := f.postToken(t, form("x", lpRedirect), basic(pkceClientID, "wrong-secret-000000")); resp.StatusCode != 401 {
		t.Errorf("another client was slowed too: %d", resp.StatusCode)
	}
}

// TestOneOfAThousandConcurrentRedemptionsAcrossTwoReplicasWins: two token servers sharing a real
// Redis, the same code presented 1,000 times at once, half to each.
func TestOneOfAThousandConcurrentRedemptionsAcrossTwoReplicasWins(t *testing.T) {
	t.Parallel()
	redisURL := replaytest.StartRedis(t)
	store := func() replay.Store {
		r, err := replay.NewRedis(redisURL, "lpauth:")
		if err != nil {
			t.Fatal(err)
		}
		// This test is about exactly-once, not latency: under the race detector on two busy cores
		// a claim may queue longer than the production bound, which would fail closed (503).
		r.ClaimTimeout = 10 * time.Second
		t.Cleanup(func() { r.Close() })
		return r
	}
	a := newFixture(t, store())
	b := newFixture(t, store())
	// Same keys and code key: b redeems what a issued, as replicas of one TokenServer do. The
	// issuers differ (two loopback ports), which codes do not depend on.
	code := a.code(t, map[string]any{"client_id": codeClientID, "sub": "u"})
	var ok, refused, other atomic.Int64
	var wg sync.WaitGroup
	transport := &http.Transport{MaxIdleConnsPerHost: 100}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			target := a.issuer
			if i%2 == 1 {
				target = b.issuer
			}
			req, _ := http.NewRequest(http.MethodPost, target+"/token", strings.NewReader(form(code, lpRedirect)))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(codeClientID, codeSecret)
			resp, err := client.Do(req)
			if err != nil {
				if other.Add(1) == 1 {
					t.Logf("request error: %v", err)
				}
				return
			}
			resp.Body.Close()
			switch resp.StatusCode {
			case 200:
				ok.Add(1)
			case 400:
				refused.Add(1)
			default:
				if other.Add(1) == 1 {
					t.Logf("unexpected status %d", resp.StatusCode)
				}
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || refused.Load() != 999 {
		for _, l := range strings.Split(a.logs.String()+b.logs.String(), "\n") {
			if strings.Contains(l, "replay store") {
				t.Log(l)
				break
			}
		}
		t.Errorf("%d redeemed, %d refused, %d other; want exactly 1 and 999", ok.Load(), refused.Load(), other.Load())
	}
}

// TestNoSecretOrCodeOrTokenInLogs runs a full mix of good and bad requests and greps the logs.
func TestNoSecretOrCodeOrTokenInLogs(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	var sensitive []string
	code := f.code(t, map[string]any{"client_id": codeClientID, "sub": "u"})
	sensitive = append(sensitive, code, codeSecret, pkceSecret, issueToken)
	_, body := f.postToken(t, form(code, lpRedirect), basic(codeClientID, codeSecret))
	sensitive = append(sensitive, body["id_token"].(string), body["access_token"].(string))
	f.postToken(t, form(code, lpRedirect), basic(codeClientID, codeSecret))          // reused
	f.postToken(t, form(code+"x", lpRedirect), basic(codeClientID, codeSecret))      // garbage
	f.postToken(t, form(code, lpRedirect), basic(codeClientID, "wrong-"+codeSecret)) // wrong secret
	f.postToken(t, form(code, lpRedirect)+"&client_secret="+codeSecret, basic(codeClientID, codeSecret))
	out, _ := f.issue(t, "tokens", map[string]any{"client_id": plainID, "sub": "u"})
	sensitive = append(sensitive, out["token"].(string))
	req, _ := http.NewRequest(http.MethodPost, f.issuer+"/api/v1/codes", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+issueToken+"x")
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()

	logs := f.logs.String()
	if !strings.Contains(logs, "Token request refused") {
		t.Fatalf("no log lines were written; the test would prove nothing:\n%s", logs)
	}
	for _, s := range sensitive {
		for _, piece := range []string{s, s[:min(len(s), 24)]} {
			if strings.Contains(logs, piece) {
				t.Errorf("the logs contain a secret, code or token (%s…)", fmt.Sprint(piece[:8]))
			}
		}
	}
}

func TestMetricsCountRequestsIssuesAndFailures(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	code := f.code(t, map[string]any{"client_id": codeClientID, "sub": "u"})
	f.postToken(t, form(code, lpRedirect), basic(codeClientID, codeSecret))
	f.postToken(t, form(code, lpRedirect), basic(codeClientID, codeSecret))
	rec := httptest.NewRecorder()
	f.metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, want := range []string{
		`lpauth_http_requests_total{code="200",endpoint="token"} 1`,
		`lpauth_http_requests_total{code="400",endpoint="token"} 1`,
		`lpauth_tokens_issued_total{client="lp-code-client",endpoint="issue_codes",flow="Code"} 1`,
		`lpauth_tokens_issued_total{client="lp-code-client",endpoint="token",flow="Code"} 1`,
		`lpauth_request_failures_total{endpoint="token",error="invalid_grant"} 1`,
		`lpauth_http_request_duration_seconds_count{endpoint="token"} 2`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(rec.Body.String(), code) {
		t.Error("a code appears in the metrics")
	}
}

func TestReadyOnlyWithASnapshot(t *testing.T) {
	t.Parallel()
	h := server.Handler(server.Config{Issuer: "https://auth.example", Source: &snapshot.Holder{}, Replay: replay.NewMemory(1, nil)})
	for path, want := range map[string]int{"/readyz": 503, "/healthz": 200, "/token": 503, "/.well-known/jwks.json": 503} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader("")))
		if path == "/.well-known/jwks.json" {
			rec = httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		}
		if rec.Code != want {
			t.Errorf("%s before the first snapshot: %d, want %d", path, rec.Code, want)
		}
	}
}
