package v1alpha1_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/lpauth/lpauth-operator/controllers/testenv"
)

// Valid specs that each table entry breaks in exactly one way.
const (
	validSigningKey = `
algorithm: RS256
rotation: {every: 2160h, publishAhead: 24h, retainAfterRetire: 25h}`

	validTokenServer = `
issuer: https://auth.brand.example
signingKeyRef: {name: keys}`

	validClient = `
tokenServerRef: {name: brand}
accountID: "12345678"`
)

var seq atomic.Int64

// newNamespace gives each spec its own namespace so specs never see each other's objects.
func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "api-"}}
	Expect(k8s.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

// object builds an unstructured object of our group from a spec written as YAML.
func object(kind, namespace, specYAML string) *unstructured.Unstructured {
	spec := map[string]any{}
	Expect(yaml.Unmarshal([]byte(specYAML), &spec)).To(Succeed())
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "auth.lpauth.dev/v1alpha1",
		"kind":       kind,
		"metadata":   map[string]any{"name": fmt.Sprintf("obj-%d", seq.Add(1)), "namespace": namespace},
		"spec":       spec,
	}}
	return u
}

// merge overlays the YAML patch onto the base YAML (top-level keys of the patch win; a null value
// deletes the key).
func merge(base, patch string) string {
	b, p := map[string]any{}, map[string]any{}
	Expect(yaml.Unmarshal([]byte(base), &b)).To(Succeed())
	Expect(yaml.Unmarshal([]byte(patch), &p)).To(Succeed())
	for k, v := range p {
		if v == nil {
			delete(b, k)
			continue
		}
		b[k] = v
	}
	out, err := yaml.Marshal(b)
	Expect(err).NotTo(HaveOccurred())
	return string(out)
}

// create sends the object with strict field validation, so unknown or duplicated fields are
// errors rather than silently dropped.
func create(u *unstructured.Unstructured) error {
	return k8s.Create(ctx, u, client.FieldValidation("Strict"))
}

