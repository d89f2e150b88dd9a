package secretset

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The shards are large (about 490 KB each at 10,000 clients) and their writes are paced by their
// bytes, so a client changed one by one would wait seconds for its shard. The set therefore has
// one more, small Secret, the overlay (RecentName): the clients changed since the shards were
// last rewritten, each with its complete data keys (the same keys as in its shard), and a
// tombstone for each client removed since. The operator writes it at once on every change and
// rewrites the shards — a fold — only now and then: when the overlay grows large or old, or when
// what it cannot carry changes (the set's own keys, the number of shards).
//
// Shard 0 records the base, a new id on each fold; the overlay records the base it applies
// over. A reader applies the overlay only when both say the same base: an entry replaces all of
// its client's keys, a tombstone deletes them. An overlay for another base is ignored.
//
// Why a reader never sees a client go back to an older state, at any moment of a fold: the
// operator writes the shards highest first with the folded content (the old shards with the
// overlay laid over them, and changes since), shard 0 last with the new base, and only then a
// new, empty overlay for the new base.
//   - Until shard 0 flips, the reader's base is the old one and the old overlay still applies:
//     a client in the overlay reads the overlay's entry, whatever its shard says; any other
//     client reads its shard, old or already folded (one Secret, so all of its keys at once).
//   - Once shard 0 flips, the old overlay no longer applies and every shard is folded, so each
//     client reads what the overlay said of it, or newer.
//
// Every shard records the base it was folded for, each base a generation one past the last,
// and a reader refuses shards older than shard 0 (sameBase): a token server watches each
// Secret by name, one informer each, so it may see the new shard 0 before another new shard,
// whose old state predates the old overlay it no longer applies. Until it has seen every shard
// of the fold it keeps the set it had. For the same reason it may see the new overlay (or one
// several folds ahead) before the new shard 0: an overlay of a later generation than shard 0
// is refused too. The new overlay says which base it replaces: a reader whose shard 0
// is that older base knows a fold it has not seen yet is under way and keeps what it had,
// rather than read the old shards without the overlay they had. A reader of one ordered cache
// (the operator's) reads the overlay first, then shard 0: the overlay it read is never newer
// than the shard 0 it reads after it.
//
// The data keys of the overlay:
//
//	base                   the base it applies over
//	replaces               the base of the shards folded into that one ("" when unknown)
//	client.<name>.changed  the client is replaced by the overlay's keys for it; the value is
//	                       when it first changed after the base (RFC 3339): the operator folds
//	                       an overlay whose oldest entry is a minute old
//	client.<name>.removed  the client is removed (a tombstone); the value as above
//	client.<name>.<what>   the client's keys, as in its shard

// RecentName is the name of the set's overlay of recent client changes.
func RecentName(tokenServer string) string { return Name(tokenServer) + "-recent" }

// Names are the names of every Secret of the set: its shards and its overlay, for RBAC and
// watches.
func Names(tokenServer string) []string {
	return append(ShardNames(tokenServer), RecentName(tokenServer))
}

const (
	baseKey     = "base"
	replacesKey = "replaces"
	changedKind = "changed"
	removedKind = "removed"
)

// clientKinds are the <what> of a client's data keys (see ClientKeys).
var clientKinds = []string{"id", "secret", "jwe", "spec"}

func kindKey(ckey, kind string) string { return "client." + ckey + "." + kind }

// Base is the base id shard 0's data records, "" when none (a set an older operator wrote:
// no overlay applies to it).
func Base(shard0 map[string][]byte) string { return string(shard0[baseKey]) }

// SplitAt is Split, with every shard recording base: the operator's fold. Readers take shards
// only when all of them record shard 0's base (see Gather).
func SplitAt(data map[string][]byte, k int, base string) []map[string][]byte {
	shards := Split(data, k)
	for _, d := range shards {
		d[baseKey] = []byte(base)
	}
	return shards
}

// NewBase names the content of a fold: "g<generation>-<random>", the generation one past every
// base in seen (the bases of every set Secret the operator reads, their overlay's and the one
// it replaces). Readers compare generations, so whatever order they see a fold's Secrets in,
// they can tell which of two is newer.
func NewBase(random string, seen ...string) string {
	var g uint64
	for _, b := range seen {
		g = max(g, Generation(b))
	}
	return fmt.Sprintf("g%d-%s", g+1, random)
}

// Generation is the generation base records, 0 for none ("" or a base in another form).
func Generation(base string) uint64 {
	num, _, ok := strings.Cut(strings.TrimPrefix(base, "g"), "-")
	if !ok || !strings.HasPrefix(base, "g") {
		return 0
	}
	g, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0
	}
	return g
}

