package secretset_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lpauth/lpauth-operator/api/secretset"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

func TestCompileCarriesDigestsNeverSecrets(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	lpKey := base64.StdEncoding.EncodeToString(der)
	ts := &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand"}, Spec: v1alpha1.TokenServerSpec{
		Login:       &v1alpha1.LoginSpec{StaticUsers: &v1alpha1.StaticUsersLogin{HtpasswdSecretRef: v1alpha1.SecretKeyRef{Name: "users", Key: "htpasswd"}}},
		ReplayStore: &v1alpha1.ReplayStoreSpec{Type: v1alpha1.ReplayStoreRedis, Redis: &v1alpha1.RedisReplayStore{AddressSecretRef: v1alpha1.SecretKeyRef{Name: "redis", Key: "url"}}},
	}}
	client := func(name string, mutate func(*v1alpha1.LivePersonAuthClient)) *v1alpha1.LivePersonAuthClient {
		c := &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{v1alpha1.AnnotationGeneratedClientID: "lp-" + name}},
			Spec: v1alpha1.LivePersonAuthClientSpec{TokenServerRef: v1alpha1.LocalObjectReference{Name: "brand"}, Flow: v1alpha1.FlowCode}}
		if mutate != nil {
			mutate(c)
		}
		return c
	}
	now := metav1.Now()
	clients := []*v1alpha1.LivePersonAuthClient{
		client("generated", nil),
		client("brand-chosen", func(c *v1alpha1.LivePersonAuthClient) {
			c.Spec.ClientSecretRef = &v1alpha1.SecretKeyRef{Name: "lp", Key: "secret"}
			c.Spec.Encryption = &v1alpha1.EncryptionSpec{KeysSecretRef: v1alpha1.LocalObjectReference{Name: "lp-keys"}}
		}),
		client("weak", func(c *v1alpha1.LivePersonAuthClient) {
			c.Spec.ClientSecretRef = &v1alpha1.SecretKeyRef{Name: "weak", Key: "secret"}
		}),
		// Its "encryption keys" are another client's Secret: nothing of it may be copied.
		client("snooper", func(c *v1alpha1.LivePersonAuthClient) {
			c.Spec.Flow = v1alpha1.FlowImplicit
			c.Spec.Encryption = &v1alpha1.EncryptionSpec{KeysSecretRef: v1alpha1.LocalObjectReference{Name: "generated-client"}}
		}),
		client(strings.Repeat("long-name.", 25), nil),
		client("missing", func(c *v1alpha1.LivePersonAuthClient) {
			c.Spec.ClientSecretRef = &v1alpha1.SecretKeyRef{Name: "nope", Key: "x"}
		}),
		client("elsewhere", func(c *v1alpha1.LivePersonAuthClient) { c.Spec.TokenServerRef.Name = "other" }),
		client("leaving", func(c *v1alpha1.LivePersonAuthClient) { c.DeletionTimestamp = &now }),
		client("implicit", func(c *v1alpha1.LivePersonAuthClient) { c.Spec.Flow = v1alpha1.FlowImplicit }),
	}
	secrets := map[string]*corev1.Secret{
		"generated-client":                           {Data: map[string][]byte{v1alpha1.ClientSecretKey: []byte("Hn4vB8xK1qW7tZ3mR9pL6jC2dF5gY0sE")}},
		strings.Repeat("long-name.", 25) + "-client": {Data: map[string][]byte{v1alpha1.ClientSecretKey: []byte("Hn4vB8xK1qW7tZ3mR9pL6jC2dF5gY0sE")}},
		"elsewhere-client":                           {Data: map[string][]byte{v1alpha1.ClientSecretKey: []byte("x")}},
		"leaving-client":                             {Data: map[string][]byte{v1alpha1.ClientSecretKey: []byte("x")}},
		"implicit-client":                            {Data: map[string][]byte{v1alpha1.ClientSecretKey: []byte("x")}},
		"lp":                                         {Data: map[string][]byte{"secret": []byte("Tq2wE8rY5uI1oP7aS4dF9gH3jK6lZ0xC")}},
		"weak":                                       {Data: map[string][]byte{"secret": []byte("Password1!Password1!Password1!Pa")}},
		"lp-keys":                                    {Data: map[string][]byte{"kid-1": []byte(lpKey)}},
		"users":                                      {Data: map[string][]byte{"htpasswd": []byte("ada:$2y$...")}},
		"redis":                                      {Data: map[string][]byte{"url": []byte("redis://r:6379/0")}},
	}
	data := secretset.Compile(ts, clients, func(n string) *corev1.Secret { return secrets[n] })

	for name, secret := range map[string]string{"generated": "Hn4vB8xK1qW7tZ3mR9pL6jC2dF5gY0sE", "brand-chosen": "Tq2wE8rY5uI1oP7aS4dF9gH3jK6lZ0xC"} {
		got, err := secretset.ClientSecretDigest(data, name)
		if err != nil || got != sha256.Sum256([]byte(secret)) {
			t.Errorf("%s: digest %x, %v; want the SHA-256 of its secret", name, got, err)
		}
	}
	// "weak" is refused in its status and never served: /token would have no defence for it.
	for _, name := range []string{"weak", "missing", "elsewhere", "leaving", "implicit"} {
		if _, err := secretset.ClientSecretDigest(data, name); err == nil {
			t.Errorf("%s: has a digest, want none", name)
		}
	}
	for k, v := range data {
		for _, secret := range []string{"Hn4vB8xK1qW7tZ3mR9pL6jC2dF5gY0sE", "Tq2wE8rY5uI1oP7aS4dF9gH3jK6lZ0xC"} {
			if string(v) == secret {
				t.Errorf("data[%s] holds a client secret in the clear", k)
			}
		}
	}
	if keys, err := secretset.EncryptionKeys(data, "brand-chosen"); err != nil || string(keys["kid-1"]) != lpKey {
		t.Errorf("encryption keys = %v, %v", keys, err)
	}
	if _, err := secretset.EncryptionKeys(data, "snooper"); err == nil {
		t.Error("another client's Secret was copied as encryption keys")
	}
	if _, err := secretset.ClientSecretDigest(data, strings.Repeat("long-name.", 25)); err != nil {
		t.Errorf("a client with a 250-character name: %v", err)
	}
	for k := range data {
		if len(k) > 253 {
			t.Errorf("data key of %d characters: the API server refuses the Secret", len(k))
		}
	}
	if got := string(secretset.Login(data)); got != "ada:$2y$..." {
		t.Errorf("login = %q", got)
	}
	if got := secretset.RedisURL(data); got != "redis://r:6379/0" {
		t.Errorf("redis URL = %q", got)
	}
}

