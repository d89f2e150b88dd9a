package replaytest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of real redis-servers on loopback: primaries that share the hash
// slots, each with its replicas.
type Cluster struct {
	// URL names the cluster by its first primary (go-redis discovers the rest).
	URL       string
	Primaries []*Server
	// Replicas[i] replicate Primaries[i].
	Replicas [][]*Server
}

// RedisCluster starts a cluster of primaries, each with replicas, and waits until it is whole.
// Like Redis, it skips the test without redis-server (and fails in CI).
func RedisCluster(t testing.TB, primaries, replicas int) *Cluster {
	t.Helper()
	c := &Cluster{Replicas: make([][]*Server, primaries)}
	extra := []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000"}
	for i := range primaries {
		c.Primaries = append(c.Primaries, redisWith(t, extra...))
		for range replicas {
			c.Replicas[i] = append(c.Replicas[i], redisWith(t, extra...))
		}
	}
	c.URL = fmt.Sprintf("redis+cluster://127.0.0.1:%d", c.Primaries[0].port)
	addr := func(s *Server) string { return fmt.Sprintf("127.0.0.1:%d", s.port) }
	var ps []string
	rs := make([][]string, primaries)
	for i, p := range c.Primaries {
		ps = append(ps, addr(p))
		for _, r := range c.Replicas[i] {
			rs[i] = append(rs[i], addr(r))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := FormCluster(ctx, ps, rs); err != nil {
		t.Fatal(err)
	}
	return c
}

// FormCluster makes a cluster of redis-servers started with --cluster-enabled: the slots split
// evenly among primaries, replicas[i] replicating primaries[i]. It returns once every node sees
// the cluster whole (or ctx ends).
func FormCluster(ctx context.Context, primaries []string, replicas [][]string) error {
	all := append([]string{}, primaries...)
	for _, rs := range replicas {
		all = append(all, rs...)
	}
	clients := map[string]*redis.Client{}
	for _, a := range all {
		clients[a] = redis.NewClient(&redis.Options{Addr: a})
		defer clients[a].Close()
	}
	n := len(primaries)
	for i, p := range primaries {
		lo, hi := i*16384/n, (i+1)*16384/n-1
		if err := clients[p].Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			return fmt.Errorf("assigning slots %d-%d to %s: %w", lo, hi, p, err)
		}
	}
	for _, a := range all[1:] {
		host, port, _ := net.SplitHostPort(a)
		if err := clients[all[0]].ClusterMeet(ctx, host, port).Err(); err != nil {
			return fmt.Errorf("%s meeting %s: %w", all[0], a, err)
		}
	}
	for i, p := range primaries {
		id, err := clients[p].Do(ctx, "CLUSTER", "MYID").Text()
		if err != nil {
			return err
		}
		for _, r := range replicas[i] {
			if err := until(ctx, func() bool {
				nodes, _ := clients[r].ClusterNodes(ctx).Result()
				return strings.Contains(nodes, id)
			}); err != nil {
				return fmt.Errorf("replica %s to know its primary: %w", r, err)
			}
			if err := clients[r].Do(ctx, "CLUSTER", "REPLICATE", id).Err(); err != nil {
				return fmt.Errorf("%s replicating %s: %w", r, p, err)
			}
		}
	}
	for _, a := range all {
		if err := until(ctx, func() bool {
			info, _ := clients[a].ClusterInfo(ctx).Result()
			nodes, _ := clients[a].ClusterNodes(ctx).Result()
			return strings.Contains(info, "cluster_state:ok") && strings.Count(strings.TrimSpace(nodes), "\n")+1 == len(all)
		}); err != nil {
			return fmt.Errorf("node %s to see the cluster whole: %w", a, err)
		}
	}
	return nil
}

func until(ctx context.Context, ok func() bool) error {
	for !ok() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// PrimaryFor is the primary that holds key now, and the index of its shard.
func (c *Cluster) PrimaryFor(t testing.TB, key string) (*Server, int) {
	t.Helper()
	cl := c.Primaries[0].client()
	defer cl.Close()
	slot, err := cl.ClusterKeySlot(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	n := len(c.Primaries)
	for i := range n {
		if int(slot) <= (i+1)*16384/n-1 {
			return c.Primaries[i], i
		}
	}
	panic("unreachable: every slot is assigned")
}

// Failover promotes the first replica of shard i with CLUSTER FAILOVER TAKEOVER (no agreement
// with the primary, as after it died) once the replica has everything the primary wrote, and
// waits until it is primary and the old primary follows it.
func (c *Cluster) Failover(t testing.TB, i int) {
	t.Helper()
	r := c.Replicas[i][0]
	c.waitSynced(t, i)
	cl := r.client()
	defer cl.Close()
	ctx := context.Background()
	if err := cl.Do(ctx, "CLUSTER", "FAILOVER", "TAKEOVER").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replica to take over", func() bool {
		info, _ := cl.Info(ctx, "replication").Result()
		return strings.Contains(info, "role:master")
	})
	// And the old primary to know it: until then it still takes writes (a split brain no
	// store can guard against), and a test would race its gossip.
	old := c.Primaries[i].client()
	defer old.Close()
	// Gossip is slower than a role change: on a loaded 2-core CI machine, with other clusters and
	// API servers beside it, it once took over 20 s. On a timeout, what the old primary believes.
	waitForWithin(t, 60*time.Second, "the old primary to follow", func() bool {
		info, _ := old.Info(ctx, "replication").Result()
		return strings.Contains(info, "role:slave")
	}, func() string {
		info, _ := old.Info(ctx, "replication").Result()
		nodes, _ := old.ClusterNodes(ctx).Result()
		return info + "\n" + nodes
	})
	c.Primaries[i], c.Replicas[i][0] = r, c.Primaries[i]
}

// KillPrimary kills the primary of shard i once its first replica has everything it wrote,
// and leaves the cluster to promote the replica (after --cluster-node-timeout, 1 s here).
func (c *Cluster) KillPrimary(t testing.TB, i int) {
	t.Helper()
	c.waitSynced(t, i)
	c.Primaries[i].Kill()
}

// waitSynced waits until the first replica of shard i has all its primary wrote.
func (c *Cluster) waitSynced(t testing.TB, i int) {
	t.Helper()
	cl, pl := c.Replicas[i][0].client(), c.Primaries[i].client()
	defer cl.Close()
	defer pl.Close()
	ctx := context.Background()
	waitFor(t, "the replica to catch up", func() bool {
		p, _ := pl.Info(ctx, "replication").Result()
		rep, _ := cl.Info(ctx, "replication").Result()
		return strings.Contains(rep, "master_link_status:up") && field(p, "master_repl_offset") != "" &&
			field(p, "master_repl_offset") == field(rep, "slave_repl_offset")
	})
}

// Client is a plain client of this one server (the caller closes it).
func (s *Server) Client() *redis.Client { return s.client() }

func (s *Server) client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: net.JoinHostPort("127.0.0.1", fmt.Sprint(s.port))})
}

func waitFor(t testing.TB, what string, ok func() bool) {
	t.Helper()
	waitForWithin(t, 20*time.Second, what, ok, func() string { return "" })
}

// waitForWithin polls ok until within passes, then fails the test with what state says.
func waitForWithin(t testing.TB, within time.Duration, what string, ok func() bool, state func() string) {
	t.Helper()
	for deadline := time.Now().Add(within); !ok(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: timed out after %v\n%s", what, within, state())
		}
	}
}

func field(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}
