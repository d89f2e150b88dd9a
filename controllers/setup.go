package controllers

import (
	"context"
	"fmt"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// CacheOptions limits the manager's Secret cache to the Secrets token servers read (the operator
// labels each one), and its Deployment, Service, ... caches to the objects it made, so the
// operator never holds every Secret or Deployment of the cluster in memory. Given namespaces (a
// namespaced install), it watches only those: the manager then needs rights only there.
func CacheOptions(namespaces ...string) cache.Options {
	managed := cache.ByObject{Label: labels.SelectorFromSet(labels.Set{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue})}
	var watched map[string]cache.Config
	for _, ns := range namespaces {
		if watched == nil {
			watched = map[string]cache.Config{}
		}
		watched[ns] = cache.Config{}
	}
	return cache.Options{
		DefaultNamespaces: watched,
		// The operator never reads managedFields (it applies server-side): leave them out of
		// memory, a third of a small object's size.
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {Label: labels.SelectorFromSet(labels.Set{v1alpha1.LabelTokenServerReads: "true"})},
			// Branding ConfigMaps, labelled like the Secrets when a TokenServer first names them.
			&corev1.ConfigMap{}: {Label: labels.SelectorFromSet(labels.Set{v1alpha1.LabelTokenServerReads: "true"})},
			// The kinds the operator creates for token servers: only its own are cached.
			&appsv1.Deployment{}: managed, &corev1.Service{}: managed, &corev1.ServiceAccount{}: managed,
			&rbacv1.Role{}: managed, &rbacv1.RoleBinding{}: managed, &networkingv1.Ingress{}: managed,
			&policyv1.PodDisruptionBudget{}: managed, &gatewayv1.HTTPRoute{}: managed, &monitoringv1.ServiceMonitor{}: managed,
		}}
}

// OptionalKinds says which optional kinds the cluster serves: the Gateway API's HTTPRoute and
// the Prometheus Operator's ServiceMonitor. It is decided once, at start, and used everywhere
// (the cache, the watches, the reconciler): a CRD installed later takes a restart, as the
// TokenServer's condition says, instead of an unfiltered cache of every route in the cluster.
type OptionalKinds struct{ HTTPRoute, ServiceMonitor bool }

// ServedOptionalKinds asks the API server. Only "no such kind" means not served: any other error
// (a 503 at start) is returned, so the manager restarts instead of deciding on a guess.
func ServedOptionalKinds(cfg *rest.Config) (OptionalKinds, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return OptionalKinds{}, err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, hc)
	if err != nil {
		return OptionalKinds{}, fmt.Errorf("reading the kinds the cluster serves: %w", err)
	}
	return servedOptionalKinds(mapper)
}

func servedOptionalKinds(mapper meta.RESTMapper) (k OptionalKinds, err error) {
	if k.HTTPRoute, err = serves(mapper, schema.GroupKind{Group: gatewayv1.GroupName, Kind: "HTTPRoute"}, gatewayv1.GroupVersion.Version); err != nil {
		return k, err
	}
	k.ServiceMonitor, err = serves(mapper, schema.GroupKind{Group: monitoringv1.SchemeGroupVersion.Group, Kind: monitoringv1.ServiceMonitorsKind}, monitoringv1.Version)
	return k, err
}

func serves(mapper meta.RESTMapper, gk schema.GroupKind, version string) (bool, error) {
	_, err := mapper.RESTMapping(gk, version)
	switch {
	case err == nil:
		return true, nil
	case meta.IsNoMatchError(err):
		return false, nil
	}
	return false, fmt.Errorf("asking whether the cluster serves %s: %w", gk, err)
}

// Prune takes the kinds the cluster does not serve out of the cache options. controller-runtime
// maps every kind named in ByObject when it builds the cache, so naming one whose CRD is absent
// would stop the manager from starting at all.
func (k OptionalKinds) Prune(opts *cache.Options) {
	if !k.HTTPRoute {
		delete(opts.ByObject, byType[*gatewayv1.HTTPRoute](opts.ByObject))
	}
	if !k.ServiceMonitor {
		delete(opts.ByObject, byType[*monitoringv1.ServiceMonitor](opts.ByObject))
	}
}

