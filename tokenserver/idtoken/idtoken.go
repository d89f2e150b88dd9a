// Package idtoken mints the tokens LivePerson verifies: the id_token of the code flow and the JWT
// of the implicit flow, which follow the same rules (api/LIVEPERSON.md): RS256 with the Active key and
// its kid, iss/sub/aud/iat/exp in seconds, profile claims, lp_sdes, and optionally a JWE around
// the JWS for LivePerson's key.
package idtoken

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/lpauth/lpauth-operator/api/lpsdes"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

// MaxSubjectBytes bounds sub (LivePerson's customer id).
const MaxSubjectBytes = 255

// MaxClaims bounds the profile claims a request may add; MaxClaimBytes bounds each value.
const (
	MaxClaims     = 32
	MaxClaimBytes = 1024
)

// reserved claims are set by the server only.
var reserved = map[string]bool{"iss": true, "sub": true, "aud": true, "exp": true, "iat": true, "nbf": true, "jti": true, "nonce": true, "lp_sdes": true}

// Identity is who the token is about: the brand's user.
type Identity struct {
	Subject string
	// Claims are profile claims (given_name, email, ...), string values.
	Claims map[string]string
	// SDEs are this request's lp_sdes, merged over the client's template.
	SDEs []lpsdes.SDE
	// SDEsJSON, when set, is SDEs as CodeSDEs wrote them into a code this server sealed. Mint
	// writes it as it is for a client with no lp_sdes template (the template is the client's
	// current one, so with a template the SDEs are merged again).
	SDEsJSON []byte
}

// Validate checks an identity that came from outside (the issue API, a code).
func (id Identity) Validate() error {
	if id.Subject == "" {
		return errors.New("sub is required: LivePerson uses it as the customer id")
	}
	if len(id.Subject) > MaxSubjectBytes || !utf8.ValidString(id.Subject) {
		return fmt.Errorf("sub must be valid UTF-8 of at most %d bytes", MaxSubjectBytes)
	}
	if len(id.Claims) > MaxClaims {
		return fmt.Errorf("at most %d claims, got %d", MaxClaims, len(id.Claims))
	}
	for k, v := range id.Claims {
		if reserved[k] {
			return fmt.Errorf("claim %q is set by the token server and cannot be sent", k)
		}
		if k == "" || len(k) > 64 || len(v) > MaxClaimBytes || !utf8.ValidString(v) {
			return fmt.Errorf("claim %q: names of 1 to 64 bytes, values of at most %d bytes of UTF-8", k, MaxClaimBytes)
		}
	}
	if len(id.SDEs) > 0 {
		// As a code carries them; so a code issued is a code that redeems, whatever replica
		// or template redeems it.
		if _, err := CodeSDEs(id.SDEs); err != nil {
			return err
		}
	}
	return nil
}

// Mint returns the signed (and, when the client asks, encrypted) token and its expiry.
func Mint(s *snapshot.Snapshot, c *snapshot.Client, id Identity, now time.Time) (string, time.Time, error) {
	exp := now.Add(c.Lifetime)
	var payload []byte
	var err error
	if len(c.SDEs) == 0 && len(id.SDEsJSON) > 0 {
		payload, err = appendPayload(make([]byte, 0, 512), s, c, id, now.Unix(), exp.Unix(), nil, id.SDEsJSON)
	} else {
		payload, err = appendPayload(make([]byte, 0, 512), s, c, id, now.Unix(), exp.Unix(), lpsdes.Merge(c.SDEs, id.SDEs), nil)
	}
	if err != nil {
		return "", time.Time{}, err
	}
	token, err := s.Signer.SignCompact(payload)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("signing: %w", err)
	}
	if c.Encrypter == nil {
		return token, exp, nil
	}
	obj, err := c.Encrypter.Encrypt([]byte(token))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("encrypting: %w", err)
	}
	token, err = obj.CompactSerialize()
	return token, exp, err
}

// FromIdentityClaims applies a client's claimsFromIdentity mapping to claims a login connector
// produced (token claim name → identity claim name).
func FromIdentityClaims(c *snapshot.Client, identity map[string]string) map[string]string {
	out := map[string]string{}
	for tokenClaim, idClaim := range c.ClaimsFromIdentity {
		if v, ok := identity[idClaim]; ok {
			out[tokenClaim] = v
		}
	}
	return out
}
