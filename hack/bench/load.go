package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// result of one load step.
type result struct {
	rps            float64
	p50, p99, p999 time.Duration
	errors, n      int64
	firstErr       string
}

// load runs do on concurrency workers for d (or until do says stop) and measures latency.
func load(concurrency int, d time.Duration, limit float64, do func(c *http.Client, i int64) (bool, error)) result {
	tr := &http.Transport{MaxIdleConnsPerHost: concurrency, MaxConnsPerHost: concurrency, DisableCompression: true}
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	var (
		next     atomic.Int64
		errs     atomic.Int64
		mu       sync.Mutex
		lat      = make([]time.Duration, 0, 1<<16)
		firstErr string
	)
	var interval time.Duration
	if limit > 0 {
		interval = time.Duration(float64(time.Second) * float64(concurrency) / limit)
	}
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for k := range concurrency {
		wg.Go(func() {
			local := make([]time.Duration, 0, 4096)
			// Paced workers start a fraction of the interval apart, so that together they
			// send at an even rate rather than in bursts of concurrency requests.
			tick := start.Add(interval * time.Duration(k) / time.Duration(concurrency))
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if interval > 0 {
					tick = tick.Add(interval)
					time.Sleep(time.Until(tick))
					// Latency counts from the scheduled send time: a request sent late because
					// the previous one was slow waited too (no coordinated omission).
					t0 = tick
				}
				i := next.Add(1)
				more, err := do(c, i)
				if !more {
					break
				}
				if err != nil {
					if errs.Add(1) == 1 {
						mu.Lock()
						firstErr = err.Error()
						mu.Unlock()
					}
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	q := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	return result{rps: float64(len(lat)) / elapsed.Seconds(), p50: q(.5), p99: q(.99), p999: q(.999), errors: errs.Load(), n: int64(len(lat)), firstErr: firstErr}
}

func post(c *http.Client, u, bearer, contentType string, body []byte, basic [2]string) ([]byte, error) {
	req, _ := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if basic[0] != "" {
		req.SetBasicAuth(basic[0], basic[1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %d %s", u, resp.StatusCode, b)
	}
	return b, nil
}

func get(c *http.Client, u string) error {
	resp, err := c.Get(u)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d", u, resp.StatusCode)
	}
	return nil
}

// codePool holds codes issued ahead of the /token steps: each redemption needs a fresh one.
type codePool struct {
	mu    sync.Mutex
	codes []string
}

func (p *codePool) put(c string) { p.mu.Lock(); p.codes = append(p.codes, c); p.mu.Unlock() }
func (p *codePool) len() int     { p.mu.Lock(); defer p.mu.Unlock(); return len(p.codes) }
func (p *codePool) take() (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.codes) == 0 {
		return "", false
	}
	c := p.codes[len(p.codes)-1]
	p.codes = p.codes[:len(p.codes)-1]
	return c, true
}

const lpRedirect = "https://liveperson.net"

func codeBody(clientID string, i int64) []byte {
	return fmt.Appendf(nil, `{"client_id":%q,"sub":"customer-%d","claims":{"given_name":"Ada","email":"ada%d@brand.example"},"lp_sdes":[{"type":"ctmrinfo","info":{"customerId":"%d","ctype":"gold"}}],"redirect_uri":%q}`,
		clientID, i, i, i, lpRedirect)
}

// codeIssuer returns a load step that issues codes for clientID through the dev server's issue
// API and keeps them in pool.
func (s *system) codeIssuer(clientID string, pool *codePool) func(c *http.Client, i int64) (bool, error) {
	return func(c *http.Client, i int64) (bool, error) {
		b, err := post(c, s.issuer+"/api/v1/codes", s.issueToken, "application/json", codeBody(clientID, i), [2]string{})
		if err != nil {
			return true, err
		}
		pool.put(codeFrom(b))
		return true, nil
	}
}

// fillCodes issues codes for clientID until pool holds n.
func (s *system) fillCodes(clientID string, pool *codePool, n int) {
	issue := s.codeIssuer(clientID, pool)
	for pool.len() < n {
		load(16, time.Second, 0, issue)
	}
}

// redeemer returns a load step that redeems the pool's codes at base/token; it stops the step
// when the pool runs dry.
func redeemer(base, clientID, secret string, pool *codePool) func(c *http.Client, i int64) (bool, error) {
	return func(c *http.Client, i int64) (bool, error) {
		code, ok := pool.take()
		if !ok {
			return false, nil
		}
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {lpRedirect}}
		_, err := post(c, base+"/token", "", "application/x-www-form-urlencoded", []byte(form.Encode()), [2]string{clientID, secret})
		return true, err
	}
}

func httpLoad(o options, r *report, s *system, l limits) error {
	jweID, jweSecret, err := s.jweClient()
	if err != nil {
		return err
	}
	r.line("HTTP load on loopback: the hack/dev token server process (memory replay store); load generator in this process, same cores")
	r.line("  %-26s %5s %10s %9s %9s %9s %7s %10s", "endpoint", "conc", "req/s", "p50", "p99", "p99.9", "errors", "÷ limit")
	row := func(name string, conc int, res result, limit float64) {
		ratio := ""
		if limit > 0 {
			ratio = fmt.Sprintf("%.2f", res.rps/limit)
		}
		r.line("  %-26s %5d %10.0f %9s %9s %9s %7d %10s", name, conc, res.rps, ms(res.p50), ms(res.p99), ms(res.p999), res.errors, ratio)
		if res.firstErr != "" {
			r.line("    first error: %.200s", res.firstErr)
		}
	}
	pools := map[string]*codePool{s.clientID: {}, jweID: {}}
	redeem := func(clientID, secret string) func(c *http.Client, i int64) (bool, error) {
		return redeemer(s.issuer, clientID, secret, pools[clientID])
	}
	tokens := func(c *http.Client, i int64) (bool, error) {
		_, err := post(c, s.issuer+"/api/v1/tokens", s.issueToken, "application/json", fmt.Appendf(nil, `{"client_id":%q,"sub":"customer-%d"}`, s.clientID, i), [2]string{})
		return true, err
	}
	for _, conc := range o.concurrency {
		row("POST /api/v1/codes", conc, load(conc, o.step, 0, s.codeIssuer(s.clientID, pools[s.clientID])), 0)
	}
	// Enough codes for every /token step: the /token rate is bounded by signing.
	need := int(l.rs2048*o.step.Seconds()*1.3) + 1000
	s.fillCodes(s.clientID, pools[s.clientID], need*len(o.concurrency)+need)
	var peak result
	for _, conc := range o.concurrency {
		res := load(conc, o.step, 0, redeem(s.clientID, s.secret))
		row("POST /token", conc, res, l.rs2048)
		if res.rps > peak.rps {
			peak = res
		}
	}
	half := load(16, o.step, peak.rps/2, redeem(s.clientID, s.secret))
	row("POST /token at ½ peak", 16, half, l.rs2048)
	s.fillCodes(jweID, pools[jweID], need)
	row("POST /token (JWE)", 16, load(16, o.step, 0, redeem(jweID, jweSecret)), 1/(1/l.rs2048+1/l.oaep))
	for _, conc := range o.concurrency {
		row("POST /api/v1/tokens", conc, load(conc, o.step, 0, tokens), l.rs2048)
	}
	for _, ep := range []struct{ name, path string }{{"GET JWKS", "/.well-known/jwks.json"}, {"GET discovery", "/.well-known/openid-configuration"}} {
		for _, conc := range o.concurrency {
			row(ep.name, conc, load(conc, o.step, 0, func(c *http.Client, _ int64) (bool, error) { return true, get(c, s.issuer+ep.path) }), 0)
		}
	}
	r.line("  ÷ limit: /token and /api/v1/tokens ÷ the server's RS256-2048 signs/s above; JWE ÷ the rate of one signature plus one RSA-OAEP encryption")
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

// jweClient creates, once, a code-flow client whose tokens are encrypted for a LivePerson key.
func (s *system) jweClient() (string, string, error) {
	if s.jwe[0] != "" {
		return s.jwe[0], s.jwe[1], nil
	}
	id, secret, err := s.createJWEClient()
	if err == nil {
		s.jwe = [2]string{id, secret}
	}
	return id, secret, err
}

func (s *system) createJWEClient() (string, string, error) {
	ctx := context.Background()
	lpKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", err
	}
	der, _ := x509.MarshalPKIXPublicKey(&lpKey.PublicKey)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bench-lp-encryption", Namespace: devNamespace},
		Data: map[string][]byte{"lp-enc": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})}}
	if err := s.k8s.Create(ctx, secret); err != nil {
		return "", "", err
	}
	c := &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "bench-jwe", Namespace: devNamespace}, Spec: v1alpha1.LivePersonAuthClientSpec{
		TokenServerRef: v1alpha1.LocalObjectReference{Name: "brand"}, AccountID: "1", Flow: v1alpha1.FlowCode,
		RedirectURIs: []string{lpRedirect}, Encryption: &v1alpha1.EncryptionSpec{KeysSecretRef: v1alpha1.LocalObjectReference{Name: secret.Name}},
	}}
	if err := s.k8s.Create(ctx, c); err != nil {
		return "", "", err
	}
	for range 300 {
		if err := s.k8s.Get(ctx, client.ObjectKeyFromObject(c), c); err == nil && meta.IsStatusConditionTrue(c.Status.Conditions, v1alpha1.ConditionReady) {
			cs := &corev1.Secret{}
			if err := s.k8s.Get(ctx, client.ObjectKey{Namespace: devNamespace, Name: c.Status.ClientSecretRef.Name}, cs); err != nil {
				return "", "", err
			}
			// The token server sees the new client through its informers.
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				if _, err := post(http.DefaultClient, s.issuer+"/api/v1/codes", s.issueToken, "application/json", codeBody(c.Status.ClientID, 0), [2]string{}); err == nil {
					return c.Status.ClientID, string(cs.Data[c.Status.ClientSecretRef.Key]), nil
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", "", fmt.Errorf("the JWE client did not become ready")
}

// ---- control plane ----

func controlPlane(o options, r *report, s *system) error {
	ctx := context.Background()
	r.line("Control plane (embedded kube-apiserver and etcd on the same cores)")
	if err := rotations(ctx, o, r, s); err != nil {
		return err
	}
	// Step N tops the namespace up to N clients in all (the samples, the JWE client and the
	// clients of earlier steps count), so the growth rows read as "at N clients" rather than
	// as a running sum. Counted once here, then kept as the bench creates clients: listing
	// 30,000 clients at every step would load the API server being measured.
	list := &v1alpha1.LivePersonAuthClientList{}
	if err := s.k8s.List(ctx, list, client.InNamespace(devNamespace)); err != nil {
		return err
	}
	g := &growth{inNamespace: len(list.Items)}
	for _, n := range o.scale {
		if err := scaleClients(ctx, o, r, s, g, n); err != nil {
			return err
		}
	}
	return nil
}

// growth is what the scale steps share.
type growth struct {
	// inNamespace counts the LivePersonAuthClients in the namespace.
	inNamespace int
	// changed is the client whose secret each step regenerates to measure one change's cost:
	// the first one the first step created, the oldest, which a secret set too full to carry
	// every client would keep (the operator leaves out the youngest).
	changed string
}

// targetScale is the client count issue 18 sets the control-plane limits at; the other steps
// report the same figures without a verdict (growth).
const targetScale = 10000

// atScale keeps t's verdict at targetScale and makes it INFO at other steps, keeping the limit
// as a reference.
func atScale(n int, t target) target {
	if n != targetScale {
		t.limit = fmt.Sprintf("report (%s at %d)", t.limit, targetScale)
		t.verdict = verdictInfo
	}
	return t
}

// rotations times `rotate` annotation → a token signed by the new key, o.rotations times.
func rotations(ctx context.Context, o options, r *report, s *system) error {
	var took []time.Duration
	c := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(time.Duration(o.rotations) * 5 * time.Second)
	for i := 0; len(took) < o.rotations && time.Now().Before(deadline); i++ {
		sk := &v1alpha1.SigningKey{}
		if err := s.k8s.Get(ctx, client.ObjectKey{Namespace: devNamespace, Name: "brand-keys"}, sk); err != nil {
			return err
		}
		next := ""
		for _, k := range sk.Status.Keys {
			if k.State == v1alpha1.KeyNext {
				next = k.KeyID
			}
		}
		if next == "" {
			// The operator makes the new Next key a moment after a rotation.
			time.Sleep(20 * time.Millisecond)
			continue
		}
		// A set holds at most 16 keys: revoke the key retired by the previous rotation, so 50
		// rotations in a row never wait for room.
		retired := sk.Status.ActiveKeyID
		patch := client.MergeFrom(sk.DeepCopy())
		metav1.SetMetaDataAnnotation(&sk.ObjectMeta, v1alpha1.AnnotationRotate, fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i))
		start := time.Now()
		if err := s.k8s.Patch(ctx, sk, patch); err != nil {
			return err
		}
		for time.Since(start) < 10*time.Second {
			b, err := post(c, s.issuer+"/api/v1/tokens", s.issueToken, "application/json", fmt.Appendf(nil, `{"client_id":%q,"sub":"rotation"}`, s.clientID), [2]string{})
			if err == nil {
				var out struct {
					Token string `json:"token"`
				}
				_ = json.Unmarshal(b, &out)
				if jws, err := jose.ParseSigned(out.Token, []jose.SignatureAlgorithm{jose.RS256}); err == nil && jws.Signatures[0].Protected.KeyID == next {
					took = append(took, time.Since(start))
					break
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		cur := &v1alpha1.SigningKey{}
		if s.k8s.Get(ctx, client.ObjectKey{Namespace: devNamespace, Name: "brand-keys"}, cur) == nil {
			p := client.MergeFrom(cur.DeepCopy())
			metav1.SetMetaDataAnnotation(&cur.ObjectMeta, v1alpha1.AnnotationRevoke, retired)
			_ = s.k8s.Patch(ctx, cur, p)
		}
	}
	slices.Sort(took)
	if len(took) == 0 {
		return fmt.Errorf("no rotation became visible")
	}
	r.line("  %-52s p50 %s, p99 %s, max %s (%d of %d)", "rotate annotation → token signed by the new key", ms(took[len(took)/2]),
		ms(took[min(len(took)-1, len(took)*99/100)]), ms(took[len(took)-1]), len(took), o.rotations)
	return nil
}

// scaleClients tops the namespace up to n clients, times them to Ready, then starts a second
// token server and measures its cold start, snapshot rebuild and memory with all of them, then
// how long a new client takes to be served and what one client's change costs at that size.
func scaleClients(ctx context.Context, o options, r *report, s *system, g *growth, n int) error {
	m := n - g.inNamespace
	if m <= 0 {
		r.line("  %-52s skipped: the namespace already holds %s", fmt.Sprintf("%s LivePersonAuthClients in all", thousands(n)), thousands(g.inNamespace))
		return nil
	}
	prefix := fmt.Sprintf("scale-%d-", n)
	if g.changed == "" {
		g.changed = fmt.Sprintf("%s%05d", prefix, 0)
	}
	cpu := s.cpuByProcess()
	writesBefore, writesErr := s.apiWrites()
	start := time.Now()
	var wg sync.WaitGroup
	var createErr atomic.Value
	var createdOK atomic.Int64
	work := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range work {
				c := &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s%05d", prefix, i), Namespace: devNamespace},
					Spec: v1alpha1.LivePersonAuthClientSpec{TokenServerRef: v1alpha1.LocalObjectReference{Name: "brand"}, AccountID: "1", RedirectURIs: []string{lpRedirect}}}
				if err := s.k8s.Create(ctx, c); err != nil {
					createErr.Store(err)
				} else {
					createdOK.Add(1)
				}
			}
		})
	}
	for i := range m {
		work <- i
	}
	close(work)
	wg.Wait()
	g.inNamespace += int(createdOK.Load())
	if err, _ := createErr.Load().(error); err != nil {
		return err
	}
	created := time.Since(start)
	// The old fixed 10 minutes was 60 ms a client at 10,000; the deadline keeps that rate (and
	// 2 minutes for a small step), and a step whose count stops rising for readyStall ends early:
	// clients a full secret set leaves out never become Ready, and waiting the whole deadline
	// for them would say nothing more.
	ready, stalled, err := waitClientsReady(ctx, s, prefix, m, start.Add(2*time.Minute+time.Duration(m)*60*time.Millisecond), readyStall)
	if err != nil {
		return err
	}
	took := time.Since(start)
	note := ""
	if ready < m {
		note = fmt.Sprintf("; NOT ALL READY: %s", map[bool]string{true: fmt.Sprintf("no new client Ready for %s", readyStall), false: "deadline passed"}[stalled])
	}
	r.line("  %-52s %s (created in %s; %d of %d Ready%s)", fmt.Sprintf("%s LivePersonAuthClients in all (%s created) → all Ready", thousands(n), thousands(m)),
		took.Round(100*time.Millisecond), created.Round(100*time.Millisecond), ready, m, note)
	if ready == m {
		// Issue 18's bound is 10,000 created in 60 s; a step that tops up fewer is held to the
		// same rate (60 s × created ÷ 10,000), which is stricter, not looser, since each client
		// costs more as the set grows.
		limit := 60 * float64(m) / targetScale
		t := atMost("ready-"+strconv.Itoa(n), took.Seconds(), limit, " s", "%.1f")
		t.limit += fmt.Sprintf(" (60 s × %d created ÷ %d)", m, targetScale)
		r.target(atScale(n, t))
	} else {
		// Not all Ready is a miss at any step; the time is only how long the bench waited.
		r.target(target{name: "ready-" + strconv.Itoa(n), value: fmt.Sprintf("%.1f s", took.Seconds()), limit: fmt.Sprintf("all %d Ready (%d were)", m, ready), ratio: math.NaN(), verdict: verdictMiss})
	}
	var used []string
	for name, secs := range s.cpuByProcess() {
		used = append(used, fmt.Sprintf("%s %.0f s", name, secs-cpu[name]))
	}
	slices.Sort(used)
	r.line("    CPU meanwhile (%d cores × %.0f s = %.0f s): %s", runtime.NumCPU(), took.Seconds(), float64(runtime.NumCPU())*took.Seconds(), strings.Join(used, ", "))
	if writesAfter, err := s.apiWrites(); err == nil && writesErr == nil {
		perClient, text := writesPerClient(writesBefore, writesAfter, m)
		r.line("    %s", text)
		r.target(notOver("writes-per-client-"+strconv.Itoa(n), perClient, 3, "", "%.2f"))
	} else {
		r.line("    API writes: not read (%v)", errors.Join(writesErr, err))
	}

	if err := coldStart(ctx, o, r, s, n); err != nil {
		return err
	}
	if err := servedLatency(ctx, r, s, g, n); err != nil {
		return err
	}
	return changeOneClient(ctx, r, s, n, g.changed)
}

