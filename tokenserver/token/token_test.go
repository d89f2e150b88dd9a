package token_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/lpauth/lpauth-operator/tokenserver/codes"
)

// TestCorrectSecretIsNeverLockedOutByOthers: failed attempts are counted per client id and
// client address, and never stand between LivePerson and a correct secret.
func TestCorrectSecretIsNeverLockedOutByOthers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "10.0.0.0/8") // the ingress
	const attacker, elsewhere, ingress = "203.0.113.7:5000", "198.51.100.9:6000", "10.0.0.5:443"
	wrong := func(remote, forwardedFor string) tokenCall {
		return tokenCall{form: redeem("x"), authorization: basic(codeID, "wrong-secret-0000000000"), remote: remote, forwardedFor: forwardedFor}
	}
	correct := func(remote, forwardedFor string) tokenCall {
		return tokenCall{form: redeem(f.code(t, codes.Payload{ClientID: codeID, Subject: "u"})), authorization: basic(codeID, codeSecret),
			remote: remote, forwardedFor: forwardedFor}
	}

	for i := range 50 {
		got := f.post(t, wrong(attacker, ""))
		want := http.StatusUnauthorized
		if i >= 10 {
			want = http.StatusTooManyRequests
		}
		if got.status != want || got.err != "invalid_client" {
			t.Fatalf("wrong attempt %d: got %d %s, want %d invalid_client", i+1, got.status, got.err, want)
		}
		if n, err := strconv.Atoi(got.retryAfter); want == http.StatusTooManyRequests && (err != nil || n < 1 || n > 6) {
			t.Fatalf("wrong attempt %d: got Retry-After %q, want 1 to 6 seconds", i+1, got.retryAfter)
		}
	}

	for _, tc := range []struct {
		name                 string
		remote, forwardedFor string
	}{
		{"from the attacker's address", attacker, ""},
		{"from another address", elsewhere, ""},
		{"through the ingress", ingress, "198.51.100.10"},
		{"through the ingress, forwarded for the attacker", ingress, "203.0.113.7"},
	} {
		if got := f.post(t, correct(tc.remote, tc.forwardedFor)); got.status != http.StatusOK || !got.idToken {
			t.Errorf("correct secret %s: got %d %s, want 200 with an id_token", tc.name, got.status, got.err)
		}
	}

	if got := f.post(t, wrong(elsewhere, "")); got.status != http.StatusUnauthorized {
		t.Errorf("a wrong attempt from another address: got %d, want 401 (not limited by the attacker's failures)", got.status)
	}
	// Behind the ingress every request has the same peer: the forwarded address is counted.
	for range 10 {
		f.post(t, wrong(ingress, "203.0.113.8"))
	}
	if got := f.post(t, wrong(ingress, "203.0.113.8")); got.status != http.StatusTooManyRequests {
		t.Errorf("the 11th wrong attempt forwarded for one address: got %d, want 429", got.status)
	}
	if got := f.post(t, wrong(ingress, "198.51.100.11")); got.status != http.StatusUnauthorized {
		t.Errorf("a wrong attempt forwarded for another address: got %d, want 401", got.status)
	}
	// A wrong attempt waits out its Retry-After and is counted again.
	got := f.post(t, wrong(attacker, ""))
	wait, _ := strconv.Atoi(got.retryAfter)
	f.clock.Add(int64(wait))
	if got := f.post(t, wrong(attacker, "")); got.status != http.StatusUnauthorized {
		t.Errorf("after Retry-After: got %d, want 401", got.status)
	}
}

// TestBasicCredentialsAcceptRawAndFormEncodedSecrets: LivePerson's docs send the secret as it
// is in the Basic header; RFC 6749 2.3.1 form-encodes it first. A brand-chosen secret with '+',
// '%', '/', '=' and ':' must work both ways, and in the body.
func TestBasicCredentialsAcceptRawAndFormEncodedSecrets(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	form := func(id string, extra ...string) url.Values {
		return redeem(f.code(t, codes.Payload{ClientID: id, Subject: "u"}), extra...)
	}
	for _, tc := range []struct {
		name          string
		authorization string
		form          url.Values
		status        int
	}{
		{"Basic, raw (LivePerson's docs)", basic(brandID, brandSecret), form(brandID), http.StatusOK},
		{"Basic, form-encoded (RFC 6749 2.3.1)", basic(url.QueryEscape(brandID), url.QueryEscape(brandSecret)), form(brandID), http.StatusOK},
		{"Basic, client id needlessly percent-encoded", basic("lp%2Dbrand%2Dchosen", brandSecret), form(brandID), http.StatusOK},
		{"Basic, generated secret", basic(codeID, codeSecret), form(codeID), http.StatusOK},
		{"client_secret_post", "", form(brandID, "client_id", brandID, "client_secret", brandSecret), http.StatusOK},
		{"client_secret_post with client_id beside Basic", basic(brandID, brandSecret), form(brandID, "client_id", brandID), http.StatusOK},

		{"Basic, '+' read as a space", basic(brandID, strings.ReplaceAll(brandSecret, "+", " ")), form(brandID), http.StatusUnauthorized},
		{"Basic, form-encoded twice", basic(brandID, url.QueryEscape(url.QueryEscape(brandSecret))), form(brandID), http.StatusUnauthorized},
		{"Basic, another client's secret", basic(brandID, codeSecret), form(brandID), http.StatusUnauthorized},
	} {
		got := f.post(t, tokenCall{form: tc.form, authorization: tc.authorization})
		if got.status != tc.status || (tc.status == http.StatusOK) != got.idToken {
			t.Errorf("%s: got %d %s, want %d", tc.name, got.status, got.err, tc.status)
		}
	}
}
