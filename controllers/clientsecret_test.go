package controllers

import (
	"testing"
)

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
