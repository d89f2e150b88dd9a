// Package jwe reads LivePerson's encryption public keys and wraps signed tokens for them
// ("JWS in JWE": RSA-OAEP-256 key wrapping, A256GCM or A128CBC-HS256 content encryption,
// cty "JWT", and LivePerson's kid in the header).
package jwe

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// Bounds on LivePerson's keys: the smallest RSA key accepted, the largest (each key is copied
// for the token server, and a huge one would only cost space and time), the most keys per
// Secret (LivePerson uses one, two while it rotates) and the longest kid.
const (
	MinRSABits  = 2048
	MaxRSABits  = 8192
	MaxKeys     = 4
	MaxKIDBytes = 128
)

// Key is one of LivePerson's encryption keys.
type Key struct {
	ID        string
	PublicKey *rsa.PublicKey
}

// ParseKeys reads every entry of a Secret's data as a key whose kid is the entry's name. A value
// may be a PEM public key (PKIX or PKCS #1), a PEM certificate, or one line of base64 DER SPKI
// (the form LivePerson's console shows).
func ParseKeys(data map[string][]byte) ([]Key, error) {
	if len(data) == 0 {
		return nil, errors.New("the Secret has no keys: add one entry per LivePerson key, named by its kid")
	}
	if len(data) > MaxKeys {
		return nil, fmt.Errorf("the Secret has %d entries; at most %d keys (one entry per LivePerson key, named by its kid)", len(data), MaxKeys)
	}
	names := make([]string, 0, len(data))
	for n := range data {
		if len(n) > MaxKIDBytes {
			return nil, fmt.Errorf("kid %.32q… is longer than %d bytes", n, MaxKIDBytes)
		}
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Key
	var errs []error
	for _, n := range names {
		pub, err := parsePublicKey(data[n])
		if err != nil {
			errs = append(errs, fmt.Errorf("key %q: %w", n, err))
			continue
		}
		out = append(out, Key{ID: n, PublicKey: pub})
	}
	return out, errors.Join(errs...)
}

func parsePublicKey(raw []byte) (*rsa.PublicKey, error) {
	var der []byte
	var certificate bool
	if block, _ := pem.Decode(raw); block != nil {
		switch block.Type {
		case "PUBLIC KEY", "RSA PUBLIC KEY":
			der = block.Bytes
		case "CERTIFICATE":
			der, certificate = block.Bytes, true
		default:
			return nil, fmt.Errorf("PEM block %q is not a public key or certificate", block.Type)
		}
	} else {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
		if err != nil {
			return nil, errors.New("neither PEM nor one line of base64 DER")
		}
		der = b
	}
	var key any
	var err error
	switch {
	case certificate:
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(der); err == nil {
			key = cert.PublicKey
		}
	default:
		if key, err = x509.ParsePKIXPublicKey(der); err != nil {
			key, err = x509.ParsePKCS1PublicKey(der)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("unreadable: %w", err)
	}
	rsaKey, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an RSA key: LivePerson encrypts with RSA-OAEP-256", key)
	}
	if rsaKey.N.BitLen() < MinRSABits || rsaKey.N.BitLen() > MaxRSABits {
		return nil, fmt.Errorf("RSA key of %d bits; %d to %d are accepted", rsaKey.N.BitLen(), MinRSABits, MaxRSABits)
	}
	return rsaKey, nil
}

// Select picks the key to encrypt for: the one named kid, or the only key when kid is empty.
func Select(keys []Key, kid string) (Key, error) {
	if kid == "" {
		if len(keys) == 1 {
			return keys[0], nil
		}
		return Key{}, fmt.Errorf("the Secret holds %d keys; set encryption.keyID to the kid to use", len(keys))
	}
	for _, k := range keys {
		if k.ID == kid {
			return k, nil
		}
	}
	return Key{}, fmt.Errorf("no key %q in the Secret", kid)
}

// NewEncrypter returns an encrypter that wraps a compact JWS for k with content encryption enc.
func NewEncrypter(k Key, enc jose.ContentEncryption) (jose.Encrypter, error) {
	if enc != jose.A256GCM && enc != jose.A128CBC_HS256 {
		return nil, fmt.Errorf("unsupported content encryption %q", enc)
	}
	opts := (&jose.EncrypterOptions{}).WithContentType("JWT")
	return jose.NewEncrypter(enc, jose.Recipient{Algorithm: jose.RSA_OAEP_256, Key: k.PublicKey, KeyID: k.ID}, opts)
}
