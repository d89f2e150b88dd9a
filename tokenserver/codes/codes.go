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

	"github.com/lpauth/lpauth-operator/api/credentials"
)

// KeySize is the size of a code key: AES-256.
const KeySize = credentials.CodeKeySize

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
	ID       string `json:"jti"`
	ClientID string `json:"cid"`
	Subject  string `json:"sub"`
	Expiry   int64  `json:"exp"` // Unix seconds
	// Issued is when the code was issued (Unix seconds; absent in codes issued before it was
	// recorded): a replay store that lost its records refuses codes issued before they begin.
	Issued int64           `json:"iat,omitempty"`
	Claims json.RawMessage `json:"clm,omitempty"`
	LPSdes json.RawMessage `json:"sdes,omitempty"`
	// SDEsWritten says LPSdes was written by idtoken.CodeSDEs (validated, merged, in the bytes
	// a token carries), so redemption need not decode and validate it again. Codes without it
	// (sealed before it existed) are parsed; servers that predate it ignore it and parse.
	SDEsWritten bool `json:"sdesw,omitempty"`
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
	return s.seal(plain, version)
}

// seal encrypts plain with the current key; purpose is authenticated with it, so a value sealed
// for one purpose (a code) never opens as another (a login request, a session cookie).
func (s *Sealer) seal(plain []byte, purpose string) (string, error) {
	k := s.ring[0]
	out := make([]byte, keyIDSize+nonceSize, keyIDSize+nonceSize+len(plain)+tagSize)
	copy(out, k.id[:])
	if _, err := rand.Read(out[keyIDSize:]); err != nil {
		return "", err
	}
	out = k.aead.Seal(out, out[keyIDSize:], plain, []byte(purpose))
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// MaxValue bounds what SealValue seals: a login request carries LivePerson's state (up to the
// 32 KB the authorization endpoint accepts).
const MaxValue = 40 << 10

// maxValueLength is the longest sealed value OpenValue looks at.
var maxValueLength = base64.RawURLEncoding.EncodedLen(keyIDSize + nonceSize + MaxValue + tagSize)

// open decrypts a value sealed for purpose by any key of the ring.
func (s *Sealer) open(sealed, purpose string, maxLength int) ([]byte, error) {
	if len(sealed) > maxLength {
		return nil, fmt.Errorf("%w: too long", ErrInvalid)
	}
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil || len(raw) < keyIDSize+nonceSize+tagSize {
		return nil, fmt.Errorf("%w: malformed", ErrInvalid)
	}
	for _, k := range s.ring {
		if [keyIDSize]byte(raw[:keyIDSize]) != k.id {
			continue
		}
		plain, err := k.aead.Open(nil, raw[keyIDSize:keyIDSize+nonceSize], raw[keyIDSize+nonceSize:], []byte(purpose))
		if err != nil {
			return nil, fmt.Errorf("%w: does not authenticate", ErrInvalid)
		}
		return plain, nil
	}
	return nil, fmt.Errorf("%w: sealed with an unknown key", ErrInvalid)
}

// SealValue seals any JSON-encodable value for a purpose (e.g. "lpauth-login-v1"), with an
// expiry that OpenValue enforces.
func (s *Sealer) SealValue(purpose string, v any, expiry time.Time) (string, error) {
	plain, err := json.Marshal(sealedValue{Expiry: expiry.Unix(), Value: v})
	if err != nil {
		return "", err
	}
	if len(plain) > MaxValue {
		return "", fmt.Errorf("sealed value of %d bytes exceeds %d", len(plain), MaxValue)
	}
	return s.seal(plain, purpose)
}

// OpenValue opens a value sealed for purpose into v, refusing it at or after its expiry.
func (s *Sealer) OpenValue(purpose, sealed string, now time.Time, v any) error {
	plain, err := s.open(sealed, purpose, maxValueLength)
	if err != nil {
		return err
	}
	env := sealedValue{Value: v}
	if err := json.Unmarshal(plain, &env); err != nil {
		return fmt.Errorf("%w: bad payload", ErrInvalid)
	}
	if now.Unix() >= env.Expiry {
		return fmt.Errorf("%w: expired %s ago", ErrInvalid, now.Sub(time.Unix(env.Expiry, 0)).Round(time.Second))
	}
	return nil
}

type sealedValue struct {
	Expiry int64 `json:"exp"`
	Value  any   `json:"v"`
}

// Open returns the payload of a code sealed by any key of the ring and not expired at now.
func (s *Sealer) Open(code string, now time.Time) (Payload, error) {
	plain, err := s.open(code, version, MaxCodeLength)
	if err != nil {
		return Payload{}, err
	}
	p, ok := decodePayload(plain)
	if !ok {
		p = Payload{}
		if err := json.Unmarshal(plain, &p); err != nil {
			return Payload{}, fmt.Errorf("%w: bad payload", ErrInvalid)
		}
	}
	if p.ID == "" || p.ClientID == "" {
		return Payload{}, fmt.Errorf("%w: bad payload", ErrInvalid)
	}
	if now.Unix() >= p.Expiry {
		return Payload{}, fmt.Errorf("%w: expired %s ago", ErrInvalid, now.Sub(time.Unix(p.Expiry, 0)).Round(time.Second))
	}
	return p, nil
}
