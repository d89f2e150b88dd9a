package v1alpha1

import "time"

// This file and conditions.go are the contract between the operator, the token server and the
// people who run them: names, labels, annotations, defaults (here) and condition and event
// reasons (conditions.go). The formats of the Secrets both sides read are in api/keys,
// api/credentials and api/secretset.

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

// Annotations users set with kubectl to ask for a one-off action. Each distinct value acts once:
// the handled value is recorded in status.
const (
	// AnnotationRotate on a SigningKey promotes the Next key to Active now, unless PEM-mode
	// clients have not acknowledged it yet: then the rotation waits for them like a scheduled
	// one, unless the value starts with ForceRotatePrefix.
	AnnotationRotate = "auth.lpauth.dev/rotate"
	// AnnotationAdoptKeys on a SigningKey, set to the UID of an existing key Secret labelled for
	// it (a restore), takes that Secret's keys over instead of refusing it.
	AnnotationAdoptKeys = "auth.lpauth.dev/adopt-keys"
	// AnnotationAdoptSecret on a TokenServer or LivePersonAuthClient, set to the UID of an
	// existing Secret the operator wrote for an earlier object of this name (a restore), takes
	// it over (the credentials, the client secret) instead of refusing it.
	AnnotationAdoptSecret = "auth.lpauth.dev/adopt-secret"
	// AnnotationDeleteAnyway, "true" on a SigningKey or TokenServer being deleted, lets the
	// deletion go on although others still use it.
	AnnotationDeleteAnyway = "auth.lpauth.dev/delete-anyway"
	// FinalizerInUse holds the deletion of a SigningKey or TokenServer while others use it.
	FinalizerInUse = "auth.lpauth.dev/in-use"
	// ForceRotatePrefix starts a rotate value that rotates at once even though PEM-mode clients
	// will fail until their console holds the new key.
	ForceRotatePrefix = "force-"
	// CutCredentialsPrefix starts a rotate-credentials value that keeps no previous value: the
	// credentials leaked, so the old issue-API credential and code key stop being accepted at
	// once (codes and sign-ins in flight fail; customers start again).
	CutCredentialsPrefix = "cut-"
	// AnnotationRevoke on a SigningKey removes the keys with these kids (comma-separated) from the
	// Secret and the JWKS at once, activating a fresh key if one was the Active one. Append to the
	// list rather than replace it: every kid listed is revoked once and stays on the deny-list.
	AnnotationRevoke = "auth.lpauth.dev/revoke"
	// AnnotationConsoleUpdated on a LivePersonAuthClient in PEM mode acknowledges that the key
	// with this kid was pasted into LivePerson's console.
	AnnotationConsoleUpdated = "auth.lpauth.dev/console-updated"
	// AnnotationGeneratedClientID on a LivePersonAuthClient holds the client id the operator
	// generated when spec.clientID is unset. It lives in metadata, not only in status, so a
	// backup and restore that drops status keeps the id LivePerson's console holds.
	AnnotationGeneratedClientID = "auth.lpauth.dev/generated-client-id"
	// AnnotationRotateCredentials on a TokenServer replaces its code-sealing key and issue-API
	// credential; the previous code key stays valid as long as anything it sealed, the previous
	// credential for spec.issueAPICredentialOverlap.
	AnnotationRotateCredentials = "auth.lpauth.dev/rotate-credentials"
)

// Labels and Secret types the operator writes.
const (
	// LabelTokenServerReads marks, with the value "true", every Secret the operator watches (its
	// Secret cache holds only these): every Secret a token server must read (signing keys, client
	// secrets, its own credentials), and the key record, which no token server may read (their
	// Roles name their Secrets). Token servers and the operator cache only Secrets that carry it.
	LabelTokenServerReads = "auth.lpauth.dev/token-server-reads"
	// LabelSigningKey names the SigningKey that owns a key Secret.
	LabelSigningKey = "auth.lpauth.dev/signing-key"

	// AnnotationHandledRotate and AnnotationHandledRevoke on a key Secret record the last rotate
	// and revoke requests acted on. They live in the Secret, written with the keys, so a crash
	// between writing the keys and writing status can never act on one request twice.
	AnnotationHandledRotate = "auth.lpauth.dev/handled-rotate"
	AnnotationHandledRevoke = "auth.lpauth.dev/handled-revoke"
	// AnnotationRevokedKeys on a key Secret is the deny-list: every kid ever revoked, comma
	// separated. The record Secret keeps it too; a key on it is never published again.
	AnnotationRevokedKeys = "auth.lpauth.dev/revoked-keys"
	// AnnotationEarlyUntil on a key Secret is when an early rotation stops mattering: the time
	// the Active key will have been published for publishAhead.
	AnnotationEarlyUntil = "auth.lpauth.dev/early-until"
	// AnnotationLastRepair on a key Secret says when and how the operator last repaired it.
	AnnotationLastRepair = "auth.lpauth.dev/last-repair"
	// LabelManagedBy marks objects the operator created.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of LabelManagedBy.
	ManagedByValue = "lpauth-operator"

	// SecretTypeSigningKeys is the type of a SigningKey's private key Secret.
	SecretTypeSigningKeys = "auth.lpauth.dev/signing-keys"
	// SecretTypeKeyRecord is the type of a SigningKey's key record: the public part and times of
	// every key it published and its revoked kids, what a lost key Secret is restored from.
	SecretTypeKeyRecord = "auth.lpauth.dev/signing-key-record"
)

// MaxStatusKeys is how many keys a SigningKey's status.keys can list (its CRD's maxItems): more
// are kept only after repairs, and status then lists the Active, Next and newest keys.
const MaxStatusKeys = 16
