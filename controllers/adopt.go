package controllers

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lpauth/lpauth-operator/api/secretset"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// restoredSecret is a Secret an object would generate that exists without being the object's:
// most often a restore, which re-creates the object (a new UID) next to its old Secret. Taking
// it over keeps what LivePerson's console or the brand's backends hold (a client secret, an
// issue-API credential); generating anew would break them.
type restoredSecret struct {
	secret *corev1.Secret
	// owner would own the Secret; kind is its kind, short its kubectl short name.
	owner       client.Object
	kind, short string
	// ours reports whether the Secret's content is this owner's (its labels or data say so).
	ours bool
	// keeps says what taking it over keeps, for the message.
	keeps string
}

// adoption decides: nil when the owner may take the Secret over (the caller then makes itself
// its controller), a not-ready error otherwise. Only a Secret the operator wrote for an object of
// this kind and name, now gone (ownerless, or owned by another UID), and only when someone who
// may edit the owner names its UID in auth.lpauth.dev/adopt-secret: whoever may merely create
// Secrets must not be able to plant the values a token server trusts.
func (rs restoredSecret) adoption() error {
	s := rs.secret
	if !rs.ours || !leftByFormer(s, rs.owner, rs.kind) {
		return notReadyf(v1alpha1.ReasonInvalidSecret, "Secret %s exists and is not this %s's; delete or rename it", s.Name, rs.kind)
	}
	if rs.owner.GetAnnotations()[v1alpha1.AnnotationAdoptSecret] != string(s.UID) {
		return &notReady{reason: v1alpha1.ReasonSecretFound, err: fmt.Errorf(
			"Secret %s looks like this %s's %s restored from a backup; if you restored it yourself, keep it with `kubectl annotate %s/%s %s=%s`; otherwise delete it (anyone who may create Secrets here could have made it) and new values are generated",
			s.Name, rs.kind, rs.keeps, rs.short, rs.owner.GetName(), v1alpha1.AnnotationAdoptSecret, s.UID)}
	}
	s.OwnerReferences = withoutOwnersOfKind(s.OwnerReferences, rs.kind)
	return nil
}

// leftByFormer reports whether the operator wrote obj for an earlier object of this kind and
// name, now gone: labelled as ours, and ownerless or controlled by another UID.
func leftByFormer(obj, owner client.Object, kind string) bool {
	former := metav1.GetControllerOf(obj)
	return obj.GetLabels()[v1alpha1.LabelManagedBy] == v1alpha1.ManagedByValue &&
		(former == nil || (former.Kind == kind && strings.HasPrefix(former.APIVersion, v1alpha1.GroupVersion.Group+"/") &&
			former.Name == owner.GetName() && former.UID != owner.GetUID()))
}

// adoptedMessage is the Warning event's text once a Secret is taken over.
func (rs restoredSecret) adoptedMessage() string {
	return fmt.Sprintf("Took over Secret %s and its %s, as %s asked", rs.secret.Name, rs.keeps, v1alpha1.AnnotationAdoptSecret)
}

// withoutOwnersOfKind drops the references to former objects of this kind of ours.
func withoutOwnersOfKind(refs []metav1.OwnerReference, kind string) []metav1.OwnerReference {
	var out []metav1.OwnerReference
	for _, r := range refs {
		if r.Kind != kind || !strings.HasPrefix(r.APIVersion, v1alpha1.GroupVersion.Group+"/") {
			out = append(out, r)
		}
	}
	return out
}

// hasLabels reports whether obj carries every label of want.
func hasLabels(obj client.Object, want map[string]string) bool {
	for k, v := range want {
		if obj.GetLabels()[k] != v {
			return false
		}
	}
	return true
}

// secretSetTakeover reports whether a secret set Secret the TokenServer does not control may be
// taken over without asking: one the operator wrote for an earlier TokenServer of this name (a
// restore), of the set's type and not immutable, so that rewriting it replaces all it holds.
// (The token server reads only a set the TokenServer controls, so nothing of it is served before.)
func secretSetTakeover(s *corev1.Secret, ts *v1alpha1.TokenServer) bool {
	return leftByFormer(s, ts, "TokenServer") && s.Type == secretset.SecretType && (s.Immutable == nil || !*s.Immutable)
}
