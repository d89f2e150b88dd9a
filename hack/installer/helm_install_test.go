package installer

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/lpauth/lpauth-operator/controllers/testenv"
)

// helm install, then helm upgrade with other values, against a real kube-apiserver: what a
// platform team does. No kubelet runs here, so the manager's pod never starts; the test reads
// what helm applied.
func TestHelmInstallsAndUpgradesOnARealAPIServer(t *testing.T) {
	t.Parallel()
	chart := filepath.Join(buildChart(t), "chart")
	// An API server without the CRDs: helm installs them.
	env, cfg, err := testenv.Start(func(e *envtest.Environment) { e.CRDDirectoryPaths = nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	kubeconfig, err := testenv.Kubeconfig(env, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = apiextensionsv1.AddToScheme(scheme)
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// The release namespace as the README has it made: labelled restricted.
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "lpauth-system",
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}}); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"team-a", "team-b"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) {
		t.Helper()
		if out, err := helm(t, append(args, "--kubeconfig", kubeconfig)...); err != nil {
			t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	run("install", "lpauth", chart, "-n", "lpauth-system")
	for _, crd := range []string{"signingkeys", "tokenservers", "livepersonauthclients"} {
		if err := c.Get(ctx, client.ObjectKey{Name: crd + ".auth.lpauth.dev"}, &apiextensionsv1.CustomResourceDefinition{}); err != nil {
			t.Errorf("CRD %s: %v", crd, err)
		}
	}
	if err := c.Get(ctx, client.ObjectKey{Name: "lpauth-manager-rolebinding"}, &rbacv1.ClusterRoleBinding{}); err != nil {
		t.Errorf("cluster-wide install: %v", err)
	}
	d := managerDeployment(ctx, t, c)
	if *d.Spec.Replicas != 1 || d.Spec.Template.Spec.Containers[0].Image != testImage || !slices.Contains(d.Spec.Template.Spec.Containers[0].Args, "--zap-log-level=info") {
		t.Errorf("installed manager: replicas %d, image %s, args %v", *d.Spec.Replicas, d.Spec.Template.Spec.Containers[0].Image, d.Spec.Template.Spec.Containers[0].Args)
	}

	// The upgrade: a namespaced install, two replicas, debug logs.
	run("upgrade", "lpauth", chart, "-n", "lpauth-system", "--reuse-values",
		"--set", "watchNamespaces={team-a,team-b},replicas=2,logLevel=debug")
	d = managerDeployment(ctx, t, c)
	args := d.Spec.Template.Spec.Containers[0].Args
	if *d.Spec.Replicas != 2 || !slices.Contains(args, "--zap-log-level=debug") || !slices.Contains(args, "--watch-namespaces=team-a,team-b") {
		t.Errorf("upgraded manager: replicas %d, args %v", *d.Spec.Replicas, args)
	}
	for _, obj := range []client.Object{&rbacv1.ClusterRole{}, &rbacv1.ClusterRoleBinding{}} {
		name := "lpauth-manager-role"
		if _, ok := obj.(*rbacv1.ClusterRoleBinding); ok {
			name = "lpauth-manager-rolebinding"
		}
		if err := c.Get(ctx, client.ObjectKey{Name: name}, obj); !apierrors.IsNotFound(err) {
			t.Errorf("%T %s after the namespaced upgrade: %v (want it gone)", obj, name, err)
		}
	}
	for _, ns := range []string{"team-a", "team-b"} {
		role := &rbacv1.Role{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "lpauth-manager-role"}, role); err != nil || len(role.Rules) == 0 {
			t.Errorf("Role in %s: %v (%d rules)", ns, err, len(role.Rules))
		}
		rb := &rbacv1.RoleBinding{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "lpauth-manager-rolebinding"}, rb); err != nil ||
			rb.Subjects[0].Namespace != "lpauth-system" || rb.RoleRef.Kind != "Role" {
			t.Errorf("RoleBinding in %s: %v %+v", ns, err, rb)
		}
	}

	// Uninstalling keeps the CRDs, and with them every brand's keys and clients.
	run("uninstall", "lpauth", "-n", "lpauth-system", "--wait", "--timeout", "60s")
	if err := c.Get(ctx, client.ObjectKey{Name: "signingkeys.auth.lpauth.dev"}, &apiextensionsv1.CustomResourceDefinition{}); err != nil {
		t.Errorf("the CRDs went with helm uninstall: %v", err)
	}
}

func managerDeployment(ctx context.Context, t *testing.T, c client.Client) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Get(ctx, client.ObjectKey{Namespace: "lpauth-system", Name: "lpauth-controller-manager"}, d)
		if err == nil {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("the manager Deployment: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
