package controllers

import (
	"errors"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// One Warning per cause: an object's own problem warns when its Ready condition takes that
// reason or message, not on every reconcile; a wait on another object warns once it outlasts
// waitGrace; a shared wait never warns.
func TestWarnNotReadyOncePerCause(t *testing.T) {
	t.Parallel()
	obj := &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand", Namespace: "ns", UID: "uid"}}
	ready := func(reason, msg string, since time.Time) []metav1.Condition {
		return []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: reason, Message: msg, LastTransitionTime: metav1.NewTime(since)}}
	}
	imageA := &notReady{reason: v1alpha1.ReasonImageNotAllowed, err: errors.New("image a")}
	imageB := &notReady{reason: v1alpha1.ReasonImageNotAllowed, err: errors.New("image b")}
	waiting := &notReady{reason: v1alpha1.ReasonSigningKeyNotFound, err: errors.New("no key")}
	now := time.Now()
	for _, tc := range []struct {
		name      string
		before    []metav1.Condition
		nr        *notReady
		shared    bool
		events    int
		lookAgain bool
	}{
		{"a new problem", nil, imageA, false, 1, false},
		{"the same problem again", ready(imageA.reason, "image a", now), imageA, false, 0, false},
		{"another problem of the same reason", ready(imageA.reason, "image a", now), imageB, false, 1, false},
		{"a wait just begun", ready(waiting.reason, "no key", now), waiting, false, 0, true},
		{"a wait past the grace", ready(waiting.reason, "no key", now.Add(-2*waitGrace)), waiting, false, 1, false},
		{"a shared wait past the grace", ready(waiting.reason, "no key", now.Add(-2*waitGrace)), waiting, true, 0, false},
	} {
		rec := events.NewFakeRecorder(10)
		late := &lateWarner{}
		lookAgain := warnNotReady(rec, obj, tc.before, tc.nr, late, tc.shared)
		if len(rec.Events) != tc.events || lookAgain != tc.lookAgain {
			t.Errorf("%s: %d events, look again %v; want %d, %v", tc.name, len(rec.Events), lookAgain, tc.events, tc.lookAgain)
		}
		if tc.name == "a wait past the grace" {
			if warnNotReady(rec, obj, tc.before, tc.nr, late, false); len(rec.Events) != 1 {
				t.Errorf("%s: warned again for the same wait", tc.name)
			}
		}
	}
}
