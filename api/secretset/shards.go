package secretset

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// A Secret holds at most 1 MiB, and a client costs the set about 400–700 bytes (its compiled
// spec, its id, its secret's digest, the keys naming them; more with encryption keys), so one
// Secret serves at most a few thousand clients. The set is
// therefore split into shards: Secrets named Name(ts) (shard 0, which also carries the login and
// Redis values) and Name(ts)-1 … Name(ts)-15. A client lives in exactly one shard, chosen by a
// hash of its name, so a change to one client rewrites one shard, not the whole set.
//
// Every shard records the number of shards K it was written for (data key "shards"), which also
// marks the layout: a set without it was written by an operator older than the token server
// (one Secret, no client specs), and reads as none until the operator rewrites it. A reader uses
// shards 0…K-1 only when all of them say the same K: while the operator regrows the set (K
// changes), the shards are rewritten one by one and a reader keeps what it had rather than miss
// the clients that moved. Shard 0 also records the base the overlay of recent changes applies
// over (see RecentName).

// MaxShards is the most Secrets a set is split into: 16 × ~900 KiB serves 20,000–35,000 clients.
// The token server's Role names all of them, so the number is fixed.
const MaxShards = 16

const shardsKey = "shards"

// ShardName is the name of shard i of the TokenServer's set; shard 0 is Name(tokenServer).
func ShardName(tokenServer string, i int) string {
	if i == 0 {
		return Name(tokenServer)
	}
	return Name(tokenServer) + "-" + strconv.Itoa(i)
}

// ShardNames are the names of every shard the set may have (Names adds the overlay's).
func ShardNames(tokenServer string) []string {
	out := make([]string, MaxShards)
	for i := range out {
		out[i] = ShardName(tokenServer, i)
	}
	return out
}

// ShardCount is the number of shards a shard's data says the set has; 0 when it does not say
// (the layout of an older operator) or says nonsense.
func ShardCount(data map[string][]byte) int {
	k, err := strconv.Atoi(string(data[shardsKey]))
	if err != nil || k < 1 || k > MaxShards || k&(k-1) != 0 {
		return 0 // unreadable: never agrees with anything
	}
	return k
}

// shardOf is the shard of the client whose data-key part is ckey (see clientKey), in a set of k
// shards. k is a power of two, so growing from k to 2k moves a client from shard j only to
// j or j+k.
func shardOf(ckey string, k int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(ckey))
	return int(h.Sum32() % uint32(k))
}

// shardOfKey is the shard a data key belongs in: its client's, or shard 0 for the set's own.
func shardOfKey(key string, k int) int {
	if c := clientOfKey(key); c != "" {
		return shardOf(c, k)
	}
	return 0
}

// ClientShard is the shard that carries client in a set of k shards.
func ClientShard(client string, k int) int { return shardOf(clientKey(client), k) }

// clientOfKey is the client part of a client's data key ("client.<ckey>.<what>"), or "" for
// the set's own keys (login, redisURL, shards, base).
func clientOfKey(key string) string {
	rest, ok := strings.CutPrefix(key, "client.")
	if !ok {
		return ""
	}
	// <what> has no dots; a client name may.
	if i := strings.LastIndexByte(rest, '.'); i > 0 {
		return rest[:i]
	}
	return ""
}

// Split lays data out over k shards (k a power of two, at most MaxShards): each client's keys in
// its shard, the set's own keys in shard 0, and k recorded in every shard.
func Split(data map[string][]byte, k int) []map[string][]byte {
	shards := make([]map[string][]byte, k)
	for i := range shards {
		shards[i] = map[string][]byte{shardsKey: []byte(strconv.Itoa(k))}
	}
	for key, v := range data {
		i := shardOfKey(key, k)
		shards[i][key] = v
	}
	return shards
}

// ShardSizes is Size of each shard of data laid out over k shards, without building them.
func ShardSizes(data map[string][]byte, k int) []int {
	sizes := make([]int, k)
	for key, v := range data {
		i := shardOfKey(key, k)
		sizes[i] += len(key) + len(v)
	}
	return sizes
}

