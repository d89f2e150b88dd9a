package lpauthctl_test

// The plugin against the real thing: a kube-apiserver and etcd (envtest), the operator and a
// token server in this process, serving on loopback. One system for the package: the commands
// that change it (rotate, revoke) work on SigningKeys of their own namespaces.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/controllers"
	"github.com/lpauth/lpauth-operator/controllers/lpauthctl"
	"github.com/lpauth/lpauth-operator/controllers/testenv"
	"github.com/lpauth/lpauth-operator/controllers/workload"
	"github.com/lpauth/lpauth-operator/tokenserver"
	"github.com/lpauth/lpauth-operator/tokenserver/server"
)

const (
	ns = "brand-auth"
	// lpEncKeyID is the kid LivePerson gives its encryption key.
	lpEncKeyID = "lp-enc-2026"
)

// sys is the running system the envtest tests share; nil when they are skipped.
var sys *system

type system struct {
	kubeconfig string // a cluster-admin kubeconfig for the plugin
	k8s        client.Client
	issuer     string // the token server, on loopback
	skipWhy    string
}

func TestMain(m *testing.M) {
	flag.Parse()
	code, err := runSuite(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "setting up the system:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func runSuite(m *testing.M) (int, error) {
	if testing.Short() || os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return m.Run(), nil // the envtest tests skip themselves (needSystem)
	}
	ctrl.SetLogger(logr.Discard())
	env, cfg, err := testenv.Start()
	if err != nil {
		return 0, err
	}
	defer func() { _ = env.Stop() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp("", "lpauthctl-test-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	s, err := startSystem(ctx, env, cfg, dir)
	if err != nil {
		return 0, err
	}
	sys = s
	return m.Run(), nil
}

func startSystem(ctx context.Context, env *envtest.Environment, cfg *rest.Config, dir string) (*system, error) {
	s := &system{}
	var err error
	if s.kubeconfig, err = testenv.Kubeconfig(env, dir); err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 500, 1000
	if s.k8s, err = client.New(cfg, client.Options{Scheme: controllers.Scheme()}); err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: controllers.Scheme(), Cache: controllers.CacheOptions(),
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"})
	if err != nil {
		return nil, err
	}
	if err := controllers.Setup(ctx, mgr, controllers.Options{TokenServerImage: "lpauth-operator:test", SecretSetInterval: 50 * time.Millisecond}); err != nil {
		return nil, err
	}
	go func() { _ = mgr.Start(ctx) }()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.issuer = "http://" + ln.Addr().String()
	if err := s.applyBrand(ctx); err != nil {
		return nil, err
	}
	ts, err := tokenserver.Start(ctx, cfg, ns, "brand", logr.Discard())
	if err != nil {
		return nil, err
	}
	go func() {
		_ = ts.Serve(ctx, server.NewHTTPServer(ln.Addr().String(), ts.Handler), ln, 0, time.Second, logr.Discard())
	}()
	if err := s.reportReplica(ctx); err != nil {
		return nil, err
	}
	for _, name := range []string{"brand-liveperson", "brand-pkce", "brand-implicit", "brand-encrypted"} {
		if err := s.waitReady(ctx, name); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// applyBrand creates the brand's objects: keys, the issuer on loopback, and four clients (the
// code flow as the samples have it, one requiring PKCE, one implicit in PEM mode, one implicit
// encrypting for LivePerson's key).
func (s *system) applyBrand(ctx context.Context) error {
	size := int32(2048)
	lpKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKIXPublicKey(&lpKey.PublicKey)
	if err != nil {
		return err
	}
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&v1alpha1.SigningKey{ObjectMeta: metav1.ObjectMeta{Name: "brand-keys", Namespace: ns}, Spec: v1alpha1.SigningKeySpec{RSAKeySize: &size}},
		&v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand", Namespace: ns},
			Spec: v1alpha1.TokenServerSpec{Issuer: s.issuer, SigningKeyRef: v1alpha1.LocalObjectReference{Name: "brand-keys"}}},
		&v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "brand-liveperson", Namespace: ns},
			Spec: v1alpha1.LivePersonAuthClientSpec{TokenServerRef: v1alpha1.LocalObjectReference{Name: "brand"}, AccountID: "12345678", Flow: v1alpha1.FlowCode}},
		&v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "brand-pkce", Namespace: ns},
			Spec: v1alpha1.LivePersonAuthClientSpec{TokenServerRef: v1alpha1.LocalObjectReference{Name: "brand"}, AccountID: "12345679", Flow: v1alpha1.FlowCode,
				PKCE: v1alpha1.PKCERequired, RedirectURIs: []string{"prefix:https://lpcdn.lpsnmedia.net/le_unified_window/"}}},
		&v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "brand-implicit", Namespace: ns},
			Spec: v1alpha1.LivePersonAuthClientSpec{TokenServerRef: v1alpha1.LocalObjectReference{Name: "brand"}, AccountID: "87654321", Flow: v1alpha1.FlowImplicit,
				PublicKeyMode: v1alpha1.PublicKeyPEM}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "lp-encryption", Namespace: ns},
			Data: map[string][]byte{lpEncKeyID: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})}},
		&v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "brand-encrypted", Namespace: ns},
			Spec: v1alpha1.LivePersonAuthClientSpec{TokenServerRef: v1alpha1.LocalObjectReference{Name: "brand"}, AccountID: "87654322", Flow: v1alpha1.FlowImplicit,
				Encryption: &v1alpha1.EncryptionSpec{KeysSecretRef: v1alpha1.LocalObjectReference{Name: "lp-encryption"}, KeyID: lpEncKeyID}}},
	}
	for _, o := range objs {
		if err := s.k8s.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

// reportReplica plays the kubelet, which envtest does not run: once the operator has made the
// token-server Deployment, its one replica (this process) is available.
func (s *system) reportReplica(ctx context.Context) error {
	ts := &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand", Namespace: ns}}
	d := &appsv1.Deployment{}
	return poll(ctx, 60*time.Second, "the token-server Deployment", func() (bool, error) {
		if s.k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: workload.Name(ts)}, d) != nil {
			return false, nil
		}
		now := metav1.Now()
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 1, ReadyReplicas: 1, AvailableReplicas: 1, UpdatedReplicas: 1,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "ServedByTheTest",
				LastUpdateTime: now, LastTransitionTime: now}}}
		return s.k8s.Status().Update(ctx, d) == nil, nil
	})
}

