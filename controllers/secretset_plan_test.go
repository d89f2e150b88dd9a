package controllers

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lpauth/lpauth-operator/api/secretset"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// planData is a compiled set of n clients (id and spec keys) and the set's own login key.
func planData(n int) map[string][]byte {
	data := map[string][]byte{"login": []byte("htpasswd")}
	for i := range n {
		keys := secretset.ClientKeys(fmt.Sprintf("c-%04d", i))
		data[keys[0]] = []byte(fmt.Sprintf("lp-%04d", i))
		data[keys[3]] = []byte(strings.Repeat("s", 300))
	}
	return data
}

func addClient(data map[string][]byte, name string) map[string][]byte {
	next := maps.Clone(data)
	keys := secretset.ClientKeys(name)
	next[keys[0]], next[keys[3]] = []byte("lp-"+name), []byte(strings.Repeat("s", 300))
	return next
}

func TestPlanSetWrite(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pol := setPolicy{foldBytes: 4 << 10, capBytes: 16 << 10, foldAge: time.Minute, foldQuiet: 5 * time.Second}
	data := planData(200)
	written := setState{shards: secretset.SplitAt(data, 2, "a"), base: "a", recent: secretset.Recent{Base: "a"}}
	withNew := func(n int) map[string][]byte {
		d := data
		for i := range n {
			d = addClient(d, fmt.Sprintf("new-%03d", i))
		}
		return d
	}
	aged := written
	aged.recent, _ = secretset.NextRecent(written.recent, "a", []string{"new-000"}, withNew(1), now.Add(-2*time.Minute), pol.capBytes)
	// An old entry, and a client that entered just now: no fold until the overlay is quiet.
	busy := aged
	busy.recent, _ = secretset.NextRecent(aged.recent, "a", []string{"new-000", "new-001"}, withNew(2), now.Add(-2*time.Second), pol.capBytes)
	young := written
	young.recent, _ = secretset.NextRecent(written.recent, "a", []string{"new-000"}, withNew(1), now.Add(-10*time.Second), pol.capBytes)
	own := maps.Clone(data)
	own["login"] = []byte("other users")
	taken := written
	taken.noRecent = true
	// Clients with large keys already in the overlay: all of them are kept, past a Secret.
	big, bigNames := maps.Clone(data), []string(nil)
	for i := range 31 {
		name := fmt.Sprintf("big-%02d", i)
		big[secretset.ClientKeys(name)[0]], big[secretset.ClientKeys(name)[2]] = []byte("lp-"+name), make([]byte, 30<<10)
		bigNames = append(bigNames, name)
	}
	huge := written
	huge.recent, _ = secretset.NextRecent(written.recent, "a", bigNames, big, now, 1<<30)

	for _, tc := range []struct {
		name     string
		st       setState
		data     map[string][]byte
		k        int
		foldWait time.Duration
		// want: the fold's reason contains fold ("" no fold); entries in the overlay written
		// (-1: none written); after.
		fold    string
		entries int
		after   time.Duration
	}{
		{name: "nothing changed", st: written, data: data, k: 2, entries: 0},
		{name: "one new client: the overlay alone", st: written, data: withNew(1), k: 2, entries: 1, after: time.Minute},
		{name: "the overlay's entry keeps its age", st: young, data: withNew(2), k: 2, entries: 2, after: 50 * time.Second},
		{name: "an entry a minute old folds", st: aged, data: withNew(1), k: 2, fold: "oldest", entries: 1},
		{name: "but not while clients arrive", st: busy, data: withNew(2), k: 2, entries: 2, after: 3 * time.Second},
		{name: "a client arriving now puts it off", st: aged, data: withNew(2), k: 2, entries: 2, after: 5 * time.Second},
		{name: "past its size the overlay folds", st: written, data: withNew(12), k: 2, fold: "size", entries: 12},
		{name: "while the fold waits the overlay grows", st: written, data: withNew(12), k: 2, foldWait: 3 * time.Second, entries: 12, after: 3 * time.Second},
		{name: "up to its cap", st: written, data: withNew(80), k: 2, foldWait: 3 * time.Second, entries: 42, after: 3 * time.Second},
		{name: "the login changed", st: written, data: addClient(own, "x"), k: 2, fold: "login", entries: 1},
		{name: "the shards regrow", st: written, data: withNew(1), k: 4, fold: "number of shards", entries: 1},
		{name: "no shards yet", st: setState{}, data: data, k: 1, fold: "missing", entries: -1},
		{name: "shards of an older operator", st: setState{shards: secretset.Split(data, 2)}, data: data, k: 2, fold: "no base", entries: -1},
		{name: "no shards, fold paced", st: setState{}, data: data, k: 1, foldWait: time.Second, entries: -1, after: time.Second},
		{name: "an overlay past a Secret's size is not written", st: huge, data: big, k: 2, foldWait: time.Second, entries: -1, after: time.Second},
		{name: "and folds", st: huge, data: big, k: 2, fold: "not fit", entries: -1},
		{name: "overlay name taken: a change folds", st: taken, data: withNew(1), k: 2, fold: "taken", entries: -1},
		{name: "overlay name taken, nothing changed", st: taken, data: data, k: 2, entries: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := planSetWrite(tc.st, tc.data, tc.k, now, tc.foldWait, pol)
			if (tc.fold == "") != (p.fold == "") || !strings.Contains(p.fold, tc.fold) {
				t.Errorf("fold %q, want one that says %q", p.fold, tc.fold)
			}
			switch {
			case tc.entries < 0 && p.recent != nil:
				t.Errorf("an overlay is written: %d entries", len(p.recent.Entries))
			case tc.entries >= 0 && p.recent == nil:
				t.Error("no overlay is written")
			case tc.entries >= 0 && len(p.recent.Entries) != tc.entries:
				t.Errorf("the overlay has %d entries, want %d", len(p.recent.Entries), tc.entries)
			}
			if p.after != tc.after {
				t.Errorf("after %v, want %v", p.after, tc.after)
			}
			if p.recent != nil && p.recent.Size() > pol.capBytes && tc.st.recent.Size() <= pol.capBytes {
				t.Errorf("the overlay is %d bytes, past its cap %d", p.recent.Size(), pol.capBytes)
			}
		})
	}
}

