// Package secretset is the one Secret per TokenServer through which the token server gets every
// secret value the brand keeps in Secrets of its own: the operator compiles it (Compile), the
// token server reads it (the accessors). The token server's Role can then name the exact
// Secrets it reads (its key Secret, its credentials, this one) instead of reading every Secret
// of its namespace, and client secrets reach it only as SHA-256 digests.
//
// Data keys:
//
//	client.<name>.id      the client id the operator accepted for LivePersonAuthClient <name>
//	client.<name>.secret  SHA-256 digest (32 bytes) of the client secret of <name>
//	client.<name>.jwe     LivePerson's encryption public keys of <name> (kid → base64 SPKI, JSON)
//	client.<name>.spec    what the token server serves <name> as: its name, creation time and
//	                      spec (JSON), so the token server never lists the clients themselves
//	login                 the Secret value spec.login reads (htpasswd lines, upstream client secret)
//	redisURL              the Redis replay store's URL
//
// The set is split into shards (Split) and has an overlay of the clients changed since the
// shards were last written (RecentName).
package secretset

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/lpauth/lpauth-operator/api/jwe"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// Name is the name of the TokenServer's secret set.
func Name(tokenServer string) string { return tokenServer + "-token-server-secrets" }

// SecretType is the type of a secret set Secret.
const SecretType = "auth.lpauth.dev/token-server-secrets"

const (
	loginKey = "login"
	redisKey = "redisURL"
)

func idKey(client string) string     { return "client." + clientKey(client) + ".id" }
func secretKey(client string) string { return "client." + clientKey(client) + ".secret" }
func jweKey(client string) string    { return "client." + clientKey(client) + ".jwe" }
func specKey(client string) string   { return "client." + clientKey(client) + ".spec" }

