package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lpauth/lpauth-operator/api/keys"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/tokenserver/signer"
)

// On a shared machine the load generator's own CPU is taken from the server it measures, so
// a /token rate below the signer's can mean either. This part gives the token server core 0 to
// itself (taskset) and moves everything else — this process and its load generator, the dev
// process with its API server and etcd, Redis — to the other cores, then compares /token with
// the signer measured on that same core.

// oneCoreRaw is what -one-core-raw prints: the build's RS256-2048 signer and RSA-OAEP-256 on
// the one core the process is pinned to.
type oneCoreRaw struct {
	Sign2048 float64 `json:"sign2048"`
	OAEP     float64 `json:"oaep"`
}

// measureOneCoreRaw runs in the pinned child: GOMAXPROCS follows the affinity mask, so the
// signer starts one thread, on that core.
func measureOneCoreRaw() {
	jwk, _ := keys.Generate(v1alpha1.RS256, 2048)
	sign, err := signer.New(keys.Key{JWK: jwk, State: v1alpha1.KeyActive})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	payload := []byte(`{"iss":"https://auth.brand.example","sub":"customer-8271","aud":"lp-client","exp":1800000000,"iat":1799996400}`)
	lpKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	out := oneCoreRaw{
		Sign2048: rate(2*time.Second, 4, func() error { _, err := sign.Sign(payload); return err }),
		OAEP: rate(2*time.Second, 1, func() error {
			_, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &lpKey.PublicKey, make([]byte, 32), nil)
			return err
		}),
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}

// measureCore0 runs this program pinned to core 0 to measure the signer there.
func measureCore0() (oneCoreRaw, error) {
	var raw oneCoreRaw
	self, err := os.Executable()
	if err != nil {
		return raw, err
	}
	out, err := exec.Command("taskset", "-c", "0", self, "-one-core-raw").Output()
	if err == nil {
		err = json.Unmarshal(out, &raw)
	}
	if err != nil {
		return raw, fmt.Errorf("measuring the signer on core 0: %w", err)
	}
	return raw, nil
}

func cpuList(from, to int) string { return fmt.Sprintf("%d-%d", from, to) }

// setAffinity moves every thread of pid (and of its descendants) to cpus.
func setAffinity(pid int, cpus string) error {
	for _, p := range append([]int{pid}, descendants(pid)...) {
		if out, err := exec.Command("taskset", "-a", "-p", "-c", cpus, strconv.Itoa(p)).CombinedOutput(); err != nil {
			return fmt.Errorf("taskset %d: %v: %s", p, err, out)
		}
	}
	return nil
}

// descendants lists the processes below pid, from /proc/*/stat.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The command name (field 2) may hold spaces; the parent pid follows its ')'.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 1 {
			ppid, _ := strconv.Atoi(f[1])
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		for _, c := range children[queue[0]] {
			out = append(out, c)
			queue = append(queue, c)
		}
		queue = queue[1:]
	}
	return out
}

// cpuSeconds is the user+system CPU time pid has used (all its threads).
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ is 100 on Linux
}

// stolen is the time the hypervisor ran something else while core cpu wanted to run (the steal
// column of /proc/stat, in USER_HZ ticks of 10 ms); ok is false when it cannot be read. It is a
// total: it does not tell one long episode from many short ones.
func stolen(cpu int) (time.Duration, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	return parseSteal(string(b), cpu)
}

func parseSteal(procStat string, cpu int) (time.Duration, bool) {
	prefix := fmt.Sprintf("cpu%d ", cpu)
	for line := range strings.SplitSeq(procStat, "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		// cpuN user nice system idle iowait irq softirq steal …
		f := strings.Fields(line)
		if len(f) < 9 {
			return 0, false
		}
		ticks, err := strconv.ParseInt(f[8], 10, 64)
		return time.Duration(ticks) * 10 * time.Millisecond, err == nil
	}
	return 0, false
}

