// Package keys is the format of a SigningKey's Secret: keys generated, encoded and decoded, and
// their public forms (JWKS, one-line SPKI). The operator (which writes the Secret) and the token
// server (which reads it, and signs with tokenserver/signer) share it, so the two can never
// disagree on the format.
//
// The Secret holds one data entry per key, "key-<kid>.json", each a JSON object with the key's
// lifecycle state, its timestamps and its JWK. One entry per key means a damaged or hand-edited
// entry costs that key only, never its neighbours.
package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// SecretName is the name of the Secret holding the keys of the SigningKey named signingKey.
func SecretName(signingKey string) string { return signingKey + "-signing-keys" }

// Key is one key of a set with its lifecycle.
type Key struct {
	// JWK is the key, private when it can sign. A key recovered from status after its Secret
	// entry was lost holds only its public part: it stays published, it never signs.
	JWK jose.JSONWebKey
	// State is Next, Active or Retired.
	State v1alpha1.KeyState
	// CreatedAt is when the key was generated.
	CreatedAt time.Time
	// ActivatesAt is when the key starts (Next) or started (Active, Retired) signing.
	ActivatesAt time.Time
	// RetiresAt is when the key stops (Active) or stopped (Retired) signing.
	RetiresAt time.Time
	// RemoveAt is when a Retired key leaves the JWKS.
	RemoveAt time.Time
}

// ID is the key's kid: its RFC 7638 SHA-256 thumbprint, base64url.
func (k Key) ID() string { return k.JWK.KeyID }

// Algorithm is the JWS algorithm of the key.
func (k Key) Algorithm() v1alpha1.SigningAlgorithm { return v1alpha1.SigningAlgorithm(k.JWK.Algorithm) }

// CanSign reports whether the private part is present.
func (k Key) CanSign() bool { return k.JWK.Key != nil && !k.JWK.IsPublic() }

// Bits is the RSA modulus size, or 0 for other key types.
func (k Key) Bits() int {
	switch pk := k.JWK.Key.(type) {
	case *rsa.PrivateKey:
		return pk.N.BitLen()
	case *rsa.PublicKey:
		return pk.N.BitLen()
	}
	return 0
}

// Generate makes a new private key for the algorithm (rsaBits applies to RS256 and PS256) with
// its kid set to the RFC 7638 thumbprint. RSA generation takes tens of milliseconds or more:
// callers keep the result until it is stored rather than generate again on a conflict.
func Generate(alg v1alpha1.SigningAlgorithm, rsaBits int) (jose.JSONWebKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case v1alpha1.RS256, v1alpha1.PS256:
		if rsaBits < 2048 {
			return jose.JSONWebKey{}, fmt.Errorf("RSA keys must have at least 2048 bits, got %d", rsaBits)
		}
		priv, err = rsa.GenerateKey(rand.Reader, rsaBits)
	case v1alpha1.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return jose.JSONWebKey{}, fmt.Errorf("unsupported algorithm %q", alg)
	}
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("generating a %s key: %w", alg, err)
	}
	return withThumbprint(jose.JSONWebKey{Key: priv, Algorithm: string(alg), Use: "sig"})
}

// withThumbprint sets KeyID to the RFC 7638 SHA-256 thumbprint, base64url without padding.
func withThumbprint(jwk jose.JSONWebKey) (jose.JSONWebKey, error) {
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("computing the key thumbprint: %w", err)
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	return jwk, nil
}

// PublicJWK returns the public part of k's JWK, with kid, alg and use.
func PublicJWK(k Key) jose.JSONWebKey {
	if !k.CanSign() {
		return k.JWK
	}
	return k.JWK.Public()
}

// JWKS renders the public keys of every key in the set (Next, Active and Retired) as a JWKS
// document. Relying parties look keys up by kid, so order does not matter; it is kept stable
// (creation order) so the bytes, and any ETag over them, change only when the set does.
func JWKS(set []Key) ([]byte, error) {
	doc := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(set))}
	for _, k := range set {
		doc.Keys = append(doc.Keys, PublicJWK(k))
	}
	return json.Marshal(doc)
}

// SPKI returns the key's public key as one line of base64 DER SubjectPublicKeyInfo without
// BEGIN/END lines: the form LivePerson's "JWT Public Key" field takes.
func SPKI(k Key) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(PublicJWK(k).Key)
	if err != nil {
		return "", fmt.Errorf("encoding the public key of %s: %w", k.ID(), err)
	}
	return base64.StdEncoding.EncodeToString(der), nil
}

