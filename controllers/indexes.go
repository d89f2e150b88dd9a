package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// Field indexes over the cache, so a change to one object finds the objects that refer to it
// without listing everything: watches instead of polling.
const (
	indexClientByTokenServer = "spec.tokenServerRef.name"
	indexClientBySecret      = "spec.secretRefs"
	indexServerBySigningKey  = "spec.signingKeyRef.name"
	indexServerByIssuer      = "spec.issuer"
	// indexClientByClientID is "<TokenServer>/<client id>": the effective client id (spec or
	// generated) is unique per TokenServer, the issuer LivePerson knows it by.
	indexClientByClientID = "clientID"
)

// clientIDKey is the indexClientByClientID value of a client; empty before it has an id. A
// generated id kept in the client's Secret (not the annotation) is known here once status
// carries it; until then only the token server's set (which serves a client id to its oldest
// claimant) stands between it and a younger client naming it in spec.clientID.
func clientIDKey(c *v1alpha1.LivePersonAuthClient) string {
	id := c.EffectiveClientID()
	if id == "" && c.Spec.ClientID == "" {
		id = c.Status.ClientID
	}
	if id == "" {
		return ""
	}
	return c.Spec.TokenServerRef.Name + "/" + id
}

// index is one field index: the kind it indexes, its name, and the values of an object.
type index struct {
	obj   client.Object
	field string
	of    client.IndexerFunc
}

// indexes are the operator's field indexes; the manager's cache and the fake clients of the unit
// tests both register exactly these.
var indexes = []index{
	{&v1alpha1.LivePersonAuthClient{}, indexClientByTokenServer, func(o client.Object) []string {
		return []string{o.(*v1alpha1.LivePersonAuthClient).Spec.TokenServerRef.Name}
	}},
	{&v1alpha1.LivePersonAuthClient{}, indexClientBySecret, func(o client.Object) []string {
		return referencedSecrets(o.(*v1alpha1.LivePersonAuthClient))
	}},
	{&v1alpha1.LivePersonAuthClient{}, indexClientByClientID, func(o client.Object) []string {
		if k := clientIDKey(o.(*v1alpha1.LivePersonAuthClient)); k != "" {
			return []string{k}
		}
		return nil
	}},
	{&v1alpha1.TokenServer{}, indexServerByIssuer, func(o client.Object) []string {
		return []string{o.(*v1alpha1.TokenServer).Spec.Issuer}
	}},
	{&v1alpha1.TokenServer{}, indexServerBySigningKey, func(o client.Object) []string {
		return []string{o.(*v1alpha1.TokenServer).Spec.SigningKeyRef.Name}
	}},
}

func registerIndexes(ctx context.Context, mgr ctrl.Manager) error {
	for _, ix := range indexes {
		if err := mgr.GetFieldIndexer().IndexField(ctx, ix.obj, ix.field, ix.of); err != nil {
			return err
		}
	}
	return nil
}

// referencedSecrets are the user's Secrets a client reads.
func referencedSecrets(c *v1alpha1.LivePersonAuthClient) []string {
	var names []string
	if c.Spec.ClientSecretRef != nil {
		names = append(names, c.Spec.ClientSecretRef.Name)
	}
	if c.Spec.Encryption != nil {
		names = append(names, c.Spec.Encryption.KeysSecretRef.Name)
	}
	return names
}

func requestsFor[T client.Object](list []T) []reconcile.Request {
	out := make([]reconcile.Request, 0, len(list))
	for _, o := range list {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}})
	}
	return out
}

// clientsOfServers lists the clients of the named TokenServers. A failed look-up is an error,
// never an empty list: a caller counting PEM-mode clients must not count none because the cache
// failed (a rotation would then go on without its hold).
func clientsOfServers(ctx context.Context, c client.Reader, namespace string, servers []string) ([]*v1alpha1.LivePersonAuthClient, error) {
	var out []*v1alpha1.LivePersonAuthClient
	for _, ts := range servers {
		list := &v1alpha1.LivePersonAuthClientList{}
		if err := c.List(ctx, list, client.InNamespace(namespace), client.MatchingFields{indexClientByTokenServer: ts}); err != nil {
			return nil, fmt.Errorf("listing the clients of TokenServer %s: %w", ts, err)
		}
		for i := range list.Items {
			out = append(out, &list.Items[i])
		}
	}
	return out, nil
}

