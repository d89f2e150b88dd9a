// Package cluster feeds a token server's snapshot from the Kubernetes API: informers limited to
// its namespace trigger a rebuild on any change, and the new snapshot replaces the old one
// atomically. Requests never reach the API server. Secrets are watched one by one, by name (its
// SigningKey's keys, its credentials, the shards of its secret set and their overlay of recent
// changes): the token server's Role allows exactly those, so it cannot read any other Secret of
// its namespace.
package cluster

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lpauth/lpauth-operator/api/credentials"
	"github.com/lpauth/lpauth-operator/api/keys"
	"github.com/lpauth/lpauth-operator/api/secretset"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

// Source keeps Holder current with the cluster state of one TokenServer.
type Source struct {
	Namespace   string
	TokenServer string
	Holder      *snapshot.Holder
	Log         logr.Logger
	// OnBuild, when set, is told of every rebuild (for metrics).
	OnBuild func(snap *snapshot.Snapshot, problems []snapshot.Problem, err error, took time.Duration)

	cache   cache.Cache
	trigger chan struct{}
	// secrets are the informers of the Secrets read by name; keySecret is the key Secret's name.
	secrets   map[string]toolscache.SharedIndexInformer
	keySecret string
	// expiry rebuilds the snapshot when a previous credential's overlap ends (at expires).
	expiry  *time.Timer
	expires time.Time
	// logged are the problems of the last snapshot, logged once.
	logged map[string]bool
	// decoder keeps the clients decoded from the set, to decode only what changed.
	decoder secretset.Decoder
	// lastSet is the last secret set gathered whole, served while its shards disagree.
	lastSet *corev1.Secret
}

// Start runs the informers and the rebuild loop until ctx ends. It returns once the caches have
// synced and the first rebuild ran (successfully or not: /readyz tells).
func (s *Source) Start(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme) error {
	direct, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	ts := &v1alpha1.TokenServer{}
	if err := direct.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.TokenServer}, ts); err != nil {
		return fmt.Errorf("reading TokenServer %s: %w", s.TokenServer, err)
	}
	s.keySecret = keys.SecretName(ts.Spec.SigningKeyRef.Name)
	c, err := cache.New(cfg, cache.Options{
		Scheme:            scheme,
		DefaultTransform:  cache.TransformStripManagedFields(),
		DefaultNamespaces: map[string]cache.Config{s.Namespace: {}},
		ByObject: map[client.Object]cache.ByObject{
			&corev1.ConfigMap{}: {Label: labels.SelectorFromSet(labels.Set{v1alpha1.LabelTokenServerReads: "true"})},
		},
	})
	if err != nil {
		return fmt.Errorf("creating the cache: %w", err)
	}
	s.cache, s.trigger = c, make(chan struct{}, 1)
	handlers := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.poke() },
		UpdateFunc: func(any, any) { s.poke() },
		DeleteFunc: func(any) { s.poke() },
	}
	// Clients come from the secret set, compiled by the operator (package secretset): no
	// LivePersonAuthClient is read here, so 10,000 clients cost a few Secrets, not 10,000
	// objects to decode at start and a rebuild per client event.
	for _, obj := range []client.Object{&v1alpha1.TokenServer{}, &corev1.ConfigMap{}} {
		inf, err := c.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("watching %T: %w", obj, err)
		}
		if _, err := inf.AddEventHandler(handlers); err != nil {
			return err
		}
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	s.secrets = map[string]toolscache.SharedIndexInformer{}
	synced := []toolscache.InformerSynced{}
	for _, name := range append([]string{s.keySecret, credentials.SecretName(s.TokenServer)}, secretset.Names(s.TokenServer)...) {
		inf := namedSecretInformer(cs, s.Namespace, name)
		if _, err := inf.AddEventHandler(handlers); err != nil {
			return err
		}
		s.secrets[name] = inf
		synced = append(synced, inf.HasSynced)
		go inf.Run(ctx.Done())
	}
	start := time.Now()
	// Reading and decoding the set at start is a burst of garbage (tens of MiB at 10,000
	// clients) on top of what is kept: collecting more often until the first snapshot keeps
	// the peak, which a memory limit must allow, near what stays; the usual pace afterwards.
	gcPercent := debug.SetGCPercent(25)
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) || !toolscache.WaitForCacheSync(ctx.Done(), synced...) {
		debug.SetGCPercent(gcPercent)
		return fmt.Errorf("the caches did not sync")
	}
	syncTook := time.Since(start)
	built := s.rebuild(ctx)
	// Where a start's time goes (issue 18 measured cold starts of several seconds).
	s.Log.Info("Read the cluster", "cachesSynced", syncTook.Round(time.Millisecond), "firstSnapshot", built.Round(time.Millisecond))
	// What the start freed, the runtime would hand back to the OS only minutes later: now.
	debug.SetGCPercent(gcPercent)
	go debug.FreeOSMemory()
	go s.loop(ctx)
	return nil
}

