package server_test

import (
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// sumOf adds the values of every series of the named counter whose endpoint is endpoint.
func sumOf(t *testing.T, fams []*dto.MetricFamily, name, endpoint string) float64 {
	t.Helper()
	total := 0.0
	for _, fam := range fams {
		if fam.GetName() != name {
			continue
		}
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "endpoint" && l.GetValue() == endpoint {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}

// Every /token request is counted by its outcome: a token issued or one OAuth error, so the
// error ratio the alerts compute (failures over requests) sees every failure, whichever way it
// failed, and counts none twice.
func TestEveryTokenOutcomeIsCounted(t *testing.T) {
	f := newFixture(t, nil)
	auth := basic(codeClientID, codeSecret)
	used := f.code(t, map[string]any{"client_id": codeClientID, "sub": "u"})
	requests := []struct {
		name   string
		form   string
		header map[string]string
	}{
		{"issued", form(used, lpRedirect), auth},
		{"replayed", form(used, lpRedirect), auth},
		{"wrong secret", form(f.code(t, map[string]any{"client_id": codeClientID, "sub": "u"}), lpRedirect), basic(codeClientID, "wrong-secret-000000")},
		{"no credentials", form("x", lpRedirect), nil},
		{"bad code", form("not-a-code", lpRedirect), auth},
		{"wrong grant type", strings.Replace(form("x", lpRedirect), "authorization_code", "password", 1), auth},
		{"not a form", form("x", lpRedirect), map[string]string{"Content-Type": "application/json", "Authorization": auth["Authorization"]}},
	}
	for _, r := range requests {
		resp, _ := f.postToken(t, r.form, r.header)
		resp.Body.Close()
	}
	resp, err := http.Get(f.issuer + "/token") // wrong method
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	fams, err := f.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	all := sumOf(t, fams, "lpauth_http_requests_total", "token")
	failed := sumOf(t, fams, "lpauth_request_failures_total", "token")
	issued := sumOf(t, fams, "lpauth_tokens_issued_total", "token")
	if want := float64(len(requests) + 1); all != want || failed+issued != all || issued != 1 {
		t.Errorf("/token: %v requests counted (want %v), %v failed + %v issued (want every request once, 1 issued)", all, want, failed, issued)
	}
}