// readyStall is how long a scale step waits for its Ready count to rise before it gives up.
const readyStall = 3 * time.Minute

// coldStart starts a second token server with the step's clients and measures its cold start,
// snapshot rebuild and memory, then stops it (it would otherwise react to the later changes).
func coldStart(ctx context.Context, o options, r *report, s *system, n int) error {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t0 := time.Now()
	cmd, base, metricsURL, err := s.tokenServerProcess(pctx, o.bin)
	if err != nil {
		return err
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	if err := waitReady(base, 60*time.Second); err != nil {
		return err
	}
	cold := time.Since(t0)
	time.Sleep(2 * time.Second) // let the informers settle after the first snapshot
	rebuild := metricValue(metricsURL, "lpauth_snapshot_rebuild_duration_seconds")
	clients := metricValue(metricsURL, "lpauth_snapshot_clients")
	rss, peak := rssMiB(cmd.Process.Pid)
	r.line("  %-52s cold start %s, snapshot rebuild %s (mean), RSS %.0f MiB (peak %.0f), %0.f clients served", fmt.Sprintf("token server with %d+ clients", n), ms(cold), ms(time.Duration(rebuild*float64(time.Second))), rss, peak, clients)
	if phases := startPhases(s.dir, base); phases != "" {
		r.line("    of which (the token server's log): %s", phases)
	}
	ns := strconv.Itoa(n)
	r.target(atScale(n, atMost("cold-start-"+ns, float64(cold.Milliseconds()), 1000, " ms", "%.0f")))
	// The peak is what a memory limit has to allow, so it is the one held to 128 MiB.
	r.target(atScale(n, atMost("rss-peak-"+ns, peak, 128, " MiB", "%.0f")))
	r.target(info("rebuild-"+ns, rebuild*1000, " ms", "%.1f", "", math.NaN()))
	return nil
}

// startPhases is where a token server's start went, from its "Read the cluster" log line: its
// caches synced (the lists read) and its first snapshot built.
func startPhases(dir, base string) string {
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(base, "http://"))
	b, err := os.ReadFile(filepath.Join(dir, "tokenserver-"+port+".log"))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, "Read the cluster") {
			continue
		}
		return phasesOf(line)
	}
	return ""
}