// Active returns the Active key of the set.
func Active(set []Key) (Key, bool) {
	for _, k := range set {
		if k.State == v1alpha1.KeyActive {
			return k, true
		}
	}
	return Key{}, false
}

// entry is how one key is stored in the Secret.
type entry struct {
	State       v1alpha1.KeyState `json:"state"`
	CreatedAt   time.Time         `json:"createdAt"`
	ActivatesAt time.Time         `json:"activatesAt,omitzero"`
	RetiresAt   time.Time         `json:"retiresAt,omitzero"`
	RemoveAt    time.Time         `json:"removeAt,omitzero"`
	JWK         jose.JSONWebKey   `json:"jwk"`
}

const entryPrefix, entrySuffix = "key-", ".json"

// DataKey is the Secret data key that stores the key with this kid.
func DataKey(kid string) string { return entryPrefix + kid + entrySuffix }

// Encode turns the set into Secret data.
func Encode(set []Key) (map[string][]byte, error) {
	data := make(map[string][]byte, len(set))
	for _, k := range set {
		b, err := json.Marshal(entry{
			State: k.State, CreatedAt: k.CreatedAt.UTC(), ActivatesAt: k.ActivatesAt.UTC(),
			RetiresAt: k.RetiresAt.UTC(), RemoveAt: k.RemoveAt.UTC(), JWK: k.JWK,
		})
		if err != nil {
			return nil, fmt.Errorf("encoding key %s: %w", k.ID(), err)
		}
		data[DataKey(k.ID())] = b
	}
	return data, nil
}

// Decode reads the keys out of Secret data. It never fails as a whole: every entry that cannot
// be used is skipped and described in problems, so the caller keeps every key it can read.
// The result is ordered by creation time, then kid.
func Decode(data map[string][]byte) (set []Key, problems []string) {
	names := make([]string, 0, len(data))
	for name := range data {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		k, err := decodeEntry(name, data[name])
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		set = append(set, k)
	}
	Sort(set)
	return set, problems
}

// Sort puts set in the one order every reader and writer uses: by creation time, then kid.
// Keys created in the same second (a new SigningKey's Active and Next) would otherwise come back
// from the Secret in another order than they were written, and every copy of the set (the
// record, status) be written once more for nothing.
func Sort(set []Key) {
	sort.SliceStable(set, func(i, j int) bool {
		if !set[i].CreatedAt.Equal(set[j].CreatedAt) {
			return set[i].CreatedAt.Before(set[j].CreatedAt)
		}
		return set[i].ID() < set[j].ID()
	})
}

func decodeEntry(name string, raw []byte) (Key, error) {
	if !strings.HasPrefix(name, entryPrefix) || !strings.HasSuffix(name, entrySuffix) {
		return Key{}, errors.New("not a key entry")
	}
	var e entry
	if err := json.Unmarshal(raw, &e); err != nil {
		return Key{}, fmt.Errorf("unreadable: %w", err)
	}
	switch e.State {
	case v1alpha1.KeyNext, v1alpha1.KeyActive, v1alpha1.KeyRetired:
	default:
		return Key{}, fmt.Errorf("unknown state %q", e.State)
	}
	if !e.JWK.Valid() {
		return Key{}, errors.New("invalid JWK")
	}
	switch v1alpha1.SigningAlgorithm(e.JWK.Algorithm) {
	case v1alpha1.RS256, v1alpha1.PS256, v1alpha1.ES256:
	default:
		return Key{}, fmt.Errorf("unsupported algorithm %q", e.JWK.Algorithm)
	}
	// The kid is recomputed rather than trusted: a hand-edited entry whose kid no longer matches
	// its key would otherwise make relying parties verify with the wrong key.
	checked, err := withThumbprint(e.JWK)
	if err != nil {
		return Key{}, err
	}
	if checked.KeyID != e.JWK.KeyID || DataKey(checked.KeyID) != name {
		return Key{}, fmt.Errorf("kid %q does not match the key's thumbprint %q", e.JWK.KeyID, checked.KeyID)
	}
	k := Key{JWK: e.JWK, State: e.State, CreatedAt: e.CreatedAt, ActivatesAt: e.ActivatesAt, RetiresAt: e.RetiresAt, RemoveAt: e.RemoveAt}
	if k.State == v1alpha1.KeyActive && !k.CanSign() {
		return Key{}, errors.New("an Active key without its private part cannot sign")
	}
	return k, nil
}
