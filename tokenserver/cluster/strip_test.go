package cluster

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// The cache keeps what the snapshot reads of a client (metadata, the generated-id annotation,
// spec) and drops the status and managedFields.
func TestStripClientStatus(t *testing.T) {
	c := &v1alpha1.LivePersonAuthClient{
		ObjectMeta: metav1.ObjectMeta{Name: "brand", Annotations: map[string]string{v1alpha1.AnnotationGeneratedClientID: "lp-x"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Spec:   v1alpha1.LivePersonAuthClientSpec{AccountID: "123", RedirectURIs: []string{"https://liveperson.net"}},
		Status: v1alpha1.LivePersonAuthClientStatus{ClientID: "lp-x", ObservedGeneration: 3},
	}
	out, err := stripClientStatus(c)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*v1alpha1.LivePersonAuthClient)
	if got.Status.ClientID != "" || got.Status.ObservedGeneration != 0 || got.ManagedFields != nil {
		t.Errorf("status or managedFields kept: %+v", got)
	}
	if got.Annotations[v1alpha1.AnnotationGeneratedClientID] != "lp-x" || got.Spec.AccountID != "123" || len(got.Spec.RedirectURIs) != 1 {
		t.Errorf("spec or the client-id annotation lost: %+v", got)
	}
	if other, _ := stripClientStatus("not a client"); other != "not a client" {
		t.Error("other objects must pass through")
	}
}
