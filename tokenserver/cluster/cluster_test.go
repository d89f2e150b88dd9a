package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/lpauth/lpauth-operator/api/credentials"
	"github.com/lpauth/lpauth-operator/api/secretset"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/controllers"
	"github.com/lpauth/lpauth-operator/controllers/testenv"
	"github.com/lpauth/lpauth-operator/tokenserver/cluster"
	"github.com/lpauth/lpauth-operator/tokenserver/replay"
	"github.com/lpauth/lpauth-operator/tokenserver/server"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

// TestMain sets controller-runtime's global logger, to discard: what logs through it (client-go's
// request logging under the manager's client) would otherwise print a stack trace saying none
// was set. The operator's own log goes to operatorLog, the token server's to each test (testr).
func TestMain(m *testing.M) {
	ctrl.SetLogger(logr.Discard())
	os.Exit(m.Run())
}

// operatorLog keeps the operator's log (reconcile errors, the event recorder's own) and prints it
// when the test fails. Not testr: the manager may still log after the test has ended.
func operatorLog(t *testing.T) logr.Logger {
	buf := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the operator's log:\n%s", buf.String())
		}
	})
	return zap.New(zap.WriteTo(buf), zap.UseDevMode(true))
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// issueToken is the issue-API credential the operator generated for the TokenServer.
var issueToken string