func (s *system) waitReady(ctx context.Context, client string) error {
	lpac := &v1alpha1.LivePersonAuthClient{}
	return poll(ctx, 60*time.Second, "LivePersonAuthClient "+client+" Ready", func() (bool, error) {
		err := s.k8s.Get(ctx, clientKey(client), lpac)
		return err == nil && meta.IsStatusConditionTrue(lpac.Status.Conditions, v1alpha1.ConditionReady), nil
	})
}

func clientKey(name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }

func poll(ctx context.Context, timeout time.Duration, what string, done func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := done()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %s", what, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// needSystem skips a test that needs the running system when there is none.
func needSystem(t *testing.T) *system {
	t.Helper()
	if sys == nil {
		t.Skip("needs envtest (KUBEBUILDER_ASSETS, as make test sets it); skipped by -short")
	}
	return sys
}

// result is one run of the plugin.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout ---\n%s--- stderr ---\n%s", r.code, r.stdout, r.stderr)
}

// plugin runs kubectl lpauth with args against the system, as a cluster admin.
func (s *system) plugin(t *testing.T, args ...string) result {
	t.Helper()
	return runPlugin(t, append([]string{"--kubeconfig", s.kubeconfig}, args...)...)
}

func runPlugin(t *testing.T, args ...string) result {
	t.Helper()
	var out, errs strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := lpauthctl.Main(ctx, args, &out, &errs)
	return result{code, out.String(), errs.String()}
}

// secret reads one key of a Secret of the brand's namespace.
func (s *system) secret(t *testing.T, name, key string) string {
	t.Helper()
	sec := &corev1.Secret{}
	if err := s.k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, sec); err != nil {
		t.Fatal(err)
	}
	return string(sec.Data[key])
}

func (s *system) lpac(t *testing.T, name string) *v1alpha1.LivePersonAuthClient {
	t.Helper()
	c := &v1alpha1.LivePersonAuthClient{}
	if err := s.k8s.Get(context.Background(), clientKey(name), c); err != nil {
		t.Fatal(err)
	}
	return c
}

func (s *system) signingKey(t *testing.T, namespace, name string) *v1alpha1.SigningKey {
	t.Helper()
	sk := &v1alpha1.SigningKey{}
	if err := s.k8s.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, sk); err != nil {
		t.Fatal(err)
	}
	return sk
}

// keyNamespace makes a namespace with a SigningKey of its own, Ready with Active and Next keys,
// for the commands that change keys.
func (s *system) keyNamespace(t *testing.T, prefix string) (string, *v1alpha1.SigningKey) {
	t.Helper()
	ctx := context.Background()
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := s.k8s.Create(ctx, nsObj); err != nil {
		t.Fatal(err)
	}
	size := int32(2048)
	sk := &v1alpha1.SigningKey{ObjectMeta: metav1.ObjectMeta{Name: "keys", Namespace: nsObj.Name}, Spec: v1alpha1.SigningKeySpec{RSAKeySize: &size}}
	if err := s.k8s.Create(ctx, sk); err != nil {
		t.Fatal(err)
	}
	err := poll(ctx, 30*time.Second, "SigningKey Ready", func() (bool, error) {
		sk = s.signingKey(t, nsObj.Name, "keys")
		return sk.Status.ActiveKeyID != "" && len(sk.Status.Keys) >= 2, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return nsObj.Name, sk
}

// kubeconfigIn writes a kubeconfig like the admin one whose context's namespace is namespace:
// what `kubectl config set-context --current --namespace` leaves.
func (s *system) kubeconfigIn(t *testing.T, namespace string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(s.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Contexts[cfg.CurrentContext].Namespace = namespace
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}
