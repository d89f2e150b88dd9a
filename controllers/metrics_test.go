package controllers

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// gauge is the value of g's series with these labels (pairs of name and value; others may
// differ), and whether there is one. Unlike WithLabelValues, it makes no series.
func gauge(t *testing.T, g *prometheus.GaugeVec, labels ...string) (float64, bool) {
	t.Helper()
	ch := make(chan prometheus.Metric, 100)
	g.Collect(ch)
	close(ch)
	for m := range ch {
		pb := &dto.Metric{}
		if err := m.Write(pb); err != nil {
			t.Fatal(err)
		}
		have := map[string]string{}
		for _, l := range pb.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			match = match && have[labels[i]] == labels[i+1]
		}
		if match {
			return pb.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// describe is g's metric name, for messages.
func describe(g *prometheus.GaugeVec) string {
	ch := make(chan *prometheus.Desc, 1)
	g.Describe(ch)
	return (<-ch).String()
}

// The SigningKey series come from status after each reconcile, and a restarted operator (no
// series yet) exports the same from the same status; the series go with the object.
func TestSigningKeyMetricsFollowStatus(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	sk := &v1alpha1.SigningKey{ObjectMeta: metav1.ObjectMeta{Name: "metrics-keys", Namespace: "metrics", UID: "uid-keys", Generation: 1},
		Spec: v1alpha1.SigningKeySpec{Algorithm: v1alpha1.ES256, Rotation: v1alpha1.KeyRotation{
			Every: metav1.Duration{Duration: 90 * 24 * time.Hour}, PublishAhead: metav1.Duration{Duration: 24 * time.Hour},
			RetainAfterRetire: metav1.Duration{Duration: 24 * time.Hour}}}}
	c := fakeClient(sk)
	r := NewSigningKeyReconciler(c, c, Scheme(), nil, clocktesting.NewFakePassiveClock(now), nil)
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(sk)}
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	l := []string{"namespace", "metrics", "signingkey", "metrics-keys"}
	check := func(when string) {
		t.Helper()
		for _, tc := range []struct {
			name string
			g    *prometheus.GaugeVec
			want float64
			l    []string
		}{
			{"active key activated", activeKeyActivated, unix(now), l},
			{"next rotation", nextRotation, unix(now.Add(90 * 24 * time.Hour)), l},
			{"next published", nextPublished, 1, l},
			{"next published at", nextPublishedAt, unix(now), l},
			{"publish ahead", publishAhead, 24 * 3600, l},
			{"Active keys", keysByState, 1, append([]string{"state", "Active"}, l...)},
			{"Retired keys", keysByState, 0, append([]string{"state", "Retired"}, l...)},
		} {
			if got, ok := gauge(t, tc.g, tc.l...); !ok || got != tc.want {
				t.Errorf("%s: %s = %v (present %v), want %v", when, tc.name, got, ok, tc.want)
			}
		}
	}
	check("after the first reconcile")

	forgetSigningKey(req.NamespacedName) // a new process: nothing in memory
	r = NewSigningKeyReconciler(c, c, Scheme(), nil, clocktesting.NewFakePassiveClock(now.Add(time.Hour)), nil)
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	check("after a restart")

	// Paused: no planned rotation, so no series that an overdue alert could compare.
	got := &v1alpha1.SigningKey{}
	if err := c.Get(ctx, req.NamespacedName, got); err != nil {
		t.Fatal(err)
	}
	got.Spec.Rotation.Paused = true
	if err := c.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, ok := gauge(t, nextRotation, l...); ok {
		t.Error("a paused SigningKey exports a next rotation time")
	}

	if err := c.Delete(ctx, got); err != nil {
		t.Fatal(err)
	}
	// The first reconcile lets the finalizer go; the deletion's event brings the second.
	for range 2 {
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range signingKeyGauges {
		if _, ok := gauge(t, g, l...); ok {
			t.Errorf("%s still has a series for a deleted SigningKey", describe(g))
		}
	}
}

// A rotation forced before the Next key had been published for publishAhead exports until when
// relying parties may not know the new Active key (what the Rotating condition says), for the
// LPAuthSigningKeyRotatedEarly alert; a scheduled SigningKey exports none, and the series goes
// with the object.
func TestEarlyRotationMetricSaysUntilWhen(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	sk := &v1alpha1.SigningKey{ObjectMeta: metav1.ObjectMeta{Name: "metrics-early", Namespace: "metrics", UID: "uid-early", Generation: 1},
		Spec: v1alpha1.SigningKeySpec{Algorithm: v1alpha1.ES256, Rotation: v1alpha1.KeyRotation{
			Every: metav1.Duration{Duration: 90 * 24 * time.Hour}, PublishAhead: metav1.Duration{Duration: 24 * time.Hour},
			RetainAfterRetire: metav1.Duration{Duration: 24 * time.Hour}}}}
	c := fakeClient(sk)
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(sk)}
	l := []string{"namespace", "metrics", "signingkey", "metrics-early"}
	r := NewSigningKeyReconciler(c, c, Scheme(), nil, clocktesting.NewFakePassiveClock(now), nil)
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if v, ok := gauge(t, rotatedEarlyUntil, l...); ok {
		t.Errorf("a new SigningKey exports rotated early until %v, want no series", v)
	}

	// Forced an hour later: the Next key was published for 1h of its 24h publishAhead.
	forced := now.Add(time.Hour)
	got := &v1alpha1.SigningKey{}
	if err := c.Get(ctx, req.NamespacedName, got); err != nil {
		t.Fatal(err)
	}
	got.Annotations = map[string]string{v1alpha1.AnnotationRotate: "1"}
	if err := c.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	r = NewSigningKeyReconciler(c, c, Scheme(), nil, clocktesting.NewFakePassiveClock(forced), nil)
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, req.NamespacedName, got); err != nil {
		t.Fatal(err)
	}
	if cond := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionRotating); cond == nil || cond.Reason != v1alpha1.ReasonRotationEarly {
		t.Fatalf("Rotating condition %+v, want reason %s", cond, v1alpha1.ReasonRotationEarly)
	}
	want := unix(forced.Add(24 * time.Hour))
	if v, ok := gauge(t, rotatedEarlyUntil, l...); !ok || v != want {
		t.Errorf("rotated early until = %v (present %v), want %v (the forced activation plus publishAhead)", v, ok, want)
	}

	// A restarted operator exports the same from status.
	forgetSigningKey(req.NamespacedName)
	r = NewSigningKeyReconciler(c, c, Scheme(), nil, clocktesting.NewFakePassiveClock(forced.Add(time.Minute)), nil)
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if v, ok := gauge(t, rotatedEarlyUntil, l...); !ok || v != want {
		t.Errorf("after a restart: rotated early until = %v (present %v), want %v", v, ok, want)
	}

	// Once the new key has been published for publishAhead, the condition and the series go.
	r = NewSigningKeyReconciler(c, c, Scheme(), nil, clocktesting.NewFakePassiveClock(forced.Add(25*time.Hour)), nil)
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if v, ok := gauge(t, rotatedEarlyUntil, l...); ok {
		t.Errorf("publishAhead after the forced rotation: rotated early until %v, want no series", v)
	}
	forgetSigningKey(req.NamespacedName)
}

