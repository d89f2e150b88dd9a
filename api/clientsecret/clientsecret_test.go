package clientsecret

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

// A brand-chosen client secret must be too strong to guess: /token compares before it counts
// failures, so the limiter is no defence against guessing.
func TestWeakClientSecretsAreRefused(t *testing.T) {
	for _, tc := range []struct {
		secret string
		ok     bool
	}{
		{"k7Qw-9xZr2mLp4Vt8sN1bYc6Hj3Fd5Ge", true},      // 32 random characters
		{"4f9a1c3e7b2d8f6a0c5e9b1d3f7a2c4e", true},      // 128 bits of hex
		{"correct-horse-battery-staple-2024", true},     // long passphrase
		{"short-secret", false},                         // too short
		{strings.Repeat("a", 40), false},                // one character
		{strings.Repeat("ab", 22), false},               // two characters, any length
		{strings.Repeat("ab", 200), false},              // ...
		{strings.Repeat("0", 64) + "1", false},          // nearly one character
		{strings.Repeat("1234", 8), false},              // four digits
		{strings.Repeat("Password1!", 3) + "Pa", false}, // a password repeated
		{"Summer2024!Summer2024!Summer2024!", false},    // ...
		{strings.Repeat("x", 600), false},               // too long
		{"k7Qw 9xZr2mLp4Vt8sN1bYc6Hj3Fd5Ge", false},     // a space
	} {
		if err := Check([]byte(tc.secret)); (err == nil) != tc.ok {
			t.Errorf("Check(%.24q…) = %v, want ok=%v", tc.secret, err, tc.ok)
		}
	}
}

// Secrets made the ways the README suggests always pass.
func TestRandomSecretsPass(t *testing.T) {
	for i := range 2000 {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		for _, s := range []string{base64.StdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b), hex.EncodeToString(b[:16])} {
			if err := Check([]byte(s)); err != nil {
				t.Fatalf("try %d: random secret %q refused: %v", i, s, err)
			}
		}
	}
}