// byType finds the key of one type in ByObject (its keys are distinct pointers).
func byType[T client.Object](m map[client.Object]cache.ByObject) client.Object {
	for k := range m {
		if _, ok := k.(T); ok {
			return k
		}
	}
	return nil
}

// Options are what the reconcilers take from outside.
type Options struct {
	// Clock is the time source (the real clock when nil); tests step a fake one.
	Clock clock.PassiveClock
	// GenerateKey makes signing keys (keys.Generate when nil).
	GenerateKey KeyGenerator
	// Client, when set, replaces the manager's client (tests inject faults through it).
	Client client.Client
	// TokenServerImage runs token servers whose spec.image is empty: the operator's own image.
	TokenServerImage string
	// AllowedTokenServerImages are the image prefixes a TokenServer's spec.image may start with
	// (e.g. "registry.brand.example/lpauth/"). Empty: only the operator's own image. The token
	// server runs with a ServiceAccount that reads signing keys; whoever may create a
	// TokenServer must not be able to run any image with it.
	AllowedTokenServerImages []string
	// SecretSetInterval is the least time between two writes of one TokenServer's secret set
	// (250 ms when zero); tests shorten it.
	SecretSetInterval time.Duration
	// SecretSetShardBytes is the most one Secret of a secret set holds; zero means ~900 KiB,
	// under the API server's 1 MiB. Tests set it low to see a set split into shards.
	SecretSetShardBytes int
	// SecretSetRecentBytes is how large a secret set's overlay of recent client changes grows
	// before the shards are rewritten with it; zero means 64 KiB. Tests set it low to see a
	// fold.
	SecretSetRecentBytes int
	// OptionalKinds are the optional kinds the cluster serves, as decided for the cache; nil:
	// asked of the manager's RESTMapper once, here.
	OptionalKinds *OptionalKinds
}

// Setup registers every reconciler with the manager.
func Setup(ctx context.Context, mgr ctrl.Manager, opts Options) error {
	c := opts.Client
	if c == nil {
		c = mgr.GetClient()
	}
	if err := registerIndexes(ctx, mgr); err != nil {
		return fmt.Errorf("registering field indexes: %w", err)
	}
	sk := NewSigningKeyReconciler(c, mgr.GetAPIReader(), mgr.GetScheme(), eventRecorder(mgr, "signingkey-controller"), opts.Clock, opts.GenerateKey)
	if err := sk.SetupWithManager(mgr); err != nil {
		return err
	}
	lpac := &LivePersonAuthClientReconciler{Client: c, APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(), Recorder: eventRecorder(mgr, "livepersonauthclient-controller")}
	if err := lpac.SetupWithManager(mgr); err != nil {
		return err
	}
	clk := opts.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	optional := opts.OptionalKinds
	if optional == nil {
		k, err := servedOptionalKinds(mgr.GetRESTMapper())
		if err != nil {
			return err
		}
		optional = &k
	}
	ts := &TokenServerReconciler{Client: c, APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(),
		Recorder: eventRecorder(mgr, "tokenserver-controller"), Clock: clk, Image: opts.TokenServerImage, AllowedImages: opts.AllowedTokenServerImages,
		gatewayAPI: optional.HTTPRoute, serviceMonitors: optional.ServiceMonitor}
	if err := ts.SetupWithManager(mgr); err != nil {
		return err
	}
	interval := opts.SecretSetInterval
	if interval == 0 {
		// A new client waits for the set: a quarter second between writes keeps that wait
		// short, and the spacing grows with the cost of a write (SecretSetReconciler).
		interval = 250 * time.Millisecond
	}
	set := &SecretSetReconciler{Client: c, APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(), Recorder: eventRecorder(mgr, "tokenserver-secrets-controller"), MinInterval: interval, MaxShardBytes: opts.SecretSetShardBytes, RecentBytes: opts.SecretSetRecentBytes}
	return set.SetupWithManager(mgr)
}

// eventRecorder is the manager's recorder for one controller, its notes kept within the API
// server's limit.
func eventRecorder(mgr ctrl.Manager, name string) recorder.EventRecorder {
	return clippingRecorder{mgr.GetEventRecorder(name)}
}
