// Package snapshot compiles the cluster objects a token server serves (its TokenServer, the
// signing keys, the LivePersonAuthClients and their Secrets) into one immutable Snapshot. The
// server swaps whole snapshots atomically, so a request never sees half an update and never
// calls the API server.
package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	corev1 "k8s.io/api/core/v1"

	"github.com/lpauth/lpauth-operator/api/branding"
	"github.com/lpauth/lpauth-operator/api/credentials"
	"github.com/lpauth/lpauth-operator/api/endpoints"
	"github.com/lpauth/lpauth-operator/api/jwe"
	"github.com/lpauth/lpauth-operator/api/keys"
	"github.com/lpauth/lpauth-operator/api/lpsdes"
	"github.com/lpauth/lpauth-operator/api/redirect"
	"github.com/lpauth/lpauth-operator/api/secretset"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/tokenserver/codes"
	"github.com/lpauth/lpauth-operator/tokenserver/signer"
)

// Client is one LivePersonAuthClient, ready to serve.
type Client struct {
	ID        string
	Name      string // the LivePersonAuthClient's name, for logs and metrics
	AccountID string
	Flow      v1alpha1.AuthFlow
	// SecretHash is the SHA-256 digest of the client secret; the zero value (implicit flow, or
	// no secret) matches nothing. Only digests reach the token server: a snapshot dump or a
	// memory read never gives away a secret LivePerson holds.
	SecretHash         [32]byte
	HasSecret          bool
	Redirects          redirect.Allowlist
	PKCE               v1alpha1.PKCEMode
	AllowPlainPKCE     bool
	Lifetime           time.Duration
	Audience           string
	StaticClaims       map[string]string
	ClaimsFromIdentity map[string]string
	SDEs               []lpsdes.SDE
	Encrypter          jose.Encrypter // nil when tokens are not encrypted
}

// Snapshot is everything a request needs. It is never modified after Build.
type Snapshot struct {
	Issuer    string
	Endpoints endpoints.URLs
	Clients   map[string]*Client
	// Signer signs with the Active key; SigningKeyID and SigningAlgorithm describe it.
	Signer           signer.JWTSigner
	SigningKeyID     string
	SigningAlgorithm jose.SignatureAlgorithm
	ActiveKeyAge     time.Duration
	JWKS, Discovery  Document
	Codes            *codes.Sealer
	CodeTTL          time.Duration
	// IssueAPITokens are the bearer credentials of the issue API: current, then previous.
	IssueAPITokens [][]byte
	// RetiredIssueAPITokenDigests are SHA-256 digests of issue-API credentials no longer
	// accepted, so a backend still sending one is told it was replaced.
	RetiredIssueAPITokenDigests [][sha256.Size]byte
	// CredentialsSecret is the name of the credentials Secret, for error messages.
	CredentialsSecret string
	// Login is how /authorize logs a person in; nil when spec.login is unset or broken
	// (LoginProblem says why).
	Login        *Login
	LoginProblem error
	// Expires, when set, is when a previous credential this snapshot accepts stops being
	// accepted: the snapshot must be rebuilt then, whether or not anything else changes.
	Expires time.Time
	// Branding styles the login and error pages.
	Branding branding.Branding
	// TrustedProxies are the peers whose X-Forwarded-For is believed (spec.trustedProxyCIDRs).
	TrustedProxies []netip.Prefix
	Built          time.Time
}

// Document is pre-rendered JSON with its ETag.
type Document struct {
	Body []byte
	ETag string
}

func newDocument(v any) (Document, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Document{}, err
	}
	sum := sha256.Sum256(b)
	return Document{Body: b, ETag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}, nil
}

// Inputs are the cluster objects of one token server.
//
// Build only reads its inputs: they are the token server's informer caches, shared, not copies.
type Inputs struct {
	TokenServer *v1alpha1.TokenServer
	// KeySecret is the SigningKey's Secret; Credentials the TokenServer's own Secret.
	KeySecret, Credentials *corev1.Secret
	Clients                []v1alpha1.LivePersonAuthClient
	// SecretSet is the TokenServer's secret set (package secretset): client-secret digests,
	// encryption keys, the login secret, compiled by the operator from the brand's Secrets.
	SecretSet *corev1.Secret
	// BrandSecrets, when SecretSet is nil, are the brand's Secrets by name, compiled into a
	// secret set here exactly as the operator does (secretset.Compile): for tests and tools that
	// run without the operator. The token server never reads the brand's Secrets.
	BrandSecrets map[string]*corev1.Secret
	// ConfigMaps are the labelled ConfigMaps (branding), by name.
	ConfigMaps map[string]*corev1.ConfigMap
	Now        time.Time
}

