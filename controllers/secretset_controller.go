package controllers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/lpauth/lpauth-operator/api/secretset"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// SecretSetReconciler keeps each TokenServer's secret set: the one Secret through which its token
// server gets the client-secret digests, LivePerson's encryption keys, the login secret and the
// Redis URL, so the token server's Role names the Secrets it reads instead of reading all of
// them (see package secretset). It has its own queue: thousands of client changes coalesce into
// few writes here without slowing the TokenServer's own reconciler.
type SecretSetReconciler struct {
	client.Client
	// APIReader looks up shard names taken by Secrets outside the cache (unlabelled).
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  recorder.EventRecorder
	// MinInterval spaces the writes of one set: with thousands of clients arriving, each write
	// carries a whole shard, so writing at most once per interval bounds the API server's work.
	// The spacing also grows with what the last write cost (compiling and writing: a large set
	// is being written at most half of the time) and with the bytes it wrote (setWriteBudget).
	MinInterval time.Duration
	// MaxShardBytes is the most one Secret of the set holds (zero: maxSecretSetBytes).
	MaxShardBytes int

	mu        sync.Mutex
	lastWrite map[types.NamespacedName]lastWrite
	// foreign are the shard indexes, by TokenServer, whose names another Secret holds.
	foreign map[types.NamespacedName]map[int]bool
	// specs remember each TokenServer's compiled client specs (one reconcile at a time uses
	// one: the controller never runs two reconciles of one TokenServer at once).
	specs map[types.NamespacedName]*secretset.SpecMemo
}

// lastWrite is when a set was last written, what compiling and writing it took, and how many
// bytes it wrote.
type lastWrite struct {
	at    time.Time
	cost  time.Duration
	bytes int
}

// setWriteBudget bounds what a set costs the API server and etcd while clients arrive by the
// thousand: every shard changes then, and each write carries all of them (8 MiB at 20,000
// clients). Writing at most this many bytes a second leaves the API server to the clients'
// own writes; a single client's change rewrites one shard, well under a second's budget.
const setWriteBudget = 1 << 20

