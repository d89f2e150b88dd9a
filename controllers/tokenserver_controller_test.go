package controllers_test

import (
	"bytes"
	"crypto/sha256"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/lpauth/lpauth-operator/api/credentials"
	"github.com/lpauth/lpauth-operator/api/secretset"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/controllers/workload"
)

// testImage is what the suite's manager runs token servers with.
const testImage = "lpauth-operator:test"

func getServer(ts *v1alpha1.TokenServer) *v1alpha1.TokenServer {
	out := &v1alpha1.TokenServer{}
	Expect(k8s.Get(ctx, client.ObjectKeyFromObject(ts), out)).To(Succeed())
	return out
}

// serverCondition waits for a condition of the TokenServer's current generation.
func serverCondition(ts *v1alpha1.TokenServer, typ string, status metav1.ConditionStatus, reason string) *v1alpha1.TokenServer {
	return serverConditionWithin(ts, typ, status, reason, time.Second)
}

func serverConditionWithin(ts *v1alpha1.TokenServer, typ string, status metav1.ConditionStatus, reason string, timeout time.Duration) *v1alpha1.TokenServer {
	var out *v1alpha1.TokenServer
	Eventually(func(g Gomega) {
		out = getServer(ts)
		cond := meta.FindStatusCondition(out.Status.Conditions, typ)
		g.Expect(cond).NotTo(BeNil())
		g.Expect(cond.ObservedGeneration).To(Equal(out.Generation))
		g.Expect([]string{string(cond.Status), cond.Reason}).To(Equal([]string{string(status), reason}), cond.Message)
	}).WithTimeout(timeout).Should(Succeed())
	return out
}

// secretRetry covers the operator's periodic look for a brand Secret that appeared unlabelled.
const secretRetry = 15 * time.Second

func owned(ts *v1alpha1.TokenServer, obj client.Object) client.Object {
	Eventually(func() error {
		return k8s.Get(ctx, client.ObjectKey{Namespace: ts.Namespace, Name: workload.Name(ts)}, obj)
	}).Should(Succeed())
	Expect(metav1.IsControlledBy(obj, getServer(ts))).To(BeTrue(), "%T must be controlled by the TokenServer", obj)
	return obj
}

func credentialsOf(ts *v1alpha1.TokenServer) *corev1.Secret {
	s := &corev1.Secret{}
	Eventually(func() error {
		return k8s.Get(ctx, client.ObjectKey{Namespace: ts.Namespace, Name: credentials.SecretName(ts.Name)}, s)
	}).Should(Succeed())
	return s
}

// markAvailable plays the Deployment controller, which envtest does not run.
func markAvailable(d *appsv1.Deployment, replicas int32) {
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation, Replicas: replicas, ReadyReplicas: replicas, AvailableReplicas: replicas, UpdatedReplicas: replicas,
		Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable",
			LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
	}
	Expect(k8s.Status().Update(ctx, d)).To(Succeed())
}