// parseSchedstat reads /proc/<pid>/task/<tid>/schedstat: nanoseconds on the CPU, nanoseconds
// runnable but waiting on a run queue, and the number of times the thread ran.
func parseSchedstat(s string) (run, wait time.Duration, ok bool) {
	f := strings.Fields(s)
	if len(f) < 2 {
		return 0, 0, false
	}
	r, err1 := strconv.ParseInt(f[0], 10, 64)
	w, err2 := strconv.ParseInt(f[1], 10, 64)
	return time.Duration(r), time.Duration(w), err1 == nil && err2 == nil
}

// threadTimes reads the scheduler's own nanosecond counts for pid's threads (schedstat), not
// the 10 ms ticks of /proc/<pid>/stat, split between the threads named name and the others. The
// token server's signing threads are named (signer.ThreadName) and live as long as the process,
// so the difference between two readings is what its signatures took. The others' wait is every
// other thread's (sysmon's and idle ones' included), a sum, not any request's latency; it misses
// threads that exited between the readings, which the runtime rarely ends.
func threadTimes(pid int, name string) (t schedTimes) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return t
	}
	for _, task := range tasks {
		dir := fmt.Sprintf("/proc/%d/task/%s/", pid, task.Name())
		comm, err1 := os.ReadFile(dir + "comm")
		stat, err2 := os.ReadFile(dir + "schedstat")
		run, wait, ok := parseSchedstat(string(stat))
		if err1 != nil || err2 != nil || !ok {
			continue
		}
		if strings.TrimSpace(string(comm)) == name {
			t.signThreads++
			t.signRun += run
			t.signWait += wait
		} else {
			t.otherWait += wait
		}
	}
	return t
}

// schedTimes is what threadTimes reads: how many threads bore the name, their CPU and run-queue
// wait, and the others' run-queue wait.
type schedTimes struct {
	signThreads                  int
	signRun, signWait, otherWait time.Duration
}

func (a schedTimes) sub(b schedTimes) schedTimes {
	return schedTimes{a.signThreads, a.signRun - b.signRun, a.signWait - b.signWait, a.otherWait - b.otherWait}
}

