// Package controllers holds one reconciler per kind, with pure builders and status setters
// beside each.
package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/lpauth/lpauth-operator/api/keys"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/controllers/rotation"
)

// SigningKeyReconciler keeps each SigningKey's Secret holding a safely rotating key set and
// mirrors its public facts into status. The Secret is the source of truth and is always written
// before status.
type SigningKeyReconciler struct {
	client.Client
	// APIReader reads the key Secret uncached, so a reconcile never acts on a stale copy of the
	// one object that holds the keys.
	APIReader   client.Reader
	Scheme      *runtime.Scheme
	Recorder    recorder.EventRecorder
	Clock       clock.PassiveClock
	pool        *keyPool
	annotations annotationWarner
	// status writes status right even when the cache lags behind its own last write.
	status statusWriter
	late   lateWarner
}

// NewSigningKeyReconciler returns a reconciler that generates keys with generate (keys.Generate
// when nil) and reads the time from clk (the real clock when nil).
func NewSigningKeyReconciler(c client.Client, apiReader client.Reader, scheme *runtime.Scheme, rec recorder.EventRecorder, clk clock.PassiveClock, generate KeyGenerator) *SigningKeyReconciler {
	if clk == nil {
		clk = clock.RealClock{}
	}
	if generate == nil {
		generate = keys.Generate
	}
	return &SigningKeyReconciler{Client: c, APIReader: apiReader, Scheme: scheme, Recorder: rec, Clock: clk, pool: newKeyPool(generate)}
}

// +kubebuilder:rbac:groups=auth.lpauth.dev,resources=signingkeys,verbs=get;list;watch;patch;update
// +kubebuilder:rbac:groups=auth.lpauth.dev,resources=signingkeys/finalizers,verbs=update
// +kubebuilder:rbac:groups=auth.lpauth.dev,resources=livepersonauthclients,verbs=get;list;watch
// +kubebuilder:rbac:groups=auth.lpauth.dev,resources=signingkeys/status,verbs=get;patch;update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// skScope is what the phases of one SigningKey reconcile share.
type skScope struct {
	sk      *v1alpha1.SigningKey
	now     time.Time
	secret  *corev1.Secret // nil when it does not exist yet
	set     []keys.Key     // the keys read from the Secret, then the keys stored
	repairs []string       // what was wrong with the Secret
	handled struct{ rotate, revoke string }
	// record is the operator's own record Secret (nil when it does not exist yet) and recorded
	// the keys it lists, public parts only.
	record   *corev1.Secret
	recorded []keys.Key
	// revoked is the deny-list: every kid ever revoked, from the key Secret's annotation and the
	// record, so losing either keeps it. No key on it is ever published again.
	revoked []string
	// revoke are the kids the revoke annotation asks for that are not revoked yet; ignored says
	// what of the annotation was not acted on.
	revoke, ignored []string
	// adopted is set when this reconcile takes over a restored key Secret.
	adopted bool
	// notes are events about the requests themselves (held or forced rotations), emitted with the
	// lifecycle's own once the step is stored.
	notes []rotation.Event
	// pemClients counts the PEM-mode clients signing with this key; acknowledged is set when all
	// of them acknowledged the Next key as pasted into LivePerson's console.
	pemClients   int
	acknowledged bool
	// earlyUntil and lastRepair are kept in the Secret, not read back from status: status comes
	// from a cache that may lag behind the operator's own last write.
	earlyUntil time.Time
	lastRepair repairRecord
	result     rotation.Result
}

