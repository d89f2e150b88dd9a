package replay

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lpauth/lpauth-operator/tokenserver/replay/replaytest"
)

func stores(t *testing.T) map[string]Store {
	r, err := NewRedis(replaytest.StartRedis(t), "test:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return map[string]Store{"memory": NewMemory(1000, nil), "redis": r}
}

func TestExactlyOneOfManyConcurrentClaimsWins(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			var wins atomic.Int64
			var wg sync.WaitGroup
			for range 1000 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ok, err := s.Claim(context.Background(), "code-1", time.Now().Add(time.Minute))
					if err != nil {
						t.Error(err)
					}
					if ok {
						wins.Add(1)
					}
				}()
			}
			wg.Wait()
			if wins.Load() != 1 {
				t.Errorf("%d claims won, want exactly 1", wins.Load())
			}
			if ok, _ := s.Claim(context.Background(), "code-2", time.Now().Add(time.Minute)); !ok {
				t.Error("a different code was refused")
			}
		})
	}
}

func TestMemoryForgetsExpiredAndIsBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	m := NewMemory(2, func() time.Time { return now })
	ctx := context.Background()
	m.Claim(ctx, "a", now.Add(time.Minute))
	m.Claim(ctx, "b", now.Add(2*time.Minute))
	if _, err := m.Claim(ctx, "c", now.Add(time.Minute)); !errors.Is(err, ErrFull) {
		t.Fatalf("third claim in a full store = %v, want ErrFull", err)
	}
	now = now.Add(90 * time.Second) // "a" expired
	if ok, err := m.Claim(ctx, "c", now.Add(time.Minute)); !ok || err != nil {
		t.Fatalf("claim after expiry = %v, %v; want true", ok, err)
	}
	if ok, _ := m.Claim(ctx, "b", now.Add(time.Minute)); ok {
		t.Error("b was claimed twice")
	}
}

func TestRedisDownFailsClosed(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	r, err := NewRedis("redis://"+addr+"/0", "x:")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ok, err := r.Claim(context.Background(), "code", time.Now().Add(time.Minute))
	if ok || err == nil {
		t.Errorf("Claim with Redis down = %v, %v; want false and an error", ok, err)
	}
}
