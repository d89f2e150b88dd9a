package controllers

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// statusWriter writes the status of one kind of ours, the same way for all three: only when it
// changed, and right even when the cache lags behind the writer's own last write.
//
// A reconcile often runs again, triggered by its own write, before the cache shows that write.
// Two rules keep that harmless:
//   - catchUp: an object read at the very resourceVersion the last write was computed from gets
//     that written status back, so the reconcile builds on what the API server holds (and the
//     conditions' transition times are kept: the same outcome is not written again, an API
//     call per object when thousands arrive at once);
//   - patchBase: a status that differs from the last one written is written even when the stale
//     cache already shows it (an error written a moment ago would otherwise stay, with no event
//     to correct it: status-only changes do not trigger reconciles), and the patch is computed
//     from the last written status, which is what the API server holds.
//
// The zero value is ready to use; each reconciler has its own (the memo is keyed by namespace
// and name, which objects of different kinds may share).
type statusWriter struct {
	written sync.Map // types.NamespacedName → statusWrite; forgotten when the object is gone
}

type statusWrite struct {
	from   string // the resourceVersion the status was computed from
	status any    // a copy of the status as the API server returned it after the write
}

// catchUp gives obj, just read from the cache, the status last written over its very
// resourceVersion.
func (w *statusWriter) catchUp(obj client.Object) {
	if v, ok := w.written.Load(client.ObjectKeyFromObject(obj)); ok && v.(statusWrite).from == obj.GetResourceVersion() {
		setStatus(obj, v.(statusWrite).status)
	}
}

// patchBase decides whether obj's freshly computed status must be written, base being the object
// as the reconcile began, and returns what to compute the merge patch from (nil: no write).
func (w *statusWriter) patchBase(base, obj client.Object) client.Object {
	if !equality.Semantic.DeepEqual(statusOf(base), statusOf(obj)) {
		return base
	}
	if v, ok := w.written.Load(client.ObjectKeyFromObject(obj)); ok && !equality.Semantic.DeepEqual(v.(statusWrite).status, statusOf(obj)) {
		last := base.DeepCopyObject().(client.Object)
		setStatus(last, v.(statusWrite).status)
		return last
	}
	return nil
}

// write patches obj's status if it must be, and remembers it as the API server stored it (times
// to the second). An object deleted meanwhile is not an error.
func (w *statusWriter) write(ctx context.Context, c client.StatusClient, base, obj client.Object) error {
	from := w.patchBase(base, obj)
	if from == nil {
		return nil
	}
	rv := obj.GetResourceVersion()
	if err := c.Status().Patch(ctx, obj, client.MergeFrom(from)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("writing status: %w", err)
	}
	w.written.Store(client.ObjectKeyFromObject(obj), statusWrite{from: rv, status: copyOfStatus(obj)})
	return nil
}

// forget drops what was remembered of an object that is gone.
func (w *statusWriter) forget(key client.ObjectKey) { w.written.Delete(key) }

// statusOf is a pointer to the status of one of our kinds.
func statusOf(obj client.Object) any {
	switch o := obj.(type) {
	case *v1alpha1.LivePersonAuthClient:
		return &o.Status
	case *v1alpha1.SigningKey:
		return &o.Status
	case *v1alpha1.TokenServer:
		return &o.Status
	}
	panic(fmt.Sprintf("statusWriter: %T is not one of our kinds", obj))
}

// copyOfStatus is a deep copy of obj's status, as a pointer (what statusOf returns).
func copyOfStatus(obj client.Object) any {
	switch o := obj.(type) {
	case *v1alpha1.LivePersonAuthClient:
		return o.Status.DeepCopy()
	case *v1alpha1.SigningKey:
		return o.Status.DeepCopy()
	case *v1alpha1.TokenServer:
		return o.Status.DeepCopy()
	}
	panic(fmt.Sprintf("statusWriter: %T is not one of our kinds", obj))
}

// setStatus sets dst's status to a deep copy of st, a status of dst's kind (from copyOfStatus).
func setStatus(dst client.Object, st any) {
	switch d := dst.(type) {
	case *v1alpha1.LivePersonAuthClient:
		d.Status = *st.(*v1alpha1.LivePersonAuthClientStatus).DeepCopy()
	case *v1alpha1.SigningKey:
		d.Status = *st.(*v1alpha1.SigningKeyStatus).DeepCopy()
	case *v1alpha1.TokenServer:
		d.Status = *st.(*v1alpha1.TokenServerStatus).DeepCopy()
	default:
		panic(fmt.Sprintf("statusWriter: %T is not one of our kinds", dst))
	}
}
