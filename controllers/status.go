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
// The zero value is ready to use.
type statusWriter struct {
	written sync.Map // types.NamespacedName → statusWrite; forgotten when the object is gone
}

type statusWrite struct {
	from string        // the resourceVersion the status was computed from
	obj  client.Object // the object as the API server returned it after the write
}

// catchUp gives obj, just read from the cache, the status last written over its very
// resourceVersion.
func (w *statusWriter) catchUp(obj client.Object) {
	if v, ok := w.written.Load(client.ObjectKeyFromObject(obj)); ok && v.(statusWrite).from == obj.GetResourceVersion() {
		copyStatus(obj, v.(statusWrite).obj)
	}
}

// patchBase decides whether obj's freshly computed status must be written, base being the object
// as the reconcile began, and returns what to compute the merge patch from (nil: no write).
func (w *statusWriter) patchBase(base, obj client.Object) client.Object {
	if !equality.Semantic.DeepEqual(statusOf(base), statusOf(obj)) {
		return base
	}
	if v, ok := w.written.Load(client.ObjectKeyFromObject(obj)); ok && !equality.Semantic.DeepEqual(statusOf(v.(statusWrite).obj), statusOf(obj)) {
		last := base.DeepCopyObject().(client.Object)
		copyStatus(last, v.(statusWrite).obj)
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
	w.written.Store(client.ObjectKeyFromObject(obj), statusWrite{from: rv, obj: obj.DeepCopyObject().(client.Object)})
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

// copyStatus sets dst's status to a deep copy of src's (both of the same kind).
func copyStatus(dst, src client.Object) {
	switch d := dst.(type) {
	case *v1alpha1.LivePersonAuthClient:
		d.Status = *src.(*v1alpha1.LivePersonAuthClient).Status.DeepCopy()
	case *v1alpha1.SigningKey:
		d.Status = *src.(*v1alpha1.SigningKey).Status.DeepCopy()
	case *v1alpha1.TokenServer:
		d.Status = *src.(*v1alpha1.TokenServer).Status.DeepCopy()
	default:
		panic(fmt.Sprintf("statusWriter: %T is not one of our kinds", dst))
	}
}
