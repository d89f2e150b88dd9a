package secretset_test

import (
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

// setOf is a compiled set of n clients as secretset.Compile lays it out (id and digest keys),
// plus the set's own keys.
func setOf(n int) map[string][]byte {
	data := map[string][]byte{"login": []byte("htpasswd"), "redisURL": []byte("redis://r:6379")}
	for i := range n {
		name := fmt.Sprintf("client-%05d", i)
		if i%7 == 0 {
			name = fmt.Sprintf("dotted.name.%d", i) // names may hold dots
		}
		for j, k := range secretset.ClientKeys(name)[:2] {
			data[k] = []byte(strings.Repeat("x", 25+7*j))
		}
	}
	return data
}

func byName(shards []map[string][]byte, ts string) func(string) (map[string][]byte, bool) {
	return func(name string) (map[string][]byte, bool) {
		for i, d := range shards {
			if secretset.ShardName(ts, i) == name {
				return d, true
			}
		}
		return nil, false
	}
}

func TestShardsSplitAndGatherBack(t *testing.T) {
	data := setOf(3000)
	for _, k := range []int{1, 2, 4, 16} {
		shards := secretset.Split(data, k)
		got, err := secretset.Gather("brand", byName(shards, "brand"))
		if err != nil {
			t.Fatalf("k=%d: %v", k, err)
		}
		delete(got, "shards")
		if !maps.EqualFunc(got, data, func(a, b []byte) bool { return string(a) == string(b) }) {
			t.Fatalf("k=%d: gathered %d keys, want the %d split", k, len(got), len(data))
		}
		sizes := secretset.ShardSizes(data, k)
		for i, d := range shards {
			delete(d, "shards")
			if secretset.Size(d) != sizes[i] {
				t.Errorf("k=%d shard %d: %d bytes, ShardSizes says %d", k, i, secretset.Size(d), sizes[i])
			}
			if k > 1 && i > 0 && (d["login"] != nil || d["redisURL"] != nil) {
				t.Errorf("k=%d: the set's own keys are in shard %d", k, i)
			}
		}
		// Each client is in the shard ClientData finds, which is the one Served reads.
		c := "dotted.name.14"
		one, err := secretset.ClientData("brand", c, byName(secretset.Split(data, k), "brand"))
		if err != nil || one[secretset.ClientKeys(c)[0]] == nil {
			t.Errorf("k=%d: ClientData(%s) = %v keys, %v", k, c, len(one), err)
		}
	}
}

// Doubling the shards moves a client from shard j only to j or j+k: a set that grows keeps each
// client where a reader of either size may find it.
func TestShardsGrowByDoubling(t *testing.T) {
	for i := range 2000 {
		name := fmt.Sprintf("c-%d", i)
		for k := 1; k < secretset.MaxShards; k *= 2 {
			if a, b := secretset.ClientShard(name, k), secretset.ClientShard(name, 2*k); b != a && b != a+k {
				t.Fatalf("%s: shard %d of %d, then %d of %d", name, a, k, b, 2*k)
			}
		}
	}
}

func TestShardsCountHasHysteresis(t *testing.T) {
	const limit = 100_000
	small, big := setOf(200), setOf(3000) // ~14 KiB and ~210 KiB
	if k := secretset.Shards(small, 1, secretset.MaxShards, limit, 0.6); k != 1 {
		t.Errorf("a small set: %d shards, want 1", k)
	}
	k := secretset.Shards(big, 1, secretset.MaxShards, limit, 0.6)
	if k < 4 || k > 8 {
		t.Errorf("210 KiB at 60%% of 100 KB a shard: %d shards, want 4 or 8", k)
	}
	if again := secretset.Shards(big, k, secretset.MaxShards, limit, 0.6); again != k {
		t.Errorf("the same set again: %d shards, then %d", k, again)
	}
	// Kept while it fits (no rewrite of every shard for a small change), given up once half as
	// many shards would do.
	if got := secretset.Shards(setOf(2500), k, secretset.MaxShards, limit, 0.6); got != k {
		t.Errorf("a little smaller: %d shards, want the %d it has", got, k)
	}
	if got := secretset.Shards(small, k, secretset.MaxShards, limit, 0.6); got != 1 {
		t.Errorf("shrunk to 200 clients: %d shards, want 1", got)
	}
	if got := secretset.Shards(setOf(100_000), 1, secretset.MaxShards, limit, 0.6); got != secretset.MaxShards {
		t.Errorf("far too large: %d shards, want MaxShards", got)
	}
	if got := secretset.Shards(setOf(100_000), 1, 4, limit, 0.6); got != 4 {
		t.Errorf("far too large with room for 4 (a shard name taken): %d shards", got)
	}
	// A client more or less at the boundary does not regrow and reshrink the set each time.
	n := 100
	for secretset.Shards(setOf(n+1), 1, secretset.MaxShards, limit, 0.6) == secretset.Shards(setOf(n), 1, secretset.MaxShards, limit, 0.6) {
		n++ // the first size that needs more shards than the one before
	}
	changes, last := 0, 1
	for i := range 40 {
		if k := secretset.Shards(setOf(n+1-i%2), last, secretset.MaxShards, limit, 0.6); k != last {
			changes, last = changes+1, k
		}
	}
	if changes > 1 {
		t.Errorf("at %d clients the shard count changed %d times for one client added and removed 20 times", n, changes)
	}
}

func TestGatherWaitsForAgreeingShards(t *testing.T) {
	data := setOf(1000)
	four, two := secretset.Split(data, 4), secretset.Split(data, 2)
	// Shard 0 says 4 while shard 1 still says 2 (the operator is growing the set).
	mixed := []map[string][]byte{four[0], two[1], four[2], four[3]}
	if _, err := secretset.Gather("brand", byName(mixed, "brand")); err == nil || !strings.Contains(err.Error(), "rewriting") {
		t.Errorf("disagreeing shards gathered: %v", err)
	}
	if _, err := secretset.Gather("brand", byName(four[:3], "brand")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("a missing shard gathered: %v", err)
	}
	if _, err := secretset.Gather("brand", byName(nil, "brand")); err == nil {
		t.Error("no set at all gathered")
	}
	// An empty set (no clients yet) is a set.
	if got, err := secretset.Gather("brand", byName(secretset.Split(nil, 1), "brand")); err != nil || len(got) != 1 {
		t.Errorf("empty set: %v, %v", got, err)
	}
	// A shard that carries a key of another shard's client does not serve it.
	planted := maps.Clone(four[1])
	for key, v := range four[2] {
		if strings.HasPrefix(key, "client.") {
			planted[key+"x"] = v
			planted[key] = []byte("planted")
		}
	}
	got, err := secretset.Gather("brand", byName([]map[string][]byte{four[0], planted, four[2], four[3]}, "brand"))
	if err != nil {
		t.Fatal(err)
	}
	for key, v := range got {
		if string(v) == "planted" {
			t.Fatalf("%s served from the wrong shard", key)
		}
	}
	// A Secret in an older operator's layout (no count, no specs) is no set yet: a token server
	// of this release serving it would serve no client at all.
	old := maps.Clone(data)
	if _, err := secretset.Gather("brand", byName([]map[string][]byte{old}, "brand")); err == nil || !strings.Contains(err.Error(), "layout") {
		t.Errorf("a set in the older layout gathered: %v", err)
	}
}

// The token server's clients are the set's: name, creation time, spec and accepted id come back
// as compiled; a spec changed since is not Served; an entry under another client's key is not
// served at all.
func TestClientsComeFromTheSet(t *testing.T) {
	ts := &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand"}}
	created := metav1.NewTime(time.Unix(1700000000, 0))
	gen := &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "gen", CreationTimestamp: created,
		Annotations: map[string]string{v1alpha1.AnnotationGeneratedClientID: "lp-gen"}},
		Spec: v1alpha1.LivePersonAuthClientSpec{TokenServerRef: v1alpha1.LocalObjectReference{Name: "brand"}, Flow: v1alpha1.FlowImplicit, RedirectURIs: []string{"https://a.example/cb"}}}
	own := &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "own", CreationTimestamp: created},
		Spec: v1alpha1.LivePersonAuthClientSpec{TokenServerRef: v1alpha1.LocalObjectReference{Name: "brand"}, Flow: v1alpha1.FlowImplicit, ClientID: "lp-own", AccountID: "42"}}
	data := secretset.Compile(ts, []*v1alpha1.LivePersonAuthClient{gen, own}, func(string) *corev1.Secret { return nil })
	got, errs := secretset.Clients("ns", data)
	if len(errs) != 0 || len(got) != 2 {
		t.Fatalf("clients %v, errors %v", got, errs)
	}
	if g := got[0]; g.Name != "gen" || g.Namespace != "ns" || !g.CreationTimestamp.Equal(&created) || g.EffectiveClientID() != "lp-gen" ||
		!reflect.DeepEqual(g.Spec, gen.Spec) {
		t.Errorf("gen came back as %+v", g)
	}
	if o := got[1]; o.EffectiveClientID() != "lp-own" || o.Spec.AccountID != "42" {
		t.Errorf("own came back as %+v", o)
	}
	if !secretset.Served(data, gen, gen.EffectiveClientID(), nil, nil) {
		t.Error("gen is not Served as compiled")
	}
	changed := gen.DeepCopy()
	changed.Spec.RedirectURIs = []string{"https://b.example/cb"}
	if secretset.Served(data, changed, changed.EffectiveClientID(), nil, nil) {
		t.Error("a client whose spec changed since the set was compiled is Served")
	}
	// own's entry moved under gen's key: neither is served from it.
	planted := maps.Clone(data)
	planted[secretset.ClientKeys("gen")[3]] = data[secretset.ClientKeys("own")[3]]
	got, errs = secretset.Clients("ns", planted)
	if len(errs) != 1 || len(got) != 1 || got[0].Name != "own" {
		t.Errorf("a planted entry: clients %v, errors %v", got, errs)
	}
}

