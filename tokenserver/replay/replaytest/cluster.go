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
	ctx := context.Background()
	first := c.Primaries[0].client()
	defer first.Close()
	// Slots split evenly among the primaries; every node meets the first.
	for i, p := range c.Primaries {
		cl := p.client()
		lo, hi := i*16384/primaries, (i+1)*16384/primaries-1
		if err := cl.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			t.Fatalf("assigning slots %d-%d: %v", lo, hi, err)
		}
		cl.Close()
	}
	for _, s := range c.all()[1:] {
		if err := first.ClusterMeet(ctx, "127.0.0.1", fmt.Sprint(s.port)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for i, p := range c.Primaries {
		id := p.nodeID(t)
		for _, r := range c.Replicas[i] {
			cl := r.client()
			waitFor(t, fmt.Sprintf("replica %d to know its primary", r.port), func() bool {
				nodes, _ := cl.ClusterNodes(ctx).Result()
				return strings.Contains(nodes, id)
			})
			if err := cl.Do(ctx, "CLUSTER", "REPLICATE", id).Err(); err != nil {
				t.Fatal(err)
			}
			cl.Close()
		}
	}
	for _, s := range c.all() {
		cl := s.client()
		waitFor(t, fmt.Sprintf("node %d to see the cluster whole", s.port), func() bool {
			info, _ := cl.ClusterInfo(ctx).Result()
			nodes, _ := cl.ClusterNodes(ctx).Result()
			return strings.Contains(info, "cluster_state:ok") && strings.Count(strings.TrimSpace(nodes), "\n")+1 == len(c.all())
		})
		cl.Close()
	}
	return c
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
// waits until it is primary.
func (c *Cluster) Failover(t testing.TB, i int) {
	t.Helper()
	r := c.Replicas[i][0]
	cl, pl := r.client(), c.Primaries[i].client()
	defer cl.Close()
	defer pl.Close()
	ctx := context.Background()
	waitFor(t, "the replica to catch up", func() bool {
		p, _ := pl.Info(ctx, "replication").Result()
		rep, _ := cl.Info(ctx, "replication").Result()
		return strings.Contains(rep, "master_link_status:up") && field(p, "master_repl_offset") != "" &&
			field(p, "master_repl_offset") == field(rep, "slave_repl_offset")
	})
	if err := cl.Do(ctx, "CLUSTER", "FAILOVER", "TAKEOVER").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replica to take over", func() bool {
		info, _ := cl.Info(ctx, "replication").Result()
		return strings.Contains(info, "role:master")
	})
	c.Primaries[i], c.Replicas[i][0] = r, c.Primaries[i]
}

func (c *Cluster) all() []*Server {
	out := append([]*Server{}, c.Primaries...)
	for _, rs := range c.Replicas {
		out = append(out, rs...)
	}
	return out
}

func (s *Server) client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: net.JoinHostPort("127.0.0.1", fmt.Sprint(s.port))})
}

func (s *Server) nodeID(t testing.TB) string {
	t.Helper()
	cl := s.client()
	defer cl.Close()
	id, err := cl.Do(context.Background(), "CLUSTER", "MYID").Text()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func waitFor(t testing.TB, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: timed out", what)
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
