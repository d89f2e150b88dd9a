package controllers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/lpauth/lpauth-operator/api/clientsecret"
	"github.com/lpauth/lpauth-operator/api/jwe"
	"github.com/lpauth/lpauth-operator/api/secretset"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// LivePersonAuthClientReconciler gives each LivePerson account a client id and secret, checks
// what it refers to, and writes every value LivePerson's console needs into status.
type LivePersonAuthClientReconciler struct {
	client.Client
	// APIReader reads the brand's own Secrets, which are not in the cache until labelled.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  recorder.EventRecorder

	// status writes status right even when the cache lags behind its own last write.
	status      statusWriter
	annotations annotationWarner
	late        lateWarner
	// pending remembers since when a client waits for the token server's secret set.
	pending sync.Map // types.NamespacedName → time.Time
	// timingWarned remembers the SigningKey generations already warned about on the
	// SigningKey, so an edit that makes many clients' tokens outlive their keys is one event.
	timingWarned sync.Map // SigningKey UID → the generation last warned about (int64)
}

// warnTiming emits one Warning per cause when a client's TimingValid turns False: on the client
// when its own spec asks for a lifetime the key cannot cover (set in this generation), else on
// the SigningKey, once per generation of it, however many of its clients it affects (an edit
// of the key, or clients created with the default lifetime against it). The condition's
// transition is kept in status, so a restarted operator warns at most once more.
func (r *LivePersonAuthClientReconciler) warnTiming(base, c *v1alpha1.LivePersonAuthClient, sk *v1alpha1.SigningKey) {
	t := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionTimingValid)
	if t == nil || t.Status != metav1.ConditionFalse || meta.IsStatusConditionFalse(base.Status.Conditions, v1alpha1.ConditionTimingValid) {
		return
	}
	was := meta.FindStatusCondition(base.Status.Conditions, v1alpha1.ConditionTimingValid)
	ownChoice := c.Spec.IDToken.Lifetime.Duration != 0 && (was == nil || was.ObservedGeneration != c.Generation)
	if ownChoice || sk == nil || r.Recorder == nil {
		r.event(c, corev1.EventTypeWarning, t.Reason, "Check", t.Message)
		return
	}
	// One entry per SigningKey, its last warned generation: bounded by the SigningKeys.
	if prev, loaded := r.timingWarned.Swap(sk.UID, sk.Generation); !loaded || prev.(int64) != sk.Generation {
		r.Recorder.Eventf(sk, nil, corev1.EventTypeWarning, t.Reason, "Check",
			"%s (LivePersonAuthClient %s; each client of this key says so in its TimingValid condition)", t.Message, c.Name)
	}
}

// +kubebuilder:rbac:groups=auth.lpauth.dev,resources=livepersonauthclients,verbs=get;list;watch;patch;update
// +kubebuilder:rbac:groups=auth.lpauth.dev,resources=livepersonauthclients/status,verbs=get;patch;update
// +kubebuilder:rbac:groups=auth.lpauth.dev,resources=tokenservers,verbs=get;list;watch

// clientScope is what the phases of one client reconcile share.
type clientScope struct {
	c        *v1alpha1.LivePersonAuthClient
	clientID string
	ts       *v1alpha1.TokenServer
	sk       *v1alpha1.SigningKey
	secret   *v1alpha1.SecretKeyRef
	// secretValue is the client secret in effect (flow Code) and encryptionKeys LivePerson's
	// keys (when set), to check the token server has them.
	secretValue    []byte
	encryptionKeys map[string][]byte
}

// notReady is a user-facing reason the client cannot be Ready; Reconcile reports it in the
// condition and does not retry (a watch brings the client back when the cause changes).
type notReady struct {
	reason string
	err    error
	// retryAfter, when set, looks again after this long. Only for a missing brand Secret: one
	// re-created by hand lacks our label, so the label-filtered Secret watch cannot see it, and
	// caching every Secret of the cluster to find out would cost far more than this check; and
	// while the token server's secret set catches up with the client.
	retryAfter time.Duration
	// quiet looks again after retryAfter without writing status or an event: a wait expected to
	// end within seconds, not worth two status writes per new client.
	quiet bool
}

func (n *notReady) Error() string { return n.err.Error() }

func notReadyf(reason, format string, args ...any) error {
	return &notReady{reason: reason, err: fmt.Errorf(format, args...)}
}

