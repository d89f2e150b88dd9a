package controllers

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/lpauth/lpauth-operator/api/branding"
	"github.com/lpauth/lpauth-operator/api/credentials"
	"github.com/lpauth/lpauth-operator/api/endpoints"
	"github.com/lpauth/lpauth-operator/api/secretset"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/controllers/workload"
)

// FieldOwner is the server-side-apply manager of everything the operator applies.
const FieldOwner = "lpauth-operator"

// TokenServerReconciler runs each TokenServer as a Deployment with its Service, optional
// Ingress and PodDisruptionBudget, a ServiceAccount bound to a read-only Role, and the Secret with
// its code-sealing key and issue-API credential.
type TokenServerReconciler struct {
	client.Client
	// APIReader sees objects the label-filtered cache does not: a same-named object someone else
	// made, or the brand's Redis address Secret before it is labelled.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  recorder.EventRecorder
	Clock     clock.PassiveClock
	// Image runs the token server when spec.image is empty (the operator's own image).
	Image string
	// AllowedImages are the prefixes spec.image may start with; empty allows only Image.
	AllowedImages []string
	// gatewayAPI says whether the cluster serves HTTPRoute (Gateway API CRDs installed), looked
	// up through the RESTMapper: a cluster without them runs fine until a route is asked for.
	gatewayAPI bool
	// serviceMonitors says whether the cluster serves ServiceMonitor (the Prometheus Operator's
	// CRDs), the same way: only a TokenServer that asks for one needs them.
	serviceMonitors bool
	annotations     annotationWarner
	late            lateWarner
	// status writes status right even when the cache lags behind its own last write.
	status statusWriter
}

// +kubebuilder:rbac:groups=auth.lpauth.dev,resources=tokenservers,verbs=get;list;watch;patch;update
// +kubebuilder:rbac:groups=auth.lpauth.dev,resources=tokenservers/finalizers,verbs=update
// +kubebuilder:rbac:groups=auth.lpauth.dev,resources=tokenservers/status,verbs=get;patch;update
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=services;serviceaccounts,verbs=get;list;watch;create;update;patch;delete
// RBAC lets the operator grant token servers only what it holds itself, hence list and watch of
// ConfigMaps (the token server's branding informer; the operator watches branding ConfigMaps too).
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=monitoring.coreos.com,resources=servicemonitors,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;list;watch;create;update;patch;delete

// serverScope is what the phases of one TokenServer reconcile share.
type serverScope struct {
	ts         *v1alpha1.TokenServer
	deployment *appsv1.Deployment
	keyReady   bool
	// requeue is when the credentials Secret next needs a look (previous values expiring).
	requeue time.Duration
	// brandingProblem says why the branding is not applied (cosmetic: not a reason for Ready);
	// issuerProblem names the other TokenServers with the same issuer.
	brandingProblem, issuerProblem string
	// brandingInvalid: the ConfigMap exists, but some of its values are refused.
	brandingInvalid bool
	// checked: both looks above ran, so their conditions say what they found.
	checked bool
	// monitoring is set once applyWorkload decided about the ServiceMonitor: "" when it is
	// applied (or none is asked for), else why not.
	monitoring *monitoringProblem
}

// checkIssuerClaim: two TokenServers with one issuer both sign tokens with that iss and publish
// different keys at the same URL; LivePerson verifies against whichever the ingress routes to,
// so logins through either can fail. That can be a deliberate move between namespaces, so both
// are flagged (IssuerUnique False, a Warning), neither is stopped.
func (r *TokenServerReconciler) checkIssuerClaim(ctx context.Context, s *serverScope) error {
	ts := s.ts
	list := &v1alpha1.TokenServerList{}
	if err := r.List(ctx, list, client.MatchingFields{indexServerByIssuer: ts.Spec.Issuer}); err != nil {
		return fmt.Errorf("looking for other TokenServers with issuer %s: %w", ts.Spec.Issuer, err)
	}
	var others []string
	for i := range list.Items {
		// One whose deletion is held (its clients remain) still serves: it counts.
		if other := &list.Items[i]; other.UID != ts.UID {
			others = append(others, other.Namespace+"/"+other.Name)
		}
	}
	if len(others) == 0 {
		return nil
	}
	slices.Sort(others)
	if len(others) > 5 {
		others = append(others[:5], fmt.Sprintf("and %d more", len(others)-5))
	}
	s.issuerProblem = fmt.Sprintf("issuer %s is also served by TokenServer %s: LivePerson verifies tokens against whichever server its requests reach, so tokens signed by another fail; give each TokenServer its own issuer, or delete the one you moved away from", ts.Spec.Issuer, strings.Join(others, ", "))
	return nil
}

