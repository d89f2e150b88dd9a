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

// A secret set that would not fit its Secrets leaves out the youngest clients of each shard that
// overflows, not everyone: in one Secret, and in four.
func TestSecretSetTooLargeLeavesOutTheYoungest(t *testing.T) {
	for _, k := range []int{1, 4} {
		var clients []*v1alpha1.LivePersonAuthClient
		data := map[string][]byte{}
		for i := range 40 * k {
			c := &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("c%03d", i), CreationTimestamp: metav1.NewTime(time.Unix(int64(1000+i), 0))}}
			clients = append(clients, c)
			data[secretset.ClientKeys(c.Name)[1]] = make([]byte, 30<<10) // 30 KiB of keys each: 1.2 MiB a shard
		}
		left := fitSecretSet(data, clients, k, maxSecretSetBytes)
		if left == 0 {
			t.Fatalf("k=%d: nobody left out", k)
		}
		for i, n := range secretset.ShardSizes(data, k) {
			if n > maxSecretSetBytes {
				t.Errorf("k=%d: shard %d holds %d bytes after leaving out %d clients, want at most %d", k, i, n, left, maxSecretSetBytes)
			}
		}
		// In each shard, every client kept is older than every client left out.
		youngestKept, oldestLeft := map[int]int{}, map[int]int{}
		for i, c := range clients {
			shard := secretset.ClientShard(c.Name, k)
			if _, kept := data[secretset.ClientKeys(c.Name)[1]]; kept {
				youngestKept[shard] = i
			} else if _, seen := oldestLeft[shard]; !seen {
				oldestLeft[shard] = i
			}
		}
		for shard, left := range oldestLeft {
			if youngestKept[shard] > left {
				t.Errorf("k=%d shard %d: client %d kept, older client %d left out", k, shard, youngestKept[shard], left)
			}
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
