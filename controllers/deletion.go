package controllers

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// guardDeletion keeps obj (a SigningKey or a TokenServer) from being deleted while others still
// use it: deleting a SigningKey removes every key LivePerson trusts, deleting a TokenServer
// stops every login of its clients. It adds the in-use finalizer to a live object, and on a
// deleted one removes it once users is empty or the delete-anyway annotation is set. It reports
// whether the object is being deleted (the caller then stops), with the condition to show.
func guardDeletion(ctx context.Context, c client.Client, rec recorder.EventRecorder, obj client.Object, conds *[]metav1.Condition, users []string, what string) (deleting bool, err error) {
	if obj.GetDeletionTimestamp().IsZero() {
		if controllerutil.ContainsFinalizer(obj, v1alpha1.FinalizerInUse) {
			return false, nil
		}
		patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
		controllerutil.AddFinalizer(obj, v1alpha1.FinalizerInUse)
		return false, c.Patch(ctx, obj, patch)
	}
	if !controllerutil.ContainsFinalizer(obj, v1alpha1.FinalizerInUse) {
		return true, nil
	}
	if len(users) > 0 && obj.GetAnnotations()[v1alpha1.AnnotationDeleteAnyway] != "true" {
		sort.Strings(users)
		msg := fmt.Sprintf("Deletion waits: still used by %s %s. Delete those first, or run `kubectl annotate %s %s=true` to delete anyway (%s)",
			what, strings.Join(users, ", "), kindRef(obj), v1alpha1.AnnotationDeleteAnyway, deletionEffect(obj))
		if !meta.IsStatusConditionTrue(*conds, v1alpha1.ConditionDeletionBlocked) && rec != nil {
			rec.Eventf(obj, nil, corev1.EventTypeWarning, v1alpha1.ReasonInUse, "Delete", "%s", msg)
		}
		meta.SetStatusCondition(conds, metav1.Condition{Type: v1alpha1.ConditionDeletionBlocked, Status: metav1.ConditionTrue,
			Reason: v1alpha1.ReasonInUse, Message: msg, ObservedGeneration: obj.GetGeneration()})
		return true, nil
	}
	patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
	controllerutil.RemoveFinalizer(obj, v1alpha1.FinalizerInUse)
	return true, client.IgnoreNotFound(c.Patch(ctx, obj, patch))
}

// deletionStarted passes the update that sets deletionTimestamp, so the in-use guard looks at
// once whatever else the object's predicates filter.
var deletionStarted = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetDeletionTimestamp().IsZero() && !e.ObjectNew.GetDeletionTimestamp().IsZero()
	},
	CreateFunc: func(event.CreateEvent) bool { return false }, DeleteFunc: func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
}

func kindRef(obj client.Object) string {
	switch obj.(type) {
	case *v1alpha1.SigningKey:
		return "sk/" + obj.GetName()
	case *v1alpha1.TokenServer:
		return "ts/" + obj.GetName()
	}
	return obj.GetName()
}

func deletionEffect(obj client.Object) string {
	switch obj.(type) {
	case *v1alpha1.SigningKey:
		return "its keys go with it: its TokenServers cannot sign, and LivePerson rejects every token"
	case *v1alpha1.TokenServer:
		return "its Deployment goes with it: every login of its clients fails"
	}
	return ""
}