// clientKey names a client in a data key. Secret data keys are at most 253 characters and
// object names may be as long, so a long name is replaced by its digest, after an '_' no object
// name can contain: no client can be named so as to take another's entries.
func clientKey(name string) string {
	if len(name) <= 200 {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return "_" + hex.EncodeToString(sum[:16])
}

// Getter returns the Secret of this name in the TokenServer's namespace, or nil.
type Getter func(name string) *corev1.Secret

// Served reports whether the set serves client c as it is now: under client id id, its current
// spec, the digest of the secret it has now (flow Code), the encryption keys it has now (when
// set). The operator reports a client Ready only then, so Ready means LivePerson's next request
// is answered with it.
func Served(data map[string][]byte, c *v1alpha1.LivePersonAuthClient, id string, secret []byte, encryptionKeys map[string][]byte) bool {
	if accepted := AcceptedClientID(data, c.Name); accepted == "" || accepted != id {
		return false
	}
	if !bytes.Equal(data[specKey(c.Name)], CompiledSpec(c)) {
		return false // served, but not as the client is now (its spec changed since)
	}
	if secret != nil {
		d, err := ClientSecretDigest(data, c.Name)
		if err != nil || d != sha256.Sum256(secret) {
			return false
		}
	}
	if c.Spec.Encryption != nil {
		want, err := publicEncryptionKeys(encryptionKeys)
		if err != nil || !bytes.Equal(data[jweKey(c.Name)], want) {
			return false
		}
	}
	return true
}

// Size is what data counts against a Secret's 1 MiB: its values and, for the stored object, its
// keys.
func Size(data map[string][]byte) int {
	n := 0
	for k, v := range data {
		n += len(k) + len(v)
	}
	return n
}

// ClientKeys lists the data keys that belong to client (id, secret, jwe, spec), for leaving a
// client out of a set that would not fit.
func ClientKeys(client string) []string {
	out := make([]string, 0, len(clientKinds))
	for _, what := range clientKinds {
		out = append(out, kindKey(clientKey(client), what))
	}
	return out
}

// Compile builds the secret set's data for ts and its clients from the Secrets get finds. A
// value that is missing is left out; the client's (or TokenServer's) own status says why, and
// the token server leaves out what it cannot serve. Compile never fails: one broken client
// must not stop the others from being served.
func Compile(ts *v1alpha1.TokenServer, clients []*v1alpha1.LivePersonAuthClient, get Getter) map[string][]byte {
	return CompileWith(nil, ts, clients, get)
}

// CompileWith is Compile, taking the clients' compiled specs from memo where it can.
func CompileWith(memo *SpecMemo, ts *v1alpha1.TokenServer, clients []*v1alpha1.LivePersonAuthClient, get Getter) map[string][]byte {
	defer memo.forgetUnseen()
	data := make(map[string][]byte, 3*len(clients)+2)
	// Each client id belongs to its oldest claimant (v1alpha1.ClaimsBefore, as the operator's
	// ClientIDConflict says): a younger client with the same id is never compiled, so it cannot
	// be served under that id even when the owner itself is left out (a full shard).
	// One pass picks each id's claimant (no sort of every client on every compile: that was a
	// sixth of a compile at 10,000 clients).
	ids := make([]string, len(clients))
	// own is each client's generated Secret, read once (two reads per client were a third of a
	// compile at 10,000 clients).
	own := make([]*corev1.Secret, len(clients))
	owner := make(map[string]*v1alpha1.LivePersonAuthClient, len(clients))
	for i, c := range clients {
		if c.Spec.TokenServerRef.Name != ts.Name || !c.DeletionTimestamp.IsZero() {
			continue
		}
		own[i] = get(v1alpha1.ClientSecretName(c.Name))
		id := acceptedID(c, own[i])
		if id == "" {
			continue // not served until the operator has accepted its id
		}
		ids[i] = id
		if o, ok := owner[id]; !ok || v1alpha1.ClaimsBefore(c, o) {
			owner[id] = c
		}
	}
	for i, c := range clients {
		id := ids[i]
		if id == "" || owner[id] != c {
			continue // no accepted id, or an older client holds it
		}
		data[idKey(c.Name)] = []byte(id)
		data[specKey(c.Name)] = memo.spec(c)
		if c.Spec.Flow == v1alpha1.FlowCode || c.Spec.Flow == "" {
			name, key := v1alpha1.ClientSecretName(c.Name), v1alpha1.ClientSecretKey
			if ref := c.Spec.ClientSecretRef; ref != nil {
				name, key = ref.Name, ref.Key
			}
			// A secret too weak to guess-proof is left out: /token compares before it counts
			// failures, so it would have no defence. The client's status says InvalidSecret.
			s := own[i]
			if name != v1alpha1.ClientSecretName(c.Name) {
				s = get(name)
			}
			if ref := c.Spec.ClientSecretRef; ref == nil && s != nil && !controlledBy(s, c) {
				// Not the Secret the operator generated for this client (someone created one of
				// that name first): never served, whatever it holds.
				s = nil
			}
			if s != nil {
				if sum := sha256.Sum256(s.Data[key]); memo.strongSecret(sum, s.Data[key]) {
					data[secretKey(c.Name)] = sum[:]
				}
			}
		}
		if enc := c.Spec.Encryption; enc != nil {
			if s := get(enc.KeysSecretRef.Name); s != nil {
				if b, err := publicEncryptionKeys(s.Data); err == nil {
					data[jweKey(c.Name)] = b
				}
			}
		}
	}
	if ref := LoginSecretRef(ts.Spec.Login); ref != nil {
		if s := get(ref.Name); s != nil && len(s.Data[ref.Key]) > 0 {
			data[loginKey] = s.Data[ref.Key]
		}
	}
	if rs := ts.Spec.ReplayStore; rs != nil && rs.Type == v1alpha1.ReplayStoreRedis && rs.Redis != nil {
		ref := rs.Redis.AddressSecretRef
		if s := get(ref.Name); s != nil && len(s.Data[ref.Key]) > 0 {
			data[redisKey] = s.Data[ref.Key]
		}
	}
	return data
}

// acceptedID is the client id the operator stands behind: spec.clientID, or a generated id from
// the operator's own records of it — the clientID key of the Secret it generated (where a flow
// Code client's generated id lives), or status.clientID — or from the annotation. The
// annotation alone is believed only while neither record exists (a new client, or a restore
// that dropped both), and an annotation that disagrees with them serves nothing: otherwise
// editing the annotation of one client would serve it under another client's id until the
// operator puts the annotation back.
// own is the Secret the operator generates for c (nil when there is none).
func acceptedID(c *v1alpha1.LivePersonAuthClient, own *corev1.Secret) string {
	if c.Spec.ClientID != "" {
		return c.Spec.ClientID
	}
	id := c.Annotations[v1alpha1.AnnotationGeneratedClientID]
	recorded := c.Status.ClientID
	if own != nil && len(own.Data[v1alpha1.ClientIDKey]) > 0 && controlledBy(own, c) {
		recorded = string(own.Data[v1alpha1.ClientIDKey])
	}
	if id == "" {
		return recorded
	}
	if recorded != "" && recorded != id {
		return ""
	}
	return id
}

func controlledBy(s *corev1.Secret, c *v1alpha1.LivePersonAuthClient) bool {
	for _, ref := range s.OwnerReferences {
		if ref.Controller != nil && *ref.Controller && ref.Kind == "LivePersonAuthClient" && ref.Name == c.Name && (c.UID == "" || ref.UID == c.UID) {
			return true
		}
	}
	// Test fixtures and tools hand clients without a UID and Secrets without owners; in the
	// cluster every client has a UID and the operator's own Secret always names it.
	return c.UID == "" && len(s.OwnerReferences) == 0
}

// AcceptedClientID is the client id the set serves client under, or "".
func AcceptedClientID(data map[string][]byte, client string) string {
	return string(data[idKey(client)])
}

// publicEncryptionKeys copies only what parses as LivePerson's public keys, re-encoded as one
// line of base64 SPKI each: whatever else the referenced Secret holds (it could name any Secret
// of the namespace) never reaches the set.
func publicEncryptionKeys(secretData map[string][]byte) ([]byte, error) {
	keys, err := jwe.ParseKeys(secretData) // at most jwe.MaxKeys of at most jwe.MaxRSABits
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, k := range keys {
		der, err := x509.MarshalPKIXPublicKey(k.PublicKey)
		if err != nil {
			return nil, err
		}
		out[k.ID] = base64.StdEncoding.EncodeToString(der)
	}
	return json.Marshal(out)
}

// LoginSecretRef is the Secret key spec.login reads, if any.
func LoginSecretRef(l *v1alpha1.LoginSpec) *v1alpha1.SecretKeyRef {
	switch {
	case l == nil:
		return nil
	case l.StaticUsers != nil:
		return &l.StaticUsers.HtpasswdSecretRef
	case l.UpstreamOIDC != nil:
		return &l.UpstreamOIDC.ClientSecretRef
	}
	return nil
}

// ClientSecretDigest is the SHA-256 digest of client's secret.
func ClientSecretDigest(data map[string][]byte, client string) ([32]byte, error) {
	var d [32]byte
	v := data[secretKey(client)]
	if len(v) != len(d) {
		return d, fmt.Errorf("no client secret yet (the operator copies its digest into the token server's Secret set)")
	}
	copy(d[:], v)
	return d, nil
}

// EncryptionKeys is the data of client's encryption keys Secret.
func EncryptionKeys(data map[string][]byte, client string) (map[string][]byte, error) {
	v, ok := data[jweKey(client)]
	if !ok {
		return nil, fmt.Errorf("no encryption keys yet (the operator copies them into the token server's Secret set)")
	}
	var keys map[string]string
	if err := json.Unmarshal(v, &keys); err != nil {
		return nil, fmt.Errorf("encryption keys unreadable: %w", err)
	}
	out := make(map[string][]byte, len(keys))
	for kid, spki := range keys {
		out[kid] = []byte(spki)
	}
	return out, nil
}

// Login is the value spec.login reads, or nil.
func Login(data map[string][]byte) []byte { return data[loginKey] }

// RedisURL is the Redis replay store's URL, or "".
func RedisURL(data map[string][]byte) string { return string(data[redisKey]) }
