// Package workload builds, as pure functions of a TokenServer, the objects that run it: the
// Deployment, its Service, optional Ingress and PodDisruptionBudget, and the ServiceAccount with
// the namespaced Role the token server needs. The reconciler only applies what these return, so
// every field is covered by the golden files in testdata/.
package workload

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/lpauth/lpauth-operator/api/credentials"
	"github.com/lpauth/lpauth-operator/api/keys"
	"github.com/lpauth/lpauth-operator/api/secretset"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// Ports of the token-server container.
const (
	HTTPPort    = 8080
	MetricsPort = 9090
	// ServicePort is what the Service exposes; the Ingress (and LivePerson) reach the pods on it.
	ServicePort = 80
)

// AnnotationConfigHash on the pod template is a hash of what the token server reads only at
// start-up (the replay store and its address). A change rolls the pods; everything else it reads
// through informers and applies without a restart.
const AnnotationConfigHash = "auth.lpauth.dev/config-hash"

// A stopping pod first stays in service for drainDelay with /readyz failing and each response
// closing its connection (so clients that hold a connection to the pod, through kube-proxy or an
// L4 load balancer, reconnect elsewhere instead of finding it closed under a request), then
// drains in-flight requests for shutdownGrace. The termination grace period leaves room for both.
const (
	shutdownGrace = 20
	drainDelay    = 5
)

// Params are the inputs that do not come from the TokenServer itself.
type Params struct {
	// Image runs the token server when spec.image is empty: the operator's own image.
	Image string
	// StartupConfig is the content of everything the token server reads only at start-up (the
	// Redis address), hashed onto the pod template.
	StartupConfig []byte
}

// Name is the name shared by the Deployment, Service, Ingress, PDB, ServiceAccount, Role and
// RoleBinding of a TokenServer.
func Name(ts *v1alpha1.TokenServer) string { return ts.Name + "-token-server" }

// SelectorLabels select a TokenServer's pods.
func SelectorLabels(ts *v1alpha1.TokenServer) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":     "lpauth-token-server",
		"app.kubernetes.io/instance": ts.Name,
	}
}

// Labels are on every object built here; the operator caches only objects that carry
// app.kubernetes.io/managed-by=lpauth-operator.
func Labels(ts *v1alpha1.TokenServer) map[string]string {
	l := SelectorLabels(ts)
	l["app.kubernetes.io/component"] = "token-server"
	l[v1alpha1.LabelManagedBy] = v1alpha1.ManagedByValue
	return l
}

func meta(ts *v1alpha1.TokenServer, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: name, Namespace: ts.Namespace, Labels: Labels(ts),
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ts, v1alpha1.GroupVersion.WithKind("TokenServer"))},
	}
}

// SharedReplayStore reports whether pods share one replay store (Redis), so two of them may
// serve at once.
func SharedReplayStore(ts *v1alpha1.TokenServer) bool {
	rs := ts.Spec.ReplayStore
	return rs != nil && rs.Type == v1alpha1.ReplayStoreRedis
}

// Replicas is spec.replicas with its default.
func Replicas(ts *v1alpha1.TokenServer) int32 {
	if ts.Spec.Replicas == nil {
		return 1
	}
	return *ts.Spec.Replicas
}

// ServiceAccount is the identity of the token-server pods.
func ServiceAccount(ts *v1alpha1.TokenServer) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: meta(ts, Name(ts)),
	}
}

// Role grants exactly what the token server reads, in its own namespace only: its TokenServer,
// ConfigMaps (page branding, nothing secret), and Secrets by name — its SigningKey's keys, its
// credentials and the shards and overlay of its secret set (package secretset), which carries
// its clients and every other secret value it needs. list and watch with resourceNames are
// allowed for requests that select that one name (fieldSelector metadata.name), which is how
// the token server watches each of them.
func Role(ts *v1alpha1.TokenServer) *rbacv1.Role {
	return &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: meta(ts, Name(ts)),
		Rules: []rbacv1.PolicyRule{
			// Clients reach the token server through the secret set; it reads only its TokenServer.
			{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"tokenservers"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch"}, ResourceNames: ReadSecrets(ts)},
		},
	}
}

// ReadSecrets are the names of the Secrets a token server reads.
func ReadSecrets(ts *v1alpha1.TokenServer) []string {
	return append([]string{keys.SecretName(ts.Spec.SigningKeyRef.Name), credentials.SecretName(ts.Name)}, secretset.Names(ts.Name)...)
}

// RoleBinding binds the Role to the ServiceAccount.
func RoleBinding(ts *v1alpha1.TokenServer) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: meta(ts, Name(ts)),
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: Name(ts)},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: Name(ts), Namespace: ts.Namespace}},
	}
}

// Service exposes the token server inside the cluster; metrics get their own port.
func Service(ts *v1alpha1.TokenServer) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: meta(ts, Name(ts)),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: SelectorLabels(ts),
			Ports: []corev1.ServicePort{
				{Name: "http", Port: ServicePort, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP},
				{Name: "metrics", Port: MetricsPort, TargetPort: intstr.FromString("metrics"), Protocol: corev1.ProtocolTCP},
			},
		},
	}
}