// A PEM-mode client waiting for its console exports since when (the condition's transition),
// with its SigningKey's name for the alert's join; the series go when it no longer waits.
func TestConsoleMetricsFollowTheCondition(t *testing.T) {
	since := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	c := &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "pem-client", Namespace: "metrics-console"}}
	meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionConsoleUpdateRequired, Status: metav1.ConditionTrue,
		Reason: v1alpha1.ReasonNewKeyPending, LastTransitionTime: metav1.NewTime(since)})
	observeConsole(c, "keys")
	l := []string{"namespace", "metrics-console", "name", "pem-client"}
	if got, ok := gauge(t, consolePendingSince, append([]string{"signingkey", "keys"}, l...)...); !ok || got != unix(since) {
		t.Errorf("pending since = %v (present %v), want %v", got, ok, unix(since))
	}
	if got, ok := gauge(t, consoleUpdateRequired, append([]string{"reason", v1alpha1.ReasonNewKeyPending}, l...)...); !ok || got != 1 {
		t.Errorf("update required = %v (present %v), want 1", got, ok)
	}
	meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionConsoleUpdateRequired, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonConsoleUpToDate})
	observeConsole(c, "keys")
	for _, g := range []*prometheus.GaugeVec{consolePendingSince, consoleUpdateRequired} {
		if _, ok := gauge(t, g, l...); ok {
			t.Errorf("%s still has a series for a client whose console is up to date", describe(g))
		}
	}
	if n := testutil.CollectAndCount(consolePendingSince); n != 0 {
		t.Errorf("%d pending-since series left, want 0", n)
	}
}