// Against a fake client, reconcile by reconcile: a new client and a deleted one reach the set
// through the overlay alone, the shards stay as they were, a restarted operator carries on from
// the Secrets, and the overlay folds once it passes its size.
func TestSecretSetWritesChangesToTheOverlay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand", Namespace: "ns", UID: "uid-brand"}}
	objs := []client.Object{ts}
	for i := range 60 {
		objs = append(objs, implicitClient(fmt.Sprintf("many-%02d", i)))
	}
	c := fakeClient(objs...)
	bases := 0
	newReconciler := func() *SecretSetReconciler {
		return &SecretSetReconciler{Client: c, APIReader: c, Scheme: Scheme(), MaxShardBytes: 8000, RecentBytes: 1500,
			NewBase: func() string { bases++; return fmt.Sprintf("base-%d", bases) }}
	}
	r := newReconciler()
	reconcile := func() {
		t.Helper()
		r.pace = nil // the pace is real time; these steps come faster
		if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(ts)}); err != nil {
			t.Fatal(err)
		}
	}
	versions := func() map[string]string {
		out := map[string]string{}
		for _, name := range secretset.Names("brand") {
			s := &corev1.Secret{}
			if c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: name}, s) == nil {
				out[name] = s.ResourceVersion
			}
		}
		return out
	}
	recent := func() secretset.Recent {
		s := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: secretset.RecentName("brand")}, s); err != nil {
			t.Fatal(err)
		}
		return secretset.ParseRecent(s.Data)
	}
	served := func(name string) bool {
		data, err := secretset.ClientData("brand", name, getData(ctx, c, "ns"))
		return err == nil && secretset.AcceptedClientID(data, name) == "lp-"+name
	}

	reconcile()
	before := versions()
	if len(before) < 3 || recent().Base != "base-1" {
		t.Fatalf("the first write: Secrets %v, overlay %+v; want shards and an empty overlay for base-1", before, recent())
	}
	if !served("many-07") {
		t.Fatal("many-07 is not served")
	}

	mustCreate(t, c, implicitClient("new-one"))
	reconcile()
	after := versions()
	for name, rv := range before {
		if name != secretset.RecentName("brand") && after[name] != rv {
			t.Errorf("one new client rewrote shard %s", name)
		}
	}
	if _, ok := recent().Entries["new-one"]; !ok || !served("new-one") {
		t.Errorf("the new client is not in the overlay (%v) or not served", recent().Entries)
	}

	if err := c.Delete(ctx, implicitClient("many-07")); err != nil {
		t.Fatal(err)
	}
	r = newReconciler() // and the operator restarts: its state is the Secrets
	reconcile()
	if e, ok := recent().Entries["many-07"]; !ok || len(e.Data) != 0 || served("many-07") {
		t.Errorf("the deleted client: entry %+v, served %v; want a tombstone", e, served("many-07"))
	}
	for name, rv := range before {
		if name != secretset.RecentName("brand") && versions()[name] != rv {
			t.Errorf("a deleted client rewrote shard %s", name)
		}
	}
	unchanged := versions()
	reconcile()
	if !maps.Equal(versions(), unchanged) {
		t.Error("a reconcile with nothing changed wrote")
	}

	// Past 1,500 bytes (about six clients) the overlay folds into the shards.
	for i := range 6 {
		mustCreate(t, c, implicitClient(fmt.Sprintf("more-%d", i)))
		reconcile()
	}
	if got := recent(); got.Base == "base-1" || got.Replaces != "base-1" || len(got.Entries) > 1 {
		t.Errorf("after the overlay passed its size: %+v, want it folded and emptied", got)
	}
	for _, name := range []string{"new-one", "more-5", "many-08"} {
		if !served(name) {
			t.Errorf("%s is not served after the fold", name)
		}
	}
	if served("many-07") {
		t.Error("the deleted client is back after the fold")
	}
}

