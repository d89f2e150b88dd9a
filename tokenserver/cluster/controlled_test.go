package cluster

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// Regression: the token server read its credentials Secret and secret set by name alone, so a
// Secret of that name created by anyone else (before the operator wrote its own, or after a
// restore) planted the code key, client secret digests or the login secret it trusts.
func TestOnlySecretsTheOperatorWroteForThisServerAreRead(t *testing.T) {
	t.Parallel()
	yes := true
	owner := func(kind, name string, uid types.UID) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: kind, Name: name, UID: uid, Controller: &yes}}
	}
	for _, tc := range []struct {
		name string
		s    *corev1.Secret
		want bool
	}{
		{"the server's own", &corev1.Secret{Type: corev1.SecretTypeOpaque, ObjectMeta: metav1.ObjectMeta{OwnerReferences: owner("TokenServer", "brand", "uid")}}, true},
		{"no owner", &corev1.Secret{Type: corev1.SecretTypeOpaque}, false},
		{"an earlier TokenServer of that name", &corev1.Secret{Type: corev1.SecretTypeOpaque, ObjectMeta: metav1.ObjectMeta{OwnerReferences: owner("TokenServer", "brand", "old")}}, false},
		{"another kind", &corev1.Secret{Type: corev1.SecretTypeOpaque, ObjectMeta: metav1.ObjectMeta{OwnerReferences: owner("SigningKey", "brand", "uid")}}, false},
		{"another type", &corev1.Secret{Type: "kubernetes.io/tls", ObjectMeta: metav1.ObjectMeta{OwnerReferences: owner("TokenServer", "brand", "uid")}}, false},
		{"not an owner reference of ours", &corev1.Secret{Type: corev1.SecretTypeOpaque, ObjectMeta: metav1.ObjectMeta{OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "example.com/v1", Kind: "TokenServer", Name: "brand", UID: "uid", Controller: &yes}}}}, false},
		{"missing", nil, false},
	} {
		if got := controlled(tc.s, "TokenServer", "brand", "uid", corev1.SecretTypeOpaque) != nil; got != tc.want {
			t.Errorf("%s: read %v, want %v", tc.name, got, tc.want)
		}
	}
}