var _ = Describe("CRD validation", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	DescribeTable("rejects an invalid object with a message that says what to fix",
		func(kind, base, patch, want string) {
			err := create(object(kind, ns, merge(base, patch)))
			Expect(err).To(HaveOccurred(), "the API server accepted it")
			Expect(err.Error()).To(ContainSubstring(want))
		},

		// SigningKey
		Entry("ES256 with an RSA key size", "SigningKey", validSigningKey,
			`{algorithm: ES256, rsaKeySize: 2048}`, "rsaKeySize applies only to RSA algorithms"),
		Entry("an unsupported algorithm", "SigningKey", validSigningKey,
			`{algorithm: HS256}`, `spec.algorithm: Unsupported value: "HS256"`),
		Entry("a 1024-bit RSA key", "SigningKey", validSigningKey,
			`{rsaKeySize: 1024}`, "spec.rsaKeySize: Unsupported value: 1024"),
		Entry("publishAhead not shorter than every", "SigningKey", validSigningKey,
			`{rotation: {every: 24h, publishAhead: 24h}}`, "publishAhead must be shorter than every"),
		Entry("rotation more often than hourly", "SigningKey", validSigningKey,
			`{rotation: {every: 30m, publishAhead: 10m}}`, "every must be between 1h and 87600h"),
		Entry("a duration that is not a Go duration", "SigningKey", validSigningKey,
			`{rotation: {every: 90 days}}`, "spec.rotation.every: Invalid value"),
		Entry("retired keys kept over a year", "SigningKey", validSigningKey,
			`{rotation: {retainAfterRetire: 9000h}}`, "retainAfterRetire must be at most 8760h"),

		// TokenServer
		Entry("an issuer that is not a URL", "TokenServer", validTokenServer,
			`{issuer: auth.brand.example}`, "issuer must be an absolute URL"),
		Entry("an http issuer on a public host", "TokenServer", validTokenServer,
			`{issuer: "http://auth.brand.example"}`, "issuer must use https"),
		Entry("an issuer with a query", "TokenServer", validTokenServer,
			`{issuer: "https://auth.brand.example/?tenant=1"}`, "issuer must not have a query or a fragment"),
		Entry("an issuer with a trailing slash", "TokenServer", validTokenServer,
			`{issuer: "https://auth.brand.example/"}`, "issuer must not end with '/'"),
		// Regression (IssuerPathIsNeverAPattern): these passed the URL rule and made the token
		// server's ServeMux panic at start, a crash loop on an immutable field.
		Entry("an issuer path with a wildcard", "TokenServer", validTokenServer,
			`{issuer: "https://x.example/{tenant}"}`, "issuer path segments may contain only"),
		Entry("an issuer path with an end anchor", "TokenServer", validTokenServer,
			`{issuer: "https://x.example/a/{$}"}`, "issuer path segments may contain only"),
		Entry("an issuer path with percent-encoding", "TokenServer", validTokenServer,
			`{issuer: "https://x.example/%7Bt%7D"}`, "issuer path segments may contain only"),
		Entry("an issuer path with a space", "TokenServer", validTokenServer,
			`{issuer: "https://x.example/a b"}`, "issuer path segments may contain only"),
		Entry("an issuer path with an empty segment", "TokenServer", validTokenServer,
			`{issuer: "https://x.example/a//b"}`, "issuer path segments may contain only"),
		Entry("an issuer path with a dot-dot segment", "TokenServer", validTokenServer,
			`{issuer: "https://x.example/a/../b"}`, "issuer path must not contain '.' or '..' segments"),
		// Regression: "90d" gave the regex and a CEL evaluation error instead of one plain line.
		Entry("a duration in days", "SigningKey", validSigningKey,
			`{rotation: {every: 90d, publishAhead: 24h, retainAfterRetire: 25h}}`, "every must be a Go duration such as 2160h (units h, m, s; there is no d unit)"),
		Entry("a duration in words", "TokenServer", validTokenServer,
			`{codeTTL: "2 minutes"}`, "codeTTL must be a Go duration such as 120s"),
		Entry("an issuer longer than 2048 characters", "TokenServer", validTokenServer,
			`{issuer: "https://auth.brand.example/`+strings.Repeat("a", 2048)+`"}`, "spec.issuer: Too long"),
		Entry("no signing key", "TokenServer", validTokenServer,
			`{signingKeyRef: null}`, "spec.signingKeyRef: Required value"),
		Entry("two replicas with the memory replay store", "TokenServer", validTokenServer,
			`{replicas: 2, replayStore: {type: Memory}}`, "replicas greater than 1 need replayStore.type Redis"),
		Entry("two replicas with no replay store", "TokenServer", validTokenServer,
			`{replicas: 2}`, "replicas greater than 1 need replayStore.type Redis"),
		Entry("more than 100 replicas", "TokenServer", validTokenServer,
			`{replicas: 101}`, "spec.replicas: Invalid value: 101"),
		Entry("Redis without an address", "TokenServer", validTokenServer,
			`{replayStore: {type: Redis}}`, "replayStore.redis must be set when, and only when, type is Redis"),
		Entry("Memory with a Redis address", "TokenServer", validTokenServer,
			`{replayStore: {type: Memory, redis: {addressSecretRef: {name: r, key: url}}}}`,
			"replayStore.redis must be set when, and only when, type is Redis"),
		Entry("two login connectors", "TokenServer", validTokenServer,
			`{login: {staticUsers: {htpasswdSecretRef: {name: u, key: htpasswd}}, landingPage: {url: "https://brand.example/login"}}}`,
			"login must set exactly one of landingPage, upstreamOIDC, trustedHeaders or staticUsers"),
		Entry("an empty login", "TokenServer", validTokenServer,
			`{login: {}}`, "login must set exactly one of"),
		Entry("a code TTL under 10s", "TokenServer", validTokenServer,
			`{codeTTL: 5s}`, "codeTTL must be between 10s and 10m"),
		Entry("an http landing page on a public host", "TokenServer", validTokenServer,
			`{login: {landingPage: {url: "http://brand.example/login"}}}`, "url must be an absolute https URL"),
		Entry("a landing-page request TTL over an hour", "TokenServer", validTokenServer,
			`{login: {landingPage: {url: "https://brand.example/login", requestTTL: 2h}}}`, "requestTTL must be between 1m and 1h"),
		Entry("upstream scopes without openid", "TokenServer", validTokenServer,
			`{login: {upstreamOIDC: {issuer: "https://idp.example", clientID: c, clientSecretRef: {name: s, key: k}, scopes: [profile]}}}`,
			"scopes must include openid"),
		Entry("an http upstream issuer on a public host", "TokenServer", validTokenServer,
			`{login: {upstreamOIDC: {issuer: "http://idp.example", clientID: c, clientSecretRef: {name: s, key: k}}}}`,
			"issuer must be an absolute https URL"),
		Entry("an upstream without a client secret", "TokenServer", validTokenServer,
			`{login: {upstreamOIDC: {issuer: "https://idp.example", clientID: c}}}`,
			"spec.login.upstreamOIDC.clientSecretRef: Required value"),
		Entry("trusted headers from an address that is not a CIDR", "TokenServer", validTokenServer,
			`{login: {trustedHeaders: {userHeader: X-Forwarded-User, trustedProxyCIDRs: [10.0.0.1]}}}`,
			"trustedProxyCIDRs must be CIDRs"),
		Entry("trusted headers with no trusted proxy", "TokenServer", validTokenServer,
			`{login: {trustedHeaders: {userHeader: X-Forwarded-User, trustedProxyCIDRs: []}}}`,
			"spec.login.trustedHeaders.trustedProxyCIDRs: Invalid value"),
		Entry("a header name with a space", "TokenServer", validTokenServer,
			`{login: {trustedHeaders: {userHeader: "X User", trustedProxyCIDRs: [10.0.0.0/8]}}}`,
			"spec.login.trustedHeaders.userHeader: Invalid value"),
		Entry("a secret key with a slash", "TokenServer", validTokenServer,
			`{login: {staticUsers: {htpasswdSecretRef: {name: u, key: "a/b"}}}}`,
			"spec.login.staticUsers.htpasswdSecretRef.key: Invalid value"),
		Entry("an unknown field", "TokenServer", validTokenServer,
			`{isuer: "https://typo.example"}`, `unknown field "spec.isuer"`),

		// LivePersonAuthClient
		Entry("a client secret for the implicit flow", "LivePersonAuthClient", validClient,
			`{flow: Implicit, clientSecretRef: {name: s, key: k}}`, "clientSecretRef applies only to flow Code"),
		Entry("PKCE required for the implicit flow", "LivePersonAuthClient", validClient,
			`{flow: Implicit, pkce: Required}`, "pkce Required applies only to flow Code"),
		Entry("an unknown flow", "LivePersonAuthClient", validClient,
			`{flow: Hybrid}`, `spec.flow: Unsupported value: "Hybrid"`),
		Entry("a client id with a colon", "LivePersonAuthClient", validClient,
			`{clientID: "brand:liveperson"}`, "spec.clientID: Invalid value"),
		Entry("a client id shorter than 8 characters", "LivePersonAuthClient", validClient,
			`{clientID: "short"}`, "spec.clientID: Invalid value"),
		Entry("an account id with spaces", "LivePersonAuthClient", validClient,
			`{accountID: "123 456"}`, "spec.accountID: Invalid value"),
		Entry("no token server", "LivePersonAuthClient", validClient,
			`{tokenServerRef: null}`, "spec.tokenServerRef: Required value"),
		Entry("a redirect URI that is not http(s)", "LivePersonAuthClient", validClient,
			`{redirectURIs: ["ftp://liveperson.net"]}`, "each redirectURIs entry must be an http(s) URL"),
		Entry("more than 32 redirect URIs", "LivePersonAuthClient", validClient,
			`{redirectURIs: [`+manyURIs(33)+`]}`, "spec.redirectURIs: Too many: 33: must have at most 32 items"),
		Entry("a duplicated redirect URI", "LivePersonAuthClient", validClient,
			`{redirectURIs: ["https://liveperson.net", "https://liveperson.net"]}`, "spec.redirectURIs[1]: Duplicate value"),
		Entry("a static claim the server sets", "LivePersonAuthClient", validClient,
			`{idToken: {staticClaims: {sub: someone}}}`, "staticClaims must not set iss, sub"),
		Entry("an identity mapping to a claim the server sets", "LivePersonAuthClient", validClient,
			`{idToken: {claimsFromIdentity: {iss: email}}}`, "claimsFromIdentity must not set iss, sub"),
		Entry("a token lifetime over a day", "LivePersonAuthClient", validClient,
			`{idToken: {lifetime: 48h}}`, "lifetime must be between 1m and 24h"),
		Entry("more than two lp_sdes entries", "LivePersonAuthClient", validClient,
			`{idToken: {lpSdes: [{type: ctmrinfo}, {type: personal}, {type: personal}]}}`, "spec.idToken.lpSdes: Too many: 3"),
		Entry("an unknown content encryption", "LivePersonAuthClient", validClient,
			`{encryption: {keysSecretRef: {name: lp}, enc: A128GCM}}`, `spec.encryption.enc: Unsupported value: "A128GCM"`),
		Entry("an unknown public key mode", "LivePersonAuthClient", validClient,
			`{publicKeyMode: X509}`, `spec.publicKeyMode: Unsupported value: "X509"`),
	)

	It("accepts issuers with literal paths, ports and loopback addresses", func() {
		for _, issuer := range []string{"https://auth.brand.example/lp/v1", "https://auth.brand.example:8443/a-b_c.d~e",
			"http://127.0.0.1:8080", "http://[::1]:8080/dev", "http://localhost:8181"} {
			Expect(create(object("TokenServer", ns, merge(validTokenServer, `{issuer: "`+issuer+`"}`)))).To(Succeed(), issuer)
		}
	})

	// Regression (ClientIDBelongsToOneClient): an older client could be given another client's
	// id, or moved to its TokenServer, and take that id over.
	It("never lets a client take a client id or move to another TokenServer after creation", func() {
		c := object("LivePersonAuthClient", ns, validClient)
		Expect(create(c)).To(Succeed())
		Expect(unstructured.SetNestedField(c.Object, "victim-id", "spec", "clientID")).To(Succeed())
		err := k8s.Update(ctx, c)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("clientID cannot be added or removed after creation"))

		c = object("LivePersonAuthClient", ns, validClient)
		Expect(create(c)).To(Succeed())
		Expect(unstructured.SetNestedField(c.Object, "victims-server", "spec", "tokenServerRef", "name")).To(Succeed())
		err = k8s.Update(ctx, c)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("tokenServerRef is immutable"))
	})

	It("says one plain thing about a duration that is not a Go duration", func() {
		err := create(object("SigningKey", ns, merge(validSigningKey, `{rotation: {every: 90d, publishAhead: 24h, retainAfterRetire: 25h}}`)))
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("there is no d unit"))
		Expect(err.Error()).NotTo(Or(ContainSubstring("should match"), ContainSubstring("invalid duration"), ContainSubstring("failed to evaluate")), "one plain message, not the regex or an evaluation error")
	})

	It("keeps the issuer immutable", func() {
		ts := object("TokenServer", ns, validTokenServer)
		Expect(create(ts)).To(Succeed())
		Expect(unstructured.SetNestedField(ts.Object, "https://other.brand.example", "spec", "issuer")).To(Succeed())
		err := k8s.Update(ctx, ts)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("issuer is immutable"))
	})

	It("lets a TokenServer scale out once it uses Redis", func() {
		ts := object("TokenServer", ns, validTokenServer)
		Expect(create(ts)).To(Succeed())
		Expect(unstructured.SetNestedField(ts.Object, int64(3), "spec", "replicas")).To(Succeed())
		Expect(unstructured.SetNestedMap(ts.Object, map[string]any{
			"type": "Redis", "redis": map[string]any{"addressSecretRef": map[string]any{"name": "redis", "key": "url"}},
		}, "spec", "replayStore")).To(Succeed())
		Expect(k8s.Update(ctx, ts)).To(Succeed())
	})

	It("keeps a client id once set, and refuses to remove it", func() {
		c := object("LivePersonAuthClient", ns, merge(validClient, `{clientID: brand-lp-0001}`))
		Expect(create(c)).To(Succeed())

		changed := c.DeepCopy()
		Expect(unstructured.SetNestedField(changed.Object, "brand-lp-0002", "spec", "clientID")).To(Succeed())
		err := k8s.Update(ctx, changed)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("clientID is immutable"))

		removed := c.DeepCopy()
		unstructured.RemoveNestedField(removed.Object, "spec", "clientID")
		err = k8s.Update(ctx, removed)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("clientID cannot be added or removed after creation"))
	})

	It("applies the documented defaults to a minimal object", func() {
		sk := object("SigningKey", ns, `{}`)
		Expect(create(sk)).To(Succeed())
		spec, _, _ := unstructured.NestedMap(sk.Object, "spec")
		Expect(spec).To(Equal(map[string]any{
			"algorithm": "RS256",
			"rotation":  map[string]any{"every": "2160h", "publishAhead": "24h", "retainAfterRetire": "24h"},
		}))

		c := object("LivePersonAuthClient", ns, validClient)
		Expect(create(c)).To(Succeed())
		for field, want := range map[string]string{"flow": "Code", "pkce": "Allowed", "publicKeyMode": "JWKS"} {
			got, _, _ := unstructured.NestedString(c.Object, "spec", field)
			Expect(got).To(Equal(want), "spec.%s", field)
		}
		lifetime, _, _ := unstructured.NestedString(c.Object, "spec", "idToken", "lifetime")
		Expect(lifetime).To(Equal("1h"))
	})

	DescribeTable("accepts every example exactly as written", func(dir string) {
		files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", dir, "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		ns := newNamespace()
		var samples []*unstructured.Unstructured
		for _, f := range files {
			if filepath.Base(f) == "kustomization.yaml" {
				continue
			}
			samples = append(samples, readObjects(f)...)
		}
		Expect(samples).NotTo(BeEmpty())

		for _, want := range samples {
			sent := want.DeepCopy()
			sent.SetNamespace(ns)
			Expect(create(sent)).To(Succeed(), "%s %s", want.GetKind(), want.GetName())

			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(want.GroupVersionKind())
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(sent), got)).To(Succeed())
			for _, field := range []string{"spec", "data", "type"} {
				w, ok := want.Object[field]
				if !ok {
					continue
				}
				// Compared as JSON: the YAML decoder reads numbers as float64, the client as int64.
				wantJSON, err := json.Marshal(w)
				Expect(err).NotTo(HaveOccurred())
				gotJSON, err := json.Marshal(got.Object[field])
				Expect(err).NotTo(HaveOccurred())
				Expect(gotJSON).To(MatchJSON(wantJSON), "%s %s: the API server changed .%s (a pruned typo or a surprise default)", want.GetKind(), want.GetName(), field)
			}
		}
	},
		Entry("config/samples (the demo)", "samples"),
		Entry("config/production (the starting point of a real install)", "production"),
	)
})

func manyURIs(n int) string {
	uris := make([]string, n)
	for i := range uris {
		uris[i] = fmt.Sprintf(`"https://brand.example/cb/%d"`, i)
	}
	return strings.Join(uris, ", ")
}

// readObjects decodes every YAML document of a file.
func readObjects(path string) []*unstructured.Unstructured {
	f, err := os.Open(path)
	Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			break
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
	return out
}
