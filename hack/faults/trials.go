package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lpauth/lpauth-operator/api/keys"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/tokenserver/replay"
)

// row is one line of the results table.
type row struct {
	fault              string
	trials             int
	requests, failed   int64
	violations         []string
	recover            time.Duration
	recoverWhat, notes string
}

// rollingRestarts: each token server in turn gets SIGTERM under load and comes back, as a rolling
// update does, behind a proxy that follows readiness. Nothing may fail: the stopping server
// leaves rotation, closes connections after each answer, and finishes what it has in flight.
func rollingRestarts(ctx context.Context, c *cluster, px *proxy, servers []*proc, addrs []string, rounds int) row {
	r := row{fault: "token server SIGTERM under load (rolling restart, 2 replicas)", recoverWhat: "restarted server ready"}
	l := newLP(c, "http://"+px.ln.Addr().String())
	var o outcome
	var doubles atomic.Int64
	stop := make(chan struct{})
	wg := l.redemptions(16, stop, &o, &doubles)
	time.Sleep(2 * time.Second)
	for round := range rounds {
		i := round % len(servers)
		servers[i].signal(syscall.SIGTERM, 30*time.Second)
		start := time.Now()
		if err := servers[i].start(); err != nil {
			r.violations = append(r.violations, err.Error())
			break
		}
		if err := waitServing("http://"+addrs[i], 30*time.Second); err != nil {
			r.violations = append(r.violations, err.Error())
			break
		}
		r.recover = max(r.recover, time.Since(start))
		r.trials++
		time.Sleep(time.Second)
	}
	close(stop)
	wg.Wait()
	r.requests, r.failed = o.requests.Load(), o.failed.Load()+o.unavailable.Load()+o.signInAgain.Load()
	if r.failed > 0 {
		r.violations = append(r.violations, "failed requests: "+o.String())
	}
	if d := doubles.Load(); d > 0 {
		r.violations = append(r.violations, fmt.Sprintf("%d codes redeemed twice", d))
	}
	r.notes = o.String()
	return r
}