// missingSecretRetry is how often a client whose brand Secret is missing looks for it again.
const missingSecretRetry = 10 * time.Second

func (r *LivePersonAuthClientReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, reterr error) {
	c := &v1alpha1.LivePersonAuthClient{}
	if err := r.Get(ctx, req.NamespacedName, c); err != nil {
		if apierrors.IsNotFound(err) {
			r.status.forget(req.NamespacedName)
			r.pending.Delete(req.NamespacedName)
			forgetConsole(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	r.status.catchUp(c)
	r.annotations.warn(r.Recorder, c, clientAnnotations)
	base := c.DeepCopy()
	s := &clientScope{c: c}

	defer func() {
		reason, err, nr := settle(reterr)
		if nr == nil || (nr.reason != v1alpha1.ReasonWaitingForTokenServer && nr.reason != v1alpha1.ReasonNotServed) {
			r.pending.Delete(req.NamespacedName)
		}
		if nr != nil {
			reterr, result.RequeueAfter = nil, nr.retryAfter
			if nr.quiet {
				return
			}
			// A wait on the TokenServer's readiness or its secret set is the TokenServer's to
			// report (thousands of clients share one).
			shared := nr.reason == v1alpha1.ReasonTokenServerNotReady || nr.reason == v1alpha1.ReasonWaitingForTokenServer
			if warnNotReady(r.Recorder, c, base.Status.Conditions, nr, &r.late, shared) && result.RequeueAfter == 0 {
				result.RequeueAfter = waitGrace
			}
		}
		setConsoleUpdateCondition(c, s.sk)
		setClientReady(c, reason, err)
		setClientTimingCondition(c, s.sk)
		r.reportConsole(base, c, s.sk)
		r.warnTiming(base, c, s.sk)
		c.Status.ObservedGeneration = c.Generation
		if err := r.status.write(ctx, r.Client, base, c); err != nil {
			reterr = errors.Join(reterr, err)
		}
	}()

	if err := validateClientSpec(c.Spec); err != nil {
		return ctrl.Result{}, &notReady{reason: v1alpha1.ReasonInvalidSpec, err: err}
	}
	if err := r.ensureClientID(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.checkClientIDClaim(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.resolveServer(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.ensureClientSecret(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.checkEncryption(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.checkServed(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	r.acknowledgeConsole(s)
	c.Status.ClientID, c.Status.ClientSecretRef = s.clientID, s.secret
	c.Status.LivePersonConsole = livePersonConsole(c.Spec, consoleInputs{
		issuer: s.ts.Spec.Issuer, clientID: s.clientID, secretRef: s.secret,
		activeSPKI: s.sk.Status.ActivePublicKey, hasPopoutLogin: s.ts.Spec.Login != nil,
	})
	return ctrl.Result{}, checkServerReady(s)
}

func (r *LivePersonAuthClientReconciler) event(c *v1alpha1.LivePersonAuthClient, kind, reason, action, note string) {
	if r.Recorder != nil {
		r.Recorder.Eventf(c, nil, kind, reason, action, "%s", note)
	}
}

// ensureClientID takes spec.clientID, or the generated id kept in an annotation, generating and
// storing it (before anything else refers to it) the first time.
func (r *LivePersonAuthClientReconciler) ensureClientID(ctx context.Context, s *clientScope) error {
	if s.clientID = s.c.Spec.ClientID; s.clientID != "" {
		return nil
	}
	s.clientID = s.c.Annotations[v1alpha1.AnnotationGeneratedClientID]
	if err := r.keepGeneratedClientID(ctx, s); err != nil || s.clientID != "" {
		return err
	}
	id, err := randomToken(16)
	if err != nil {
		return err
	}
	id = "lp-" + id
	// Optimistic lock: a reconcile working from a cache that has not yet seen an id generated
	// moments ago must fail and retry, not replace that id with another.
	patch := client.MergeFromWithOptions(s.c.DeepCopy(), client.MergeFromWithOptimisticLock{})
	metav1.SetMetaDataAnnotation(&s.c.ObjectMeta, v1alpha1.AnnotationGeneratedClientID, id)
	if err := r.Patch(ctx, s.c, patch); err != nil {
		return fmt.Errorf("storing the generated client id: %w", err)
	}
	s.clientID = id
	return nil
}

// keepGeneratedClientID puts back a generated client id edited in the annotation. The id the
// operator generated is recorded where editing the client cannot reach: the clientID key of its
// owned Secret (flow Code) and status. Editing the annotation would otherwise let whoever may
// edit one client take another's id (and, being older, its tokens' audience); the annotation
// alone is trusted only when neither record exists (a restore that dropped both).
func (r *LivePersonAuthClientReconciler) keepGeneratedClientID(ctx context.Context, s *clientScope) error {
	recorded := s.c.Status.ClientID
	secret := &corev1.Secret{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: s.c.Namespace, Name: v1alpha1.ClientSecretName(s.c.Name)}, secret); err == nil &&
		metav1.IsControlledBy(secret, s.c) && len(secret.Data[v1alpha1.ClientIDKey]) > 0 {
		recorded = string(secret.Data[v1alpha1.ClientIDKey])
	} else if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if recorded == "" || recorded == s.clientID {
		return nil
	}
	patch := client.MergeFromWithOptions(s.c.DeepCopy(), client.MergeFromWithOptimisticLock{})
	metav1.SetMetaDataAnnotation(&s.c.ObjectMeta, v1alpha1.AnnotationGeneratedClientID, recorded)
	if err := r.Patch(ctx, s.c, patch); err != nil {
		return fmt.Errorf("restoring the generated client id: %w", err)
	}
	r.event(s.c, corev1.EventTypeWarning, v1alpha1.ReasonGeneratedClientIDRestored, "Check",
		fmt.Sprintf("The %s annotation was changed (to %q): put back the generated client id %q that LivePerson's console holds", v1alpha1.AnnotationGeneratedClientID, s.clientID, recorded))
	s.clientID = recorded
	return nil
}

// checkClientIDClaim makes sure no older client of the same TokenServer claims this client id.
// Two clients with one id would let whoever creates the second (with its own redirect URIs and
// secret) receive tokens with the first one's audience; the token server serves only the older,
// by the same rule (v1alpha1.ClaimsBefore).
func (r *LivePersonAuthClientReconciler) checkClientIDClaim(ctx context.Context, s *clientScope) error {
	list := &v1alpha1.LivePersonAuthClientList{}
	if err := r.List(ctx, list, client.InNamespace(s.c.Namespace), client.MatchingFields{indexClientByClientID: clientIDKey(s.c)}); err != nil {
		return fmt.Errorf("looking for other clients with client id %q: %w", s.clientID, err)
	}
	for i := range list.Items {
		other := &list.Items[i]
		if other.Name != s.c.Name && other.DeletionTimestamp.IsZero() && v1alpha1.ClaimsBefore(other, s.c) {
			return notReadyf(v1alpha1.ReasonClientIDConflict,
				"client id %q is already used by LivePersonAuthClient %s of TokenServer %s, created earlier: this client is not served; set another spec.clientID",
				s.clientID, other.Name, s.c.Spec.TokenServerRef.Name)
		}
	}
	return nil
}

// randomToken returns n random bytes, base64url without padding: URL-safe and free of ':', so it
// works in a Basic authorization header as LivePerson sends it.
func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// resolveServer finds the TokenServer and, through it, the SigningKey with an Active key.
func (r *LivePersonAuthClientReconciler) resolveServer(ctx context.Context, s *clientScope) error {
	ts := &v1alpha1.TokenServer{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: s.c.Namespace, Name: s.c.Spec.TokenServerRef.Name}, ts); err != nil {
		if apierrors.IsNotFound(err) {
			return notReadyf(v1alpha1.ReasonTokenServerNotFound, "TokenServer %q not found in namespace %s", s.c.Spec.TokenServerRef.Name, s.c.Namespace)
		}
		return err
	}
	sk := &v1alpha1.SigningKey{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: s.c.Namespace, Name: ts.Spec.SigningKeyRef.Name}, sk); err != nil {
		if apierrors.IsNotFound(err) {
			return notReadyf(v1alpha1.ReasonSigningKeyNotFound, "SigningKey %q (of TokenServer %s) not found", ts.Spec.SigningKeyRef.Name, ts.Name)
		}
		return err
	}
	s.ts, s.sk = ts, sk
	if sk.Status.ActiveKeyID == "" {
		return notReadyf(v1alpha1.ReasonSigningKeyNotFound, "SigningKey %q has no active key yet", sk.Name)
	}
	return nil
}

// checkServerReady: the console values are worth pasting only once the TokenServer serves;
// until then LivePerson's requests fail whatever the client says. Checked after everything
// else, so the values are in status to prepare with.
func checkServerReady(s *clientScope) error {
	if c := meta.FindStatusCondition(s.ts.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
		why := "it has no status yet"
		if c != nil {
			why = c.Reason + ": " + c.Message
		}
		return notReadyf(v1alpha1.ReasonTokenServerNotReady, "TokenServer %s is not Ready (%s): LivePerson's requests for this client fail until it is; the console values below are ready to prepare", s.ts.Name, why)
	}
	return nil
}

// ensureClientSecret checks the brand's Secret, or keeps a generated one (flow Code only).
func (r *LivePersonAuthClientReconciler) ensureClientSecret(ctx context.Context, s *clientScope) error {
	if s.c.Spec.Flow != v1alpha1.FlowCode {
		return nil
	}
	if ref := s.c.Spec.ClientSecretRef; ref != nil {
		secret, err := r.readUserSecret(ctx, s.c.Namespace, ref.Name)
		if err != nil {
			return err
		}
		v := secret.Data[ref.Key]
		if len(v) == 0 {
			return notReadyf(v1alpha1.ReasonSecretNotFound, "Secret %s has no key %q", ref.Name, ref.Key)
		}
		if err := checkClientSecret(v); err != nil {
			return &notReady{reason: v1alpha1.ReasonInvalidSecret, err: fmt.Errorf("Secret %s key %q: %w", ref.Name, ref.Key, err)}
		}
		s.secret, s.secretValue = ref, v
		return nil
	}
	return r.ensureGeneratedSecret(ctx, s)
}

// checkClientSecret: see package clientsecret; the secret set leaves out what it refuses.
func checkClientSecret(v []byte) error { return clientsecret.Check(v) }

// readUserSecret reads one of the brand's Secrets uncached and labels it so the token server
// (and the operator's cache, hence its watches) see it.
func (r *LivePersonAuthClientReconciler) readUserSecret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	return labelledSecret(ctx, r.Client, r.APIReader, namespace, name)
}

// labelledSecret reads a brand's Secret uncached (the cache holds only labelled Secrets) and
// labels it for the token server, so from then on the caches and watches see it.
func labelledSecret(ctx context.Context, c client.Client, reader client.Reader, namespace, name string) (*corev1.Secret, error) {
	secret := &corev1.Secret{}
	if err := reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &notReady{reason: v1alpha1.ReasonSecretNotFound, retryAfter: missingSecretRetry,
				err: fmt.Errorf("Secret %q not found in namespace %s", name, namespace)}
		}
		return nil, err
	}
	if secret.Labels[v1alpha1.LabelTokenServerReads] != "true" {
		patch := client.MergeFrom(secret.DeepCopy())
		metav1.SetMetaDataLabel(&secret.ObjectMeta, v1alpha1.LabelTokenServerReads, "true")
		if err := c.Patch(ctx, secret, patch); err != nil {
			return nil, fmt.Errorf("labelling Secret %s for the token server: %w", name, err)
		}
	}
	return secret, nil
}

// ensureGeneratedSecret keeps the owned Secret with the client id and a 256-bit secret. An
// existing secret value is never replaced; a deleted Secret is generated anew, with a warning
// that LivePerson's console needs the new value.
func (r *LivePersonAuthClientReconciler) ensureGeneratedSecret(ctx context.Context, s *clientScope) error {
	name := v1alpha1.ClientSecretName(s.c.Name)
	s.secret = &v1alpha1.SecretKeyRef{Name: name, Key: v1alpha1.ClientSecretKey}
	secret := &corev1.Secret{}
	err := r.Get(ctx, client.ObjectKey{Namespace: s.c.Namespace, Name: name}, secret)
	switch {
	case apierrors.IsNotFound(err):
		return r.writeClientSecret(ctx, s, nil)
	case err != nil:
		return err
	}
	return r.writeClientSecret(ctx, s, secret)
}

// writeClientSecret makes existing (nil: none) the client's Secret: taken over if it is a
// restored one the client was told to adopt, its value kept if valid, the client id current.
func (r *LivePersonAuthClientReconciler) writeClientSecret(ctx context.Context, s *clientScope, existing *corev1.Secret) error {
	name := v1alpha1.ClientSecretName(s.c.Name)
	var adopted *restoredSecret
	if existing != nil {
		if !metav1.IsControlledBy(existing, s.c) {
			var err error
			if adopted, err = r.adoptClientSecret(s, existing); err != nil {
				return err
			}
		} else if checkClientSecret(existing.Data[v1alpha1.ClientSecretKey]) == nil && string(existing.Data[v1alpha1.ClientIDKey]) == s.clientID {
			s.secretValue = existing.Data[v1alpha1.ClientSecretKey]
			return nil
		}
	}
	want := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.c.Namespace}}
	if existing != nil {
		want = existing.DeepCopy()
	}
	value := want.Data[v1alpha1.ClientSecretKey]
	regenerated := checkClientSecret(value) != nil
	if regenerated {
		token, err := randomToken(32)
		if err != nil {
			return err
		}
		value = []byte(token)
	}
	want.Labels = mergeMaps(want.Labels, map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, v1alpha1.LabelTokenServerReads: "true"})
	want.Data = map[string][]byte{v1alpha1.ClientIDKey: []byte(s.clientID), v1alpha1.ClientSecretKey: value}
	if err := controllerutil.SetControllerReference(s.c, want, r.Scheme); err != nil {
		return err
	}
	var err error
	if want.ResourceVersion == "" {
		err = r.Create(ctx, want)
		if apierrors.IsAlreadyExists(err) {
			// Either the cache has not yet seen the Secret an earlier reconcile created moments
			// ago, or an unlabelled Secret (a restore, someone else's) is outside the cache: go by
			// the live one.
			live := &corev1.Secret{}
			if getErr := r.APIReader.Get(ctx, client.ObjectKeyFromObject(want), live); getErr == nil {
				return r.writeClientSecret(ctx, s, live)
			}
		}
	} else {
		err = r.Update(ctx, want)
	}
	if err != nil {
		return fmt.Errorf("writing the client Secret: %w", err)
	}
	s.secretValue = value
	switch {
	case adopted != nil && !regenerated:
		r.event(s.c, corev1.EventTypeWarning, v1alpha1.ReasonSecretAdopted, "Adopt", adopted.adoptedMessage())
	case regenerated && (s.c.Status.ClientSecretRef != nil || adopted != nil):
		r.event(s.c, corev1.EventTypeWarning, v1alpha1.ReasonClientSecretRegenerated, "Generate",
			fmt.Sprintf("Secret %s was deleted or damaged: generated a new client secret; paste it into LivePerson's console", name))
	}
	// A first secret, the usual case, has no Event: the Secret and status.clientSecretRef
	// record it, and one Event per new client was a quarter of the API writes at scale.
	// Events stay for what a person must act on (adopted, regenerated).
	return nil
}

