package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AuthFlow is LivePerson's "Authentication type".
// +kubebuilder:validation:Enum=Code;Implicit
type AuthFlow string

const (
	// FlowCode: LivePerson redeems an authorization code at the token endpoint.
	FlowCode AuthFlow = "Code"
	// FlowImplicit: the brand hands LivePerson a signed JWT; LivePerson never calls the brand.
	FlowImplicit AuthFlow = "Implicit"
)

// PKCEMode is whether codes must carry a PKCE challenge.
// +kubebuilder:validation:Enum=Disabled;Allowed;Required
type PKCEMode string

const (
	// PKCEDisabled ignores code_challenge parameters.
	PKCEDisabled PKCEMode = "Disabled"
	// PKCEAllowed checks the verifier when the code carries a challenge.
	PKCEAllowed PKCEMode = "Allowed"
	// PKCERequired refuses codes without a challenge; turn PKCE on in LivePerson's console.
	PKCERequired PKCEMode = "Required"
)

// PublicKeyMode is how LivePerson gets the public key that verifies our tokens.
// +kubebuilder:validation:Enum=JWKS;PEM
type PublicKeyMode string

const (
	// PublicKeyJWKS: LivePerson fetches the JWKS URL and finds keys by kid; rotation is automatic.
	PublicKeyJWKS PublicKeyMode = "JWKS"
	// PublicKeyPEM: an admin pastes one public key into LivePerson's console; each rotation waits
	// for the new key to be pasted and acknowledged.
	PublicKeyPEM PublicKeyMode = "PEM"
)

// ContentEncryption is the JWE "enc" algorithm.
// +kubebuilder:validation:Enum=A256GCM;A128CBC-HS256
type ContentEncryption string

const (
	// A256GCM is AES-256-GCM.
	A256GCM ContentEncryption = "A256GCM"
	// A128CBCHS256 is AES-128-CBC with HMAC-SHA-256.
	A128CBCHS256 ContentEncryption = "A128CBC-HS256"
)

// LivePersonAuthClientSpec is one LivePerson account's connection to a TokenServer.
// +kubebuilder:validation:XValidation:rule="self.flow == 'Code' || !has(self.clientSecretRef)",message="clientSecretRef applies only to flow Code: in the implicit flow LivePerson never calls the token endpoint"
// +kubebuilder:validation:XValidation:rule="self.flow == 'Code' || self.pkce != 'Required'",message="pkce Required applies only to flow Code: the implicit flow has no code to bind a challenge to"
// +kubebuilder:validation:XValidation:rule="has(self.clientID) == has(oldSelf.clientID)",message="clientID cannot be added or removed after creation: LivePerson's console holds the client id, and a client id belongs to the client that claimed it first"
type LivePersonAuthClientSpec struct {
	// tokenServerRef names the TokenServer (in this namespace) that serves this client. It is
	// immutable: the client id belongs to that issuer; create another client for another one.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="tokenServerRef is immutable: the client id belongs to that TokenServer's issuer; create another LivePersonAuthClient for another TokenServer"
	// +required
	TokenServerRef LocalObjectReference `json:"tokenServerRef"`

	// accountID is the LivePerson account (site id) this client serves.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_-]+$`
	AccountID string `json:"accountID"`

	// flow is LivePerson's "Authentication type": Code (LivePerson redeems a code at the token
	// endpoint) or Implicit (the brand hands LivePerson a signed JWT). Defaults to Code.
	// +kubebuilder:default=Code
	// +optional
	Flow AuthFlow `json:"flow,omitempty"`

	// clientID is the OAuth client id to give LivePerson. Generated (URL-safe, no ':') when
	// unset; it cannot change once set.
	// +kubebuilder:validation:MinLength=8
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9._~-]+$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="clientID is immutable: LivePerson's console holds it"
	// +optional
	ClientID string `json:"clientID,omitempty"`

	// clientSecretRef is the Secret key holding the client secret (flow Code). When unset, a
	// 256-bit secret is generated into a Secret the client owns.
	// +optional
	ClientSecretRef *SecretKeyRef `json:"clientSecretRef,omitempty"`

	// redirectURIs are the redirect_uri values the token and authorization endpoints accept:
	// exact URLs, or "prefix:" followed by a URL that the value must start with at a path
	// boundary. https only, except for localhost. When empty, LivePerson's known values are
	// used: https://liveperson.net (with and without a trailing slash),
	// https://liveperson.net/oauth2/code_redirect and
	// prefix:https://lpcdn.lpsnmedia.net/le_unified_window/.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.all(u, u.startsWith('https://') || u.startsWith('http://') || u.startsWith('prefix:https://') || u.startsWith('prefix:http://'))",message="each redirectURIs entry must be an http(s) URL, or 'prefix:' followed by one"
	// +listType=set
	// +optional
	RedirectURIs []string `json:"redirectURIs,omitempty"`

	// pkce is whether codes must carry a PKCE challenge (flow Code). Allowed checks a challenge
	// when one was given, and refuses a code_verifier sent for a code issued without one (RFC
	// 9700: an injected code); Required also needs PKCE turned on in LivePerson's console;
	// Disabled ignores challenges and verifiers alike. A challenge without a method is S256. Defaults to Allowed.
	// +kubebuilder:default=Allowed
	// +optional
	PKCE PKCEMode `json:"pkce,omitempty"`

	// allowPlainPKCE accepts code_challenge_method=plain. Off by default: plain sends the
	// verifier itself as the challenge, so it protects nothing once the authorization request
	// is seen (RFC 9700 2.1.1). A request without a method means S256.
	// +optional
	AllowPlainPKCE bool `json:"allowPlainPKCE,omitempty"`

	// idToken shapes the tokens issued to this client.
	// +kubebuilder:default={}
	// +optional
	IDToken IDTokenSpec `json:"idToken,omitzero"`

	// encryption, when set, wraps every token in a JWE for LivePerson's public key.
	// +optional
	Encryption *EncryptionSpec `json:"encryption,omitempty"`

	// publicKeyMode is how LivePerson holds our public key: JWKS (a URL; rotation is automatic)
	// or PEM (one pasted key; each rotation waits for a console update acknowledged with
	// kubectl annotate lpac/NAME auth.lpauth.dev/console-updated=<kid>). Defaults to JWKS.
	// +kubebuilder:default=JWKS
	// +optional
	PublicKeyMode PublicKeyMode `json:"publicKeyMode,omitempty"`
}

