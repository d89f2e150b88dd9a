package secretset

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lpauth/lpauth-operator/api/clientsecret"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// The set carries each client's spec so the token server builds its clients from the set alone:
// reading 10,000 LivePersonAuthClients (JSON only, each with its status and managed fields) made
// a cold start take seconds and every client event a rebuild, and the token server's Role no
// longer reads clients at all. The operator compiles the spec only for a client whose id it
// accepted, so the set holds exactly what is served.

// compiledClient is a client as the set carries it: what the token server reads of a client.
type compiledClient struct {
	Name string `json:"name"`
	// Created orders clients that claim the same id (v1alpha1.ClaimsBefore).
	Created metav1.Time                       `json:"created"`
	Spec    v1alpha1.LivePersonAuthClientSpec `json:"spec"`
}

// SpecMemo remembers compiled specs by client UID and resourceVersion (the object as the cache
// holds it; name and creation time never change): the operator compiles the whole set on every
// write, and encoding 10,000 specs each time was most of the compile. The zero value is ready.
// Not safe for concurrent use.
type SpecMemo struct {
	specs map[types.UID]memoSpec
	seen  map[types.UID]bool
	// strong remembers clientsecret.Check by the secret's digest (it was a fifth of a compile
	// at 10,000 clients); strongSeen are the digests of this compile.
	strong, strongSeen map[[32]byte]bool
}

// strongSecret is clientsecret.Check(value) == nil, remembered by value's digest sum.
func (m *SpecMemo) strongSecret(sum [32]byte, value []byte) bool {
	if m == nil {
		return clientsecret.Check(value) == nil
	}
	if m.strong == nil {
		m.strong, m.strongSeen = map[[32]byte]bool{}, map[[32]byte]bool{}
	}
	m.strongSeen[sum] = true
	ok, known := m.strong[sum]
	if !known {
		ok = clientsecret.Check(value) == nil
		m.strong[sum] = ok
	}
	return ok
}

type memoSpec struct {
	resourceVersion string
	b               []byte
}

// spec is CompiledSpec(c), from the memo when c has a UID and this resourceVersion is
// remembered. (Not the generation: a spec can change without one, e.g. a default a CRD
// upgrade adds, and a stale entry would leave the client not Ready for good.)
func (m *SpecMemo) spec(c *v1alpha1.LivePersonAuthClient) []byte {
	if m == nil || c.UID == "" {
		return CompiledSpec(c)
	}
	if m.specs == nil {
		m.specs, m.seen = map[types.UID]memoSpec{}, map[types.UID]bool{}
	}
	m.seen[c.UID] = true
	if e, ok := m.specs[c.UID]; ok && e.resourceVersion == c.ResourceVersion && c.ResourceVersion != "" {
		return e.b
	}
	b := CompiledSpec(c)
	m.specs[c.UID] = memoSpec{resourceVersion: c.ResourceVersion, b: b}
	return b
}

// forgetUnseen drops the clients not compiled since the last call (deleted ones).
func (m *SpecMemo) forgetUnseen() {
	if m == nil {
		return
	}
	for uid := range m.specs {
		if !m.seen[uid] {
			delete(m.specs, uid)
		}
	}
	clear(m.seen)
	for sum := range m.strong {
		if !m.strongSeen[sum] {
			delete(m.strong, sum)
		}
	}
	clear(m.strongSeen)
}

// CompiledSpec is client c as the set carries it (deterministic JSON).
func CompiledSpec(c *v1alpha1.LivePersonAuthClient) []byte {
	b, err := json.Marshal(compiledClient{Name: c.Name, Created: c.CreationTimestamp, Spec: c.Spec})
	if err != nil {
		// A spec that came from the API server always encodes; never a partial entry.
		return nil
	}
	return b
}

// Clients are the clients the set serves, as LivePersonAuthClients of namespace with the
// accepted client id (generated ids in the annotation), sorted by name; an entry that does not
// decode, or names another client than its key, is an error and left out.
func Clients(namespace string, data map[string][]byte) ([]v1alpha1.LivePersonAuthClient, []error) {
	var d Decoder
	return d.Clients(namespace, data)
}

func isSpecKey(key string) bool {
	return strings.HasPrefix(key, "client.") && strings.HasSuffix(key, ".spec")
}

// Decoder decodes the set's clients like Clients, remembering each entry it decoded: a token
// server rebuilds on every change of any shard, and decoding 10,000 specs again each time took
// 100 ms and 36 MB of garbage. An entry is decoded again only when its bytes change.
type Decoder struct {
	memo map[string]*decoded
}

type decoded struct {
	// raw is the entry it was decoded from: the caller's bytes, not a copy (a Secret in an
	// informer's cache is never modified, only replaced), compared on the next call.
	raw []byte
	cc  compiledClient
	err error
}

// Clients is Clients, decoding only the entries that changed since the last call. data's values
// must not be modified afterwards.
func (d *Decoder) Clients(namespace string, data map[string][]byte) ([]v1alpha1.LivePersonAuthClient, []error) {
	n := 0
	for key := range data {
		if isSpecKey(key) {
			n++
		}
	}
	next := make(map[string]*decoded, n)
	good := make([]*decoded, 0, n)
	var errs []error
	for key, v := range data {
		if !isSpecKey(key) {
			continue
		}
		e, ok := d.memo[key]
		if !ok || !bytes.Equal(e.raw, v) {
			e = &decoded{raw: v}
			if err := json.Unmarshal(v, &e.cc); err != nil {
				e.err = fmt.Errorf("secret set entry %s: %w", key, err)
			} else if specKey(e.cc.Name) != key {
				e.err = fmt.Errorf("secret set entry %s names client %q", key, e.cc.Name)
			}
		}
		next[key] = e
		if e.err != nil {
			errs = append(errs, e.err)
			continue
		}
		good = append(good, e)
	}
	d.memo = next
	// Sorted as pointers, then built in order: swapping the clients themselves (a kilobyte
	// each) was a third of this function at 10,000 clients.
	slices.SortFunc(good, func(a, b *decoded) int { return strings.Compare(a.cc.Name, b.cc.Name) })
	out := make([]v1alpha1.LivePersonAuthClient, len(good))
	for i, e := range good {
		c := &out[i]
		c.Name, c.Namespace, c.CreationTimestamp, c.Spec = e.cc.Name, namespace, e.cc.Created, e.cc.Spec
		if id := AcceptedClientID(data, e.cc.Name); c.Spec.ClientID == "" && id != "" {
			c.Annotations = map[string]string{v1alpha1.AnnotationGeneratedClientID: id}
		}
	}
	return out, errs
}
