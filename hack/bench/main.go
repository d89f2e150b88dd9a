// Command bench measures the token server against the physical limit of its signing key, and the
// control plane at scale, in one run on this machine; `make bench` runs it. Every figure is also
// given as a ratio to a limit measured in the same run, so results from different machines
// compare. Results are printed and written to bench/results-<time>.txt (never committed).
package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lpauth/lpauth-operator/api/keys"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/tokenserver/signer"
)

type options struct {
	bin         string
	dev         string
	out         string
	step        time.Duration
	concurrency []int
	scale       []int
	rotations   int
	parts       map[string]bool
}

func main() {
	var o options
	var conc, scale string
	flag.StringVar(&o.bin, "bin", "bin/lpauth-operator", "the lpauth-operator binary (built with the same signer tags as this program)")
	flag.StringVar(&o.dev, "dev", "bin/lpauth-dev", "the hack/dev program, which runs the system the benchmarks load (built like -bin)")
	flag.StringVar(&o.out, "out", "bench", "folder for the results file")
	flag.DurationVar(&o.step, "step", 4*time.Second, "duration of each load step")
	flag.StringVar(&conc, "concurrency", "4,16,64", "concurrency levels of the HTTP load")
	flag.StringVar(&scale, "scale", "1000,10000,30000", "numbers of LivePersonAuthClients for the control-plane steps: step N tops the namespace up to N clients in all")
	flag.IntVar(&o.rotations, "rotations", 50, "key rotations timed from annotation to served token")
	parts := flag.String("parts", "raw,http,pinned,control", "which parts to run: raw (RSA limits), http (load on a token server sharing the cores), pinned (load on a token server with a core to itself), control (control plane at scale)")
	oneCore := flag.Bool("one-core-raw", false, "internal: print the signer's rate on the core this process is pinned to")
	sum := flag.String("summarize", "", "instead of measuring, print min–max of every TARGET line over the results files matching this glob (e.g. 'bench/results-*.txt')")
	flag.Parse()
	if *oneCore {
		measureOneCoreRaw()
		return
	}
	if *sum != "" {
		if err := summarize(*sum); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	o.concurrency, o.scale = ints(conc), ints(scale)
	o.parts = map[string]bool{}
	for _, p := range strings.Split(*parts, ",") {
		if p != "raw" && p != "http" && p != "pinned" && p != "control" {
			fmt.Fprintf(os.Stderr, "-parts: unknown part %q (raw, http, pinned, control)\n", p)
			os.Exit(2)
		}
		o.parts[p] = true
	}
	r := &report{start: time.Now()}
	if err := run(o, r); err != nil {
		r.line("FAILED: %v", err)
		// What was measured before the failure is still worth its verdicts.
		r.printTargets()
		r.write(o.out)
		os.Exit(1)
	}
	r.printTargets()
	r.write(o.out)
}

func ints(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

// report collects the lines of the results table, and the targets measured on the way.
type report struct {
	mu      sync.Mutex
	start   time.Time
	lines   []string
	targets []target
}

// target records a figure for the Targets block printed at the end of the run.
func (r *report) target(t target) {
	r.mu.Lock()
	r.targets = append(r.targets, t)
	r.mu.Unlock()
}

// printTargets prints the Targets block: one TARGET line per figure the run measured, in the
// order measured.
func (r *report) printTargets() {
	r.mu.Lock()
	ts := slices.Clone(r.targets)
	r.mu.Unlock()
	if len(ts) == 0 {
		return
	}
	r.line("")
	r.line("Targets (issue 18): TARGET name | measured | target | measured ÷ target | PASS, MISS, or INFO (reported, no limit)")
	for _, t := range ts {
		r.line("%s", t)
	}
}

func (r *report) line(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	fmt.Println(s)
	r.mu.Lock()
	r.lines = append(r.lines, s)
	r.mu.Unlock()
}

func (r *report) write(dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	path := filepath.Join(dir, "results-"+r.start.UTC().Format("20060102-150405")+".txt")
	_ = os.WriteFile(path, []byte(strings.Join(r.lines, "\n")+"\n"), 0o644)
	fmt.Println("\nwritten to", path)
}

func run(o options, r *report) error {
	r.line("lpauth-operator benchmarks — %s", r.start.UTC().Format(time.RFC3339))
	r.line("machine: %s, %d cores (GOMAXPROCS %d), %s, RS256 signer: %s", cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), signer.Implementation)
	r.line("")
	var l limits
	if o.parts["raw"] || o.parts["http"] {
		// The HTTP rows are ratios to the raw limits, so they need them.
		l = rawLimits(r)
		r.line("")
	}
	if !o.parts["http"] && !o.parts["pinned"] && !o.parts["control"] {
		return nil
	}
	sys, err := startSystem(o)
	if err != nil {
		return err
	}
	defer sys.stop()
	if o.parts["http"] {
		if err := httpLoad(o, r, sys, l); err != nil {
			return err
		}
		r.line("")
		if err := wrkLoad(o, r, sys, l); err != nil {
			return err
		}
		r.line("")
	}
	if o.parts["pinned"] {
		if err := pinnedLoad(o, r, sys); err != nil {
			return err
		}
		r.line("")
	}
	if !o.parts["control"] {
		return nil
	}
	return controlPlane(o, r, sys)
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			return strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
		}
	}
	return runtime.GOARCH
}