// phasesOf reads the two durations of a "Read the cluster" line, logged as JSON seconds (the
// token server's production logger) or as Go durations (development logging).
func phasesOf(line string) string {
	var parts []string
	for _, f := range []string{"cachesSynced", "firstSnapshot"} {
		m := regexp.MustCompile(f + `\W+([0-9.]+)([a-zµ]*)`).FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if m[2] == "" {
			if v, err := strconv.ParseFloat(m[1], 64); err == nil {
				parts = append(parts, f+" "+ms(time.Duration(v*float64(time.Second))))
				continue
			}
		}
		parts = append(parts, f+" "+m[1]+m[2])
	}
	return strings.Join(parts, ", ")
}

// waitClientsReady counts the clients named prefix* that are Ready, from a watch (listing
// 10,000 clients every half second would load the API server it is measuring), until all n
// are, the deadline passes, or the count has not risen for stall (stalled is then true). The
// API server ends watches now and then; a new one starts with the current state of every
// client, so the count picks up where it was.
func waitClientsReady(ctx context.Context, s *system, prefix string, n int, deadline time.Time, stall time.Duration) (ready int, stalled bool, err error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	state := map[string]bool{}
	best, rose := 0, time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	// A watch the API server ends (it closes watchers that fall behind while it is saturated)
	// resumes from the last resourceVersion seen: starting afresh would replay every client,
	// and replaying 10,000 objects to a watcher already behind made the API server close it
	// again — dozens of times in one run, a fifth of the API server's CPU.
	rv := ""
	for ctx.Err() == nil {
		w, err := s.watch.Watch(ctx, &v1alpha1.LivePersonAuthClientList{}, &client.ListOptions{Namespace: devNamespace,
			Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
	events:
		for {
			select {
			case ev, open := <-w.ResultChan():
				if !open {
					break events
				}
				if ev.Type == watch.Error {
					rv = "" // too old to resume (410 Gone): start afresh
					break events
				}
				c, ok := ev.Object.(*v1alpha1.LivePersonAuthClient)
				if ok {
					rv = c.ResourceVersion
				}
				if !ok || ev.Type == watch.Bookmark || !strings.HasPrefix(c.Name, prefix) {
					continue
				}
				state[c.Name] = ev.Type != watch.Deleted && meta.IsStatusConditionTrue(c.Status.Conditions, v1alpha1.ConditionReady)
				if len(state) == n && count(state) == n {
					w.Stop()
					return n, false, nil
				}
			case <-tick.C:
				if k := count(state); k > best {
					best, rose = k, time.Now()
				} else if time.Since(rose) > stall {
					w.Stop()
					return k, true, nil
				}
			}
		}
		w.Stop()
	}
	return count(state), false, nil
}

func count(m map[string]bool) (n int) {
	for _, v := range m {
		if v {
			n++
		}
	}
	return n
}

// metricValue reads a gauge, or a histogram's mean, from a Prometheus text endpoint.
// apiWrites reads the API server's own count of write requests (POST, PUT, PATCH, DELETE) by
// resource, from its /metrics (apiserver_request_total), as the operator's cost per client.
func (s *system) apiWrites() (map[string]float64, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig)
	if err != nil {
		return nil, err
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Get(strings.TrimSuffix(cfg.Host, "/") + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("API server /metrics: %s", resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return parseWrites(string(b)), nil
}

var requestLine = regexp.MustCompile(`^apiserver_request_total\{(.*)\} (\S+)$`)
var label = regexp.MustCompile(`(\w+)="([^"]*)"`)

// parseWrites sums apiserver_request_total's write verbs by resource (subresource after a /).
func parseWrites(metrics string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(metrics, "\n") {
		m := requestLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		labels := map[string]string{}
		for _, l := range label.FindAllStringSubmatch(m[1], -1) {
			labels[l[1]] = l[2]
		}
		switch labels["verb"] {
		case "POST", "PUT", "PATCH", "DELETE", "APPLY":
		default:
			continue
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			continue
		}
		res := labels["resource"]
		if sub := labels["subresource"]; sub != "" {
			res += "/" + sub
		}
		out[res] += v
	}
	return out
}

// writesPerClient says how many API writes n new clients cost beyond their own creation, in
// all and by resource.
func writesPerClient(before, after map[string]float64, n int) (float64, string) {
	total, parts := writeDeltas(before, after, map[string]float64{"livepersonauthclients": float64(n)}, float64(n))
	return total, fmt.Sprintf("API writes per new client after its create (apiserver_request_total): %.2f (%s)", total, strings.Join(parts, ", "))
}

// writeDeltas is the API writes between two readings of apiWrites less the bench's own (mine, by
// resource), divided by per: their sum and "resource count" parts, sorted.
func writeDeltas(before, after, mine map[string]float64, per float64) (float64, []string) {
	var total float64
	var parts []string
	for res, v := range after {
		d := v - before[res] - mine[res]
		if d <= 0 {
			continue
		}
		total += d
		parts = append(parts, fmt.Sprintf("%s %.2f", res, d/per))
	}
	slices.Sort(parts)
	return total / per, parts
}

func metricValue(base, name string) float64 {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var sum, count, gauge float64
	for _, line := range strings.Split(string(b), "\n") {
		var v float64
		switch {
		case strings.HasPrefix(line, name+"_sum "):
			fmt.Sscanf(strings.TrimPrefix(line, name+"_sum "), "%g", &sum)
		case strings.HasPrefix(line, name+"_count "):
			fmt.Sscanf(strings.TrimPrefix(line, name+"_count "), "%g", &count)
		case strings.HasPrefix(line, name+" "), strings.HasPrefix(line, name+"{"):
			// A gauge, with or without labels (the last series when there are several).
			if f := strings.Fields(line); len(f) == 2 {
				fmt.Sscanf(f[1], "%g", &v)
				gauge = v
			}
		}
	}
	if count > 0 {
		return sum / count
	}
	return gauge
}
