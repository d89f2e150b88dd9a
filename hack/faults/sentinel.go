package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/redis/go-redis/v9"

	"github.com/lpauth/lpauth-operator/api/secretset"
)

// sentinelFailover: the replay store moves to a Redis primary with a replica and three
// sentinels (through the same Secret: a Sentinel URL), and the primary is killed under load.
// The sentinels promote the replica; redemptions may answer 503 meanwhile, none may succeed
// twice, and service is whole again once the failover is done.
func sentinelFailover(ctx context.Context, c *cluster, px *proxy, servers []*proc, addrs []string) row {
	r := row{fault: "Redis primary killed under load (Sentinel: 1 replica, 3 sentinels)", recoverWhat: "kill → first successful redemption"}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		r.violations = append(r.violations, err.Error())
		return r
	}
	ports := make([]string, 5)
	for i := range ports {
		a, err := freeAddr()
		if err != nil {
			r.violations = append(r.violations, err.Error())
			return r
		}
		_, ports[i], _ = net.SplitHostPort(a)
	}
	primary := &proc{name: "redis-primary", log: filepath.Join(c.dir, "redis-primary.log"),
		args: []string{bin, "--port", ports[0], "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", c.dir}}
	replica := &proc{name: "redis-replica", log: filepath.Join(c.dir, "redis-replica.log"),
		args: []string{bin, "--port", ports[1], "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--replicaof", "127.0.0.1", ports[0], "--dir", c.dir, "--dbfilename", "replica.rdb"}}
	procs := []*proc{primary, replica}
	for i, port := range ports[2:] {
		conf := filepath.Join(c.dir, fmt.Sprintf("sentinel-%d.conf", i))
		text := fmt.Sprintf("port %s\nbind 127.0.0.1\ndir "+c.dir+"\nsentinel monitor lpauth 127.0.0.1 %s 2\nsentinel down-after-milliseconds lpauth 1000\nsentinel failover-timeout lpauth 5000\n", port, ports[0])
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			r.violations = append(r.violations, err.Error())
			return r
		}
		procs = append(procs, &proc{name: fmt.Sprintf("sentinel-%d", i), log: filepath.Join(c.dir, fmt.Sprintf("sentinel-%d.log", i)),
			args: []string{bin, conf, "--sentinel"}})
	}
	for _, p := range procs {
		if err := p.start(); err != nil {
			r.violations = append(r.violations, err.Error())
			return r
		}
		defer p.kill()
	}
	for _, port := range ports {
		if err := waitTCP("127.0.0.1:"+port, 5*time.Second); err != nil {
			r.violations = append(r.violations, err.Error())
			return r
		}
	}
	// Every sentinel must know the replica as a good one before the primary dies: one that has
	// not seen it yet aborts the failover ("no good slave") and tries again only after twice
	// failover-timeout, which would measure Sentinel's discovery, not the token servers.
	for _, port := range ports[2:] {
		sc := redis.NewSentinelClient(&redis.Options{Addr: "127.0.0.1:" + port})
		err := poll(ctx, 30*time.Second, "sentinel "+port+" to know the replica", func() (bool, error) {
			replicas, err := sc.Replicas(ctx, "lpauth").Result()
			if err != nil || len(replicas) == 0 {
				return false, nil
			}
			return replicas[0]["flags"] == "slave" && replicas[0]["master-link-status"] == "ok", nil
		})
		sc.Close()
		if err != nil {
			r.violations = append(r.violations, err.Error())
			return r
		}
	}
	time.Sleep(time.Second)
	// The same Secret, a Sentinel URL; the token servers read it when they start.
	sentinelURL := fmt.Sprintf("redis://127.0.0.1:%s/0?master_name=lpauth&addr=127.0.0.1:%s&addr=127.0.0.1:%s", ports[2], ports[3], ports[4])
	if err := c.useRedisURL(ctx, sentinelURL); err != nil {
		r.violations = append(r.violations, err.Error())
		return r
	}
	for i, s := range servers {
		if err := s.restart(); err != nil || waitServing("http://"+addrs[i], 30*time.Second) != nil {
			r.violations = append(r.violations, fmt.Sprintf("token server %d did not come back on Sentinel", i))
			return r
		}
	}
	px.set(addrs...)
	return primaryKilledUnderLoad(c, px, r, primary, replica)
}