func (r *SigningKeyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, reterr error) {
	sk := &v1alpha1.SigningKey{}
	if err := r.Get(ctx, req.NamespacedName, sk); err != nil {
		if apierrors.IsNotFound(err) {
			// The Secret goes with its owner reference; only our memory is left to clean.
			r.status.forget(req.NamespacedName)
			forgetSigningKey(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	r.status.catchUp(sk)
	r.annotations.warn(r.Recorder, sk, signingKeyAnnotations)
	if deleting, err := r.guardDeletion(ctx, sk); deleting || err != nil {
		return ctrl.Result{}, err
	}
	base := sk.DeepCopy()
	// Whole seconds: status times are stored to the second, so finer times would make every
	// reconcile see a change and write status again.
	s := &skScope{sk: sk, now: r.Clock.Now().UTC().Truncate(time.Second)}

	defer func() {
		setSigningKeyReady(sk, reterr)
		if _, _, nr := settle(reterr); nr != nil {
			// The user's move: said in status (and once as an event), not retried.
			warnNotReady(r.Recorder, sk, base.Status.Conditions, nr, &r.late, false)
			reterr = nil
		}
		sk.Status.ObservedGeneration = sk.Generation
		if err := r.status.write(ctx, r.Client, base, sk); err != nil {
			reterr = errors.Join(reterr, err)
		}
		observeSigningKey(sk)
	}()

	if err := r.readKeys(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.readRecord(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	s.denyRevoked()
	s.recoverFromRecord()
	if err := r.readConsoleClients(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.advance(s); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.storeKeys(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	r.emitEvents(s)
	// After the keys: a crash in between leaves a record that misses the newest change, which
	// the next reconcile writes; the deny-list is in the key Secret already.
	if err := r.storeRecord(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	if err := setKeyStatus(sk, s.set, keys.SecretName(sk.Name), s.result.NextRotation, s.handled.rotate, s.handled.revoke, s.revoked); err != nil {
		return ctrl.Result{}, err
	}
	setRotatingCondition(sk, s.set, s.earlyUntil, s.result.HeldDue, s.now)
	setDegradedCondition(sk, s.lastRepair, s.set, s.now, sk.Spec.Rotation.RetainAfterRetire.Duration)
	setTimingCondition(sk)
	return requeueAt(s.now, s.result.NextDue), nil
}

// recheck bounds the wait between two looks at a SigningKey: its record Secret is not in the
// operator's label-selected cache, so a deleted record is noticed by this look, not a watch.
const recheck = time.Hour

// guardDeletion holds a SigningKey's deletion while TokenServers sign with it.
func (r *SigningKeyReconciler) guardDeletion(ctx context.Context, sk *v1alpha1.SigningKey) (bool, error) {
	var users []string
	if !sk.DeletionTimestamp.IsZero() {
		list := &v1alpha1.TokenServerList{}
		if err := r.List(ctx, list, client.InNamespace(sk.Namespace), client.MatchingFields{indexServerBySigningKey: sk.Name}); err != nil {
			return true, fmt.Errorf("looking for TokenServers of SigningKey %s: %w", sk.Name, err)
		}
		for _, ts := range list.Items {
			users = append(users, ts.Name)
		}
	}
	base := sk.DeepCopy()
	deleting, err := guardDeletion(ctx, r.Client, r.Recorder, sk, &sk.Status.Conditions, users, "TokenServer(s)")
	if err == nil && deleting {
		err = r.status.write(ctx, r.Client, base, sk)
	}
	return deleting, err
}

// requeueAt asks to be called again at due, the next rotation or removal, and at least once per
// recheck.
func requeueAt(now, due time.Time) ctrl.Result {
	if due.IsZero() || due.Sub(now) > recheck {
		return ctrl.Result{RequeueAfter: recheck}
	}
	return ctrl.Result{RequeueAfter: max(due.Sub(now), time.Second)}
}

// readKeys reads the Secret and keeps every key it can parse.
func (r *SigningKeyReconciler) readKeys(ctx context.Context, s *skScope) error {
	secret := &corev1.Secret{}
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: s.sk.Namespace, Name: keys.SecretName(s.sk.Name)}, secret)
	switch {
	case apierrors.IsNotFound(err):
		if len(s.sk.Status.Keys) > 0 {
			s.repairs = append(s.repairs, "the Secret was deleted")
		}
		return nil
	case err != nil:
		return fmt.Errorf("reading the key Secret: %w", err)
	}
	if !metav1.IsControlledBy(secret, s.sk) {
		if !adoptable(secret, s.sk, v1alpha1.SecretTypeSigningKeys) {
			return fmt.Errorf("secret %s exists and is not this SigningKey's (type %s, label %s=%s, and no other owner are needed to take it over); delete or rename it",
				secret.Name, v1alpha1.SecretTypeSigningKeys, v1alpha1.LabelSigningKey, s.sk.Name)
		}
		// A restore: the SigningKey was re-created, its keys were not. Taking them over keeps
		// every key LivePerson trusts, but only when someone allowed to edit this SigningKey
		// says so: whoever may merely create Secrets must not be able to plant the keys it signs
		// with.
		if s.sk.Annotations[v1alpha1.AnnotationAdoptKeys] != string(secret.UID) {
			return &notReady{reason: v1alpha1.ReasonKeysFound, err: fmt.Errorf(
				"secret %s holds keys labelled for this SigningKey (restored from a backup?); to take them over and keep every key LivePerson trusts, run `kubectl annotate sk/%s %s=%s`, or delete the Secret to start with new keys",
				secret.Name, s.sk.Name, v1alpha1.AnnotationAdoptKeys, secret.UID)}
		}
		secret.OwnerReferences = withoutOwnersOfKind(secret.OwnerReferences, "SigningKey")
		s.adopted = true
		s.notes = append(s.notes, rotation.Event{Warning: true, Reason: v1alpha1.ReasonKeysAdopted, Message: fmt.Sprintf("Took over the keys of Secret %s, as %s asked", secret.Name, v1alpha1.AnnotationAdoptKeys)})
	}
	s.secret = secret
	s.set, s.repairs = keys.Decode(secret.Data)
	s.handled.rotate = secret.Annotations[v1alpha1.AnnotationHandledRotate]
	s.handled.revoke = secret.Annotations[v1alpha1.AnnotationHandledRevoke]
	denied, _ := keys.ParseKIDs(secret.Annotations[v1alpha1.AnnotationRevokedKeys])
	s.revoked = keys.AddRevoked(denied)
	if _, hasList := secret.Annotations[v1alpha1.AnnotationRevokedKeys]; !hasList && keys.IsKID(s.handled.revoke) {
		// Written by an operator from before the deny-list: the last handled revoke was all it kept.
		s.revoked = keys.AddRevoked(s.revoked, s.handled.revoke)
	}
	s.earlyUntil, _ = time.Parse(time.RFC3339, secret.Annotations[v1alpha1.AnnotationEarlyUntil])
	s.lastRepair = parseRepair(secret.Annotations[v1alpha1.AnnotationLastRepair])
	return nil
}

// adoptable: a Secret of ours left without its SigningKey — our type, labelled with this
// SigningKey's name, and either ownerless or controlled only by a SigningKey of this name that
// no longer exists (another UID). Anything else is someone else's and never taken over.
func adoptable(secret *corev1.Secret, sk *v1alpha1.SigningKey, secretType corev1.SecretType) bool {
	if secret.Type != secretType || secret.Labels[v1alpha1.LabelSigningKey] != sk.Name {
		return false
	}
	owner := metav1.GetControllerOf(secret)
	return owner == nil || (owner.Kind == "SigningKey" && owner.APIVersion == v1alpha1.GroupVersion.String() && owner.Name == sk.Name && owner.UID != sk.UID)
}

// recordMatches: every key of the record is in the key Secret, with the same public key (the
// kid is its thumbprint).
func recordMatches(record, set []keys.Key) bool {
	have := map[string]bool{}
	for _, k := range set {
		have[k.ID()] = true
	}
	for _, k := range record {
		if !have[k.ID()] {
			return false
		}
	}
	return true
}

// readRecord reads the operator's record Secret uncached. A record that is not ours (no
// controller reference to this SigningKey) is never trusted: it could publish anyone's key.
func (r *SigningKeyReconciler) readRecord(ctx context.Context, s *skScope) error {
	secret := &corev1.Secret{}
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: s.sk.Namespace, Name: keys.RecordSecretName(s.sk.Name)}, secret)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("reading the key record Secret: %w", err)
	}
	set, revoked, problems := keys.DecodeRecord(secret.Data[keys.RecordDataKey])
	if !metav1.IsControlledBy(secret, s.sk) {
		// Taken over only with the key Secret it describes (an adopted one), and only if every
		// key it lists is in that Secret: a record alone could publish anyone's key.
		if !adoptable(secret, s.sk, v1alpha1.SecretTypeKeyRecord) || !s.adopted || !recordMatches(set, s.set) {
			return fmt.Errorf("secret %s exists and is not this SigningKey's key record; delete it (the operator writes a new one)", secret.Name)
		}
		secret.OwnerReferences = withoutOwnersOfKind(secret.OwnerReferences, "SigningKey")
	}
	s.record = secret
	s.recorded = set
	s.revoked = keys.AddRevoked(s.revoked, revoked...)
	for _, p := range problems {
		s.repairs = append(s.repairs, "key record: "+p)
	}
	return nil
}

// denyRevoked drops from the key set every key on the deny-list (a Secret restored from a backup
// taken before a revoke, or edited by hand), and queues the kids the revoke annotation asks for.
func (s *skScope) denyRevoked() {
	kept := s.set[:0:0]
	for _, k := range s.set {
		if slices.Contains(s.revoked, k.ID()) {
			s.repairs = append(s.repairs, fmt.Sprintf("key %s was revoked and is not published again", k.ID()))
			continue
		}
		kept = append(kept, k)
	}
	s.set = kept
	v := s.sk.Annotations[v1alpha1.AnnotationRevoke]
	if v == "" || truncateAnnotation(v) == s.handled.revoke {
		return // handled (the stored value is cut to 256 bytes)
	}
	kids, invalid := keys.ParseKIDs(v)
	for _, bad := range invalid {
		s.ignored = append(s.ignored, fmt.Sprintf("%.64q is not a kid (43 base64url characters, listed in status.keys)", bad))
	}
	if len(kids) > keys.MaxRevokeRequest {
		s.ignored = append(s.ignored, fmt.Sprintf("%d kids listed, at most %d are acted on", len(kids), keys.MaxRevokeRequest))
		kids = kids[:keys.MaxRevokeRequest]
	}
	for _, kid := range kids {
		if !slices.Contains(s.revoked, kid) {
			s.revoke = append(s.revoke, kid)
		}
	}
	s.handled.revoke = v
}

// recoverFromRecord puts back, public part only, every key the record lists as published
// (Active or Retired) that the key Secret lost. Such a key never signs again, but tokens it
// signed keep verifying until they expire, and never longer than RetainAfterRetire from now.
// A lost Next key never signed and is simply replaced. SigningKey status is never read for
// keys: whoever may patch signingkeys/status could otherwise publish a key of their own.
func (s *skScope) recoverFromRecord() {
	have := map[string]bool{}
	for _, k := range s.set {
		have[k.ID()] = true
	}
	limit := s.now.Add(s.sk.Spec.Rotation.RetainAfterRetire.Duration)
	for _, rk := range s.recorded {
		if have[rk.ID()] || rk.State == v1alpha1.KeyNext || slices.Contains(s.revoked, rk.ID()) {
			continue
		}
		k := rk
		k.JWK = keys.PublicJWK(rk)
		if k.State != v1alpha1.KeyRetired || k.RemoveAt.IsZero() {
			k.RetiresAt, k.RemoveAt = s.now, limit
		}
		k.State = v1alpha1.KeyRetired
		if k.RemoveAt.After(limit) {
			k.RemoveAt = limit
		}
		if !s.now.Before(k.RemoveAt) {
			continue
		}
		s.set = append(s.set, k)
		s.repairs = append(s.repairs, fmt.Sprintf("key %s restored from the key record without its private part", k.ID()))
	}
	keys.Sort(s.set)
}

// readConsoleClients finds the PEM-mode clients of this key (through their TokenServers) and
// whether every one of them acknowledged the Next key.
func (r *SigningKeyReconciler) readConsoleClients(ctx context.Context, s *skScope) error {
	var next string
	for _, k := range s.set {
		if k.State == v1alpha1.KeyNext {
			next = k.ID()
		}
	}
	s.acknowledged = next != ""
	clients, err := clientsOfKey(ctx, r.Client, s.sk.Namespace, s.sk.Name)
	if err != nil {
		// Counting none would rotate a key PEM-mode clients' consoles still hold.
		return err
	}
	for _, c := range clients {
		if c.Spec.PublicKeyMode != v1alpha1.PublicKeyPEM || !c.DeletionTimestamp.IsZero() {
			continue
		}
		s.pemClients++
		if c.Annotations[v1alpha1.AnnotationConsoleUpdated] != next {
			s.acknowledged = false
		}
	}
	return nil
}

// advance runs one step of the lifecycle with the requests from the annotations.
func (r *SigningKeyReconciler) advance(s *skScope) error {
	spec := s.sk.Spec
	bits := 2048
	if spec.RSAKeySize != nil {
		bits = int(*spec.RSAKeySize)
	}
	alg := spec.Algorithm
	if alg == "" {
		alg = v1alpha1.RS256
	}
	var req rotation.Requests
	if v := s.sk.Annotations[v1alpha1.AnnotationRotate]; v != "" && v != s.handled.rotate {
		s.handled.rotate = v
		switch {
		case s.pemClients > 0 && !s.acknowledged && !strings.HasPrefix(v, v1alpha1.ForceRotatePrefix):
			// LivePerson's console pins one key for PEM-mode clients: rotating now would fail
			// every token until someone pastes the new key. Held like a scheduled rotation.
			s.notes = append(s.notes, rotation.Event{Reason: v1alpha1.ReasonRotationHeld, Message: fmt.Sprintf(
				"Rotation %q waits: %d PEM-mode client(s) must acknowledge the Next key first (their ConsoleUpdateRequired condition says how), or annotate %s=%s<anything> to rotate now and break their logins until their console is updated",
				v, s.pemClients, v1alpha1.AnnotationRotate, v1alpha1.ForceRotatePrefix)})
		case s.pemClients > 0 && !s.acknowledged:
			req.Rotate = true
			s.notes = append(s.notes, rotation.Event{Warning: true, Reason: v1alpha1.ReasonForcedRotationBreaksPEMClients, Message: fmt.Sprintf(
				"Forced rotation %q: %d PEM-mode client(s) hold the old key in LivePerson's console; LivePerson rejects their tokens until the new key is pasted (see each client's ConsoleUpdateRequired)", v, s.pemClients)})
		default:
			req.Rotate = true
		}
	}
	if len(s.revoke) > 0 {
		req.Revoke = s.revoke
		s.revoked = keys.AddRevoked(s.revoked, s.revoke...)
		if active, ok := keys.Active(s.set); ok && s.pemClients > 0 && slices.Contains(s.revoke, active.ID()) {
			s.notes = append(s.notes, rotation.Event{Warning: true, Reason: v1alpha1.ReasonRevokeBreaksPEMClients, Message: fmt.Sprintf(
				"Revoked the Active key %s: %d PEM-mode client(s) hold it in LivePerson's console; LivePerson rejects their tokens until the new key is pasted (see each client's ConsoleUpdateRequired)", active.ID(), s.pemClients)})
		}
	}
	if s.pemClients > 0 && s.acknowledged {
		// The console already holds the Next key: sign with it now, or LivePerson fails every
		// token until the scheduled time.
		req.Rotate = true
	}
	policy := rotation.Policy{
		Algorithm: alg, RSABits: bits,
		Every: spec.Rotation.Every.Duration, PublishAhead: spec.Rotation.PublishAhead.Duration,
		RetainAfterRetire: spec.Rotation.RetainAfterRetire.Duration,
		Paused:            spec.Rotation.Paused,
		Held:              s.pemClients > 0,
	}
	res, err := rotation.Advance(s.set, s.now, policy, req, r.pool.generator(s.sk.UID, alg, bits))
	if err != nil {
		return fmt.Errorf("generating a key: %w", err)
	}
	s.result = res
	if active, ok := keys.Active(res.Keys); ok && res.Early {
		s.earlyUntil = active.ActivatesAt.Add(policy.PublishAhead)
	}
	if !s.earlyUntil.After(s.now) {
		s.earlyUntil = time.Time{}
	}
	if len(s.repairs) > 0 {
		s.lastRepair = repairRecord{at: s.now, what: joinLimited(s.repairs, 5)}
	}
	return nil
}

// storeKeys writes the new set to the Secret when anything changed. Optimistic concurrency
// (resourceVersion) turns a concurrent writer into a conflict and a retry, never a lost key.
func (r *SigningKeyReconciler) storeKeys(ctx context.Context, s *skScope) error {
	data, err := keys.Encode(s.result.Keys)
	if err != nil {
		return err
	}
	want := &corev1.Secret{}
	if s.secret != nil {
		want = s.secret.DeepCopy()
	}
	want.Name, want.Namespace = keys.SecretName(s.sk.Name), s.sk.Namespace
	want.Type = v1alpha1.SecretTypeSigningKeys
	want.Labels = mergeMaps(want.Labels, map[string]string{
		v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, v1alpha1.LabelSigningKey: s.sk.Name,
		v1alpha1.LabelTokenServerReads: "true",
	})
	want.Annotations = mergeMaps(want.Annotations, map[string]string{
		v1alpha1.AnnotationHandledRotate: s.handled.rotate, v1alpha1.AnnotationHandledRevoke: truncateAnnotation(s.handled.revoke),
		v1alpha1.AnnotationRevokedKeys: strings.Join(s.revoked, ","),
		v1alpha1.AnnotationEarlyUntil:  formatTime(s.earlyUntil), v1alpha1.AnnotationLastRepair: s.lastRepair.String(),
	})
	want.Data = data
	if err := controllerutil.SetControllerReference(s.sk, want, r.Scheme); err != nil {
		return err
	}
	switch {
	case s.secret == nil:
		err = r.Create(ctx, want)
	case !equality.Semantic.DeepEqual(s.secret, want):
		err = r.Update(ctx, want)
	}
	if err != nil {
		return fmt.Errorf("writing the key Secret: %w", err)
	}
	r.pool.stored(s.sk.UID, s.result.Keys)
	s.set = s.result.Keys
	keys.Sort(s.set)
	return nil
}

// storeRecord writes the record Secret when it would change: the public part and times of every
// published key, and the deny-list.
func (r *SigningKeyReconciler) storeRecord(ctx context.Context, s *skScope) error {
	data, err := keys.EncodeRecord(s.set, s.revoked)
	if err != nil {
		return err
	}
	want := &corev1.Secret{}
	if s.record != nil {
		want = s.record.DeepCopy()
	}
	want.Name, want.Namespace = keys.RecordSecretName(s.sk.Name), s.sk.Namespace
	want.Type = v1alpha1.SecretTypeKeyRecord
	// In the operator's Secret cache (the label), so a deleted record is written again at once
	// through the Owns watch, not at the next hourly look. The token server cannot read it: its
	// Role names the Secrets it reads (its key Secret, credentials and secret set shards).
	want.Labels = mergeMaps(want.Labels, map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, v1alpha1.LabelSigningKey: s.sk.Name,
		v1alpha1.LabelTokenServerReads: "true"})
	want.Data = map[string][]byte{keys.RecordDataKey: data}
	if err := controllerutil.SetControllerReference(s.sk, want, r.Scheme); err != nil {
		return err
	}
	switch {
	case s.record == nil:
		err = r.Create(ctx, want)
	case !equality.Semantic.DeepEqual(s.record, want):
		err = r.Update(ctx, want)
	}
	if err != nil {
		return fmt.Errorf("writing the key record Secret: %w", err)
	}
	return nil
}

// truncateAnnotation keeps a user-written value short enough to store beside the keys.
func truncateAnnotation(v string) string {
	if len(v) > 256 {
		return v[:256]
	}
	return v
}

func mergeMaps(dst, src map[string]string) map[string]string {
	out := maps.Clone(dst)
	if out == nil {
		out = map[string]string{}
	}
	for k, v := range src {
		if v == "" {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

// emitEvents records what the stored step did; it runs only after the write succeeded, so an
// event never describes a change that was lost.
func (r *SigningKeyReconciler) emitEvents(s *skScope) {
	var out []pendingEvent
	for _, why := range s.ignored {
		out = append(out, pendingEvent{corev1.EventTypeWarning, v1alpha1.ReasonRevokeIgnored, "Revoke", fmt.Sprintf("Part of the %s annotation was not acted on: %s", v1alpha1.AnnotationRevoke, why)})
	}
	for _, repair := range s.repairs {
		out = append(out, pendingEvent{corev1.EventTypeWarning, v1alpha1.ReasonSecretRecovered, "Repair", "Key Secret: " + repair})
	}
	for _, e := range append(s.notes, s.result.Events...) {
		kind := corev1.EventTypeNormal
		if e.Warning {
			kind = corev1.EventTypeWarning
		}
		action := "Rotate"
		if e.Subject != "" {
			action = "Rotate " + e.Subject
		}
		out = append(out, pendingEvent{kind, e.Reason, action, e.Message})
	}
	// Joined by reason: two keys repaired in one pass are one event naming both, not a series
	// that names the first.
	recordJoined(r.Recorder, s.sk, out)
}

// SetupWithManager watches SigningKeys (spec changes and annotations) and their Secrets.
func (r *SigningKeyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.SigningKey{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, deletionStarted))).
		Owns(&corev1.Secret{}).
		Watches(&v1alpha1.TokenServer{}, handler.EnqueueRequestsFromMapFunc(r.keyOfServer), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&v1alpha1.LivePersonAuthClient{}, handler.EnqueueRequestsFromMapFunc(r.keyOfClient),
			builder.WithPredicates(pemClients, predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Named("signingkey").
		Complete(r)
}

// pemClients passes events of clients in PEM mode (before or after the change): only they can
// hold a rotation. JWKS-mode clients, the many, never wake the key's reconciler, which would
// otherwise re-read every client of the namespace for each of thousands of new ones.
var pemClients = predicate.Funcs{
	CreateFunc:  func(e event.CreateEvent) bool { return isPEM(e.Object) },
	DeleteFunc:  func(e event.DeleteEvent) bool { return isPEM(e.Object) },
	UpdateFunc:  func(e event.UpdateEvent) bool { return isPEM(e.ObjectOld) || isPEM(e.ObjectNew) },
	GenericFunc: func(e event.GenericEvent) bool { return isPEM(e.Object) },
}

func isPEM(o client.Object) bool {
	c, ok := o.(*v1alpha1.LivePersonAuthClient)
	return ok && c.Spec.PublicKeyMode == v1alpha1.PublicKeyPEM
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// repairRecord is the last repair of a key Secret, stored as "<RFC 3339 time> <what>".
type repairRecord struct {
	at   time.Time
	what string
}

func parseRepair(v string) repairRecord {
	at, what, _ := strings.Cut(v, " ")
	t, err := time.Parse(time.RFC3339, at)
	if err != nil {
		return repairRecord{}
	}
	return repairRecord{at: t, what: what}
}

func (r repairRecord) String() string {
	if r.at.IsZero() {
		return ""
	}
	return formatTime(r.at) + " " + r.what
}