// adoptClientSecret decides whether a client Secret that is not this client's may be taken
// over: one the operator wrote for an earlier client of this name with this client id, named
// by the adopt-secret annotation. Then LivePerson's console keeps working across a restore.
func (r *LivePersonAuthClientReconciler) adoptClientSecret(s *clientScope, secret *corev1.Secret) (*restoredSecret, error) {
	rs := &restoredSecret{secret: secret, owner: s.c, kind: "LivePersonAuthClient", short: "lpac", keeps: "client secret",
		ours: s.clientID != "" && string(secret.Data[v1alpha1.ClientIDKey]) == s.clientID}
	if err := rs.adoption(); err != nil {
		if nr := (*notReady)(nil); errors.As(err, &nr) && nr.reason == v1alpha1.ReasonInvalidSecret {
			if id := string(secret.Data[v1alpha1.ClientIDKey]); !rs.ours && s.c.Spec.ClientID == "" && leftByFormer(secret, s.c, "LivePersonAuthClient") && id != "" {
				// A restore that lost the generated-id annotation (the manifest came from Git).
				return nil, notReadyf(v1alpha1.ReasonInvalidSecret, "Secret %s was written for a client of this name with client id %q, not %q: if it is this client restored, set its %s annotation to %q (LivePerson's console holds that id), then adopt the Secret; otherwise delete the Secret",
					secret.Name, id, s.clientID, v1alpha1.AnnotationGeneratedClientID, id)
			}
			return nil, notReadyf(v1alpha1.ReasonInvalidSecret, "Secret %s exists and is not owned by this client; set spec.clientSecretRef to use it, or delete it", secret.Name)
		}
		return nil, err
	}
	return rs, nil
}

