package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// soak: /token at half of the peak rate measured just before, for d; the token servers' memory
// and goroutines must stay flat after a warm-up (growth under 5%), with no failed request.
func soak(ctx context.Context, c *cluster, base string, servers []*proc, d time.Duration) row {
	r := row{fault: fmt.Sprintf("soak: %s at half of peak /token rate", d), recoverWhat: "—"}
	l := newLP(c, base)
	// The peak, with as many workers as the load uses elsewhere.
	var peak outcome
	stop := make(chan struct{})
	wg := l.redemptions(16, stop, &peak, nil)
	time.Sleep(5 * time.Second)
	close(stop)
	wg.Wait()
	rate := float64(peak.requests.Load()) / 2 / 5 / 2 // redemptions/s (each is two requests), halved
	if rate < 1 {
		r.violations = append(r.violations, "no peak rate measured: "+peak.String())
		return r
	}
	var o outcome
	var doubles atomic.Int64
	stop = make(chan struct{})
	var workers sync.WaitGroup
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	jobs := make(chan int64, 64)
	for range 16 {
		workers.Go(func() {
			for i := range jobs {
				code, status, err := l.code(i)
				o.requests.Add(1)
				if !l.count(&o, status, err, "code") {
					continue
				}
				start := time.Now()
				_, status, err = l.redeem(code)
				o.requests.Add(1)
				o.took(time.Since(start))
				if l.count(&o, status, err, "token") {
					if _, status, err := l.redeem(code); err == nil && status == http.StatusOK {
						doubles.Add(1)
					}
				}
			}
		})
	}
	var i int64
	go func() {
		for {
			select {
			case <-stop:
				close(jobs)
				return
			case <-tick.C:
				i++
				select {
				case jobs <- i:
				default: // the workers are behind: a dropped tick, not a queue that grows
				}
			}
		}
	}()
	warm := min(time.Minute, d/4)
	time.Sleep(warm)
	first := samples(servers)
	time.Sleep(d - warm)
	last := samples(servers)
	close(stop)
	workers.Wait()
	r.trials = 1
	r.requests, r.failed = o.requests.Load(), o.failed.Load()+o.unavailable.Load()+o.signInAgain.Load()
	if r.failed > 0 {
		r.violations = append(r.violations, "failed requests: "+o.String())
	}
	if n := doubles.Load(); n > 0 {
		r.violations = append(r.violations, fmt.Sprintf("%d codes redeemed twice", n))
	}
	var notes []string
	for k, v := range first {
		if v <= 0 || last[k] <= 0 {
			r.violations = append(r.violations, "could not read "+k)
			continue
		}
		growth := (last[k] - v) / v
		notes = append(notes, fmt.Sprintf("%s %.0f → %.0f", k, v, last[k]))
		if growth > 0.05 {
			r.violations = append(r.violations, fmt.Sprintf("%s grew %.0f%% after the warm-up", k, 100*growth))
		}
	}
	r.notes = fmt.Sprintf("%.0f redemptions/s; %s; %s", rate, strings.Join(notes, ", "), o.String())
	return r
}

// samples reads each token server's resident memory (KiB) and goroutines.
func samples(servers []*proc) map[string]float64 {
	out := map[string]float64{}
	for _, s := range servers {
		out[s.name+" RSS KiB"] = rssKiB(s.pid())
		out[s.name+" goroutines"] = metric("http://"+s.metrics+"/metrics", "go_goroutines")
	}
	return out
}

func rssKiB(pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return n
		}
	}
	return 0
}

// metric reads one unlabelled value from a Prometheus text page.
func metric(url, name string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return n
		}
	}
	return 0
}
