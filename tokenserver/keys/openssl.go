//go:build openssl && cgo

package keys

// An RS256 signer over the system's libcrypto (OpenSSL 3), built with `-tags openssl`. RS256 is
// the only algorithm LivePerson accepts, and its signature is the one irreducible cost of every
// token: OpenSSL's RSA is several times faster than crypto/rsa on the same core. Everything else
// (verification, other algorithms, the pure-Go build) stays on go-jose and crypto/rsa.

/*
#cgo LDFLAGS: -lcrypto
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

static EVP_PKEY *lpauth_load_key(const unsigned char *der, long len) {
	const unsigned char *p = der;
	return d2i_AutoPrivateKey(NULL, &p, len);
}

// lpauth_new_ctx prepares a context that signs SHA-256 digests with RSASSA-PKCS1-v1_5. Contexts
// are kept and reused, each serving one thread at a time, and each over its own EVP_PKEY: threads
// sharing one RSA key contend on its blinding lock.
static EVP_PKEY_CTX *lpauth_new_ctx(EVP_PKEY *pkey) {
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
	if (ctx == NULL) return NULL;
	if (EVP_PKEY_sign_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) != 1) {
		EVP_PKEY_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static int lpauth_sign_digest(EVP_PKEY_CTX *ctx, const unsigned char *digest, unsigned char *sig, size_t *siglen) {
	return EVP_PKEY_sign(ctx, sig, siglen, digest, 32) == 1;
}

static int lpauth_key_size(EVP_PKEY *pkey) { return EVP_PKEY_get_size(pkey); }
static void lpauth_free_key(EVP_PKEY *pkey) { EVP_PKEY_free(pkey); }
static void lpauth_free_ctx(EVP_PKEY_CTX *ctx) { EVP_PKEY_CTX_free(ctx); }
*/
import "C"

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	jose "github.com/go-jose/go-jose/v4"
)

func init() { opensslRS256 = newOpenSSLSigner }

// SignerImplementation names the RS256 implementation this build uses.
const SignerImplementation = "openssl"

type opensslSigner struct {
	der    []byte // PKCS #1, to load a key per context
	size   int
	public jose.JSONWebKey
	// ctxs holds prepared signing contexts; each is used by one goroutine at a time.
	ctxs sync.Pool
}

// signCtx owns a key and a context over it, freed when the pool drops it.
type signCtx struct {
	pkey *C.EVP_PKEY
	ctx  *C.EVP_PKEY_CTX
}

func (s *opensslSigner) newCtx() *signCtx {
	pkey := C.lpauth_load_key((*C.uchar)(unsafe.Pointer(&s.der[0])), C.long(len(s.der)))
	if pkey == nil {
		return nil
	}
	ctx := C.lpauth_new_ctx(pkey)
	if ctx == nil {
		C.lpauth_free_key(pkey)
		return nil
	}
	sc := &signCtx{pkey: pkey, ctx: ctx}
	runtime.AddCleanup(sc, func(c signCtx) { C.lpauth_free_ctx(c.ctx); C.lpauth_free_key(c.pkey) }, *sc)
	return sc
}

func newOpenSSLSigner(k Key) (jose.OpaqueSigner, error) {
	priv, ok := k.JWK.Key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key %s is not an RSA private key", k.ID())
	}
	s := &opensslSigner{der: x509.MarshalPKCS1PrivateKey(priv), public: k.JWK.Public()}
	first := s.newCtx()
	if first == nil {
		return nil, errors.New("libcrypto could not load the RSA key")
	}
	s.size = int(C.lpauth_key_size(first.pkey))
	s.ctxs.New = func() any {
		if sc := s.newCtx(); sc != nil {
			return sc
		}
		return nil
	}
	s.ctxs.Put(first)
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
	sc, _ := s.ctxs.Get().(*signCtx)
	if sc == nil {
		return nil, errors.New("libcrypto could not prepare an RS256 signing context")
	}
	digest := sha256.Sum256(payload)
	sig := make([]byte, s.size)
	n := C.size_t(len(sig))
	ok := C.lpauth_sign_digest(sc.ctx, (*C.uchar)(unsafe.Pointer(&digest[0])), (*C.uchar)(unsafe.Pointer(&sig[0])), &n)
	s.ctxs.Put(sc)
	runtime.KeepAlive(s)
	if ok != 1 {
		return nil, errors.New("libcrypto failed to sign")
	}
	return sig[:n], nil
}
