package signer

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// JWTSigner signs JWTs. Sign is go-jose's; SignCompact returns the compact serialization
// directly and, for RS256 (every token LivePerson accepts), skips go-jose's generic path: the
// protected header is encoded once per key, and the signing input is built, hashed and signed
// in one buffer. Both produce the same bytes (RSASSA-PKCS1-v1_5 is deterministic; the tests
// compare them).
type JWTSigner interface {
	jose.Signer
	SignCompact(payload []byte) (string, error)
}

// digestSigner is an RS256 implementation that signs a SHA-256 digest.
type digestSigner interface {
	signDigest(digest [32]byte) ([]byte, error)
}

type jwtSigner struct {
	jose.Signer
	header string                                // base64url protected header, as go-jose writes it
	rs256  func(digest [32]byte) ([]byte, error) // nil: every token goes through go-jose
}

var b64 = base64.RawURLEncoding

// newJWTSigner takes the protected header from a token go-jose signs, so the fast path's
// header is byte-for-byte go-jose's.
func newJWTSigner(js jose.Signer, rs256 func([32]byte) ([]byte, error)) (*jwtSigner, error) {
	s := &jwtSigner{Signer: js, rs256: rs256}
	if rs256 == nil {
		return s, nil
	}
	probe, err := js.Sign([]byte("{}"))
	if err != nil {
		return nil, err
	}
	compact, err := probe.CompactSerialize()
	if err != nil {
		return nil, err
	}
	header, _, ok := strings.Cut(compact, ".")
	if !ok {
		return nil, errors.New("go-jose returned a malformed compact JWS")
	}
	s.header = header
	return s, nil
}

func (s *jwtSigner) SignCompact(payload []byte) (string, error) {
	if s.rs256 == nil {
		jws, err := s.Sign(payload)
		if err != nil {
			return "", err
		}
		return jws.CompactSerialize()
	}
	// header.payload.signature, with room for a 4,096-bit signature.
	buf := make([]byte, 0, len(s.header)+2+b64.EncodedLen(len(payload))+b64.EncodedLen(512))
	buf = append(buf, s.header...)
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, payload)
	sig, err := s.rs256(sha256.Sum256(buf))
	if err != nil {
		return "", err
	}
	buf = append(buf, '.')
	return string(b64.AppendEncode(buf, sig)), nil
}
