package controllers

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/lpauth/lpauth-operator/api/keys"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

func TestStatusPatchBase(t *testing.T) {
	t.Parallel()
	ready := v1alpha1.LivePersonAuthClientStatus{ClientID: "lp-1", ObservedGeneration: 1}
	failed := v1alpha1.LivePersonAuthClientStatus{ObservedGeneration: 1, Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonReconcileError}}}
	obj := func(rv string, st v1alpha1.LivePersonAuthClientStatus) *v1alpha1.LivePersonAuthClient {
		return &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns", ResourceVersion: rv}, Status: st}
	}
	for _, tc := range []struct {
		name          string
		last          *statusWrite
		base, current *v1alpha1.LivePersonAuthClient
		want          *v1alpha1.LivePersonAuthClientStatus // the status to patch from; nil: no write
	}{
		{"nothing written, cache differs", nil, obj("5", failed), obj("5", ready), &failed},
		{"nothing written, cache agrees", nil, obj("5", ready), obj("5", ready), nil},
		// The API server holds the error: the patch must be computed from it, or it would not
		// carry the conditions the stale cache already shows.
		{"an error written last, stale cache shows the wanted status", &statusWrite{from: "5", status: failed.DeepCopy()}, obj("6", ready), obj("6", ready), &failed},
		{"changed since by someone else", &statusWrite{from: "5", status: ready.DeepCopy()}, obj("7", failed), obj("7", ready), &failed},
		{"written earlier, cache agrees", &statusWrite{from: "5", status: ready.DeepCopy()}, obj("7", ready), obj("7", ready), nil},
	} {
		w := &statusWriter{}
		if tc.last != nil {
			w.written.Store(client.ObjectKeyFromObject(tc.base), *tc.last)
		}
		got, _ := w.patchBase(tc.base, tc.current).(*v1alpha1.LivePersonAuthClient)
		switch {
		case tc.want == nil && got != nil:
			t.Errorf("%s: writes from %+v, want no write", tc.name, got.Status)
		case tc.want != nil && (got == nil || !equality.Semantic.DeepEqual(got.Status, *tc.want)):
			t.Errorf("%s: patch base = %+v, want status %+v", tc.name, got, *tc.want)
		case got != nil && got.ResourceVersion != tc.base.ResourceVersion:
			t.Errorf("%s: patch base lost the object's metadata", tc.name)
		}
	}
}

// A reconcile that sees the very resourceVersion its last status write was computed from
// builds on that status, not on the cache's older one.
func TestCatchUp(t *testing.T) {
	t.Parallel()
	w := &statusWriter{}
	written := &v1alpha1.SigningKey{ObjectMeta: metav1.ObjectMeta{Name: "k", Namespace: "ns", ResourceVersion: "6"}, Status: v1alpha1.SigningKeyStatus{ActiveKeyID: "kid-1"}}
	w.written.Store(client.ObjectKeyFromObject(written), statusWrite{from: "5", status: written.Status.DeepCopy()})
	stale := &v1alpha1.SigningKey{ObjectMeta: metav1.ObjectMeta{Name: "k", Namespace: "ns", ResourceVersion: "5"}}
	w.catchUp(stale)
	if stale.Status.ActiveKeyID != "kid-1" {
		t.Errorf("stale view not caught up: %+v", stale.Status)
	}
	newer := &v1alpha1.SigningKey{ObjectMeta: metav1.ObjectMeta{Name: "k", Namespace: "ns", ResourceVersion: "9"}}
	w.catchUp(newer)
	if newer.Status.ActiveKeyID != "" {
		t.Errorf("a newer object's status was replaced: %+v", newer.Status)
	}
	stale.Status.ActiveKeyID = "changed by the reconcile"
	again := &v1alpha1.SigningKey{ObjectMeta: metav1.ObjectMeta{Name: "k", Namespace: "ns", ResourceVersion: "5"}}
	w.catchUp(again)
	if again.Status.ActiveKeyID != "kid-1" {
		t.Error("catchUp shares the remembered status instead of copying it")
	}
}

// The one status writer of all three kinds: no write when nothing changed, one when something
// did, and after a write the stale cache's copy is caught up instead of being written again.
func TestStatusWriterWritesOnlyChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand", Namespace: "ns"}}
	patches := 0
	c := fake.NewClientBuilder().WithScheme(Scheme()).WithObjects(ts).WithStatusSubresource(ts).
		WithInterceptorFuncs(interceptor.Funcs{SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			patches++
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		}}).Build()
	read := func() *v1alpha1.TokenServer {
		out := &v1alpha1.TokenServer{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(ts), out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	w := &statusWriter{}

	cached := read() // what the cache holds before the write, and goes on holding for a while
	obj := cached.DeepCopy()
	if err := w.write(ctx, c, cached, obj); err != nil || patches != 0 {
		t.Fatalf("nothing changed: %d patches, %v", patches, err)
	}
	obj.Status.ReadyReplicas = 2
	if err := w.write(ctx, c, cached, obj); err != nil || patches != 1 || read().Status.ReadyReplicas != 2 {
		t.Fatalf("a change: %d patches, %v, stored %d", patches, err, read().Status.ReadyReplicas)
	}

	// The next reconcile reads the stale copy, at the resourceVersion the write was computed
	// from: it builds on the written status, and computing the same again writes nothing.
	again := cached.DeepCopy()
	w.catchUp(again)
	base := again.DeepCopy()
	if err := w.write(ctx, c, base, again); err != nil || patches != 1 {
		t.Fatalf("the same status from a stale cache: %d patches, %v", patches, err)
	}
	w.forget(client.ObjectKeyFromObject(ts))
	if _, ok := w.written.Load(client.ObjectKeyFromObject(ts)); ok {
		t.Error("forget kept the object's last write")
	}
}

// Regression (make faults, 200 rotations then tampering): repairs left 17 published keys, status
// could hold 16, and every status write was refused, leaving a stale Ready status behind.
func TestStatusShowsAtMostItsBoundOfKeys(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var set []keys.Key
	for i := range 20 {
		jwk, err := keys.Generate(v1alpha1.ES256, 0)
		if err != nil {
			t.Fatal(err)
		}
		state := v1alpha1.KeyRetired
		switch i {
		case 3:
			state = v1alpha1.KeyActive // an old Active key among newer retired ones (a repair)
		case 19:
			state = v1alpha1.KeyNext
		}
		set = append(set, keys.Key{JWK: jwk, State: state, CreatedAt: base.Add(time.Duration(i) * time.Hour)})
	}
	sk := &v1alpha1.SigningKey{}
	if err := setKeyStatus(sk, set, "keys-signing-keys", time.Time{}, "", "", nil); err != nil {
		t.Fatal(err)
	}
	if len(sk.Status.Keys) != maxStatusKeys {
		t.Fatalf("status holds %d keys, want %d", len(sk.Status.Keys), maxStatusKeys)
	}
	states := map[v1alpha1.KeyState]int{}
	for _, k := range sk.Status.Keys {
		states[k.State]++
	}
	if states[v1alpha1.KeyActive] != 1 || states[v1alpha1.KeyNext] != 1 || sk.Status.ActiveKeyID != set[3].ID() {
		t.Errorf("status lost the Active or Next key: %v", states)
	}
}
