package signer_test

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/lpauth/lpauth-operator/api/keys"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/tokenserver/signer"
)

// The build's signer (libcrypto with -tags openssl, crypto/rsa otherwise) must be
// indistinguishable from a reference computed here, independently of both signers: RS256 is
// RSASSA-PKCS1-v1_5 over the SHA-256 of "header.payload", which is deterministic, so the very
// same bytes. (Comparing the build's signer with the pure-Go one alone would compare Go with
// itself in the default build.)
func TestBuildSignerMatchesGo(t *testing.T) {
	t.Parallel()
	t.Logf("RS256 signer in this build: %s", signer.Implementation)
	for _, bits := range []int{2048, 3072} {
		jwk, err := keys.Generate(v1alpha1.RS256, bits)
		if err != nil {
			t.Fatal(err)
		}
		k := keys.Key{JWK: jwk, State: v1alpha1.KeyActive, CreatedAt: time.Now()}
		build, err := signer.New(k)
		if err != nil {
			t.Fatal(err)
		}
		goSigner, _ := signer.NewGo(k)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				payload := fmt.Appendf(nil, `{"sub":"customer-%d","n":%d}`, i, bits)
				a, err := build.Sign(payload)
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := goSigner.Sign(payload)
				ca, _ := a.CompactSerialize()
				cb, _ := b.CompactSerialize()
				if ca != cb {
					t.Errorf("%d bits: the build's signer and Go's differ", bits)
				}
				dot := strings.LastIndexByte(ca, '.')
				digest := sha256.Sum256([]byte(ca[:dot]))
				ref, err := rsa.SignPKCS1v15(nil, jwk.Key.(*rsa.PrivateKey), crypto.SHA256, digest[:])
				if err != nil {
					t.Error(err)
					return
				}
				if got := ca[dot+1:]; got != base64.RawURLEncoding.EncodeToString(ref) {
					t.Errorf("%d bits: the build's signature is not RSASSA-PKCS1-v1_5 SHA-256 of the signing input", bits)
				}
				parsed, err := jose.ParseSigned(ca, []jose.SignatureAlgorithm{jose.RS256})
				if err != nil {
					t.Error(err)
					return
				}
				if h := parsed.Signatures[0].Protected; h.KeyID != k.ID() || h.ExtraHeaders["typ"] != "JWT" {
					t.Errorf("header = %+v", h)
				}
				if _, err := parsed.Verify(&jwk.Key.(*rsa.PrivateKey).PublicKey); err != nil {
					t.Errorf("does not verify: %v", err)
				}
			})
		}
		wg.Wait()
	}
}