// Served compares what the set holds with what the client has now: a rotated LivePerson key or
// secret is not served until the set carries it.
func TestServedMeansTheCurrentSecretAndKeys(t *testing.T) {
	keyText := func() string {
		priv, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
		return base64.StdEncoding.EncodeToString(der)
	}
	ts := &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand"}}
	c := &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "lp"}, Spec: v1alpha1.LivePersonAuthClientSpec{
		TokenServerRef: v1alpha1.LocalObjectReference{Name: "brand"}, Flow: v1alpha1.FlowCode, ClientID: "brand-lp",
		Encryption: &v1alpha1.EncryptionSpec{KeysSecretRef: v1alpha1.LocalObjectReference{Name: "lp-keys"}}}}
	secret := []byte("Hn4vB8xK1qW7tZ3mR9pL6jC2dF5gY0sE")
	keys := map[string][]byte{"kid-1": []byte(keyText())}
	secrets := map[string]*corev1.Secret{"lp-client": {Data: map[string][]byte{v1alpha1.ClientSecretKey: secret}}, "lp-keys": {Data: keys}}
	data := secretset.Compile(ts, []*v1alpha1.LivePersonAuthClient{c}, func(n string) *corev1.Secret { return secrets[n] })
	if !secretset.Served(data, c, c.EffectiveClientID(), secret, keys) {
		t.Fatal("the compiled set does not serve the client it was compiled from")
	}
	if secretset.Served(data, c, c.EffectiveClientID(), []byte("Tq2wE8rY5uI1oP7aS4dF9gH3jK6lZ0xC"), keys) {
		t.Error("served with a secret the set does not carry")
	}
	if secretset.Served(data, c, c.EffectiveClientID(), secret, map[string][]byte{"kid-2": []byte(keyText())}) {
		t.Error("served with encryption keys the set does not carry (LivePerson rotated its key)")
	}
}