// namedSecretInformer watches one Secret by name: a list and watch with the field selector
// metadata.name, which RBAC authorizes against the Role's resourceNames.
func namedSecretInformer(cs kubernetes.Interface, namespace, name string) toolscache.SharedIndexInformer {
	lw := toolscache.NewFilteredListWatchFromClient(cs.CoreV1().RESTClient(), "secrets", namespace, func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
	})
	return toolscache.NewSharedIndexInformer(lw, &corev1.Secret{}, 0, toolscache.Indexers{})
}

// secret is the watched Secret of this name, or nil.
func (s *Source) secret(name string) *corev1.Secret {
	inf := s.secrets[name]
	if inf == nil {
		return nil
	}
	obj, ok, err := inf.GetStore().GetByKey(s.Namespace + "/" + name)
	if err != nil || !ok {
		return nil
	}
	sec, _ := obj.(*corev1.Secret)
	return sec
}

// poke asks for a rebuild; bursts of events coalesce into one.
func (s *Source) poke() {
	select {
	case s.trigger <- struct{}{}:
	default:
	}
}

func (s *Source) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.trigger:
			took := s.rebuild(ctx)
			// Rebuilding is O(objects): while thousands of clients are being created, back-to-back
			// rebuilds would take the CPU the control plane needs. Pausing twice the last
			// rebuild's time caps rebuilding at a third of a core and costs a small snapshot
			// (tens of ms) next to nothing.
			select {
			case <-ctx.Done():
				return
			case <-time.After(min(2*took, time.Second)):
			}
		}
	}
}

func (s *Source) rebuild(ctx context.Context) time.Duration {
	start := time.Now()
	snap, problems, err := s.build(ctx)
	took := time.Since(start)
	if s.OnBuild != nil {
		s.OnBuild(snap, problems, err, took)
	}
	// Each problem is logged when it appears, not on every rebuild: thousands of new clients
	// waiting for the operator would otherwise repeat thousands of lines several times a second.
	seen := make(map[string]bool, len(problems))
	for _, p := range problems {
		line := p.String()
		if seen[line] = true; !s.logged[line] {
			s.Log.Info("Left out of the snapshot", "problem", line)
		}
	}
	if err == nil {
		s.logged = seen
	}
	if err != nil {
		// Keep serving the last good snapshot: a broken object never takes the server down. But
		// its credentials follow the Secret: a cut (a leak) must not wait for the rest.
		s.Log.Error(err, "Snapshot not rebuilt; serving the previous one")
		if cur := s.Holder.Snapshot(); cur != nil {
			if next, cerr := cur.WithCredentials(s.credentials(ctx), time.Now()); cerr == nil {
				s.store(next)
			}
		}
		return took
	}
	s.store(snap)
	s.Log.V(1).Info("Snapshot rebuilt", "clients", len(snap.Clients), "activeKey", snap.SigningKeyID, "took", took)
	return took
}

// store serves snap, and sets the timer for the earliest end of a previous credential's overlap.
func (s *Source) store(snap *snapshot.Snapshot) {
	s.Holder.Store(snap)
	if !snap.Expires.IsZero() && !snap.Expires.Equal(s.expires) {
		// A previous credential's overlap ends with no event to say so when the operator is
		// down: look again then (one timer, for the earliest end).
		if s.expiry != nil {
			s.expiry.Stop()
		}
		s.expires, s.expiry = snap.Expires, time.AfterFunc(time.Until(snap.Expires)+time.Second, s.poke)
	}
}

// credentials is the TokenServer's credentials Secret if the operator wrote it, or nil.
func (s *Source) credentials(ctx context.Context) *corev1.Secret {
	ts := &v1alpha1.TokenServer{}
	if err := s.cache.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.TokenServer}, ts); err != nil {
		return nil
	}
	return controlled(s.secret(credentials.SecretName(ts.Name)), "TokenServer", ts.Name, ts.UID, corev1.SecretTypeOpaque)
}

