package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// CacheOptions limits the manager's Secret cache to the Secrets token servers read (the operator
// labels each one), so the operator never holds every Secret of the cluster in memory.
func CacheOptions() cache.Options {
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Secret{}: {Label: labels.SelectorFromSet(labels.Set{v1alpha1.LabelTokenServerReads: "true"})},
	}}
}

// Options are what the reconcilers take from outside.
type Options struct {
	// Clock is the time source (the real clock when nil); tests step a fake one.
	Clock clock.PassiveClock
	// GenerateKey makes signing keys (keys.Generate when nil).
	GenerateKey KeyGenerator
	// Client, when set, replaces the manager's client (tests inject faults through it).
	Client client.Client
}

// Setup registers every reconciler with the manager.
func Setup(ctx context.Context, mgr ctrl.Manager, opts Options) error {
	c := opts.Client
	if c == nil {
		c = mgr.GetClient()
	}
	if err := registerIndexes(ctx, mgr); err != nil {
		return fmt.Errorf("registering field indexes: %w", err)
	}
	sk := NewSigningKeyReconciler(c, mgr.GetAPIReader(), mgr.GetScheme(), mgr.GetEventRecorder("signingkey-controller"), opts.Clock, opts.GenerateKey)
	if err := sk.SetupWithManager(mgr); err != nil {
		return err
	}
	lpac := &LivePersonAuthClientReconciler{Client: c, APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(), Recorder: mgr.GetEventRecorder("livepersonauthclient-controller")}
	return lpac.SetupWithManager(mgr)
}
