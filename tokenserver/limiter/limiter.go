// Package limiter slows down repeated failures (wrong client secrets at /token, wrong passwords
// at the login form) per key, in bounded memory, without ever refusing a request that would
// succeed: callers check the credential first and count only failures.
package limiter

import (
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"sync"
	"time"
)

// DefaultMaxEntries bounds a FailureLimiter's table: about 70 bytes an entry (a 16-byte key in a
// map, and in a heap with its time), so under 5 MiB whatever is thrown at it (measured by
// popout's TestLoginLimiterMemoryIsBounded).
const DefaultMaxEntries = 1 << 16

// Rule is one limit: Burst failures, then one more each Interval as failures drain.
type Rule struct {
	Burst    int
	Interval time.Duration
}

// Key names one counter. It is a digest of the counter's parts, so every entry has the same
// small size whatever an attacker puts in a user name, and a client id, user name or address
// is never kept in memory as it was typed.
type Key [16]byte

// KeyOf derives a Key from parts: a 16-byte SHA-256 prefix of the parts, each length-prefixed
// so that ("ab", "c") and ("a", "bc") differ. The first part should name the kind of counter,
// so counters of different rules never share an entry.
func KeyOf(parts ...string) Key {
	var stack [384]byte
	b := stack[:0]
	for _, p := range parts {
		b = binary.BigEndian.AppendUint64(b, uint64(len(p)))
		b = append(b, p...)
	}
	sum := sha256.Sum256(b)
	return Key(sum[:len(Key{})])
}

// Network is the part of a client address a limit counts: the address itself for IPv4, its
// /64 for IPv6. One subscriber is handed a whole /64, so counting single IPv6 addresses would
// give an attacker 2^64 fresh counters. Anything unparsable is counted as it is.
func Network(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// FailureLimiter counts failed attempts per Key with a leaky bucket per counter: a counter may
// fail Rule.Burst times, then once per Rule.Interval as failures drain. It only counts: callers
// decide what a failure is and what to do when a counter is over its limit. Successful
// attempts are never counted.
//
// Memory is bounded by MaxEntries. A counter whose failures have all drained holds nothing and is
// dropped first. When the table is full of live counters, the one closest to draining is
// forgotten: it is the one that loses the least. The trade-off: the table never refuses or stops
// counting, and pushing a victim's counter out is not cheap, because an attacker must first hold
// MaxEntries counters that are all fuller than the victim's at the same time (tens of thousands
// of counters, each with that many failures, each failure passing the limits that hold the
// attacker, and on the login form a bcrypt each). Fresh counters an attacker creates by the
// thousand are the ones forgotten.
type FailureLimiter struct {
	// Rule is the limit of the token endpoint; the login form derives its rules from it.
	Rule Rule
	Now  func() time.Time
	// MaxEntries bounds the number of counters.
	MaxEntries int

	mu    sync.Mutex
	index map[Key]int32 // position in heap
	heap  []counter     // min-heap by drained: the top is the counter closest to draining
}

// counter is one Key's bucket as the time at which all its failures will have drained (the
// "theoretical arrival time" of GCRA): one number instead of a level and a timestamp.
type counter struct {
	key     Key
	drained int64 // Unix nanoseconds
}

// NewFailureLimiter allows burst failures per counter, draining one per interval.
func NewFailureLimiter(burst int, interval time.Duration) *FailureLimiter {
	return &FailureLimiter{Rule: Rule{Burst: burst, Interval: interval}, Now: time.Now, MaxEntries: DefaultMaxEntries}
}

// Allow reports whether k may fail once more under r, and if not, how long until it may.
func (l *FailureLimiter) Allow(k Key, r Rule) (bool, time.Duration) {
	now := l.Now().UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	i, ok := l.index[k]
	if !ok {
		return true, 0
	}
	over := l.heap[i].drained - now - int64(r.Burst-1)*int64(r.Interval)
	if over <= 0 {
		return true, 0
	}
	return false, time.Duration(over)
}

// Failing reports whether k has failures that have not drained yet.
func (l *FailureLimiter) Failing(k Key) bool {
	now := l.Now().UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	i, ok := l.index[k]
	return ok && l.heap[i].drained > now
}

// Fail records one failure of k under r.
func (l *FailureLimiter) Fail(k Key, r Rule) {
	now := l.Now().UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.index == nil {
		l.index = map[Key]int32{}
	}
	for len(l.heap) > 0 && l.heap[0].drained <= now { // drained counters hold nothing
		l.remove(0)
	}
	if i, ok := l.index[k]; ok {
		l.heap[i].drained = max(l.heap[i].drained, now) + int64(r.Interval)
		l.down(int(i)) // only ever later: it can only sink
		return
	}
	if limit := max(l.MaxEntries, 1); len(l.heap) >= limit {
		l.remove(0)
	}
	l.heap = append(l.heap, counter{key: k, drained: now + int64(r.Interval)})
	i := len(l.heap) - 1
	l.index[k] = int32(i)
	l.up(i)
}

// Len is the number of counters held, drained or not.
func (l *FailureLimiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.heap)
}

// remove deletes the counter at heap position i.
func (l *FailureLimiter) remove(i int) {
	last := len(l.heap) - 1
	delete(l.index, l.heap[i].key)
	if i != last {
		l.heap[i] = l.heap[last]
		l.index[l.heap[i].key] = int32(i)
	}
	l.heap = l.heap[:last]
	if i != last {
		l.down(i)
		l.up(i)
	}
}

func (l *FailureLimiter) swap(i, j int) {
	l.heap[i], l.heap[j] = l.heap[j], l.heap[i]
	l.index[l.heap[i].key] = int32(i)
	l.index[l.heap[j].key] = int32(j)
}

func (l *FailureLimiter) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if l.heap[parent].drained <= l.heap[i].drained {
			return
		}
		l.swap(i, parent)
		i = parent
	}
}

func (l *FailureLimiter) down(i int) {
	n := len(l.heap)
	for {
		least, left, right := i, 2*i+1, 2*i+2
		if left < n && l.heap[left].drained < l.heap[least].drained {
			least = left
		}
		if right < n && l.heap[right].drained < l.heap[least].drained {
			least = right
		}
		if least == i {
			return
		}
		l.swap(i, least)
		i = least
	}
}