// ---- raw limits ----

type limits struct{ rs2048, oaep float64 }

// rate calls f from callers goroutines for d and returns calls per second.
func rate(d time.Duration, callers int, f func() error) float64 {
	var n atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for range callers {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if f() != nil {
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}

func rawLimits(r *report) limits {
	r.line("Raw limits (all cores, same run)")
	r.line("  %-34s %12s %12s %12s", "", "RS256-2048", "RS256-3072", "RS256-4096")
	var l limits
	payload := []byte(`{"iss":"https://auth.brand.example","sub":"customer-8271","aud":"lp-client","exp":1800000000,"iat":1799996400}`)
	row := map[string][]string{}
	for _, bits := range []int{2048, 3072, 4096} {
		jwk, _ := keys.Generate(v1alpha1.RS256, bits)
		k := keys.Key{JWK: jwk, State: v1alpha1.KeyActive}
		build, _ := signer.New(k)
		goSigner, _ := signer.NewGo(k)
		// openssl right before the signer it is compared with: this VM's speed drifts by
		// ±20% over minutes. The libcrypto signer runs on its own threads, one per core, and
		// is given four callers per core, as under HTTP load, so that each thread always has
		// the next digest queued.
		o := opensslSpeed(bits, "")
		b := rate(2*time.Second, 4*runtime.GOMAXPROCS(0), func() error { _, err := build.Sign(payload); return err })
		g := rate(2*time.Second, runtime.GOMAXPROCS(0), func() error { _, err := goSigner.Sign(payload); return err })
		if bits == 2048 {
			l.rs2048 = b
		}
		row["server's signer ("+signer.Implementation+"), signs/s"] = append(row["server's signer ("+signer.Implementation+"), signs/s"], fmt.Sprintf("%.0f", b))
		row["crypto/rsa via go-jose, signs/s"] = append(row["crypto/rsa via go-jose, signs/s"], fmt.Sprintf("%.0f", g))
		if o > 0 {
			row["openssl speed, signs/s"] = append(row["openssl speed, signs/s"], fmt.Sprintf("%.0f", o))
			row["server's signer ÷ openssl"] = append(row["server's signer ÷ openssl"], fmt.Sprintf("%.2f", b/o))
		}
	}
	for _, name := range []string{"server's signer (" + signer.Implementation + "), signs/s", "crypto/rsa via go-jose, signs/s", "openssl speed, signs/s", "server's signer ÷ openssl"} {
		if v := row[name]; len(v) == 3 {
			r.line("  %-34s %12s %12s %12s", name, v[0], v[1], v[2])
		}
	}
	lpKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	l.oaep = rate(2*time.Second, runtime.GOMAXPROCS(0), func() error {
		_, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &lpKey.PublicKey, make([]byte, 32), nil)
		return err
	})
	r.line("  %-34s %12.0f", "RSA-OAEP-256 encryptions/s (JWE)", l.oaep)
	return l
}

// opensslSpeed runs `openssl speed` for one RSA size, on all cores or, with cpu set, on that
// one core: signatures/s, zero when openssl is unavailable.
func opensslSpeed(bits int, cpu string) float64 {
	cmd := exec.Command("openssl", "speed", "-seconds", "2", "-multi", strconv.Itoa(runtime.GOMAXPROCS(0)), "rsa"+strconv.Itoa(bits))
	if cpu != "" {
		cmd = exec.Command("taskset", "-c", cpu, "openssl", "speed", "-seconds", "2", "rsa"+strconv.Itoa(bits))
	}
	b, err := cmd.Output()
	if err != nil {
		return 0
	}
	m := regexp.MustCompile(`(?m)^rsa\s+\d+ bits\s+\S+s\s+\S+s\s+([\d.]+)`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}
