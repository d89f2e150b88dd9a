package issueapi_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lpauth/lpauth-operator/api/credentials"
	"github.com/lpauth/lpauth-operator/api/keys"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/tokenserver/issueapi"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

const (
	current  = "current-issue-api-credential-0123456789abcdef"
	retired  = "retired-issue-api-credential-0123456789abcdef"
	replaced = "this issue-API credential was replaced and is no longer accepted; use the current one from Secret brand-credentials"
	generic  = "send Authorization: Bearer <issue API credential>"
)

// retiredLine is one entry of the credentials Secret's retired list, written in its documented
// line format (not with the snapshot package's formatter, so the contract itself is checked).
func retiredLine(credential string, at time.Time) string {
	sum := sha256.Sum256([]byte(credential))
	return at.Format(time.RFC3339) + " " + base64.RawURLEncoding.EncodeToString(sum[:]) + "\n"
}

// snapshotWithRetired builds a snapshot the way the token server does, from a credentials
// Secret whose retired list is digests.
func snapshotWithRetired(t *testing.T, digests string) *snapshot.Snapshot {
	t.Helper()
	jwk, err := keys.Generate(v1alpha1.ES256, 0)
	if err != nil {
		t.Fatal(err)
	}
	keyData, err := keys.Encode([]keys.Key{{JWK: jwk, State: v1alpha1.KeyActive, CreatedAt: now.Add(-time.Hour), ActivatesAt: now.Add(-time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := snapshot.Build(snapshot.Inputs{
		TokenServer: &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand"}, Spec: v1alpha1.TokenServerSpec{
			Issuer: "https://auth.brand.example", SigningKeyRef: v1alpha1.LocalObjectReference{Name: "keys"}}},
		KeySecret: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "keys-signing-keys"}, Data: keyData},
		Credentials: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "brand-credentials"}, Data: map[string][]byte{
			credentials.CodeKeyKey:                     bytes.Repeat([]byte{1}, 32),
			credentials.IssueAPITokenKey:               []byte(current),
			credentials.RetiredIssueAPITokenDigestsKey: []byte(digests),
		}},
		BrandSecrets: map[string]*corev1.Secret{},
		Now:          now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type holder struct{ s *snapshot.Snapshot }

func (h holder) Snapshot() *snapshot.Snapshot { return h.s }

func TestARetiredCredentialIsToldItWasReplaced(t *testing.T) {
	t.Parallel()
	snap := snapshotWithRetired(t, retiredLine(retired, now.Add(-time.Hour))+retiredLine("an even older one", now.Add(-48*time.Hour)))
	srv := httptest.NewServer((&issueapi.Handler{Source: holder{snap}, Now: func() time.Time { return now }, Log: logr.Discard()}).Codes())
	defer srv.Close()

	for _, tc := range []struct {
		name, authorization string
		wantStatus          int
		wantError, wantDesc string
		// wantChallenge is the WWW-Authenticate header (RFC 6750: Bearer, never /token's Basic).
		wantChallenge string
	}{
		{"retired credential", "Bearer " + retired, http.StatusUnauthorized, "invalid_token", replaced,
			`Bearer realm="issue-api", error="invalid_token", error_description="credential replaced"`},
		{"unknown credential", "Bearer " + retired + "x", http.StatusUnauthorized, "invalid_token", generic, `Bearer realm="issue-api", error="invalid_token"`},
		{"no credential", "", http.StatusUnauthorized, "invalid_token", generic, `Bearer realm="issue-api"`},
		{"retired credential not as a bearer", "Basic " + retired, http.StatusUnauthorized, "invalid_token", generic, `Bearer realm="issue-api"`},
		// The scheme name is case-insensitive (RFC 7235).
		{"current credential, lower-case scheme", "bearer " + current, http.StatusBadRequest, "invalid_request", "client_id is required", ""},
		// The current credential gets past the check: the body is what is refused.
		{"current credential", "Bearer " + current, http.StatusBadRequest, "invalid_request", "client_id is required", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, errCode, desc, challenge := post(t, srv, tc.authorization)
			if status != tc.wantStatus || errCode != tc.wantError || desc != tc.wantDesc || challenge != tc.wantChallenge {
				t.Errorf("got %d %s %q %q, want %d %s %q %q", status, errCode, desc, challenge, tc.wantStatus, tc.wantError, tc.wantDesc, tc.wantChallenge)
			}
		})
	}
}

// A hand-edited list neither takes the server down nor makes a refused request compare more
// than the bound: malformed lines are skipped, the rest read up to the bound.
func TestAHandEditedRetiredListIsReadWithinItsBound(t *testing.T) {
	t.Parallel()
	sum := sha256.Sum256([]byte(retired))
	junk := "not a line\n" + now.Format(time.RFC3339) + " " + strings.Repeat("A", 200) + "\n" +
		"yesterday " + base64.RawURLEncoding.EncodeToString(sum[:]) + "\n"
	snap := snapshotWithRetired(t, junk+strings.Repeat(retiredLine("someone else's", now), 3*credentials.MaxRetiredIssueAPITokenDigests)+retiredLine(retired, now))
	if got, want := len(snap.RetiredIssueAPITokenDigests), credentials.MaxRetiredIssueAPITokenDigests; got != want {
		t.Fatalf("got %d retired digests, want the bound %d", got, want)
	}
	srv := httptest.NewServer((&issueapi.Handler{Source: holder{snap}, Now: func() time.Time { return now }, Log: logr.Discard()}).Codes())
	defer srv.Close()
	// Past the bound: the generic answer.
	if _, _, desc, _ := post(t, srv, "Bearer "+retired); desc != generic {
		t.Errorf("got %q, want %q", desc, generic)
	}
}

// post calls the issue API with an empty request and returns the status and OAuth error.
func post(t *testing.T, srv *httptest.Server, authorization string) (status int, errCode, desc, challenge string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body.Error, body.Description, resp.Header.Get("WWW-Authenticate")
}