func (r *SecretSetReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	start := time.Now()
	ts := &v1alpha1.TokenServer{}
	if err := r.Get(ctx, req.NamespacedName, ts); err != nil {
		if apierrors.IsNotFound(err) {
			forgetSecretSet(req.NamespacedName)
			r.mu.Lock()
			delete(r.specs, req.NamespacedName)
			r.mu.Unlock()
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !ts.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	if wait := r.untilNextWrite(req.NamespacedName); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	list := &v1alpha1.LivePersonAuthClientList{}
	if err := r.List(ctx, list, client.InNamespace(ts.Namespace), client.MatchingFields{indexClientByTokenServer: ts.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing the clients of TokenServer %s: %w", ts.Name, err)
	}
	clients := make([]*v1alpha1.LivePersonAuthClient, 0, len(list.Items))
	for i := range list.Items {
		clients = append(clients, &list.Items[i])
	}
	var getErr error
	r.mu.Lock()
	if r.specs == nil {
		r.specs = map[types.NamespacedName]*secretset.SpecMemo{}
	}
	memo := r.specs[req.NamespacedName]
	if memo == nil {
		memo = &secretset.SpecMemo{}
		r.specs[req.NamespacedName] = memo
	}
	r.mu.Unlock()
	data := secretset.CompileWith(memo, ts, clients, func(name string) *corev1.Secret {
		s := &corev1.Secret{}
		// Compile only reads: no copy of each of thousands of Secrets.
		if err := r.Get(ctx, client.ObjectKey{Namespace: ts.Namespace, Name: name}, s, client.UnsafeDisableDeepCopy); err != nil {
			if !apierrors.IsNotFound(err) && getErr == nil {
				getErr = err
			}
			return nil
		}
		return s
	})
	if getErr != nil {
		// A partial set would stop serving clients whose Secret could not be read.
		return ctrl.Result{}, fmt.Errorf("reading the Secrets of TokenServer %s: %w", ts.Name, getErr)
	}
	limit := cmp.Or(r.MaxShardBytes, maxSecretSetBytes)
	most, err := r.usableShards(ctx, ts)
	if err != nil {
		return ctrl.Result{}, err
	}
	k := secretset.Shards(data, r.currentShards(ctx, ts), most, limit, shardFill)
	if left := fitSecretSet(data, clients, k, limit); left > 0 && r.Recorder != nil {
		r.Recorder.Eventf(ts, nil, corev1.EventTypeWarning, v1alpha1.ReasonSecretSetFull, "Write",
			"The secret set would exceed %d bytes in one of its %d Secrets (%s…): the %d youngest clients there are left out and say NotServed; move clients to another TokenServer", limit, k, secretset.Name(ts.Name), left)
	}
	if err := r.store(ctx, ts, secretset.Split(data, k), start); err != nil {
		var foreign *foreignShardError
		if errors.As(err, &foreign) {
			// Written again at once, in fewer shards: a Secret squatting a shard's name must
			// cost the set its room, never its writes (client deletions and secret rotations
			// reach the token server only through them).
			r.markForeign(ts, foreign.index)
			return ctrl.Result{Requeue: true}, nil
		}
		return ctrl.Result{}, err
	}
	observeSecretSet(req.NamespacedName, k, secretset.Size(data), time.Since(start))
	return ctrl.Result{}, nil
}

// maxSecretSetBytes keeps each Secret of the set under the API server's 1 MiB for a Secret's
// values, with room for its keys and metadata under etcd's object limit.
const maxSecretSetBytes = 900 << 10

// shardFill is how full a shard may be when the set picks its number of shards: room for the
// hash's uneven spread and for growth before the set is regrown (which rewrites every shard).
const shardFill = 0.6

// foreignShardError: the name of shard index is taken by a Secret the TokenServer does not
// control (nor may take over).
type foreignShardError struct {
	index int
	err   error
}

func (e *foreignShardError) Error() string { return e.err.Error() }
func (e *foreignShardError) Unwrap() error { return e.err }

// usableShards is the most shards the set may have: the largest power of two not beyond the
// first shard name another Secret holds. Names found taken when writing are looked up again (they
// may be outside the cache: unlabelled); the others in the cache.
func (r *SecretSetReconciler) usableShards(ctx context.Context, ts *v1alpha1.TokenServer) (int, error) {
	key := client.ObjectKeyFromObject(ts)
	for i := 1; i < secretset.MaxShards; i++ {
		name := secretset.ShardName(ts.Name, i)
		s := &corev1.Secret{}
		r.mu.Lock()
		known := r.foreign[key][i]
		r.mu.Unlock()
		var err error
		if known && r.APIReader != nil {
			err = r.APIReader.Get(ctx, client.ObjectKey{Namespace: ts.Namespace, Name: name}, s)
		} else {
			err = r.Get(ctx, client.ObjectKey{Namespace: ts.Namespace, Name: name}, s, client.UnsafeDisableDeepCopy)
		}
		switch {
		case apierrors.IsNotFound(err):
			r.forgetForeign(ts, i)
			continue
		case err != nil:
			return 0, err
		case metav1.IsControlledBy(s, ts) || secretSetTakeover(s, ts):
			r.forgetForeign(ts, i)
			continue
		}
		if !known {
			r.markForeign(ts, i)
		}
		k := 1
		for k*2 <= i {
			k *= 2
		}
		return k, nil
	}
	return secretset.MaxShards, nil
}

// markForeign records that shard i's name is taken, and says so once.
func (r *SecretSetReconciler) markForeign(ts *v1alpha1.TokenServer, i int) {
	key := client.ObjectKeyFromObject(ts)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.foreign == nil {
		r.foreign = map[types.NamespacedName]map[int]bool{}
	}
	if r.foreign[key] == nil {
		r.foreign[key] = map[int]bool{}
	}
	if r.foreign[key][i] {
		return
	}
	r.foreign[key][i] = true
	if r.Recorder != nil {
		r.Recorder.Eventf(ts, nil, corev1.EventTypeWarning, v1alpha1.ReasonNameConflict, "Write",
			"Secret %s exists and is not this TokenServer's: the secret set cannot grow into it and stays in fewer Secrets (clients that do not fit say NotServed); delete or rename it", secretset.ShardName(ts.Name, i))
	}
}

func (r *SecretSetReconciler) forgetForeign(ts *v1alpha1.TokenServer, i int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.foreign[client.ObjectKeyFromObject(ts)], i)
}

// currentShards is the number of shards the set has now, from shard 0 (1 when there is none).
func (r *SecretSetReconciler) currentShards(ctx context.Context, ts *v1alpha1.TokenServer) int {
	s := &corev1.Secret{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: ts.Namespace, Name: secretset.Name(ts.Name)}, s, client.UnsafeDisableDeepCopy); err != nil {
		return 1
	}
	return max(secretset.ShardCount(s.Data), 1)
}

// fitSecretSet leaves out the youngest clients of each shard until every shard of k fits, so a
// set too large to write stops the newest clients, visibly (NotServed), rather than every
// change of every client. It returns how many clients it left out.
func fitSecretSet(data map[string][]byte, clients []*v1alpha1.LivePersonAuthClient, k, limit int) int {
	sizes := secretset.ShardSizes(data, k)
	over := false
	for _, n := range sizes {
		over = over || n > limit
	}
	if !over {
		return 0
	}
	byAge := slices.Clone(clients)
	sort.SliceStable(byAge, func(i, j int) bool { return v1alpha1.ClaimsBefore(byAge[j], byAge[i]) }) // youngest first
	left := 0
	for _, c := range byAge {
		i := secretset.ClientShard(c.Name, k)
		if sizes[i] <= limit {
			continue
		}
		dropped := false
		for _, key := range secretset.ClientKeys(c.Name) {
			if v, ok := data[key]; ok {
				sizes[i] -= len(key) + len(v)
				delete(data, key)
				dropped = true
			}
		}
		if dropped {
			left++
		}
	}
	return left
}

func (r *SecretSetReconciler) untilNextWrite(key types.NamespacedName) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	last := r.lastWrite[key]
	return time.Until(last.at.Add(max(r.MinInterval, last.cost, time.Duration(last.bytes)*time.Second/setWriteBudget)))
}

