package metrics

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lpauth/lpauth-operator/tokenserver/oauth"
	"github.com/lpauth/lpauth-operator/tokenserver/replay"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

// fakeStore answers each claim with the next error of errs; Check with check.
type fakeStore struct {
	errs  []error
	check chan error
}

func (f *fakeStore) Claim(context.Context, string, time.Time, time.Time) (bool, error) {
	err := f.errs[0]
	f.errs = f.errs[1:]
	return err == nil, err
}

func (f *fakeStore) Check(context.Context) error { return <-f.check }

// Each failed claim counts under its kind and takes the store down; the next answer brings it
// back up; an ID issued before the records is an answer, not a failure.
func TestReplayFailuresAreCountedByKind(t *testing.T) {
	m := New()
	fs := &fakeStore{errs: []error{
		&replay.Error{Kind: replay.KindRefused, Err: errors.New("maxmemory-policy")},
		&replay.Error{Kind: replay.KindUnavailable, Err: errors.New("dial")},
		replay.ErrBeforeRecords,
		errors.New("a store's error of no kind"),
	}}
	s := m.ReplayStore(context.Background(), fs, time.Hour)
	wantUp := []float64{0, 0, 1, 0}
	for i, want := range wantUp {
		s.Claim(context.Background(), "id", time.Now(), time.Now())
		if got := testutil.ToFloat64(m.replayUp); got != want {
			t.Errorf("after claim %d: lpauth_replay_store_up = %v, want %v", i, got, want)
		}
	}
	for kind, want := range map[replay.Kind]float64{replay.KindRefused: 1, replay.KindUnavailable: 1, replay.KindUnknown: 1} {
		if got := testutil.ToFloat64(m.replayErrs.WithLabelValues(string(kind))); got != want {
			t.Errorf("lpauth_replay_store_errors_total{kind=%q} = %v, want %v", kind, got, want)
		}
	}
}

// A store that checks itself is checked without any claim: a Redis that refuses shows as down.
func TestReplayStoreIsCheckedWithoutClaims(t *testing.T) {
	m := New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fs := &fakeStore{check: make(chan error)}
	m.ReplayStore(ctx, fs, time.Millisecond)
	fs.check <- &replay.Error{Kind: replay.KindRefused, Err: errors.New("maxmemory-policy")}
	fs.check <- nil // the first result is recorded before the second check is asked
	if got := testutil.ToFloat64(m.replayErrs.WithLabelValues(string(replay.KindRefused))); got != 1 {
		t.Errorf("refused checks counted = %v, want 1", got)
	}
	fs.check <- &replay.Error{Kind: replay.KindUnavailable, Err: errors.New("dial")}
	fs.check <- nil
	fs.check <- &replay.Error{Kind: replay.KindUnavailable, Err: errors.New("dial")}
	fs.check <- &replay.Error{Kind: replay.KindUnavailable, Err: errors.New("dial")} // the one before is recorded
	if got := testutil.ToFloat64(m.replayUp); got != 0 {
		t.Errorf("lpauth_replay_store_up after a failed check = %v, want 0", got)
	}
}

// The memory store checks itself too: once it was full (a claim refused, up 0), expiring codes
// bring lpauth_replay_store_up back to 1 with no claim.
func TestAFullMemoryStoreComesBackUpWithoutAClaim(t *testing.T) {
	m := New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	mem := replay.NewMemory(1, clock)
	s := m.ReplayStore(ctx, mem, time.Millisecond)
	s.Claim(ctx, "a", clock(), clock().Add(time.Minute))
	if _, err := s.Claim(ctx, "b", clock(), clock().Add(time.Minute)); !errors.Is(err, replay.ErrFull) {
		t.Fatalf("second claim = %v, want ErrFull", err)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute) // "a" expired: room again
	mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(m.replayUp) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("lpauth_replay_store_up stayed 0 after the full memory store made room: it is not checked")
		}
		time.Sleep(time.Millisecond)
	}
	if got := testutil.ToFloat64(m.replayErrs.WithLabelValues(string(replay.KindRefused))); got < 1 {
		t.Errorf("refused claims counted = %v, want the full store's refusal", got)
	}
}

