package controllers_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/controllers"
	"github.com/lpauth/lpauth-operator/controllers/testenv"
)

// On a cluster with neither the Gateway API nor the Prometheus Operator, the manager starts and
// reconciles; a TokenServer asking for a route or a ServiceMonitor says which CRD is missing.
// Before, the manager could not start at all there: its cache named both kinds.
func TestTheManagerRunsWithoutTheOptionalCRDs(t *testing.T) {
	if testing.Short() {
		t.Skip("envtest: skipped by -short")
	}
	t.Parallel()
	env, cfg, err := testenv.Start(func(e *envtest.Environment) {
		e.CRDDirectoryPaths = []string{filepath.Join(testenv.RepoRoot(), "config", "crd", "bases")}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })

	optional, err := controllers.ServedOptionalKinds(cfg)
	if err != nil || optional.HTTPRoute || optional.ServiceMonitor {
		t.Fatalf("ServedOptionalKinds = %+v, %v; want neither served", optional, err)
	}
	opts := controllers.CacheOptions()
	optional.Prune(&opts)
	// The envtest suite of this package runs controllers of the same names in this process.
	skip := true
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: controllers.Scheme(), Cache: opts,
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Controller: config.Controller{SkipNameValidation: &skip}})
	if err != nil {
		t.Fatalf("the manager on a cluster without the optional CRDs: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := controllers.Setup(ctx, mgr, controllers.Options{TokenServerImage: "lpauth-operator:test", OptionalKinds: &optional}); err != nil {
		t.Fatal(err)
	}
	go func() { _ = mgr.Start(ctx) }()

	c, err := client.New(cfg, client.Options{Scheme: controllers.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	const ns = "brand"
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&v1alpha1.SigningKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "keys"}},
		&v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "routed"}, Spec: v1alpha1.TokenServerSpec{
			Issuer: "https://auth.brand.example", SigningKeyRef: v1alpha1.LocalObjectReference{Name: "keys"},
			Route: &v1alpha1.RouteSpec{ParentRefs: []v1alpha1.GatewayRef{{Name: "public"}}}}},
		&v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "monitored"}, Spec: v1alpha1.TokenServerSpec{
			Issuer: "https://auth2.brand.example", SigningKeyRef: v1alpha1.LocalObjectReference{Name: "keys"},
			Monitoring: &v1alpha1.MonitoringSpec{ServiceMonitor: &v1alpha1.ServiceMonitorSpec{Enabled: true}}}},
	} {
		if err := c.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(name, condition, reason string) {
		t.Helper()
		var got *metav1.Condition
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			ts := &v1alpha1.TokenServer{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, ts); err != nil {
				t.Fatal(err)
			}
			if got = meta.FindStatusCondition(ts.Status.Conditions, condition); got != nil && got.Reason == reason {
				return
			}
		}
		t.Fatalf("TokenServer %s: %s = %+v, want reason %s", name, condition, got, reason)
	}
	waitFor("routed", v1alpha1.ConditionReady, v1alpha1.ReasonGatewayAPIMissing)
	waitFor("monitored", v1alpha1.ConditionServiceMonitorReady, v1alpha1.ReasonServiceMonitorCRDMissing)
}
