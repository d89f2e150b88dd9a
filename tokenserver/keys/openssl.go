//go:build openssl && cgo

package keys

// An RS256 signer over the system's libcrypto (OpenSSL 3), built with `-tags openssl`. RS256 is
// the only algorithm LivePerson accepts, and its signature is the one irreducible cost of every
// token: OpenSSL's RSA is several times faster than crypto/rsa on the same core. Everything else
// (verification, other algorithms, the pure-Go build) stays on go-jose and crypto/rsa.

/*
#cgo LDFLAGS: -lcrypto
#include <openssl/evp.h>
#include <openssl/x509.h>

static EVP_PKEY *lpauth_load_key(const unsigned char *der, long len) {
	const unsigned char *p = der;
	return d2i_AutoPrivateKey(NULL, &p, len);
}

// lpauth_sign_rs256 signs msg with RSASSA-PKCS1-v1_5 and SHA-256. A context per call: an
// EVP_PKEY may be shared by threads, a context may not.
static int lpauth_sign_rs256(EVP_PKEY *pkey, const unsigned char *msg, size_t msglen, unsigned char *sig, size_t *siglen) {
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (ctx == NULL) return 0;
	int ok = EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1 &&
	         EVP_DigestSign(ctx, sig, siglen, msg, msglen) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

static int lpauth_key_size(EVP_PKEY *pkey) { return EVP_PKEY_get_size(pkey); }
static void lpauth_free_key(EVP_PKEY *pkey) { EVP_PKEY_free(pkey); }
*/
import "C"

import (
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	jose "github.com/go-jose/go-jose/v4"
)

func init() { opensslRS256 = newOpenSSLSigner }

// SignerImplementation names the RS256 implementation this build uses.
const SignerImplementation = "openssl"

type opensslSigner struct {
	pkey   *C.EVP_PKEY
	size   int
	public jose.JSONWebKey
}

func newOpenSSLSigner(k Key) (jose.OpaqueSigner, error) {
	priv, ok := k.JWK.Key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key %s is not an RSA private key", k.ID())
	}
	der := x509.MarshalPKCS1PrivateKey(priv)
	pkey := C.lpauth_load_key((*C.uchar)(unsafe.Pointer(&der[0])), C.long(len(der)))
	clear(der)
	if pkey == nil {
		return nil, errors.New("libcrypto could not load the RSA key")
	}
	s := &opensslSigner{pkey: pkey, size: int(C.lpauth_key_size(pkey)), public: k.JWK.Public()}
	runtime.AddCleanup(s, func(p *C.EVP_PKEY) { C.lpauth_free_key(p) }, pkey)
	return s, nil
}

func (s *opensslSigner) Public() *jose.JSONWebKey { return &s.public }

func (s *opensslSigner) Algs() []jose.SignatureAlgorithm {
	return []jose.SignatureAlgorithm{jose.RS256}
}

func (s *opensslSigner) SignPayload(payload []byte, alg jose.SignatureAlgorithm) ([]byte, error) {
	if alg != jose.RS256 {
		return nil, jose.ErrUnsupportedAlgorithm
	}
	sig := make([]byte, s.size)
	n := C.size_t(len(sig))
	var msg *C.uchar
	if len(payload) > 0 {
		msg = (*C.uchar)(unsafe.Pointer(&payload[0]))
	}
	ok := C.lpauth_sign_rs256(s.pkey, msg, C.size_t(len(payload)), (*C.uchar)(unsafe.Pointer(&sig[0])), &n)
	runtime.KeepAlive(s)
	if ok != 1 {
		return nil, errors.New("libcrypto failed to sign")
	}
	return sig[:n], nil
}