// primaryKilledUnderLoad runs redemptions through px, kills the Redis primary that holds the
// claims, and fills r: a redemption must succeed again (within 30 s), requests may only fail
// with 503 meanwhile, and no code may redeem twice, including the codes redeemed in the seconds
// before the kill, presented again after the failover. So that the failover really loses claims
// (on loopback a replica is never behind), the replica is stopped (SIGSTOP) for the last 700 ms
// before the kill and goes on after it: the claims made then exist only on the dead primary.
func primaryKilledUnderLoad(c *cluster, px *proxy, r row, primary, replica *proc) row {
	l := newLP(c, "http://"+px.ln.Addr().String())
	var o outcome
	var doubles atomic.Int64
	stop := make(chan struct{})
	wg := l.redemptions(8, stop, &o, &doubles)
	// Codes redeemed in the moments before the kill, to present again after the failover: the
	// claims the replica had not received yet are the ones a failover can lose.
	var recent []string // read once recentDone is closed
	var recentN atomic.Int64
	recentDone := make(chan struct{})
	go func() {
		defer close(recentDone)
		for i := int64(0); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if code, status, err := l.code(1_000_000 + i); err == nil && status == http.StatusOK {
				if _, status, err := l.redeem(code); err == nil && status == http.StatusOK {
					recent = append(recent, code)
					recentN.Add(1)
				}
			}
		}
	}()
	time.Sleep(2 * time.Second)
	replica.send(syscall.SIGSTOP)
	paused := recentN.Load()
	time.Sleep(700 * time.Millisecond)
	killed := time.Now()
	primary.kill()
	lost := recentN.Load() - paused
	replica.send(syscall.SIGCONT)
	var recovered time.Duration
	for time.Since(killed) < 30*time.Second {
		code, status, err := l.code(1)
		if err == nil && status == http.StatusOK {
			if _, status, err := l.redeem(code); err == nil && status == http.StatusOK {
				recovered = time.Since(killed)
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	<-recentDone
	replayed := 0
	for _, code := range recent {
		if _, status, err := l.redeem(code); err == nil && status == http.StatusOK {
			replayed++
		}
	}
	if replayed > 0 {
		doubles.Add(int64(replayed))
	}
	r.trials, r.recover = 1, recovered
	if recovered == 0 {
		r.violations = append(r.violations, "no successful redemption within 30 s of the primary's death")
	}
	r.requests, r.failed = o.requests.Load(), o.failed.Load()
	if r.failed > 0 {
		r.violations = append(r.violations, "requests failed other than with 503: "+o.String())
	}
	if d := doubles.Load(); d > 0 {
		r.violations = append(r.violations, fmt.Sprintf("%d codes redeemed twice", d))
	}
	if o.signInAgain.Load() == 0 {
		r.violations = append(r.violations, "no code issued before the failover was refused after it: the records' start did not move")
	}
	r.notes = fmt.Sprintf("%s; %d codes redeemed around the kill presented again after the failover (%d of them while the replica was stopped, so claimed only on the dead primary), %d redeemed twice", o.String(), len(recent), lost, replayed)
	if lost == 0 {
		r.violations = append(r.violations, "no code was redeemed while the replica was stopped: the failover lost no claim, and the trial proved nothing about lost claims")
	}
	return r
}

// useRedisURL points the TokenServer's Redis Secret at url and waits until the secret set the
// token servers read carries it.
func (c *cluster) useRedisURL(ctx context.Context, url string) error {
	s := &corev1.Secret{}
	if err := c.k8s.Get(ctx, client.ObjectKey{Namespace: c.namespace, Name: "redis"}, s); err != nil {
		return err
	}
	s.Data = map[string][]byte{"url": []byte(url)}
	if err := c.k8s.Update(ctx, s); err != nil {
		return err
	}
	return poll(ctx, 30*time.Second, "the secret set to carry the new Redis URL", func() (bool, error) {
		set := &corev1.Secret{}
		if err := c.k8s.Get(ctx, client.ObjectKey{Namespace: c.namespace, Name: secretset.Name(c.tokenName)}, set); err != nil {
			return false, nil
		}
		return secretset.RedisURL(set.Data) == url, nil
	})
}
