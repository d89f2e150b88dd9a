// Command faults injects faults into a running lpauth-operator system while load runs, and
// checks what must hold afterwards: `make faults`. The kube-apiserver and etcd are embedded
// (envtest); the operator and the token servers are processes of the real binary; Redis is a
// real redis-server. Each trial is bounded in count and time, and the run stops by itself,
// writing its table to faults/results-<time>.txt.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

type options struct {
	bin, out    string
	rotations   int
	restarts    int
	redisRounds int
	redisDown   time.Duration
	apiDown     time.Duration
	clients     int
	soak        time.Duration
	trials      string
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin/lpauth-operator", "the lpauth-operator binary")
	flag.StringVar(&o.out, "out", "faults", "folder for the results file")
	flag.IntVar(&o.rotations, "rotations", 200, "forced rotations, each with the operator killed at a random moment")
	flag.IntVar(&o.restarts, "restarts", 4, "token server SIGTERMs (a rolling restart of 2 replicas)")
	flag.IntVar(&o.redisRounds, "redis-rounds", 3, "times Redis is killed under load")
	flag.DurationVar(&o.redisDown, "redis-down", 3*time.Second, "how long Redis stays down each time")
	flag.DurationVar(&o.apiDown, "api-down", 60*time.Second, "how long the API server is unreachable in the apiserver trial (the expire trial stays away past the watch cache's 75 s)")
	flag.IntVar(&o.clients, "clients", 1000, "clients created while the operator is killed")
	flag.DurationVar(&o.soak, "soak", 10*time.Minute, "how long the soak runs")
	flag.StringVar(&o.trials, "trials", "operator,apiserver,expire,etcd,creations,tamper,sigterm,redis,soak,sentinel,cluster", "trials to run (sentinel and cluster last: each leaves the system on its Redis)")
	flag.Parse()
	ctrllog.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rows, err := run(ctx, o)
	report := table(rows)
	fmt.Print(report)
	if werr := write(o.out, report); werr != nil {
		fmt.Fprintln(os.Stderr, "faults:", werr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		os.Exit(1)
	}
	for _, r := range rows {
		if len(r.violations) > 0 {
			os.Exit(1)
		}
	}
}

func run(ctx context.Context, o options) ([]row, error) {
	dir, err := os.MkdirTemp("", "lpauth-faults-")
	if err != nil {
		return nil, err
	}
	fmt.Println("logs in", dir)
	proxyAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	c, err := startCluster(ctx, o.bin, dir, proxyAddr)
	if c != nil {
		defer c.stop()
	}
	if err != nil {
		return nil, fmt.Errorf("starting the system: %w", err)
	}
	if err := c.markAvailable(ctx); err != nil {
		return nil, err
	}
	px, err := newProxy(proxyAddr)
	if err != nil {
		return nil, err
	}
	defer px.close()
	var servers []*proc
	var addrs []string
	for i := range 2 {
		// As the operator's Deployment runs it (controllers/workload: --drain-delay=5s).
		p, addr, err := c.tokenServer(fmt.Sprintf("tokenserver-%d", i), "--drain-delay=5s")
		if err != nil {
			return nil, err
		}
		defer p.stop()
		servers, addrs = append(servers, p), append(addrs, addr)
	}
	for _, a := range addrs {
		if err := waitServing("http://"+a, 60*time.Second); err != nil {
			return nil, err
		}
	}
	px.set(addrs...)
	base := "http://" + proxyAddr
	if err := waitClientServed(ctx, c, base); err != nil {
		return nil, err
	}
	var rows []row
	for _, t := range strings.Split(o.trials, ",") {
		if ctx.Err() != nil {
			break
		}
		start := time.Now()
		var r row
		switch t {
		case "operator":
			r = operatorKilledDuringRotations(ctx, c, base, o.rotations)
		case "creations":
			r = operatorKilledDuringCreations(ctx, c, o.clients)
		case "tamper":
			r = tampering(ctx, c, base, addrs)
		case "sigterm":
			r = rollingRestarts(ctx, c, px, servers, addrs, o.restarts)
		case "redis":
			r = redisKilled(ctx, c, base, o.redisRounds, o.redisDown)
		case "soak":
			r = soak(ctx, c, base, servers, o.soak)
		case "sentinel":
			r = sentinelFailover(ctx, c, px, servers, addrs)
		case "cluster":
			r = clusterFailover(ctx, c, px, servers, addrs)
		case "apiserver":
			r = apiServerAway(ctx, c, base, addrs, o.apiDown, false)
		case "expire":
			r = apiServerAway(ctx, c, base, addrs, watchHistory+5*time.Second, true)
		case "etcd":
			r = etcdRestarted(ctx, c, base, addrs)
		default:
			return rows, fmt.Errorf("unknown trial %q", t)
		}
		r.notes += fmt.Sprintf("; %s", time.Since(start).Round(time.Second))
		fmt.Printf("%s: %d violations (%s)\n", r.fault, len(r.violations), r.notes)
		rows = append(rows, r)
	}
	return rows, nil
}

// waitClientServed waits until the token servers redeem the client's codes.
func waitClientServed(ctx context.Context, c *cluster, base string) error {
	l := newLP(c, base)
	return poll(ctx, 60*time.Second, "the client to be served", func() (bool, error) {
		code, status, err := l.code(0)
		if err != nil || status != 200 {
			return false, nil
		}
		_, status, err = l.redeem(code)
		return err == nil && status == 200, nil
	})
}

func table(rows []row) string {
	var b strings.Builder
	fmt.Fprintf(&b, "lpauth-operator fault injection — %s\n\n", time.Now().UTC().Format(time.RFC3339))
	b.WriteString("| fault | trials | requests during it | failed requests | invariant violations | time to recover |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- |\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %s (%s) |\n", r.fault, r.trials, r.requests, r.failed, len(r.violations), r.recover.Round(time.Millisecond), r.recoverWhat)
	}
	for _, r := range rows {
		fmt.Fprintf(&b, "\n%s: %s\n", r.fault, r.notes)
		for _, v := range r.violations {
			fmt.Fprintf(&b, "  VIOLATION: %s\n", v)
		}
	}
	return b.String()
}

func write(dir, report string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results-"+time.Now().UTC().Format("20060102-150405")+".txt"), []byte(report), 0o644)
}
