package secretset_test

import (
	"bytes"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lpauth/lpauth-operator/api/secretset"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// withRecent reads shards and, under the overlay's name, recent (nil: no overlay).
func withRecent(shards []map[string][]byte, recent map[string][]byte, ts string) func(string) (map[string][]byte, bool) {
	inShards := byName(shards, ts)
	return func(name string) (map[string][]byte, bool) {
		if name == secretset.RecentName(ts) {
			return recent, recent != nil
		}
		return inShards(name)
	}
}

// overlayFor is the overlay over shards that brings them to data, dated at.
func overlayFor(t *testing.T, shards []map[string][]byte, prev secretset.Recent, data map[string][]byte, at time.Time) secretset.Recent {
	t.Helper()
	changed, own := secretset.Changed(shards, data)
	if own {
		t.Fatal("the set's own keys changed: no overlay carries them")
	}
	next, left := secretset.NextRecent(prev, secretset.Base(shards[0]), changed, data, at, 1<<20)
	if left != 0 {
		t.Fatalf("%d clients left out of the overlay", left)
	}
	return next
}

// clientView is what a reader of the set sees of client name: its keys, or nil while the set
// cannot be read.
func clientView(set map[string][]byte, name string) map[string]string {
	out := map[string]string{}
	for _, k := range secretset.ClientKeys(name) {
		if v, ok := set[k]; ok {
			out[k] = string(v)
		}
	}
	return out
}

func sameData(a, b map[string][]byte) bool { return maps.EqualFunc(a, b, bytes.Equal) }

// changes modifies a client, adds one and removes one of setOf(n)'s.
func changes(data map[string][]byte, modify, add, remove string) map[string][]byte {
	next := maps.Clone(data)
	next[secretset.ClientKeys(modify)[1]] = []byte("a new digest")
	for _, k := range secretset.ClientKeys(add)[:2] {
		next[k] = []byte("new client " + k)
	}
	for _, k := range secretset.ClientKeys(remove) {
		delete(next, k)
	}
	return next
}

func TestRecentAppliesOnlyOverItsBase(t *testing.T) {
	data := setOf(300)
	shards := secretset.SplitAt(data, 4, "base-a")
	changed := changes(data, "client-00001", "added", "client-00002")
	recent := overlayFor(t, shards, secretset.Recent{}, changed, t0)
	if len(recent.Entries) != 3 {
		t.Fatalf("%d entries, want 3 (changed, added, removed)", len(recent.Entries))
	}

	got, err := secretset.Gather("brand", withRecent(shards, recent.Data(), "brand"))
	if err != nil {
		t.Fatal(err)
	}
	delete(got, "shards")
	delete(got, "base")
	if !sameData(got, changed) {
		t.Errorf("shards with their overlay gathered %d keys, want the %d compiled", len(got), len(changed))
	}
	if _, ok := got[secretset.ClientKeys("client-00002")[0]]; ok {
		t.Error("a tombstoned client is still in the set")
	}
	for key := range got {
		if strings.HasSuffix(key, ".changed") || strings.HasSuffix(key, ".removed") {
			t.Errorf("the overlay's own key %s reached the set", key)
		}
	}

	// Another base: the overlay is stale (the shards were rewritten since) and ignored.
	stale := recent
	stale.Base = "base-old"
	got, err = secretset.Gather("brand", withRecent(shards, stale.Data(), "brand"))
	if err != nil || string(got[secretset.ClientKeys("client-00001")[1]]) == "a new digest" || got[secretset.ClientKeys("added")[0]] != nil {
		t.Errorf("a stale overlay was applied (err %v)", err)
	}
	// Shards without a base (an older operator wrote them) take no overlay at all.
	old := secretset.Split(data, 4)
	noBase := recent
	noBase.Base = ""
	for _, r := range []secretset.Recent{recent, noBase} {
		got, err = secretset.Gather("brand", withRecent(old, r.Data(), "brand"))
		delete(got, "shards")
		if err != nil || !sameData(got, data) {
			t.Errorf("shards without a base, overlay for %q: %v", r.Base, err)
		}
	}
	// An overlay that says it replaces the reader's base: the reader has not seen the new shard
	// 0 yet and must keep what it had.
	ahead := secretset.Recent{Base: "base-b", Replaces: "base-a"}
	if _, err := secretset.Gather("brand", withRecent(shards, ahead.Data(), "brand")); err == nil || !strings.Contains(err.Error(), "rewriting") {
		t.Errorf("an overlay ahead of shard 0: %v, want an error", err)
	}
	if _, err := secretset.ClientData("brand", "client-00001", withRecent(shards, ahead.Data(), "brand")); err == nil {
		t.Error("ClientData read shards behind their overlay")
	}
}

// A fold, step by step as the operator writes it: the overlay with the latest changes, shards
// highest first, shard 0 with the new base, then an empty overlay for it. At every step, each
// client reads as it did before the fold or as folded, and never goes back; a reader that
// sees the new overlay before the new shard 0 (one informer per Secret) keeps what it had.
func TestFoldIsConsistentAtEveryStep(t *testing.T) {
	const k = 4
	data := setOf(400)
	shards := secretset.SplitAt(data, k, "base-a")
	v1 := changes(data, "client-00001", "added", "client-00002")
	recent := overlayFor(t, shards, secretset.Recent{}, v1, t0)
	// Changes since the overlay was written, which the fold carries too: a client of the
	// overlay changed again, one changed for the first time, one removed.
	folded := changes(v1, "added", "client-00003", "client-00005")

	names := []string{"client-00001", "client-00002", "client-00003", "client-00004", "client-00005", "added", "dotted.name.7"}
	before, err := secretset.Gather("brand", withRecent(shards, recent.Data(), "brand"))
	if err != nil {
		t.Fatal(err)
	}
	step := func(label string, view map[string][]byte, seen map[string]bool) {
		t.Helper()
		for _, name := range names {
			got, old, want := clientView(view, name), clientView(before, name), clientView(folded, name)
			switch {
			case reflect.DeepEqual(got, want):
				seen[name] = true
			case seen[name]:
				t.Errorf("%s: %s went back from its folded state to %v", label, name, got)
			case !reflect.DeepEqual(got, old):
				t.Errorf("%s: %s reads %v, neither as before the fold (%v) nor folded (%v)", label, name, got, old, want)
			}
		}
	}

	// The operator's writes, in order, and the Secrets a reader sees after each.
	next := secretset.SplitAt(folded, k, "base-b")
	cur := map[string]map[string][]byte{secretset.RecentName("brand"): recent.Data()}
	for i, d := range shards {
		cur[secretset.ShardName("brand", i)] = d
	}
	type write struct {
		name string
		data map[string][]byte
	}
	writes := []write{}
	for i := k - 1; i >= 0; i-- {
		writes = append(writes, write{secretset.ShardName("brand", i), next[i]})
	}
	writes = append(writes, write{secretset.RecentName("brand"), secretset.Recent{Base: "base-b", Replaces: "base-a"}.Data()})
	seen := map[string]bool{}
	for n, w := range writes {
		cur[w.name] = w.data
		get := func(name string) (map[string][]byte, bool) { d, ok := cur[name]; return d, ok }
		view, err := secretset.Gather("brand", get)
		if err != nil {
			// Shards of two bases: the reader keeps the set it had (asserted below).
			continue
		}
		label := fmt.Sprintf("after write %d (%s)", n, w.name)
		step(label, view, seen)
		// The operator's check of one client agrees with the whole set.
		for _, name := range names {
			one, err := secretset.ClientData("brand", name, get)
			if err != nil {
				continue // its shard is of another base than shard 0: not served yet
			}
			if got, whole := clientView(one, name), clientView(view, name); !reflect.DeepEqual(got, whole) {
				t.Errorf("%s: ClientData(%s) = %v, the set says %v", label, name, got, whole)
			}
		}
	}
	final, _ := secretset.Gather("brand", func(name string) (map[string][]byte, bool) { d, ok := cur[name]; return d, ok })
	delete(final, "shards")
	delete(final, "base")
	if !sameData(final, folded) {
		t.Error("after the fold the set is not what was folded")
	}

	// A token server watches each Secret apart, so it may see any mix of old and new shards
	// and overlay. Whatever it gathers, no client reads older than before the fold (a shard's
	// state from before the overlay: a deleted client back, a client the overlay added gone).
	for mask := range 1 << (k + 1) {
		mixed := map[string]map[string][]byte{secretset.RecentName("brand"): recent.Data()}
		if mask&(1<<k) != 0 {
			mixed[secretset.RecentName("brand")] = writes[len(writes)-1].data
		}
		for j := range k {
			mixed[secretset.ShardName("brand", j)] = shards[j]
			if mask&(1<<j) != 0 {
				mixed[secretset.ShardName("brand", j)] = next[j]
			}
		}
		get := func(name string) (map[string][]byte, bool) { d, ok := mixed[name]; return d, ok }
		view, err := secretset.Gather("brand", get)
		if err != nil {
			if mask == 0 || mask == 1<<(k+1)-1 {
				t.Errorf("new Secrets %b: %v (before the fold and after it the set must gather)", mask, err)
			}
			continue
		}
		step(fmt.Sprintf("a reader seeing new Secrets %b", mask), view, map[string]bool{})
		for _, name := range names {
			if one, err := secretset.ClientData("brand", name, get); err == nil && !reflect.DeepEqual(clientView(one, name), clientView(view, name)) {
				t.Errorf("new Secrets %b: ClientData(%s) disagrees with the set", mask, name)
			}
		}
	}
	if _, err := secretset.Gather("brand", func(name string) (map[string][]byte, bool) {
		d, ok := map[string]map[string][]byte{secretset.ShardName("brand", 0): next[0], secretset.ShardName("brand", 1): shards[1],
			secretset.ShardName("brand", 2): next[2], secretset.ShardName("brand", 3): next[3], secretset.RecentName("brand"): recent.Data()}[name]
		return d, ok
	}); err == nil {
		t.Error("the new shard 0 over an old shard 1 gathered (its clients would read their state from before the overlay)")
	}

	// A token server that saw the new overlay but still the old shard 0 (and any mix of the
	// other shards): an error, so it keeps serving its last set.
	for i := range k {
		mixed := map[string]map[string][]byte{secretset.RecentName("brand"): writes[len(writes)-1].data}
		for j := range k {
			mixed[secretset.ShardName("brand", j)] = shards[j]
			if j > 0 && j <= i {
				mixed[secretset.ShardName("brand", j)] = next[j]
			}
		}
		get := func(name string) (map[string][]byte, bool) { d, ok := mixed[name]; return d, ok }
		if _, err := secretset.Gather("brand", get); err == nil {
			t.Errorf("the new overlay over the old shard 0 (shards 1..%d new) gathered", i)
		}
	}
}

// Served reads a client through ClientData: from the overlay when it has an entry there, so a
// client is Ready as soon as the overlay carries it, and not once a tombstone removes it.
func TestClientDataReadsTheOverlayFirst(t *testing.T) {
	ts := &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand"}}
	mk := func(name, id string) *v1alpha1.LivePersonAuthClient {
		return &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1alpha1.LivePersonAuthClientSpec{TokenServerRef: v1alpha1.LocalObjectReference{Name: "brand"}, Flow: v1alpha1.FlowImplicit, ClientID: id}}
	}
	none := func(string) *corev1.Secret { return nil }
	var clients []*v1alpha1.LivePersonAuthClient
	for i := range 50 {
		clients = append(clients, mk(fmt.Sprintf("c-%02d", i), fmt.Sprintf("lp-%02d", i)))
	}
	shards := secretset.SplitAt(secretset.Compile(ts, clients, none), 2, "base-a")

	fresh, edited := mk("fresh", "lp-fresh"), clients[7].DeepCopy()
	edited.Spec.AccountID = "99"
	now := []*v1alpha1.LivePersonAuthClient{fresh, edited}
	for i, c := range clients {
		if i != 3 && i != 7 { // c-03 deleted, c-07 edited
			now = append(now, c)
		}
	}
	recent := overlayFor(t, shards, secretset.Recent{}, secretset.Compile(ts, now, none), t0)
	get := withRecent(shards, recent.Data(), "brand")

	for _, tc := range []struct {
		c    *v1alpha1.LivePersonAuthClient
		want bool
	}{{fresh, true}, {edited, true}, {clients[7], false}, {clients[3], false}, {clients[20], true}} {
		data, err := secretset.ClientData("brand", tc.c.Name, get)
		if err != nil {
			t.Fatal(err)
		}
		if got := secretset.Served(data, tc.c, tc.c.EffectiveClientID(), nil, nil); got != tc.want {
			t.Errorf("%s: Served = %v, want %v", tc.c.Name, got, tc.want)
		}
	}
	// Without the overlay, the shards alone: the new client is not served yet.
	if data, _ := secretset.ClientData("brand", "fresh", byName(shards, "brand")); secretset.Served(data, fresh, fresh.EffectiveClientID(), nil, nil) {
		t.Error("fresh is served by shards that never carried it")
	}
}

