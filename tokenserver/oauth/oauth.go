// Package oauth is the vocabulary the token server's endpoints share: OAuth 2.0 errors and how
// they are written (RFC 6749, RFC 6750), PKCE (RFC 7636), and what a handler reports of a
// request (Result) for metrics and logs. The endpoints themselves are tokenserver/token (/token),
// tokenserver/issueapi (/api/v1/*) and tokenserver/popout (the pop-out window).
package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"

	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

// Source gives the current snapshot, or nil before the first one is built.
type Source interface {
	Snapshot() *snapshot.Snapshot
}

// Result is what happened to a request, for metrics and logs (never a secret, code or token).
type Result struct {
	Endpoint string
	ClientID string
	Flow     string
	Err      *Error
}

// Observer is told the result of every request it should count.
type Observer func(r *http.Request, res Result)

// VerifyPKCE checks a verifier against its challenge (RFC 7636 4.6); a method other than plain
// is S256.
func VerifyPKCE(challenge, method, verifier string) bool {
	if !ValidVerifier(verifier) {
		return false
	}
	computed := verifier
	if method != "plain" {
		sum := sha256.Sum256([]byte(verifier))
		computed = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return subtle.ConstantTimeCompare([]byte(computed), []byte(challenge)) == 1
}

// ValidVerifier is RFC 7636 4.1: 43 to 128 characters of [A-Za-z0-9-._~].
func ValidVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
		default:
			return false
		}
	}
	return true
}

// Route is one endpoint of the token server: the path under the issuer it serves, its handler,
// and its name, which is also its metric label. Each endpoint package lists its routes; the
// server's route table is made of them.
type Route struct {
	Name, Path string
	Handler    http.Handler
}

type endpointKey struct{}

// WithEndpoint is r with the name of the route that serves it: the router sets it, so the name a
// handler reports in its Result (and the metrics count) is the name the route was registered under.
func WithEndpoint(r *http.Request, name string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), endpointKey{}, name))
}

// Endpoint is the name of the route serving r, or "" outside the route table (a test calling a
// handler directly).
func Endpoint(r *http.Request) string {
	name, _ := r.Context().Value(endpointKey{}).(string)
	return name
}