// Ingress routes the issuer's host and path to the Service; nil when spec.ingress is unset.
func Ingress(ts *v1alpha1.TokenServer) (*networkingv1.Ingress, error) {
	spec := ts.Spec.Ingress
	if spec == nil {
		return nil, nil
	}
	host, path, err := issuerHostPath(ts)
	if err != nil {
		return nil, err
	}
	ing := &networkingv1.Ingress{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"},
		ObjectMeta: meta(ts, Name(ts)),
		Spec: networkingv1.IngressSpec{
			IngressClassName: spec.ClassName,
			Rules: []networkingv1.IngressRule{{
				Host: host,
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{
						Path: path, PathType: ptr.To(networkingv1.PathTypePrefix),
						Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
							Name: Name(ts), Port: networkingv1.ServiceBackendPort{Name: "http"}}},
					}},
				}},
			}},
		},
	}
	if len(spec.Annotations) > 0 {
		ing.Annotations = spec.Annotations
	}
	if spec.TLSSecretName != "" {
		ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{host}, SecretName: spec.TLSSecretName}}
	}
	return ing, nil
}

// issuerHostPath is what an Ingress or a route matches: the issuer's host, and its path as a
// prefix ("/" for none).
func issuerHostPath(ts *v1alpha1.TokenServer) (host, path string, err error) {
	u, err := url.Parse(ts.Spec.Issuer)
	if err != nil {
		return "", "", fmt.Errorf("issuer: %w", err)
	}
	path = strings.TrimSuffix(u.Path, "/")
	if path == "" {
		path = "/"
	}
	return u.Hostname(), path, nil
}

// PodDisruptionBudget keeps one pod serving through voluntary disruptions; nil for one replica,
// where a budget would block node drains forever.
func PodDisruptionBudget(ts *v1alpha1.TokenServer) *policyv1.PodDisruptionBudget {
	if Replicas(ts) <= 1 {
		return nil
	}
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: meta(ts, Name(ts)),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			Selector:       &metav1.LabelSelector{MatchLabels: SelectorLabels(ts)},
		},
	}
}

// DefaultResources suit LivePerson traffic: one RS256 signature costs under a millisecond of CPU.
func DefaultResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
	}
}

// ConfigHash is the value of AnnotationConfigHash.
func ConfigHash(ts *v1alpha1.TokenServer, p Params) string {
	// The token server watches its Secrets by name, so a new SigningKey means new pods.
	b, _ := json.Marshal(struct {
		ReplayStore *v1alpha1.ReplayStoreSpec `json:"replayStore"`
		Startup     []byte                    `json:"startup"`
		SigningKey  string                    `json:"signingKey,omitempty"`
	}{ts.Spec.ReplayStore, p.StartupConfig, ts.Spec.SigningKeyRef.Name})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// Deployment runs the token server under the restricted Pod Security Standard.
func Deployment(ts *v1alpha1.TokenServer, p Params) *appsv1.Deployment {
	image := ts.Spec.Image
	if image == "" {
		image = p.Image
	}
	resources := DefaultResources()
	if ts.Spec.Resources != nil {
		resources = *ts.Spec.Resources
	}
	selector := SelectorLabels(ts)
	probe := func(path string, period int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("http")}},
			PeriodSeconds: period, TimeoutSeconds: 2, FailureThreshold: 3,
		}
	}
	container := corev1.Container{
		Name:  "token-server",
		Image: image,
		Args: []string{"tokenserver", "--token-server=" + ts.Name,
			"--listen=:" + strconv.Itoa(HTTPPort), "--metrics-listen=:" + strconv.Itoa(MetricsPort),
			"--drain-delay=" + strconv.Itoa(drainDelay) + "s", "--shutdown-grace=" + strconv.Itoa(shutdownGrace) + "s"},
		Env: []corev1.EnvVar{
			{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
			// The Go collector works harder near the container's memory limit instead of being
			// killed at it (without a limit this is the node's allocatable memory: harmless).
			{Name: "GOMEMLIMIT", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory"}}},
		},
		Ports: []corev1.ContainerPort{
			{Name: "http", ContainerPort: HTTPPort, Protocol: corev1.ProtocolTCP},
			{Name: "metrics", ContainerPort: MetricsPort, Protocol: corev1.ProtocolTCP},
		},
		Resources:      resources,
		ReadinessProbe: probe("/readyz", 5),
		LivenessProbe:  probe("/healthz", 10),
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			RunAsNonRoot:             ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	// A new pod is ready before an old one stops: LivePerson never finds no server. Not with the
	// memory replay store: each pod remembers only the codes it redeemed, so an old and a new pod
	// serving side by side would each redeem the same code once. Recreate stops the old pod
	// first, at the price of a short gap in service during a rollout; run Redis to avoid it.
	strategy := appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
		MaxUnavailable: ptr.To(intstr.FromInt32(0)), MaxSurge: ptr.To(intstr.FromInt32(1))}}
	if !SharedReplayStore(ts) {
		strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: meta(ts, Name(ts)),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(Replicas(ts)),
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Strategy: strategy,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: Labels(ts), Annotations: map[string]string{AnnotationConfigHash: ConfigHash(ts, p)}},
				Spec: corev1.PodSpec{
					ServiceAccountName:            Name(ts),
					EnableServiceLinks:            ptr.To(false),
					TerminationGracePeriodSeconds: ptr.To(int64(drainDelay + shutdownGrace + 5)),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						RunAsUser:      ptr.To(int64(65532)),
						RunAsGroup:     ptr.To(int64(65532)),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{container},
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{
						{MaxSkew: 1, TopologyKey: "kubernetes.io/hostname", WhenUnsatisfiable: corev1.ScheduleAnyway, LabelSelector: &metav1.LabelSelector{MatchLabels: selector}},
						{MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone", WhenUnsatisfiable: corev1.ScheduleAnyway, LabelSelector: &metav1.LabelSelector{MatchLabels: selector}},
					},
				},
			},
		},
	}
}