// A claim cut short because the client went away (its request's context cancelled) says nothing
// about the store: not counted as a failure of any kind, and the store stays up. A refusal the
// store answered still counts.
func TestAClaimCancelledByTheClientIsNotAStoreFailure(t *testing.T) {
	m := New()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	fs := &fakeStore{errs: []error{
		&replay.Error{Kind: replay.KindUnknown, Err: fmt.Errorf("redis claim: outcome unknown: %w", context.Canceled)},
		context.Canceled,
		&replay.Error{Kind: replay.KindRefused, Err: errors.New("READONLY")},
	}}
	s := m.ReplayStore(context.Background(), fs, time.Hour)
	for i := range 2 {
		if _, err := s.Claim(cancelled, "id", time.Now(), time.Now()); err == nil {
			t.Fatalf("claim %d: no error", i)
		}
		if got := testutil.ToFloat64(m.replayUp); got != 1 {
			t.Errorf("after cancelled claim %d: lpauth_replay_store_up = %v, want 1", i, got)
		}
	}
	for _, kind := range []replay.Kind{replay.KindUnknown, replay.KindUnavailable, replay.KindRefused} {
		if got := testutil.ToFloat64(m.replayErrs.WithLabelValues(string(kind))); got != 0 {
			t.Errorf("lpauth_replay_store_errors_total{kind=%q} = %v after cancelled claims, want 0", kind, got)
		}
	}
	s.Claim(cancelled, "id", time.Now(), time.Now())
	if got := testutil.ToFloat64(m.replayErrs.WithLabelValues(string(replay.KindRefused))); got != 1 {
		t.Errorf("a refusal answered to a cancelled claim: refused = %v, want 1", got)
	}
}

// A failing rebuild leaves the previous snapshot served: stale from the first failure until a
// rebuild succeeds.
func TestAFailingRebuildMarksTheSnapshotStale(t *testing.T) {
	m := New()
	snap := &snapshot.Snapshot{Built: time.Now(), Clients: map[string]*snapshot.Client{}}
	m.OnBuild(snap, nil, nil, time.Millisecond)
	if got := testutil.ToFloat64(m.staleSince); got != 0 {
		t.Fatalf("stale since after a good build = %v, want 0", got)
	}
	m.OnBuild(nil, nil, errors.New("broken"), time.Millisecond)
	first := testutil.ToFloat64(m.staleSince)
	if first == 0 {
		t.Fatal("stale since after a failed build = 0, want its time")
	}
	m.failingSince = m.failingSince.Add(-time.Minute) // a second failure keeps the first one's time
	m.OnBuild(nil, nil, errors.New("broken"), time.Millisecond)
	if got := testutil.ToFloat64(m.staleSince); got != first {
		t.Errorf("stale since after a second failure = %v, want the first's %v", got, first)
	}
	m.OnBuild(snap, nil, nil, time.Millisecond)
	if got := testutil.ToFloat64(m.staleSince); got != 0 {
		t.Errorf("stale since after a good build again = %v, want 0", got)
	}
}

// The error label is bounded: a code no endpoint writes counts as "other".
func TestErrorLabelIsBounded(t *testing.T) {
	m := New()
	m.Observe(nil, oauth.Result{Endpoint: "token", Err: &oauth.Error{Code: "invalid_grant"}})
	m.Observe(nil, oauth.Result{Endpoint: "token", Err: &oauth.Error{Code: "made up by a client"}})
	for code, want := range map[string]float64{"invalid_grant": 1, "other": 1, "made up by a client": 0} {
		if got := testutil.ToFloat64(m.failures.WithLabelValues("token", code)); got != want {
			t.Errorf("failures{error=%q} = %v, want %v", code, got, want)
		}
	}
}

// A rebuild that holds the clients back (the secret set's Secrets disagree) serves keys but not
// client changes: stale until the set agrees again, so a fold cut short is not silent.
func TestHeldBackClientsMarkTheSnapshotStale(t *testing.T) {
	m := New()
	snap := &snapshot.Snapshot{Built: time.Now(), Clients: map[string]*snapshot.Client{}}
	held := []snapshot.Problem{{Object: "Secret brand-token-server-secrets", Err: fmt.Errorf("shards disagree; %w", snapshot.ErrStaleClients)}}
	m.OnBuild(snap, held, nil, time.Millisecond)
	if got := testutil.ToFloat64(m.staleSince); got == 0 {
		t.Fatal("stale since while clients are held back = 0, want its time")
	}
	m.OnBuild(snap, []snapshot.Problem{{Object: "LivePersonAuthClient x", Err: errors.New("bad redirect URI")}}, nil, time.Millisecond)
	if got := testutil.ToFloat64(m.staleSince); got != 0 {
		t.Errorf("stale since once the set agrees (one broken client left out) = %v, want 0", got)
	}
}
