package token_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/lpauth/lpauth-operator/tokenserver/authorize"
	"github.com/lpauth/lpauth-operator/tokenserver/codes"
	"github.com/lpauth/lpauth-operator/tokenserver/idtoken"
)

const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk" // RFC 7636 appendix B

// authorizeCode plays the pop-out window: /authorize with the given PKCE parameters, a person
// logged in, the code sent back. It returns the code, or the error the window would get.
func (f *fixture) authorizeCode(t *testing.T, clientID string, kv ...string) (string, *authorize.Error) {
	t.Helper()
	q := url.Values{"client_id": {clientID}, "response_type": {"code"}, "redirect_uri": {window}, "scope": {"openid"}}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	req, err := authorize.Parse(q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	client, aerr := authorize.Check(f.snap, req)
	if aerr != nil {
		return "", aerr
	}
	loc, err := authorize.Complete(f.snap, client, req, idtoken.Identity{Subject: "customer-1"}, f.now())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(loc)
	return u.Query().Get("code"), nil
}

func (f *fixture) method(t *testing.T, code string) string {
	t.Helper()
	p, err := f.snap.Codes.Open(code, f.now())
	if err != nil {
		t.Fatal(err)
	}
	return p.CodeChallengeMethod
}

// TestPKCEVerifierWithoutChallengeIsRefused: RFC 9700 4.8.2. A code_verifier for a code issued
// without a challenge means the code is not the one the client's flow asked for (an injected
// code): ignoring the verifier would downgrade PKCE away.
func TestPKCEVerifierWithoutChallengeIsRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	fromAPI := func() string {
		status, code := f.issueCode(t, map[string]any{"client_id": codeID, "sub": "u", "redirect_uri": window})
		if status != http.StatusOK {
			t.Fatalf("issue API: got %d %s, want 200", status, code)
		}
		return code
	}
	fromWindow := func() string {
		code, aerr := f.authorizeCode(t, codeID)
		if aerr != nil {
			t.Fatal(aerr)
		}
		return code
	}
	for name, code := range map[string]string{"issue API": fromAPI(), "authorization endpoint": fromWindow()} {
		auth := basic(codeID, codeSecret)
		got := f.post(t, tokenCall{form: redeem(code, "redirect_uri", window, "code_verifier", verifier), authorization: auth})
		if got.status != http.StatusBadRequest || got.err != "invalid_grant" {
			t.Errorf("%s: a verifier for a code without a challenge: got %d %s, want 400 invalid_grant", name, got.status, got.err)
		}
		// The refusal was for the verifier: the same code redeems without one.
		if got := f.post(t, tokenCall{form: redeem(code, "redirect_uri", window), authorization: auth}); got.status != http.StatusOK {
			t.Errorf("%s: the same code without a verifier: got %d %s, want 200", name, got.status, got.err)
		}
	}
}

// TestPKCEDefaultsToS256: a code_challenge without code_challenge_method is S256, at the
// authorization endpoint and in the issue API (not RFC 7636's plain, RFC 9700 2.1.1).
func TestPKCEDefaultsToS256(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	auth := basic(codeID, codeSecret)
	issue := func(challenge string) string {
		status, code := f.issueCode(t, map[string]any{"client_id": codeID, "sub": "u", "code_challenge": challenge})
		if status != http.StatusOK {
			t.Fatalf("issue API: got %d %s, want 200", status, code)
		}
		return code
	}
	fromWindow := func(challenge string) string {
		code, aerr := f.authorizeCode(t, codeID, "code_challenge", challenge)
		if aerr != nil {
			t.Fatalf("authorize: %v", aerr)
		}
		return code
	}
	for name, issued := range map[string]func(string) string{"issue API": issue, "authorization endpoint": fromWindow} {
		code := issued(s256(verifier))
		if got := f.method(t, code); got != "S256" {
			t.Errorf("%s: got code_challenge_method %q in the code, want S256", name, got)
		}
		if got := f.post(t, tokenCall{form: redeem(code, "redirect_uri", window, "code_verifier", verifier), authorization: auth}); got.status != http.StatusOK {
			t.Errorf("%s: S256 verifier: got %d %s, want 200", name, got.status, got.err)
		}
		// The verifier itself as the challenge (plain) does not pass for S256.
		code = issued(verifier)
		if got := f.post(t, tokenCall{form: redeem(code, "redirect_uri", window, "code_verifier", verifier), authorization: auth}); got.status != http.StatusBadRequest || got.err != "invalid_grant" {
			t.Errorf("%s: verifier equal to the challenge: got %d %s, want 400 invalid_grant", name, got.status, got.err)
		}
	}
}

