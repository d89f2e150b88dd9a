//go:build openssl && cgo

package signer

// An RS256 signer over the system's libcrypto (OpenSSL 3), built with `-tags openssl`. RS256 is
// the only algorithm LivePerson accepts, and its signature is the one irreducible cost of every
// token: OpenSSL's RSA is several times faster than crypto/rsa on the same core. Everything else
// (verification, other algorithms, the pure-Go build) stays on go-jose and crypto/rsa.
//
// Signatures are computed on a fixed set of C threads, one per usable core, not in cgo calls
// from goroutines. A goroutine blocked for 200 µs in a cgo call holds its P; when every P is so
// blocked the Go scheduler hands a P to a fresh spinning thread on each call, which finds no work
// and burns the CPU the signatures need (about a quarter of the machine at GOMAXPROCS 2). Here a
// goroutine queues its digest for the workers and parks in the netpoller on its job's eventfd,
// so its P stays free for HTTP work while the signature runs.

/*
#cgo CFLAGS: -D_GNU_SOURCE
#cgo LDFLAGS: -lcrypto -lpthread
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

static EVP_PKEY *lpauth_load_key(const unsigned char *der, long len) {
	const unsigned char *p = der;
	return d2i_AutoPrivateKey(NULL, &p, len);
}

// lpauth_new_ctx prepares a context that signs SHA-256 digests with RSASSA-PKCS1-v1_5. Contexts
// are kept and reused, each serving one signature at a time, and each over its own EVP_PKEY:
// threads sharing one RSA key contend on its blinding lock.
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

static int lpauth_key_size(EVP_PKEY *pkey) { return EVP_PKEY_get_size(pkey); }
static void lpauth_free_key(EVP_PKEY *pkey) { EVP_PKEY_free(pkey); }
static void lpauth_free_ctx(EVP_PKEY_CTX *ctx) { EVP_PKEY_CTX_free(ctx); }

// An RSA signature is at most the modulus size; 1,024 bytes covers 8,192-bit keys.
#define LPAUTH_MAX_SIG 1024

// lpauth_job is one signature request. Go fills ctx and digest and queues it; a worker signs
// into sig and writes donefd, on which the Go side waits. The queue's mutex and the eventfd
// order the memory between the threads.
typedef struct lpauth_job {
	struct lpauth_job *next;
	int donefd;
	EVP_PKEY_CTX *ctx;
	unsigned char digest[32];
	unsigned char sig[LPAUTH_MAX_SIG];
	size_t siglen;
	int ok;
} lpauth_job;

static pthread_mutex_t lpauth_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t lpauth_cv = PTHREAD_COND_INITIALIZER;
static lpauth_job *lpauth_head, *lpauth_tail;

static void lpauth_submit(lpauth_job *j) {
	j->next = NULL;
	pthread_mutex_lock(&lpauth_mu);
	if (lpauth_tail) lpauth_tail->next = j; else lpauth_head = j;
	lpauth_tail = j;
	pthread_mutex_unlock(&lpauth_mu);
	pthread_cond_signal(&lpauth_cv);
}

static void *lpauth_work(void *arg) {
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&lpauth_mu);
		while (lpauth_head == NULL) pthread_cond_wait(&lpauth_cv, &lpauth_mu);
		lpauth_job *j = lpauth_head;
		lpauth_head = j->next;
		if (lpauth_head == NULL) lpauth_tail = NULL;
		pthread_mutex_unlock(&lpauth_mu);
		j->siglen = sizeof j->sig;
		// A job without a context is the hand-off alone (BenchmarkHandoff): it fails unsigned.
		j->ok = j->ctx != NULL && EVP_PKEY_sign(j->ctx, j->sig, &j->siglen, j->digest, 32) == 1 && j->siglen <= sizeof j->sig;
		uint64_t v = 1;
		while (write(j->donefd, &v, sizeof v) != sizeof v && errno == EINTR) {}
	}
	return NULL;
}

// lpauth_start_worker starts a detached signing thread; workers live as long as the process.
// It names the thread before returning (name: at most 15 characters), so that top -H, perf and
// make bench (which reads the threads' CPU time from /proc/<pid>/task/<tid>/schedstat) tell the
// signatures' CPU from the Go side's as soon as the signer exists.
static int lpauth_start_worker(const char *name) {
	pthread_attr_t attr;
	pthread_t t;
	if (pthread_attr_init(&attr) != 0) return 0;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int rc = pthread_create(&t, &attr, lpauth_work, NULL);
	pthread_attr_destroy(&attr);
	if (rc != 0) return 0;
	pthread_setname_np(t, name); // a thread that never exits: t stays valid
	return 1;
}

static lpauth_job *lpauth_new_job(void) {
	lpauth_job *j = calloc(1, sizeof *j);
	if (j == NULL) return NULL;
	j->donefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (j->donefd < 0) { free(j); return NULL; }
	return j;
}
*/
import "C"

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"unsafe"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/lpauth/lpauth-operator/api/keys"
)

