//go:build !openssl || !cgo

package signer

// Implementation names the RS256 implementation this build uses: Go's crypto/rsa. Build
// with `-tags openssl` (and cgo) for the libcrypto signer.
const Implementation = "go"

// ThreadName is empty: this build signs on the goroutines that ask, with no threads of its own.
const ThreadName = ""