// TestServesFromTheCluster runs the operator's reconcilers and a token server against a real
// API server: a client is served seconds after it is created, a rotated key within 2 s, and a
// broken client never takes the others down.
func TestServesFromTheCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("a real kube-apiserver and etcd (envtest): skipped by -short")
	}
	env, cfg, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	scheme := controllers.Scheme() // the operator's own: its cache also holds HTTPRoutes
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	skip := true // another test in this binary (or -count=N) registers the same controller names
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Cache: controllers.CacheOptions(), Metrics: metricsserver.Options{BindAddress: "0"}, Logger: operatorLog(t),
		Controller: config.Controller{SkipNameValidation: &skip}})
	if err != nil {
		t.Fatal(err)
	}
	// Secret set shards of 8 KB instead of ~900 KiB: 60 clients make the set grow past one
	// Secret, as 8,000 would in production.
	if err := controllers.Setup(ctx, mgr, controllers.Options{TokenServerImage: "lpauth-operator:test", SecretSetShardBytes: 8000, SecretSetInterval: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	go func() { _ = mgr.Start(ctx) }()
	k8s, _ := client.New(cfg, client.Options{Scheme: scheme})

	ns := "serve"
	must(t, k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	must(t, k8s.Create(ctx, &v1alpha1.SigningKey{ObjectMeta: metav1.ObjectMeta{Name: "keys", Namespace: ns}}))
	must(t, k8s.Create(ctx, &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand", Namespace: ns},
		Spec: v1alpha1.TokenServerSpec{Issuer: "https://auth.brand.example", SigningKeyRef: v1alpha1.LocalObjectReference{Name: "keys"}}}))
	// The operator generates the TokenServer's credentials; the brand's backend reads them.
	creds := &corev1.Secret{}
	eventually(t, 10*time.Second, "the credentials Secret", func() bool {
		return k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: credentials.SecretName("brand")}, creds) == nil
	})
	issueToken = string(creds.Data[credentials.IssueAPITokenKey])

	// The token server runs as its own ServiceAccount, with the Role the operator made for it:
	// the test reads the cluster through that identity, so a Secret it may not read fails here.
	eventually(t, 10*time.Second, "the token server's RoleBinding", func() bool {
		return k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "brand-token-server"}, &rbacv1.RoleBinding{}) == nil
	})
	sa, err := env.AddUser(envtest.User{Name: "system:serviceaccount:" + ns + ":brand-token-server", Groups: []string{"system:serviceaccounts"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	saCfg := sa.Config()
	asServer, _ := client.New(saCfg, client.Options{Scheme: scheme})
	must(t, k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "brand-database", Namespace: ns,
		Labels: map[string]string{v1alpha1.LabelTokenServerReads: "true"}}, StringData: map[string]string{"password": "hunter2"}}))
	// Regression (TokenServerReadsOnlyItsSecrets): its Role read every Secret of the namespace.
	if err := asServer.Get(ctx, client.ObjectKey{Namespace: ns, Name: "brand-database"}, &corev1.Secret{}); !apierrors.IsForbidden(err) {
		t.Errorf("the token server read another Secret of its namespace: %v, want Forbidden", err)
	}
	if err := asServer.List(ctx, &corev1.SecretList{}, client.InNamespace(ns)); !apierrors.IsForbidden(err) {
		t.Errorf("the token server listed the Secrets of its namespace: %v, want Forbidden", err)
	}

	holder := &snapshot.Holder{}
	src := &cluster.Source{Namespace: ns, TokenServer: "brand", Holder: holder, Log: testr.New(t)}
	// The signing key Secret may not exist yet: Start returns after the first attempt either way,
	// and rebuilds when it appears.
	must(t, src.Start(ctx, saCfg, scheme))
	srv := httptest.NewServer(server.Handler(server.Config{Issuer: "https://auth.brand.example", Source: holder, Replay: replay.NewMemory(1000, nil)}))
	t.Cleanup(srv.Close)
	eventually(t, 30*time.Second, "a snapshot with the signing key", func() bool { return holder.Snapshot() != nil })

	// A client is served soon after it is created.
	start := time.Now()
	must(t, k8s.Create(ctx, &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "lp", Namespace: ns},
		Spec: v1alpha1.LivePersonAuthClientSpec{TokenServerRef: v1alpha1.LocalObjectReference{Name: "brand"}, AccountID: "1", ClientID: "lp-client-0001"}}))
	// A broken one (its Secret does not exist) is left out and must not stop the others.
	must(t, k8s.Create(ctx, &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "broken", Namespace: ns},
		Spec: v1alpha1.LivePersonAuthClientSpec{TokenServerRef: v1alpha1.LocalObjectReference{Name: "brand"}, AccountID: "2", ClientID: "lp-client-0002",
			ClientSecretRef: &v1alpha1.SecretKeyRef{Name: "missing", Key: "secret"}}}))
	eventually(t, 30*time.Second, "the new client to be served", func() bool {
		return issueStatus(t, srv.URL, "lp-client-0001") == http.StatusOK
	})
	t.Logf("client created to served: %v", time.Since(start))
	if got := issueStatus(t, srv.URL, "lp-client-0002"); got != http.StatusBadRequest {
		t.Errorf("the broken client: %d, want 400 (left out of the snapshot)", got)
	}

	// A rotation is served within 2 s of the annotation.
	sk := &v1alpha1.SigningKey{}
	must(t, k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "keys"}, sk))
	var next string
	for _, k := range sk.Status.Keys {
		if k.State == v1alpha1.KeyNext {
			next = k.KeyID
		}
	}
	if next == "" || tokenKid(t, srv.URL) != sk.Status.ActiveKeyID {
		t.Fatalf("before rotation: next %q, served kid %q, active %q", next, tokenKid(t, srv.URL), sk.Status.ActiveKeyID)
	}
	patch := client.MergeFrom(sk.DeepCopy())
	metav1.SetMetaDataAnnotation(&sk.ObjectMeta, v1alpha1.AnnotationRotate, "now")
	start = time.Now()
	must(t, k8s.Patch(ctx, sk, patch))
	eventually(t, 2*time.Second, "the rotated key to sign served tokens", func() bool { return tokenKid(t, srv.URL) == next })
	t.Logf("annotate to new key served: %v", time.Since(start))

	// The secret set grows into shards the token server may read (its Role names them), every
	// client stays served, and the set shrinks back when the clients go. A Secret someone else
	// made under a shard's name (unlabelled: outside the operator's cache) caps the set below
	// it instead of stopping its writes.
	must(t, k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secretset.ShardName("brand", 4), Namespace: ns},
		StringData: map[string]string{"squatter": "x"}}))
	var names []string
	for i := range 60 {
		name := fmt.Sprintf("many-%02d", i)
		names = append(names, name)
		must(t, k8s.Create(ctx, &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: v1alpha1.LivePersonAuthClientSpec{TokenServerRef: v1alpha1.LocalObjectReference{Name: "brand"}, AccountID: "1", ClientID: "lp-" + name}}))
	}
	eventually(t, 60*time.Second, "60 more clients served from a sharded set", func() bool {
		for _, name := range names {
			if issueStatus(t, srv.URL, "lp-"+name) != http.StatusOK {
				return false
			}
		}
		return true
	})
	eventually(t, 10*time.Second, "62 clients in 8 KB shards, the name of shard 4 taken: 4 shards", func() bool { return shards(t, ctx, k8s, ns) == 4 })
	// The recorder sends Events from its own goroutine, after the write that caused them: poll.
	// Each names the Secret as its related object, or the recorder would merge it into any
	// earlier NameConflict of this TokenServer (keeping that one's note).
	var found []string
	eventuallyOr(t, 10*time.Second, "a NameConflict event naming the squatted shard", func() bool {
		events := &eventsv1.EventList{}
		must(t, k8s.List(ctx, events, client.InNamespace(ns)))
		found = nil
		for _, e := range events.Items {
			if e.Reason != v1alpha1.ReasonNameConflict {
				continue
			}
			found = append(found, fmt.Sprintf("%+v %q", e.Related, e.Note))
			if e.Related != nil && e.Related.Kind == "Secret" && e.Related.Name == secretset.ShardName("brand", 4) &&
				strings.Contains(e.Note, secretset.ShardName("brand", 4)) {
				return true
			}
		}
		return false
	}, func() string { return fmt.Sprintf("NameConflict events: %v", found) })
	for _, name := range names[5:] {
		must(t, k8s.Delete(ctx, &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}))
	}
	eventually(t, 30*time.Second, "the set back in one Secret", func() bool { return shards(t, ctx, k8s, ns) == 1 })
	for _, name := range append(names[:5], "lp") {
		id := "lp-" + name
		if name == "lp" {
			id = "lp-client-0001"
		}
		if got := issueStatus(t, srv.URL, id); got != http.StatusOK {
			t.Errorf("%s after the set shrank: %d", name, got)
		}
	}
	if got := issueStatus(t, srv.URL, "lp-"+names[10]); got != http.StatusBadRequest {
		t.Errorf("a deleted client: %d, want 400", got)
	}
}