func init() { opensslRS256 = newOpenSSLSigner }

// Implementation names the RS256 implementation this build uses.
const Implementation = "openssl"

type opensslSigner struct {
	der    []byte // PKCS #1, to load a key per context
	size   int
	public jose.JSONWebKey
	// ctxs holds prepared signing contexts; each is used by one signature at a time.
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

func newOpenSSLSigner(k keys.Key) (jose.OpaqueSigner, error) {
	if err := startWorkers(); err != nil {
		return nil, err
	}
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
	if s.size > C.LPAUTH_MAX_SIG {
		return nil, fmt.Errorf("key %s is larger than the libcrypto signer supports", k.ID())
	}
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
	return s.signDigest(sha256.Sum256(payload))
}

// signDigest signs a SHA-256 digest (the JWT signer's fast path hashes the signing input
// itself).
func (s *opensslSigner) signDigest(digest [32]byte) ([]byte, error) {
	sc, _ := s.ctxs.Get().(*signCtx)
	if sc == nil {
		return nil, errors.New("libcrypto could not prepare an RS256 signing context")
	}
	sig, err := sign(sc, digest)
	s.ctxs.Put(sc)
	return sig, err
}

var workers struct {
	once    sync.Once
	err     error
	started int
}

// startWorkers starts one signing thread per usable core (GOMAXPROCS, which follows the
// container's CPU limit): more threads than cores would only queue in the kernel.
func startWorkers() error {
	workers.once.Do(func() {
		name := C.CString(ThreadName) // the kernel copies it
		defer C.free(unsafe.Pointer(name))
		for range runtime.GOMAXPROCS(0) {
			if C.lpauth_start_worker(name) == 0 {
				workers.err = errors.New("could not start a libcrypto signing thread")
				return
			}
			workers.started++
		}
	})
	return workers.err
}

// job is the Go side of a signature request: its C memory and its eventfd, opened
// non-blocking so that waiting on it parks the goroutine in the netpoller.
type job struct {
	c    *C.lpauth_job
	done *os.File
	buf  [8]byte
}

// idleJobs keeps jobs for reuse; beyond its capacity (more signatures in flight than that)
// jobs are freed after use.
var idleJobs = make(chan *job, 1024)

func getJob() (*job, error) {
	select {
	case j := <-idleJobs:
		return j, nil
	default:
	}
	c := C.lpauth_new_job()
	if c == nil {
		return nil, errors.New("could not allocate a libcrypto signing job")
	}
	return &job{c: c, done: os.NewFile(uintptr(c.donefd), "lpauth-sign")}, nil
}

func putJob(j *job) {
	select {
	case idleJobs <- j:
	default:
		j.done.Close() // and with it donefd
		C.free(unsafe.Pointer(j.c))
	}
}

// sign queues digest for the signing threads and waits for the signature. A job whose eventfd
// fails is dropped, not reused: a worker may still write into it.
func sign(sc *signCtx, digest [32]byte) ([]byte, error) {
	j, err := getJob()
	if err != nil {
		return nil, err
	}
	j.c.ctx = sc.ctx
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&j.c.digest[0])), len(digest)), digest[:])
	C.lpauth_submit(j.c)
	if _, err := io.ReadFull(j.done, j.buf[:]); err != nil {
		return nil, fmt.Errorf("signing thread: %w", err)
	}
	runtime.KeepAlive(sc)
	var sig []byte
	if j.c.ok == 1 {
		sig = C.GoBytes(unsafe.Pointer(&j.c.sig[0]), C.int(j.c.siglen))
	}
	putJob(j)
	if sig == nil {
		return nil, errors.New("libcrypto failed to sign")
	}
	return sig, nil
}
