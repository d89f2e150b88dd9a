package controllers

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
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

// SecretSetReconciler keeps each TokenServer's secret set: the Secrets through which its token
// server gets its clients, the client-secret digests, LivePerson's encryption keys, the login
// secret and the Redis URL, so the token server's Role names the Secrets it reads instead of
// reading all of them (see package secretset). A change reaches the set's overlay of recent
// changes at once; the shards are rewritten now and then (planSetWrite). It has its own queue:
// thousands of client changes coalesce into few writes here without slowing the TokenServer's
// own reconciler.
type SecretSetReconciler struct {
	client.Client
	// APIReader looks up shard names taken by Secrets outside the cache (unlabelled).
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  recorder.EventRecorder
	// MinInterval spaces the writes of one set. The spacing also grows with what the last
	// write cost (compiling and writing: a large set is being written at most half of the
	// time) and with the bytes it wrote (setWriteBudget): the overlay's own for its writes,
	// the shards' for the next fold.
	MinInterval time.Duration
	// MaxShardBytes is the most one Secret of the set holds (zero: maxSecretSetBytes).
	MaxShardBytes int
	// RecentBytes is how large the overlay grows before it is folded into the shards (zero:
	// 64 KiB); while a fold waits for its pace it grows up to four times that.
	RecentBytes int
	// NewBase names the shards' content on each fold (random when nil).
	NewBase func() string

	mu   sync.Mutex
	pace map[types.NamespacedName]setPace
	// foreign are the shard indexes, by TokenServer, whose names another Secret holds.
	foreign map[types.NamespacedName]map[int]bool
	// foreignRecent are the TokenServers whose overlay name another Secret holds.
	foreignRecent map[types.NamespacedName]bool
	// specs remember each TokenServer's compiled client specs (one reconcile at a time uses
	// one: the controller never runs two reconciles of one TokenServer at once).
	specs map[types.NamespacedName]*secretset.SpecMemo
}

// setPace is when a set may next be written: anything (the overlay), and its shards (a fold).
type setPace struct {
	next, nextFold time.Time
}

// setWriteBudget bounds what a set costs the API server and etcd while clients arrive by the
// thousand: every shard changes then, and a fold carries all of them (8 MiB at 20,000
// clients). Writing at most this many bytes a second leaves the API server to the clients'
// own writes; the overlay's writes are small and come at most every MinInterval.
const setWriteBudget = 1 << 20