func pinnedLoad(o options, r *report, s *system) error {
	r.line("Token server alone on core 0 (taskset); load generator, dev control plane and Redis on the other cores")
	if runtime.NumCPU() < 2 {
		r.line("  (skipped: needs 2 cores)")
		return nil
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		r.line("  (skipped: taskset, from util-linux, is not installed)")
		return nil
	}
	// This VM's speed drifts by 10–20% over minutes: the signer on core 0 is measured before
	// and after the load steps, and the ratios use the mean. Rows are printed at the end.
	before, err := measureCore0()
	if err != nil {
		return err
	}
	openssl := opensslSpeed(2048, "0")
	raw := before // for sizing the steps; the rows use the mean
	var pending []func(limit oneCoreRaw)
	out := func(format string, args ...any) {
		pending = append(pending, func(oneCoreRaw) { r.line(format, args...) })
	}
	// Issue 18's third target, judged once the signer's mean is known: /token's peak ÷ the
	// signer, and at half that peak the client's p99 and the server's own share under 5 ms.
	var (
		peakRPS, serverUnder5 float64
		tokenCPU, floorCPU    time.Duration // server CPU per request: /token at 16 connections, GET /healthz
		tokenSign, halfSign   time.Duration // of that, the signing threads' per redemption: at 16 connections, at ½ peak
		halfCPU               time.Duration // server CPU per redemption at ½ peak
		localRatio            float64       // the best /token step ÷ the signer measured on either side of it
		halfP99               time.Duration
		measuredHalf          bool
	)
	serverUnder5 = math.NaN()
	defer func() {
		after, err := measureCore0()
		if err != nil {
			after = before
		}
		mean := oneCoreRaw{Sign2048: (before.Sign2048 + after.Sign2048) / 2, OAEP: (before.OAEP + after.OAEP) / 2}
		if peakRPS > 0 && mean.Sign2048 > 0 {
			r.target(atLeast("token-vs-signer-pinned", peakRPS/mean.Sign2048, 0.90, "", "%.2f"))
		}
		if localRatio > 0 {
			r.target(atLeast("token-vs-signer-local", localRatio, 0.90, "", "%.2f"))
		}
		if measuredHalf {
			r.target(atMost("token-p99-half-peak", float64(halfP99.Microseconds())/1000, 5, " ms", "%.2f"))
		}
		if !math.IsNaN(serverUnder5) {
			r.target(atLeast("token-server-under-5ms", serverUnder5, 99.5, "%", "%.2f"))
		}
		if tokenCPU > 0 && floorCPU > 0 && mean.Sign2048 > 0 {
			// Where a redemption's CPU goes: the signature, the HTTP floor, and the rest (the
			// handler: form, code, claim, payload; the Go side of the hand-off to the signing
			// thread; the runtime). The signature is what the signing threads used during the
			// step itself, their side of the hand-off included (a few µs: BenchmarkHandoff in
			// tokenserver/signer), so the VM's drift between the signer's measurement and the
			// step does not land in the rest (the signer's rate on this core when the threads
			// cannot be told apart: the pure-Go build). The bound is what /token ÷ signer could
			// reach were the handler free: the floor alone keeps it there or below.
			idle := time.Duration(float64(time.Second) / mean.Sign2048)
			sig := tokenSign
			if tokenSign > 0 {
				// The C threads' CPU only; the signer alone is the wall time of a whole Sign
				// call (hashing, the JWS, the hand-off's Go side), so below 1 by construction.
				r.target(info("token-signature-cpu-in-step", float64(tokenSign.Microseconds()), " µs", "%.0f",
					"per redemption at 16 connections; ratio: ÷ a whole Sign on core 0 alone", float64(tokenSign)/float64(idle)))
				beyond := tokenCPU - sig
				r.target(atMost("token-cpu-beyond-signature", float64(beyond.Microseconds()), 60, " µs", "%.0f"))
				r.line("  a redemption at 16 connections: %d µs of server CPU, its signature %d µs (the signing threads' CPU during the step; a whole Sign alone on core 0: %d µs), %d µs beyond it",
					tokenCPU.Microseconds(), sig.Microseconds(), idle.Microseconds(), beyond.Microseconds())
				if halfSign > 0 && halfCPU > 0 {
					r.target(info("token-cpu-beyond-signature-half-peak", float64((halfCPU - halfSign).Microseconds()), " µs", "%.0f",
						"per redemption at ½ peak; ratio: ÷ the same at 16 connections", float64(halfCPU-halfSign)/float64(beyond)))
					r.target(info("token-signature-cpu-half-peak", float64(halfSign.Microseconds()), " µs", "%.0f",
						"per redemption at ½ peak; ratio: ÷ the same at 16 connections", float64(halfSign)/float64(tokenSign)))
				}
			} else {
				// No signing threads to read (a pure-Go build, or a kernel without schedstat):
				// the signature's share can only come from the signer measured apart, and this
				// VM's drift between the two makes the difference an estimate, never scored.
				sig = idle
				r.target(info("token-cpu-beyond-signature-estimate", float64((tokenCPU - sig).Microseconds()), " µs", "%.0f",
					"server CPU per redemption − a Sign alone on core 0 (no signing threads to read)", math.NaN()))
			}
			r.target(info("token-http-floor-cpu", float64(floorCPU.Microseconds()), " µs", "%.0f", "GET /healthz, server CPU per request", float64(floorCPU)/float64(sig)))
			r.target(info("token-vs-signer-bound", float64(sig)/float64(sig+floorCPU), "", "%.2f", "signature ÷ (signature + HTTP floor)", math.NaN()))
		}
		r.line("  server's RS256-2048 signer on core 0: %.0f signs/s (%.0f before the steps, %.0f after); openssl speed on core 0: %.0f (÷ %.2f); RSA-OAEP-256: %.0f/s",
			mean.Sign2048, before.Sign2048, after.Sign2048, openssl, mean.Sign2048/max(openssl, 1), mean.OAEP)
		r.line("  %-26s %5s %10s %9s %9s %9s %7s %10s %22s", "endpoint", "conc", "req/s", "p50", "p99", "p99.9", "errors", "÷ signer", "server CPU")
		for _, p := range pending {
			p(mean)
		}
		r.line("  ÷ signer: ÷ the RS256-2048 signer on core 0 (JWE: ÷ one signature plus one RSA-OAEP encryption there);")
		r.line("  server CPU: the token server process's CPU time (all threads, signing included) per request; sign: the signing threads' part of it")
	}()

	others := cpuList(1, runtime.NumCPU()-1)
	all := cpuList(0, runtime.NumCPU()-1)
	if err := setAffinity(os.Getpid(), others); err != nil {
		return err
	}
	defer func() { _ = setAffinity(os.Getpid(), all) }()
	if err := setAffinity(s.cmd.Process.Pid, others); err != nil {
		return err
	}
	defer func() { _ = setAffinity(s.cmd.Process.Pid, all) }()

	jweID, jweSecret, err := s.jweClient()
	if err != nil {
		return err
	}
	// measure's lastSign: the signing threads' CPU per request in the step just measured.
	var lastSign time.Duration
	row := func(name string, conc int, res result, limit func(oneCoreRaw) float64, cpuPerReq time.Duration) {
		sign := lastSign
		pending = append(pending, func(raw oneCoreRaw) {
			cpu := ""
			if cpuPerReq > 0 {
				cpu = fmt.Sprintf("%dµs/req", cpuPerReq.Microseconds())
			}
			if sign >= time.Microsecond { // a step without signatures wakes the threads for nanoseconds
				cpu += fmt.Sprintf(" (sign %d)", sign.Microseconds())
			}
			ratio := "-" // no signature to compare with
			if l := limit(raw); !math.IsInf(l, 1) {
				ratio = fmt.Sprintf("%.2f", res.rps/l)
			}
			r.line("  %-26s %5d %10.0f %9s %9s %9s %7d %10s %22s", name, conc, res.rps, ms(res.p50), ms(res.p99), ms(res.p999), res.errors, ratio, cpu)
			if res.firstErr != "" {
				r.line("    first error: %.200s", res.firstErr)
			}
		})
	}
	signerRate := func(raw oneCoreRaw) float64 { return raw.Sign2048 }
	need := int(raw.Sign2048*o.step.Seconds()*1.3) + 500
	// measure runs one step and returns the server's CPU per request. It also sets, for the
	// step: lastSign, the signing threads' CPU per request (0 without such threads); lastWait,
	// their run-queue wait and the other threads' per request; lastSteal, the share of the step
	// the hypervisor took core 0 away (NaN when /proc/stat cannot tell).
	var (
		lastSteal float64
		lastWait  schedTimes
	)
	measure := func(pid int, conc int, rateLimit float64, do func(*http.Client, int64) (bool, error)) (result, time.Duration) {
		before, schedBefore := cpuSeconds(pid), threadTimes(pid, signer.ThreadName)
		stealBefore, okBefore := stolen(0)
		start := time.Now()
		res := load(conc, o.step, rateLimit, do)
		elapsed := time.Since(start)
		used, sched := cpuSeconds(pid)-before, threadTimes(pid, signer.ThreadName).sub(schedBefore)
		stealAfter, okAfter := stolen(0)
		lastSign, lastWait, lastSteal = 0, schedTimes{}, math.NaN()
		if okBefore && okAfter {
			lastSteal = 100 * (stealAfter - stealBefore).Seconds() / elapsed.Seconds()
		}
		if res.n == 0 {
			return res, 0
		}
		n := time.Duration(res.n)
		if sched.signThreads > 0 {
			lastSign = sched.signRun / n
		}
		lastWait = schedTimes{signThreads: sched.signThreads, signWait: sched.signWait / n, otherWait: sched.otherWait / n}
		return res, time.Duration(used / float64(res.n) * float64(time.Second))
	}

	// Memory replay store.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ts, err := s.pinnedTokenServer(ctx, o.bin, "0")
	if err != nil {
		return err
	}
	pool := &codePool{}
	s.fillCodes(s.clientID, pool, need*(len(o.concurrency)+1))
	var peak result
	// The signer is measured again between the /token steps (the server idle meanwhile), and
	// each step is judged against the mean of the measurements on either side of it: this VM's
	// speed moves by a third within a run, and the run's mean alone set a step measured on a slow
	// VM against a signer measured on a fast one.
	around := []float64{}
	if m, err := measureCore0(); err == nil {
		around = append(around, m.Sign2048)
	}
	for _, conc := range o.concurrency {
		res, cpu := measure(ts.pid, conc, 0, redeemer(ts.base, s.clientID, s.secret, pool))
		row("POST /token", conc, res, signerRate, cpu)
		if conc == 16 {
			tokenCPU, tokenSign = cpu, lastSign
			if lastWait.signThreads > 0 {
				out("    at 16 connections, run-queue wait per redemption (schedstat, summed over threads): the other threads %d µs, the signing threads %d µs", lastWait.otherWait.Microseconds(), lastWait.signWait.Microseconds())
				r.target(info("token-go-wait-16", float64(lastWait.otherWait.Microseconds()), " µs", "%.0f", "run-queue wait per redemption at 16 connections, all threads but the signing ones", math.NaN()))
			}
		}
		if res.rps > peak.rps {
			peak = res
		}
		if m, err := measureCore0(); err == nil && len(around) > 0 {
			local := (around[len(around)-1] + m.Sign2048) / 2
			around = append(around, m.Sign2048)
			localRatio = max(localRatio, res.rps/local)
		}
	}
	if len(around) > 1 {
		out("    the signer on core 0 before, between and after the /token steps: %.0f signs/s; best step ÷ the signer on either side of it: %.2f", around, localRatio)
	}
	under5, total := tokenLatencyBuckets(ts.metrics)
	res, cpu := measure(ts.pid, 16, peak.rps/2, redeemer(ts.base, s.clientID, s.secret, pool))
	row("POST /token at ½ peak", 16, res, signerRate, cpu)
	halfCPU, halfSign = cpu, lastSign
	// Two things the server's code does not choose that a 5 ms tail at half of peak depends on:
	// the VM taking core 0 away (a total over the step, not the length of each episode), and the
	// threads waiting for the core while another of the server's runs.
	out("    core 0 stolen by the hypervisor during that step: %.2f%%", lastSteal)
	if lastWait.signThreads > 0 {
		out("    run-queue wait per redemption at ½ peak (schedstat, summed over threads): the other threads %d µs, the signing threads %d µs",
			lastWait.otherWait.Microseconds(), lastWait.signWait.Microseconds())
		r.target(info("token-go-wait-half-peak", float64(lastWait.otherWait.Microseconds()), " µs", "%.0f", "run-queue wait per redemption at ½ peak, all threads but the signing ones", math.NaN()))
		r.target(info("token-sign-wait-half-peak", float64(lastWait.signWait.Microseconds()), " µs", "%.0f", "run-queue wait per redemption at ½ peak, the signing threads", math.NaN()))
	}
	if !math.IsNaN(lastSteal) {
		r.target(info("token-half-peak-steal", lastSteal, "%", "%.2f", "core 0's steal time during the ½-peak step (/proc/stat)", math.NaN()))
	}
	peakRPS, halfP99, measuredHalf = peak.rps, res.p99, res.n > 0
	// The client's latency includes its own scheduling on a core it shares with the control
	// plane; the server's histogram tells what the server itself took.
	if u, t := tokenLatencyBuckets(ts.metrics); t > total {
		serverUnder5 = 100 * (u - under5) / (t - total)
		out("    server's own histogram for that step: %.2f%% of /token requests under 5 ms", serverUnder5)
	}
	jwePool := &codePool{}
	s.fillCodes(jweID, jwePool, need)
	res, cpu = measure(ts.pid, 16, 0, redeemer(ts.base, jweID, jweSecret, jwePool))
	row("POST /token (JWE)", 16, res, func(raw oneCoreRaw) float64 { return 1 / (1/raw.Sign2048 + 1/raw.OAEP) }, cpu)
	res, cpu = measure(ts.pid, 16, 0, func(c *http.Client, i int64) (bool, error) {
		_, err := post(c, ts.base+"/api/v1/tokens", s.issueToken, "application/json", fmt.Appendf(nil, `{"client_id":%q,"sub":"customer-%d"}`, s.clientID, i), [2]string{})
		return true, err
	})
	row("POST /api/v1/tokens", 16, res, signerRate, cpu)
	// The HTTP floor: a request that does nothing, over the same connections and loopback. What
	// /token costs beyond its signature and this floor is its own handler.
	res, cpu = measure(ts.pid, 16, 0, func(c *http.Client, _ int64) (bool, error) { return true, get(c, ts.base+"/healthz") })
	row("GET /healthz (HTTP alone)", 16, res, func(oneCoreRaw) float64 { return math.Inf(1) }, cpu)
	floorCPU = cpu
	ts.stop()

	// Redis replay store: Redis on the other cores, as it would be on another machine.
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		out("  (Redis rows skipped: redis-server is not installed; hack/redis.sh installs it)")
	} else if err := s.withRedis(ctx, redisBin, others, func(redisAddr string, redisPid int) error {
		ts, err := s.pinnedTokenServer(ctx, o.bin, "0")
		if err != nil {
			return err
		}
		defer ts.stop()
		pool := &codePool{}
		s.fillCodes(s.clientID, pool, need*2)
		var one result // the one-process figure at 64 connections, which the two processes share
		for _, conc := range []int{16, 64} {
			res, cpu := measure(ts.pid, conc, 0, redeemer(ts.base, s.clientID, s.secret, pool))
			row("POST /token (Redis)", conc, res, signerRate, cpu)
			one = res
		}
		n, err := redisDBSize(redisAddr)
		out("    codes recorded in Redis: %d (%v)", n, errOrOK(err))

		// Scale-out: a second token server process sharing the Redis, on the other core(s)
		// (where the load generator, the control plane and Redis also run: on 2 cores this is
		// what the second process can get, and the figure says so).
		ts2, err := s.pinnedTokenServer(ctx, o.bin, others)
		if err != nil {
			return err
		}
		pool2 := &codePool{}
		s.fillCodes(s.clientID, pool2, need*3)
		var a, b result
		var wg sync.WaitGroup
		wg.Go(func() { a = load(32, o.step, 0, redeemer(ts.base, s.clientID, s.secret, pool2)) })
		wg.Go(func() { b = load(32, o.step, 0, redeemer(ts2.base, s.clientID, s.secret, pool2)) })
		wg.Wait()
		ts2.stop()
		both := a.rps + b.rps
		ratio := math.NaN()
		if one.rps > 0 {
			ratio = both / one.rps
		}
		out("  POST /token (Redis), 2 token server processes (core 0, and core(s) %s), 32 connections each, at once: %.0f req/s (%.0f + %.0f; p99 %s and %s; errors %d), ÷ 1 process at 64: %.2f",
			others, both, a.rps, b.rps, ms(a.p99), ms(b.p99), a.errors+b.errors, ratio)
		for _, res := range []result{a, b} {
			if res.firstErr != "" {
				out("    first error: %.200s", res.firstErr)
			}
		}
		r.target(info("redis-2-processes", both, " req/s", "%.0f", fmt.Sprintf("1 process at 64 connections: %.0f req/s", one.rps), ratio))

		// What one Redis carries: the token servers are stopped, so core 0 is free for the load
		// generator and Redis has its core (with the idle control plane).
		ts.stop()
		claims, perCPU, err := redisCapacity(ctx, out, redisAddr, redisPid, "0", others, o.step)
		if err != nil {
			out("    (Redis capacity not measured: %v)", err)
			return nil
		}
		r.target(info("redis-claims-per-s", claims, " claims/s", "%.0f", "report (one Redis, pipelined)", math.NaN()))
		r.target(info("redis-claims-per-cpu-s", perCPU, " claims/s", "%.0f", "report (per Redis CPU-second)", math.NaN()))
		return nil
	}); err != nil {
		return err
	}
	return nil
}