// Problem is an object left out of the snapshot, and why.
type Problem struct {
	Object string
	Err    error
}

func (p Problem) String() string { return p.Object + ": " + p.Err.Error() }

// ErrStaleClients marks a problem that leaves the clients as an earlier snapshot had them (the
// secret set's Secrets disagree): keys still get through, but client changes (a deletion, a new
// secret) do not, so it counts as stale until the set agrees again.
var ErrStaleClients = errors.New("serving the clients of the last complete set")

// Build compiles a snapshot. It fails only when nothing could be served (no issuer, no key, no
// code key); a broken client is left out and reported in problems.
func Build(in Inputs) (*Snapshot, []Problem, error) {
	if in.TokenServer == nil {
		return nil, nil, errors.New("no TokenServer")
	}
	ts := in.TokenServer
	s := &Snapshot{Issuer: ts.Spec.Issuer, Endpoints: endpoints.For(ts.Spec.Issuer), Clients: map[string]*Client{}, Built: in.Now}
	s.CodeTTL = ts.Spec.CodeTTL.Duration
	if s.CodeTTL == 0 {
		s.CodeTTL = v1alpha1.DefaultCodeTTL
	}
	for _, c := range ts.Spec.TrustedProxyCIDRs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, nil, fmt.Errorf("spec.trustedProxyCIDRs: %w", err)
		}
		s.TrustedProxies = append(s.TrustedProxies, p.Masked())
	}
	if err := s.buildKeys(in); err != nil {
		return nil, nil, err
	}
	if err := s.buildCredentials(in.Credentials, in.Now); err != nil {
		return nil, nil, err
	}
	if in.SecretSet == nil && in.BrandSecrets == nil {
		// Not ready rather than ready without clients: a pod that starts before the operator
		// wrote the set would otherwise answer every code-flow client invalid_client.
		return nil, nil, fmt.Errorf("the secret set Secret %s is missing (the operator writes it)", secretset.Name(ts.Name))
	}
	set := secretSetData(in)
	var problems []Problem
	// Each client id belongs to its oldest claimant, reserved before anything is built: a
	// younger client with the same id is never served, even while the owner itself cannot be.
	owner := map[string]string{}
	for _, c := range clientsInClaimOrder(in.Clients, ts.Name) {
		id := c.EffectiveClientID()
		if prev, taken := owner[id]; taken && id != "" {
			problems = append(problems, Problem{Object: "LivePersonAuthClient " + c.Name, Err: fmt.Errorf("client id %q is also used by %s, created earlier", id, prev)})
			continue
		}
		owner[id] = c.Name
		if accepted := secretset.AcceptedClientID(set, c.Name); accepted != id {
			problems = append(problems, Problem{Object: "LivePersonAuthClient " + c.Name, Err: fmt.Errorf("client id %q is not the one the operator accepted (%q): not served until it is", id, accepted)})
			continue
		}
		client, err := buildClient(c, set)
		if err != nil {
			problems = append(problems, Problem{Object: "LivePersonAuthClient " + c.Name, Err: err})
			continue
		}
		s.Clients[client.ID] = client
	}
	if ts.Spec.Login != nil {
		if s.Login, s.LoginProblem = buildLogin(ts.Spec.Login, set); s.LoginProblem != nil {
			problems = append(problems, Problem{Object: "TokenServer " + ts.Name + " spec.login", Err: s.LoginProblem})
		}
		if ref := ts.Spec.Login.BrandingConfigMapRef; ref != nil {
			object := "ConfigMap " + ref.Name + " (branding)"
			if cm := in.ConfigMaps[ref.Name]; cm == nil {
				problems = append(problems, Problem{Object: object, Err: errors.New("missing: the pages use the default look")})
			} else {
				var errs []error
				s.Branding, errs = branding.Parse(cm.Data)
				for _, err := range errs {
					problems = append(problems, Problem{Object: object, Err: err})
				}
			}
		}
	}
	sort.Slice(problems, func(i, j int) bool { return problems[i].Object < problems[j].Object })
	return s, problems, nil
}

// secretSetData is the secret set's data, compiled from BrandSecrets when no set is given.
func secretSetData(in Inputs) map[string][]byte {
	if in.SecretSet != nil {
		return in.SecretSet.Data
	}
	clients := make([]*v1alpha1.LivePersonAuthClient, 0, len(in.Clients))
	for i := range in.Clients {
		clients = append(clients, &in.Clients[i])
	}
	return secretset.Compile(in.TokenServer, clients, func(name string) *corev1.Secret { return in.BrandSecrets[name] })
}

