package controllers

import (
	"context"
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
	Scheme   *runtime.Scheme
	Recorder recorder.EventRecorder
	// MinInterval spaces the writes of one set: with thousands of clients arriving, each write
	// carries all of them, so writing at most once per interval bounds the API server's work.
	MinInterval time.Duration

	mu        sync.Mutex
	lastWrite map[types.NamespacedName]time.Time
}

func (r *SecretSetReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ts := &v1alpha1.TokenServer{}
	if err := r.Get(ctx, req.NamespacedName, ts); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !ts.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	if wait := r.untilNextWrite(req.NamespacedName); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	list := &v1alpha1.LivePersonAuthClientList{}
	if err := r.List(ctx, list, client.InNamespace(ts.Namespace), client.MatchingFields{indexClientByTokenServer: ts.Name}); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing the clients of TokenServer %s: %w", ts.Name, err)
	}
	clients := make([]*v1alpha1.LivePersonAuthClient, 0, len(list.Items))
	for i := range list.Items {
		clients = append(clients, &list.Items[i])
	}
	var getErr error
	data := secretset.Compile(ts, clients, func(name string) *corev1.Secret {
		s := &corev1.Secret{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: ts.Namespace, Name: name}, s); err != nil {
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
	if left := fitSecretSet(data, clients); left > 0 && r.Recorder != nil {
		r.Recorder.Eventf(ts, nil, corev1.EventTypeWarning, v1alpha1.ReasonSecretSetFull, "Write",
			"Secret %s would exceed %d bytes: the %d youngest clients are left out and say NotServed; move clients to another TokenServer", secretset.Name(ts.Name), maxSecretSetBytes, left)
	}
	return ctrl.Result{}, r.store(ctx, ts, data)
}

// maxSecretSetBytes keeps the set under the API server's 1 MiB for a Secret's values, with room
// for its keys and metadata under etcd's object limit.
const maxSecretSetBytes = 900 << 10

// fitSecretSet leaves out the youngest clients until data fits, so a set too large to write
// stops the newest clients, visibly (NotServed), rather than every change of every client. It
// returns how many clients it left out.
func fitSecretSet(data map[string][]byte, clients []*v1alpha1.LivePersonAuthClient) int {
	if secretset.Size(data) <= maxSecretSetBytes {
		return 0
	}
	byAge := slices.Clone(clients)
	sort.SliceStable(byAge, func(i, j int) bool { return v1alpha1.ClaimsBefore(byAge[j], byAge[i]) }) // youngest first
	left := 0
	for _, c := range byAge {
		if secretset.Size(data) <= maxSecretSetBytes {
			break
		}
		dropped := false
		for _, k := range secretset.ClientKeys(c.Name) {
			if _, ok := data[k]; ok {
				delete(data, k)
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
	return time.Until(r.lastWrite[key].Add(r.MinInterval))
}

func (r *SecretSetReconciler) store(ctx context.Context, ts *v1alpha1.TokenServer, data map[string][]byte) error {
	key := client.ObjectKey{Namespace: ts.Namespace, Name: secretset.Name(ts.Name)}
	current := &corev1.Secret{}
	err := r.Get(ctx, key, current)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	exists := err == nil
	if exists && !metav1.IsControlledBy(current, ts) && !secretSetTakeover(current, ts) {
		return fmt.Errorf("secret %s exists and is not owned by TokenServer %s; delete or rename it", key.Name, ts.Name)
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
		return err
	}
	switch {
	case !exists:
		err = r.Create(ctx, want)
	case !equality.Semantic.DeepEqual(current, want):
		// resourceVersion is kept: a concurrent writer makes this a conflict and a retry.
		err = r.Update(ctx, want)
	default:
		return nil
	}
	if err != nil {
		if r.Recorder != nil && !apierrors.IsConflict(err) {
			// Every client of the TokenServer waits on this write; their status says NotServed
			// after a while, and this says why.
			r.Recorder.Eventf(ts, nil, corev1.EventTypeWarning, v1alpha1.ReasonSecretSetNotWritten, "Write", "Secret %s (client secret digests, encryption keys) not written: %v", key.Name, err)
		}
		return fmt.Errorf("writing Secret %s: %w", key.Name, err)
	}
	r.mu.Lock()
	if r.lastWrite == nil {
		r.lastWrite = map[types.NamespacedName]time.Time{}
	}
	r.lastWrite[client.ObjectKeyFromObject(ts)] = time.Now()
	r.mu.Unlock()
	return nil
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