// Regression: the token server took a generated client id from the annotation, which whoever
// edits a client can change. The set carries only the id the operator's records agree with.
func TestEditedGeneratedIDIsNotAccepted(t *testing.T) {
	ts := &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand"}}
	owner := true
	c := &v1alpha1.LivePersonAuthClient{
		ObjectMeta: metav1.ObjectMeta{Name: "lp", UID: "uid-lp", Annotations: map[string]string{v1alpha1.AnnotationGeneratedClientID: "victims-id"}},
		Spec:       v1alpha1.LivePersonAuthClientSpec{TokenServerRef: v1alpha1.LocalObjectReference{Name: "brand"}, Flow: v1alpha1.FlowImplicit},
		Status:     v1alpha1.LivePersonAuthClientStatus{ClientID: "lp-generated"},
	}
	data := secretset.Compile(ts, []*v1alpha1.LivePersonAuthClient{c}, func(string) *corev1.Secret { return nil })
	if got := secretset.AcceptedClientID(data, "lp"); got != "" {
		t.Errorf("implicit client: accepted %q, want nothing (status records lp-generated)", got)
	}
	c.Spec.Flow = v1alpha1.FlowCode
	c.Status.ClientID = ""
	generated := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{OwnerReferences: []metav1.OwnerReference{{Kind: "LivePersonAuthClient", Name: "lp", UID: "uid-lp", Controller: &owner}}},
		Data: map[string][]byte{v1alpha1.ClientIDKey: []byte("lp-generated"), v1alpha1.ClientSecretKey: []byte("Hn4vB8xK1qW7tZ3mR9pL6jC2dF5gY0sE")}}
	data = secretset.Compile(ts, []*v1alpha1.LivePersonAuthClient{c}, func(n string) *corev1.Secret {
		if n == "lp-client" {
			return generated
		}
		return nil
	})
	if got := secretset.AcceptedClientID(data, "lp"); got != "" {
		t.Errorf("code client: accepted %q, want nothing (its Secret records lp-generated)", got)
	}
	c.Annotations[v1alpha1.AnnotationGeneratedClientID] = "lp-generated" // put back
	data = secretset.Compile(ts, []*v1alpha1.LivePersonAuthClient{c}, func(n string) *corev1.Secret { return generated })
	if got := secretset.AcceptedClientID(data, "lp"); got != "lp-generated" {
		t.Errorf("accepted %q, want lp-generated", got)
	}
}

// A long client name is replaced by a digest in data keys; no other client can be named so as
// to land on the same entries.
func TestLongNamesCannotBeImpersonated(t *testing.T) {
	long := strings.Repeat("a", 230)
	for _, k := range secretset.ClientKeys(long) {
		if !strings.HasPrefix(k, "client._") {
			t.Errorf("data key %q: want a digest after an '_' no object name holds", k)
		}
	}
	digestName := strings.TrimSuffix(strings.TrimPrefix(secretset.ClientKeys(long)[0], "client."), ".secret")
	for _, name := range []string{digestName[1:], "sha256-" + digestName[1:]} {
		for i, k := range secretset.ClientKeys(name) {
			if k == secretset.ClientKeys(long)[i] {
				t.Errorf("client %q shares data key %q with the long-named client", name, k)
			}
		}
	}
}

