package main

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lpauth/lpauth-operator/tokenserver/replay/replaytest"
)

// clusterFailover: the replay store moves to a Redis Cluster (three primaries, each with a
// replica; through the same Secret: a redis+cluster:// URL), and the primary that holds the
// claims' hash slot is killed under load. The cluster promotes its replica; redemptions may
// answer 503 meanwhile, none may succeed twice, and service is whole again after the failover.
func clusterFailover(ctx context.Context, c *cluster, px *proxy, servers []*proc, addrs []string) row {
	r := row{fault: "Redis Cluster primary killed under load (3 primaries, 1 replica each)", recoverWhat: "kill → first successful redemption"}
	fail := func(err error) row { r.violations = append(r.violations, err.Error()); return r }
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return fail(err)
	}
	nodes := make([]*proc, 6)
	addrOf := map[*proc]string{}
	for i := range nodes {
		a, err := freeAddr()
		if err != nil {
			return fail(err)
		}
		_, port, _ := net.SplitHostPort(a)
		nodes[i] = &proc{name: "redis-cluster-" + port, log: filepath.Join(c.dir, "redis-cluster-"+port+".log"),
			args: []string{bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", c.dir,
				"--dbfilename", "cluster-" + port + ".rdb", "--cluster-enabled", "yes", "--cluster-config-file", "nodes-" + port + ".conf",
				"--cluster-node-timeout", "1000"}}
		addrOf[nodes[i]] = a
		if err := nodes[i].start(); err != nil {
			return fail(err)
		}
		defer nodes[i].kill()
		if err := waitTCP(a, 5*time.Second); err != nil {
			return fail(err)
		}
	}
	primaries := []string{addrOf[nodes[0]], addrOf[nodes[1]], addrOf[nodes[2]]}
	replicas := [][]string{{addrOf[nodes[3]]}, {addrOf[nodes[4]]}, {addrOf[nodes[5]]}}
	formCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := replaytest.FormCluster(formCtx, primaries, replicas); err != nil {
		return fail(err)
	}
	url := fmt.Sprintf("redis+cluster://%s?addr=%s&addr=%s", primaries[0], primaries[1], primaries[2])
	if err := c.useRedisURL(ctx, url); err != nil {
		return fail(err)
	}
	for i, s := range servers {
		if err := s.restart(); err != nil || waitServing("http://"+addrs[i], 30*time.Second) != nil {
			return fail(fmt.Errorf("token server %d did not come back on Redis Cluster", i))
		}
	}
	px.set(addrs...)
	// The primary of the token servers' hash slot (their keys are "{lpauth:<ns>:<name>:}…").
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: primaries})
	defer cc.Close()
	owner, err := cc.MasterForKey(ctx, fmt.Sprintf("{lpauth:%s:%s:}records-since", c.namespace, c.tokenName))
	if err != nil {
		return fail(err)
	}
	var victim, replica *proc
	for i, p := range nodes[:3] {
		if addrOf[p] == owner.Options().Addr {
			victim, replica = p, nodes[3+i]
		}
	}
	if victim == nil {
		return fail(fmt.Errorf("no primary at %s holds the claims", owner.Options().Addr))
	}
	// The replica must have everything before the kill, or the trial measures a replica still
	// syncing (which the cluster would not promote).
	if err := waitReplicaSynced(ctx, owner); err != nil {
		return fail(err)
	}
	r = primaryKilledUnderLoad(c, px, r, victim, replica)
	r.notes += fmt.Sprintf("; killed %s, the primary of the claims' slot", owner.Options().Addr)
	return r
}

// waitReplicaSynced waits until primary has a replica with all it wrote.
func waitReplicaSynced(ctx context.Context, primary *redis.Client) error {
	return poll(ctx, 30*time.Second, "the replica to catch up", func() (bool, error) {
		info, err := primary.Info(ctx, "replication").Result()
		if err != nil {
			return false, nil
		}
		return strings.Contains(info, "connected_slaves:1") && strings.Contains(info, "state=online"), nil
	})
}
