package token_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lpauth/lpauth-operator/api/lpsdes"
	"github.com/lpauth/lpauth-operator/tokenserver/codes"
)

// lpSDEsOf returns the lp_sdes member of an id_token's payload, as written.
func lpSDEsOf(t *testing.T, idToken string) string {
	t.Helper()
	parts := strings.Split(idToken, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", idToken)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return string(claims["lp_sdes"])
}

// A code the issue API seals carries its lp_sdes already validated and written as a token
// carries them, and a client with no template gets them as they are. The token must read
// exactly as one from a code sealed before that (the brand's own bytes, parsed again at
// redemption), with and without a template on the client.
func TestCodeSDEsReachTheTokenAsWhenParsedAgain(t *testing.T) {
	t.Parallel()
	// The brand's bytes: spaces, personal before ctmrinfo, an escape-worthy character, a
	// number in exponent form.
	raw := `[ {"type":"personal","personal":{"lastname":"O'Brien & <Sons>","firstname":"Ada"}},
		{"type":"ctmrinfo","info":{"balance":-1.50e3,"customerId":"8271","ctype":"gold"}} ]`
	const want = `[{"info":{"balance":-1.50e3,"ctype":"gold","customerId":"8271"},"type":"ctmrinfo"},` +
		`{"personal":{"firstname":"Ada","lastname":"O'Brien \u0026 \u003cSons\u003e"},"type":"personal"}]`
	f := newFixture(t)
	redeemed := func(code string) string {
		t.Helper()
		got := f.post(t, tokenCall{form: redeem(code), authorization: basic(codeID, codeSecret)})
		if got.status != http.StatusOK {
			t.Fatalf("redeeming: %d %s", got.status, got.err)
		}
		return lpSDEsOf(t, got.raw)
	}
	issued := func() string {
		t.Helper()
		status, code := f.issueCode(t, map[string]any{"client_id": codeID, "sub": "u", "lp_sdes": json.RawMessage(raw)})
		if status != http.StatusOK {
			t.Fatalf("issuing: %d %s", status, code)
		}
		return code
	}
	legacy := func() string {
		return f.code(t, codes.Payload{ClientID: codeID, Subject: "u", LPSdes: json.RawMessage(raw)})
	}

	// For a client with no template a code's written lp_sdes are the token's, byte for byte:
	// these are in an order parsing and merging again would change.
	const spliced = `[{"personal":{"firstname":"Ada"},"type":"personal"},{"info":{"ctype":"gold"},"type":"ctmrinfo"}]`
	if got := redeemed(f.code(t, codes.Payload{ClientID: codeID, Subject: "u", LPSdes: json.RawMessage(spliced), SDEsWritten: true})); got != spliced {
		t.Errorf("written lp_sdes, no template: got %s, want them as written %s", got, spliced)
	}
	// lp_sdes under 8 KB as sent but not once escaped are refused when the code is issued, not
	// when it is redeemed (after its claim, which would burn it). The body is written by hand:
	// json.Marshal would escape the brand's '&' itself.
	big := `[{"type":"ctmrinfo","info":{"ctype":"` + strings.Repeat("&", 500) + `","cstatus":"` + strings.Repeat("<", 500) +
		`","role":"` + strings.Repeat(">", 500) + `","userName":"` + strings.Repeat("&", 500) + `"}}]`
	req := httptest.NewRequest(http.MethodPost, "/api/v1/codes", strings.NewReader(`{"client_id":"`+codeID+`","sub":"u","lp_sdes":`+big+`}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+issueToken)
	w := httptest.NewRecorder()
	f.issue.ServeHTTP(w, req)
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "as the token carries them") {
		t.Errorf("lp_sdes of 12 KB once escaped: got %d %s, want 400", w.Code, w.Body)
	}
	if p, err := f.snap.Codes.Open(issued(), f.now()); err != nil || !p.SDEsWritten {
		t.Fatalf("the issue API's code does not say its lp_sdes are written (%v)", err)
	}
	if got := redeemed(issued()); got != want {
		t.Errorf("issued code, no template:\n got %s\nwant %s", got, want)
	}
	if got := redeemed(legacy()); got != want {
		t.Errorf("code with the brand's bytes, no template:\n got %s\nwant %s", got, want)
	}

	// With a template the SDEs are merged over the client's current one, whatever the code.
	templ, err := lpsdes.Parse([]byte(`[{"type":"ctmrinfo","info":{"ctype":"silver","companySize":500}}]`))
	if err != nil {
		t.Fatal(err)
	}
	f.snap.Clients[codeID].SDEs = templ
	const merged = `[{"info":{"balance":-1.50e3,"companySize":500,"ctype":"gold","customerId":"8271"},"type":"ctmrinfo"},` +
		`{"personal":{"firstname":"Ada","lastname":"O'Brien \u0026 \u003cSons\u003e"},"type":"personal"}]`
	if got := redeemed(issued()); got != merged {
		t.Errorf("issued code, template:\n got %s\nwant %s", got, merged)
	}
	if got := redeemed(legacy()); got != merged {
		t.Errorf("code with the brand's bytes, template:\n got %s\nwant %s", got, merged)
	}
}