// A Secret that holds the overlay's name never stops the set's writes: every change folds.
// Unlabelled, as a squatter's would be, it is outside the operator's cache.
func TestSecretSetFoldsWhenTheOverlayNameIsTaken(t *testing.T) {
	t.Parallel()
	for _, cached := range []bool{true, false} {
		t.Run(fmt.Sprintf("in the cache %v", cached), func(t *testing.T) {
			t.Parallel()
			testSecretSetFoldsWhenTheOverlayNameIsTaken(t, cached)
		})
	}
}

func testSecretSetFoldsWhenTheOverlayNameIsTaken(t *testing.T, cached bool) {
	ctx := context.Background()
	ts := &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand", Namespace: "ns", UID: "uid-brand"}}
	squat := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secretset.RecentName("brand"), Namespace: "ns"}, Data: map[string][]byte{"x": []byte("y")}}
	c := fakeClient(ts, squat, implicitClient("first"))
	rec := events.NewFakeRecorder(10)
	r := &SecretSetReconciler{Client: c, APIReader: c, Scheme: Scheme(), Recorder: rec}
	if !cached {
		r.Client = staleCache{Client: c, hide: []string{squat.Name}}
	}
	for _, name := range []string{"", "second"} {
		if name != "" {
			mustCreate(t, c, implicitClient(name))
		}
		for range 2 { // the first may find the name taken, and writes again at once
			r.pace = nil
			if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(ts)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	data, err := secretset.ClientData("brand", "second", getData(ctx, c, "ns"))
	if err != nil || secretset.AcceptedClientID(data, "second") != "lp-second" {
		t.Errorf("the second client is not in the shards: %v", err)
	}
	if len(rec.Events) != 1 {
		t.Fatalf("%d events, want one NameConflict", len(rec.Events))
	}
	if e := <-rec.Events; !strings.Contains(e, v1alpha1.ReasonNameConflict) || !strings.Contains(e, squat.Name) {
		t.Errorf("event %q, want a NameConflict naming %s", e, squat.Name)
	}
	got := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(squat), got); err != nil || !bytes.Equal(got.Data["x"], []byte("y")) || len(got.OwnerReferences) != 0 {
		t.Errorf("the squatting Secret was touched: %+v, %v", got, err)
	}
}

// A Secret of the set that the cache has not seen yet (written by the reconcile before, the
// watch behind) is the operator's own: finding its name taken on Create, it writes through the
// live Secret, never warns of a NameConflict with itself. Before, each such race warned of one
// (and of SecretSetNotWritten) and, for a shard past the first, capped the set below it.
func TestSecretSetOwnSecretsTheCacheHasNotSeenAreNoConflict(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		what       string
		clients    int
		shardBytes int
		hide       []string
	}{
		{"the overlay", 1, 0, []string{secretset.RecentName("brand")}},
		{"every Secret", 1, 0, secretset.Names("brand")},
		{"a shard past the first", 60, 8000, []string{secretset.ShardName("brand", 1)}},
	} {
		t.Run(tc.what, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			ts := &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand", Namespace: "ns", UID: "uid-brand"}}
			c := fakeClient(ts)
			for i := range tc.clients {
				mustCreate(t, c, implicitClient(fmt.Sprintf("c-%02d", i)))
			}
			rec := events.NewFakeRecorder(100)
			r := &SecretSetReconciler{Client: c, APIReader: c, Scheme: Scheme(), Recorder: rec, MaxShardBytes: tc.shardBytes}
			reconcile := reconcileSet(t, r, ts)
			reconcile()
			reconcile()
			shards := secretset.ShardCount(getSecret(t, c, secretset.Name("brand")).Data)
			if tc.shardBytes > 0 && shards < 2 {
				t.Fatalf("%d clients in %d-byte shards: %d shard, want several", tc.clients, tc.shardBytes, shards)
			}
			mustCreate(t, c, implicitClient("second"))
			r.Client = staleCache{Client: c, hide: tc.hide}
			reconcile()
			reconcile()
			if data, err := secretset.ClientData("brand", "second", getData(ctx, c, "ns")); err != nil || secretset.AcceptedClientID(data, "second") != "lp-second" {
				t.Errorf("the new client is not served while the cache lags: %v", err)
			}
			if got := secretset.ShardCount(getSecret(t, c, secretset.Name("brand")).Data); got != shards {
				t.Errorf("%d shards while the cache lagged, %d before", got, shards)
			}
			noEvents(t, rec, "the set's own Secrets only lagged in the cache")
		})
	}
}