// serversOfKey names the TokenServers that sign with the named SigningKey.
func serversOfKey(ctx context.Context, c client.Reader, namespace, key string) ([]string, error) {
	list := &v1alpha1.TokenServerList{}
	if err := c.List(ctx, list, client.InNamespace(namespace), client.MatchingFields{indexServerBySigningKey: key}); err != nil {
		return nil, fmt.Errorf("listing the TokenServers of SigningKey %s: %w", key, err)
	}
	names := make([]string, 0, len(list.Items))
	for _, ts := range list.Items {
		names = append(names, ts.Name)
	}
	return names, nil
}

// clientsOfKey lists the clients served with the named SigningKey.
func clientsOfKey(ctx context.Context, c client.Reader, namespace, key string) ([]*v1alpha1.LivePersonAuthClient, error) {
	servers, err := serversOfKey(ctx, c, namespace, key)
	if err != nil {
		return nil, err
	}
	return clientsOfServers(ctx, c, namespace, servers)
}

// mapped is a watch's map function result: a map function cannot return an error, so a failed
// look-up is logged (the objects it would have found are looked at again on their next change
// or resync).
func mapped[T client.Object](ctx context.Context, list []T, err error) []reconcile.Request {
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Finding the objects a change affects")
		return nil
	}
	return requestsFor(list)
}

// Map functions for watches.

func (r *LivePersonAuthClientReconciler) clientsOfServer(ctx context.Context, o client.Object) []reconcile.Request {
	list, err := clientsOfServers(ctx, r.Client, o.GetNamespace(), []string{o.GetName()})
	return mapped(ctx, list, err)
}

func (r *LivePersonAuthClientReconciler) clientsOfKey(ctx context.Context, o client.Object) []reconcile.Request {
	list, err := clientsOfKey(ctx, r.Client, o.GetNamespace(), o.GetName())
	return mapped(ctx, list, err)
}

func (r *LivePersonAuthClientReconciler) clientsOfSecret(ctx context.Context, o client.Object) []reconcile.Request {
	list := &v1alpha1.LivePersonAuthClientList{}
	if err := r.List(ctx, list, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexClientBySecret: o.GetName()}); err != nil {
		return mapped[client.Object](ctx, nil, err)
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return out
}

// sameClientID maps a client to the other clients that claim its client id: when it goes away
// or changes its id, the one it kept from being Ready may now be.
func (r *LivePersonAuthClientReconciler) sameClientID(ctx context.Context, o client.Object) []reconcile.Request {
	c, ok := o.(*v1alpha1.LivePersonAuthClient)
	if !ok || clientIDKey(c) == "" {
		return nil
	}
	list := &v1alpha1.LivePersonAuthClientList{}
	if err := r.List(ctx, list, client.InNamespace(c.Namespace), client.MatchingFields{indexClientByClientID: clientIDKey(c)}); err != nil {
		return mapped[client.Object](ctx, nil, err)
	}
	var out []reconcile.Request
	for i := range list.Items {
		if list.Items[i].Name != c.Name {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return out
}

func (r *SigningKeyReconciler) keyOfServer(_ context.Context, o client.Object) []reconcile.Request {
	ts := o.(*v1alpha1.TokenServer)
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ts.Namespace, Name: ts.Spec.SigningKeyRef.Name}}}
}

func (r *SigningKeyReconciler) keyOfClient(ctx context.Context, o client.Object) []reconcile.Request {
	c := o.(*v1alpha1.LivePersonAuthClient)
	ts := &v1alpha1.TokenServer{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: c.Spec.TokenServerRef.Name}, ts); err != nil {
		// A client of a TokenServer not created yet has no key to wake.
		return mapped[client.Object](ctx, nil, client.IgnoreNotFound(err))
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: c.Namespace, Name: ts.Spec.SigningKeyRef.Name}}}
}