// shards is how many shards the set is in.
func shards(t *testing.T, ctx context.Context, k8s client.Client, ns string) int {
	list := &corev1.SecretList{}
	must(t, k8s.List(ctx, list, client.InNamespace(ns)))
	n := 0
	for _, s := range list.Items {
		if s.Type == secretset.SecretType && s.Name != secretset.RecentName("brand") {
			n++
		}
	}
	return n
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func eventually(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	eventuallyOr(t, within, what, ok, func() string { return "" })
}

// eventuallyOr is eventually, saying what state says when ok never comes.
func eventuallyOr(t *testing.T, within time.Duration, what string, ok func() bool, state func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v. %s", what, within, state())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func issue(t *testing.T, base, clientID string) (*http.Response, map[string]any) {
	b, _ := json.Marshal(map[string]any{"client_id": clientID, "sub": "u"})
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/tokens", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+issueToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

func issueStatus(t *testing.T, base, clientID string) int {
	resp, _ := issue(t, base, clientID)
	return resp.StatusCode
}

// tokenKid is the kid of a freshly issued token.
func tokenKid(t *testing.T, base string) string {
	resp, out := issue(t, base, "lp-client-0001")
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	jws, err := jose.ParseSigned(out["token"].(string), []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Header.KeyID
}

// TestRecentChangesReachTheServerThroughTheOverlay: with the set in shards, one new client is
// written to the small overlay alone (no shard is rewritten) and served, a deleted one is
// refused through its tombstone, clients created past the overlay's size are folded into the
// shards, and a Secret squatting the overlay's name costs the set its overlay, never its
// writes.
func TestRecentChangesReachTheServerThroughTheOverlay(t *testing.T) {
	if testing.Short() {
		t.Skip("a real kube-apiserver and etcd (envtest): skipped by -short")
	}
	env, cfg, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	scheme := controllers.Scheme()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	skip := true // a second manager in this test binary registers the same controller names
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Cache: controllers.CacheOptions(), Metrics: metricsserver.Options{BindAddress: "0"}, Logger: operatorLog(t),
		Controller: config.Controller{SkipNameValidation: &skip}})
	if err != nil {
		t.Fatal(err)
	}
	// Shards of 20 KB hold 40-60 clients in two; the overlay folds past 3 KB (about ten clients).
	if err := controllers.Setup(ctx, mgr, controllers.Options{TokenServerImage: "lpauth-operator:test", SecretSetShardBytes: 20000,
		SecretSetRecentBytes: 3000, SecretSetInterval: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	go func() { _ = mgr.Start(ctx) }()
	k8s, _ := client.New(cfg, client.Options{Scheme: scheme})

	ns := "recent"
	must(t, k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	must(t, k8s.Create(ctx, &v1alpha1.SigningKey{ObjectMeta: metav1.ObjectMeta{Name: "keys", Namespace: ns}}))
	// The clients exist before their TokenServer, so its first write holds them all in the
	// shards and the overlay starts empty.
	newClient := func(name string) {
		t.Helper()
		must(t, k8s.Create(ctx, &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: v1alpha1.LivePersonAuthClientSpec{TokenServerRef: v1alpha1.LocalObjectReference{Name: "brand"}, AccountID: "1", ClientID: "lp-" + name,
				Flow: v1alpha1.FlowImplicit, RedirectURIs: []string{"https://lp.example/cb"}}}))
	}
	for i := range 40 {
		newClient(fmt.Sprintf("many-%02d", i))
	}
	// The clients' watch and the TokenServer's are separate streams: the operator could see the
	// TokenServer before the last clients, and write them through the overlay.
	eventually(t, 10*time.Second, "the operator's cache to hold the 40 clients", func() bool {
		list := &v1alpha1.LivePersonAuthClientList{}
		return mgr.GetCache().List(ctx, list, client.InNamespace(ns)) == nil && len(list.Items) == 40
	})
	must(t, k8s.Create(ctx, &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand", Namespace: ns},
		Spec: v1alpha1.TokenServerSpec{Issuer: "https://auth.brand.example", SigningKeyRef: v1alpha1.LocalObjectReference{Name: "keys"}}}))
	creds := &corev1.Secret{}
	eventually(t, 10*time.Second, "the credentials Secret", func() bool {
		return k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: credentials.SecretName("brand")}, creds) == nil
	})
	issueToken = string(creds.Data[credentials.IssueAPITokenKey])
	eventually(t, 10*time.Second, "the token server's RoleBinding", func() bool {
		return k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "brand-token-server"}, &rbacv1.RoleBinding{}) == nil
	})
	sa, err := env.AddUser(envtest.User{Name: "system:serviceaccount:" + ns + ":brand-token-server", Groups: []string{"system:serviceaccounts"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	holder := &snapshot.Holder{}
	src := &cluster.Source{Namespace: ns, TokenServer: "brand", Holder: holder, Log: testr.New(t)}
	must(t, src.Start(ctx, sa.Config(), scheme))
	srv := httptest.NewServer(server.Handler(server.Config{Issuer: "https://auth.brand.example", Source: holder, Replay: replay.NewMemory(1000, nil)}))
	t.Cleanup(srv.Close)
	served := func(name string) bool { return issueStatus(t, srv.URL, "lp-"+name) == http.StatusOK }
	eventually(t, 30*time.Second, "40 clients served", func() bool {
		for i := range 40 {
			if !served(fmt.Sprintf("many-%02d", i)) {
				return false
			}
		}
		return true
	})
	set := readSet(t, ctx, k8s, ns)
	if len(set.shards) < 2 || len(set.recent.Entries) != 0 {
		t.Fatalf("before the changes: %d shards, %d overlay entries; want a sharded set and an empty overlay", len(set.shards), len(set.recent.Entries))
	}

	// One new client: the overlay is written, no shard.
	start := time.Now()
	newClient("one-more")
	eventually(t, 10*time.Second, "the new client served", func() bool { return served("one-more") })
	t.Logf("client created to served: %v", time.Since(start))
	after := readSet(t, ctx, k8s, ns)
	if !maps.Equal(after.shards, set.shards) {
		t.Errorf("one new client rewrote shards: resourceVersions %v, then %v", set.shards, after.shards)
	}
	if _, ok := after.recent.Entries["one-more"]; !ok || after.recent.Base != set.base {
		t.Errorf("the overlay %+v does not carry the new client over base %s", after.recent, set.base)
	}
	if after.recentBytes > 1000 || after.recentBytes*4 > after.shardBytes/len(after.shards) {
		t.Errorf("the overlay write is %d bytes; a shard is %d", after.recentBytes, after.shardBytes/len(after.shards))
	}

	// A deleted client: a tombstone in the overlay, and refused.
	must(t, k8s.Delete(ctx, &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "many-03", Namespace: ns}}))
	eventually(t, 10*time.Second, "the deleted client refused", func() bool { return issueStatus(t, srv.URL, "lp-many-03") == http.StatusBadRequest })
	after = readSet(t, ctx, k8s, ns)
	if e, ok := after.recent.Entries["many-03"]; !ok || len(e.Data) != 0 {
		t.Errorf("no tombstone for the deleted client: %+v", after.recent.Entries)
	}
	if !maps.Equal(after.shards, set.shards) {
		t.Errorf("a deleted client rewrote shards: resourceVersions %v, then %v", set.shards, after.shards)
	}

	// Twelve more clients: past 3 KB the overlay is folded into the shards (a new base) and
	// emptied; everything stays as it was served.
	for i := range 12 {
		newClient(fmt.Sprintf("more-%02d", i))
	}
	eventually(t, 20*time.Second, "the overlay folded into the shards", func() bool {
		s := readSet(t, ctx, k8s, ns)
		return s.base != set.base && s.recent.Base == s.base && s.recent.Replaces != ""
	})
	eventually(t, 10*time.Second, "every client served after the fold", func() bool {
		for _, name := range []string{"one-more", "many-00", "many-39", "more-00", "more-11"} {
			if !served(name) {
				return false
			}
		}
		return true
	})
	if served("many-03") {
		t.Error("the deleted client is back after the fold")
	}

	// A Secret of the overlay's name that is not the TokenServer's (unlabelled, outside the
	// operator's cache): changes fold into the shards instead, and an event says why.
	eventually(t, 10*time.Second, "the overlay's name taken", func() bool {
		_ = k8s.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secretset.RecentName("brand"), Namespace: ns}})
		return k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secretset.RecentName("brand"), Namespace: ns},
			StringData: map[string]string{"squatter": "x"}}) == nil
	})
	newClient("after-squat")
	eventually(t, 20*time.Second, "a client created with the overlay's name taken served", func() bool { return served("after-squat") })
	eventually(t, 10*time.Second, "a NameConflict event naming the overlay", func() bool {
		events := &eventsv1.EventList{}
		must(t, k8s.List(ctx, events, client.InNamespace(ns)))
		for _, e := range events.Items {
			if e.Reason == v1alpha1.ReasonNameConflict && strings.Contains(e.Note, secretset.RecentName("brand")) {
				return true
			}
		}
		return false
	})
	if !served("one-more") || served("many-03") {
		t.Error("with the overlay's name taken, the set lost a change")
	}
}

// setSnapshot is the set as the API server holds it: the shards' resourceVersions and bytes,
// shard 0's base, and the overlay.
type setSnapshot struct {
	shards      map[string]string
	shardBytes  int
	base        string
	recent      secretset.Recent
	recentBytes int
}

func readSet(t *testing.T, ctx context.Context, k8s client.Client, ns string) setSnapshot {
	t.Helper()
	list := &corev1.SecretList{}
	must(t, k8s.List(ctx, list, client.InNamespace(ns)))
	s := setSnapshot{shards: map[string]string{}}
	for _, sec := range list.Items {
		switch {
		case sec.Type != secretset.SecretType:
		case sec.Name == secretset.RecentName("brand"):
			s.recent, s.recentBytes = secretset.ParseRecent(sec.Data), secretset.Size(sec.Data)
		default:
			s.shards[sec.Name], s.shardBytes = sec.ResourceVersion, s.shardBytes+secretset.Size(sec.Data)
			if sec.Name == secretset.Name("brand") {
				s.base = secretset.Base(sec.Data)
			}
		}
	}
	return s
}
