//go:build !openssl || !cgo

package keys

// SignerImplementation names the RS256 implementation this build uses: Go's crypto/rsa. Build
// with `-tags openssl` (and cgo) for the libcrypto signer.
const SignerImplementation = "go"
