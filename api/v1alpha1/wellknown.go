package v1alpha1

import "time"

// Lifetimes of what a token server seals with its code key, shared by the token server (which
// seals) and the operator (which keeps a replaced code key until everything it sealed expired).
const (
	// DefaultCodeTTL is spec.codeTTL when unset.
	DefaultCodeTTL = 120 * time.Second
	// LoginFormTTL is how long a login form (staticUsers) stays valid once shown.
	LoginFormTTL = 10 * time.Minute
	// DefaultLandingRequestTTL is spec.login.landingPage.requestTTL when unset.
	DefaultLandingRequestTTL = 10 * time.Minute
	// UpstreamLoginTTL is how long a visitor may take at the brand's upstream OpenID provider: the
	// sealed state cookie lives that long.
	UpstreamLoginTTL = 10 * time.Minute
)

// Annotations on a TokenServer's credentials Secret: when each previous value stops being
// accepted (RFC 3339). The operator removes a value with its annotation; the token server also
// stops accepting it at that time, so an operator that is down never extends an overlap.
const (
	AnnotationPreviousCodeKeyUntil       = "auth.lpauth.dev/previous-code-key-until"
	AnnotationPreviousIssueAPITokenUntil = "auth.lpauth.dev/previous-issue-api-token-until"
	// AnnotationPreviousUntil is the one expiry older operators wrote for both previous values;
	// it applies to either value without an annotation of its own.
	AnnotationPreviousUntil = "auth.lpauth.dev/previous-until"
)

// JWKSMaxAge is how long relying parties may cache the JWKS and discovery documents
// (Cache-Control max-age): a key must be published at least this long before it signs.
const JWKSMaxAge = 5 * time.Minute

// ClockSkew is the clock difference allowed for between us and a relying party when a retired
// key must outlive the tokens it signed.
const ClockSkew = 5 * time.Minute

// DefaultTokenLifetime is spec.idToken.lifetime when unset.
const DefaultTokenLifetime = time.Hour

// LongestSealedLifetime is the longest anything the TokenServer seals with its code key stays
// valid: codes, login forms, landing-page requests, upstream login state. A replaced code key
// must be accepted that long, or a person half-way through signing in fails.
func (ts *TokenServer) LongestSealedLifetime() time.Duration {
	longest := max(DefaultCodeTTL, LoginFormTTL, UpstreamLoginTTL)
	if ts.Spec.CodeTTL.Duration > 0 {
		longest = max(longest, ts.Spec.CodeTTL.Duration)
	}
	if l := ts.Spec.Login; l != nil && l.LandingPage != nil {
		ttl := l.LandingPage.RequestTTL.Duration
		if ttl == 0 {
			ttl = DefaultLandingRequestTTL
		}
		longest = max(longest, ttl)
	}
	return longest
}

// The Secret the operator generates for a LivePersonAuthClient's secret (flow Code, no
// spec.clientSecretRef), and its data keys.
const (
	// ClientIDKey holds the client id, beside the secret, for whoever reads the Secret.
	ClientIDKey = "clientID"
	// ClientSecretKey holds the client secret.
	ClientSecretKey = "clientSecret"
)

// ClientSecretName is the name of the Secret the operator generates for client's secret.
func ClientSecretName(client string) string { return client + "-client" }
