package secretset_test

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lpauth/lpauth-operator/api/secretset"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// BenchmarkCompile10k is the operator's work for one write of a set of 10,000 clients (the
// Secrets already read): compile, pick the shards, split.
func BenchmarkCompile10k(b *testing.B) {
	ts := &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand"}}
	var clients []*v1alpha1.LivePersonAuthClient
	secrets := map[string]*corev1.Secret{}
	yes := true
	for i := range 10000 {
		name := fmt.Sprintf("scale-%05d", i)
		uid := types.UID(fmt.Sprintf("uid-%d", i))
		c := &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: name, UID: uid, Annotations: map[string]string{v1alpha1.AnnotationGeneratedClientID: "lp-0123456789abcdefghijkl"}},
			Spec: v1alpha1.LivePersonAuthClientSpec{TokenServerRef: v1alpha1.LocalObjectReference{Name: "brand"}, Flow: v1alpha1.FlowCode}}
		clients = append(clients, c)
		secrets[v1alpha1.ClientSecretName(name)] = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.ClientSecretName(name),
			OwnerReferences: []metav1.OwnerReference{{Kind: "LivePersonAuthClient", Name: name, UID: uid, Controller: &yes}}},
			Data: map[string][]byte{v1alpha1.ClientSecretKey: []byte("Zx9-vQ2mK7pL4sT8wB1nC6yD3fG5hJ0r"), v1alpha1.ClientIDKey: []byte("lp-0123456789abcdefghijkl")}}
	}
	get := func(name string) *corev1.Secret { return secrets[name] }
	for b.Loop() {
		data := secretset.Compile(ts, clients, get)
		k := secretset.Shards(data, 4, secretset.MaxShards, 900<<10, 0.6)
		_ = secretset.Split(data, k)
	}
}
