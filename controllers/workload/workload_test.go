package workload_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/controllers/workload"
)

var update = flag.Bool("update", false, "rewrite the golden files from the builders")

const operatorImage = "ghcr.io/lpauth/lpauth-operator:v0.1.0"

func server(name string, mutate func(*v1alpha1.TokenServer)) *v1alpha1.TokenServer {
	ts := &v1alpha1.TokenServer{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "brand-auth", UID: types.UID("uid-" + name)},
		Spec:       v1alpha1.TokenServerSpec{Issuer: "https://auth.brand.example", SigningKeyRef: v1alpha1.LocalObjectReference{Name: "brand-keys"}},
	}
	if mutate != nil {
		mutate(ts)
	}
	return ts
}

// render is every object a TokenServer needs, as the YAML a reviewer reads.
func render(t *testing.T, ts *v1alpha1.TokenServer, p workload.Params) []byte {
	t.Helper()
	ing, err := workload.Ingress(ts)
	if err != nil {
		t.Fatal(err)
	}
	objs := []any{workload.ServiceAccount(ts), workload.Role(ts), workload.RoleBinding(ts), workload.Service(ts), workload.Deployment(ts, p)}
	if ing != nil {
		objs = append(objs, ing)
	}
	if pdb := workload.PodDisruptionBudget(ts); pdb != nil {
		objs = append(objs, pdb)
	}
	var out bytes.Buffer
	for _, o := range objs {
		b, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		out.WriteString("---\n")
		out.Write(b)
	}
	return out.Bytes()
}

func TestGolden(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		ts *v1alpha1.TokenServer
		p  workload.Params
	}{
		// One replica, memory store, no ingress: no PDB, no Ingress, default resources.
		"minimal": {server("brand", nil), workload.Params{Image: operatorImage}},
		// Everything set: an issuer with a path, three replicas on Redis, an ingress with TLS.
		"full": {server("brand", func(ts *v1alpha1.TokenServer) {
			ts.Spec.Issuer = "https://www.brand.example/lp-auth"
			ts.Spec.Replicas = ptr.To(int32(3))
			ts.Spec.Image = "registry.brand.example/lpauth-operator@sha256:0123"
			ts.Spec.Resources = &corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
			}
			ts.Spec.ReplayStore = &v1alpha1.ReplayStoreSpec{Type: v1alpha1.ReplayStoreRedis, Redis: &v1alpha1.RedisReplayStore{
				AddressSecretRef: v1alpha1.SecretKeyRef{Name: "redis", Key: "url"}}}
			ts.Spec.Ingress = &v1alpha1.IngressSpec{ClassName: ptr.To("nginx"), TLSSecretName: "www-brand-tls",
				Annotations: map[string]string{"cert-manager.io/cluster-issuer": "letsencrypt"}}
		}), workload.Params{Image: operatorImage, StartupConfig: []byte("redis://redis:6379/0")}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := render(t, tc.ts, tc.p)
			path := filepath.Join("testdata", name+".yaml")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run `go test ./controllers/workload -update` to write it)", err)
			}
			if d := cmp.Diff(string(want), string(got)); d != "" {
				t.Fatalf("%s differs from the builders (-golden +built); if the change is intended, run `go test ./controllers/workload -update` and review the diff:\n%s", path, d)
			}
		})
	}
}

// The restricted Pod Security Standard, checked field by field so a golden-file update cannot
// quietly weaken it.
func TestDeploymentIsRestricted(t *testing.T) {
	t.Parallel()
	d := workload.Deployment(server("brand", nil), workload.Params{Image: operatorImage})
	pod := d.Spec.Template.Spec
	if !*pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Fatal("pod must run as non-root with the RuntimeDefault seccomp profile")
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC || len(pod.Volumes) != 0 {
		t.Fatal("pod must not use host namespaces or volumes")
	}
	for _, c := range pod.Containers {
		sc := c.SecurityContext
		if sc == nil || *sc.AllowPrivilegeEscalation || !*sc.ReadOnlyRootFilesystem || !*sc.RunAsNonRoot ||
			len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0 || sc.Privileged != nil {
			t.Fatalf("container %s is not restricted: %+v", c.Name, sc)
		}
		if c.ReadinessProbe == nil || c.LivenessProbe == nil {
			t.Fatalf("container %s needs probes", c.Name)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
			t.Fatalf("container %s needs resource requests", c.Name)
		}
	}
}