// reconcileSet is one reconcile of ts's set by r, its pacing cleared so that each writes.
func reconcileSet(t *testing.T, r *SecretSetReconciler, ts *v1alpha1.TokenServer) func() {
	return func() {
		t.Helper()
		r.pace = nil
		if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(ts)}); err != nil {
			t.Fatal(err)
		}
	}
}

// noEvents fails the test for each event rec holds (and closes it).
func noEvents(t *testing.T, rec *events.FakeRecorder, why string) {
	t.Helper()
	close(rec.Events)
	for e := range rec.Events {
		t.Errorf("event %q: %s", e, why)
	}
}

func getSecret(t *testing.T, c client.Client, name string) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: name}, s); err != nil {
		t.Fatal(err)
	}
	return s
}

// staleCache is a cache that has not yet seen the Secrets named in hide, nor the deletion of
// the ghosts.
type staleCache struct {
	client.Client
	hide   []string
	ghosts map[string]*corev1.Secret
}

func (s staleCache) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if out, ok := obj.(*corev1.Secret); ok {
		if slices.Contains(s.hide, key.Name) {
			return apierrors.NewNotFound(corev1.Resource("secrets"), key.Name)
		}
		if g, ok := s.ghosts[key.Name]; ok {
			g.DeepCopyInto(out)
			return nil
		}
	}
	return s.Client.Get(ctx, key, obj, opts...)
}

// A set Secret deleted (by hand) while the cache still holds it: the Update finds it gone, and
// the write goes through the live state, a Create, without a warning.
func TestSecretSetSecretDeletedBehindTheCacheIsWrittenAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand", Namespace: "ns", UID: "uid-brand"}}
	c := fakeClient(ts, implicitClient("first"))
	rec := events.NewFakeRecorder(10)
	r := &SecretSetReconciler{Client: c, APIReader: c, Scheme: Scheme(), Recorder: rec}
	reconcile := reconcileSet(t, r, ts)
	reconcile()
	reconcile()
	ghost := getSecret(t, c, secretset.RecentName("brand"))
	if err := c.Delete(ctx, ghost); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, c, implicitClient("second"))
	r.Client = staleCache{Client: c, ghosts: map[string]*corev1.Secret{ghost.Name: ghost}}
	reconcile()
	if data, err := secretset.ClientData("brand", "second", getData(ctx, c, "ns")); err != nil || secretset.AcceptedClientID(data, "second") != "lp-second" {
		t.Errorf("the new client is not served: %v", err)
	}
	noEvents(t, rec, "the cache only lagged behind a deletion")
}

func implicitClient(name string) *v1alpha1.LivePersonAuthClient {
	return &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		Spec: v1alpha1.LivePersonAuthClientSpec{TokenServerRef: v1alpha1.LocalObjectReference{Name: "brand"}, Flow: v1alpha1.FlowImplicit, ClientID: "lp-" + name, AccountID: "1"}}
}

func mustCreate(t *testing.T, c client.Client, o client.Object) {
	t.Helper()
	if err := c.Create(context.Background(), o); err != nil {
		t.Fatal(err)
	}
}

// getData reads the set's Secrets as the token server does: only those its TokenServer controls.
func getData(ctx context.Context, c client.Client, ns string) func(string) (map[string][]byte, bool) {
	return func(name string) (map[string][]byte, bool) {
		s := &corev1.Secret{}
		if c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s) != nil || metav1.GetControllerOf(s) == nil {
			return nil, false
		}
		return s.Data, true
	}
}
