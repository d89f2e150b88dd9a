package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lpauth/lpauth-operator/api/secretset"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/controllers"
)

// watchHistory is how long the API server's watch cache keeps every event
// (k8s.io/apiserver's DefaultEventFreshDuration): a watch resumed within it never expires, so
// the API server must be away longer for the trial to make the watches relist.
const watchHistory = 75 * time.Second

// Bounds on how soon a change reaches the token servers once the API server is back. When the
// watches resume, the changes arrive as events: 2 s. When they expired, the processes' next
// retry (client-go's informers retry every second), the 410, a fresh list of every object, and
// for a new client the operator's own relist and acceptance: 5 s.
const (
	resumeBound = 2 * time.Second
	relistBound = 5 * time.Second
)

// apiServerAway: the API server is unreachable from the operator and the token servers for down
// (every connection dropped, new ones refused), under /token load, while a client is created and
// another deleted. With expire, it stays away past the watch cache's history and enough other
// changes are made that the cache forgets where the processes' watches were: when it is back,
// their watches answer 410 Gone and they must list again. The token servers keep serving from
// their snapshots with no failed request and stay ready; a client created when the API server is
// back, the client created meanwhile and the deleted one reach them within resumeBound (watches
// resumed) or relistBound (expired); the operator makes the new clients Ready.
func apiServerAway(ctx context.Context, c *cluster, base string, addrs []string, down time.Duration, expire bool) row {
	r := row{fault: fmt.Sprintf("API server unreachable for %s under /token load", down),
		recoverWhat: "API server back → a client created then served", trials: 1}
	bound := resumeBound
	if expire {
		down = max(down, watchHistory+5*time.Second)
		r.fault = fmt.Sprintf("API server unreachable for %s, watches expired (410 Gone), under /token load", down)
		bound = relistBound
	}
	var mu sync.Mutex
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		r.violations = append(r.violations, fmt.Sprintf(format, args...))
	}
	doomed, err := c.implicitClient(ctx, "doomed")
	if err != nil {
		fail("%v", err)
		return r
	}
	if _, err := c.waitServed(ctx, base, doomed, http.StatusOK); err != nil {
		fail("%v", err)
		return r
	}

	l := newLP(c, base)
	var o outcome
	var doubles atomic.Int64
	stop := make(chan struct{})
	wg := l.redemptions(8, stop, &o, &doubles)
	unready, stopProbes := watchReadiness(addrs)
	time.Sleep(2 * time.Second)

	// Every process has seen the cluster up to here.
	var before v1alpha1.LivePersonAuthClientList
	if err := c.k8s.List(ctx, &before, client.InNamespace(c.namespace), client.Limit(1)); err != nil {
		fail("listing clients: %v", err)
	}
	c.apiProxy.cut()
	time.Sleep(down)
	created, err := c.implicitClient(ctx, "while-away")
	if err != nil {
		fail("%v", err)
	}
	if err := c.k8s.Delete(ctx, &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: c.namespace, Name: doomed.Name}}); err != nil {
		fail("deleting the doomed client: %v", err)
	}
	if expire {
		n, err := c.churn(ctx)
		if err != nil {
			fail("%v", err)
		}
		// What the processes' watches will be told when they resume from where they were.
		for _, list := range []client.ObjectList{&v1alpha1.LivePersonAuthClientList{}, &corev1.SecretList{}} {
			if err := c.expectExpired(ctx, list, before.ResourceVersion); err != nil {
				fail("%v", err)
			}
		}
		r.notes += fmt.Sprintf("%d changes while away, watches from before answer 410; ", n)
	}
	c.apiProxy.restore()
	back := time.Now()

	// A client created now, and the changes made while away, reach the token servers.
	after, err := c.implicitClient(ctx, "after")
	if err != nil {
		fail("%v", err)
	}
	var servedAfter, served, refused time.Duration
	var wg2 sync.WaitGroup
	wait := func(lc *v1alpha1.LivePersonAuthClient, into *time.Duration, what string, want int) {
		if lc == nil {
			return
		}
		wg2.Go(func() {
			at, err := c.waitServed(ctx, base, lc, want)
			if err != nil {
				fail("%s: %v", what, err)
			}
			*into = at.Sub(back)
		})
	}
	wait(after, &servedAfter, "the client created after", http.StatusOK)
	wait(created, &served, "the client created meanwhile", http.StatusOK)
	wait(doomed, &refused, "the client deleted meanwhile", http.StatusBadRequest)
	// Where the time goes for the client created after: the operator accepting its id into the
	// secret set the token servers read, then the token servers serving it.
	var accepted time.Duration
	if after != nil {
		wg2.Go(func() {
			_ = poll(ctx, 30*time.Second, "the new client accepted", func() (bool, error) {
				data, err := secretset.ClientData(c.tokenName, after.Name, func(name string) (map[string][]byte, bool) {
					set := &corev1.Secret{}
					if c.k8s.Get(ctx, client.ObjectKey{Namespace: c.namespace, Name: name}, set) != nil {
						return nil, false
					}
					return set.Data, true
				})
				return err == nil && secretset.AcceptedClientID(data, after.Name) == after.Spec.ClientID, nil
			})
			accepted = time.Since(back)
		})
	}
	wg2.Wait()
	r.notes += fmt.Sprintf("client created after: accepted by the operator in %s, served in %s; ", accepted.Round(time.Millisecond), servedAfter.Round(time.Millisecond))
	r.recover = servedAfter
	if servedAfter > bound {
		fail("a client created when the API server came back was served %s later (want under %s)", servedAfter.Round(time.Millisecond), bound)
	}
	if d := max(served, refused); d > bound {
		fail("a change made while the API server was away reached the token servers %s after it came back (want under %s)", d.Round(time.Millisecond), bound)
	}
	r.notes += fmt.Sprintf("made while away: created client served in %s, deleted client refused in %s; ", served.Round(time.Millisecond), refused.Round(time.Millisecond))
	if created != nil {
		if err := poll(ctx, 60*time.Second, "the client created meanwhile Ready", func() (bool, error) {
			var lc v1alpha1.LivePersonAuthClient
			if err := c.k8s.Get(ctx, client.ObjectKeyFromObject(created), &lc); err != nil {
				return false, nil
			}
			return ready(lc.Status.Conditions, lc.Generation), nil
		}); err != nil {
			fail("%v", err)
		}
	}

	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	stopProbes()
	finishStrict(&r, &o, unready.Load(), doubles.Load(), fail)
	return r
}

