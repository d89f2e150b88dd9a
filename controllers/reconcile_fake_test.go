package controllers

import (
	"context"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/lpauth/lpauth-operator/api/keys"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/controllers/workload"
)

// Fast tests of reconcile decisions, cert-manager's way: given these objects, one reconcile
// against a fake client must leave these writes. The envtest suites check the same against a
// real API server; these run in milliseconds with `go test -short`.

// fakeBuilder is a fake client with our scheme, status subresources and the operator's own
// field indexes (the very functions the manager registers).
func fakeBuilder(objs ...client.Object) *fake.ClientBuilder {
	b := fake.NewClientBuilder().WithScheme(Scheme()).WithObjects(objs...).
		WithStatusSubresource(&v1alpha1.SigningKey{}, &v1alpha1.TokenServer{}, &v1alpha1.LivePersonAuthClient{})
	for _, ix := range indexes {
		b = b.WithIndex(ix.obj, ix.field, ix.of)
	}
	return b
}

func fakeClient(objs ...client.Object) client.Client { return fakeBuilder(objs...).Build() }

func TestANewSigningKeyWritesItsKeysRecordAndStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	sk := &v1alpha1.SigningKey{ObjectMeta: metav1.ObjectMeta{Name: "keys", Namespace: "brand", UID: "uid-keys", Generation: 1},
		Spec: v1alpha1.SigningKeySpec{Algorithm: v1alpha1.ES256, Rotation: v1alpha1.KeyRotation{
			Every: metav1.Duration{Duration: 90 * 24 * time.Hour}, PublishAhead: metav1.Duration{Duration: 24 * time.Hour},
			RetainAfterRetire: metav1.Duration{Duration: 24 * time.Hour}}}}
	c := fakeClient(sk)
	r := NewSigningKeyReconciler(c, c, Scheme(), nil, clocktesting.NewFakePassiveClock(now), nil)
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(sk)}); err != nil {
		t.Fatal(err)
	}

	secret := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "brand", Name: keys.SecretName("keys")}, secret); err != nil {
		t.Fatalf("the key Secret: %v", err)
	}
	set, problems := keys.Decode(secret.Data)
	if len(problems) != 0 || len(set) != 2 || !metav1.IsControlledBy(secret, sk) || secret.Type != v1alpha1.SecretTypeSigningKeys {
		t.Fatalf("key Secret: %d keys, problems %v, owner %v, type %s; want an Active and a Next key, controlled by the SigningKey", len(set), problems, secret.OwnerReferences, secret.Type)
	}
	active, ok := keys.Active(set)
	if !ok {
		t.Fatal("no Active key")
	}
	record := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "brand", Name: keys.RecordSecretName("keys")}, record); err != nil {
		t.Fatalf("the record Secret: %v", err)
	}
	recorded, _, _ := keys.DecodeRecord(record.Data[keys.RecordDataKey])
	for _, k := range recorded {
		if k.CanSign() {
			t.Error("the record holds a private key")
		}
	}
	got := &v1alpha1.SigningKey{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(sk), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.ActiveKeyID != active.ID() || !meta.IsStatusConditionTrue(got.Status.Conditions, v1alpha1.ConditionReady) || got.Status.ObservedGeneration != 1 {
		t.Errorf("status: active %q (want %q), conditions %+v", got.Status.ActiveKeyID, active.ID(), got.Status.Conditions)
	}

	// A second reconcile with nothing changed writes nothing.
	before := []string{secret.ResourceVersion, record.ResourceVersion, got.ResourceVersion}
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(sk)}); err != nil {
		t.Fatal(err)
	}
	after := make([]string, 3)
	for i, o := range []client.Object{&corev1.Secret{}, &corev1.Secret{}, &v1alpha1.SigningKey{}} {
		name := []string{keys.SecretName("keys"), keys.RecordSecretName("keys"), "keys"}[i]
		if err := c.Get(ctx, client.ObjectKey{Namespace: "brand", Name: name}, o); err != nil {
			t.Fatal(err)
		}
		after[i] = o.GetResourceVersion()
	}
	for i := range before {
		if before[i] != after[i] {
			t.Errorf("a reconcile with nothing changed rewrote %s (%s → %s)", []string{"the key Secret", "the record", "the status"}[i], before[i], after[i])
		}
	}
}