func TestConfigHashFollowsStartupInputsOnly(t *testing.T) {
	t.Parallel()
	hash := func(ts *v1alpha1.TokenServer, startup string) string {
		return workload.Deployment(ts, workload.Params{Image: operatorImage, StartupConfig: []byte(startup)}).Spec.Template.Annotations[workload.AnnotationConfigHash]
	}
	base := hash(server("brand", nil), "")
	if base == "" || base != hash(server("brand", nil), "") {
		t.Fatal("the hash must be stable")
	}
	if base == hash(server("brand", nil), "redis://other:6379") {
		t.Fatal("a changed Redis address must change the hash, so pods restart with it")
	}
	redis := server("brand", func(ts *v1alpha1.TokenServer) {
		ts.Spec.ReplayStore = &v1alpha1.ReplayStoreSpec{Type: v1alpha1.ReplayStoreRedis, Redis: &v1alpha1.RedisReplayStore{AddressSecretRef: v1alpha1.SecretKeyRef{Name: "r", Key: "u"}}}
	})
	if base == hash(redis, "") {
		t.Fatal("a changed replay store must change the hash")
	}
	// The code TTL is read through informers: no restart.
	ttl := server("brand", func(ts *v1alpha1.TokenServer) { ts.Spec.CodeTTL = metav1.Duration{Duration: time.Minute} })
	if base != hash(ttl, "") {
		t.Fatal("codeTTL must not restart the pods")
	}
}

func TestIngressFollowsTheIssuer(t *testing.T) {
	t.Parallel()
	for issuer, want := range map[string][2]string{
		"https://auth.brand.example":            {"auth.brand.example", "/"},
		"https://www.brand.example:8443/lp/":    {"www.brand.example", "/lp"},
		"https://www.brand.example/a/b/openid":  {"www.brand.example", "/a/b/openid"},
		"http://localhost:8080/local-dev-issue": {"localhost", "/local-dev-issue"},
	} {
		ing, err := workload.Ingress(server("x", func(ts *v1alpha1.TokenServer) {
			ts.Spec.Issuer = issuer
			ts.Spec.Ingress = &v1alpha1.IngressSpec{}
		}))
		if err != nil {
			t.Fatal(err)
		}
		rule := ing.Spec.Rules[0]
		if rule.Host != want[0] || rule.HTTP.Paths[0].Path != want[1] {
			t.Errorf("%s: host %q path %q, want %q %q", issuer, rule.Host, rule.HTTP.Paths[0].Path, want[0], want[1])
		}
		if ing.Spec.TLS != nil || ing.Spec.IngressClassName != nil {
			t.Errorf("%s: TLS and class must be unset when not asked for", issuer)
		}
	}
	if ing, _ := workload.Ingress(server("x", nil)); ing != nil {
		t.Fatal("no spec.ingress, no Ingress")
	}
}

func TestPodDisruptionBudgetOnlyForSeveralReplicas(t *testing.T) {
	t.Parallel()
	for replicas, want := range map[int32]bool{0: false, 1: false, 2: true, 10: true} {
		got := workload.PodDisruptionBudget(server("x", func(ts *v1alpha1.TokenServer) { ts.Spec.Replicas = ptr.To(replicas) })) != nil
		if got != want {
			t.Errorf("replicas %d: PDB %v, want %v", replicas, got, want)
		}
	}
}

func TestRoleGrantsOnlyReads(t *testing.T) {
	t.Parallel()
	for _, rule := range workload.Role(server("x", nil)).Rules {
		for _, v := range rule.Verbs {
			if v != "get" && v != "list" && v != "watch" {
				t.Fatalf("the token server's Role grants %q on %v", v, rule.Resources)
			}
		}
		if strings.Contains(strings.Join(rule.Resources, ","), "*") {
			t.Fatalf("wildcard resources: %v", rule.Resources)
		}
	}
}

// With the memory replay store two pods must never serve at once: each would accept a code the
// other already redeemed.
func TestMemoryReplayStoreNeverRunsTwoPods(t *testing.T) {
	ts := &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand", Namespace: "ns"}, Spec: v1alpha1.TokenServerSpec{Issuer: "https://auth.brand.example"}}
	if got := workload.Deployment(ts, workload.Params{Image: "img"}).Spec.Strategy.Type; got != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("memory store: strategy = %s, want Recreate", got)
	}
	ts.Spec.ReplayStore = &v1alpha1.ReplayStoreSpec{Type: v1alpha1.ReplayStoreRedis, Redis: &v1alpha1.RedisReplayStore{}}
	d := workload.Deployment(ts, workload.Params{Image: "img"})
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
		t.Errorf("redis store: strategy = %+v, want a rolling update that never drops below the replica count", d.Spec.Strategy)
	}
}