// redisKilled: Redis is killed under load and comes back (empty: no persistence) after down.
// While it is gone, redemptions must answer 503 promptly (no hanging connection) and none may
// succeed twice; within a second of its return, service is whole again; and a code redeemed
// before the kill must still not redeem after Redis comes back empty.
func redisKilled(ctx context.Context, c *cluster, base string, rounds int, down time.Duration) row {
	r := row{fault: fmt.Sprintf("Redis killed for %s under /token load", down), recoverWhat: "Redis back → first successful redemption"}
	l := newLP(c, base)
	var o outcome
	var doubles atomic.Int64
	var redeemed []string
	for range rounds {
		// A code redeemed before the kill, to present again once Redis is back empty.
		code, _, err := l.code(0)
		if err == nil {
			if _, status, err := l.redeem(code); err == nil && status == http.StatusOK {
				redeemed = append(redeemed, code)
			}
		}
		stop := make(chan struct{})
		wg := l.redemptions(8, stop, &o, &doubles)
		time.Sleep(2 * time.Second)
		c.redis.kill()
		time.Sleep(down)
		back := time.Now()
		if err := c.startRedis(); err != nil {
			r.violations = append(r.violations, err.Error())
			close(stop)
			wg.Wait()
			break
		}
		// Service is whole again when a fresh code redeems.
		var recovered time.Duration
		for time.Since(back) < 10*time.Second {
			code, status, err := l.code(1)
			if err == nil && status == http.StatusOK {
				if _, status, err := l.redeem(code); err == nil && status == http.StatusOK {
					recovered = time.Since(back)
					break
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(time.Second)
		close(stop)
		wg.Wait()
		if recovered == 0 || recovered > time.Second {
			r.violations = append(r.violations, fmt.Sprintf("service not whole within 1 s of Redis returning (%s)", recovered))
		}
		r.recover = max(r.recover, recovered)
		r.trials++
	}
	for _, code := range redeemed {
		if _, status, err := l.redeem(code); err == nil && status == http.StatusOK {
			doubles.Add(1)
			r.violations = append(r.violations, "a code redeemed before Redis was lost redeemed again after it came back")
			break
		}
	}
	r.requests, r.failed = o.requests.Load(), o.failed.Load()+o.signInAgain.Load()
	if r.failed > 0 {
		r.violations = append(r.violations, "requests failed other than with 503: "+o.String())
	}
	// A claim is bounded by ClaimTimeout; the rest of a redemption is local work.
	if s, bound := time.Duration(o.slowest.Load()), replay.ClaimTimeout+500*time.Millisecond; s > bound {
		r.violations = append(r.violations, fmt.Sprintf("a request took %s (over %s): connections hang while Redis is away", s.Round(time.Millisecond), bound))
	}
	if d := doubles.Load(); d > 0 {
		r.violations = append(r.violations, fmt.Sprintf("%d codes redeemed twice", d))
	}
	r.notes = o.String()
	return r
}

// operatorKilledDuringRotations: forced rotations, each with the operator SIGKILLed at a random
// moment and started again, while tokens are issued. After each: exactly one Active key, the
// Active and Next keys with their private parts, and every key that signed a token in the
// JWKS the token server serves.
func operatorKilledDuringRotations(ctx context.Context, c *cluster, base string, rotations int) row {
	r := row{fault: fmt.Sprintf("operator SIGKILL during %d forced rotations", rotations), recoverWhat: "rotation handled after the restart"}
	l := newLP(c, base)
	var o outcome
	kids := &kidSet{m: map[string]bool{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			var i int64
			for {
				select {
				case <-stop:
					return
				default:
				}
				i++
				start := time.Now()
				code, status, err := l.code(i)
				o.requests.Add(1)
				o.took(time.Since(start))
				if !l.count(&o, status, err, "code") {
					continue
				}
				start = time.Now()
				tok, status, err := l.redeem(code)
				o.requests.Add(1)
				o.took(time.Since(start))
				if l.count(&o, status, err, "token") {
					kids.add(kidOf(tok))
				}
			}
		})
	}
	killedBefore := 0
	for i := range rotations {
		request := fmt.Sprintf("force-fault-%d", i)
		sk := &v1alpha1.SigningKey{}
		if err := c.k8s.Get(ctx, client.ObjectKey{Namespace: c.namespace, Name: c.keyName}, sk); err != nil {
			r.violations = append(r.violations, err.Error())
			break
		}
		patch := client.MergeFrom(sk.DeepCopy())
		metav1.SetMetaDataAnnotation(&sk.ObjectMeta, v1alpha1.AnnotationRotate, request)
		start := time.Now()
		if err := c.k8s.Patch(ctx, sk, patch); err != nil {
			r.violations = append(r.violations, err.Error())
			break
		}
		time.Sleep(time.Duration(rand.IntN(400)) * time.Millisecond)
		c.operator.kill()
		// Did the kill land before the rotation was written? (If none did, the trial proved
		// nothing about a rotation cut short.)
		s := &corev1.Secret{}
		if err := c.k8s.Get(ctx, client.ObjectKey{Namespace: c.namespace, Name: keys.SecretName(c.keyName)}, s); err == nil && s.Annotations[v1alpha1.AnnotationHandledRotate] != request {
			killedBefore++
		}
		if err := c.operator.start(); err != nil {
			r.violations = append(r.violations, err.Error())
			break
		}
		err := poll(ctx, 60*time.Second, "rotation "+request, func() (bool, error) {
			s := &corev1.Secret{}
			if err := c.k8s.Get(ctx, client.ObjectKey{Namespace: c.namespace, Name: keys.SecretName(c.keyName)}, s); err != nil {
				return false, nil
			}
			return s.Annotations[v1alpha1.AnnotationHandledRotate] == request, nil
		})
		if err != nil {
			r.violations = append(r.violations, err.Error())
			break
		}
		r.recover = max(r.recover, time.Since(start))
		r.trials++
		r.violations = append(r.violations, keyInvariants(ctx, c)...)
		if err := keysConverge(ctx, c); err != nil {
			r.violations = append(r.violations, request+": "+err.Error())
		}
	}
	time.Sleep(2 * time.Second) // the token server's JWKS follows within a second or two
	close(stop)
	wg.Wait()
	published := jwksKids(base)
	for kid := range kids.all() {
		if !published[kid] {
			r.violations = append(r.violations, "key "+kid+" signed a token but is not in the JWKS")
		}
	}
	r.requests, r.failed = o.requests.Load(), o.failed.Load()+o.unavailable.Load()+o.signInAgain.Load()
	if r.failed > 0 {
		r.violations = append(r.violations, "failed requests: "+o.String())
	}
	r.notes = fmt.Sprintf("%s; %d signing keys seen; %d of %d kills landed before the rotation was written", o.String(), len(kids.all()), killedBefore, r.trials)
	if r.trials > 0 && killedBefore == 0 {
		r.violations = append(r.violations, "no kill landed before its rotation was written: the trial did not interrupt a rotation")
	}
	return r
}

// keyInvariants checks the key Secret: exactly one Active key, and the Active and Next keys
// able to sign.
func keyInvariants(ctx context.Context, c *cluster) []string {
	s := &corev1.Secret{}
	if err := c.k8s.Get(ctx, client.ObjectKey{Namespace: c.namespace, Name: keys.SecretName(c.keyName)}, s); err != nil {
		return []string{"key Secret: " + err.Error()}
	}
	set, problems := keys.Decode(s.Data)
	var out []string
	if len(problems) > 0 {
		out = append(out, fmt.Sprintf("key Secret problems: %v", problems))
	}
	active := 0
	for _, k := range set {
		switch k.State {
		case v1alpha1.KeyActive:
			active++
			fallthrough
		case v1alpha1.KeyNext:
			if !k.CanSign() {
				out = append(out, fmt.Sprintf("%s key %s lost its private part", k.State, k.ID()))
			}
		}
	}
	if active != 1 {
		out = append(out, fmt.Sprintf("%d Active keys", active))
	}
	return out
}

type kidSet struct {
	mu sync.Mutex
	m  map[string]bool
}

func (k *kidSet) add(kid string) { k.mu.Lock(); k.m[kid] = true; k.mu.Unlock() }
func (k *kidSet) all() map[string]bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[string]bool, len(k.m))
	for kid := range k.m {
		out[kid] = true
	}
	return out
}