// checkEncryption checks LivePerson's encryption keys.
func (r *LivePersonAuthClientReconciler) checkEncryption(ctx context.Context, s *clientScope) error {
	enc := s.c.Spec.Encryption
	if enc == nil {
		return nil
	}
	secret, err := r.readUserSecret(ctx, s.c.Namespace, enc.KeysSecretRef.Name)
	if err != nil {
		return err
	}
	keys, err := jwe.ParseKeys(secret.Data)
	if err != nil {
		return notReadyf(v1alpha1.ReasonInvalidSecret, "encryption keys in Secret %s: %v", secret.Name, err)
	}
	if _, err := jwe.Select(keys, enc.KeyID); err != nil {
		return notReadyf(v1alpha1.ReasonInvalidSecret, "encryption keys in Secret %s: %v", secret.Name, err)
	}
	s.encryptionKeys = secret.Data
	return nil
}

// waitingOnAnother: reasons that only say another object is not there or not ready yet. They
// are said in status, not as Warning events: applying a set of objects in any order passes
// through them (no warnings on a normal apply), and thousands of clients wait on one
// TokenServer at once, whose own status and events say why.
func waitingOnAnother(reason string) bool {
	switch reason {
	case v1alpha1.ReasonWaitingForTokenServer, v1alpha1.ReasonTokenServerNotReady, v1alpha1.ReasonTokenServerNotFound, v1alpha1.ReasonSigningKeyNotFound, v1alpha1.ReasonSecretNotFound:
		return true
	}
	return false
}

