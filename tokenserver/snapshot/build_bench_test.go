package snapshot_test

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/lpauth/lpauth-operator/api/secretset"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

// BenchmarkRebuild10k is a token server's rebuild with 10,000 clients: the set as the operator
// writes it (compiled specs, digests), its clients decoded, the snapshot built.
func BenchmarkRebuild10k(b *testing.B) {
	in := inputs(&testing.T{})
	secret := []byte("G4tY9kP2wQ7xN1vR6mL3hZ8cB5jD0fSa")
	var clients []*v1alpha1.LivePersonAuthClient
	for i := range 10000 {
		c := client(fmt.Sprintf("scale-%05d", i), nil)
		c.Spec.Flow, c.Spec.ClientID = v1alpha1.FlowCode, fmt.Sprintf("lp-%05d", i)
		c.Spec.ClientSecretRef = &v1alpha1.SecretKeyRef{Name: "shared", Key: v1alpha1.ClientSecretKey}
		clients = append(clients, &c)
	}
	brand := map[string]*corev1.Secret{"shared": {Data: map[string][]byte{v1alpha1.ClientSecretKey: secret}}}
	data := secretset.Compile(in.TokenServer, clients, func(n string) *corev1.Secret { return brand[n] })
	in.BrandSecrets, in.SecretSet = nil, &corev1.Secret{Data: data}
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			_, _ = secretset.Clients("ns", data)
		}
	})
	b.Run("decode-unchanged", func(b *testing.B) {
		var d secretset.Decoder
		_, _ = d.Clients("ns", data)
		for b.Loop() {
			_, _ = d.Clients("ns", data)
		}
	})
	in.Clients, _ = secretset.Clients("ns", data)
	b.Run("build", func(b *testing.B) {
		for b.Loop() {
			snap, _, err := snapshot.Build(in)
			if err != nil || len(snap.Clients) != 10000 {
				b.Fatalf("%v clients, %v", len(snap.Clients), err)
			}
		}
	})
}
