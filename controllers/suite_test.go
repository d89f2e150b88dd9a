package controllers_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	jose "github.com/go-jose/go-jose/v4"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/lpauth/lpauth-operator/api/keys"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/controllers"
	"github.com/lpauth/lpauth-operator/controllers/testenv"
)

var (
	env    *envtest.Environment
	k8s    client.Client // non-cached: assertions read what the API server stored
	scheme = runtime.NewScheme()
	clock  = clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ctx    context.Context
	cancel context.CancelFunc

	// keysGenerated counts key generations, to prove a conflict never generates a key twice.
	keysGenerated atomic.Int64
	// conflictsInjected counts the write conflicts injected into namespaces named "conflict-*".
	conflictsInjected atomic.Int64
)

func TestControllers(t *testing.T) {
	if testing.Short() {
		t.Skip("a real kube-apiserver and etcd (envtest): skipped by -short")
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controllers against a real kube-apiserver")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	// Gomega's default of 1 s is a latency bound nobody chose: on a loaded 2-core CI machine an
	// Event crosses a reconcile and the recorder's own goroutine. A spec that promises a bound
	// states it (serverCondition's 1 s, the rotation specs' own).
	SetDefaultEventuallyTimeout(5 * time.Second)
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	utilruntime.Must(gatewayv1.AddToScheme(scheme))
	utilruntime.Must(monitoringv1.AddToScheme(scheme))

	var err error
	var restCfg *rest.Config
	env, restCfg, err = testenv.Start()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(env.Stop()).To(Succeed()) })
	k8s, err = client.New(restCfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	// As in production (main.go): the default 5 requests/s would make 200 clients take minutes.
	restCfg.QPS, restCfg.Burst = 500, 1000
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:  scheme,
		Cache:   controllers.CacheOptions(),
		Metrics: metricsserver.Options{BindAddress: "0"},
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(controllers.Setup(context.Background(), mgr, controllers.Options{
		Clock:             clock,
		GenerateKey:       countingGenerator,
		Client:            conflictOnce(mgr.GetClient()),
		TokenServerImage:  testImage,
		SecretSetInterval: 50 * time.Millisecond,
	})).To(Succeed())

	ctx, cancel = context.WithCancel(context.Background())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	DeferCleanup(func() { cancel() })
})

func countingGenerator(alg v1alpha1.SigningAlgorithm, bits int) (jose.JSONWebKey, error) {
	keysGenerated.Add(1)
	return keys.Generate(alg, bits)
}

// conflictOnce makes the first write of each key Secret in a "conflict-*" namespace fail with a
// conflict, as if another writer had got there first.
func conflictOnce(c client.Client) client.Client {
	return &conflictClient{Client: c, seen: map[string]bool{}}
}

type conflictClient struct {
	client.Client
	mu   sync.Mutex
	seen map[string]bool
}

func (c *conflictClient) inject(obj client.Object) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := obj.(*corev1.Secret); !ok || !strings.HasPrefix(obj.GetNamespace(), "conflict-") || c.seen[obj.GetNamespace()] {
		return nil
	}
	c.seen[obj.GetNamespace()] = true
	conflictsInjected.Add(1)
	return apierrors.NewConflict(schema.GroupResource{Resource: "secrets"}, obj.GetName(), errors.New("injected by the test"))
}

func (c *conflictClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	if err := c.inject(obj); err != nil {
		return err
	}
	return c.Client.Create(ctx, obj, opts...)
}

func (c *conflictClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	if err := c.inject(obj); err != nil {
		return err
	}
	return c.Client.Update(ctx, obj, opts...)
}

// newNamespace gives each spec its own namespace.
func newNamespace(prefix string) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	Expect(k8s.Create(ctx, ns)).To(Succeed())
	return ns.Name
}