// sameBase fails when shard i (data d) is older than shard 0, or of another fold of the same
// generation: a fold is under way that this reader has seen only part of. Without the check a
// reader that saw the new shard 0 before the new shard i (each Secret has its own watch) would
// read shard i's clients as they were before the old overlay, now ignored: a deleted client
// back, an old secret digest. A shard newer than shard 0 is read: the fold writes shard 0 last,
// and its content is the old shards with the old overlay (still applied) laid over them, and
// changes since; so a reader that has seen only some shards of a fold, or a fold cut short,
// reads every client as before it or newer.
func sameBase(tokenServer string, i int, d map[string][]byte, base string) error {
	got := Base(d)
	if got == base || Generation(got) > Generation(base) {
		return nil
	}
	return fmt.Errorf("secret set shard %s was written for base %q, shard 0 for %q: the operator is rewriting the set", ShardName(tokenServer, i), got, base)
}

// recentApplies reports whether the overlay's data applies over shards whose shard 0 records
// base; it fails when the overlay was written after a fold of those shards that the reader
// has not seen yet (see above).
func recentApplies(recent map[string][]byte, base string) (bool, error) {
	rb := string(recent[baseKey])
	switch {
	case base == "" || rb == "":
		return false, nil
	case rb == base:
		return true, nil
	case Generation(rb) > Generation(base) || string(recent[replacesKey]) == base:
		return false, fmt.Errorf("the secret set's overlay was written for shards newer than shard 0 (base %s, not %s): the operator is rewriting the set", rb, base)
	}
	return false, nil
}

// applyRecent lays the overlay's data over data gathered from the shards, in place.
func applyRecent(data, recent map[string][]byte) {
	replaced := map[string]bool{}
	for key := range recent {
		if ckey, kind := splitKey(key); kind == changedKind || kind == removedKind {
			for _, what := range clientKinds {
				delete(data, kindKey(ckey, what))
			}
			replaced[ckey] = replaced[ckey] || kind == changedKind
		}
	}
	for ckey, changed := range replaced {
		if _, removed := recent[kindKey(ckey, removedKind)]; !changed || removed {
			continue
		}
		for _, what := range clientKinds {
			if v, ok := recent[kindKey(ckey, what)]; ok {
				data[kindKey(ckey, what)] = v
			}
		}
	}
}

// recentClient is client's entry in the overlay's data: its keys (none for a tombstone), and
// whether it has one.
func recentClient(recent map[string][]byte, ckey string) (map[string][]byte, bool) {
	_, changed := recent[kindKey(ckey, changedKind)]
	_, removed := recent[kindKey(ckey, removedKind)]
	if !changed && !removed {
		return nil, false
	}
	out := map[string][]byte{}
	if removed {
		return out, true
	}
	for _, what := range clientKinds {
		if v, ok := recent[kindKey(ckey, what)]; ok {
			out[kindKey(ckey, what)] = v
		}
	}
	return out, true
}

// splitKey is the client part and the <what> of a client's data key, or "", "".
func splitKey(key string) (ckey, kind string) {
	if ckey = clientOfKey(key); ckey == "" {
		return "", ""
	}
	return ckey, key[len("client.")+len(ckey)+1:]
}

// Recent is the overlay decoded, for the operator that writes it.
type Recent struct {
	// Base is the base of the shards it applies over.
	Base string
	// Replaces is the base of the shards folded into Base's.
	Replaces string
	// Entries are the clients changed since Base, by the client part of their data keys.
	Entries map[string]RecentEntry
}

// RecentEntry is one client's entry in the overlay.
type RecentEntry struct {
	// Since is when the client first changed after the base.
	Since time.Time
	// Data are all of the client's data keys; none: the client is removed (a tombstone).
	Data map[string][]byte
}

// ParseRecent decodes the overlay's data. An entry whose time does not parse is dated the zero
// time: the oldest, folded first.
func ParseRecent(data map[string][]byte) Recent {
	r := Recent{Base: string(data[baseKey]), Replaces: string(data[replacesKey]), Entries: map[string]RecentEntry{}}
	for key, v := range data {
		ckey, kind := splitKey(key)
		if kind != changedKind && kind != removedKind {
			continue
		}
		e, ok := r.Entries[ckey]
		since, _ := time.Parse(time.RFC3339, string(v))
		if !ok || since.Before(e.Since) {
			e.Since = since
		}
		e.Data, _ = recentClient(data, ckey)
		r.Entries[ckey] = e
	}
	return r
}

// Data encodes r as the overlay Secret's data.
func (r Recent) Data() map[string][]byte {
	out := map[string][]byte{baseKey: []byte(r.Base)}
	if r.Replaces != "" {
		out[replacesKey] = []byte(r.Replaces)
	}
	for ckey, e := range r.Entries {
		kind := changedKind
		if len(e.Data) == 0 {
			kind = removedKind
		}
		out[kindKey(ckey, kind)] = []byte(e.Since.UTC().Format(time.RFC3339))
		for key, v := range e.Data {
			out[key] = v
		}
	}
	return out
}

