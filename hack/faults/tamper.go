package main

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lpauth/lpauth-operator/api/credentials"
	"github.com/lpauth/lpauth-operator/api/keys"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// tampering: the Secrets the operator owns are deleted, emptied or given garbage, one way at a
// time, while tokens are issued and the JWKS is read. Each must converge back (the object
// Ready, its status telling what the Secret holds), with a Warning event; meanwhile the JWKS is never empty and every token issued
// verifies with a key it publishes.
func tampering(ctx context.Context, c *cluster, base string, addrs []string) row {
	r := row{fault: "Secrets the operator owns deleted, emptied or given garbage (10 ways)", recoverWhat: "tampering → object Ready again"}
	keySecret, record, creds := keys.SecretName(c.keyName), keys.RecordSecretName(c.keyName), credentials.SecretName(c.tokenName)
	clientSecret := v1alpha1.ClientSecretName("lp")
	del := func(name string) func(*corev1.Secret) bool { return func(*corev1.Secret) bool { return true } }
	set := func(data map[string][]byte) func(*corev1.Secret) bool {
		return func(s *corev1.Secret) bool { s.Data = data; return false }
	}
	garbleOne := func(s *corev1.Secret) bool {
		for k := range s.Data {
			s.Data[k] = []byte("{not json")
			break
		}
		return false
	}
	cases := []struct {
		name, secret, reason string
		tamper               func(*corev1.Secret) bool // true: delete the Secret
		issuing              bool                      // the issue API's credential stays valid
	}{
		{"key Secret deleted", keySecret, v1alpha1.ReasonSecretRecovered, del(keySecret), true},
		{"key Secret emptied", keySecret, v1alpha1.ReasonSecretRecovered, set(map[string][]byte{}), true},
		{"a key entry garbled", keySecret, v1alpha1.ReasonSecretRecovered, garbleOne, true},
		{"key Secret replaced by junk keys", keySecret, v1alpha1.ReasonSecretRecovered, set(map[string][]byte{"key-junk.json": []byte(`{"state":"Active"}`)}), true},
		{"key record deleted", record, "", del(record), true},
		{"key record garbled", record, "", set(map[string][]byte{keys.RecordDataKey: []byte("garbage")}), true},
		{"client Secret deleted", clientSecret, v1alpha1.ReasonClientSecretRegenerated, del(clientSecret), true},
		{"client secret made weak", clientSecret, v1alpha1.ReasonClientSecretRegenerated, set(map[string][]byte{v1alpha1.ClientIDKey: []byte(c.clientID), v1alpha1.ClientSecretKey: []byte("x")}), true},
		{"credentials code key emptied", creds, v1alpha1.ReasonCredentialsRepaired, func(s *corev1.Secret) bool { s.Data[credentials.CodeKeyKey] = nil; return false }, false},
		{"credentials Secret deleted", creds, v1alpha1.ReasonCredentialsRepaired, del(creds), false},
	}
	for _, tc := range cases {
		l := newLP(c, base)
		var o outcome
		var bad, empty atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		// The JWKS, read throughout: never empty, and every token issued verifies with it.
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				if jwks, err := fetchJWKS(base); err == nil && len(jwks.Keys) == 0 {
					empty.Add(1)
				}
			}
		})
		if tc.issuing {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					tok, status, err := l.implicitToken()
					o.requests.Add(1)
					if err != nil || status != http.StatusOK {
						continue // the client may be briefly unserved while its Secret is put back
					}
					if !verifiesOnAny(addrs, tokenOf(tok)) {
						bad.Add(1)
					}
				}
			})
		}
		time.Sleep(500 * time.Millisecond)
		start := time.Now()
		if err := tamperWith(ctx, c, tc.secret, tc.tamper); err != nil {
			r.violations = append(r.violations, tc.name+": "+err.Error())
		}
		if err := waitAllReady(ctx, c, 60*time.Second); err != nil {
			r.violations = append(r.violations, tc.name+": "+err.Error())
		}
		if err := keysConverge(ctx, c); err != nil {
			r.violations = append(r.violations, tc.name+": "+err.Error())
		}
		r.recover = max(r.recover, time.Since(start))
		if tc.reason != "" && !hasEvent(ctx, c, tc.reason, start) {
			r.violations = append(r.violations, tc.name+": no "+tc.reason+" Warning event")
		}
		time.Sleep(500 * time.Millisecond)
		close(stop)
		wg.Wait()
		if n := empty.Load(); n > 0 {
			r.violations = append(r.violations, fmt.Sprintf("%s: the JWKS was empty %d times", tc.name, n))
		}
		if n := bad.Load(); n > 0 {
			r.violations = append(r.violations, fmt.Sprintf("%s: %d tokens did not verify with the published JWKS", tc.name, n))
		}
		r.requests += o.requests.Load()
		r.trials++
		// The credentials and the client's secret may have been replaced: read them again.
		if err := c.refreshCredentials(ctx); err != nil {
			r.violations = append(r.violations, err.Error())
		}
	}
	return r
}