// store writes the shards, highest first, then deletes the shards the set no longer has. While
// they are written one by one the shards disagree on their number and readers keep what they
// had (secretset.Gather), so the order only decides how long that lasts: shard 0 last means a
// set that grows is read at its new size only once the new shards exist.
func (r *SecretSetReconciler) store(ctx context.Context, ts *v1alpha1.TokenServer, shards []map[string][]byte, start time.Time) error {
	wrote, bytes := false, 0
	defer func() {
		if wrote {
			r.mu.Lock()
			if r.lastWrite == nil {
				r.lastWrite = map[types.NamespacedName]lastWrite{}
			}
			r.lastWrite[client.ObjectKeyFromObject(ts)] = lastWrite{at: time.Now(), cost: time.Since(start), bytes: bytes}
			r.mu.Unlock()
		}
	}()
	for i := len(shards) - 1; i >= 0; i-- {
		w, err := r.storeShard(ctx, ts, secretset.ShardName(ts.Name, i), shards[i])
		if w {
			wrote, bytes = true, bytes+secretset.Size(shards[i])
		}
		if err != nil {
			if i > 0 && (errors.Is(err, errNotOurs) || apierrors.IsAlreadyExists(err)) {
				return &foreignShardError{index: i, err: err}
			}
			return err
		}
	}
	for i := len(shards); i < secretset.MaxShards; i++ {
		name := secretset.ShardName(ts.Name, i)
		old := &corev1.Secret{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: ts.Namespace, Name: name}, old); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return err
		}
		if !metav1.IsControlledBy(old, ts) {
			continue // not ours: never read (the token server reads only shards below the count)
		}
		if err := r.Delete(ctx, old, client.Preconditions{UID: &old.UID, ResourceVersion: &old.ResourceVersion}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting Secret %s, a shard the secret set no longer has: %w", name, err)
		}
		wrote = true
	}
	return nil
}

var errNotOurs = errors.New("not this TokenServer's")

