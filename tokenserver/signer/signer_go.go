//go:build !openssl || !cgo

package signer

// Implementation names the RS256 implementation this build uses: Go's crypto/rsa. Build
// with `-tags openssl` (and cgo) for the libcrypto signer.
const Implementation = "go"
