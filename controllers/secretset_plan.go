package controllers

import (
	"time"

	"github.com/lpauth/lpauth-operator/api/secretset"
)

// A change to one client reaches the token servers through the set's overlay (package
// secretset, RecentName): one small write at once, instead of a shard of ~490 KB paced by its
// bytes. The shards are rewritten (a fold) only when the overlay has grown or aged, or for what
// it cannot carry; planSetWrite decides which, from the cached Secrets alone, so an operator
// that restarts carries on where the last one stopped.

// setPolicy bounds the overlay.
type setPolicy struct {
	// foldBytes: an overlay this large is folded into the shards (each write of it carries
	// all of it to every token server).
	foldBytes int
	// capBytes: while a fold waits for its pace, the overlay grows up to this, so clients
	// created by the thousand are served before the shards are rewritten.
	capBytes int
	// foldAge: an entry this old is folded, so the overlay does not stay large between bursts;
	// but only once no client has entered it for foldQuiet. A fold holds the set's writes for
	// as long as its shards take (seconds at 10,000 clients): in a lull it delays nobody,
	// while a client arriving just behind it would wait that long to be served.
	foldAge, foldQuiet time.Duration
}

const (
	// recentFoldBytes: ~500 clients' entries; each write of the overlay carries all of it to
	// every token server, paced at setWriteBudget (a quarter of a second at this size).
	recentFoldBytes = 192 << 10
	recentFoldAge   = time.Minute
	recentFoldQuiet = 5 * time.Second
)

func newSetPolicy(foldBytes int) setPolicy {
	if foldBytes <= 0 {
		foldBytes = recentFoldBytes
	}
	return setPolicy{foldBytes: foldBytes, capBytes: min(4*foldBytes, maxSecretSetBytes), foldAge: recentFoldAge, foldQuiet: recentFoldQuiet}
}

// setState is what the cache holds of a set.
type setState struct {
	// shards are the data of shards 0…K-1 when all of them are the TokenServer's and agree on
	// K; nil otherwise (missing, partial, foreign, older layout): only a fold writes them.
	shards []map[string][]byte
	// base is shard 0's base ("" for shards an older operator wrote: no overlay applies).
	base string
	// recent is the overlay, when it is the TokenServer's.
	recent secretset.Recent
	// noRecent: another Secret holds the overlay's name, so every change is a fold.
	noRecent bool
	// seen are the bases every set Secret of the TokenServer records (the overlay's too).
	seen []string
}

// setPlan is what one reconcile writes.
type setPlan struct {
	// recent is the overlay to write first (nil: none, or no change).
	recent *secretset.Recent
	// fold says why the shards are rewritten now ("": not now).
	fold string
	// after is when to look again without an event (0: on the next event): a fold waiting
	// for its pace, or the overlay's oldest entry coming of age.
	after time.Duration
}

// planSetWrite decides what brings the set in state st to data in k shards, at now, when a fold
// may start only after foldWait.
func planSetWrite(st setState, data map[string][]byte, k int, now time.Time, foldWait time.Duration, pol setPolicy) setPlan {
	var p setPlan
	why := ""
	switch {
	case st.shards == nil:
		why = "its shards are missing, partial, not the TokenServer's or in an older layout"
	case st.base == "":
		why = "its shards record no base (written by an older operator)"
	default:
		clients, own := secretset.Changed(st.shards, data)
		if st.noRecent {
			if len(clients) > 0 {
				why = "clients changed and the overlay's name is taken"
			}
		} else {
			next, left := secretset.NextRecent(st.recent, st.base, clients, data, now, pol.capBytes)
			p.recent = &next
			switch oldest := next.Oldest(); {
			case next.Size() > maxSecretSetBytes:
				// Its entries only grew (all of them are kept): the overlay as it is still
				// applies, and the fold carries the rest.
				p.recent, why = nil, "the overlay would not fit in a Secret"
			case left > 0:
				why = "the overlay is full"
			case next.Size() > pol.foldBytes:
				why = "the overlay passed its size"
			case len(next.Entries) > 0:
				due := oldest.Add(pol.foldAge)
				if quiet := next.Newest().Add(pol.foldQuiet); quiet.After(due) {
					due = quiet
				}
				if !now.Before(due) {
					why = "the overlay's oldest entry is due"
				} else {
					p.after = due.Sub(now)
				}
			}
		}
		switch {
		case len(st.shards) != k:
			why = "the number of shards changes"
		case own:
			why = "the login or Redis value changed"
		}
	}
	if why == "" {
		return p
	}
	if foldWait <= 0 {
		p.fold, p.after = why, 0
		return p
	}
	// The fold waits for its pace; the overlay meanwhile carries what it can.
	p.after = foldWait
	return p
}