func (r *TokenServerReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, reterr error) {
	ts := &v1alpha1.TokenServer{}
	if err := r.Get(ctx, req.NamespacedName, ts); err != nil {
		if apierrors.IsNotFound(err) {
			r.status.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	r.status.catchUp(ts)
	if deleting, err := r.guardDeletion(ctx, ts); deleting || err != nil {
		// Once it goes, owner references hand everything it owns to the garbage collector.
		return ctrl.Result{}, err
	}
	r.annotations.warn(r.Recorder, ts, tokenServerAnnotations)
	base := ts.DeepCopy()
	s := &serverScope{ts: ts}
	// Read first, so Available tells what runs even when a later phase returns early.
	s.deployment = &appsv1.Deployment{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: ts.Namespace, Name: workload.Name(ts)}, s.deployment); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		s.deployment = nil
	}
	defer func() {
		reason, err, nr := settle(reterr)
		if nr != nil {
			reterr, result.RequeueAfter = nil, nr.retryAfter
			if warnNotReady(r.Recorder, ts, base.Status.Conditions, nr, &r.late, false) && result.RequeueAfter == 0 {
				result.RequeueAfter = waitGrace
			}
		}
		setServerStatus(ts, s.deployment, s.keyReady, reason, err)
		if s.checked {
			setBrandingCondition(ts, s.brandingProblem, s.brandingInvalid)
			setIssuerCondition(ts, s.issuerProblem)
		}
		if s.monitoring != nil {
			setServiceMonitorCondition(ts, *s.monitoring)
		}
		for _, t := range []string{v1alpha1.ConditionBrandingApplied, v1alpha1.ConditionIssuerUnique, v1alpha1.ConditionServiceMonitorReady} {
			// A Warning when it turns False or False for another reason, not on every reconcile.
			c, was := meta.FindStatusCondition(ts.Status.Conditions, t), meta.FindStatusCondition(base.Status.Conditions, t)
			if c != nil && c.Status == metav1.ConditionFalse && (was == nil || was.Status != metav1.ConditionFalse || was.Reason != c.Reason) {
				r.event(ts, corev1.EventTypeWarning, c.Reason, "Check", c.Message)
			}
		}
		if s.brandingProblem != "" && !s.brandingInvalid && (result.RequeueAfter == 0 || result.RequeueAfter > missingSecretRetry) {
			// A missing ConfigMap is outside the label-selected cache until it exists and is
			// labelled; once labelled, its changes arrive through the watch.
			result.RequeueAfter = missingSecretRetry
		}
		if err := r.status.write(ctx, r.Client, base, ts); err != nil {
			reterr = errors.Join(reterr, err)
		}
		if reterr == nil && s.requeue > 0 && (result.RequeueAfter == 0 || s.requeue < result.RequeueAfter) {
			result.RequeueAfter = s.requeue
		}
	}()

	// The two warnings first: their conditions are written whatever a later phase returns.
	if err := r.labelBranding(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.checkIssuerClaim(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	s.checked = true
	if err := r.ensureCredentials(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.checkSecretSetName(ctx, ts); err != nil {
		return ctrl.Result{}, err
	}
	startup, err := r.startupConfig(ctx, ts)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.labelLoginSecret(ctx, ts); err != nil {
		return ctrl.Result{}, err
	}
	if ts.Spec.Image == "" && r.Image == "" {
		return ctrl.Result{}, notReadyf(v1alpha1.ReasonInvalidSpec, "no image to run: set spec.image, or start the operator with --token-server-image (the manifests set it to the operator's own image)")
	}
	if !imageAllowed(ts.Spec.Image, r.Image, r.AllowedImages) {
		return ctrl.Result{}, notReadyf(v1alpha1.ReasonImageNotAllowed,
			"spec.image %q is not allowed: the token server's ServiceAccount reads signing keys, so only the operator's own image or images under the prefixes given to the operator with --allowed-token-server-images run; remove spec.image or ask the operator's administrator", ts.Spec.Image)
	}
	if err := r.applyWorkload(ctx, s, workload.Params{Image: r.Image, StartupConfig: startup}); err != nil {
		return ctrl.Result{}, err
	}
	if exposed := exposure(ts); exposed != "" && len(ts.Spec.TrustedProxyCIDRs) == 0 && ts.Generation != ts.Status.ObservedGeneration {
		// Behind the ingress or gateway every request comes from its proxy's address: the
		// per-address failure limits of /token and the login form then count everyone at once.
		r.event(ts, corev1.EventTypeWarning, v1alpha1.ReasonTrustedProxiesUnset, "Check",
			"spec."+exposed+" is set but spec.trustedProxyCIDRs is empty: set it to the addresses of the "+exposed+"'s proxies, or failed logins by anyone slow down everyone")
	}
	s.keyReady = r.signingKeyReady(ctx, ts)
	return ctrl.Result{}, nil
}

// imageAllowed: the operator's own image always; another only under an allowed prefix. A prefix
// that names a registry or repository must end with '/' or ':' so "registry.example/lpauth" does
// not also allow "registry.example/lpauth-evil".
func imageAllowed(image, own string, prefixes []string) bool {
	if image == "" || image == own {
		return true
	}
	for _, p := range prefixes {
		if p != "" && (strings.HasSuffix(p, "/") || strings.HasSuffix(p, ":") || strings.HasSuffix(p, "@")) && strings.HasPrefix(image, p) {
			return true
		}
		if p != "" && image == p {
			return true
		}
	}
	return false
}

func (r *TokenServerReconciler) event(ts *v1alpha1.TokenServer, kind, reason, action, note string) {
	if r.Recorder != nil {
		r.Recorder.Eventf(ts, nil, kind, reason, action, "%s", note)
	}
}

// ensureCredentials creates the credentials Secret once, never replaces a valid value, acts on a
// rotate-credentials request once, and removes each previous value when its own overlap is over:
// the code key once nothing it sealed can still be valid, the issue-API credential after
// spec.issueAPICredentialOverlap.
func (r *TokenServerReconciler) ensureCredentials(ctx context.Context, s *serverScope) error {
	ts := s.ts
	secret := &corev1.Secret{}
	err := r.Get(ctx, client.ObjectKey{Namespace: ts.Namespace, Name: credentials.SecretName(ts.Name)}, secret)
	if apierrors.IsNotFound(err) {
		return r.createCredentials(ctx, ts)
	}
	if err != nil {
		return err
	}
	if !metav1.IsControlledBy(secret, ts) {
		return r.adoptCredentials(ctx, ts, secret)
	}
	// Named in status once it exists: a later creation is then a regeneration (see
	// createCredentials).
	ts.Status.CredentialsSecretName = secret.Name
	before := secret.DeepCopy()
	replaced, err := workload.RepairCredentials(secret, rand.Reader)
	if err != nil {
		return err
	}
	now := r.Clock.Now()
	overlaps := workload.OverlapsFor(ts)
	rot, err := workload.RotateCredentials(secret, ts.Annotations[v1alpha1.AnnotationRotateCredentials], now, overlaps, rand.Reader)
	if err != nil {
		return err
	}
	// After a rotation this removes nothing and only says when the earlier overlap ends.
	removed, wait := workload.ExpirePrevious(secret, now)
	s.requeue = wait
	if equality.Semantic.DeepEqual(before, secret) {
		return nil
	}
	if err := r.Update(ctx, secret); err != nil {
		return fmt.Errorf("updating the credentials Secret: %w", err)
	}
	if len(replaced) > 0 {
		r.event(ts, corev1.EventTypeWarning, v1alpha1.ReasonCredentialsRepaired, "Repair",
			fmt.Sprintf("Secret %s had no usable %s: generated new ones (codes sealed with an old key no longer redeem; brand backends need the new issue-API credential)", secret.Name, strings.Join(replaced, ", ")))
	}
	if rot.Emergency {
		r.event(ts, corev1.EventTypeWarning, v1alpha1.ReasonCredentialsCut, "Rotate",
			fmt.Sprintf("New code key and issue-API credential in Secret %s, and no old one accepted any more, as %s=%s... asked: backends still sending an old credential are refused (told it was replaced), and codes and sign-ins in flight fail, so customers start again",
				secret.Name, v1alpha1.AnnotationRotateCredentials, v1alpha1.CutCredentialsPrefix))
	} else if rot.Rotated {
		r.event(ts, corev1.EventTypeNormal, v1alpha1.ReasonCredentialsRotated, "Rotate",
			fmt.Sprintf("New code key and issue-API credential in Secret %s; the previous code key is accepted for %s (as long as anything it sealed lives), the previous issue-API credential for %s (spec.issueAPICredentialOverlap): switch the brand's backends to the new one within that time",
				secret.Name, overlaps.CodeKey, overlaps.IssueAPI))
	}
	if len(rot.Cut) > 0 && !rot.Emergency {
		r.event(ts, corev1.EventTypeWarning, v1alpha1.ReasonPreviousCredentialsCut, "Rotate",
			fmt.Sprintf("This rotation came within the overlap of the one before: the %s that one replaced stopped being accepted now, not at the end of its overlap (only one previous value of each is kept: rotate again only once the brand's backends use the current credential)", previousNames(rot.Cut)))
	}
	if len(removed) > 0 {
		note := "The previous " + previousNames(removed) + " is no longer accepted"
		if len(removed) > 1 {
			note = "The previous " + previousNames(removed) + " are no longer accepted"
		}
		if slices.Contains(removed, credentials.PreviousIssueAPITokenKey) {
			note += "; a backend still sending the old credential is told it was replaced"
		}
		r.event(ts, corev1.EventTypeNormal, v1alpha1.ReasonPreviousCredentialsRemoved, "Rotate", note)
	}
	return nil
}

// previousNames names previous values of the credentials Secret for an event ("code key and
// issue-API credential").
func previousNames(keys []string) string {
	names := make([]string, 0, len(keys))
	for _, k := range keys {
		switch k {
		case credentials.PreviousCodeKeyKey:
			names = append(names, "code key")
		case credentials.PreviousIssueAPITokenKey:
			names = append(names, "issue-API credential")
		default:
			names = append(names, k)
		}
	}
	return strings.Join(names, " and ")
}

func (r *TokenServerReconciler) createCredentials(ctx context.Context, ts *v1alpha1.TokenServer) error {
	secret, err := workload.NewCredentials(ts, rand.Reader)
	if err != nil {
		return err
	}
	if err := r.Create(ctx, secret); err != nil {
		if apierrors.IsAlreadyExists(err) {
			// Not in the cache yet, or someone else's unlabelled Secret: look at the source.
			existing := &corev1.Secret{}
			if getErr := r.APIReader.Get(ctx, client.ObjectKeyFromObject(secret), existing); getErr == nil && !metav1.IsControlledBy(existing, ts) {
				return r.adoptCredentials(ctx, ts, existing)
			}
		}
		return fmt.Errorf("creating the credentials Secret: %w", err)
	}
	defer func() { ts.Status.CredentialsSecretName = secret.Name }()
	if ts.Status.CredentialsSecretName != "" {
		// It existed: deleted by hand. Codes in flight no longer redeem, and the brand's backends
		// hold a credential that is gone.
		r.event(ts, corev1.EventTypeWarning, v1alpha1.ReasonCredentialsRepaired, "Repair",
			fmt.Sprintf("Secret %s was deleted: generated a new code key and issue-API credential (codes issued before no longer redeem; brand backends need the new credential)", secret.Name))
		return nil
	}
	r.event(ts, corev1.EventTypeNormal, v1alpha1.ReasonCredentialsGenerated, "Generate", "Generated the code key and issue-API credential into Secret "+secret.Name)
	return nil
}

// checkSecretSetName: the secret set is written by its own reconciler, which stops at a Secret
// of its name that is neither this TokenServer's nor one it may take over; the token server then
// serves no client. Say so here, where the platform team looks.
func (r *TokenServerReconciler) checkSecretSetName(ctx context.Context, ts *v1alpha1.TokenServer) error {
	key := client.ObjectKey{Namespace: ts.Namespace, Name: secretset.Name(ts.Name)}
	cur := &corev1.Secret{}
	err := r.Get(ctx, key, cur)
	if apierrors.IsNotFound(err) {
		// Unlabelled, it is outside the cache.
		err = r.APIReader.Get(ctx, key, cur)
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return err
	case metav1.IsControlledBy(cur, ts) || secretSetTakeover(cur, ts):
		return nil
	}
	return &notReady{reason: v1alpha1.ReasonNameConflict, retryAfter: missingSecretRetry,
		err: fmt.Errorf("Secret %s exists and is not this TokenServer's (nor one the operator wrote for an earlier TokenServer of this name, of type %s): the token server serves no client until it is deleted", key.Name, secretset.SecretType)}
}

// adoptCredentials takes over a credentials Secret left by an earlier TokenServer of this name
// when the adopt-secret annotation names it, so the brand's backends keep their issue-API
// credential across a restore; otherwise it says why not. The Update brings the next reconcile.
func (r *TokenServerReconciler) adoptCredentials(ctx context.Context, ts *v1alpha1.TokenServer, secret *corev1.Secret) error {
	rs := restoredSecret{secret: secret, owner: ts, kind: "TokenServer", short: "ts", keeps: "code key and issue-API credential",
		ours: secret.Type == corev1.SecretTypeOpaque && hasLabels(secret, workload.SelectorLabels(ts))}
	if err := rs.adoption(); err != nil {
		return err
	}
	secret.Labels = mergeMaps(secret.Labels, workload.Labels(ts))
	secret.Labels[v1alpha1.LabelTokenServerReads] = "true"
	if err := controllerutil.SetControllerReference(ts, secret, r.Scheme); err != nil {
		return err
	}
	if err := r.Update(ctx, secret); err != nil {
		return fmt.Errorf("taking over the credentials Secret: %w", err)
	}
	r.event(ts, corev1.EventTypeWarning, v1alpha1.ReasonSecretAdopted, "Adopt", rs.adoptedMessage())
	return nil
}

// startupConfig is what the token server reads only when it starts: the Redis address. It is
// hashed onto the pod template, so a new address rolls the pods.
func (r *TokenServerReconciler) startupConfig(ctx context.Context, ts *v1alpha1.TokenServer) ([]byte, error) {
	rs := ts.Spec.ReplayStore
	if rs == nil || rs.Type != v1alpha1.ReplayStoreRedis || rs.Redis == nil {
		return nil, nil
	}
	ref := rs.Redis.AddressSecretRef
	secret, err := labelledSecret(ctx, r.Client, r.APIReader, ts.Namespace, ref.Name)
	if err != nil {
		return nil, err
	}
	v := secret.Data[ref.Key]
	if len(v) == 0 {
		return nil, notReadyf(v1alpha1.ReasonInvalidSecret, "Secret %s has no key %q with the Redis URL", ref.Name, ref.Key)
	}
	return v, nil
}

// labelLoginSecret makes the Secret a login connector reads (htpasswd, upstream client secret)
// visible to the token server, and says when it is missing.
func (r *TokenServerReconciler) labelLoginSecret(ctx context.Context, ts *v1alpha1.TokenServer) error {
	ref := secretset.LoginSecretRef(ts.Spec.Login)
	if ref == nil {
		return nil
	}
	secret, err := labelledSecret(ctx, r.Client, r.APIReader, ts.Namespace, ref.Name)
	if err != nil {
		return err
	}
	if len(secret.Data[ref.Key]) == 0 {
		return notReadyf(v1alpha1.ReasonInvalidSecret, "Secret %s has no key %q for spec.login", ref.Name, ref.Key)
	}
	return nil
}

// labelBranding makes the branding ConfigMap visible to the token server's label-selected cache.
// A missing one is cosmetic (the pages use the default look): it is reported in the
// BrandingApplied condition, never as not Ready.
func (r *TokenServerReconciler) labelBranding(ctx context.Context, s *serverScope) error {
	ts := s.ts
	if ts.Spec.Login == nil || ts.Spec.Login.BrandingConfigMapRef == nil {
		return nil
	}
	name := ts.Spec.Login.BrandingConfigMapRef.Name
	cm := &corev1.ConfigMap{}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: ts.Namespace, Name: name}, cm); err != nil {
		if apierrors.IsNotFound(err) {
			s.brandingProblem = fmt.Sprintf("branding ConfigMap %q not found in namespace %s: the pages use the default look", name, ts.Namespace)
			return nil
		}
		return err
	}
	// The same parser the token server renders with, so the condition says what the pages do.
	if _, errs := branding.Parse(cm.Data); len(errs) > 0 {
		s.brandingInvalid = true
		msgs := make([]string, len(errs))
		for i, err := range errs {
			msgs[i] = err.Error()
		}
		s.brandingProblem = fmt.Sprintf("branding ConfigMap %q: %s; the pages use the default for each value refused", name, strings.Join(msgs, "; "))
	}
	if cm.Labels[v1alpha1.LabelTokenServerReads] == "true" {
		return nil
	}
	patch := client.MergeFrom(cm.DeepCopy())
	metav1.SetMetaDataLabel(&cm.ObjectMeta, v1alpha1.LabelTokenServerReads, "true")
	return r.Patch(ctx, cm, patch)
}

// applyWorkload server-side applies every object the TokenServer needs and deletes the optional
// ones it no longer needs. Applying what is already there writes nothing.
func (r *TokenServerReconciler) applyWorkload(ctx context.Context, s *serverScope, p workload.Params) error {
	ts := s.ts
	ing, err := workload.Ingress(ts)
	if err != nil {
		return notReadyf(v1alpha1.ReasonInvalidSpec, "%v", err)
	}
	route, err := workload.HTTPRoute(ts)
	if err != nil {
		return notReadyf(v1alpha1.ReasonInvalidSpec, "%v", err)
	}
	gatewayAPI := r.gatewayAPI
	if route != nil && !gatewayAPI {
		return notReadyf(v1alpha1.ReasonGatewayAPIMissing, "spec.route needs the Gateway API CRDs (HTTPRoute, gateway.networking.k8s.io/v1), "+
			"which this cluster does not serve: install them (https://gateway-api.sigs.k8s.io) and restart the operator, or use spec.ingress")
	}
	deployment := workload.Deployment(ts, p)
	want := []client.Object{workload.ServiceAccount(ts), workload.Role(ts), workload.RoleBinding(ts), workload.Service(ts), deployment}
	var unwanted []client.Object
	if ing != nil {
		want = append(want, ing)
	} else {
		unwanted = append(unwanted, &networkingv1.Ingress{})
	}
	switch {
	case route != nil:
		want = append(want, route)
	case gatewayAPI:
		unwanted = append(unwanted, &gatewayv1.HTTPRoute{})
	}
	want, unwanted = r.serviceMonitor(s, want, unwanted)
	if pdb := workload.PodDisruptionBudget(ts); pdb != nil {
		want = append(want, pdb)
	} else {
		unwanted = append(unwanted, &policyv1.PodDisruptionBudget{})
	}
	for _, obj := range want {
		if err := r.apply(ctx, ts, obj); err != nil {
			return err
		}
	}
	for _, obj := range unwanted {
		if err := r.deleteOwned(ctx, ts, obj); err != nil {
			return err
		}
	}
	s.deployment = &appsv1.Deployment{}
	return client.IgnoreNotFound(r.Get(ctx, client.ObjectKeyFromObject(deployment), s.deployment))
}

// serviceMonitor adds the ServiceMonitor to want when asked for and the cluster serves the
// kind, or to unwanted when not asked for; and notes in s why not, for ServiceMonitorReady. A
// missing CRD does not make the TokenServer not Ready: LivePerson's logins do not need it.
func (r *TokenServerReconciler) serviceMonitor(s *serverScope, want, unwanted []client.Object) ([]client.Object, []client.Object) {
	served := r.serviceMonitors
	var problem monitoringProblem
	switch sm := workload.ServiceMonitor(s.ts); {
	case sm != nil && !served:
		problem = monitoringProblem{v1alpha1.ReasonServiceMonitorCRDMissing, "spec.monitoring.serviceMonitor needs the Prometheus Operator's ServiceMonitor CRD (monitoring.coreos.com/v1), which this cluster does not serve: " +
			"install it and restart the operator, or scrape port \"metrics\" of Service " + workload.Name(s.ts) + " another way"}
	case sm != nil:
		// Labels the API server would refuse are said here, not by failing the whole
		// workload: LivePerson's logins do not need the ServiceMonitor. The one applied
		// before, if any, stays.
		if errs := metav1validation.ValidateLabels(s.ts.Spec.Monitoring.ServiceMonitor.Labels, field.NewPath("spec", "monitoring", "serviceMonitor", "labels")); len(errs) > 0 {
			problem = monitoringProblem{v1alpha1.ReasonInvalidSpec, errs.ToAggregate().Error()}
			break
		}
		want = append(want, sm)
	case served:
		unwanted = append(unwanted, &monitoringv1.ServiceMonitor{})
	}
	s.monitoring = &problem
	return want, unwanted
}

// monitoringProblem is why ServiceMonitorReady is False (no message: it is True).
type monitoringProblem struct {
	reason, message string
}

func (r *TokenServerReconciler) apply(ctx context.Context, ts *v1alpha1.TokenServer, obj client.Object) error {
	kind := obj.GetObjectKind().GroupVersionKind().Kind
	existing, err := r.Scheme.New(obj.GetObjectKind().GroupVersionKind())
	if err != nil {
		return err
	}
	current := existing.(client.Object)
	err = r.Get(ctx, client.ObjectKeyFromObject(obj), current)
	if apierrors.IsNotFound(err) {
		// The cache holds only what we manage; an object of that name may still exist.
		err = r.APIReader.Get(ctx, client.ObjectKeyFromObject(obj), current)
	}
	switch {
	case err == nil && !metav1.IsControlledBy(current, ts):
		// The squatter is outside the cache, so its deletion is seen only by looking again.
		return &notReady{reason: v1alpha1.ReasonNameConflict, retryAfter: missingSecretRetry,
			err: fmt.Errorf("%s %s exists and is not owned by this TokenServer; delete or rename it", kind, obj.GetName())}
	case err != nil && !apierrors.IsNotFound(err):
		return err
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return err
	}
	// Typed objects carry empty status and creation time; neither is ours to apply.
	delete(u, "status")
	unstructured.RemoveNestedField(u, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u, "spec", "template", "metadata", "creationTimestamp")
	ac := client.ApplyConfigurationFromUnstructured(&unstructured.Unstructured{Object: u})
	if err := r.Client.Apply(ctx, ac, client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying %s %s: %w", kind, obj.GetName(), err)
	}
	return nil
}

// deleteOwned removes an optional object (Ingress, PDB) the spec no longer asks for, and only if
// this TokenServer owns it.
func (r *TokenServerReconciler) deleteOwned(ctx context.Context, ts *v1alpha1.TokenServer, obj client.Object) error {
	if err := r.Get(ctx, types.NamespacedName{Namespace: ts.Namespace, Name: workload.Name(ts)}, obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !metav1.IsControlledBy(obj, ts) {
		return nil
	}
	return client.IgnoreNotFound(r.Delete(ctx, obj, client.Preconditions{UID: ptrTo(obj.GetUID())}))
}

func ptrTo[T any](v T) *T { return &v }

// signingKeyReady: the token server cannot become ready without an Active key.
func (r *TokenServerReconciler) signingKeyReady(ctx context.Context, ts *v1alpha1.TokenServer) bool {
	sk := &v1alpha1.SigningKey{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: ts.Namespace, Name: ts.Spec.SigningKeyRef.Name}, sk); err != nil {
		return false
	}
	return sk.Status.ActiveKeyID != ""
}

// serverEndpoints are the URLs for status.
func serverEndpoints(issuer string) *v1alpha1.TokenServerEndpoints {
	u := endpoints.For(issuer)
	return &v1alpha1.TokenServerEndpoints{Authorization: u.Authorization, Token: u.Token, JWKS: u.JWKS, Discovery: u.Discovery, IssueAPI: u.IssueAPI}
}

// serversOfSecret maps a Secret to the TokenServers that refer to it (Redis address, login).
func (r *TokenServerReconciler) serversOfSecret(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &v1alpha1.TokenServerList{}
	if err := r.List(ctx, list, client.InNamespace(obj.GetNamespace())); err != nil {
		return mapped[client.Object](ctx, nil, err)
	}
	var out []reconcile.Request
	for _, ts := range list.Items {
		redis := ts.Spec.ReplayStore != nil && ts.Spec.ReplayStore.Redis != nil && ts.Spec.ReplayStore.Redis.AddressSecretRef.Name == obj.GetName()
		login := secretset.LoginSecretRef(ts.Spec.Login)
		if redis || (login != nil && login.Name == obj.GetName()) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&ts)})
		}
	}
	return out
}