// clientsInClaimOrder returns the clients of the TokenServer oldest first (creation time, then
// name), so when two claim one client id the older one is served, whatever order the cache
// lists them in. The operator marks the younger one not Ready with the same rule.
func clientsInClaimOrder(all []v1alpha1.LivePersonAuthClient, tokenServer string) []*v1alpha1.LivePersonAuthClient {
	out := make([]*v1alpha1.LivePersonAuthClient, 0, len(all))
	for i := range all {
		if all[i].Spec.TokenServerRef.Name == tokenServer {
			out = append(out, &all[i])
		}
	}
	sort.Slice(out, func(i, j int) bool { return v1alpha1.ClaimsBefore(out[i], out[j]) })
	return out
}

func (s *Snapshot) buildKeys(in Inputs) error {
	if in.KeySecret == nil {
		return fmt.Errorf("the signing key Secret of SigningKey %q is missing", in.TokenServer.Spec.SigningKeyRef.Name)
	}
	set, _ := keys.Decode(in.KeySecret.Data)
	set = withoutRevoked(set, in)
	active, ok := keys.Active(set)
	if !ok {
		return fmt.Errorf("the signing key Secret %s has no active key", in.KeySecret.Name)
	}
	sign, err := signer.New(active)
	if err != nil {
		return err
	}
	s.Signer, s.SigningKeyID, s.SigningAlgorithm = sign, active.ID(), jose.SignatureAlgorithm(active.Algorithm())
	s.ActiveKeyAge = in.Now.Sub(active.ActivatesAt)
	jwks, err := keys.JWKS(set)
	if err != nil {
		return err
	}
	if s.JWKS, err = newDocument(json.RawMessage(jwks)); err != nil {
		return err
	}
	algs := map[string]bool{}
	for _, k := range set {
		algs[string(k.Algorithm())] = true
	}
	s.Discovery, err = newDocument(discovery(s.Issuer, s.Endpoints, sortedKeys(algs)))
	return err
}

