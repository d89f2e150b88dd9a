package controllers

import (
	"context"
	"errors"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// Regression: a failed look-up of a SigningKey's clients counted zero PEM-mode clients, so a
// rotation went ahead without the hold their consoles need. The look-up's error is the
// reconcile's error now (retried), never "no clients".
func TestAFailedClientLookupStopsTheRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cacheDown := errors.New("the cache is not synced")
	c := fake.NewClientBuilder().WithScheme(Scheme()).WithInterceptorFuncs(interceptor.Funcs{
		List: func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error {
			return cacheDown
		},
	}).Build()
	r := &SigningKeyReconciler{Client: c}
	s := &skScope{sk: &v1alpha1.SigningKey{ObjectMeta: metav1.ObjectMeta{Name: "keys", Namespace: "brand"}}}
	if err := r.readConsoleClients(ctx, s); !errors.Is(err, cacheDown) {
		t.Fatalf("readConsoleClients = %v, want the look-up's error", err)
	}

	// And with the look-up working, the PEM-mode clients of every TokenServer of the key count.
	ok := fakeBuilder().
		WithObjects(
			&v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "ts", Namespace: "brand"}, Spec: v1alpha1.TokenServerSpec{SigningKeyRef: v1alpha1.LocalObjectReference{Name: "keys"}}},
			&v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "brand"}, Spec: v1alpha1.TokenServerSpec{SigningKeyRef: v1alpha1.LocalObjectReference{Name: "other-keys"}}},
			&v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "pem", Namespace: "brand"},
				Spec: v1alpha1.LivePersonAuthClientSpec{TokenServerRef: v1alpha1.LocalObjectReference{Name: "ts"}, PublicKeyMode: v1alpha1.PublicKeyPEM}},
			&v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "jwks", Namespace: "brand"},
				Spec: v1alpha1.LivePersonAuthClientSpec{TokenServerRef: v1alpha1.LocalObjectReference{Name: "ts"}}},
			&v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere", Namespace: "brand"},
				Spec: v1alpha1.LivePersonAuthClientSpec{TokenServerRef: v1alpha1.LocalObjectReference{Name: "other"}, PublicKeyMode: v1alpha1.PublicKeyPEM}},
		).Build()
	r = &SigningKeyReconciler{Client: ok}
	s = &skScope{sk: s.sk}
	if err := r.readConsoleClients(ctx, s); err != nil || s.pemClients != 1 {
		t.Fatalf("readConsoleClients = %v with %d PEM-mode clients, want 1", err, s.pemClients)
	}
}