// serversOfBranding maps a ConfigMap to the TokenServers whose pages it brands.
func (r *TokenServerReconciler) serversOfBranding(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &v1alpha1.TokenServerList{}
	if err := r.List(ctx, list, client.InNamespace(obj.GetNamespace())); err != nil {
		return mapped[client.Object](ctx, nil, err)
	}
	var out []reconcile.Request
	for _, ts := range list.Items {
		if ts.Spec.Login != nil && ts.Spec.Login.BrandingConfigMapRef != nil && ts.Spec.Login.BrandingConfigMapRef.Name == obj.GetName() {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&ts)})
		}
	}
	return out
}

// guardDeletion holds a TokenServer's deletion while clients use it.
func (r *TokenServerReconciler) guardDeletion(ctx context.Context, ts *v1alpha1.TokenServer) (bool, error) {
	var users []string
	if !ts.DeletionTimestamp.IsZero() {
		list := &v1alpha1.LivePersonAuthClientList{}
		if err := r.List(ctx, list, client.InNamespace(ts.Namespace), client.MatchingFields{indexClientByTokenServer: ts.Name}); err != nil {
			return true, fmt.Errorf("looking for the clients of TokenServer %s: %w", ts.Name, err)
		}
		for _, c := range list.Items {
			if c.DeletionTimestamp.IsZero() {
				users = append(users, c.Name)
			}
		}
		if len(users) > 20 {
			users = append(users[:20], fmt.Sprintf("and %d more", len(users)-20))
		}
	}
	base := ts.DeepCopy()
	deleting, err := guardDeletion(ctx, r.Client, r.Recorder, ts, &ts.Status.Conditions, users, "LivePersonAuthClient(s)")
	if err == nil && deleting {
		err = r.status.write(ctx, r.Client, base, ts)
	}
	return deleting, err
}