// reportConsole says, once per change, that a PEM-mode client's console needs a key: a Warning
// when LivePerson already rejects its tokens, and the metrics either way. sk is the SigningKey
// the client signs with (nil when not found: the condition is then gone).
func (r *LivePersonAuthClientReconciler) reportConsole(base, c *v1alpha1.LivePersonAuthClient, sk *v1alpha1.SigningKey) {
	skName := ""
	if sk != nil {
		skName = sk.Name
	}
	observeConsole(c, skName)
	before := meta.FindStatusCondition(base.Status.Conditions, v1alpha1.ConditionConsoleUpdateRequired)
	after := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionConsoleUpdateRequired)
	if after == nil || after.Status != metav1.ConditionTrue {
		return
	}
	if before != nil && before.Status == after.Status && before.Reason == after.Reason && before.Message == after.Message {
		return
	}
	kind := corev1.EventTypeNormal
	if after.Reason == v1alpha1.ReasonConsoleKeyOutdated {
		kind = corev1.EventTypeWarning
	}
	r.event(c, kind, after.Reason, "Check", after.Message)
}

// servedGrace is how long a client may wait for the token server's secret set to carry it
// before it says NotServed: the set is rewritten every 250 ms at most, and while thousands of
// clients arrive every few seconds (its writes are paced by their size).
const servedGrace = 30 * time.Second

