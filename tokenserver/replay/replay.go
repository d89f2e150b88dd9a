// Package replay records redeemed authorization codes so each redeems once. Two stores: Memory
// for one replica, Redis (SET NX with a TTL) for any number. Both fail closed: when a store cannot
// answer, redemption fails rather than risk accepting a code twice.
package replay

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Store records code IDs.
type Store interface {
	// Claim records id as used until expiry. It returns false when id was already claimed, and an
	// error when it cannot tell (the caller must then refuse the code).
	Claim(ctx context.Context, id string, expiry time.Time) (bool, error)
}

// ErrFull is returned by a Memory store that holds its maximum of unexpired IDs.
var ErrFull = errors.New("replay store full")

// Memory is a bounded, expiring in-process Store.
type Memory struct {
	max     int
	now     func() time.Time
	mu      sync.Mutex
	expires map[string]time.Time
	inserts int
}

// NewMemory holds at most max unexpired IDs; now is the clock (time.Now when nil).
func NewMemory(max int, now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{max: max, now: now, expires: make(map[string]time.Time)}
}

// Claim implements Store.
func (m *Memory) Claim(_ context.Context, id string, expiry time.Time) (bool, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if exp, ok := m.expires[id]; ok && now.Before(exp) {
		return false, nil
	}
	m.inserts++
	// Sweep now and then, and whenever full, so memory follows the live codes only.
	if len(m.expires) >= m.max || m.inserts%1024 == 0 {
		for k, exp := range m.expires {
			if !now.Before(exp) {
				delete(m.expires, k)
			}
		}
	}
	if len(m.expires) >= m.max {
		return false, ErrFull
	}
	m.expires[id] = expiry
	return true, nil
}

// Len is the number of IDs held (for metrics and tests).
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.expires)
}
