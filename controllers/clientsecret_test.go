package controllers

import (
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
		{"k7Qw-9xZr2mLp4Vt8sN1bYc6Hj3Fd5Ge", true},          // 32 random characters
		{"4f9a1c3e7b2d8f6a0c5e9b1d3f7a2c4e", true},          // 128 bits of hex
		{"correct-horse-battery-staple-2024", true},         // long passphrase
		{"short-secret", false},                             // too short
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false}, // one character
		{"abababababababababababababababababababab", false}, // two characters
		{"12341234123412341234123412341234", false},         // digits only, four of them
		{strings.Repeat("x", 600), false},                   // too long
		{"k7Qw 9xZr2mLp4Vt8sN1bYc6Hj3Fd5Ge", false},         // a space
	} {
		err := checkClientSecret([]byte(tc.secret))
		if (err == nil) != tc.ok {
			t.Errorf("checkClientSecret(%.20q…) = %v, want ok=%v", tc.secret, err, tc.ok)
		}
	}
}

// Whoever may create a TokenServer must not choose the image that runs with its ServiceAccount.
func TestTokenServerImageMustBeAllowed(t *testing.T) {
	own := "ghcr.io/lpauth/lpauth-operator:v1"
	allowed := []string{"registry.brand.example/lpauth/", "ghcr.io/lpauth/lpauth-operator:"}
	for _, tc := range []struct {
		image string
		want  bool
	}{
		{"", true},
		{own, true},
		{"ghcr.io/lpauth/lpauth-operator:v2", true},
		{"registry.brand.example/lpauth/token-server:1.0", true},
		{"registry.brand.example/lpauth-evil/x:1", false},
		{"docker.io/attacker/steal-keys:latest", false},
		{"ghcr.io/lpauth/lpauth-operator-evil:v1", false},
	} {
		if got := imageAllowed(tc.image, own, allowed); got != tc.want {
			t.Errorf("imageAllowed(%q) = %v, want %v", tc.image, got, tc.want)
		}
	}
	if imageAllowed("docker.io/attacker/x:1", own, nil) {
		t.Error("with no allowed prefixes, another image than the operator's ran")
	}
}
