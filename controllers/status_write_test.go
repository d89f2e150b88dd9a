package controllers

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

func TestStatusPatchBase(t *testing.T) {
	ready := v1alpha1.LivePersonAuthClientStatus{ClientID: "lp-1", ObservedGeneration: 1}
	failed := v1alpha1.LivePersonAuthClientStatus{ObservedGeneration: 1, Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonReconcileError}}}
	obj := func(rv string, st v1alpha1.LivePersonAuthClientStatus) *v1alpha1.LivePersonAuthClient {
		return &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns", ResourceVersion: rv}, Status: st}
	}
	key := types.NamespacedName{Namespace: "ns", Name: "c"}
	for _, tc := range []struct {
		name          string
		last          *statusWrite
		base, current *v1alpha1.LivePersonAuthClient
		want          *v1alpha1.LivePersonAuthClientStatus // the status to patch from; nil: no write
	}{
		{"nothing written, cache differs", nil, obj("5", failed), obj("5", ready), &failed},
		{"nothing written, cache agrees", nil, obj("5", ready), obj("5", ready), nil},
		// The API server holds the error: the patch must be computed from it, or it would not
		// carry the conditions the stale cache already shows.
		{"an error written last, stale cache shows the wanted status", &statusWrite{from: "5", status: &failed}, obj("6", ready), obj("6", ready), &failed},
		{"changed since by someone else", &statusWrite{from: "5", status: &ready}, obj("7", failed), obj("7", ready), &failed},
		{"written earlier, cache agrees", &statusWrite{from: "5", status: &ready}, obj("7", ready), obj("7", ready), nil},
	} {
		r := &LivePersonAuthClientReconciler{}
		if tc.last != nil {
			r.written.Store(key, *tc.last)
		}
		got := r.statusPatchBase(tc.base, tc.current)
		switch {
		case tc.want == nil && got != nil:
			t.Errorf("%s: writes from %+v, want no write", tc.name, got.Status)
		case tc.want != nil && (got == nil || !equality.Semantic.DeepEqual(got.Status, *tc.want)):
			t.Errorf("%s: patch base = %+v, want status %+v", tc.name, got, *tc.want)
		case got != nil && got.ResourceVersion != tc.base.ResourceVersion:
			t.Errorf("%s: patch base lost the object's metadata", tc.name)
		}
	}
}

// A reconcile that sees the very resourceVersion its last status write was computed from
// builds on that status, not on the cache's older one.
func TestCatchUp(t *testing.T) {
	ready := v1alpha1.LivePersonAuthClientStatus{ClientID: "lp-1", ObservedGeneration: 1}
	r := &LivePersonAuthClientReconciler{}
	r.written.Store(types.NamespacedName{Namespace: "ns", Name: "c"}, statusWrite{from: "5", status: &ready})
	stale := &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns", ResourceVersion: "5"}}
	r.catchUp(stale)
	if stale.Status.ClientID != "lp-1" {
		t.Errorf("stale view not caught up: %+v", stale.Status)
	}
	newer := &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns", ResourceVersion: "9"}}
	r.catchUp(newer)
	if newer.Status.ClientID != "" {
		t.Errorf("a newer object's status was replaced: %+v", newer.Status)
	}
	stale.Status.ClientID = "changed by the reconcile"
	again := &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns", ResourceVersion: "5"}}
	r.catchUp(again)
	if again.Status.ClientID != "lp-1" {
		t.Error("catchUp shares the remembered status instead of copying it")
	}
}