// sameIssuer maps a TokenServer created or deleted to the others with its issuer whose
// IssuerUnique must change: on a creation those not yet flagged, on a deletion the one left
// alone and those whose message names the deleted one. Re-checking every one of them each time
// would cost n reconciles per change, n² when n share an issuer (a test suite, a migration).
func (r *TokenServerReconciler) sameIssuer(ctx context.Context, obj client.Object, deleted bool) []reconcile.Request {
	ts := obj.(*v1alpha1.TokenServer)
	list := &v1alpha1.TokenServerList{}
	if err := r.List(ctx, list, client.MatchingFields{indexServerByIssuer: ts.Spec.Issuer}); err != nil {
		return mapped[client.Object](ctx, nil, err)
	}
	var others []*v1alpha1.TokenServer
	for i := range list.Items {
		if o := &list.Items[i]; o.UID != ts.UID {
			others = append(others, o)
		}
	}
	var out []reconcile.Request
	for _, o := range others {
		flagged := meta.FindStatusCondition(o.Status.Conditions, v1alpha1.ConditionIssuerUnique)
		var stale bool
		switch {
		case !deleted:
			stale = flagged == nil || flagged.Status != metav1.ConditionFalse
		case len(others) == 1:
			stale = true
		default:
			stale = flagged != nil && strings.Contains(flagged.Message, " "+ts.Namespace+"/"+ts.Name)
		}
		if stale {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)})
		}
	}
	return out
}