// A TokenServer whose credentials Secret was left by an earlier TokenServer of its name (a
// restore) takes it over only once adopt-secret names its UID; until then it writes nothing to it.
func TestRestoredCredentialsAreTakenOverOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand", Namespace: "brand", UID: "uid-new"},
		Spec: v1alpha1.TokenServerSpec{Issuer: "https://auth.brand.example", SigningKeyRef: v1alpha1.LocalObjectReference{Name: "keys"}}}
	restored := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "brand-credentials", Namespace: "brand", UID: "uid-secret",
		Labels: map[string]string{"app.kubernetes.io/name": "lpauth-token-server", "app.kubernetes.io/instance": "brand", v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}},
		Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"issueAPIToken": []byte("what the backends hold")}}
	c := fakeClient(ts, restored)
	r := &TokenServerReconciler{Client: c, APIReader: c, Scheme: Scheme()}

	err := r.adoptCredentials(ctx, ts, restored.DeepCopy())
	if _, _, nr := settle(err); nr == nil || nr.reason != v1alpha1.ReasonSecretFound {
		t.Fatalf("without adopt-secret: %v, want SecretFound", err)
	}
	got := &corev1.Secret{}
	_ = c.Get(ctx, client.ObjectKeyFromObject(restored), got)
	if len(got.OwnerReferences) != 0 {
		t.Fatal("taken over without being asked")
	}

	ts.Annotations = map[string]string{v1alpha1.AnnotationAdoptSecret: "uid-secret"}
	if err := r.adoptCredentials(ctx, ts, got.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	_ = c.Get(ctx, client.ObjectKeyFromObject(restored), got)
	if !metav1.IsControlledBy(got, ts) || string(got.Data["issueAPIToken"]) != "what the backends hold" || got.Labels[v1alpha1.LabelTokenServerReads] != "true" {
		t.Errorf("after adopt-secret: owners %v, data %q, labels %v", got.OwnerReferences, got.Data, got.Labels)
	}
}

// A cluster without the Gateway API: the operator runs, and a TokenServer asking for a route is
// not Ready, saying what to install; one that asks for none is unaffected.
func TestARouteWithoutTheGatewayAPIIsNotReadyAndSaysWhy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand", Namespace: "brand", UID: "uid-ts"},
		Spec: v1alpha1.TokenServerSpec{Issuer: "https://auth.brand.example", SigningKeyRef: v1alpha1.LocalObjectReference{Name: "keys"},
			Route: &v1alpha1.RouteSpec{ParentRefs: []v1alpha1.GatewayRef{{Name: "public"}}}}}
	c := fakeClient(ts)
	r := &TokenServerReconciler{Client: c, APIReader: c, Scheme: Scheme(), gatewayAPI: false}
	err := r.applyWorkload(ctx, &serverScope{ts: ts}, workload.Params{Image: "lpauth:test"})
	_, _, nr := settle(err)
	if nr == nil || nr.reason != v1alpha1.ReasonGatewayAPIMissing || !strings.Contains(nr.Error(), "install them") {
		t.Fatalf("a route without the Gateway API: %v, want %s saying what to install", err, v1alpha1.ReasonGatewayAPIMissing)
	}

	ts.Spec.Route = nil
	if err := r.applyWorkload(ctx, &serverScope{ts: ts}, workload.Params{Image: "lpauth:test"}); err != nil {
		t.Fatalf("no route, no Gateway API: %v", err)
	}
}