func errOrOK(err error) string {
	if err != nil {
		return err.Error()
	}
	return "ok"
}

type pinnedServer struct {
	pid           int
	base, metrics string
	stop          func()
}

// pinnedTokenServer starts a token server for the dev TokenServer on cpus and waits for it.
func (s *system) pinnedTokenServer(ctx context.Context, bin, cpus string) (*pinnedServer, error) {
	ctx, cancel := context.WithCancel(ctx)
	cmd, base, metricsURL, err := s.tokenServerProcess(ctx, "taskset", "-c", cpus, bin)
	if err != nil {
		cancel()
		return nil, err
	}
	stop := func() { cancel(); _ = cmd.Wait() }
	if err := waitReady(base, 60*time.Second); err != nil {
		stop()
		return nil, err
	}
	// taskset execs the token server, so the pid is the server's.
	return &pinnedServer{pid: cmd.Process.Pid, base: base, metrics: metricsURL, stop: stop}, nil
}

// withRedis runs a throwaway redis-server on cpus, points the dev TokenServer's replay store at
// it for the length of f, and puts the memory store back after.
func (s *system) withRedis(ctx context.Context, bin, cpus string, f func(addr string, pid int) error) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(addr)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(rctx, "taskset", "-c", cpus, bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", os.TempDir())
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := redisDBSize(addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("redis-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bench-redis", Namespace: devNamespace}, StringData: map[string]string{"url": "redis://" + addr}}
	if err := s.k8s.Create(ctx, secret); err != nil {
		return err
	}
	defer func() { _ = s.k8s.Delete(context.Background(), secret) }()
	if err := s.setReplayStore(ctx, &v1alpha1.ReplayStoreSpec{Type: v1alpha1.ReplayStoreRedis,
		Redis: &v1alpha1.RedisReplayStore{AddressSecretRef: v1alpha1.SecretKeyRef{Name: secret.Name, Key: "url"}}}); err != nil {
		return err
	}
	defer func() { _ = s.setReplayStore(context.Background(), nil) }()
	// taskset execs redis-server, so the pid is Redis's.
	return f(addr, cmd.Process.Pid)
}