func (r *SecretSetReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	start := time.Now()
	ts := &v1alpha1.TokenServer{}
	if err := r.Get(ctx, req.NamespacedName, ts); err != nil {
		if apierrors.IsNotFound(err) {
			forgetSecretSet(req.NamespacedName)
			r.mu.Lock()
			delete(r.specs, req.NamespacedName)
			delete(r.pace, req.NamespacedName)
			r.mu.Unlock()
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !ts.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	pace := r.paceOf(req.NamespacedName)
	if wait := time.Until(pace.next); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	clients, data, err := r.compile(ctx, ts)
	if err != nil {
		return ctrl.Result{}, err
	}
	limit := cmp.Or(r.MaxShardBytes, maxSecretSetBytes)
	most, err := r.usableShards(ctx, ts)
	if err != nil {
		return ctrl.Result{}, err
	}
	st, current, err := r.currentSet(ctx, ts)
	if err != nil {
		return ctrl.Result{}, err
	}
	k := secretset.Shards(data, current, most, limit, shardFill)
	if left := fitSecretSet(data, clients, k, limit); left > 0 && r.Recorder != nil {
		r.Recorder.Eventf(ts, nil, corev1.EventTypeWarning, v1alpha1.ReasonSecretSetFull, "Write",
			"The secret set would exceed %d bytes in one of its %d Secrets (%s…): the %d youngest clients there are left out and say NotServed; move clients to another TokenServer", limit, k, secretset.Name(ts.Name), left)
	}
	plan := planSetWrite(st, data, k, start, time.Until(pace.nextFold), newSetPolicy(r.RecentBytes))
	w := setWrite{kind: "none", shards: current, bytes: secretset.Size(data), recent: st.recent.Size()}
	var prep time.Duration // what the reconcile took before a fold started
	defer func() {
		w.took = time.Since(start)
		if w.kind != "none" {
			r.recordPace(req.NamespacedName, cmp.Or(prep, w.took), w)
		}
		observeSecretSet(req.NamespacedName, w)
	}()
	if plan.recent != nil {
		// First, even before a fold: the fold takes a while, and whatever changed since the
		// overlay's last write is served meanwhile.
		wrote, err := r.storeShard(ctx, ts, secretset.RecentName(ts.Name), plan.recent.Data())
		switch {
		case err == nil:
		case r.recentTaken(ts, err):
			return ctrl.Result{Requeue: true}, nil // written again at once: by folding
		case apierrors.IsConflict(err):
			return ctrl.Result{}, err
		case plan.fold == "":
			// The overlay never blocks the set (its event says why it failed): the shards
			// carry the change instead, at their pace.
			if wait := time.Until(pace.nextFold); wait > 0 {
				return ctrl.Result{RequeueAfter: wait}, nil
			}
			plan.fold = "the overlay could not be written"
		}
		if wrote {
			w.kind, w.recentBytes, w.recent = "overlay", plan.recent.Size(), plan.recent.Size()
		}
	}
	if plan.fold == "" {
		if st.shards != nil {
			if err := r.prune(ctx, ts, len(st.shards)); err != nil {
				return ctrl.Result{}, err
			}
		}
		return ctrl.Result{RequeueAfter: plan.after}, nil
	}
	prep = time.Since(start)
	ctrl.LoggerFrom(ctx).V(1).Info("Folding the secret set's overlay into its shards", "why", plan.fold, "shards", k)
	return r.fold(ctx, ts, st, data, k, &w)
}

// fold rewrites the shards with data in k shards under a new base, then empties the overlay
// for that base.
func (r *SecretSetReconciler) fold(ctx context.Context, ts *v1alpha1.TokenServer, st setState, data map[string][]byte, k int, w *setWrite) (ctrl.Result, error) {
	base := r.newBase(st.seen)
	w.kind, w.shards = "fold", k
	var err error
	if w.foldBytes, err = r.store(ctx, ts, secretset.SplitAt(data, k, base)); err != nil {
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
	if st.noRecent {
		return ctrl.Result{}, nil
	}
	// Emptied only now that shard 0 names the new base: until then the old overlay applies.
	empty := secretset.Recent{Base: base, Replaces: cmp.Or(st.base, st.recent.Base)}
	// From the live Secret: this reconcile may have written the overlay already, before the
	// fold, and the cache may not have seen that write yet (a conflict, or for a first
	// overlay an AlreadyExists taken for a squatter).
	reader := client.Reader(r.APIReader)
	if reader == nil {
		reader = r.Client
	}
	if _, err := r.storeShardFrom(ctx, ts, secretset.RecentName(ts.Name), empty.Data(), reader, r.APIReader == nil); err != nil {
		if r.recentTaken(ts, err) {
			return ctrl.Result{}, nil // the shards carry everything: nothing is lost
		}
		return ctrl.Result{}, err
	}
	w.recent, w.recentBytes = empty.Size(), w.recentBytes+empty.Size()
	return ctrl.Result{}, nil
}

// compile compiles ts's set from the cache: its clients and the data.
func (r *SecretSetReconciler) compile(ctx context.Context, ts *v1alpha1.TokenServer) ([]*v1alpha1.LivePersonAuthClient, map[string][]byte, error) {
	list := &v1alpha1.LivePersonAuthClientList{}
	if err := r.List(ctx, list, client.InNamespace(ts.Namespace), client.MatchingFields{indexClientByTokenServer: ts.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, nil, fmt.Errorf("listing the clients of TokenServer %s: %w", ts.Name, err)
	}
	clients := make([]*v1alpha1.LivePersonAuthClient, 0, len(list.Items))
	for i := range list.Items {
		clients = append(clients, &list.Items[i])
	}
	key := client.ObjectKeyFromObject(ts)
	var getErr error
	r.mu.Lock()
	if r.specs == nil {
		r.specs = map[types.NamespacedName]*secretset.SpecMemo{}
	}
	memo := r.specs[key]
	if memo == nil {
		memo = &secretset.SpecMemo{}
		r.specs[key] = memo
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
		return nil, nil, fmt.Errorf("reading the Secrets of TokenServer %s: %w", ts.Name, getErr)
	}
	return clients, data, nil
}

// currentSet reads the set as the cache holds it (never a copy: up to 16 × ~900 KiB), and the
// number of shards shard 0 says it has (1 when none).
func (r *SecretSetReconciler) currentSet(ctx context.Context, ts *v1alpha1.TokenServer) (setState, int, error) {
	var st setState
	get := func(name string) (*corev1.Secret, error) {
		s := &corev1.Secret{}
		err := r.Get(ctx, client.ObjectKey{Namespace: ts.Namespace, Name: name}, s, client.UnsafeDisableDeepCopy)
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	first, err := get(secretset.Name(ts.Name))
	if err != nil {
		return st, 0, err
	}
	current := 1
	if first != nil {
		current = max(secretset.ShardCount(first.Data), 1)
	}
	// Every base a set Secret records, whatever state the set is in: the next fold's base is a
	// generation past all of them (secretset.NewBase).
	for i := range secretset.MaxShards {
		if s, err := get(secretset.ShardName(ts.Name, i)); err == nil && s != nil && metav1.IsControlledBy(s, ts) {
			st.seen = append(st.seen, secretset.Base(s.Data))
		}
	}
	if first != nil && secretset.ShardCount(first.Data) > 0 && metav1.IsControlledBy(first, ts) {
		k := secretset.ShardCount(first.Data)
		shards := []map[string][]byte{first.Data}
		for i := 1; i < k && shards != nil; i++ {
			s, err := get(secretset.ShardName(ts.Name, i))
			if err != nil {
				return st, 0, err
			}
			// A fold cut short (a restart, a failed write) leaves shards of two bases, which
			// readers refuse: only a fold repairs it.
			if s == nil || !metav1.IsControlledBy(s, ts) || secretset.ShardCount(s.Data) != k || secretset.Base(s.Data) != secretset.Base(first.Data) {
				shards = nil
				break
			}
			shards = append(shards, s.Data)
		}
		if shards != nil {
			st.shards, st.base = shards, secretset.Base(first.Data)
		}
	}
	recent, err := r.recentSecret(ctx, ts)
	switch {
	case err != nil:
		return st, 0, err
	case recent == nil:
		st.noRecent = r.isRecentForeign(ts)
	case metav1.IsControlledBy(recent, ts):
		st.recent = secretset.ParseRecent(recent.Data)
		st.seen = append(st.seen, st.recent.Base, st.recent.Replaces)
	}
	return st, current, nil
}

// recentSecret is the Secret of the overlay's name, when there is one; another Secret of that
// name is recorded as foreign (looked up again outside the cache while it is, since it may be
// unlabelled) and reported as none.
func (r *SecretSetReconciler) recentSecret(ctx context.Context, ts *v1alpha1.TokenServer) (*corev1.Secret, error) {
	key := client.ObjectKey{Namespace: ts.Namespace, Name: secretset.RecentName(ts.Name)}
	s := &corev1.Secret{}
	var err error
	if r.isRecentForeign(ts) && r.APIReader != nil {
		err = r.APIReader.Get(ctx, key, s)
	} else {
		err = r.Get(ctx, key, s, client.UnsafeDisableDeepCopy)
	}
	switch {
	case apierrors.IsNotFound(err):
		r.setRecentForeign(ts, false)
		return nil, nil
	case err != nil:
		return nil, err
	case metav1.IsControlledBy(s, ts) || secretSetTakeover(s, ts):
		r.setRecentForeign(ts, false)
		return s, nil
	}
	r.setRecentForeign(ts, true)
	return nil, nil
}

// recentTaken reports whether err says another Secret holds the overlay's name, and records it:
// the set is then written by folding alone.
func (r *SecretSetReconciler) recentTaken(ts *v1alpha1.TokenServer, err error) bool {
	if !errors.Is(err, errNotOurs) && !apierrors.IsAlreadyExists(err) {
		return false
	}
	r.setRecentForeign(ts, true)
	return true
}

func (r *SecretSetReconciler) isRecentForeign(ts *v1alpha1.TokenServer) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.foreignRecent[client.ObjectKeyFromObject(ts)]
}

// setRecentForeign records whether the overlay's name is taken, and says so once when it is.
func (r *SecretSetReconciler) setRecentForeign(ts *v1alpha1.TokenServer, taken bool) {
	key := client.ObjectKeyFromObject(ts)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.foreignRecent[key] == taken {
		return
	}
	if !taken {
		delete(r.foreignRecent, key)
		return
	}
	if r.foreignRecent == nil {
		r.foreignRecent = map[types.NamespacedName]bool{}
	}
	r.foreignRecent[key] = true
	if r.Recorder != nil {
		r.Recorder.Eventf(ts, namedSecret(client.ObjectKey{Namespace: ts.Namespace, Name: secretset.RecentName(ts.Name)}), corev1.EventTypeWarning, v1alpha1.ReasonNameConflict, "Write",
			"Secret %s exists and is not this TokenServer's: the secret set is written without its overlay of recent changes, so each change rewrites a shard and new clients wait longer to be served; delete or rename it", secretset.RecentName(ts.Name))
	}
}

func (r *SecretSetReconciler) newBase(seen []string) string {
	if r.NewBase != nil {
		return r.NewBase()
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return secretset.NewBase(hex.EncodeToString(b), seen...)
}

func (r *SecretSetReconciler) paceOf(key types.NamespacedName) setPace {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pace[key]
}

// recordPace spaces the set's next writes after w: the next write by what w took before a fold
// (prep) and the overlay's bytes, the next fold by all w took and the shards' bytes.
func (r *SecretSetReconciler) recordPace(key types.NamespacedName, prep time.Duration, w setWrite) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pace == nil {
		r.pace = map[types.NamespacedName]setPace{}
	}
	p := r.pace[key]
	p.next = now.Add(max(r.MinInterval, prep, budgetTime(w.recentBytes)))
	if w.kind == "fold" {
		p.nextFold = now.Add(max(r.MinInterval, w.took, budgetTime(w.foldBytes)))
	}
	r.pace[key] = p
}

func budgetTime(bytes int) time.Duration { return time.Duration(bytes) * time.Second / setWriteBudget }

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
		r.Recorder.Eventf(ts, namedSecret(client.ObjectKey{Namespace: ts.Namespace, Name: secretset.ShardName(ts.Name, i)}), corev1.EventTypeWarning, v1alpha1.ReasonNameConflict, "Write",
			"Secret %s exists and is not this TokenServer's: the secret set cannot grow into it and stays in fewer Secrets (clients that do not fit say NotServed); delete or rename it", secretset.ShardName(ts.Name, i))
	}
}

func (r *SecretSetReconciler) forgetForeign(ts *v1alpha1.TokenServer, i int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.foreign[client.ObjectKeyFromObject(ts)], i)
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

// store writes the shards, highest first, then deletes the shards the set no longer has, and
// returns the bytes it wrote. While they are written one by one the shards disagree on their
// number or carry a fold's content under the old base (see package secretset): either way
// readers see the set as it was or, client by client, as folded. Shard 0 last means a set that
// grows is read at its new size, and the new base, only once every other shard is written.
func (r *SecretSetReconciler) store(ctx context.Context, ts *v1alpha1.TokenServer, shards []map[string][]byte) (int, error) {
	bytes := 0
	for i := len(shards) - 1; i >= 0; i-- {
		w, err := r.storeShard(ctx, ts, secretset.ShardName(ts.Name, i), shards[i])
		if w {
			bytes += secretset.Size(shards[i])
		}
		if err != nil {
			if i > 0 && (errors.Is(err, errNotOurs) || apierrors.IsAlreadyExists(err)) {
				return bytes, &foreignShardError{index: i, err: err}
			}
			return bytes, err
		}
	}
	return bytes, r.prune(ctx, ts, len(shards))
}

// prune deletes the TokenServer's shards from k on, which the set no longer has. Readers never
// read them (only the shards below the count shard 0 says), so this may come at any time: after
// a fold, and on every reconcile, for a shard the cache showed only later (one written by a
// fold that failed half-way).
func (r *SecretSetReconciler) prune(ctx context.Context, ts *v1alpha1.TokenServer, k int) error {
	for i := k; i < secretset.MaxShards; i++ {
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
	}
	return nil
}

var errNotOurs = errors.New("not this TokenServer's")

// storeShard creates or updates one shard; it reports whether it wrote.
func (r *SecretSetReconciler) storeShard(ctx context.Context, ts *v1alpha1.TokenServer, name string, data map[string][]byte) (bool, error) {
	return r.storeShardFrom(ctx, ts, name, data, r.Client, true)
}

// storeShardFrom is storeShard, reading the current Secret from reader.
func (r *SecretSetReconciler) storeShardFrom(ctx context.Context, ts *v1alpha1.TokenServer, name string, data map[string][]byte, reader client.Reader, cached bool) (bool, error) {
	key := client.ObjectKey{Namespace: ts.Namespace, Name: name}
	current := &corev1.Secret{}
	// Not copied here: the one copy is want, below (a shard is up to ~900 KiB).
	var opts []client.GetOption
	if cached {
		opts = append(opts, client.UnsafeDisableDeepCopy)
	}
	err := reader.Get(ctx, key, current, opts...)
	if err != nil && !apierrors.IsNotFound(err) {
		if !cached {
			r.notWritten(ts, key, err)
		}
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
	// The reader was behind: a Secret this reconcile's predecessor wrote (or one outside the
	// cache: unlabelled) is not in it yet, or one deleted still is.
	behind := (!exists && apierrors.IsAlreadyExists(err)) || (exists && apierrors.IsNotFound(err))
	if behind && cached && r.APIReader != nil {
		// Only the live Secret says whether another holds the name; it is written through,
		// once. Taking the operator's own Secret for a squatter would warn of a NameConflict
		// with itself and cap the set below it.
		return r.storeShardFrom(ctx, ts, name, data, r.APIReader, false)
	}
	if behind && !cached {
		// Created or deleted by another between the live read and the write: read again.
		err = apierrors.NewConflict(corev1.Resource("secrets"), key.Name, err)
	}
	if err != nil {
		if !apierrors.IsConflict(err) {
			r.notWritten(ts, key, err)
		}
		return false, fmt.Errorf("writing Secret %s: %w", key.Name, err)
	}
	return true, nil
}

// notWritten says why a set Secret was not written: every client of the TokenServer waits on
// the write; their status says NotServed after a while, and this says why.
func (r *SecretSetReconciler) notWritten(ts *v1alpha1.TokenServer, key client.ObjectKey, err error) {
	if r.Recorder != nil {
		r.Recorder.Eventf(ts, namedSecret(key), corev1.EventTypeWarning, v1alpha1.ReasonSecretSetNotWritten, "Write", "Secret %s (client secret digests, encryption keys) not written: %v", key.Name, err)
	}
}

// namedSecret is the related object of an event about the Secret at key: with it, events of
// one reason about different Secrets stay apart (the recorder merges events that differ only
// in their note into one series, which keeps the first note).
func namedSecret(key client.ObjectKey) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace}}
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