// A ServiceMonitor asked for where the cluster does not serve the kind is said in
// ServiceMonitorReady, and the TokenServer carries on: LivePerson's logins do not need it.
// Where the kind is served, it is applied, selecting the token server's Service.
func TestAServiceMonitorWithoutItsCRDIsReportedNotFatal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand", Namespace: "brand", UID: "uid-ts", Generation: 2},
		Spec: v1alpha1.TokenServerSpec{Issuer: "https://auth.brand.example", SigningKeyRef: v1alpha1.LocalObjectReference{Name: "keys"},
			Monitoring: &v1alpha1.MonitoringSpec{ServiceMonitor: &v1alpha1.ServiceMonitorSpec{Enabled: true, Labels: map[string]string{"release": "prom"}}}}}
	c := fakeClient(ts)
	r := &TokenServerReconciler{Client: c, APIReader: c, Scheme: Scheme(), serviceMonitors: false}
	s := &serverScope{ts: ts}
	if err := r.applyWorkload(ctx, s, workload.Params{Image: "lpauth:test"}); err != nil {
		t.Fatalf("a ServiceMonitor without its CRD: %v, want the workload applied all the same", err)
	}
	setServiceMonitorCondition(ts, *s.monitoring)
	cond := meta.FindStatusCondition(ts.Status.Conditions, v1alpha1.ConditionServiceMonitorReady)
	if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != v1alpha1.ReasonServiceMonitorCRDMissing ||
		!strings.Contains(cond.Message, "monitoring.coreos.com/v1") || cond.ObservedGeneration != 2 {
		t.Fatalf("ServiceMonitorReady = %+v, want False, %s, naming the CRD to install", cond, v1alpha1.ReasonServiceMonitorCRDMissing)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "brand", Name: workload.Name(ts)}, &appsv1.Deployment{}); err != nil {
		t.Errorf("the Deployment: %v, want it applied", err)
	}

	r.serviceMonitors = true
	s = &serverScope{ts: ts}
	if err := r.applyWorkload(ctx, s, workload.Params{Image: "lpauth:test"}); err != nil {
		t.Fatal(err)
	}
	setServiceMonitorCondition(ts, *s.monitoring)
	if !meta.IsStatusConditionTrue(ts.Status.Conditions, v1alpha1.ConditionServiceMonitorReady) {
		t.Errorf("ServiceMonitorReady with the CRD = %+v, want True", meta.FindStatusCondition(ts.Status.Conditions, v1alpha1.ConditionServiceMonitorReady))
	}
	sm := &monitoringv1.ServiceMonitor{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "brand", Name: workload.Name(ts)}, sm); err != nil {
		t.Fatalf("the ServiceMonitor: %v", err)
	}
	if sm.Labels["release"] != "prom" || sm.Spec.Endpoints[0].Port != "metrics" || !metav1.IsControlledBy(sm, ts) {
		t.Errorf("ServiceMonitor labels %v, endpoints %+v, owners %v; want the brand's label, port metrics, controlled by the TokenServer", sm.Labels, sm.Spec.Endpoints, sm.OwnerReferences)
	}

	ts.Spec.Monitoring = nil
	s = &serverScope{ts: ts}
	if err := r.applyWorkload(ctx, s, workload.Params{Image: "lpauth:test"}); err != nil {
		t.Fatal(err)
	}
	setServiceMonitorCondition(ts, *s.monitoring)
	if err := c.Get(ctx, client.ObjectKey{Namespace: "brand", Name: workload.Name(ts)}, sm); !apierrors.IsNotFound(err) {
		t.Errorf("the ServiceMonitor no longer asked for: %v, want it deleted", err)
	}
	if cond := meta.FindStatusCondition(ts.Status.Conditions, v1alpha1.ConditionServiceMonitorReady); cond != nil {
		t.Errorf("ServiceMonitorReady without spec.monitoring = %+v, want none", cond)
	}
}

// ServiceMonitor labels the API server would refuse make ServiceMonitorReady False with what is
// wrong; the rest of the workload is applied and the TokenServer is not held back by them.
func TestServiceMonitorLabelsTheAPIServerWouldRefuseAreSaidNotFatal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand", Namespace: "brand", UID: "uid-ts", Generation: 3},
		Spec: v1alpha1.TokenServerSpec{Issuer: "https://auth.brand.example", SigningKeyRef: v1alpha1.LocalObjectReference{Name: "keys"},
			Monitoring: &v1alpha1.MonitoringSpec{ServiceMonitor: &v1alpha1.ServiceMonitorSpec{Enabled: true, Labels: map[string]string{"release": "kube prometheus"}}}}}
	c := fakeClient(ts)
	r := &TokenServerReconciler{Client: c, APIReader: c, Scheme: Scheme(), serviceMonitors: true}
	s := &serverScope{ts: ts}
	if err := r.applyWorkload(ctx, s, workload.Params{Image: "lpauth:test"}); err != nil {
		t.Fatalf("bad ServiceMonitor labels: %v, want the workload applied all the same", err)
	}
	setServiceMonitorCondition(ts, *s.monitoring)
	cond := meta.FindStatusCondition(ts.Status.Conditions, v1alpha1.ConditionServiceMonitorReady)
	if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != v1alpha1.ReasonInvalidSpec || !strings.Contains(cond.Message, "spec.monitoring.serviceMonitor.labels") {
		t.Fatalf("ServiceMonitorReady = %+v, want False, %s, naming the field", cond, v1alpha1.ReasonInvalidSpec)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "brand", Name: workload.Name(ts)}, &monitoringv1.ServiceMonitor{}); !apierrors.IsNotFound(err) {
		t.Errorf("a ServiceMonitor with labels the API server refuses was applied: %v", err)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "brand", Name: workload.Name(ts)}, &appsv1.Deployment{}); err != nil {
		t.Errorf("the Deployment: %v, want it applied", err)
	}
}