// NextRecent keeps every entry the overlay has (its time too, so age counts from the first
// change), drops the clients that read as the shards again, and adds new ones only within the
// limit: the rest wait for a fold.
func TestNextRecentKeepsItsEntriesWithinTheLimit(t *testing.T) {
	data := setOf(200)
	shards := secretset.SplitAt(data, 2, "base-a")
	first := overlayFor(t, shards, secretset.Recent{}, changes(data, "client-00001", "added", "client-00002"), t0)

	// client-00001 changes again, client-00002 comes back as it was, 40 new clients arrive.
	now := changes(data, "client-00001", "added", "client-00009")
	now[secretset.ClientKeys("client-00001")[1]] = []byte("a newer digest")
	for i := range 40 {
		now[secretset.ClientKeys(fmt.Sprintf("new-%02d", i))[0]] = []byte(strings.Repeat("n", 100))
	}
	changed, _ := secretset.Changed(shards, now)
	limit := first.Size() + 10*160
	next, left := secretset.NextRecent(first, "base-a", changed, now, t0.Add(time.Minute), limit)
	if e := next.Entries["client-00001"]; !e.Since.Equal(t0) || string(e.Data[secretset.ClientKeys("client-00001")[1]]) != "a newer digest" {
		t.Errorf("a changed entry: %+v, want the new digest dated %v", e, t0)
	}
	if _, ok := next.Entries["client-00002"]; ok {
		t.Error("a client that reads as its shard again kept its entry")
	}
	if e, ok := next.Entries["client-00009"]; !ok || len(e.Data) != 0 || !e.Since.Equal(t0.Add(time.Minute)) {
		t.Errorf("a new tombstone: %+v", e)
	}
	if left == 0 || len(next.Entries)+left != len(changed) || next.Size() > limit {
		t.Errorf("%d entries (%d bytes), %d left, of %d changed, within %d bytes", len(next.Entries), next.Size(), left, len(changed), limit)
	}
	if !next.Oldest().Equal(t0) {
		t.Errorf("oldest %v, want %v", next.Oldest(), t0)
	}
	// Entries already in the overlay stay even past the limit: dropping one would take its
	// client back to the shards' older state.
	tiny, left := secretset.NextRecent(next, "base-a", changed, now, t0.Add(2*time.Minute), 10)
	if len(tiny.Entries) != len(next.Entries) || left != len(changed)-len(next.Entries) {
		t.Errorf("over the limit: %d entries, %d left; want the %d it had", len(tiny.Entries), left, len(next.Entries))
	}
	// An overlay for another base is no starting point: its entries are in the shards or gone.
	other, _ := secretset.NextRecent(secretset.Recent{Base: "base-old", Entries: first.Entries}, "base-a", nil, now, t0, limit)
	if len(other.Entries) != 0 || other.Base != "base-a" {
		t.Errorf("from a stale overlay: %+v", other)
	}

	// What is written reads back the same, and Size counts it.
	back := secretset.ParseRecent(next.Data())
	if !reflect.DeepEqual(back, next) {
		t.Errorf("the overlay read back differs:\n got %+v\nwant %+v", back, next)
	}
	if secretset.Size(next.Data()) != next.Size() {
		t.Errorf("Size %d, its data %d bytes", next.Size(), secretset.Size(next.Data()))
	}
	if !reflect.DeepEqual(next.Data(), back.Data()) {
		t.Error("the overlay is not written the same way twice")
	}
}

