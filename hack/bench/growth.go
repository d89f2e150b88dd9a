package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// What a scale step measures once its clients are Ready, for issue 18's second target: how long
// a client created now waits before the token server serves it, and what one client's change
// costs the API server and every token server when the secret set carries thousands of clients.

const (
	// servedClients are created one at a time, servedEvery apart: a trickle, as clients arrive
	// in a running cluster, not a burst that the set's once-a-second write would batch.
	servedClients = 50
	servedEvery   = 200 * time.Millisecond
	// servedPoll is how often each new client's id is tried at the issue API.
	servedPoll = 10 * time.Millisecond
	// servedTimeout bounds the wait for one client.
	servedTimeout = 30 * time.Second
)

// servedLatency creates servedClients code-flow clients with known client ids and times each
// from its Create returning to the dev token server issuing a code for it. The code flow needs
// a secret, which the operator generates: that is the path a new client takes by default, and
// the issue API answers for a code-flow client only once the set carries its secret's digest.
func servedLatency(ctx context.Context, r *report, s *system, g *growth, n int) error {
	tr := &http.Transport{MaxIdleConnsPerHost: servedClients, DisableCompression: true}
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	defer tr.CloseIdleConnections()
	took := make([]time.Duration, servedClients) // zero: not served within servedTimeout
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		otherErr string
	)
	setSum, setCount := histogramTotals(s.operatorMetrics, "lpauth_operator_secret_set_write_duration_seconds")
	_, foldCount := histogramTotals(s.operatorMetrics, "lpauth_operator_secret_set_write_duration_seconds", `kind="fold"`)
	tick := time.NewTicker(servedEvery)
	defer tick.Stop()
	for i := range servedClients {
		if i > 0 {
			<-tick.C
		}
		id := fmt.Sprintf("served-%d-%d", n, i)
		c := &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: id, Namespace: devNamespace}, Spec: v1alpha1.LivePersonAuthClientSpec{
			TokenServerRef: v1alpha1.LocalObjectReference{Name: "brand"}, AccountID: "1", ClientID: id, RedirectURIs: []string{lpRedirect}}}
		if err := s.k8s.Create(ctx, c); err != nil {
			wg.Wait()
			return fmt.Errorf("creating client %s: %w", id, err)
		}
		created := time.Now()
		g.inNamespace++
		wg.Go(func() {
			body := codeBody(id, int64(i))
			for time.Since(created) < servedTimeout {
				_, err := post(hc, s.issuer+"/api/v1/codes", s.issueToken, "application/json", body, [2]string{})
				if err == nil {
					took[i] = time.Since(created)
					return
				}
				// "unknown client_id" is the answer until the snapshot has the client; anything
				// else is worth showing.
				if !strings.Contains(err.Error(), "unknown client_id") {
					mu.Lock()
					if otherErr == "" {
						otherErr = err.Error()
					}
					mu.Unlock()
				}
				time.Sleep(servedPoll)
			}
		})
	}
	wg.Wait()
	var served []time.Duration
	for _, d := range took {
		if d > 0 {
			served = append(served, d)
		}
	}
	slices.Sort(served)
	label := fmt.Sprintf("new client created → served (%d, %s apart)", servedClients, servedEvery)
	name := "served-p99-" + strconv.Itoa(n)
	if len(served) == 0 {
		r.line("  %-52s none served within %s", label, servedTimeout)
		r.target(target{name: name, value: fmt.Sprintf("%.0f ms", float64(servedTimeout.Milliseconds())), limit: "< 1000 ms", ratio: math.NaN(), verdict: verdictMiss})
	} else {
		q := func(p float64) time.Duration { return served[min(len(served)-1, int(p*float64(len(served))))] }
		r.line("  %-52s p50 %s, p99 %s, max %s (%d of %d served within %s; polled every %s)", label, ms(q(.5)), ms(q(.99)), ms(served[len(served)-1]),
			len(served), servedClients, servedTimeout, servedPoll)
		p99 := q(.99)
		if len(served) < servedClients {
			// An unserved client is slower than any served one: the p99 is at least the timeout.
			p99 = servedTimeout
		}
		r.target(atMost(name, float64(p99.Microseconds())/1000, 1000, " ms", "%.0f"))
	}
	// What bounds it: the operator compiles the whole set and writes the clients that changed to
	// its overlay, spaced by its interval (or by this cost, when larger), and now and then folds
	// the overlay into the shards (paced by their bytes).
	if sum, count := histogramTotals(s.operatorMetrics, "lpauth_operator_secret_set_write_duration_seconds"); count > setCount {
		_, folds := histogramTotals(s.operatorMetrics, "lpauth_operator_secret_set_write_duration_seconds", `kind="fold"`)
		r.line("    meanwhile the operator compiled the secret set %.0f times, %s each on average, and folded its overlay into the shards %.0f times (%0.f shards)", count-setCount,
			ms(time.Duration((sum-setSum)/(count-setCount)*float64(time.Second))), folds-foldCount, metricValue(s.operatorMetrics, "lpauth_operator_secret_set_shards"))
	}
	if otherErr != "" {
		r.line("    first error other than unknown client_id: %.200s", otherErr)
	}
	return nil
}