// IDTokenSpec shapes the id_token (and implicit-flow JWT) of a client.
type IDTokenSpec struct {
	// lifetime of issued tokens (Go duration, 1m to 24h). LivePerson asks for a new token after
	// exp. Keep it shorter than the SigningKey's retainAfterRetire. Defaults to 1h.
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$')",message="lifetime must be a Go duration such as 1h (units h, m, s; there is no d unit)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$') || duration(self) >= duration('1m') && duration(self) <= duration('24h')",message="lifetime must be between 1m and 24h"
	// +optional
	Lifetime metav1.Duration `json:"lifetime,omitzero"`

	// audience is the aud claim; the client id when unset. LivePerson does not check it.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Audience string `json:"audience,omitempty"`

	// staticClaims are string claims added to every token as they are (LivePerson shows string
	// profile claims to agents; structured data belongs in lpSdes).
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, !(k in ['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'nonce', 'lp_sdes']))",message="staticClaims must not set iss, sub, aud, exp, iat, nbf, jti, nonce or lp_sdes: the token server sets those"
	// +optional
	StaticClaims map[string]string `json:"staticClaims,omitempty"`

	// claimsFromIdentity maps token claim names to claims of the identity the login connector
	// produced, e.g. {"email": "email", "given_name": "given_name"}.
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, !(k in ['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'nonce', 'lp_sdes']))",message="claimsFromIdentity must not set iss, sub, aud, exp, iat, nbf, jti, nonce or lp_sdes: the token server sets those"
	// +optional
	ClaimsFromIdentity map[string]string `json:"claimsFromIdentity,omitempty"`

	// lpSdes are LivePerson engagement attributes added to every token's lp_sdes claim, at most
	// one {"type":"ctmrinfo","info":{...}} and one {"type":"personal","personal":{...}}, with
	// the fields LivePerson documents; values sent with a request take precedence. Unknown types
	// and fields are reported in the Ready condition.
	// +kubebuilder:validation:MaxItems=2
	// +optional
	LPSdes []apiextensionsv1.JSON `json:"lpSdes,omitempty"`
}

// EncryptionSpec wraps tokens in a JWE for LivePerson ("JWS in JWE").
type EncryptionSpec struct {
	// keysSecretRef names a Secret holding LivePerson's encryption public keys: each data key is
	// a kid LivePerson gave, each value a PEM public key or certificate (RSA, 2048 bits or more).
	// +required
	KeysSecretRef LocalObjectReference `json:"keysSecretRef"`

	// keyID is the kid to encrypt for; may be left unset when the Secret holds one key.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	KeyID string `json:"keyID,omitempty"`

	// enc is the content encryption algorithm (the key is always wrapped with RSA-OAEP-256). Defaults to A256GCM.
	// +kubebuilder:default=A256GCM
	// +optional
	Enc ContentEncryption `json:"enc,omitempty"`
}

// LivePersonConsole holds every value of LivePerson's "Consumer Identity Provider" form, ready to
// paste.
type LivePersonConsole struct {
	// authenticationType is "Code" or "Implicit".
	// +optional
	AuthenticationType string `json:"authenticationType,omitempty"`
	// pkce is "Enabled" or "Disabled" (flow Code).
	// +optional
	PKCE string `json:"pkce,omitempty"`
	// jwtIssuer is the exact iss value (case-sensitive).
	// +optional
	JWTIssuer string `json:"jwtIssuer,omitempty"`
	// authenticationEndpoint is for the pop-out window.
	// +optional
	AuthenticationEndpoint string `json:"authenticationEndpoint,omitempty"`
	// tokenEndpoint is for flow Code.
	// +optional
	TokenEndpoint string `json:"tokenEndpoint,omitempty"`
	// clientID is LivePerson's "Client ID".
	// +optional
	ClientID string `json:"clientID,omitempty"`
	// clientSecretRef is where the "Client Secret" is (never the secret itself).
	// +optional
	ClientSecretRef *SecretKeyRef `json:"clientSecretRef,omitempty"`
	// certificateType is "JWKS Endpoint" or "JWT Public Key".
	// +optional
	CertificateType string `json:"certificateType,omitempty"`
	// jwksEndpoint is the JWKS URL (certificateType "JWKS Endpoint").
	// +optional
	JWKSEndpoint string `json:"jwksEndpoint,omitempty"`
	// jwtPublicKey is the one-line public key (certificateType "JWT Public Key").
	// +optional
	JWTPublicKey string `json:"jwtPublicKey,omitempty"`
	// jsMethodName is the web page function LivePerson calls for a code or JWT.
	// +optional
	JSMethodName string `json:"jsMethodName,omitempty"`
}

// LivePersonAuthClientStatus is the observed state of the client.
type LivePersonAuthClientStatus struct {
	// conditions: Ready and ConsoleUpdateRequired.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// clientID in effect (spec.clientID or the generated one).
	// +optional
	ClientID string `json:"clientID,omitempty"`

	// clientSecretRef is where the client secret in effect lives.
	// +optional
	ClientSecretRef *SecretKeyRef `json:"clientSecretRef,omitempty"`

	// acknowledgedKeyID is the kid LivePerson's console holds (PEM mode): the last one
	// acknowledged with auth.lpauth.dev/console-updated, or the Active key shown when the client
	// became Ready. ConsoleUpdateRequired compares it with the key that signs.
	// +kubebuilder:validation:MaxLength=128
	// +optional
	AcknowledgedKeyID string `json:"acknowledgedKeyID,omitempty"`

	// rejectedAcknowledgement is a console-updated value that named no usable key, kept so the
	// Warning about it is given once.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	RejectedAcknowledgement string `json:"rejectedAcknowledgement,omitempty"`

	// livePersonConsole is every value of LivePerson's "Consumer Identity Provider" form, ready to
	// paste: kubectl get lpac NAME -o jsonpath='{.status.livePersonConsole}'.
	// +optional
	LivePersonConsole *LivePersonConsole `json:"livePersonConsole,omitempty"`
}

// LivePersonAuthClient connects one LivePerson account to a TokenServer: its client id and
// secret, allowed redirect URIs, token claims, optional encryption, and every value to paste into
// LivePerson's console (status.livePersonConsole).
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=lpac,categories=lpauth
// +kubebuilder:printcolumn:name="Account",type=string,JSONPath=`.spec.accountID`
// +kubebuilder:printcolumn:name="Flow",type=string,JSONPath=`.spec.flow`
// +kubebuilder:printcolumn:name="Client ID",type=string,JSONPath=`.status.clientID`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type LivePersonAuthClient struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired connection.
	// +required
	Spec LivePersonAuthClientSpec `json:"spec"`

	// status is the observed state.
	// +optional
	Status LivePersonAuthClientStatus `json:"status,omitempty"`
}

// LivePersonAuthClientList is a list of LivePersonAuthClients.
//
// +kubebuilder:object:root=true
type LivePersonAuthClientList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []LivePersonAuthClient `json:"items"`
}

func init() {
	SchemeBuilder.Register(&LivePersonAuthClient{}, &LivePersonAuthClientList{})
}

// EffectiveClientID is the client id LivePerson sends: spec.clientID, or the one the operator
// generated (empty until then).
func (c *LivePersonAuthClient) EffectiveClientID() string {
	if c.Spec.ClientID != "" {
		return c.Spec.ClientID
	}
	return c.Annotations[AnnotationGeneratedClientID]
}

// ClaimsBefore orders two clients that claim the same client id: the older one (creation time,
// then name) owns it. The operator and the token server both use it, so the client the token
// server serves is always the one the operator reports Ready.
func ClaimsBefore(a, b *LivePersonAuthClient) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}
