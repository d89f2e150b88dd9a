package controllers

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lpauth/lpauth-operator/api/secretset"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
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

// A secret set that would not fit a Secret leaves out the youngest clients, not everyone.
func TestSecretSetTooLargeLeavesOutTheYoungest(t *testing.T) {
	var clients []*v1alpha1.LivePersonAuthClient
	data := map[string][]byte{}
	for i := range 40 {
		c := &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("c%02d", i), CreationTimestamp: metav1.NewTime(time.Unix(int64(1000+i), 0))}}
		clients = append(clients, c)
		data[secretset.ClientKeys(c.Name)[1]] = make([]byte, 30<<10) // 30 KiB of keys each: 1.2 MiB in all
	}
	left := fitSecretSet(data, clients)
	if secretset.Size(data) > maxSecretSetBytes || left == 0 {
		t.Fatalf("size %d after leaving out %d clients, want at most %d", secretset.Size(data), left, maxSecretSetBytes)
	}
	for i, c := range clients {
		_, kept := data[secretset.ClientKeys(c.Name)[1]]
		if kept != (i < len(clients)-left) {
			t.Errorf("client %s (age rank %d) kept=%v: want the %d youngest left out", c.Name, i, kept, left)
		}
	}
}

func TestUnknownAnnotationsAreFound(t *testing.T) {
	got := unknownAnnotations(map[string]string{
		v1alpha1.AnnotationRotate: "x", "auth.lpauth.dev/rotation": "x", "auth.lpauth.dev/revokes": "x", "example.com/other": "x",
	}, signingKeyAnnotations)
	if want := []string{"auth.lpauth.dev/revokes", "auth.lpauth.dev/rotation"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