// checkServed: Ready means served. The token server reads client secrets (as digests) and
// encryption keys only from its secret set; until the set carries this client as it is now,
// LivePerson's requests for it fail, so the client is not Ready.
func (r *LivePersonAuthClientReconciler) checkServed(ctx context.Context, s *clientScope) error {
	key := client.ObjectKeyFromObject(s.c)
	var getErr error
	data, err := secretset.ClientData(s.ts.Name, s.c.Name, func(name string) (map[string][]byte, bool) {
		set := &corev1.Secret{}
		// Read only, and up to 1 MiB: no copy for each of thousands of clients.
		if err := r.Get(ctx, client.ObjectKey{Namespace: s.c.Namespace, Name: name}, set, client.UnsafeDisableDeepCopy); err != nil {
			if !apierrors.IsNotFound(err) {
				getErr = err
			}
			return nil, false
		}
		if !metav1.IsControlledBy(set, s.ts) {
			return nil, false // as the token server reads it: another Secret of the name is none
		}
		return set.Data, true
	})
	if getErr != nil {
		return getErr
	}
	if err == nil && secretset.Served(data, s.c, s.secretValue, s.encryptionKeys) {
		r.pending.Delete(key)
		return nil
	}
	since, _ := r.pending.LoadOrStore(key, time.Now())
	if time.Since(since.(time.Time)) < servedGrace {
		wait := &notReady{reason: v1alpha1.ReasonWaitingForTokenServer, retryAfter: 250 * time.Millisecond,
			err: fmt.Errorf("waiting for the token server's Secret %s to carry this client's current secret and keys", secretset.Name(s.ts.Name))}
		// A new client waits without a status write (it has no Ready yet); one that says Ready
		// says it no longer is until the token server has the change (a new secret or key).
		wait.quiet = !meta.IsStatusConditionTrue(s.c.Status.Conditions, v1alpha1.ConditionReady)
		return wait
	}
	return &notReady{reason: v1alpha1.ReasonNotServed, retryAfter: 5 * time.Second,
		err: fmt.Errorf("the token server's Secret %s does not carry this client's current secret or encryption keys after %s: LivePerson's requests for it fail; see the TokenServer's events", secretset.Name(s.ts.Name), servedGrace)}
}