func (s *system) setReplayStore(ctx context.Context, rs *v1alpha1.ReplayStoreSpec) error {
	ts := &v1alpha1.TokenServer{}
	if err := s.k8s.Get(ctx, client.ObjectKey{Namespace: devNamespace, Name: "brand"}, ts); err != nil {
		return err
	}
	patch := client.MergeFrom(ts.DeepCopy())
	ts.Spec.ReplayStore = rs
	return s.k8s.Patch(ctx, ts, patch)
}

// redisDBSize asks Redis how many keys it holds (RESP over a plain connection).
func redisDBSize(addr string) (int, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("DBSIZE\r\n")); err != nil {
		return 0, err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return 0, err
	}
	if !strings.HasPrefix(line, ":") {
		return 0, fmt.Errorf("redis: %q", strings.TrimSpace(line))
	}
	return strconv.Atoi(strings.TrimSpace(line[1:]))
}

// cpuByProcess is the CPU time used so far by the dev process (operator and token server), each
// process under it (kube-apiserver, etcd) and this one (the load generator), by name.
func (s *system) cpuByProcess() map[string]float64 {
	out := map[string]float64{"operator+token server": cpuSeconds(s.cmd.Process.Pid), "bench": cpuSeconds(os.Getpid())}
	for _, pid := range descendants(s.cmd.Process.Pid) {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err == nil {
			out[strings.TrimSpace(string(comm))] += cpuSeconds(pid)
		}
	}
	return out
}

// tokenLatencyBuckets reads the token server's /token latency histogram: requests that took
// at most 5 ms, and all of them.
func tokenLatencyBuckets(metricsURL string) (under5ms, total float64) {
	resp, err := http.Get(metricsURL + "/metrics")
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, `lpauth_http_request_duration_seconds_bucket{endpoint="token",le="0.005"} `); ok {
			under5ms, _ = strconv.ParseFloat(v, 64)
		} else if v, ok := strings.CutPrefix(line, `lpauth_http_request_duration_seconds_count{endpoint="token"} `); ok {
			total, _ = strconv.ParseFloat(v, 64)
		}
	}
	return under5ms, total
}