// Shards picks the number of shards for data, at most most (a power of two): the fewest under
// which every shard stays under fill × limit bytes when the set grows, and the current number
// until half as many would stay under half that (hysteresis: a set near a boundary is not
// rewritten whole, shard after shard, on every change). When no number fits, it returns most and
// the caller leaves clients out.
func Shards(data map[string][]byte, current, most, limit int, fill float64) int {
	fits := func(k int, fill float64) bool {
		for _, s := range ShardSizes(data, k) {
			if float64(s) > fill*float64(limit) {
				return false
			}
		}
		return true
	}
	if current < 1 || current > most || current&(current-1) != 0 {
		current = 1
	}
	if fits(current, fill) {
		for current > 1 && fits(current/2, fill/2) {
			current /= 2
		}
		return current
	}
	for k := current * 2; k < most; k *= 2 {
		if fits(k, fill) {
			return k
		}
	}
	return most
}

// Gather merges the set from its shards, read by name through get (false when missing), into the
// data the accessors of this package read, with the overlay of recent changes laid over it when
// it applies (see RecentName). It fails while the shards disagree on their number or one is
// missing, or while the overlay is newer than shard 0: the operator is rewriting the set, and a
// partial set would stop serving clients that only moved.
func Gather(tokenServer string, get func(name string) (map[string][]byte, bool)) (map[string][]byte, error) {
	// The overlay first: from one ordered source, it is then never newer than shard 0.
	recent, hasRecent := get(RecentName(tokenServer))
	first, ok := get(Name(tokenServer))
	if !ok {
		return nil, fmt.Errorf("the secret set Secret %s is missing (the operator writes it)", Name(tokenServer))
	}
	k := ShardCount(first)
	if k == 0 {
		return nil, fmt.Errorf("the secret set Secret %s is not in this release's layout (no readable %q): the operator has not rewritten it yet, or is older than this token server", Name(tokenServer), shardsKey)
	}
	apply := false
	if hasRecent {
		var err error
		if apply, err = recentApplies(recent, Base(first)); err != nil {
			return nil, err
		}
	}
	merged := make(map[string][]byte, len(first)*k)
	for i := range k {
		d := first
		if i > 0 {
			if d, ok = get(ShardName(tokenServer, i)); !ok {
				return nil, fmt.Errorf("secret set shard %s is missing (the operator is writing the set in %d shards)", ShardName(tokenServer, i), k)
			}
		}
		if ShardCount(d) != k {
			return nil, fmt.Errorf("secret set shard %s was written for %d shards, not %d: the operator is rewriting the set", ShardName(tokenServer, i), ShardCount(d), k)
		}
		if err := sameBase(tokenServer, i, d, Base(first)); err != nil {
			return nil, err
		}
		for key, v := range d {
			// Only the keys that belong in this shard: whatever else a shard holds is never
			// read, so each client has exactly one source.
			if shardOfKey(key, k) == i {
				merged[key] = v
			}
		}
	}
	if apply {
		applyRecent(merged, recent)
	}
	return merged, nil
}

// ClientData is client's data, for Served: its entry in the overlay when it has one, otherwise
// the shard that carries it. The operator checks one client without merging the whole set. It
// fails like Gather when that shard and shard 0 disagree on the number of shards, or the
// overlay is newer than shard 0.
func ClientData(tokenServer, client string, get func(name string) (map[string][]byte, bool)) (map[string][]byte, error) {
	// The overlay first (see Gather), and for this client it comes first: it is newer than the
	// shards it applies over.
	recent, hasRecent := get(RecentName(tokenServer))
	first, ok := get(Name(tokenServer))
	if !ok {
		return nil, fmt.Errorf("the secret set Secret %s is missing", Name(tokenServer))
	}
	k := ShardCount(first)
	if k == 0 {
		return nil, fmt.Errorf("the secret set Secret %s is not in this release's layout yet", Name(tokenServer))
	}
	if hasRecent {
		apply, err := recentApplies(recent, Base(first))
		if err != nil {
			return nil, err
		}
		if d, ok := recentClient(recent, clientKey(client)); apply && ok {
			return d, nil
		}
	}
	// Every shard, as Gather checks them: a client is served only once token servers take the
	// whole set (cache reads, no copies).
	mine := ClientShard(client, k)
	out := first
	for i := 1; i < k; i++ {
		d, ok := get(ShardName(tokenServer, i))
		if !ok || ShardCount(d) != k {
			return nil, fmt.Errorf("secret set shard %s is not written yet for %d shards", ShardName(tokenServer, i), k)
		}
		if err := sameBase(tokenServer, i, d, Base(first)); err != nil {
			return nil, err
		}
		if i == mine {
			out = d
		}
	}
	return out, nil
}