// Size is Size of r's data.
func (r Recent) Size() int {
	n := len(baseKey) + len(r.Base)
	if r.Replaces != "" {
		n += len(replacesKey) + len(r.Replaces)
	}
	for ckey, e := range r.Entries {
		n += entrySize(ckey, e)
	}
	return n
}

func entrySize(ckey string, e RecentEntry) int {
	// "removed" is as long as "changed".
	n := len(kindKey(ckey, changedKind)) + len(e.Since.UTC().Format(time.RFC3339))
	for key, v := range e.Data {
		n += len(key) + len(v)
	}
	return n
}

// Oldest is the Since of r's oldest entry, the zero time when it has none.
func (r Recent) Oldest() time.Time {
	var t time.Time
	first := true
	for _, e := range r.Entries {
		if first || e.Since.Before(t) {
			t, first = e.Since, false
		}
	}
	return t
}

// Newest is the Since of r's newest entry, the zero time when it has none: when the last
// client entered the overlay.
func (r Recent) Newest() time.Time {
	var t time.Time
	for _, e := range r.Entries {
		if e.Since.After(t) {
			t = e.Since
		}
	}
	return t
}

// Changed compares the shards (as Split laid them out for len(shards)) with data: the clients
// whose keys differ, by the client part of their data keys and sorted, and whether the set's
// own keys (login, redisURL) differ.
func Changed(shards []map[string][]byte, data map[string][]byte) (clients []string, own bool) {
	k := len(shards)
	seen := map[string]bool{}
	mark := func(key string) {
		if c := clientOfKey(key); c == "" {
			own = true
		} else if !seen[c] {
			seen[c] = true
			clients = append(clients, c)
		}
	}
	for key, v := range data {
		if cur, ok := shards[shardOfKey(key, k)][key]; !ok || !bytes.Equal(cur, v) {
			mark(key)
		}
	}
	for i, shard := range shards {
		for key := range shard {
			if key == shardsKey || key == baseKey || shardOfKey(key, k) != i {
				continue // the layout's own, or never read
			}
			if _, ok := data[key]; !ok {
				mark(key)
			}
		}
	}
	slices.Sort(clients)
	return clients, own
}

// NextRecent is the overlay over shards at base that brings them to data, given the clients
// whose keys differ there (Changed): for each, an entry with all of its keys in data, or a
// tombstone when data has none. prev's entries (when prev is for base) keep their time and are
// always kept, so no reader sees them go back to the shards' older state; the other changed
// clients are added, dated now, while the overlay stays within limit bytes. It returns how many
// changed clients did not fit: they wait for the next fold.
func NextRecent(prev Recent, base string, changed []string, data map[string][]byte, now time.Time, limit int) (Recent, int) {
	next := Recent{Base: base, Entries: make(map[string]RecentEntry, len(changed))}
	if prev.Base == base {
		next.Replaces = prev.Replaces
	} else {
		// The overlay of the shards before these (a fold whose own emptying of the overlay
		// was not written): this one still says which base it replaces, so a reader that has
		// not seen the fold's shard 0 yet keeps what it had rather than drop that overlay.
		next.Replaces = prev.Base
		prev = Recent{}
	}
	now = now.UTC().Truncate(time.Second) // as it is written: the overlay reads back the same
	size := next.Size()
	var fresh []string
	for _, ckey := range changed {
		if old, ok := prev.Entries[ckey]; ok {
			e := RecentEntry{Since: old.Since, Data: clientData(data, ckey)}
			next.Entries[ckey] = e
			size += entrySize(ckey, e)
		} else {
			fresh = append(fresh, ckey)
		}
	}
	// Removals first when the overlay is full: a deleted client must not
	// wait behind a burst of new clients for the paced fold.
	var removed, added []string
	for _, ckey := range fresh {
		if len(clientData(data, ckey)) == 0 {
			removed = append(removed, ckey)
		} else {
			added = append(added, ckey)
		}
	}
	fresh = append(removed, added...)
	left := 0
	for _, ckey := range fresh {
		e := RecentEntry{Since: now, Data: clientData(data, ckey)}
		if n := entrySize(ckey, e); size+n <= limit {
			next.Entries[ckey] = e
			size += n
		} else {
			left++
		}
	}
	return next, left
}

// clientData are the keys of the client whose data keys have ckey, in data.
func clientData(data map[string][]byte, ckey string) map[string][]byte {
	out := map[string][]byte{}
	for _, what := range clientKinds {
		if v, ok := data[kindKey(ckey, what)]; ok {
			out[kindKey(ckey, what)] = v
		}
	}
	return out
}