func (s *Source) build(ctx context.Context) (*snapshot.Snapshot, []snapshot.Problem, error) {
	ts := &v1alpha1.TokenServer{}
	if err := s.cache.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.TokenServer}, ts); err != nil {
		return nil, nil, fmt.Errorf("reading TokenServer %s: %w", s.TokenServer, err)
	}
	if keys.SecretName(ts.Spec.SigningKeyRef.Name) != s.keySecret {
		// The Role and the Secret informers are fixed at start; the operator rolls the pods.
		return nil, nil, fmt.Errorf("spec.signingKeyRef changed to %q: waiting for the new pods", ts.Spec.SigningKeyRef.Name)
	}
	// The list shares the cache's objects: snapshot.Build only reads its inputs.
	shared := client.UnsafeDisableDeepCopy
	configMaps := &corev1.ConfigMapList{}
	if err := s.cache.List(ctx, configMaps, client.InNamespace(s.Namespace), shared); err != nil {
		return nil, nil, err
	}
	cmByName := make(map[string]*corev1.ConfigMap, len(configMaps.Items))
	for i := range configMaps.Items {
		cmByName[configMaps.Items[i].Name] = &configMaps.Items[i]
	}
	// The secret set, gathered from its shards with the overlay of recent changes over them;
	// while the operator rewrites them (a set that grows, a fold this server has seen only in
	// part) they disagree, and the previous set is kept. Its clients are the ones served.
	var set *corev1.Secret
	var clients []v1alpha1.LivePersonAuthClient
	var problems []snapshot.Problem
	if first := controlled(s.secret(secretset.Name(ts.Name)), "TokenServer", ts.Name, ts.UID, secretset.SecretType); first != nil {
		data, err := secretset.Gather(ts.Name, func(name string) (map[string][]byte, bool) {
			sec := controlled(s.secret(name), "TokenServer", ts.Name, ts.UID, secretset.SecretType)
			if sec == nil {
				return nil, false
			}
			return sec.Data, true
		})
		if err != nil {
			if s.lastSet == nil {
				return nil, nil, err
			}
			// Shards that disagree (the operator regrowing the set, or stopped half-way, or a
			// shard missing) hold back the clients only: they are served from the last set
			// gathered whole, and a rotated or revoked key still gets through.
			problems = append(problems, snapshot.Problem{Object: "Secret " + first.Name, Err: fmt.Errorf("%w; %w", err, snapshot.ErrStaleClients)})
			data = s.lastSet.Data
		}
		set = &corev1.Secret{ObjectMeta: first.ObjectMeta, Type: first.Type, Data: data}
		s.lastSet = set
		var errs []error
		clients, errs = s.decoder.Clients(s.Namespace, data)
		for _, err := range errs {
			problems = append(problems, snapshot.Problem{Object: "Secret " + first.Name, Err: err})
		}
	}
	snap, more, err := snapshot.Build(snapshot.Inputs{
		TokenServer: ts,
		ConfigMaps:  cmByName,
		KeySecret:   controlled(s.secret(s.keySecret), "SigningKey", ts.Spec.SigningKeyRef.Name, "", v1alpha1.SecretTypeSigningKeys),
		Credentials: controlled(s.secret(credentials.SecretName(ts.Name)), "TokenServer", ts.Name, ts.UID, corev1.SecretTypeOpaque),
		SecretSet:   set,
		Clients:     clients,
		Now:         time.Now(),
	})
	return snap, append(problems, more...), err
}

// controlled returns sec when the operator wrote it for this object: its controller is the
// object of that kind and name (and UID, when known here) and it has the type the operator
// gives it. A Secret of the same name that anyone else created (whoever may create Secrets in
// the namespace) is treated as missing: it could plant a code key, a client secret's digest or
// a login secret.
func controlled(sec *corev1.Secret, kind, name string, uid types.UID, typ corev1.SecretType) *corev1.Secret {
	if sec == nil || sec.Type != typ {
		return nil
	}
	owner := metav1.GetControllerOf(sec)
	if owner == nil || owner.Kind != kind || owner.Name != name || !strings.HasPrefix(owner.APIVersion, v1alpha1.GroupVersion.Group+"/") ||
		(uid != "" && owner.UID != uid) {
		return nil
	}
	return sec
}
