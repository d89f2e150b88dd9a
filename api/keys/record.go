package keys

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// The key record is the operator's own account of a key set, kept in a second Secret it owns
// beside the key Secret: the public part and times of every key it published, and every kid that
// was ever revoked. When the key Secret is lost or damaged, published keys are restored from the
// record (public part only, so they never sign again), never from SigningKey status, which
// anyone allowed to patch signingkeys/status could write. The token server never reads it.

// RecordSecretName is the name of the record Secret of the SigningKey named signingKey.
func RecordSecretName(signingKey string) string { return signingKey + "-signing-keys-record" }

// RecordDataKey is the record Secret's one data key.
const RecordDataKey = "record.json"

// MaxRevoked bounds the deny-list: at 43 bytes a kid, 256 kids fit an annotation with room to
// spare. When it is full the oldest revocations go first; a key revoked that long ago has long
// left every Secret and record.
const MaxRevoked = 256

type record struct {
	Keys    []entry  `json:"keys"`
	Revoked []string `json:"revoked,omitempty"`
}

// EncodeRecord renders the public record of set and the revoked kids.
func EncodeRecord(set []Key, revoked []string) ([]byte, error) {
	r := record{Keys: make([]entry, 0, len(set)), Revoked: revoked}
	for _, k := range set {
		r.Keys = append(r.Keys, entry{
			State: k.State, CreatedAt: k.CreatedAt.UTC(), ActivatesAt: k.ActivatesAt.UTC(),
			RetiresAt: k.RetiresAt.UTC(), RemoveAt: k.RemoveAt.UTC(), JWK: PublicJWK(k),
		})
	}
	return json.Marshal(r)
}

// DecodeRecord reads a record. Keys are returned public only, whatever the record holds; an
// entry that is not a valid public key of a supported algorithm whose kid is its thumbprint is
// skipped and described in problems.
func DecodeRecord(b []byte) (set []Key, revoked []string, problems []string) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, nil, []string{fmt.Sprintf("record unreadable: %v", err)}
	}
	for i, e := range r.Keys {
		e.JWK = e.JWK.Public()
		state := e.State
		if state == v1alpha1.KeyActive {
			e.State = v1alpha1.KeyRetired // validated as what it can only become: a key that no longer signs
		}
		raw, err := json.Marshal(e)
		if err != nil {
			problems = append(problems, fmt.Sprintf("record key %d: %v", i, err))
			continue
		}
		k, err := decodeEntry(DataKey(e.JWK.KeyID), raw)
		if err != nil {
			problems = append(problems, fmt.Sprintf("record key %d: %v", i, err))
			continue
		}
		k.State = state
		set = append(set, k)
	}
	for _, kid := range r.Revoked {
		if IsKID(kid) {
			revoked = append(revoked, kid)
		}
	}
	return set, revoked, problems
}

// MaxRevokeRequest is the most kids one revoke annotation may list: more than a real incident
// needs, few enough that one request can never push its own kids off the deny-list.
const MaxRevokeRequest = 32

// ParseKIDs reads a comma-separated list of kids (the revoke annotation, the deny-list
// annotation), trimming spaces and dropping empty and repeated entries, in order. Only values
// that can be a kid of ours (an RFC 7638 SHA-256 thumbprint: 43 base64url characters) are
// kept; the others are returned in invalid.
func ParseKIDs(v string) (kids, invalid []string) {
	for _, kid := range strings.Split(v, ",") {
		kid = strings.TrimSpace(kid)
		switch {
		case kid == "" || slices.Contains(kids, kid):
		case !IsKID(kid):
			invalid = append(invalid, kid)
		default:
			kids = append(kids, kid)
		}
	}
	return kids, invalid
}

// IsKID reports whether s has the form of our kids: 43 base64url characters (a SHA-256
// thumbprint without padding).
func IsKID(s string) bool {
	if len(s) != 43 {
		return false
	}
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// AddRevoked appends the kids not yet listed, keeping at most MaxRevoked (the newest).
func AddRevoked(list []string, kids ...string) []string {
	out := slices.Clone(list)
	for _, kid := range kids {
		if IsKID(kid) && !slices.Contains(out, kid) {
			out = append(out, kid)
		}
	}
	if len(out) > MaxRevoked {
		out = out[len(out)-MaxRevoked:]
	}
	return out
}
