package controllers

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// Scheme is what the operator reads and writes: the built-in kinds and ours.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	utilruntime.Must(gatewayv1.AddToScheme(s))
	utilruntime.Must(monitoringv1.AddToScheme(s))
	return s
}

// Run runs the operator with the command line's flags until SIGTERM.
func Run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	fs.SetOutput(stderr)
	metricsAddr := fs.String("metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint (0 disables it)")
	probeAddr := fs.String("health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	leaderElect := fs.Bool("leader-elect", false, "elect a leader so only one replica reconciles at a time")
	qps := fs.Float64("kube-api-qps", 200, "requests per second to the API server (thousands of clients need more than client-go's default)")
	burst := fs.Int("kube-api-burst", 400, "burst of requests to the API server")
	image := fs.String("token-server-image", os.Getenv("TOKEN_SERVER_IMAGE"), "image of token servers whose spec.image is empty: the operator's own (default $TOKEN_SERVER_IMAGE)")
	allowedImages := fs.String("allowed-token-server-images", os.Getenv("ALLOWED_TOKEN_SERVER_IMAGES"), "comma-separated image prefixes (ending in '/', ':' or '@', or whole images) a TokenServer's spec.image may use; empty: only --token-server-image")
	watch := fs.String("watch-namespaces", os.Getenv("WATCH_NAMESPACES"), "comma-separated namespaces to watch (a namespaced install: RBAC Roles in those only); empty: every namespace (default $WATCH_NAMESPACES)")
	opts := zap.Options{}
	opts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	namespaces, err := watchNamespaces(*watch)
	if err != nil {
		return err
	}

	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("finding the cluster: %w", err)
	}
	cfg.QPS, cfg.Burst = float32(*qps), *burst
	optional, err := ServedOptionalKinds(cfg)
	if err != nil {
		return err
	}
	cacheOpts := CacheOptions(namespaces...)
	optional.Prune(&cacheOpts)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	err = checkWatchRights(ctx, cfg, namespaces, cachedKinds(cacheOpts))
	cancel()
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 Scheme(),
		Cache:                  cacheOpts,
		Metrics:                metricsserver.Options{BindAddress: *metricsAddr},
		HealthProbeBindAddress: *probeAddr,
		LeaderElection:         *leaderElect,
		LeaderElectionID:       "lpauth-operator.auth.lpauth.dev",
		// The Lease is released on a clean stop so a new leader takes over at once.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	if err := Setup(context.Background(), mgr, Options{TokenServerImage: *image, AllowedTokenServerImages: splitList(*allowedImages), OptionalKinds: &optional}); err != nil {
		return fmt.Errorf("setting up the controllers: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("adding the health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("adding the ready check: %w", err)
	}
	if len(namespaces) > 0 {
		ctrl.Log.WithName("setup").Info("Starting manager", "watchNamespaces", namespaces)
	} else {
		ctrl.Log.WithName("setup").Info("Starting manager", "watchNamespaces", "all")
	}
	return mgr.Start(ctrl.SetupSignalHandler())
}

// watchNamespaces reads --watch-namespaces: namespace names, each checked, so a typo stops the
// manager at once instead of leaving it watching a namespace that cannot exist.
func watchNamespaces(v string) ([]string, error) {
	names := splitList(v)
	seen := map[string]bool{}
	for _, ns := range names {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return nil, fmt.Errorf("--watch-namespaces: %q is not a namespace name: %s", ns, strings.Join(errs, "; "))
		}
		if seen[ns] {
			return nil, fmt.Errorf("--watch-namespaces: %q is listed twice", ns)
		}
		seen[ns] = true
	}
	return names, nil
}

// cachedKinds are what the manager lists and watches in each namespace: our three kinds and
// every kind the cache options name (so the check below cannot drift from the cache).
func cachedKinds(opts cache.Options) []client.Object {
	kinds := []client.Object{&v1alpha1.SigningKey{}, &v1alpha1.TokenServer{}, &v1alpha1.LivePersonAuthClient{}}
	for obj := range opts.ByObject {
		kinds = append(kinds, obj)
	}
	return kinds
}

// checkWatchRights asks the API server whether the manager may list and watch what it caches in
// each namespace it is to watch. Without it, one namespace whose Role is missing (deleted, or the
// namespace not in the install) would hold back the cache, and with it every controller in every
// namespace, while the pod looks healthy: the manager would stop rotating keys for all brands.
// Stopping here names the namespace and crash-loops where it can be seen.
func checkWatchRights(ctx context.Context, cfg *rest.Config, namespaces []string, kinds []client.Object) error {
	if len(namespaces) == 0 {
		return nil
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, hc)
	if err != nil {
		return err
	}
	var resources []schema.GroupResource
	for _, obj := range kinds {
		gvk, err := apiutil.GVKForObject(obj, Scheme())
		if err != nil {
			return err
		}
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return fmt.Errorf("mapping %s: %w", gvk.Kind, err)
		}
		resources = append(resources, m.Resource.GroupResource())
	}
	sort.Slice(resources, func(i, j int) bool { return resources[i].String() < resources[j].String() })
	var problems []string
	for _, ns := range namespaces {
		var denied []string
		for _, gr := range resources {
			for _, verb := range []string{"list", "watch"} {
				review, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
					Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
						Namespace: ns, Verb: verb, Group: gr.Group, Resource: gr.Resource}},
				}, metav1.CreateOptions{})
				if err != nil {
					return fmt.Errorf("checking the manager's rights in namespace %s: %w", ns, err)
				}
				if !review.Status.Allowed {
					denied = append(denied, verb+" "+gr.String())
				}
			}
		}
		if len(denied) > 0 {
			problems = append(problems, fmt.Sprintf("namespace %s: may not %s", ns, strings.Join(denied, ", ")))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("--watch-namespaces: the manager lacks rights it needs (%s); the namespaced install's Role and RoleBinding must be in each watched namespace, which must exist: add the namespace to the install (helm upgrade --reuse-values --set 'watchNamespaces={...}', or make build-installer WATCH_NAMESPACES=...) or remove it from --watch-namespaces",
			strings.Join(problems, "; "))
	}
	return nil
}

// splitList reads a comma-separated flag value, dropping empty entries.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
