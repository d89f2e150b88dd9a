package jwe

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func rsaKey(t *testing.T, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseKeysAcceptsEveryForm(t *testing.T) {
	k := rsaKey(t, 2048)
	spki, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lp"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	data := map[string][]byte{
		"pkix":  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}),
		"pkcs1": pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.PublicKey)}),
		"cert":  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert}),
		"line":  []byte(base64.StdEncoding.EncodeToString(spki) + "\n"),
	}
	keys, err := ParseKeys(data)
	if err != nil || len(keys) != 4 {
		t.Fatalf("ParseKeys = %d keys, %v; want 4, nil", len(keys), err)
	}
	for _, got := range keys {
		if !got.PublicKey.Equal(&k.PublicKey) {
			t.Errorf("key %s differs", got.ID)
		}
	}
}

func TestParseKeysRejects(t *testing.T) {
	small := rsaKey(t, 1024)
	smallDER, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	for _, tc := range []struct {
		value []byte
		want  string
	}{
		{pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: smallDER}), "RSA key of 1024 bits"},
		{pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER}), "not an RSA key"},
		{pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}), `PEM block "PRIVATE KEY"`},
		{[]byte("not a key"), "neither PEM nor one line of base64 DER"},
		{[]byte("AAAA"), "unreadable"},
	} {
		_, err := ParseKeys(map[string][]byte{"lp-2026": tc.value})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `key "lp-2026"`) {
			t.Errorf("ParseKeys = %v, want an error naming the key and containing %q", err, tc.want)
		}
	}
	if _, err := ParseKeys(nil); err == nil {
		t.Error("ParseKeys(nil) succeeded, want an error")
	}
}

func TestSelect(t *testing.T) {
	keys := []Key{{ID: "a"}, {ID: "b"}}
	if _, err := Select(keys, ""); err == nil || !strings.Contains(err.Error(), "set encryption.keyID") {
		t.Errorf("Select with two keys and no kid = %v, want an error asking for keyID", err)
	}
	if k, err := Select(keys, "b"); err != nil || k.ID != "b" {
		t.Errorf("Select(b) = %v, %v", k, err)
	}
	if _, err := Select(keys, "c"); err == nil {
		t.Error("Select(c) succeeded, want an error")
	}
	if k, err := Select(keys[:1], ""); err != nil || k.ID != "a" {
		t.Errorf("Select of the only key = %v, %v", k, err)
	}
}

func TestEncryptedTokenOpensWithLivePersonsKey(t *testing.T) {
	lp := rsaKey(t, 2048)
	for _, enc := range []jose.ContentEncryption{jose.A256GCM, jose.A128CBC_HS256} {
		e, err := NewEncrypter(Key{ID: "lp-kid", PublicKey: &lp.PublicKey}, enc)
		if err != nil {
			t.Fatal(err)
		}
		obj, err := e.Encrypt([]byte("header.payload.signature"))
		if err != nil {
			t.Fatal(err)
		}
		compact, _ := obj.CompactSerialize()
		parsed, err := jose.ParseEncrypted(compact, []jose.KeyAlgorithm{jose.RSA_OAEP_256}, []jose.ContentEncryption{enc})
		if err != nil {
			t.Fatal(err)
		}
		if parsed.Header.KeyID != "lp-kid" || parsed.Header.ExtraHeaders["cty"] != "JWT" {
			t.Errorf("%s header: kid %q cty %v; want lp-kid, JWT", enc, parsed.Header.KeyID, parsed.Header.ExtraHeaders["cty"])
		}
		plain, err := parsed.Decrypt(lp)
		if err != nil || string(plain) != "header.payload.signature" {
			t.Errorf("%s decrypt = %q, %v", enc, plain, err)
		}
	}
	if _, err := NewEncrypter(Key{ID: "x", PublicKey: &lp.PublicKey}, jose.A128GCM); err == nil {
		t.Error("A128GCM accepted, want an error")
	}
}

// LivePerson's keys are copied into the token server's one Secret for all clients: a client
// cannot bring more, longer-named or larger keys than LivePerson uses.
func TestParseKeysIsBounded(t *testing.T) {
	der, _ := x509.MarshalPKIXPublicKey(&rsaKey(t, 2048).PublicKey)
	one := []byte(base64.StdEncoding.EncodeToString(der))
	many := map[string][]byte{}
	for i := range MaxKeys + 1 {
		many[string(rune('a'+i))] = one
	}
	if _, err := ParseKeys(many); err == nil {
		t.Errorf("%d keys accepted, want at most %d", len(many), MaxKeys)
	}
	long := map[string][]byte{string(make([]byte, MaxKIDBytes+1)): one}
	if _, err := ParseKeys(long); err == nil {
		t.Error("a kid longer than MaxKIDBytes accepted")
	}
}