// SignCompact's RS256 fast path must write exactly what go-jose writes, with either signer, and
// the other algorithms (through go-jose) must verify.
func TestSignCompactMatchesGoJose(t *testing.T) {
	t.Parallel()
	for _, alg := range []v1alpha1.SigningAlgorithm{v1alpha1.RS256, v1alpha1.ES256, v1alpha1.PS256} {
		jwk, err := keys.Generate(alg, 2048)
		if err != nil {
			t.Fatal(err)
		}
		k := keys.Key{JWK: jwk, State: v1alpha1.KeyActive}
		build, err := signer.New(k)
		if err != nil {
			t.Fatal(err)
		}
		goSigner, _ := signer.NewGo(k)
		payload := []byte(`{"iss":"https://auth.brand.example","sub":"customer-ü","lp_sdes":[{"type":"ctmrinfo"}]}`)
		for name, s := range map[string]signer.JWTSigner{"build": build, "go": goSigner} {
			compact, err := s.SignCompact(payload)
			if err != nil {
				t.Fatalf("%s %s: %v", alg, name, err)
			}
			parsed, err := jose.ParseSigned(compact, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			if err != nil {
				t.Fatalf("%s %s: %v", alg, name, err)
			}
			if h := parsed.Signatures[0].Protected; h.KeyID != k.ID() || h.ExtraHeaders["typ"] != "JWT" || h.Algorithm != string(alg) {
				t.Errorf("%s %s: header = %+v", alg, name, h)
			}
			if got, err := parsed.Verify(jwk.Public().Key); err != nil || string(got) != string(payload) {
				t.Errorf("%s %s: verify = %q, %v", alg, name, got, err)
			}
			if alg != v1alpha1.RS256 {
				continue // ECDSA and PSS signatures are randomized
			}
			jws, _ := s.Sign(payload)
			want, _ := jws.CompactSerialize()
			if compact != want {
				t.Errorf("%s %s: SignCompact differs from go-jose:\n%s\n%s", alg, name, compact, want)
			}
		}
	}
}

// More signatures in flight than the libcrypto signer keeps jobs for (1,024) must all complete,
// correct, and the surplus jobs be freed without disturbing the others.
func TestSignerManyInFlight(t *testing.T) {
	t.Parallel()
	jwk, err := keys.Generate(v1alpha1.RS256, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signer.New(keys.Key{JWK: jwk, State: v1alpha1.KeyActive})
	if err != nil {
		t.Fatal(err)
	}
	pub := &jwk.Key.(*rsa.PrivateKey).PublicKey
	var wg sync.WaitGroup
	for i := range 1500 {
		wg.Go(func() {
			jws, err := s.Sign(fmt.Appendf(nil, `{"n":%d}`, i))
			if err != nil {
				t.Error(err)
				return
			}
			got, err := jws.Verify(pub)
			if err != nil || string(got) != fmt.Sprintf(`{"n":%d}`, i) {
				t.Errorf("signature %d: %q, %v", i, got, err)
			}
		})
	}
	wg.Wait()
}

// Other algorithms always sign with go-jose.
func TestNonRS256KeysSign(t *testing.T) {
	t.Parallel()
	for _, alg := range []v1alpha1.SigningAlgorithm{v1alpha1.ES256, v1alpha1.PS256} {
		jwk, err := keys.Generate(alg, 2048)
		if err != nil {
			t.Fatal(err)
		}
		s, err := signer.New(keys.Key{JWK: jwk, State: v1alpha1.KeyActive})
		if err != nil {
			t.Fatal(err)
		}
		jws, err := s.Sign([]byte(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := jws.Verify(jwk.Public().Key); err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
	}
}

// BenchmarkSign compares the pure-Go signer with the build's at LivePerson's key sizes, on all
// cores (`go test -bench Sign -tags openssl ./tokenserver/signer/`).
func BenchmarkSign(b *testing.B) {
	for _, bits := range []int{2048, 3072, 4096} {
		jwk, err := keys.Generate(v1alpha1.RS256, bits)
		if err != nil {
			b.Fatal(err)
		}
		k := keys.Key{JWK: jwk, State: v1alpha1.KeyActive}
		goSigner, _ := signer.NewGo(k)
		build, _ := signer.New(k)
		signers := map[string]jose.Signer{"go": goSigner}
		if signer.Implementation != "go" {
			signers[signer.Implementation] = build
		}
		for name, s := range signers {
			b.Run(fmt.Sprintf("RS%d/%s", bits, name), func(b *testing.B) {
				payload := []byte(`{"iss":"https://auth.brand.example","sub":"customer-8271","aud":"lp","exp":1800000000}`)
				// Four callers per core, as under HTTP load: the libcrypto signer's threads
				// then always have the next digest queued.
				b.SetParallelism(4)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := s.Sign(payload); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "signs/s")
			})
		}
	}
}

func TestSignerSetsKidAndVerifiesWithJWKS(t *testing.T) {
	jwk, err := keys.Generate(v1alpha1.RS256, 2048)
	if err != nil {
		t.Fatal(err)
	}
	k := keys.Key{JWK: jwk, State: v1alpha1.KeyActive}
	s, err := signer.New(k)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign([]byte(`{"sub":"abc"}`))
	if err != nil {
		t.Fatal(err)
	}
	compact, _ := obj.CompactSerialize()
	parsed, err := jose.ParseSigned(compact, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	h := parsed.Signatures[0].Header
	if h.KeyID != k.ID() || h.ExtraHeaders["typ"] != "JWT" {
		t.Errorf("header kid %q typ %v, want %q JWT", h.KeyID, h.ExtraHeaders["typ"], k.ID())
	}
	pub := keys.PublicJWK(k)
	if _, err := parsed.Verify(&pub); err != nil {
		t.Errorf("verify: %v", err)
	}
	k.JWK = k.JWK.Public()
	if _, err := signer.New(k); err == nil {
		t.Error("New on a public-only key succeeded, want an error")
	}
}