// storeShard creates or updates one shard; it reports whether it wrote.
func (r *SecretSetReconciler) storeShard(ctx context.Context, ts *v1alpha1.TokenServer, name string, data map[string][]byte) (bool, error) {
	key := client.ObjectKey{Namespace: ts.Namespace, Name: name}
	current := &corev1.Secret{}
	// Not copied here: the one copy is want, below (a shard is up to ~900 KiB).
	err := r.Get(ctx, key, current, client.UnsafeDisableDeepCopy)
	if err != nil && !apierrors.IsNotFound(err) {
		return false, err
	}
	exists := err == nil
	if exists && !metav1.IsControlledBy(current, ts) && !secretSetTakeover(current, ts) {
		return false, fmt.Errorf("secret %s exists and is not owned by TokenServer %s; delete or rename it: %w", key.Name, ts.Name, errNotOurs)
	}
	want := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace}}
	if exists {
		// Ours, or left by an earlier TokenServer of this name (a restore): compiled from the
		// sources alone, so taking it over keeps nothing of what it held.
		want = current.DeepCopy()
		want.OwnerReferences = withoutOwnersOfKind(want.OwnerReferences, "TokenServer")
	}
	want.Type = secretset.SecretType
	want.Labels = mergeMaps(want.Labels, map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, v1alpha1.LabelTokenServerReads: "true"})
	want.Data = data
	if err := controllerutil.SetControllerReference(ts, want, r.Scheme); err != nil {
		return false, err
	}
	switch {
	case !exists:
		err = r.Create(ctx, want)
	case !equality.Semantic.DeepEqual(current, want):
		// resourceVersion is kept: a concurrent writer makes this a conflict and a retry.
		err = r.Update(ctx, want)
	default:
		return false, nil
	}
	if err != nil {
		if r.Recorder != nil && !apierrors.IsConflict(err) {
			// Every client of the TokenServer waits on this write; their status says NotServed
			// after a while, and this says why.
			r.Recorder.Eventf(ts, nil, corev1.EventTypeWarning, v1alpha1.ReasonSecretSetNotWritten, "Write", "Secret %s (client secret digests, encryption keys) not written: %v", key.Name, err)
		}
		return false, fmt.Errorf("writing Secret %s: %w", key.Name, err)
	}
	return true, nil
}

// serverOfClient maps a client to its TokenServer (whose secret set carries it, and whose
// deletion may wait on it).
func serverOfClient(_ context.Context, o client.Object) []reconcile.Request {
	c := o.(*v1alpha1.LivePersonAuthClient)
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: c.Namespace, Name: c.Spec.TokenServerRef.Name}}}
}

// serversOfSecret maps a Secret to the TokenServers whose set copies from it: through the clients
// that refer to it or own it, and through the TokenServers' login and Redis references.
func (r *SecretSetReconciler) serversOfSecret(ctx context.Context, o client.Object) []reconcile.Request {
	seen := map[string]bool{}
	var out []reconcile.Request
	add := func(ts string) {
		if !seen[ts] {
			seen[ts] = true
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: ts}})
		}
	}
	clients := &v1alpha1.LivePersonAuthClientList{}
	if err := r.List(ctx, clients, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexClientBySecret: o.GetName()}); err == nil {
		for _, c := range clients.Items {
			add(c.Spec.TokenServerRef.Name)
		}
	}
	if owner := metav1.GetControllerOf(o); owner != nil && owner.Kind == "LivePersonAuthClient" {
		c := &v1alpha1.LivePersonAuthClient{}
		if r.Get(ctx, client.ObjectKey{Namespace: o.GetNamespace(), Name: owner.Name}, c) == nil {
			add(c.Spec.TokenServerRef.Name)
		}
	}
	servers := &v1alpha1.TokenServerList{}
	if err := r.List(ctx, servers, client.InNamespace(o.GetNamespace())); err == nil {
		for _, ts := range servers.Items {
			login := secretset.LoginSecretRef(ts.Spec.Login)
			redis := ts.Spec.ReplayStore != nil && ts.Spec.ReplayStore.Redis != nil && ts.Spec.ReplayStore.Redis.AddressSecretRef.Name == o.GetName()
			if redis || (login != nil && login.Name == o.GetName()) {
				add(ts.Name)
			}
		}
	}
	return out
}

// SetupWithManager watches TokenServers, their clients and every Secret the set copies from.
func (r *SecretSetReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.TokenServer{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&corev1.Secret{}).
		Watches(&v1alpha1.LivePersonAuthClient{}, handler.EnqueueRequestsFromMapFunc(serverOfClient),
			builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.serversOfSecret)).
		Named("tokenserver-secrets").
		Complete(r)
}
