// Package codes seals authorization codes. A code is self-contained: the identity and request it
// stands for travel inside it, encrypted and authenticated with AES-256-GCM under the token
// server's code key, so any replica can redeem it without shared storage. Single use is enforced
// separately (the replay store) with the code's ID. During a key change the previous key still
// opens codes sealed with it.
package codes

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// KeySize is the size of a code key: AES-256.
const KeySize = 32

// MaxPayload bounds what a code may carry (profile claims and lp_sdes included) before sealing.
const MaxPayload = 12 << 10

// MaxCodeLength is the longest code Open will look at; longer input is refused before decoding.
var MaxCodeLength = base64.RawURLEncoding.EncodedLen(keyIDSize + nonceSize + MaxPayload + tagSize)

const (
	keyIDSize = 4
	nonceSize = 12
	tagSize   = 16
	version   = "lpauth-code-v1"
)

// ErrInvalid is returned for any code that cannot be opened: malformed, tampered, sealed with an
// unknown key, or expired. Callers report invalid_grant; the precise cause goes to logs.
var ErrInvalid = errors.New("invalid code")

// Payload is what a code stands for.
type Payload struct {
	// ID is random and unique: the replay store records it on redemption.
	ID       string          `json:"jti"`
	ClientID string          `json:"cid"`
	Subject  string          `json:"sub"`
	Expiry   int64           `json:"exp"` // Unix seconds
	Claims   json.RawMessage `json:"clm,omitempty"`
	LPSdes   json.RawMessage `json:"sdes,omitempty"`
	// RedirectURI is the redirect_uri of the request that issued the code, if any; redemption
	// must present the same value.
	RedirectURI string `json:"ru,omitempty"`
	// CodeChallenge and CodeChallengeMethod (S256 or plain) bind the code to a PKCE verifier.
	CodeChallenge       string `json:"cc,omitempty"`
	CodeChallengeMethod string `json:"ccm,omitempty"`
}

// Sealer seals with the first key of its ring and opens with any of them.
type Sealer struct {
	ring []sealKey
}

type sealKey struct {
	id   [keyIDSize]byte
	aead cipher.AEAD
}

// NewSealer takes the current key first, then older keys that should still open codes.
func NewSealer(keys ...[]byte) (*Sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("no code key")
	}
	s := &Sealer{}
	for i, k := range keys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("code key %d is %d bytes, want %d", i, len(k), KeySize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(k)
		var id [keyIDSize]byte
		copy(id[:], sum[:])
		s.ring = append(s.ring, sealKey{id: id, aead: aead})
	}
	return s, nil
}

// NewID returns a random code ID.
func NewID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Seal returns the code for p.
func (s *Sealer) Seal(p Payload) (string, error) {
	plain, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	if len(plain) > MaxPayload {
		return "", fmt.Errorf("code payload of %d bytes exceeds %d: send fewer claims", len(plain), MaxPayload)
	}
	k := s.ring[0]
	out := make([]byte, keyIDSize+nonceSize, keyIDSize+nonceSize+len(plain)+tagSize)
	copy(out, k.id[:])
	if _, err := rand.Read(out[keyIDSize:]); err != nil {
		return "", err
	}
	out = k.aead.Seal(out, out[keyIDSize:], plain, []byte(version))
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// Open returns the payload of a code sealed by any key of the ring and not expired at now.
func (s *Sealer) Open(code string, now time.Time) (Payload, error) {
	if len(code) > MaxCodeLength {
		return Payload{}, fmt.Errorf("%w: too long", ErrInvalid)
	}
	raw, err := base64.RawURLEncoding.DecodeString(code)
	if err != nil || len(raw) < keyIDSize+nonceSize+tagSize {
		return Payload{}, fmt.Errorf("%w: malformed", ErrInvalid)
	}
	for _, k := range s.ring {
		if [keyIDSize]byte(raw[:keyIDSize]) != k.id {
			continue
		}
		plain, err := k.aead.Open(nil, raw[keyIDSize:keyIDSize+nonceSize], raw[keyIDSize+nonceSize:], []byte(version))
		if err != nil {
			return Payload{}, fmt.Errorf("%w: does not authenticate", ErrInvalid)
		}
		var p Payload
		if err := json.Unmarshal(plain, &p); err != nil || p.ID == "" || p.ClientID == "" {
			return Payload{}, fmt.Errorf("%w: bad payload", ErrInvalid)
		}
		if now.Unix() >= p.Expiry {
			return Payload{}, fmt.Errorf("%w: expired %s ago", ErrInvalid, now.Sub(time.Unix(p.Expiry, 0)).Round(time.Second))
		}
		return p, nil
	}
	return Payload{}, fmt.Errorf("%w: sealed with an unknown key", ErrInvalid)
}