// Regression: a Secret named like a client's generated Secret, created by anyone who may create
// Secrets before the client existed, had its digest served: its value redeemed codes at /token
// while the client itself said the Secret was not its own.
func TestOnlyTheGeneratedSecretTheClientOwnsIsServed(t *testing.T) {
	t.Parallel()
	ts := &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand"}}
	c := &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "lp", UID: "uid-lp",
		Annotations: map[string]string{v1alpha1.AnnotationGeneratedClientID: "lp-id"}},
		Spec: v1alpha1.LivePersonAuthClientSpec{TokenServerRef: v1alpha1.LocalObjectReference{Name: "brand"}, Flow: v1alpha1.FlowCode}}
	value := []byte("k3Jd93-Hs82bXq0Zp4Lm7Vt1Nc6Wy5Re2Ua8Io9Pf")
	secret := func(owners ...metav1.OwnerReference) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "lp-client", OwnerReferences: owners},
			Data: map[string][]byte{v1alpha1.ClientIDKey: []byte("lp-id"), v1alpha1.ClientSecretKey: value}}
	}
	yes := true
	for _, tc := range []struct {
		name   string
		secret *corev1.Secret
		served bool
	}{
		{"planted, no owner", secret(), false},
		{"owned by an earlier client of that name", secret(metav1.OwnerReference{APIVersion: "auth.lpauth.dev/v1alpha1", Kind: "LivePersonAuthClient", Name: "lp", UID: "uid-gone", Controller: &yes}), false},
		{"owned by something else", secret(metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "lp", UID: "uid-lp", Controller: &yes}), false},
		{"the client's own", secret(metav1.OwnerReference{APIVersion: "auth.lpauth.dev/v1alpha1", Kind: "LivePersonAuthClient", Name: "lp", UID: "uid-lp", Controller: &yes}), true},
	} {
		data := secretset.Compile(ts, []*v1alpha1.LivePersonAuthClient{c}, func(name string) *corev1.Secret {
			if name == "lp-client" {
				return tc.secret
			}
			return nil
		})
		_, err := secretset.ClientSecretDigest(data, "lp")
		if served := err == nil; served != tc.served {
			t.Errorf("%s: served %v, want %v", tc.name, served, tc.served)
		}
	}
}

// A flow Code client's generated id lives in the Secret the operator generated for it (written
// with the secret: one API write fewer per new client than an annotation): it is served under
// that id without an annotation, and never under the id of a Secret it does not control.
func TestGeneratedIDInTheClientsSecretIsAccepted(t *testing.T) {
	t.Parallel()
	ts := &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand"}}
	c := &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "lp", UID: "uid-lp"},
		Spec: v1alpha1.LivePersonAuthClientSpec{TokenServerRef: v1alpha1.LocalObjectReference{Name: "brand"}, Flow: v1alpha1.FlowCode}}
	yes := true
	secret := func(uid types.UID) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "lp-client", OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "auth.lpauth.dev/v1alpha1", Kind: "LivePersonAuthClient", Name: "lp", UID: uid, Controller: &yes}}},
			Data: map[string][]byte{v1alpha1.ClientIDKey: []byte("lp-in-secret"), v1alpha1.ClientSecretKey: []byte("k3Jd93-Hs82bXq0Zp4Lm7Vt1Nc6Wy5Re2Ua8Io9Pf")}}
	}
	for _, tc := range []struct {
		name   string
		secret *corev1.Secret
		want   string
	}{
		{"its own Secret", secret("uid-lp"), "lp-in-secret"},
		{"a former client's Secret (not adopted)", secret("uid-gone"), ""},
		{"no Secret yet", nil, ""},
	} {
		data := secretset.Compile(ts, []*v1alpha1.LivePersonAuthClient{c}, func(string) *corev1.Secret { return tc.secret })
		if got := secretset.AcceptedClientID(data, "lp"); got != tc.want {
			t.Errorf("%s: accepted %q, want %q", tc.name, got, tc.want)
		}
		if tc.want != "" && !secretset.Served(data, c, tc.want, []byte("k3Jd93-Hs82bXq0Zp4Lm7Vt1Nc6Wy5Re2Ua8Io9Pf"), nil) {
			t.Errorf("%s: not served under %q", tc.name, tc.want)
		}
	}
}
