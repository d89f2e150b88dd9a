package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzTokenRequest: the token endpoint parses untrusted form bodies and Authorization headers. It
// must never panic, always answer JSON with a known status, and never issue a token for input
// that holds no valid code.
func FuzzTokenRequest(f *testing.F) {
	fx := newFixture(f, nil)
	h := fx.srv.Config.Handler
	f.Add("grant_type=authorization_code&code=abc&redirect_uri=https%3A%2F%2Fliveperson.net", "Basic bHAtY29kZS1jbGllbnQ6eA==")
	f.Add("grant_type=authorization_code&code=%zz", "Basic %%%")
	f.Add("client_id=lp-code-client&client_secret="+codeSecret+"&grant_type=authorization_code", "")
	f.Add("a=1&a=2", "Bearer x")
	f.Fuzz(func(t *testing.T, body, authorization string) {
		req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 400, 401, 413, 429:
		default:
			t.Fatalf("status %d for body %q auth %q: %s", rec.Code, body, authorization, rec.Body)
		}
		if !strings.HasPrefix(rec.Body.String(), `{"error":`) {
			t.Fatalf("not an RFC 6749 error: %s", rec.Body)
		}
	})
}

// FuzzIssueAPI: the issue API parses untrusted JSON. It must never panic and only answer with a
// known status.
func FuzzIssueAPI(f *testing.F) {
	fx := newFixture(f, nil)
	h := fx.srv.Config.Handler
	f.Add(`{"client_id":"` + codeClientID + `","sub":"u","claims":{"email":"a@b"},"lp_sdes":[{"type":"ctmrinfo","info":{"balance":1}}]}`)
	f.Add(`{"client_id":"` + plainID + `","sub":"u","lp_sdes":null}`)
	f.Add(`{"client_id":"` + codeClientID + `","sub":"","code_challenge":"x"}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, body string) {
		for _, what := range []string{"codes", "tokens"} {
			req := httptest.NewRequest(http.MethodPost, "/api/v1/"+what, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+issueToken)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			switch rec.Code {
			case 200, 400, 413:
			default:
				t.Fatalf("%s: status %d for %q: %s", what, rec.Code, body, rec.Body)
			}
		}
	})
}
