// Package replay records redeemed authorization codes so each redeems once. Two stores: Memory
// for one replica, Redis (SET NX with a TTL) for any number. Both fail closed: when a store cannot
// answer, redemption fails rather than risk accepting a code twice.
package replay

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"
)

// Store records code IDs.
type Store interface {
	// Claim records id, issued at issued, as used until expiry. It returns false when id was
	// already claimed; ErrBeforeRecords when it was issued before the store's records begin (a
	// store that lost what it held cannot tell whether it was claimed); another error when it
	// cannot tell (the caller must then refuse the code, as temporarily unavailable).
	Claim(ctx context.Context, id string, issued, expiry time.Time) (bool, error)
}

// ErrBeforeRecords is Claim's answer for an ID issued before the store's records begin: it may
// have been claimed in what the store lost (a restart, a failover, a flush), so it is refused,
// as a replay would be.
var ErrBeforeRecords = errors.New("issued before the replay store's records begin (it restarted or lost data): sign in again")

// ErrFull is returned by a Memory store that holds its maximum of unexpired IDs.
var ErrFull = &Error{Kind: KindRefused, Err: errors.New("replay store full")}

// Kind is what kind of failure a store's error is, for metrics and alerts: a bounded label.
type Kind string

const (
	// KindUnavailable: the store could not be reached; the claim was not made.
	KindUnavailable Kind = "unavailable"
	// KindRefused: the store answered with a refusal (an error reply, a Redis that may evict
	// claims, a full memory store); the claim was not made.
	KindRefused Kind = "refused"
	// KindUnknown: the claim may or may not have been made (a lost reply that could not be
	// resolved); the code is refused, and a retry of it may find it claimed.
	KindUnknown Kind = "unknown"
)

// Error is a store failure of a known Kind; its message is Err's.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// KindOf is the Kind of a Claim or Check error: "" for nil and for ErrBeforeRecords (an answer,
// not a failure), KindUnknown for an error of no known kind (another store's).
func KindOf(err error) Kind {
	var e *Error
	switch {
	case err == nil, errors.Is(err, ErrBeforeRecords):
		return ""
	case errors.As(err, &e):
		return e.Kind
	}
	return KindUnknown
}

// Memory is a bounded, expiring in-process Store.
//
// It is built for the garbage collector as much as for lookups: at a few thousand redemptions a
// second and a two-minute code lifetime it holds hundreds of thousands of IDs, so entries hold no
// pointers (a 128-bit digest of the ID and a Unix-nanosecond expiry) and the GC never scans
// them, and expired IDs leave from the front of an insertion-ordered queue instead of by walking
// the whole map.
type Memory struct {
	max int
	now func() time.Time
	// since is when the store began: it knows nothing of claims made before (by an earlier
	// process), so IDs issued before it are refused.
	since   time.Time
	mu      sync.Mutex
	expires map[digest]int64
	// order lists claims oldest first, from head on. Codes are redeemed roughly in the order
	// they expire; an entry that expires later than those behind it only delays their removal
	// (they still count as expired when looked up).
	order []claim
	head  int
}

type digest [16]byte

type claim struct {
	id  digest
	exp int64
}

// NewMemory holds at most max unexpired IDs; now is the clock (time.Now when nil).
func NewMemory(max int, now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{max: max, now: now, since: now().Truncate(time.Second), expires: make(map[digest]int64)}
}

// digestOf names an ID by 128 bits of its SHA-256: IDs are attacker-chosen strings, and two of
// them colliding would only refuse the second code, never accept one twice.
func digestOf(id string) (d digest) {
	sum := sha256.Sum256([]byte(id))
	copy(d[:], sum[:])
	return d
}

// Claim implements Store.
func (m *Memory) Claim(_ context.Context, id string, issued, expiry time.Time) (bool, error) {
	if issued.Before(m.since) {
		return false, ErrBeforeRecords // issued before this process: the last one may have claimed it
	}
	key, now, exp := digestOf(id), m.now().UnixNano(), expiry.UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.expires[key]; ok && now < e {
		return false, nil
	}
	m.dropExpired(now)
	if len(m.expires) >= m.max {
		m.sweep(now)
		if len(m.expires) >= m.max {
			return false, ErrFull
		}
	}
	m.expires[key] = exp
	m.order = append(m.order, claim{key, exp})
	return true, nil
}

// Check reports whether a claim could be made now: ErrFull while the store holds its maximum of
// unexpired IDs, else nil. The token server's metrics call it on a timer, as they do Redis's
// Check, so lpauth_replay_store_up comes back to 1 once codes expire and make room, not only at
// the next successful claim.
func (m *Memory) Check(context.Context) error {
	now := m.now().UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dropExpired(now)
	if len(m.expires) >= m.max {
		m.sweep(now)
		if len(m.expires) >= m.max {
			return ErrFull
		}
	}
	return nil
}

// dropExpired removes expired claims from the front of the queue.
func (m *Memory) dropExpired(now int64) {
	for m.head < len(m.order) && m.order[m.head].exp <= now {
		c := m.order[m.head]
		// The map may hold a later claim of the same ID (claimed again after expiring).
		if e, ok := m.expires[c.id]; ok && e <= now {
			delete(m.expires, c.id)
		}
		m.head++
	}
	// Reuse the queue's space once most of it is behind the head.
	if m.head > 1024 && m.head*2 > len(m.order) {
		m.order = append(m.order[:0], m.order[m.head:]...)
		m.head = 0
	}
}

// sweep removes every expired ID, wherever it is in the queue: the store is full, and the front
// of the queue may be held up by a long-lived claim.
func (m *Memory) sweep(now int64) {
	kept := m.order[:0]
	for _, c := range m.order[m.head:] {
		if c.exp > now {
			kept = append(kept, c)
		} else if e, ok := m.expires[c.id]; ok && e <= now {
			delete(m.expires, c.id)
		}
	}
	m.order, m.head = kept, 0
}

// Len is the number of IDs held (for metrics and tests).
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.expires)
}
