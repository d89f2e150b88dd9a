package oauth

import (
	"sync"
	"time"
)

// FailureLimiter slows guessing of a client's secret: after Burst failed authentications of one
// client id, further attempts are refused until failures drain at one per Interval. Successful
// requests are never counted, so LivePerson's normal traffic is never slowed.
type FailureLimiter struct {
	Burst    int
	Interval time.Duration
	Now      func() time.Time
	MaxIDs   int

	mu    sync.Mutex
	state map[string]*bucket
}

type bucket struct {
	failures float64
	at       time.Time
}

// NewFailureLimiter allows burst failures per client id, draining one per interval.
func NewFailureLimiter(burst int, interval time.Duration) *FailureLimiter {
	return &FailureLimiter{Burst: burst, Interval: interval, Now: time.Now, MaxIDs: 100_000, state: map[string]*bucket{}}
}

func (l *FailureLimiter) drained(b *bucket, now time.Time) float64 {
	f := b.failures - now.Sub(b.at).Seconds()/l.Interval.Seconds()
	return max(f, 0)
}

// Allow reports whether an attempt for id may proceed.
func (l *FailureLimiter) Allow(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.state[id]
	return b == nil || l.drained(b, l.Now()) <= float64(l.Burst-1)
}

// Fail records a failed authentication for id.
func (l *FailureLimiter) Fail(id string) {
	now := l.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.state) >= l.MaxIDs {
		for k, b := range l.state { // forget the ones that drained; bounded memory under a flood
			if l.drained(b, now) == 0 {
				delete(l.state, k)
			}
		}
	}
	b := l.state[id]
	if b == nil {
		if len(l.state) >= l.MaxIDs {
			return
		}
		b = &bucket{}
		l.state[id] = b
	}
	b.failures, b.at = l.drained(b, now)+1, now
}
