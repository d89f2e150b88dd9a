package popout_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// FuzzAuthorizations posts arbitrary bodies to the landing page's completion API: anything but
// a sealed login request from this server is refused, never a 5xx.
func FuzzAuthorizations(f *testing.F) {
	f.Add(`{"login_request":"x","sub":"a"}`)
	f.Add(`{"login_request":"","sub":"","claims":{"a":"b"},"lp_sdes":[{"type":"ctmrinfo","info":{}}]}`)
	f.Add(`[]`)
	f.Add(`{"login_request":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","sub":"a"}{}`)
	fx := newFixture(f, &v1alpha1.LoginSpec{LandingPage: &v1alpha1.LandingPageLogin{URL: "https://www.brand.example/login"}})
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/authorizations", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+issueToken)
		w := httptest.NewRecorder()
		fx.srv.Config.Handler.ServeHTTP(w, req)
		if w.Code != http.StatusBadRequest && w.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("body %q: %d %s", body, w.Code, w.Body)
		}
	})
}

// FuzzLoginForm posts arbitrary forms to the login form's handler: without this browser's
// sealed form and CSRF cookie nothing gets past 403, and nothing is a 5xx.
func FuzzLoginForm(f *testing.F) {
	f.Add("username=demo&password=lpauth-demo&request=x&csrf=y")
	f.Add("request=%zz")
	f.Add("")
	fx := newFixture(f, staticUsers())
	f.Fuzz(func(t *testing.T, form string) {
		req := httptest.NewRequest(http.MethodPost, "/authorize/login", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: "lpauth_csrf", Value: "y"})
		w := httptest.NewRecorder()
		fx.srv.Config.Handler.ServeHTTP(w, req)
		if w.Code != http.StatusForbidden && w.Code != http.StatusBadRequest {
			t.Fatalf("form %q: %d", form, w.Code)
		}
	})
}