// acknowledgeConsole keeps status.acknowledgedKeyID as the key LivePerson's console holds (PEM
// mode): the console-updated annotation when it names a key of the set, and otherwise, for a
// client that never acknowledged one, the Active key it was shown to paste when it became
// Ready. Whatever signs afterwards is compared with it.
func (r *LivePersonAuthClientReconciler) acknowledgeConsole(s *clientScope) {
	if s.c.Spec.PublicKeyMode != v1alpha1.PublicKeyPEM {
		s.c.Status.AcknowledgedKeyID = ""
		return
	}
	ack := s.c.Annotations[v1alpha1.AnnotationConsoleUpdated]
	if ack != "" && ack != s.c.Status.AcknowledgedKeyID {
		for _, k := range s.sk.Status.Keys {
			if k.KeyID == ack && k.State != v1alpha1.KeyRetired {
				s.c.Status.AcknowledgedKeyID = ack
				r.event(s.c, corev1.EventTypeNormal, v1alpha1.ReasonConsoleKeyAcknowledged, "Acknowledge",
					fmt.Sprintf("LivePerson's console holds key %s", ack))
				return
			}
		}
		if s.c.Status.RejectedAcknowledgement != ack { // warned once per value, not on every reconcile
			s.c.Status.RejectedAcknowledgement = ack
			r.event(s.c, corev1.EventTypeWarning, v1alpha1.ReasonConsoleKeyUnknown, "Acknowledge",
				fmt.Sprintf("%s=%q names no Active or Next key of SigningKey %s; the keys are %s", v1alpha1.AnnotationConsoleUpdated, ack, s.sk.Name, keyList(s.sk)))
		}
		// Still what the user says the console holds (after a restore that made new keys, the
		// key it names is gone): compared with the key that signs, it says the console is out
		// of date rather than pretending it is not.
		if len(ack) <= 128 {
			s.c.Status.AcknowledgedKeyID = ack
		}
		return
	} else {
		s.c.Status.RejectedAcknowledgement = ""
	}
	if s.c.Status.AcknowledgedKeyID == "" {
		s.c.Status.AcknowledgedKeyID = s.sk.Status.ActiveKeyID
	}
}

// keyList names the keys one may acknowledge, for a message.
func keyList(sk *v1alpha1.SigningKey) string {
	var out []string
	for _, k := range sk.Status.Keys {
		if k.State != v1alpha1.KeyRetired {
			out = append(out, fmt.Sprintf("%s (%s)", k.KeyID, k.State))
		}
	}
	if len(out) == 0 {
		return "none yet"
	}
	return strings.Join(out, ", ")
}

// SetupWithManager watches clients and everything they refer to.
func (r *LivePersonAuthClientReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.LivePersonAuthClient{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&corev1.Secret{}).
		Watches(&v1alpha1.TokenServer{}, handler.EnqueueRequestsFromMapFunc(r.clientsOfServer)).
		Watches(&v1alpha1.SigningKey{}, handler.EnqueueRequestsFromMapFunc(r.clientsOfKey)).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.clientsOfSecret)).
		Watches(&v1alpha1.LivePersonAuthClient{}, handler.EnqueueRequestsFromMapFunc(r.sameClientID),
			builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		// Each reconcile waits on a few API writes: more workers keep the API server busy when
		// thousands of clients arrive at once.
		WithOptions(controller.Options{MaxConcurrentReconciles: 16}).
		Named("livepersonauthclient").
		Complete(r)
}