// TestPlainPKCEOnlyWhereAllowed: code_challenge_method plain only for a client with
// spec.allowPlainPKCE, wherever a code is issued or redeemed; discovery advertises S256 only.
func TestPlainPKCEOnlyWhereAllowed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tc := range []struct {
		client, secret string
		allowed        bool
	}{
		{codeID, codeSecret, false},
		{plainOKID, plainOKSecret, true},
	} {
		auth := basic(tc.client, tc.secret)
		status, code := f.issueCode(t, map[string]any{"client_id": tc.client, "sub": "u", "code_challenge": verifier, "code_challenge_method": "plain"})
		if got, want := status == http.StatusOK, tc.allowed; got != want {
			t.Errorf("%s: issue API with plain: got %d %s, want accepted %v", tc.client, status, code, want)
		}
		if status == http.StatusOK {
			if got := f.post(t, tokenCall{form: redeem(code, "code_verifier", verifier), authorization: auth}); got.status != http.StatusOK {
				t.Errorf("%s: redeeming a plain code: got %d %s, want 200", tc.client, got.status, got.err)
			}
		}

		code, aerr := f.authorizeCode(t, tc.client, "code_challenge", verifier, "code_challenge_method", "plain")
		switch {
		case tc.allowed && aerr != nil:
			t.Errorf("%s: authorize with plain: refused (%v), want accepted", tc.client, aerr)
		case tc.allowed && f.method(t, code) != "plain":
			t.Errorf("%s: authorize with plain: got method %q in the code, want plain", tc.client, f.method(t, code))
		case !tc.allowed && (aerr == nil || aerr.Page || aerr.Code != "invalid_request"):
			t.Errorf("%s: authorize with plain: got %v, want invalid_request sent back to the window", tc.client, aerr)
		}

		// A plain code from before allowPlainPKCE was turned off is not redeemed.
		sealed := f.code(t, codes.Payload{ClientID: tc.client, Subject: "u", CodeChallenge: verifier, CodeChallengeMethod: "plain"})
		got := f.post(t, tokenCall{form: redeem(sealed, "code_verifier", verifier), authorization: auth})
		if ok := got.status == http.StatusOK; ok != tc.allowed {
			t.Errorf("%s: redeeming a sealed plain code: got %d %s, want accepted %v", tc.client, got.status, got.err, tc.allowed)
		}
	}

	var doc struct {
		Methods []string `json:"code_challenge_methods_supported"`
	}
	if err := json.Unmarshal(f.snap.Discovery.Body, &doc); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(doc.Methods, []string{"S256"}) {
		t.Errorf("discovery: got code_challenge_methods_supported %v, want [S256]", doc.Methods)
	}
}

// TestPKCEVerifierMustBeRFC7636Syntax: a verifier is 43 to 128 characters of [A-Za-z0-9-._~]
// (RFC 7636 4.1), even when its S256 digest matches.
func TestPKCEVerifierMustBeRFC7636Syntax(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	auth := basic(codeID, codeSecret)
	for name, v := range map[string]string{
		"a space":        strings.Repeat("v", 42) + " ",
		"a plus":         strings.Repeat("v", 42) + "+",
		"a slash":        strings.Repeat("v", 42) + "/",
		"not ASCII":      strings.Repeat("v", 42) + "é",
		"42 characters":  strings.Repeat("v", 42),
		"129 characters": strings.Repeat("v", 129),
	} {
		code := f.code(t, codes.Payload{ClientID: codeID, Subject: "u", CodeChallenge: s256(v), CodeChallengeMethod: "S256"})
		if got := f.post(t, tokenCall{form: redeem(code, "code_verifier", v), authorization: auth}); got.status != http.StatusBadRequest || got.err != "invalid_grant" {
			t.Errorf("verifier with %s: got %d %s, want 400 invalid_grant", name, got.status, got.err)
		}
	}
	for _, v := range []string{strings.Repeat("v", 43), strings.Repeat("aZ0-._~", 19)[:128]} {
		code := f.code(t, codes.Payload{ClientID: codeID, Subject: "u", CodeChallenge: s256(v), CodeChallengeMethod: "S256"})
		if got := f.post(t, tokenCall{form: redeem(code, "code_verifier", v), authorization: auth}); got.status != http.StatusOK {
			t.Errorf("verifier %q: got %d %s, want 200", v, got.status, got.err)
		}
	}
}