func TestChangedFindsClientsAndOwnKeys(t *testing.T) {
	data := setOf(100)
	shards := secretset.SplitAt(data, 4, "base-a")
	if c, own := secretset.Changed(shards, data); len(c) != 0 || own {
		t.Errorf("the set as written: %v, own %v", c, own)
	}
	now := changes(data, "client-00001", "added", "client-00002")
	now["login"] = []byte("other users")
	c, own := secretset.Changed(shards, now)
	if !reflect.DeepEqual(c, []string{"added", "client-00001", "client-00002"}) || !own {
		t.Errorf("changed %v, own %v", c, own)
	}
	// A key in a shard it does not belong in is never read, so it is no change either.
	planted := secretset.SplitAt(data, 4, "base-a")
	planted[secretset.ClientShard("client-00001", 4)^1]["client.client-00001.jwe"] = []byte("x")
	if c, _ := secretset.Changed(planted, data); len(c) != 0 {
		t.Errorf("a key in the wrong shard counted as a change: %v", c)
	}
}

// A fold whose emptying of the overlay was never written (a conflict, a restart): the next
// overlay, for the new base, still names the base it replaces, so a reader that has not seen
// the fold's shard 0 keeps its set instead of reading the old shards without their overlay.
func TestNextRecentAfterAFoldNamesTheBaseItReplaces(t *testing.T) {
	data := setOf(20)
	old := secretset.Recent{Base: "base-a", Entries: map[string]secretset.RecentEntry{}}
	next, _ := secretset.NextRecent(old, "base-b", []string{"client-00001"}, data, t0, 1<<20)
	if next.Replaces != "base-a" {
		t.Errorf("replaces %q, want base-a", next.Replaces)
	}
	shards := secretset.SplitAt(data, 2, "base-a")
	if _, err := secretset.Gather("brand", withRecent(shards, next.Data(), "brand")); err == nil {
		t.Error("the new base's overlay over the old shards gathered")
	}
}