// kidOf is the kid in a compact JWS's header.
func kidOf(token string) string {
	header, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		return ""
	}
	var h struct {
		Kid string `json:"kid"`
	}
	_ = json.Unmarshal(b, &h)
	return h.Kid
}

// jwksKids are the kids the token server publishes.
func jwksKids(base string) map[string]bool {
	out := map[string]bool{}
	resp, err := http.Get(base + "/.well-known/jwks.json")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	var doc struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	for _, k := range doc.Keys {
		out[k.Kid] = true
	}
	return out
}

// operatorKilledDuringCreations: n clients created at once while the operator is SIGKILLed every
// second or two and started again. After: every client Ready, each with exactly one generated
// Secret, owned by it, whose secret never changed once written; no generated Secret left without
// its client.
func operatorKilledDuringCreations(ctx context.Context, c *cluster, n int) row {
	r := row{fault: fmt.Sprintf("operator SIGKILL during %d client creations", n), recoverWhat: "last kill → all clients Ready"}
	// Every version of every generated Secret, as the API server tells them: a secret that
	// changes once written is seen whenever it changes, not only when a poll happens to look.
	secrets, err := c.watchSecretValues(ctx, "bulk-")
	if err != nil {
		r.violations = append(r.violations, err.Error())
		return r
	}
	stopKills := make(chan struct{})
	var killer sync.WaitGroup
	var kills atomic.Int64
	killer.Go(func() {
		for {
			select {
			case <-stopKills:
				return
			case <-time.After(time.Duration(1000+rand.IntN(1000)) * time.Millisecond):
			}
			if err := c.operator.restart(); err == nil {
				kills.Add(1)
			}
		}
	})
	for i := range n {
		lc := &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bulk-%04d", i), Namespace: c.namespace},
			Spec: v1alpha1.LivePersonAuthClientSpec{TokenServerRef: v1alpha1.LocalObjectReference{Name: c.tokenName}, AccountID: "12345678",
				Flow: v1alpha1.FlowCode, RedirectURIs: []string{lpRedirect}}}
		if err := c.k8s.Create(ctx, lc); err != nil {
			r.violations = append(r.violations, err.Error())
			break
		}
	}
	time.Sleep(5 * time.Second)
	close(stopKills)
	killer.Wait()
	r.trials = int(kills.Load())
	last := time.Now()
	err = poll(ctx, 5*time.Minute, "every client Ready", func() (bool, error) {
		list := &v1alpha1.LivePersonAuthClientList{}
		if err := c.k8s.List(ctx, list, client.InNamespace(c.namespace)); err != nil {
			return false, nil
		}
		for _, lc := range list.Items {
			if strings.HasPrefix(lc.Name, "bulk-") && !ready(lc.Status.Conditions, lc.Generation) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		r.violations = append(r.violations, err.Error())
	}
	r.recover = time.Since(last)
	time.Sleep(time.Second) // the last events
	changed, versions := secrets.stop()
	if len(changed) > 0 {
		r.violations = append(r.violations, fmt.Sprintf("client secrets changed after being written: %v", changed))
	}
	// Exactly one generated Secret per client, owned by it.
	clients := &v1alpha1.LivePersonAuthClientList{}
	list := &corev1.SecretList{}
	if c.k8s.List(ctx, clients, client.InNamespace(c.namespace)) == nil && c.k8s.List(ctx, list, client.InNamespace(c.namespace)) == nil {
		uids := map[string]string{}
		for _, lc := range clients.Items {
			uids[lc.Name] = string(lc.UID)
		}
		owned := map[string]int{}
		for _, s := range list.Items {
			if !strings.HasPrefix(s.Name, "bulk-") {
				continue
			}
			owner := metav1.GetControllerOf(&s)
			if owner == nil || uids[owner.Name] != string(owner.UID) || v1alpha1.ClientSecretName(owner.Name) != s.Name {
				r.violations = append(r.violations, "a client Secret without its client: "+s.Name)
				continue
			}
			owned[owner.Name]++
		}
		for name := range uids {
			if strings.HasPrefix(name, "bulk-") && owned[name] != 1 {
				r.violations = append(r.violations, fmt.Sprintf("client %s has %d generated Secrets", name, owned[name]))
			}
		}
	}
	r.notes = fmt.Sprintf("%d operator kills while %d clients were created; %d versions of their Secrets watched", r.trials, n, versions)
	return r
}

// secretWatch records the first client secret each watched Secret held, and every Secret whose
// secret later changed.
type secretWatch struct {
	cancel   context.CancelFunc
	done     chan struct{}
	first    map[string]string
	changed  []string
	versions int
}

// watchSecretValues watches the Secrets whose names begin with prefix until stop.
func (c *cluster) watchSecretValues(ctx context.Context, prefix string) (*secretWatch, error) {
	cs, err := c.clientset()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &secretWatch{cancel: cancel, done: make(chan struct{}), first: map[string]string{}}
	list, err := cs.CoreV1().Secrets(c.namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		cancel()
		return nil, err
	}
	see := func(s *corev1.Secret) {
		if !strings.HasPrefix(s.Name, prefix) {
			return
		}
		w.versions++
		v := string(s.Data[v1alpha1.ClientSecretKey])
		if prev, ok := w.first[s.Name]; ok && prev != v {
			if !slices.Contains(w.changed, s.Name) {
				w.changed = append(w.changed, s.Name)
			}
		} else if !ok && v != "" {
			w.first[s.Name] = v
		}
	}
	for i := range list.Items {
		see(&list.Items[i])
	}
	go func() {
		defer close(w.done)
		rv := list.ResourceVersion
		for ctx.Err() == nil {
			wi, err := cs.CoreV1().Secrets(c.namespace).Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			opened := time.Now()
			for ev := range wi.ResultChan() {
				if ev.Type == watch.Error {
					// Expired: list again (a change in between is still seen, as a new value).
					if l, err := cs.CoreV1().Secrets(c.namespace).List(ctx, metav1.ListOptions{}); err == nil {
						for i := range l.Items {
							see(&l.Items[i])
						}
						rv = l.ResourceVersion
					}
					break
				}
				if s, ok := ev.Object.(*corev1.Secret); ok {
					rv = s.ResourceVersion
					if ev.Type != watch.Deleted {
						see(s)
					}
				}
			}
			wi.Stop()
			if time.Since(opened) < 100*time.Millisecond {
				time.Sleep(100 * time.Millisecond) // a watch that ends at once is not retried in a spin
			}
		}
	}()
	return w, nil
}

// stop ends the watch and returns the Secrets whose secret changed and the versions seen.
func (w *secretWatch) stop() ([]string, int) {
	w.cancel()
	<-w.done
	return w.changed, w.versions
}

// keysConverge waits until the SigningKey's status tells what its key Secret holds: the same
// Active key, every key it lists in the Secret with the same state, and (below the status's cap)
// every key of the Secret listed.
func keysConverge(ctx context.Context, c *cluster) error {
	var last string
	err := poll(ctx, 30*time.Second, "the SigningKey's status to match its key Secret", func() (bool, error) {
		s, sk := &corev1.Secret{}, &v1alpha1.SigningKey{}
		if c.k8s.Get(ctx, client.ObjectKey{Namespace: c.namespace, Name: keys.SecretName(c.keyName)}, s) != nil ||
			c.k8s.Get(ctx, client.ObjectKey{Namespace: c.namespace, Name: c.keyName}, sk) != nil {
			return false, nil
		}
		last = keysDiffer(s, sk)
		return last == "", nil
	})
	if err != nil {
		return fmt.Errorf("%w: %s", err, last)
	}
	return nil
}

// keysDiffer says how sk's status and the key Secret s differ ("" when they agree).
func keysDiffer(s *corev1.Secret, sk *v1alpha1.SigningKey) string {
	set, _ := keys.Decode(s.Data)
	states := map[string]v1alpha1.KeyState{}
	for _, k := range set {
		states[k.ID()] = k.State
	}
	if active, ok := keys.Active(set); !ok || sk.Status.ActiveKeyID != active.ID() {
		return fmt.Sprintf("status.activeKeyID %q, the Secret's Active key %q", sk.Status.ActiveKeyID, active.ID())
	}
	for _, k := range sk.Status.Keys {
		if states[k.KeyID] != k.State {
			return fmt.Sprintf("status lists key %s as %q, the Secret as %q", k.KeyID, k.State, states[k.KeyID])
		}
	}
	if len(set) <= v1alpha1.MaxStatusKeys && len(sk.Status.Keys) != len(set) {
		return fmt.Sprintf("status lists %d keys, the Secret holds %d", len(sk.Status.Keys), len(set))
	}
	return ""
}
