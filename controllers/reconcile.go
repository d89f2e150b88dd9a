package controllers

import (
	"errors"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// The frame all three reconcilers share: a reconcile runs its phases, each returning an error;
// a deferred block turns the first error into the Ready condition (settle), the Warning it
// deserves (warnNotReady), when to look again, and one status write (statusWriter).

// settle reads a reconcile's error. A notReady is the user's to fix, or a wait on another
// object: it is said in the Ready condition (its reason and message) and looked at again after
// its retryAfter, never retried with back-off (nr is set, and the reconcile returns no error).
// Anything else is ReasonReconcileError, retried.
func settle(reterr error) (reason string, cause error, nr *notReady) {
	if errors.As(reterr, &nr) {
		return nr.reason, nr.err, nr
	}
	return v1alpha1.ReasonReconcileError, reterr, nil
}

// warnNotReady emits the Warning a not-ready outcome deserves, once per cause: a problem of the
// object's own when its Ready condition takes that reason or message (another problem of the same
// kind is another cause); a wait on another object only once it
// has lasted waitGrace (a normal apply creates objects in any order), and never when the wait is
// shared (a TokenServer not ready: it reports that itself, not each of its thousands of
// clients). It reports whether the reconcile must look again after waitGrace to be able to warn.
func warnNotReady(rec recorder.EventRecorder, obj client.Object, before []metav1.Condition, nr *notReady, late *lateWarner, shared bool) (lookAgain bool) {
	if !waitingOnAnother(nr.reason) {
		was := meta.FindStatusCondition(before, v1alpha1.ConditionReady)
		if was == nil || was.Status != metav1.ConditionFalse || was.Reason != nr.reason || was.Message != nr.err.Error() {
			eventf(rec, obj, corev1.EventTypeWarning, nr.reason, "Check", "%s", nr.err.Error())
		}
		return false
	}
	if shared {
		return false
	}
	since := waitingSince(before, nr.reason)
	if late.due(obj, nr.reason, since) {
		eventf(rec, obj, corev1.EventTypeWarning, nr.reason, "Check", "%s (for over %s)", nr.err.Error(), waitGrace)
	}
	return !late.warnedAbout(obj, nr.reason, since)
}

// eventf records an event when there is a recorder (unit tests run reconcilers without one).
func eventf(rec recorder.EventRecorder, obj client.Object, kind, reason, action, format string, args ...any) {
	if rec != nil {
		rec.Eventf(obj, nil, kind, reason, action, format, args...)
	}
}