// The memos change nothing but the work: a client changed (a new resourceVersion) is compiled anew,
// an entry whose bytes changed is decoded anew, and deleted clients leave both.
func TestMemosFollowChanges(t *testing.T) {
	ts := &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand"}}
	c := &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "a", UID: "uid-a", ResourceVersion: "1"},
		Spec: v1alpha1.LivePersonAuthClientSpec{TokenServerRef: v1alpha1.LocalObjectReference{Name: "brand"}, Flow: v1alpha1.FlowImplicit, ClientID: "lp-a", AccountID: "1"}}
	none := func(string) *corev1.Secret { return nil }
	var memo secretset.SpecMemo
	var dec secretset.Decoder
	data := secretset.CompileWith(&memo, ts, []*v1alpha1.LivePersonAuthClient{c}, none)
	if got, _ := dec.Clients("ns", data); len(got) != 1 || got[0].Spec.AccountID != "1" {
		t.Fatalf("first: %+v", got)
	}
	c.Spec.AccountID, c.ResourceVersion = "2", "2"
	data = secretset.CompileWith(&memo, ts, []*v1alpha1.LivePersonAuthClient{c}, none)
	if !secretset.Served(data, c, c.EffectiveClientID(), nil, nil) {
		t.Error("the new generation was not compiled")
	}
	if got, _ := dec.Clients("ns", data); len(got) != 1 || got[0].Spec.AccountID != "2" {
		t.Errorf("after the change: %+v", got)
	}
	data = secretset.CompileWith(&memo, ts, nil, none)
	if got, _ := dec.Clients("ns", data); len(got) != 0 {
		t.Errorf("after the deletion: %+v", got)
	}
}

// A client id belongs to its oldest claimant: a younger client with the same id is not
// compiled, so leaving the owner out (a full shard) can never let it be served under that id.
func TestYoungerClaimantOfAnIDIsNotCompiled(t *testing.T) {
	ts := &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand"}}
	mk := func(name string, at int64) *v1alpha1.LivePersonAuthClient {
		return &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(time.Unix(at, 0))},
			Spec: v1alpha1.LivePersonAuthClientSpec{TokenServerRef: v1alpha1.LocalObjectReference{Name: "brand"}, Flow: v1alpha1.FlowImplicit, ClientID: "lp-shared"}}
	}
	owner, younger := mk("zz-owner", 100), mk("aa-younger", 200)
	data := secretset.Compile(ts, []*v1alpha1.LivePersonAuthClient{younger, owner}, func(string) *corev1.Secret { return nil })
	if secretset.AcceptedClientID(data, "zz-owner") != "lp-shared" {
		t.Error("the owner is not compiled")
	}
	for _, k := range secretset.ClientKeys("aa-younger") {
		if _, ok := data[k]; ok {
			t.Errorf("the younger claimant's %s is compiled", k)
		}
	}
}