var _ = Describe("TokenServer", func() {
	// Regression (make faults, tampering): a deleted credentials Secret was generated again with
	// a Normal event, as at creation, though the brand's backends now hold a credential that is gone.
	It("warns when its credentials Secret was deleted and generated again (CredentialsDeletedWarns)", func() {
		ns := newNamespace("ts")
		ts := newServer(ns, "brand")
		before := credentialsOf(ts)
		serverCondition(ts, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonDeploymentProgressing)
		Expect(k8s.Delete(ctx, before)).To(Succeed())
		Eventually(func() types.UID { return credentialsOf(ts).UID }).ShouldNot(Equal(before.UID))
		Eventually(func() []string { return eventNotes(ns, v1alpha1.ReasonCredentialsRepaired) }).Should(ContainElement(ContainSubstring("was deleted")))
	})

	It("runs a hardened Deployment with its Service, ServiceAccount and read-only Role, and reports endpoints and readiness", func() {
		ns := newNamespace("ts")
		ts := newServer(ns, "brand")

		d := owned(ts, &appsv1.Deployment{}).(*appsv1.Deployment)
		pod := d.Spec.Template.Spec
		Expect(pod.Containers).To(HaveLen(1))
		Expect(pod.Containers[0].Image).To(Equal(testImage))
		Expect(pod.Containers[0].Args).To(ContainElements("tokenserver", "--token-server=brand"))
		Expect(*pod.SecurityContext.RunAsNonRoot).To(BeTrue())
		Expect(*pod.Containers[0].SecurityContext.ReadOnlyRootFilesystem).To(BeTrue())
		Expect(pod.ServiceAccountName).To(Equal(workload.Name(ts)))
		owned(ts, &corev1.Service{})
		owned(ts, &corev1.ServiceAccount{})
		role := owned(ts, &rbacv1.Role{}).(*rbacv1.Role)
		Expect(role.Rules).To(Equal(workload.Role(ts).Rules))
		owned(ts, &rbacv1.RoleBinding{})

		// No Ingress and no PDB were asked for.
		Expect(apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: workload.Name(ts)}, &networkingv1.Ingress{}))).To(BeTrue())
		Expect(apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: workload.Name(ts)}, &policyv1.PodDisruptionBudget{}))).To(BeTrue())

		got := serverCondition(ts, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonDeploymentProgressing)
		issuer := ts.Spec.Issuer
		Expect(*got.Status.Endpoints).To(Equal(v1alpha1.TokenServerEndpoints{
			Authorization: issuer + "/authorize", Token: issuer + "/token", JWKS: issuer + "/.well-known/jwks.json",
			Discovery: issuer + "/.well-known/openid-configuration", IssueAPI: issuer + "/api/v1",
		}))
		Expect(got.Status.CredentialsSecretName).To(Equal("brand-credentials"))

		markAvailable(d, 1)
		got = serverCondition(ts, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReconciled)
		Expect(got.Status.ReadyReplicas).To(Equal(int32(1)))
		serverCondition(ts, v1alpha1.ConditionAvailable, metav1.ConditionTrue, v1alpha1.ReasonDeploymentAvailable)
	})

	It("generates the credentials once and never overwrites them", func() {
		ns := newNamespace("ts")
		ts := newServer(ns, "brand")
		s := credentialsOf(ts)
		Expect(s.Labels).To(HaveKeyWithValue(v1alpha1.LabelTokenServerReads, "true"))
		Expect(s.Data[credentials.CodeKeyKey]).To(HaveLen(32))
		Expect(s.Data[credentials.IssueAPITokenKey]).To(HaveLen(43))
		Eventually(func() []string { return eventReasons(ns) }).Should(ContainElement("CredentialsGenerated"))

		// A spec change reconciles again; the Secret stays exactly as it was.
		patchServer(ts, func(t *v1alpha1.TokenServer) { t.Spec.CodeTTL = metav1.Duration{Duration: time.Minute} })
		serverCondition(ts, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonDeploymentProgressing)
		Consistently(func() string { return credentialsOf(ts).ResourceVersion }, "1s").Should(Equal(s.ResourceVersion))

		// A key damaged by hand is repaired with a warning; the sound credential is kept.
		s.Data[credentials.CodeKeyKey] = []byte("short")
		Expect(k8s.Update(ctx, s)).To(Succeed())
		Eventually(func() int { return len(credentialsOf(ts).Data[credentials.CodeKeyKey]) }).Should(Equal(32))
		Expect(credentialsOf(ts).Data[credentials.IssueAPITokenKey]).To(Equal(s.Data[credentials.IssueAPITokenKey]))
		Eventually(func() []string { return eventReasons(ns) }).Should(ContainElement("CredentialsRepaired"))

		// Deleted: generated anew.
		Expect(k8s.Delete(ctx, credentialsOf(ts))).To(Succeed())
		Eventually(func() []byte { return credentialsOf(ts).Data[credentials.IssueAPITokenKey] }).ShouldNot(Equal(s.Data[credentials.IssueAPITokenKey]))
	})

	It("rotates the credentials on request, keeping the previous code key as long as anything it sealed lives (PreviousCodeKeyOutlivesEverythingItSealed)", func() {
		ns := newNamespace("ts")
		ts := newServer(ns, "brand")
		before := credentialsOf(ts)
		patchServer(ts, func(t *v1alpha1.TokenServer) {
			metav1.SetMetaDataAnnotation(&t.ObjectMeta, v1alpha1.AnnotationRotateCredentials, "first")
		})
		var after *corev1.Secret
		Eventually(func() []byte { after = credentialsOf(ts); return after.Data[credentials.PreviousCodeKeyKey] }).Should(Equal(before.Data[credentials.CodeKeyKey]))
		Expect(after.Data[credentials.PreviousIssueAPITokenKey]).To(Equal(before.Data[credentials.IssueAPITokenKey]))
		Expect(after.Data[credentials.CodeKeyKey]).NotTo(Equal(before.Data[credentials.CodeKeyKey]))
		Expect(after.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationHandledRotate, "first"))

		// The same value does not rotate again.
		patchServer(ts, func(t *v1alpha1.TokenServer) { metav1.SetMetaDataAnnotation(&t.ObjectMeta, "unrelated", "x") })
		Consistently(func() []byte { return credentialsOf(ts).Data[credentials.CodeKeyKey] }, "1s").Should(Equal(after.Data[credentials.CodeKeyKey]))

		// One code TTL (120 s by default) later a login form shown before the rotation (sealed
		// for 10 minutes) must still open: the previous code key stays.
		clock.Step(121 * time.Second)
		patchServer(ts, func(t *v1alpha1.TokenServer) { metav1.SetMetaDataAnnotation(&t.ObjectMeta, "unrelated", "y") })
		Consistently(func() map[string][]byte { return credentialsOf(ts).Data }, "1s").Should(HaveKey(credentials.PreviousCodeKeyKey))
		// Once the longest of them (10 minutes) is over, the previous values go.
		clock.Step(v1alpha1.LoginFormTTL)
		patchServer(ts, func(t *v1alpha1.TokenServer) { metav1.SetMetaDataAnnotation(&t.ObjectMeta, "unrelated", "z") })
		Eventually(func() map[string][]byte { return credentialsOf(ts).Data }).ShouldNot(HaveKey(credentials.PreviousCodeKeyKey))
		// The brand's backends keep their own, longer overlap (spec.issueAPICredentialOverlap).
		Expect(credentialsOf(ts).Data).To(HaveKey(credentials.PreviousIssueAPITokenKey))
		Expect(credentialsOf(ts).Data[credentials.CodeKeyKey]).To(Equal(after.Data[credentials.CodeKeyKey]))
	})

	It("adds an Ingress and a PDB when asked, removes them when not, and rolls pods only for start-up config", func() {
		ns := newNamespace("ts")
		userSecret(ns, "redis", map[string][]byte{"url": []byte("redis://redis-a:6379/0")})
		ts := newServer(ns, "brand")
		d := owned(ts, &appsv1.Deployment{}).(*appsv1.Deployment)
		hash := d.Spec.Template.Annotations[workload.AnnotationConfigHash]

		patchServer(ts, func(t *v1alpha1.TokenServer) {
			t.Spec.Replicas = ptr.To(int32(3))
			t.Spec.ReplayStore = &v1alpha1.ReplayStoreSpec{Type: v1alpha1.ReplayStoreRedis, Redis: &v1alpha1.RedisReplayStore{
				AddressSecretRef: v1alpha1.SecretKeyRef{Name: "redis", Key: "url"}}}
			t.Spec.Ingress = &v1alpha1.IngressSpec{TLSSecretName: "brand-tls", ClassName: ptr.To("nginx")}
		})
		ing := owned(ts, &networkingv1.Ingress{}).(*networkingv1.Ingress)
		Expect(ing.Spec.Rules[0].Host).To(Equal(ns + ".brand.example"))
		Expect(ing.Spec.TLS[0].SecretName).To(Equal("brand-tls"))
		owned(ts, &policyv1.PodDisruptionBudget{})
		var redisHash string
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
			g.Expect(*d.Spec.Replicas).To(Equal(int32(3)))
			redisHash = d.Spec.Template.Annotations[workload.AnnotationConfigHash]
			g.Expect(redisHash).NotTo(Equal(hash))
		}).Should(Succeed())

		// The brand's Redis Secret is labelled so its changes are seen; a new address rolls the pods.
		redis := &corev1.Secret{}
		Eventually(func() map[string]string {
			Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "redis"}, redis)).To(Succeed())
			return redis.Labels
		}).Should(HaveKeyWithValue(v1alpha1.LabelTokenServerReads, "true"))
		redis.Data["url"] = []byte("redis://redis-b:6379/0")
		Expect(k8s.Update(ctx, redis)).To(Succeed())
		Eventually(func() string {
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
			return d.Spec.Template.Annotations[workload.AnnotationConfigHash]
		}).ShouldNot(Equal(redisHash))

		patchServer(ts, func(t *v1alpha1.TokenServer) {
			t.Spec.Replicas, t.Spec.ReplayStore, t.Spec.Ingress = ptr.To(int32(1)), nil, nil
		})
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: workload.Name(ts)}, &networkingv1.Ingress{}))
		}).Should(BeTrue())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: workload.Name(ts)}, &policyv1.PodDisruptionBudget{}))
		}).Should(BeTrue())
	})

	It("routes the issuer through a Gateway API HTTPRoute when asked, and removes it when not", func() {
		ns := newNamespace("ts")
		ts := newServer(ns, "brand")
		patchServer(ts, func(t *v1alpha1.TokenServer) {
			t.Spec.Route = &v1alpha1.RouteSpec{ParentRefs: []v1alpha1.GatewayRef{{Name: "public", Namespace: "gateways", SectionName: "https"}},
				Annotations: map[string]string{"team": "identity"}}
		})
		route := owned(ts, &gatewayv1.HTTPRoute{}).(*gatewayv1.HTTPRoute)
		Expect(route.Spec.Hostnames).To(Equal([]gatewayv1.Hostname{gatewayv1.Hostname(ns + ".brand.example")}))
		Expect(route.Spec.ParentRefs).To(HaveLen(1))
		Expect(string(route.Spec.ParentRefs[0].Name)).To(Equal("public"))
		Expect(string(*route.Spec.ParentRefs[0].Namespace)).To(Equal("gateways"))
		Expect(string(*route.Spec.ParentRefs[0].SectionName)).To(Equal("https"))
		Expect(route.Spec.Rules[0].BackendRefs[0].Name).To(Equal(gatewayv1.ObjectName(workload.Name(ts))))
		Expect(route.Annotations).To(HaveKeyWithValue("team", "identity"))
		serverCondition(ts, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonDeploymentProgressing)

		// An Ingress and a route at once are refused by the API server.
		both := ts.DeepCopy()
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(ts), both)).To(Succeed())
		both.Spec.Ingress = &v1alpha1.IngressSpec{}
		err := k8s.Update(ctx, both)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("set at most one of ingress and route"))

		patchServer(ts, func(t *v1alpha1.TokenServer) { t.Spec.Route = nil })
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: workload.Name(ts)}, &gatewayv1.HTTPRoute{}))
		}).Should(BeTrue())
	})

	It("has Prometheus scrape its metrics port through a ServiceMonitor when asked, and removes it when not (ServiceMonitorWhenAsked)", func() {
		ns := newNamespace("ts")
		ts := newServer(ns, "brand")
		patchServer(ts, func(t *v1alpha1.TokenServer) {
			t.Spec.Monitoring = &v1alpha1.MonitoringSpec{ServiceMonitor: &v1alpha1.ServiceMonitorSpec{
				Enabled: true, Interval: "30s", Labels: map[string]string{"release": "kube-prometheus-stack", v1alpha1.LabelManagedBy: "someone-else"}}}
		})
		sm := owned(ts, &monitoringv1.ServiceMonitor{}).(*monitoringv1.ServiceMonitor)
		Expect(sm.Labels).To(HaveKeyWithValue("release", "kube-prometheus-stack"))
		Expect(sm.Labels).To(HaveKeyWithValue(v1alpha1.LabelManagedBy, v1alpha1.ManagedByValue), "the brand's labels must not take the operator's")
		Expect(sm.Spec.Endpoints).To(HaveLen(1))
		Expect(sm.Spec.Endpoints[0].Port).To(Equal("metrics"))
		Expect(string(sm.Spec.Endpoints[0].Interval)).To(Equal("30s"))
		// It selects the token server's Service, and only it.
		svc := owned(ts, &corev1.Service{}).(*corev1.Service)
		Expect(svc.Labels).To(Equal(mergeLabels(svc.Labels, sm.Spec.Selector.MatchLabels)))
		Expect(slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "metrics" })).To(BeTrue())
		serverCondition(ts, v1alpha1.ConditionServiceMonitorReady, metav1.ConditionTrue, v1alpha1.ReasonReconciled)

		patchServer(ts, func(t *v1alpha1.TokenServer) { t.Spec.Monitoring.ServiceMonitor.Enabled = false })
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: workload.Name(ts)}, &monitoringv1.ServiceMonitor{}))
		}).Should(BeTrue())
		Eventually(func() *metav1.Condition {
			return meta.FindStatusCondition(getServer(ts).Status.Conditions, v1alpha1.ConditionServiceMonitorReady)
		}).Should(BeNil())
	})

	It("rewrites nothing when nothing changed, and puts back what someone edited", func() {
		ns := newNamespace("ts")
		ts := newServer(ns, "brand")
		d := owned(ts, &appsv1.Deployment{}).(*appsv1.Deployment)
		svc := owned(ts, &corev1.Service{}).(*corev1.Service)
		serverCondition(ts, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonDeploymentProgressing)
		d = owned(ts, &appsv1.Deployment{}).(*appsv1.Deployment)

		// Reconciles triggered by annotation changes apply again: no write. Each annotation is
		// one the TokenServer does not know, so each reconcile says so in an event: proof that
		// the reconciles ran, not only that nothing happened.
		for _, touch := range []string{"touch-a", "touch-b", "touch-c"} {
			patchServer(ts, func(t *v1alpha1.TokenServer) {
				metav1.SetMetaDataAnnotation(&t.ObjectMeta, "auth.lpauth.dev/"+touch, "x")
			})
			Eventually(func() []string { return eventNotes(ns, "UnknownAnnotation") }).
				Should(ContainElement(ContainSubstring("auth.lpauth.dev/"+touch+" ")), "the reconcile for "+touch)
		}
		Consistently(func() []string {
			fresh := owned(ts, &appsv1.Deployment{}).(*appsv1.Deployment)
			freshSvc := owned(ts, &corev1.Service{}).(*corev1.Service)
			return []string{fresh.ResourceVersion, freshSvc.ResourceVersion}
		}, "2s").Should(Equal([]string{d.ResourceVersion, svc.ResourceVersion}))

		// Someone scales the Deployment and drops a security setting: both come back.
		d.Spec.Replicas = ptr.To(int32(5))
		d.Spec.Template.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = ptr.To(false)
		Expect(k8s.Update(ctx, d)).To(Succeed())
		Eventually(func(g Gomega) {
			fresh := owned(ts, &appsv1.Deployment{}).(*appsv1.Deployment)
			g.Expect(*fresh.Spec.Replicas).To(Equal(int32(1)))
			g.Expect(*fresh.Spec.Template.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem).To(BeTrue())
		}).Should(Succeed())
	})

	It("refuses to take over objects it does not own, and owns only what it made", func() {
		ns := newNamespace("ts")
		squatter := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "brand-token-server", Namespace: ns},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 443}}},
		}
		Expect(k8s.Create(ctx, squatter)).To(Succeed())
		ts := newServer(ns, "brand")
		got := serverCondition(ts, v1alpha1.ConditionReady, metav1.ConditionFalse, "NameConflict")
		Expect(meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady).Message).To(ContainSubstring("Service brand-token-server exists and is not owned"))
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(squatter), squatter)).To(Succeed())
		Expect(squatter.Spec.Ports[0].Port).To(Equal(int32(443)), "someone else's Service must stay untouched")

		Expect(k8s.Delete(ctx, squatter)).To(Succeed())
		serverConditionWithin(ts, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonDeploymentProgressing, secretRetry)
		owned(ts, &corev1.Service{})

		// Everything it made is owned by it (the garbage collector deletes those with it);
		// the SigningKey and its Secret, which it only reads, are not.
		sk := &v1alpha1.SigningKey{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: ts.Spec.SigningKeyRef.Name}, sk)).To(Succeed())
		Expect(sk.OwnerReferences).To(BeEmpty())
		Expect(metav1.IsControlledBy(credentialsOf(ts), getServer(ts))).To(BeTrue())
	})

	It("says what is missing: a SigningKey without an Active key, or the Redis Secret", func() {
		ns := newNamespace("ts")
		ts := &v1alpha1.TokenServer{
			ObjectMeta: metav1.ObjectMeta{Name: "lonely", Namespace: ns},
			Spec:       v1alpha1.TokenServerSpec{Issuer: issuerFor(ns), SigningKeyRef: v1alpha1.LocalObjectReference{Name: "nope"}},
		}
		Expect(k8s.Create(ctx, ts)).To(Succeed())
		serverCondition(ts, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonSigningKeyNotFound)

		sk := newSigningKeyNamed(ns, "nope", v1alpha1.ES256)
		ready(sk)
		serverCondition(ts, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonDeploymentProgressing)

		patchServer(ts, func(t *v1alpha1.TokenServer) {
			t.Spec.ReplayStore = &v1alpha1.ReplayStoreSpec{Type: v1alpha1.ReplayStoreRedis, Redis: &v1alpha1.RedisReplayStore{
				AddressSecretRef: v1alpha1.SecretKeyRef{Name: "redis", Key: "url"}}}
		})
		serverCondition(ts, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound)
		userSecret(ns, "redis", map[string][]byte{"url": []byte("redis://r:6379")})
		serverConditionWithin(ts, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonDeploymentProgressing, secretRetry)
		Expect(bytes.Contains(credentialsOf(ts).Data[credentials.IssueAPITokenKey], []byte(":"))).To(BeFalse())

		// The login connector's Secret and the branding ConfigMap: said missing, labelled once
		// there, so the token server's label-selected caches see them.
		userSecret(ns, "users", map[string][]byte{"htpasswd": []byte("demo:$2a$10$x")})
		patchServer(ts, func(t *v1alpha1.TokenServer) {
			t.Spec.Login = &v1alpha1.LoginSpec{
				StaticUsers:          &v1alpha1.StaticUsersLogin{HtpasswdSecretRef: v1alpha1.SecretKeyRef{Name: "users", Key: "htpasswd"}},
				BrandingConfigMapRef: &v1alpha1.LocalObjectReference{Name: "look"},
			}
		})
		// A missing ConfigMap is cosmetic: said in BrandingApplied, Ready goes by the Deployment.
		serverCondition(ts, v1alpha1.ConditionBrandingApplied, metav1.ConditionFalse, v1alpha1.ReasonConfigMapNotFound)
		serverCondition(ts, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonDeploymentProgressing)
		look := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "look", Namespace: ns}, Data: map[string]string{"title": "Brand"}}
		Expect(k8s.Create(ctx, look)).To(Succeed())
		serverConditionWithin(ts, v1alpha1.ConditionBrandingApplied, metav1.ConditionTrue, v1alpha1.ReasonReconciled, secretRetry)
		for name, obj := range map[string]client.Object{"users": &corev1.Secret{}, "look": &corev1.ConfigMap{}} {
			Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj)).To(Succeed())
			Expect(obj.GetLabels()).To(HaveKeyWithValue(v1alpha1.LabelTokenServerReads, "true"), name)
		}
	})

	// Regression: spec.image ran whatever image the TokenServer's author chose, with a
	// ServiceAccount that reads the signing keys.
	It("refuses an image it was not allowed to run, and runs nothing (TokenServerImageIsNotTheAuthorsChoice)", func() {
		ns := newNamespace("ts")
		newSigningKeyNamed(ns, "keys", v1alpha1.ES256)
		ts := &v1alpha1.TokenServer{
			ObjectMeta: metav1.ObjectMeta{Name: "brand", Namespace: ns},
			Spec: v1alpha1.TokenServerSpec{Issuer: issuerFor(ns), SigningKeyRef: v1alpha1.LocalObjectReference{Name: "keys"},
				Image: "docker.io/attacker/steal-keys:latest"},
		}
		Expect(k8s.Create(ctx, ts)).To(Succeed())
		ts = serverCondition(ts, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonImageNotAllowed)
		Consistently(func() error {
			return k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: workload.Name(ts)}, &appsv1.Deployment{})
		}, "1s").Should(MatchError(ContainSubstring("not found")))
		Eventually(func() []string { return eventReasons(ns) }).Should(ContainElement(v1alpha1.ReasonImageNotAllowed))

		patchServer(ts, func(t *v1alpha1.TokenServer) { t.Spec.Image = "" })
		d := owned(ts, &appsv1.Deployment{}).(*appsv1.Deployment)
		Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal(testImage))
	})

	It("lets its token server read only its own Secrets, by name (TokenServerReadsOnlyItsSecrets)", func() {
		ns := newNamespace("ts")
		ts := newServer(ns, "brand")
		role := owned(ts, &rbacv1.Role{}).(*rbacv1.Role)
		var secretRules []rbacv1.PolicyRule
		for _, r := range role.Rules {
			if slices.Contains(r.Resources, "secrets") {
				secretRules = append(secretRules, r)
			}
		}
		Expect(secretRules).To(HaveLen(1))
		Expect(secretRules[0].ResourceNames).To(ConsistOf(workload.ReadSecrets(ts)))
	})

	// Regression: a missing branding ConfigMap made the TokenServer Available=False ("no
	// available replica yet") and Ready=False while its Deployment served.
	It("reports a missing branding ConfigMap as cosmetic and Available as the Deployment is (StatusTellsTheTruth)", func() {
		ns := newNamespace("ts")
		ts := newServer(ns, "brand")
		patchServer(ts, func(t *v1alpha1.TokenServer) {
			t.Spec.Login = &v1alpha1.LoginSpec{LandingPage: &v1alpha1.LandingPageLogin{URL: "https://www.brand.example/login"},
				BrandingConfigMapRef: &v1alpha1.LocalObjectReference{Name: "no-such-branding"}}
		})
		markServing(ts)
		serverCondition(ts, v1alpha1.ConditionAvailable, metav1.ConditionTrue, v1alpha1.ReasonDeploymentAvailable)
		serverCondition(ts, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReconciled)
		got := serverCondition(ts, v1alpha1.ConditionBrandingApplied, metav1.ConditionFalse, v1alpha1.ReasonConfigMapNotFound)
		Expect(meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionBrandingApplied).Message).To(ContainSubstring("no-such-branding"))
		Eventually(func() []string { return eventReasons(ns) }).Should(ContainElement(v1alpha1.ReasonConfigMapNotFound))
	})

	It("flags every TokenServer that shares its issuer, until it no longer does (IssuerIsFlaggedWhenShared)", func() {
		const shared = "https://shared.brand.example"
		var servers []*v1alpha1.TokenServer
		for _, prefix := range []string{"ts-a", "ts-b"} {
			ns := newNamespace(prefix)
			sk := ready(newSigningKeyNamed(ns, "keys", v1alpha1.ES256))
			ts := &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand", Namespace: ns},
				Spec: v1alpha1.TokenServerSpec{Issuer: shared, SigningKeyRef: v1alpha1.LocalObjectReference{Name: sk.Name}}}
			Expect(k8s.Create(ctx, ts)).To(Succeed())
			servers = append(servers, ts)
			if len(servers) == 1 {
				serverCondition(ts, v1alpha1.ConditionIssuerUnique, metav1.ConditionTrue, v1alpha1.ReasonReconciled)
			}
		}
		// The first is flagged too: LivePerson's requests may reach either, so either's logins fail.
		for i, ts := range servers {
			got := serverCondition(ts, v1alpha1.ConditionIssuerUnique, metav1.ConditionFalse, v1alpha1.ReasonIssuerConflict)
			Expect(meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionIssuerUnique).Message).To(ContainSubstring(servers[1-i].Namespace))
			Eventually(func() []string { return eventReasons(ts.Namespace) }).Should(ContainElement(v1alpha1.ReasonIssuerConflict))
		}

		Expect(k8s.Delete(ctx, servers[0])).To(Succeed())
		serverCondition(servers[1], v1alpha1.ConditionIssuerUnique, metav1.ConditionTrue, v1alpha1.ReasonReconciled)
	})

	// Regression: BrandingApplied said True for any ConfigMap that existed, while the pages
	// refused its values and showed the defaults; and an edit was not noticed until a resync.
	It("says which branding values the pages refuse, as the ConfigMap changes (BrandingIsValidated)", func() {
		ns := newNamespace("ts")
		ts := newServer(ns, "brand")
		look := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "look", Namespace: ns}, Data: map[string]string{"title": "Brand"}}
		Expect(k8s.Create(ctx, look)).To(Succeed())
		patchServer(ts, func(t *v1alpha1.TokenServer) {
			t.Spec.Login = &v1alpha1.LoginSpec{LandingPage: &v1alpha1.LandingPageLogin{URL: "https://www.brand.example/login"},
				BrandingConfigMapRef: &v1alpha1.LocalObjectReference{Name: "look"}}
		})
		serverCondition(ts, v1alpha1.ConditionBrandingApplied, metav1.ConditionTrue, v1alpha1.ReasonReconciled)

		// Well within the 10 s retry: the change comes through the watch.
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(look), look)).To(Succeed())
		look.Data = map[string]string{"title": "Brand", "primaryColor": "red", "text.signinButton": "Go"}
		Expect(k8s.Update(ctx, look)).To(Succeed())
		got := serverConditionWithin(ts, v1alpha1.ConditionBrandingApplied, metav1.ConditionFalse, v1alpha1.ReasonInvalidBranding, 4*time.Second)
		msg := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionBrandingApplied).Message
		Expect(msg).To(ContainSubstring("primaryColor must be #rgb or #rrggbb"))
		Expect(msg).To(ContainSubstring(`"text.signinButton" is not one the pages use`))
		Eventually(func() []string { return eventReasons(ns) }).Should(ContainElement(v1alpha1.ReasonInvalidBranding))
		serverCondition(ts, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonDeploymentProgressing)

		look.Data = map[string]string{"title": "Brand", "primaryColor": "#c00"}
		Expect(k8s.Update(ctx, look)).To(Succeed())
		serverConditionWithin(ts, v1alpha1.ConditionBrandingApplied, metav1.ConditionTrue, v1alpha1.ReasonReconciled, 4*time.Second)
	})

	// Regression: BrandingApplied and IssuerUnique were computed by phases after the ones that
	// can stop a reconcile, so a TokenServer waiting for its Redis Secret said its branding was
	// applied and its issuer unique.
	It("keeps its warnings true to what it found while it is not Ready (WarningsHoldWhileNotReady)", func() {
		ns := newNamespace("ts")
		sk := ready(newSigningKeyNamed(ns, "keys", v1alpha1.ES256))
		look := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "look", Namespace: ns}, Data: map[string]string{"primaryColor": "red"}}
		Expect(k8s.Create(ctx, look)).To(Succeed())
		ts := &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand", Namespace: ns},
			Spec: v1alpha1.TokenServerSpec{Issuer: issuerFor(ns), SigningKeyRef: v1alpha1.LocalObjectReference{Name: sk.Name},
				ReplayStore: &v1alpha1.ReplayStoreSpec{Type: v1alpha1.ReplayStoreRedis, Redis: &v1alpha1.RedisReplayStore{
					AddressSecretRef: v1alpha1.SecretKeyRef{Name: "redis", Key: "url"}}},
				Login: &v1alpha1.LoginSpec{LandingPage: &v1alpha1.LandingPageLogin{URL: "https://www.brand.example/login"},
					BrandingConfigMapRef: &v1alpha1.LocalObjectReference{Name: "look"}}}}
		Expect(k8s.Create(ctx, ts)).To(Succeed())
		serverCondition(ts, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound)
		serverCondition(ts, v1alpha1.ConditionBrandingApplied, metav1.ConditionFalse, v1alpha1.ReasonInvalidBranding)
	})

	// A secret set Secret someone else made blocks the token server from every client: the
	// TokenServer says so; one the operator wrote for an earlier TokenServer of the name (a
	// restore) is taken over and rewritten.
	It("refuses a secret set it did not write, and takes over one left by an earlier TokenServer (SecretSetName)", func() {
		ns := newNamespace("ts")
		planted := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "brand-token-server-secrets", Namespace: ns,
			Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}},
			StringData: map[string]string{"login": "attacker:$2y$10$planted"}}
		Expect(k8s.Create(ctx, planted)).To(Succeed())
		ts := newServer(ns, "brand")
		got := serverCondition(ts, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonNameConflict)
		Expect(meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady).Message).To(ContainSubstring("serves no client"))
		Expect(k8s.Delete(ctx, planted)).To(Succeed())
		serverConditionWithin(ts, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonDeploymentProgressing, secretRetry)

		other := newNamespace("ts")
		left := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "brand-token-server-secrets", Namespace: other,
			Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, v1alpha1.LabelTokenServerReads: "true"}},
			Type: secretset.SecretType, StringData: map[string]string{"login": "from the backup"}}
		Expect(k8s.Create(ctx, left)).To(Succeed())
		restored := newServer(other, "brand")
		Eventually(func(g Gomega) {
			set := &corev1.Secret{}
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(left), set)).To(Succeed())
			g.Expect(metav1.IsControlledBy(set, getServer(restored))).To(BeTrue())
			g.Expect(set.Data).NotTo(HaveKey("login"), "rewritten from the sources alone")
		}).WithTimeout(5 * time.Second).Should(Succeed())
	})

	It("keeps the previous issue-API credential for spec.issueAPICredentialOverlap, independent of the code key (IssueAPICredentialOverlap)", func() {
		ns := newNamespace("ts")
		ts := newServer(ns, "brand")
		before := credentialsOf(ts)
		oldToken := before.Data[credentials.IssueAPITokenKey]
		patchServer(ts, func(t *v1alpha1.TokenServer) {
			t.Spec.IssueAPICredentialOverlap = metav1.Duration{Duration: time.Hour}
			metav1.SetMetaDataAnnotation(&t.ObjectMeta, v1alpha1.AnnotationRotateCredentials, "first")
		})
		Eventually(func() []byte { return credentialsOf(ts).Data[credentials.PreviousIssueAPITokenKey] }).Should(Equal(oldToken))
		after := credentialsOf(ts)
		Expect(after.Annotations).To(HaveKey(v1alpha1.AnnotationPreviousCodeKeyUntil))
		Expect(after.Annotations).To(HaveKey(v1alpha1.AnnotationPreviousIssueAPITokenUntil))
		Expect(after.Annotations).NotTo(HaveKey(v1alpha1.AnnotationPreviousUntil))
		// The event says how long each stays accepted.
		Eventually(func() []string { return eventNotes(ns, "CredentialsRotated") }).Should(ContainElement(
			And(ContainSubstring("previous code key is accepted for 10m0s"), ContainSubstring("previous issue-API credential for 1h0m0s"))))

		// Once the code key's overlap is over (the login form's 10 minutes) it goes; the
		// credential stays for its own hour.
		clock.Step(v1alpha1.LoginFormTTL + time.Second)
		patchServer(ts, func(t *v1alpha1.TokenServer) { metav1.SetMetaDataAnnotation(&t.ObjectMeta, "unrelated", "a") })
		Eventually(func() map[string][]byte { return credentialsOf(ts).Data }).ShouldNot(HaveKey(credentials.PreviousCodeKeyKey))
		mid := credentialsOf(ts)
		Expect(mid.Data).To(HaveKeyWithValue(credentials.PreviousIssueAPITokenKey, oldToken))
		Expect(mid.Data).NotTo(HaveKey(credentials.RetiredIssueAPITokenDigestsKey))
		Expect(mid.Annotations).NotTo(HaveKey(v1alpha1.AnnotationPreviousCodeKeyUntil))
		Expect(mid.Annotations).To(HaveKey(v1alpha1.AnnotationPreviousIssueAPITokenUntil))

		// After the hour the credential goes too; only its digest stays, so the token server can
		// tell a backend still sending it that it was replaced.
		clock.Step(time.Hour)
		patchServer(ts, func(t *v1alpha1.TokenServer) { metav1.SetMetaDataAnnotation(&t.ObjectMeta, "unrelated", "b") })
		Eventually(func() map[string][]byte { return credentialsOf(ts).Data }).ShouldNot(HaveKey(credentials.PreviousIssueAPITokenKey))
		done := credentialsOf(ts)
		Expect(done.Annotations).NotTo(HaveKey(v1alpha1.AnnotationPreviousIssueAPITokenUntil))
		retired := credentials.ParseRetiredDigests(done.Data[credentials.RetiredIssueAPITokenDigestsKey])
		Expect(retired).To(HaveLen(1))
		Expect(retired[0].SHA256).To(Equal(sha256.Sum256(oldToken)))
		for k, v := range done.Data {
			Expect(bytes.Contains(v, oldToken)).To(BeFalse(), "%s holds the retired credential in the clear", k)
		}
		Expect(done.Data[credentials.IssueAPITokenKey]).To(Equal(after.Data[credentials.IssueAPITokenKey]))
		Eventually(func() []string { return eventNotes(ns, "PreviousCredentialsRemoved") }).Should(ContainElement(ContainSubstring("issue-API credential")))

		// Only one previous value of each is kept: a rotation within the overlap of the one
		// before ends the older overlap now, and warns.
		for _, request := range []string{"second", "third"} {
			patchServer(ts, func(t *v1alpha1.TokenServer) {
				metav1.SetMetaDataAnnotation(&t.ObjectMeta, v1alpha1.AnnotationRotateCredentials, request)
			})
			Eventually(func() map[string]string { return credentialsOf(ts).Annotations }).Should(HaveKeyWithValue(v1alpha1.AnnotationHandledRotate, request))
		}
		Eventually(func() []string { return eventNotes(ns, "PreviousCredentialsCut") }).Should(ContainElement(ContainSubstring("code key and issue-API credential")))

		// A leak: cut- keeps no previous value at all, and says what that breaks.
		patchServer(ts, func(t *v1alpha1.TokenServer) {
			metav1.SetMetaDataAnnotation(&t.ObjectMeta, v1alpha1.AnnotationRotateCredentials, v1alpha1.CutCredentialsPrefix+"leak")
		})
		Eventually(func(g Gomega) {
			got := credentialsOf(ts)
			g.Expect(got.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationHandledRotate, v1alpha1.CutCredentialsPrefix+"leak"))
			g.Expect(got.Data).NotTo(HaveKey(credentials.PreviousIssueAPITokenKey))
			g.Expect(got.Data).NotTo(HaveKey(credentials.PreviousCodeKeyKey))
		}).Should(Succeed())
		Eventually(func() []string { return eventNotes(ns, "CredentialsCut") }).Should(ContainElement(ContainSubstring("customers start again")))
	})

	// Regression: deleting a SigningKey its TokenServer signs with, or a TokenServer its clients
	// use, went through at once and took every login down with it.
	It("holds the deletion of what others still use, until they go or delete-anyway says so (DeletionIsGuarded)", func() {
		ns := newNamespace("ts")
		ts := newServingServer(ns, "brand")
		clientCondition(newClient(ns, "lp", "brand"), metav1.ConditionTrue, v1alpha1.ReasonReconciled)
		sk := &v1alpha1.SigningKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: ts.Spec.SigningKeyRef.Name}}
		Eventually(func() []string { return get(sk).Finalizers }).Should(ContainElement(v1alpha1.FinalizerInUse))
		Eventually(func() []string { return getServer(ts).Finalizers }).Should(ContainElement(v1alpha1.FinalizerInUse))

		Expect(k8s.Delete(ctx, get(sk))).To(Succeed())
		Expect(k8s.Delete(ctx, getServer(ts))).To(Succeed())
		blocked := func(get func() []metav1.Condition, user string) {
			Eventually(func(g Gomega) {
				c := meta.FindStatusCondition(get(), v1alpha1.ConditionDeletionBlocked)
				g.Expect(c).NotTo(BeNil())
				g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
				g.Expect(c.Message).To(And(ContainSubstring(user), ContainSubstring(v1alpha1.AnnotationDeleteAnyway)))
			}).WithTimeout(5 * time.Second).Should(Succeed())
		}
		blocked(func() []metav1.Condition { return get(sk).Status.Conditions }, "brand")
		blocked(func() []metav1.Condition { return getServer(ts).Status.Conditions }, "lp")
		Consistently(func() error { return k8s.Get(ctx, client.ObjectKeyFromObject(ts), &v1alpha1.TokenServer{}) }, "1s").Should(Succeed())
		Eventually(func() []string { return eventReasons(ns) }).Should(ContainElement(v1alpha1.ReasonInUse))

		// The TokenServer goes when told to anyway; then nothing uses the SigningKey and it goes.
		cur := getServer(ts)
		patch := client.MergeFrom(cur.DeepCopy())
		metav1.SetMetaDataAnnotation(&cur.ObjectMeta, v1alpha1.AnnotationDeleteAnyway, "true")
		Expect(k8s.Patch(ctx, cur, patch)).To(Succeed())
		gone := func(obj client.Object) {
			Eventually(func() bool { return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj)) }).WithTimeout(5 * time.Second).Should(BeTrue())
		}
		gone(&v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: ts.Name}})
		gone(&v1alpha1.SigningKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sk.Name}})
	})
})

func patchServer(ts *v1alpha1.TokenServer, mutate func(*v1alpha1.TokenServer)) {
	Eventually(func() error {
		cur := getServer(ts)
		mutate(cur)
		return k8s.Update(ctx, cur)
	}).Should(Succeed())
}

// eventNotes are the notes of the namespace's events with the reason.
func eventNotes(ns, reason string) []string {
	evs := &eventsv1.EventList{}
	Expect(k8s.List(ctx, evs, client.InNamespace(ns))).To(Succeed())
	var out []string
	for _, e := range evs.Items {
		if e.Reason == reason {
			out = append(out, e.Note)
		}
	}
	return out
}

// mergeLabels is have with want's labels over it: equal to have when have holds all of want.
func mergeLabels(have, want map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range have {
		out[k] = v
	}
	for k, v := range want {
		out[k] = v
	}
	return out
}