// histogramTotals is a histogram's _sum and _count, over all its series that hold every one of
// labels (e.g. `kind="fold"`), from a Prometheus text endpoint (zero when unread).
func histogramTotals(base, name string, labels ...string) (sum, count float64) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		series := f[0]
		if slices.ContainsFunc(labels, func(l string) bool { return !strings.Contains(series, l) }) {
			continue
		}
		switch {
		case series == name+"_sum" || strings.HasPrefix(series, name+"_sum{"):
			sum += v
		case series == name+"_count" || strings.HasPrefix(series, name+"_count{"):
			count += v
		}
	}
	return sum, count
}

// setSecret is one secret-set Secret as listed.
type setSecret struct {
	resourceVersion string
	bytes           int
}

// secretSets lists the namespace's secret-set Secrets (there may be one per TokenServer, or
// several shards of one: all of the type are taken, whatever their names) by name, with the
// list's resourceVersion to watch from.
func (s *system) secretSets(ctx context.Context) (map[string]setSecret, string, error) {
	list := &corev1.SecretList{}
	if err := s.k8s.List(ctx, list, client.InNamespace(devNamespace), client.MatchingFields{"type": secretSetType}); err != nil {
		return nil, "", err
	}
	out := map[string]setSecret{}
	for _, sec := range list.Items {
		out[sec.Name] = setSecret{resourceVersion: sec.ResourceVersion, bytes: dataBytes(sec.Data)}
	}
	return out, list.ResourceVersion, nil
}

// secretSetType is the type of the operator's secret-set Secrets (api/secretset.SecretType).
const secretSetType = "auth.lpauth.dev/token-server-secrets"

// dataBytes is what a Secret's data counts against its 1 MiB: keys and values.
func dataBytes(data map[string][]byte) int {
	n := 0
	for k, v := range data {
		n += len(k) + len(v)
	}
	return n
}

