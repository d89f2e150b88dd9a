package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lpauth/lpauth-operator/tokenserver/metrics"
	"github.com/lpauth/lpauth-operator/tokenserver/replay"
	"github.com/lpauth/lpauth-operator/tokenserver/server"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

const discoveryPath = "/.well-known/openid-configuration"

// TestIssuerPathIsNeverAPattern: the issuer's path is user input. Made into a ServeMux pattern,
// "{x}" would be a wildcard that routes other paths, and "{$}" in the middle, a repeated name or
// a space would panic at every start (a crash loop: the issuer is immutable). Routing must match
// the issuer's path as literal characters, however the client escapes them, and nothing else.
func TestIssuerPathIsNeverAPattern(t *testing.T) {
	for _, tc := range []struct {
		issuer   string
		routed   []string // request targets (as sent on the wire) that must reach the discovery endpoint
		notFound []string
	}{
		{"https://x/{tenant}",
			[]string{"/%7Btenant%7D" + discoveryPath, "/{tenant}" + discoveryPath, "/%7btenant%7d" + discoveryPath},
			[]string{"/other" + discoveryPath, "/tenant" + discoveryPath, discoveryPath}},
		{"https://x/a/{$}",
			[]string{"/a/%7B$%7D" + discoveryPath, "/a/{$}" + discoveryPath},
			[]string{"/a" + discoveryPath, "/a/" + discoveryPath, "/a%2F%7B$%7D" + discoveryPath, "/other/{$}" + discoveryPath}},
		{"https://x/%7Bt%7D",
			[]string{"/%7Bt%7D" + discoveryPath, "/{t}" + discoveryPath},
			[]string{"/other" + discoveryPath, "/%257Bt%257D" + discoveryPath}},
		{"https://x/a b",
			[]string{"/a%20b" + discoveryPath},
			[]string{"/a" + discoveryPath, "/a+b" + discoveryPath, "/other" + discoveryPath}},
		{"https://x/{$}", []string{"/%7B$%7D" + discoveryPath}, []string{"/other" + discoveryPath, discoveryPath}},
		{"https://x/{a}/{a}", []string{"/%7Ba%7D/%7Ba%7D" + discoveryPath}, []string{"/b/c" + discoveryPath}},
		{"https://x/{rest...}", []string{"/%7Brest...%7D" + discoveryPath}, []string{"/a/b/c" + discoveryPath}},
		{"https://x/GET /a", []string{"/GET%20/a" + discoveryPath}, []string{"/a" + discoveryPath}},
		// Plain issuers keep working, with the same strictness.
		{"https://x/brand",
			[]string{"/brand" + discoveryPath, "/%62rand" + discoveryPath},
			[]string{"/other" + discoveryPath, "/brandx" + discoveryPath, "/brand" + discoveryPath + "/", "/brand/" + discoveryPath,
				"/brand/./.well-known/openid-configuration", "/x/../brand" + discoveryPath, "/brand/.well-known%2Fopenid-configuration",
				discoveryPath, "/brand/healthz"}},
		{"https://x", []string{discoveryPath, "/%2Ewell-known/openid-configuration"}, []string{"/other" + discoveryPath, "//" + discoveryPath}},
	} {
		t.Run(tc.issuer, func(t *testing.T) {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("Handler with issuer %q panicked: %v", tc.issuer, p)
				}
			}()
			// No snapshot yet: a routed discovery request gets 503, an unrouted one 404.
			h := server.Handler(server.Config{Issuer: tc.issuer, Source: &snapshot.Holder{}, Replay: replay.NewMemory(1, nil), Metrics: metrics.New()})
			// What a client that reads the issuer from LivePerson's console sends.
			client, err := http.NewRequest(http.MethodGet, tc.issuer+discoveryPath, nil)
			if err != nil {
				t.Fatal(err)
			}
			routed := append([]string{client.URL.RequestURI()}, tc.routed...)
			for _, target := range routed {
				if got := serve(h, target); got != http.StatusServiceUnavailable {
					t.Errorf("GET %s: %d, want 503 (the discovery endpoint, before the first snapshot)", target, got)
				}
			}
			for _, target := range tc.notFound {
				if got := serve(h, target); got != http.StatusNotFound {
					t.Errorf("GET %s: %d, want 404", target, got)
				}
			}
			if got := serve(h, "/healthz"); got != http.StatusOK {
				t.Errorf("GET /healthz: %d, want 200", got)
			}
		})
	}
}

func serve(h http.Handler, target string) int {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec.Code
}

// TestRoutesAreLabelledForMetrics: the router names each route for the metrics, and everything
// it does not route is "other".
func TestRoutesAreLabelledForMetrics(t *testing.T) {
	m := metrics.New()
	h := server.Handler(server.Config{Issuer: "https://x/{tenant}", Source: &snapshot.Holder{}, Replay: replay.NewMemory(1, nil), Metrics: m})
	for _, target := range []string{"/%7Btenant%7D/.well-known/jwks.json", "/{tenant}/token", "/healthz", "/other/token"} {
		serve(h, target)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, want := range []string{
		`lpauth_http_requests_total{code="503",endpoint="jwks"} 1`,
		`lpauth_http_requests_total{code="503",endpoint="token"} 1`,
		`lpauth_http_requests_total{code="200",endpoint="healthz"} 1`,
		`lpauth_http_requests_total{code="404",endpoint="other"} 1`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