// serversOfKey maps a SigningKey to the TokenServers it signs for (the SigningKey index).
func (r *TokenServerReconciler) serversOfKey(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &v1alpha1.TokenServerList{}
	err := r.List(ctx, list, client.InNamespace(obj.GetNamespace()), client.MatchingFields{indexServerBySigningKey: obj.GetName()})
	servers := make([]*v1alpha1.TokenServer, len(list.Items))
	for i := range list.Items {
		servers[i] = &list.Items[i]
	}
	return mapped(ctx, servers, err)
}

// SetupWithManager watches TokenServers, everything they own, their SigningKey and Redis Secret.
func (r *TokenServerReconciler) SetupWithManager(mgr ctrl.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr)
	// Routes and ServiceMonitors are watched only where their CRDs are installed when the
	// operator starts (a watch of a kind the API server does not serve would keep the manager
	// from starting).
	if r.gatewayAPI {
		b = b.Owns(&gatewayv1.HTTPRoute{})
	}
	if r.serviceMonitors {
		b = b.Owns(&monitoringv1.ServiceMonitor{})
	}
	return b.
		For(&v1alpha1.TokenServer{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, deletionStarted))).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Owns(&corev1.ServiceAccount{}).
		Owns(&rbacv1.Role{}).
		Owns(&rbacv1.RoleBinding{}).
		Owns(&networkingv1.Ingress{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		// The secret set's shards are the SecretSetReconciler's: written up to four times a second
		// while clients arrive, each write would otherwise bring a reconcile here and five
		// server-side applies that change nothing but still cost the API server a write each.
		Owns(&corev1.Secret{}, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
			s, ok := o.(*corev1.Secret)
			return !ok || s.Type != secretset.SecretType
		}))).
		Watches(&v1alpha1.SigningKey{}, handler.EnqueueRequestsFromMapFunc(r.serversOfKey)).
		Watches(&v1alpha1.LivePersonAuthClient{}, handler.EnqueueRequestsFromMapFunc(serverOfClient), builder.WithPredicates(predicate.Funcs{
			CreateFunc: func(event.CreateEvent) bool { return false }, UpdateFunc: func(event.UpdateEvent) bool { return false },
			GenericFunc: func(event.GenericEvent) bool { return false }, DeleteFunc: func(event.DeleteEvent) bool { return true },
		})).
		// A TokenServer created or deleted changes whether the others with its issuer share it.
		// (The issuer is immutable, so updates never do; mapping them too would reconcile every
		// TokenServer of an issuer on each status write of any of them.)
		Watches(&v1alpha1.TokenServer{}, handler.Funcs{
			CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				for _, req := range r.sameIssuer(ctx, e.Object, false) {
					q.Add(req)
				}
			},
			DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				for _, req := range r.sameIssuer(ctx, e.Object, true) {
					q.Add(req)
				}
			},
		}).
		// Only labelled ConfigMaps are cached: a branding ConfigMap is labelled when first found.
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(r.serversOfBranding)).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.serversOfSecret)).
		Named("tokenserver").
		Complete(r)
}

// exposure names the field that puts a proxy in front of the token server ("" for none).
func exposure(ts *v1alpha1.TokenServer) string {
	switch {
	case ts.Spec.Ingress != nil:
		return "ingress"
	case ts.Spec.Route != nil:
		return "route"
	}
	return ""
}
