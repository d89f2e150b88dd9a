package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SigningAlgorithm is the JWS algorithm a SigningKey signs with.
// +kubebuilder:validation:Enum=RS256;PS256;ES256
type SigningAlgorithm string

const (
	// RS256 is RSASSA-PKCS1-v1_5 with SHA-256: the only algorithm LivePerson accepts.
	RS256 SigningAlgorithm = "RS256"
	// PS256 is RSASSA-PSS with SHA-256, for relying parties other than LivePerson.
	PS256 SigningAlgorithm = "PS256"
	// ES256 is ECDSA P-256 with SHA-256, for relying parties other than LivePerson.
	ES256 SigningAlgorithm = "ES256"
)

// KeyState is where a key is in its lifecycle: Next → Active → Retired → removed.
// +kubebuilder:validation:Enum=Next;Active;Retired
type KeyState string

const (
	// KeyNext is published in the JWKS but does not sign yet, so relying parties that cache the
	// JWKS learn it before the first token it signs.
	KeyNext KeyState = "Next"
	// KeyActive signs every new token. Exactly one key is Active once the SigningKey is Ready.
	KeyActive KeyState = "Active"
	// KeyRetired no longer signs but stays published until every token it signed has expired.
	KeyRetired KeyState = "Retired"
)

// SigningKeySpec is the desired key set and its rotation policy.
// +kubebuilder:validation:XValidation:rule="!has(self.algorithm) || self.algorithm != 'ES256' || !has(self.rsaKeySize)",message="rsaKeySize applies only to RSA algorithms (RS256, PS256); remove it for ES256"
type SigningKeySpec struct {
	// algorithm is the JWS algorithm of every key in the set. LivePerson accepts only RS256;
	// PS256 and ES256 are for other relying parties. Changing it rotates to a key of the new
	// algorithm through the normal Next → Active lifecycle. Defaults to RS256.
	// +kubebuilder:default=RS256
	// +optional
	Algorithm SigningAlgorithm `json:"algorithm,omitempty"`

	// rsaKeySize is the RSA modulus size in bits for RS256 and PS256 keys (2048, 3072 or 4096;
	// 2048 when unset). Larger keys sign several times slower.
	// +kubebuilder:validation:Enum=2048;3072;4096
	// +optional
	RSAKeySize *int32 `json:"rsaKeySize,omitempty"`

	// rotation is when keys are replaced and how long each is published around its active time.
	// +kubebuilder:default={}
	// +optional
	Rotation KeyRotation `json:"rotation,omitzero"`
}

// KeyRotation is the rotation policy of a SigningKey.
// +kubebuilder:validation:XValidation:rule="!has(self.publishAhead) || !has(self.every) || !self.publishAhead.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$') || !self.every.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$') || duration(self.publishAhead) < duration(self.every)",message="publishAhead must be shorter than every: the next key must be published before the current one is due to rotate"
type KeyRotation struct {
	// every is how long a key stays Active before the Next key replaces it (Go duration, at least
	// 1h, e.g. 2160h for 90 days). Defaults to 2160h.
	// +kubebuilder:default="2160h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$')",message="every must be a Go duration such as 2160h (units h, m, s; there is no d unit)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$') || duration(self) >= duration('1h') && duration(self) <= duration('87600h')",message="every must be between 1h and 87600h (10 years)"
	// +optional
	Every metav1.Duration `json:"every,omitzero"`

	// publishAhead is how long a new key is in the JWKS before it signs. It must exceed how long
	// relying parties cache the JWKS (LivePerson's cache time is undocumented: assume hours). Defaults to 24h.
	// +kubebuilder:default="24h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$')",message="publishAhead must be a Go duration such as 24h (units h, m, s; there is no d unit)"
	// +kubebuilder:validation:MaxLength=32
	// +optional
	PublishAhead metav1.Duration `json:"publishAhead,omitzero"`

	// retainAfterRetire is how long a retired key stays in the JWKS. It must be at least the
	// longest id_token lifetime of any client plus clock skew, or tokens signed just before a
	// rotation fail verification before they expire. Defaults to 24h.
	// +kubebuilder:default="24h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$')",message="retainAfterRetire must be a Go duration such as 25h (units h, m, s; there is no d unit)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$') || duration(self) <= duration('8760h')",message="retainAfterRetire must be at most 8760h (1 year)"
	// +optional
	RetainAfterRetire metav1.Duration `json:"retainAfterRetire,omitzero"`

	// paused stops scheduled rotation. The rotate and revoke annotations still act.
	// +optional
	Paused bool `json:"paused,omitempty"`
}