// changeOneClient deletes the generated secret of client name, so the operator generates a new
// one and rewrites the secret set with its digest, and reports what that one change cost: the
// API writes it set off, and which secret-set Secrets were rewritten, with their bytes (every
// token server decodes each rewritten Secret whole).
func changeOneClient(ctx context.Context, r *report, s *system, n int, name string) error {
	label := fmt.Sprintf("one client's secret regenerated, at %s clients", thousands(n))
	// The set is written at most once a second: let the writes of the served clients land
	// first, so the readings below hold this change alone.
	time.Sleep(3 * time.Second)
	setsBefore, rv, err := s.secretSets(ctx)
	if err != nil {
		return err
	}
	old := &corev1.Secret{}
	if err := s.k8s.Get(ctx, client.ObjectKey{Namespace: devNamespace, Name: v1alpha1.ClientSecretName(name)}, old); err != nil {
		r.line("  %-52s skipped: client %s has no generated Secret (%v)", label, name, err)
		return nil
	}
	// Watch the sets from the listing on, so no rewrite between the delete and the watch is
	// missed; a field selector on the type, so the 30,000 client Secrets are not streamed.
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	w, err := s.watch.Watch(wctx, &corev1.SecretList{}, client.InNamespace(devNamespace),
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv}}, client.MatchingFields{"type": secretSetType})
	if err != nil {
		return fmt.Errorf("watching the secret sets: %w", err)
	}
	defer w.Stop()
	writesBefore, writesErr := s.apiWrites()
	start := time.Now()
	uid := old.UID
	if err := s.k8s.Delete(ctx, old, client.Preconditions{UID: &uid}); err != nil {
		return fmt.Errorf("deleting Secret %s: %w", old.Name, err)
	}
	// The operator generates the Secret anew (a new object, so a new UID).
	var digest [32]byte
	var regenerated time.Duration
	for {
		cur := &corev1.Secret{}
		err := s.k8s.Get(ctx, client.ObjectKeyFromObject(old), cur)
		if err == nil && cur.UID != uid && len(cur.Data[v1alpha1.ClientSecretKey]) > 0 {
			digest, regenerated = sha256.Sum256(cur.Data[v1alpha1.ClientSecretKey]), time.Since(start)
			break
		}
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		if wctx.Err() != nil {
			r.line("  %-52s the operator did not generate Secret %s again within 60 s", label, old.Name)
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The change is carried once a secret-set Secret holds the new digest (whatever key it is
	// under: the layout of the set is the operator's).
	var carried time.Duration
	for carried == 0 {
		select {
		case ev, open := <-w.ResultChan():
			if !open {
				r.line("  %-52s no secret set carried the new secret within 60 s (secret regenerated after %s)", label, ms(regenerated))
				return nil
			}
			sec, ok := ev.Object.(*corev1.Secret)
			if !ok {
				continue
			}
			for _, v := range sec.Data {
				if bytes.Equal(v, digest[:]) {
					carried = time.Since(start)
					break
				}
			}
		case <-wctx.Done():
			r.line("  %-52s no secret set carried the new secret within 60 s (secret regenerated after %s)", label, ms(regenerated))
			return nil
		}
	}
	// Writes that follow the set's (the client's status, an event) belong to the change too;
	// the client reconciler acts within a second of the set's write.
	time.Sleep(3 * time.Second)
	if ready := (&v1alpha1.LivePersonAuthClient{}); s.k8s.Get(ctx, client.ObjectKey{Namespace: devNamespace, Name: name}, ready) == nil &&
		!meta.IsStatusConditionTrue(ready.Status.Conditions, v1alpha1.ConditionReady) {
		r.line("    (client %s is not Ready 3 s after the set carried its new secret)", name)
	}
	writesAfter, err := s.apiWrites()
	setsAfter, _, lerr := s.secretSets(ctx)
	if lerr != nil {
		return lerr
	}
	r.line("  %-52s Secret generated again after %s, carried by the secret set after %s", label, ms(regenerated), ms(carried))
	if werr := errors.Join(writesErr, err); werr == nil {
		// The bench's own write is the DELETE; leases are renewed whatever happens.
		total, parts := writeDeltas(writesBefore, writesAfter, map[string]float64{"secrets": 1}, 1)
		leases := 0.0
		for _, p := range parts {
			if v, ok := strings.CutPrefix(p, "leases "); ok {
				leases, _ = strconv.ParseFloat(v, 64)
			}
		}
		r.line("    API writes after the DELETE (apiserver_request_total, %.0f s): %.0f (%s); %.0f without leases", time.Since(start).Seconds(), total, strings.Join(parts, ", "), total-leases)
		r.target(info("change-writes-"+strconv.Itoa(n), total-leases, "", "%.0f", "report (API writes, leases left out)", math.NaN()))
	} else {
		r.line("    API writes: not read (%v)", werr)
	}
	var names []string
	all, rewritten, nRewritten := 0, 0, 0
	for name, after := range setsAfter {
		all += after.bytes
		if before, ok := setsBefore[name]; !ok || before.resourceVersion != after.resourceVersion {
			rewritten += after.bytes
			nRewritten++
			names = append(names, fmt.Sprintf("%s (%s bytes)", name, thousands(after.bytes)))
		}
	}
	slices.Sort(names)
	r.line("    secret-set Secrets rewritten: %d of %d, %s of %s bytes (keys and values): %s", nRewritten, len(setsAfter), thousands(rewritten), thousands(all), strings.Join(names, ", "))
	ratio := math.NaN()
	if all > 0 {
		ratio = float64(rewritten) / float64(all)
	}
	r.target(info("change-bytes-"+strconv.Itoa(n), float64(rewritten), " B", "%.0f", fmt.Sprintf("report (of %d B in %d secret-set Secrets)", all, len(setsAfter)), ratio))
	return nil
}

// thousands writes n with thousands separators, for the table (never for TARGET lines).
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