func tamperWith(ctx context.Context, c *cluster, name string, f func(*corev1.Secret) bool) error {
	s := &corev1.Secret{}
	if err := c.k8s.Get(ctx, client.ObjectKey{Namespace: c.namespace, Name: name}, s); err != nil {
		return err
	}
	if f(s) {
		return c.k8s.Delete(ctx, s)
	}
	return c.k8s.Update(ctx, s)
}

// waitAllReady waits until the SigningKey, the TokenServer and the client are Ready again.
func waitAllReady(ctx context.Context, c *cluster, d time.Duration) error {
	time.Sleep(200 * time.Millisecond) // let the operator see the change first
	return poll(ctx, d, "SigningKey, TokenServer and client Ready", func() (bool, error) {
		sk, ts, lc := &v1alpha1.SigningKey{}, &v1alpha1.TokenServer{}, &v1alpha1.LivePersonAuthClient{}
		if c.k8s.Get(ctx, client.ObjectKey{Namespace: c.namespace, Name: c.keyName}, sk) != nil ||
			c.k8s.Get(ctx, client.ObjectKey{Namespace: c.namespace, Name: c.tokenName}, ts) != nil ||
			c.k8s.Get(ctx, client.ObjectKey{Namespace: c.namespace, Name: "lp"}, lc) != nil {
			return false, nil
		}
		return ready(sk.Status.Conditions, sk.Generation) && ready(ts.Status.Conditions, ts.Generation) && ready(lc.Status.Conditions, lc.Generation), nil
	})
}

func hasEvent(ctx context.Context, c *cluster, reason string, since time.Time) bool {
	found := false
	_ = poll(ctx, 10*time.Second, "event "+reason, func() (bool, error) {
		list := &eventsv1.EventList{}
		if c.k8s.List(ctx, list, client.InNamespace(c.namespace)) != nil {
			return false, nil
		}
		for _, e := range list.Items {
			t := e.EventTime.Time
			if e.Series != nil {
				t = e.Series.LastObservedTime.Time
			}
			if e.Reason == reason && e.Type == corev1.EventTypeWarning && !t.Before(since.Add(-time.Second)) {
				found = true
			}
		}
		return found, nil
	})
	return found
}

// refreshCredentials reads the issue-API credential and the client's secret again.
func (c *cluster) refreshCredentials(ctx context.Context) error {
	return poll(ctx, 30*time.Second, "the credentials and the client Secret", func() (bool, error) {
		creds, sec := &corev1.Secret{}, &corev1.Secret{}
		if c.k8s.Get(ctx, client.ObjectKey{Namespace: c.namespace, Name: credentials.SecretName(c.tokenName)}, creds) != nil ||
			c.k8s.Get(ctx, client.ObjectKey{Namespace: c.namespace, Name: v1alpha1.ClientSecretName("lp")}, sec) != nil {
			return false, nil
		}
		c.issueToken, c.secret = string(creds.Data[credentials.IssueAPITokenKey]), string(sec.Data[v1alpha1.ClientSecretKey])
		return c.issueToken != "" && c.secret != "", nil
	})
}

func fetchJWKS(base string) (*jose.JSONWebKeySet, error) {
	resp, err := http.Get(base + "/.well-known/jwks.json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("JWKS: %d", resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	return &set, json.NewDecoder(resp.Body).Decode(&set)
}

// verifiesOnAny reports whether token verifies with the JWKS of one of the token servers. (A
// key that replaces a lost Active key signs at once: the other replica may publish it a moment
// later. Within one snapshot, the key that signs is always published.)
func verifiesOnAny(addrs []string, token string) bool {
	for _, a := range addrs {
		if verifies("http://"+a, token) {
			return true
		}
	}
	return false
}

// verifies reports whether token's signature verifies with the key its kid names in the JWKS.
func verifies(base, token string) bool {
	jwks, err := fetchJWKS(base)
	if err != nil {
		return false
	}
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return false
	}
	for _, k := range jwks.Key(jws.Signatures[0].Header.KeyID) {
		if pub, ok := k.Key.(*rsa.PublicKey); ok {
			if _, err := jws.Verify(pub); err == nil {
				return true
			}
		}
	}
	return false
}

// tokenOf is the token in the issue API's JSON answer.
func tokenOf(body string) string {
	var out struct {
		Token string `json:"token"`
	}
	_ = json.Unmarshal([]byte(body), &out)
	return out.Token
}