// SigningKeyStatus holds only public facts; private keys live in the Secret named by secretName.
type SigningKeyStatus struct {
	// conditions: Ready, Rotating and Degraded.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// secretName is the Secret holding the private keys (type auth.lpauth.dev/signing-keys).
	// +kubebuilder:validation:MaxLength=253
	// +optional
	SecretName string `json:"secretName,omitempty"`

	// keys are the published keys, oldest first.
	// +listType=map
	// +listMapKey=kid
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Keys []KeyStatus `json:"keys,omitempty"`

	// activeKeyID is the kid of the key that signs new tokens.
	// +kubebuilder:validation:MaxLength=128
	// +optional
	ActiveKeyID string `json:"activeKeyID,omitempty"`

	// activePublicKey is the Active key's public key as one base64 line of DER SubjectPublicKeyInfo
	// with no BEGIN/END lines: paste it into LivePerson's "JWT Public Key" field.
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	ActivePublicKey string `json:"activePublicKey,omitempty"`

	// nextPublicKey is the Next key's public key in the same one-line form: what a PEM-mode
	// LivePerson console must be given before the next rotation.
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	NextPublicKey string `json:"nextPublicKey,omitempty"`

	// nextRotationTime is when the Next key is due to become Active, unless rotation is paused or
	// held for a console update.
	// +optional
	NextRotationTime *metav1.Time `json:"nextRotationTime,omitempty"`

	// lastRotateRequest is the value of the auth.lpauth.dev/rotate annotation handled last; a new
	// value rotates once.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	LastRotateRequest string `json:"lastRotateRequest,omitempty"`

	// lastRevokeRequest is the value of the auth.lpauth.dev/revoke annotation handled last (a
	// comma-separated list of kids; the first 256 characters).
	// +kubebuilder:validation:MaxLength=256
	// +optional
	LastRevokeRequest string `json:"lastRevokeRequest,omitempty"`

	// revokedKeyIDs is the deny-list: every kid ever revoked (the newest 256). A key on it is
	// never published again, whatever a Secret or a backup holds.
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=128
	// +listType=atomic
	// +optional
	RevokedKeyIDs []string `json:"revokedKeyIDs,omitempty"`
}

// KeyStatus is the public record of one key.
type KeyStatus struct {
	// kid is the key's RFC 7638 SHA-256 JWK thumbprint, base64url: the kid of every JWS it signs.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	KeyID string `json:"kid"`

	// algorithm is the JWS algorithm of the key.
	// +required
	Algorithm SigningAlgorithm `json:"algorithm"`

	// state is Next, Active or Retired.
	// +required
	State KeyState `json:"state"`

	// createdAt is when the key was generated.
	// +required
	CreatedAt metav1.Time `json:"createdAt"`

	// activatesAt is when the key starts (or started) signing.
	// +optional
	ActivatesAt *metav1.Time `json:"activatesAt,omitempty"`

	// retiresAt is when the key stops (or stopped) signing.
	// +optional
	RetiresAt *metav1.Time `json:"retiresAt,omitempty"`

	// removeAt is when a retired key leaves the JWKS.
	// +optional
	RemoveAt *metav1.Time `json:"removeAt,omitempty"`

	// publicJWK is the key's public JWK (JSON). It is kept here as well as in the Secret so that
	// a deleted or damaged Secret never takes a published key out of the JWKS: tokens it signed
	// keep verifying until they expire.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	PublicJWK string `json:"publicJWK,omitempty"`
}

// SigningKey is a set of signing keys with a lifecycle: each key is published (Next) before it
// signs (Active) and stays published (Retired) until every token it signed has expired. Rotate
// now with `kubectl annotate signingkey/NAME auth.lpauth.dev/rotate=<new value> --overwrite`.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=sk,categories=lpauth
// +kubebuilder:printcolumn:name="Algorithm",type=string,JSONPath=`.spec.algorithm`
// +kubebuilder:printcolumn:name="Active Key",type=string,JSONPath=`.status.activeKeyID`
// +kubebuilder:printcolumn:name="Next Rotation",type=string,JSONPath=`.status.nextRotationTime`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type SigningKey struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired key set.
	// +kubebuilder:default={}
	// +optional
	Spec SigningKeySpec `json:"spec,omitzero"`

	// status is the observed key set: public facts only.
	// +optional
	Status SigningKeyStatus `json:"status,omitempty"`
}

// SigningKeyList is a list of SigningKeys.
//
// +kubebuilder:object:root=true
type SigningKeyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SigningKey `json:"items"`
}

func init() {
	SchemeBuilder.Register(&SigningKey{}, &SigningKeyList{})
}