// When the overlay is full, a deleted client's tombstone goes in before new clients: it must
// not wait for the paced fold behind a burst of creations.
func TestNextRecentTakesRemovalsFirst(t *testing.T) {
	data := setOf(50)
	gone := "client-00049"
	after := maps.Clone(data)
	for _, k := range secretset.ClientKeys(gone) {
		delete(after, k)
	}
	var changed []string
	for i := range 30 {
		name := fmt.Sprintf("zz-new-%02d", i)
		for _, k := range secretset.ClientKeys(name)[:2] {
			after[k] = []byte("new client " + k)
		}
		changed = append(changed, name)
	}
	changed = append(changed, gone) // named last, as Changed sorts it
	next, left := secretset.NextRecent(secretset.Recent{Base: "b"}, "b", changed, after, t0, 2000)
	if left == 0 {
		t.Fatal("the limit left nothing out; make it smaller")
	}
	if _, ok := next.Entries[gone]; !ok {
		t.Errorf("the tombstone of %s was left out for new clients (%d left out)", gone, left)
	}
}

// A fold cut short (shard 1 written, then a failed write or a restart), then another fold with
// the next generation: a token server that sees any mix of the three generations' Secrets never
// reads a client older than before the first fold — in particular not a deleted client, whose
// tombstone only the first overlay held. (The emptied overlay of the second fold named no base
// it replaced: the first fold's shards disagreed, so the operator knew no base for them.)
func TestAFoldCutShortThenRedoneIsConsistent(t *testing.T) {
	const k = 2
	data := setOf(60)
	a := secretset.SplitAt(data, k, "g1-a")
	var gone string
	for i := 5; i < 60; i++ {
		if name := fmt.Sprintf("client-%05d", i); i%7 != 0 && secretset.ClientShard(name, k) == 1 { // setOf names every 7th otherwise
			gone = name
			break
		}
	}
	v1 := changes(data, "client-00002", "added", gone)
	recentA := overlayFor(t, a, secretset.Recent{}, v1, t0)
	if _, ok := recentA.Entries[gone]; !ok {
		t.Fatalf("the overlay holds no tombstone for %s", gone)
	}
	b := secretset.SplitAt(v1, k, secretset.NewBase("b", "g1-a"))
	v2 := changes(v1, "client-00003", "added-later", "client-00004")
	c := secretset.SplitAt(v2, k, secretset.NewBase("c", "g1-a", secretset.Base(b[1])))
	if got := secretset.Base(c[0]); got != "g3-c" {
		t.Fatalf("the redone fold's base is %q, want g3-c", got)
	}
	emptied := secretset.Recent{Base: "g3-c"} // no Replaces: the worst case
	before, err := secretset.Gather("brand", withRecent(a, recentA.Data(), "brand"))
	if err != nil {
		t.Fatal(err)
	}
	names := []string{gone, "client-00002", "client-00003", "client-00004", "added", "added-later", "client-00010"}
	gathered := 0
	for _, s0 := range [][]map[string][]byte{a, c} {
		for _, s1 := range [][]map[string][]byte{a, b, c} {
			for _, ov := range []secretset.Recent{recentA, emptied} {
				set := map[string]map[string][]byte{secretset.ShardName("brand", 0): s0[0], secretset.ShardName("brand", 1): s1[1], secretset.RecentName("brand"): ov.Data()}
				get := func(name string) (map[string][]byte, bool) { d, ok := set[name]; return d, ok }
				view, err := secretset.Gather("brand", get)
				if err != nil {
					continue
				}
				gathered++
				label := fmt.Sprintf("shard 0 %s, shard 1 %s, overlay %s", secretset.Base(s0[0]), secretset.Base(s1[1]), ov.Base)
				for _, name := range names {
					got := clientView(view, name)
					if !reflect.DeepEqual(got, clientView(before, name)) && !reflect.DeepEqual(got, clientView(v1, name)) && !reflect.DeepEqual(got, clientView(v2, name)) {
						t.Errorf("%s: %s reads %v, older than before the first fold", label, name, got)
					}
				}
				if len(clientView(view, gone)) > 0 {
					t.Errorf("%s: the deleted client %s is back", label, gone)
				}
			}
		}
	}
	if gathered < 3 {
		t.Errorf("only %d of 12 views gathered: readers would freeze for a whole fold", gathered)
	}
}