// withoutRevoked drops every key on the key Secret's deny-list annotation, which the operator
// writes with the keys: a hand-edited entry for a revoked key is not served even before the
// operator removes it. (SigningKey status is not read: whoever may patch status could then
// take keys out of service.)
func withoutRevoked(set []keys.Key, in Inputs) []keys.Key {
	denied, _ := keys.ParseKIDs(in.KeySecret.Annotations[v1alpha1.AnnotationRevokedKeys])
	if len(denied) == 0 {
		return set
	}
	kept := make([]keys.Key, 0, len(set))
	for _, k := range set {
		if !slices.Contains(denied, k.ID()) {
			kept = append(kept, k)
		}
	}
	return kept
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// discovery is the OpenID Provider metadata document.
func discovery(issuer string, urls endpoints.URLs, algs []string) map[string]any {
	return map[string]any{
		"issuer":                                issuer,
		"authorization_endpoint":                urls.Authorization,
		"token_endpoint":                        urls.Token,
		"jwks_uri":                              urls.JWKS,
		"response_types_supported":              []string{"code", "id_token", "token"},
		"response_modes_supported":              []string{"query"},
		"grant_types_supported":                 []string{"authorization_code", "implicit"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": algs,
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"code_challenge_methods_supported":      []string{"S256"},
		"scopes_supported":                      []string{"openid"},
		"claims_supported": []string{"iss", "sub", "aud", "exp", "iat", "given_name", "family_name", "email",
			"gender", "preferred_username", "phone_number", "lp_sdes"},
	}
}

func (s *Snapshot) buildCredentials(secret *corev1.Secret, now time.Time) error {
	if secret == nil {
		return errors.New("the TokenServer's credentials Secret is missing")
	}
	// A previous value past its time is not accepted, whether or not the operator has removed
	// it yet: an operator that is down never extends an overlap.
	current := func(key, until string) bool {
		if key == credentials.CodeKeyKey || key == credentials.IssueAPITokenKey {
			return true
		}
		v, ok := secret.Annotations[until]
		if !ok {
			v, ok = secret.Annotations[v1alpha1.AnnotationPreviousUntil]
		}
		t, err := time.Parse(time.RFC3339, v)
		if ok && err == nil && now.Before(t) && (s.Expires.IsZero() || t.Before(s.Expires)) {
			s.Expires = t
		}
		return !ok || err != nil || now.IsZero() || now.Before(t)
	}
	var ring [][]byte
	for _, k := range []string{credentials.CodeKeyKey, credentials.PreviousCodeKeyKey} {
		if v := secret.Data[k]; len(v) > 0 && current(k, v1alpha1.AnnotationPreviousCodeKeyUntil) {
			ring = append(ring, v)
		}
	}
	sealer, err := codes.NewSealer(ring...)
	if err != nil {
		return fmt.Errorf("credentials Secret %s: %w", secret.Name, err)
	}
	s.Codes = sealer
	for _, k := range []string{credentials.IssueAPITokenKey, credentials.PreviousIssueAPITokenKey} {
		if v := bytes.TrimSpace(secret.Data[k]); len(v) > 0 && current(k, v1alpha1.AnnotationPreviousIssueAPITokenUntil) {
			s.IssueAPITokens = append(s.IssueAPITokens, v)
		}
	}
	if len(s.IssueAPITokens) == 0 {
		return fmt.Errorf("credentials Secret %s has no %s", secret.Name, credentials.IssueAPITokenKey)
	}
	s.CredentialsSecret = secret.Name
	for _, d := range credentials.ParseRetiredDigests(secret.Data[credentials.RetiredIssueAPITokenDigestsKey]) {
		s.RetiredIssueAPITokenDigests = append(s.RetiredIssueAPITokenDigests, d.SHA256)
	}
	return nil
}

// WithCredentials is s with the code keys and issue-API credentials read anew from secret, and
// everything else as it was. The token server uses it when a full rebuild fails: a credential
// cut because it leaked must stop being accepted even while another object is broken.
func (s *Snapshot) WithCredentials(secret *corev1.Secret, now time.Time) (*Snapshot, error) {
	next := *s
	next.Codes, next.IssueAPITokens, next.RetiredIssueAPITokenDigests, next.Expires = nil, nil, nil, time.Time{}
	if err := next.buildCredentials(secret, now); err != nil {
		return nil, err
	}
	return &next, nil
}

func buildClient(c *v1alpha1.LivePersonAuthClient, set map[string][]byte) (*Client, error) {
	id := c.Spec.ClientID
	if id == "" {
		id = c.Annotations[v1alpha1.AnnotationGeneratedClientID]
	}
	if id == "" {
		return nil, errors.New("no client id yet")
	}
	allow, err := redirect.Parse(c.Spec.RedirectURIs)
	if err != nil {
		return nil, err
	}
	cl := &Client{
		ID: id, Name: c.Name, AccountID: c.Spec.AccountID, Flow: c.Spec.Flow, Redirects: allow, PKCE: c.Spec.PKCE, AllowPlainPKCE: c.Spec.AllowPlainPKCE,
		Lifetime: c.Spec.IDToken.Lifetime.Duration, Audience: c.Spec.IDToken.Audience,
		StaticClaims: c.Spec.IDToken.StaticClaims, ClaimsFromIdentity: c.Spec.IDToken.ClaimsFromIdentity,
	}
	if cl.Flow == "" {
		cl.Flow = v1alpha1.FlowCode
	}
	if cl.Lifetime == 0 {
		cl.Lifetime = v1alpha1.DefaultTokenLifetime
	}
	if cl.Audience == "" {
		cl.Audience = id
	}
	if len(c.Spec.IDToken.LPSdes) > 0 {
		var raw []json.RawMessage
		for _, item := range c.Spec.IDToken.LPSdes {
			raw = append(raw, item.Raw)
		}
		b, _ := json.Marshal(raw)
		if cl.SDEs, err = lpsdes.Parse(b); err != nil {
			return nil, fmt.Errorf("idToken.lpSdes: %w", err)
		}
	}
	if cl.Flow == v1alpha1.FlowCode {
		if cl.SecretHash, err = secretset.ClientSecretDigest(set, c.Name); err != nil {
			return nil, err
		}
		cl.HasSecret = true
	}
	if enc := c.Spec.Encryption; enc != nil {
		if cl.Encrypter, err = encrypter(enc, set, c.Name); err != nil {
			return nil, err
		}
	}
	return cl, nil
}

func encrypter(enc *v1alpha1.EncryptionSpec, set map[string][]byte, client string) (jose.Encrypter, error) {
	data, err := secretset.EncryptionKeys(set, client)
	if err != nil {
		return nil, fmt.Errorf("encryption keys Secret %s: %w", enc.KeysSecretRef.Name, err)
	}
	ks, err := jwe.ParseKeys(data)
	if err != nil {
		return nil, err
	}
	k, err := jwe.Select(ks, enc.KeyID)
	if err != nil {
		return nil, err
	}
	alg := jose.A256GCM
	if enc.Enc == v1alpha1.A128CBCHS256 {
		alg = jose.A128CBC_HS256
	}
	return jwe.NewEncrypter(k, alg)
}

// Holder holds the current snapshot and swaps it atomically; requests read it without locks.
type Holder struct {
	p atomic.Pointer[Snapshot]
}

// Snapshot returns the current snapshot, or nil before the first Store.
func (h *Holder) Snapshot() *Snapshot { return h.p.Load() }

// Store replaces the current snapshot.
func (h *Holder) Store(s *Snapshot) { h.p.Store(s) }