// finishStrict ends a trial where nothing may fail: no failed request (503s included), no token
// server unready, no code redeemed twice.
func finishStrict(r *row, o *outcome, unready, doubles int64, fail func(string, ...any)) {
	r.requests, r.failed = o.requests.Load(), o.failed.Load()+o.unavailable.Load()+o.signInAgain.Load()
	if r.failed > 0 {
		fail("failed requests: %s", o.String())
	}
	if unready > 0 {
		fail("token servers reported not ready %d times", unready)
	}
	if doubles > 0 {
		fail("%d codes redeemed twice", doubles)
	}
	r.notes += o.String()
}

// churn changes a client and a Secret as many times as the API server's watch cache holds
// events of their kinds, so that it keeps none from before (its history is a ring that only
// grows while every event in it is younger than watchHistory). It returns the changes made.
func (c *cluster) churn(ctx context.Context) (int, error) {
	capacity, err := c.watchCacheCapacity(ctx)
	if err != nil {
		return 0, err
	}
	lc, err := c.implicitClient(ctx, "churn")
	if err != nil {
		return 0, err
	}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: c.namespace, Name: lc.Name}}
	if err := c.k8s.Create(ctx, sec); err != nil {
		return 0, err
	}
	n := max(capacity["livepersonauthclients"], capacity["secrets"]) + 10
	var done atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				patch := client.RawPatch("application/merge-patch+json", fmt.Appendf(nil, `{"metadata":{"labels":{"churn":"%d"}}}`, i))
				for _, obj := range []client.Object{lc.DeepCopy(), sec.DeepCopy()} {
					if err := c.k8s.Patch(ctx, obj, patch); err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
					done.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return int(done.Load()), fmt.Errorf("changing objects: %w", err)
	}
	return int(done.Load()), nil
}

// watchCacheCapacity reads watch_cache_capacity (k8s.io/apiserver names it without the
// apiserver_ prefix its other metrics have) by resource from the API server's metrics.
func (c *cluster) watchCacheCapacity(ctx context.Context) (map[string]int, error) {
	cs, err := c.clientset()
	if err != nil {
		return nil, err
	}
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the API server's metrics: %w", err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "watch_cache_capacity{") {
			continue
		}
		_, labels, _ := strings.Cut(line, "resource=\"")
		resource, _, _ := strings.Cut(labels, "\"")
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err == nil {
			out[resource] = int(v)
		}
	}
	if out["livepersonauthclients"] == 0 || out["secrets"] == 0 {
		return nil, fmt.Errorf("the API server's metrics name no watch cache capacity for clients and Secrets: %v", out)
	}
	return out, nil
}

func (c *cluster) clientset() (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// expectExpired watches list's kind from resourceVersion and expects the API server to answer
// 410 Gone, as it will to every process resuming a watch from there.
func (c *cluster) expectExpired(ctx context.Context, list client.ObjectList, resourceVersion string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		return err
	}
	wc, err := client.NewWithWatch(cfg, client.Options{Scheme: controllers.Scheme()})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	kind := fmt.Sprintf("%T", list)
	w, err := wc.Watch(ctx, list, client.InNamespace(c.namespace), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: resourceVersion}})
	if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("watching %s from %s: %w", kind, resourceVersion, err)
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		if st, ok := ev.Object.(*metav1.Status); ok && (st.Code == http.StatusGone || st.Reason == metav1.StatusReasonExpired) {
			return nil
		}
	}
	return fmt.Errorf("a watch of %s from resource version %s did not expire: the trial did not make the watches relist", kind, resourceVersion)
}
