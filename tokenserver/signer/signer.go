// Package signer signs JWTs with a SigningKey's key: RS256 over the system's libcrypto in builds
// with the openssl tag (and cgo), crypto/rsa and crypto/ecdsa otherwise. Only the token server
// signs; the key format it reads is package api/keys.
package signer

import (
	"crypto"
	"crypto/rsa"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/lpauth/lpauth-operator/api/keys"
)

// opensslRS256, set in builds with the openssl tag, makes RS256 signers over libcrypto.
var opensslRS256 func(keys.Key) (jose.OpaqueSigner, error)

// ThreadName is the name of the libcrypto build's signing threads (/proc/<pid>/task/<tid>/comm),
// which make bench reads to tell a redemption's signature from the rest of its CPU. Defined in
// every build, so a bench built without libcrypto still reads a server built with it.
const ThreadName = "lpauth-sign"

// New returns a JWT signer for k that sets the kid header and typ "JWT". RS256 keys sign
// through libcrypto in builds with the openssl tag (Implementation says which).
func New(k keys.Key) (JWTSigner, error) {
	if !k.CanSign() {
		return nil, fmt.Errorf("key %s has no private part", k.ID())
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if opensslRS256 != nil && k.JWK.Algorithm == string(jose.RS256) {
		if opaque, err := opensslRS256(k); err == nil {
			if js, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: opaque}, opts); err == nil {
				if d, ok := opaque.(digestSigner); ok {
					return newJWTSigner(js, d.signDigest)
				}
			}
		}
		// A key libcrypto cannot load still signs, with crypto/rsa.
	}
	return NewGo(k)
}

// NewGo is the pure-Go signer (crypto/rsa and crypto/ecdsa), whatever the build:
// benchmarks compare it with New.
func NewGo(k keys.Key) (JWTSigner, error) {
	if !k.CanSign() {
		return nil, fmt.Errorf("key %s has no private part", k.ID())
	}
	jwk := k.JWK // the signer keeps a pointer; give it its own copy
	opts := (&jose.SignerOptions{}).WithType("JWT")
	js, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(jwk.Algorithm), Key: &jwk}, opts)
	if err != nil {
		return nil, err
	}
	var rs256 func([32]byte) ([]byte, error)
	if priv, ok := jwk.Key.(*rsa.PrivateKey); ok && jwk.Algorithm == string(jose.RS256) {
		rs256 = func(digest [32]byte) ([]byte, error) { return rsa.SignPKCS1v15(nil, priv, crypto.SHA256, digest[:]) }
	}
	return newJWTSigner(js, rs256)
}
