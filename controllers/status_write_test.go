package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

func TestStatusNeedsWrite(t *testing.T) {
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
		want          bool
	}{
		{"nothing written, cache differs", nil, obj("5", failed), obj("5", ready), true},
		{"nothing written, cache agrees", nil, obj("5", ready), obj("5", ready), false},
		{"an error written last, stale cache shows the wanted status", &statusWrite{from: "5", status: &failed}, obj("6", ready), obj("6", ready), true},
		{"changed since by someone else", &statusWrite{from: "5", status: &ready}, obj("7", failed), obj("7", ready), true},
		{"written earlier, cache agrees", &statusWrite{from: "5", status: &ready}, obj("7", ready), obj("7", ready), false},
	} {
		r := &LivePersonAuthClientReconciler{}
		if tc.last != nil {
			r.written.Store(key, *tc.last)
		}
		if got := r.statusNeedsWrite(tc.base, tc.current); got != tc.want {
			t.Errorf("%s: statusNeedsWrite = %v, want %v", tc.name, got, tc.want)
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
