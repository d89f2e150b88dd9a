package controllers_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/controllers"
	"github.com/lpauth/lpauth-operator/controllers/workload"
)

// issuerFor is a TokenServer issuer of its own for each namespace: TokenServers sharing one are
// flagged (IssuerUnique), and specs run side by side.
func issuerFor(ns string) string { return "https://" + ns + ".brand.example" }

// newServer creates a SigningKey and a TokenServer using it, and waits for the key.
// newServingServer is newServer whose Deployment reports an available replica, as a cluster's
// controllers would (envtest runs none): its clients can become Ready.
func newServingServer(ns, name string) *v1alpha1.TokenServer {
	ts := newServer(ns, name)
	markServing(ts)
	return ts
}

// markServing waits for the TokenServer's Deployment and reports it available.
func markServing(ts *v1alpha1.TokenServer) {
	d := &appsv1.Deployment{}
	Eventually(func() error {
		return k8s.Get(ctx, client.ObjectKey{Namespace: ts.Namespace, Name: workload.Name(ts)}, d)
	}).WithTimeout(5 * time.Second).Should(Succeed())
	markAvailable(d, 1)
}

func newServer(ns, name string) *v1alpha1.TokenServer {
	sk := newSigningKeyNamed(ns, name+"-keys", v1alpha1.ES256)
	ready(sk)
	ts := &v1alpha1.TokenServer{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       v1alpha1.TokenServerSpec{Issuer: issuerFor(ns), SigningKeyRef: v1alpha1.LocalObjectReference{Name: sk.Name}},
	}
	Expect(k8s.Create(ctx, ts)).To(Succeed())
	return ts
}

func newSigningKeyNamed(ns, name string, alg v1alpha1.SigningAlgorithm) *v1alpha1.SigningKey {
	sk := &v1alpha1.SigningKey{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.SigningKeySpec{Algorithm: alg, Rotation: v1alpha1.KeyRotation{
			Every: metav1.Duration{Duration: every}, PublishAhead: metav1.Duration{Duration: publishAhead},
			RetainAfterRetire: metav1.Duration{Duration: retain},
		}},
	}
	Expect(k8s.Create(ctx, sk)).To(Succeed())
	return sk
}

func newClient(ns, name, server string, mutate ...func(*v1alpha1.LivePersonAuthClientSpec)) *v1alpha1.LivePersonAuthClient {
	c := &v1alpha1.LivePersonAuthClient{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.LivePersonAuthClientSpec{
			TokenServerRef: v1alpha1.LocalObjectReference{Name: server}, AccountID: "12345678",
		},
	}
	for _, m := range mutate {
		m(&c.Spec)
	}
	Expect(k8s.Create(ctx, c)).To(Succeed())
	return c
}

func getClient(c *v1alpha1.LivePersonAuthClient) *v1alpha1.LivePersonAuthClient {
	out := &v1alpha1.LivePersonAuthClient{}
	Expect(k8s.Get(ctx, client.ObjectKeyFromObject(c), out)).To(Succeed())
	return out
}

// clientCondition waits until the client's Ready condition has the status and reason, for its
// current generation, and returns the client.
func clientCondition(c *v1alpha1.LivePersonAuthClient, status metav1.ConditionStatus, reason string) *v1alpha1.LivePersonAuthClient {
	var out *v1alpha1.LivePersonAuthClient
	Eventually(func(g Gomega) {
		out = getClient(c)
		cond := meta.FindStatusCondition(out.Status.Conditions, v1alpha1.ConditionReady)
		g.Expect(cond).NotTo(BeNil())
		g.Expect(cond.ObservedGeneration).To(Equal(out.Generation))
		g.Expect([]string{string(cond.Status), cond.Reason}).To(Equal([]string{string(status), reason}), cond.Message)
	}).WithTimeout(5 * time.Second).Should(Succeed()) // Ready waits for the token server's secret set
	return out
}

func readyMessage(c *v1alpha1.LivePersonAuthClient) string {
	return meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionReady).Message
}

func userSecret(ns, name string, data map[string][]byte) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Data: data}
	Expect(k8s.Create(ctx, s)).To(Succeed())
	return s
}

func eventReasons(ns string) []string {
	evs := &eventsv1.EventList{}
	Expect(k8s.List(ctx, evs, client.InNamespace(ns))).To(Succeed())
	var out []string
	for _, e := range evs.Items {
		out = append(out, e.Reason)
	}
	return out
}

// eventsAbout lists the objects ("Kind/name") the namespace's events with this reason are about,
// one entry per event (a repeated event counts once: the recorder merges it into a series).
func eventsAbout(ns, reason string) []string {
	evs := &eventsv1.EventList{}
	Expect(k8s.List(ctx, evs, client.InNamespace(ns))).To(Succeed())
	var out []string
	for _, e := range evs.Items {
		if e.Reason == reason {
			out = append(out, e.Regarding.Kind+"/"+e.Regarding.Name)
		}
	}
	return out
}

func lpPublicKeyPEM(bits int) []byte {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	Expect(err).NotTo(HaveOccurred())
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	Expect(err).NotTo(HaveOccurred())
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

var _ = Describe("LivePersonAuthClient", func() {
	It("generates a client id and secret and lists every console value", func() {
		ns := newNamespace("lpac")
		newServingServer(ns, "brand")
		c := clientCondition(newClient(ns, "lp", "brand"), metav1.ConditionTrue, v1alpha1.ReasonReconciled)

		Expect(c.Status.ClientID).To(MatchRegexp(`^lp-[A-Za-z0-9_-]{22}$`))
		// The generated id is kept in the client's Secret, written with the secret: no write of
		// its own (one API write fewer per new client). An implicit client has no Secret of its
		// own and keeps it in the annotation.
		Expect(c.Annotations).NotTo(HaveKey(v1alpha1.AnnotationGeneratedClientID))
		implicit := clientCondition(newClient(ns, "implicit", "brand", func(s *v1alpha1.LivePersonAuthClientSpec) {
			s.Flow = v1alpha1.FlowImplicit
			s.RedirectURIs = []string{"https://brand.example/callback"}
		}), metav1.ConditionTrue, v1alpha1.ReasonReconciled)
		Expect(implicit.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationGeneratedClientID, implicit.Status.ClientID))
		Expect(implicit.Status.ClientID).NotTo(Equal(c.Status.ClientID))
		secret := &corev1.Secret{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: v1alpha1.ClientSecretName(c.Name)}, secret)).To(Succeed())
		Expect(metav1.IsControlledBy(secret, c)).To(BeTrue())
		Expect(secret.Labels).To(HaveKeyWithValue(v1alpha1.LabelTokenServerReads, "true"))
		Expect(string(secret.Data[v1alpha1.ClientIDKey])).To(Equal(c.Status.ClientID))
		Expect(secret.Data[v1alpha1.ClientSecretKey]).To(HaveLen(43), "256 bits, base64url")
		Expect(string(secret.Data[v1alpha1.ClientSecretKey])).NotTo(ContainSubstring(":"))

		issuer := issuerFor(ns)
		Expect(*c.Status.LivePersonConsole).To(Equal(v1alpha1.LivePersonConsole{
			AuthenticationType: "Code", PKCE: "Disabled", JWTIssuer: issuer,
			TokenEndpoint: issuer + "/token", ClientID: c.Status.ClientID,
			ClientSecretRef: &v1alpha1.SecretKeyRef{Name: secret.Name, Key: v1alpha1.ClientSecretKey},
			CertificateType: "JWKS Endpoint", JWKSEndpoint: issuer + "/.well-known/jwks.json",
			JSMethodName: controllers.DefaultJSMethodName,
		}))
		// No Event for the usual first secret (the Secret and status say it): an Event per new
		// client was a quarter of the API writes at 10,000 clients.
		Consistently(func() []string { return eventReasons(ns) }, "500ms").ShouldNot(ContainElement(v1alpha1.ReasonClientSecretGenerated))
	})

	It("waits for a missing TokenServer and SigningKey, then becomes Ready without polling", func() {
		ns := newNamespace("lpac")
		c := newClient(ns, "lp", "later")
		c = clientCondition(c, metav1.ConditionFalse, v1alpha1.ReasonTokenServerNotFound)
		Expect(readyMessage(c)).To(ContainSubstring(`TokenServer "later" not found`))

		ts := &v1alpha1.TokenServer{
			ObjectMeta: metav1.ObjectMeta{Name: "later", Namespace: ns},
			Spec:       v1alpha1.TokenServerSpec{Issuer: issuerFor(ns), SigningKeyRef: v1alpha1.LocalObjectReference{Name: "later-keys"}},
		}
		Expect(k8s.Create(ctx, ts)).To(Succeed())
		clientCondition(c, metav1.ConditionFalse, v1alpha1.ReasonSigningKeyNotFound)

		newSigningKeyNamed(ns, "later-keys", v1alpha1.ES256)
		clientCondition(c, metav1.ConditionFalse, v1alpha1.ReasonTokenServerNotReady)
		markServing(ts)
		clientCondition(c, metav1.ConditionTrue, v1alpha1.ReasonReconciled)
	})

	It("regenerates a deleted generated Secret and warns that the console needs the new secret", func() {
		ns := newNamespace("lpac")
		newServingServer(ns, "brand")
		c := clientCondition(newClient(ns, "lp", "brand"), metav1.ConditionTrue, v1alpha1.ReasonReconciled)
		old := &corev1.Secret{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: v1alpha1.ClientSecretName(c.Name)}, old)).To(Succeed())
		Expect(k8s.Delete(ctx, old)).To(Succeed())

		Eventually(func(g Gomega) {
			s := &corev1.Secret{}
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(old), s)).To(Succeed())
			g.Expect(s.UID).NotTo(Equal(old.UID))
			g.Expect(s.Data[v1alpha1.ClientSecretKey]).NotTo(Equal(old.Data[v1alpha1.ClientSecretKey]))
			g.Expect(string(s.Data[v1alpha1.ClientIDKey])).To(Equal(c.Status.ClientID), "the client id never changes")
		}).Should(Succeed())
		Eventually(func() []string { return eventReasons(ns) }).Should(ContainElement(v1alpha1.ReasonClientSecretRegenerated))
		clientCondition(c, metav1.ConditionTrue, v1alpha1.ReasonReconciled)
	})

	It("follows the brand's own Secret: changed, deleted and restored", func() {
		ns := newNamespace("lpac")
		newServingServer(ns, "brand")
		s := userSecret(ns, "lp-secret", map[string][]byte{"secret": []byte("k7Qw-9xZr2mLp4Vt8sN1bYc6Hj3Fd5Ge")})
		c := newClient(ns, "lp", "brand", func(s *v1alpha1.LivePersonAuthClientSpec) {
			s.ClientID = "brand-liveperson"
			s.ClientSecretRef = &v1alpha1.SecretKeyRef{Name: "lp-secret", Key: "secret"}
		})
		c = clientCondition(c, metav1.ConditionTrue, v1alpha1.ReasonReconciled)
		Expect(c.Status.ClientID).To(Equal("brand-liveperson"))
		Expect(c.Status.LivePersonConsole.ClientSecretRef).To(Equal(&v1alpha1.SecretKeyRef{Name: "lp-secret", Key: "secret"}))
		Expect(getSecret(s).Labels).To(HaveKeyWithValue(v1alpha1.LabelTokenServerReads, "true"), "labelled so the token server caches it")

		cur := getSecret(s)
		cur.Data["secret"] = []byte("short")
		Expect(k8s.Update(ctx, cur)).To(Succeed())
		c = clientCondition(c, metav1.ConditionFalse, v1alpha1.ReasonInvalidSecret)
		Expect(readyMessage(c)).To(ContainSubstring("must be 32 to 512 bytes, got 5"))

		Expect(k8s.Delete(ctx, cur)).To(Succeed())
		c = clientCondition(c, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound)
		Expect(readyMessage(c)).To(ContainSubstring(`Secret "lp-secret" not found`))

		// Re-created by hand, without our label: found by the 10s re-check of a missing Secret.
		userSecret(ns, "lp-secret", map[string][]byte{"secret": []byte("Zt4Hq8Lw2Nc6Vb9Xk1Pm5Rj3Sd7Gf0Ay")})
		Eventually(func() bool {
			return meta.IsStatusConditionTrue(getClient(c).Status.Conditions, v1alpha1.ConditionReady)
		}, "15s", "100ms").Should(BeTrue())
	})

	It("reports redirect URIs and lp_sdes that the token server would refuse", func() {
		ns := newNamespace("lpac")
		newServingServer(ns, "brand")
		c := clientCondition(newClient(ns, "bad-uri", "brand", func(s *v1alpha1.LivePersonAuthClientSpec) {
			s.RedirectURIs = []string{"http://brand.example/cb", "prefix:https://brand.example"}
		}), metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec)
		Expect(readyMessage(c)).To(And(ContainSubstring("redirectURIs[0]"), ContainSubstring("must use https"),
			ContainSubstring("redirectURIs[1]"), ContainSubstring("a prefix must end with '/'")))

		c = clientCondition(newClient(ns, "bad-sdes", "brand", func(s *v1alpha1.LivePersonAuthClientSpec) {
			s.IDToken.LPSdes = []apiextensionsv1.JSON{{Raw: []byte(`{"type":"ctmrinfo","info":{"customerID":"x"}}`)}}
		}), metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec)
		Expect(readyMessage(c)).To(ContainSubstring("idToken.lpSdes: lp_sdes[0].info.customerID: unknown field"))

		// Fixing the spec is enough: the new generation is reconciled.
		cur := getClient(c)
		cur.Spec.IDToken.LPSdes = []apiextensionsv1.JSON{{Raw: []byte(`{"type":"ctmrinfo","info":{"customerId":"x"}}`)}}
		Expect(k8s.Update(ctx, cur)).To(Succeed())
		clientCondition(c, metav1.ConditionTrue, v1alpha1.ReasonReconciled)
	})

	It("checks LivePerson's encryption keys", func() {
		ns := newNamespace("lpac")
		newServingServer(ns, "brand")
		userSecret(ns, "lp-jwe", map[string][]byte{"lp-2026": lpPublicKeyPEM(2048), "lp-2025": lpPublicKeyPEM(2048)})
		userSecret(ns, "lp-jwe-weak", map[string][]byte{"weak": lpPublicKeyPEM(1024)})
		enc := func(secret, kid string) func(*v1alpha1.LivePersonAuthClientSpec) {
			return func(s *v1alpha1.LivePersonAuthClientSpec) {
				s.Flow = v1alpha1.FlowImplicit
				s.Encryption = &v1alpha1.EncryptionSpec{KeysSecretRef: v1alpha1.LocalObjectReference{Name: secret}, KeyID: kid}
			}
		}
		clientCondition(newClient(ns, "good", "brand", enc("lp-jwe", "lp-2026")), metav1.ConditionTrue, v1alpha1.ReasonReconciled)
		c := clientCondition(newClient(ns, "which", "brand", enc("lp-jwe", "")), metav1.ConditionFalse, v1alpha1.ReasonInvalidSecret)
		Expect(readyMessage(c)).To(ContainSubstring("set encryption.keyID"))
		c = clientCondition(newClient(ns, "weak", "brand", enc("lp-jwe-weak", "")), metav1.ConditionFalse, v1alpha1.ReasonInvalidSecret)
		Expect(readyMessage(c)).To(ContainSubstring("RSA key of 1024 bits"))
		c = clientCondition(newClient(ns, "none", "brand", enc("missing", "")), metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound)

		implicit := getClient(clientCondition(newClient(ns, "implicit", "brand", enc("lp-jwe", "lp-2025")), metav1.ConditionTrue, v1alpha1.ReasonReconciled))
		Expect(implicit.Status.LivePersonConsole.TokenEndpoint).To(BeEmpty(), "the implicit flow has no token endpoint")
		Expect(implicit.Status.LivePersonConsole.ClientSecretRef).To(BeNil())
	})

	It("serves two clients from one TokenServer, and 200 created at once", func() {
		ns := newNamespace("lpac")
		newServingServer(ns, "brand")
		a := clientCondition(newClient(ns, "a", "brand"), metav1.ConditionTrue, v1alpha1.ReasonReconciled)
		b := clientCondition(newClient(ns, "b", "brand"), metav1.ConditionTrue, v1alpha1.ReasonReconciled)
		Expect(a.Status.ClientID).NotTo(Equal(b.Status.ClientID))

		start := time.Now()
		var wg sync.WaitGroup
		for i := range 200 {
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				newClient(ns, fmt.Sprintf("many-%03d", i), "brand")
			}()
		}
		wg.Wait()
		Eventually(func() int {
			list := &v1alpha1.LivePersonAuthClientList{}
			Expect(k8s.List(ctx, list, client.InNamespace(ns))).To(Succeed())
			n := 0
			for _, c := range list.Items {
				if meta.IsStatusConditionTrue(c.Status.Conditions, v1alpha1.ConditionReady) {
					n++
				}
			}
			return n
		}, "60s", "100ms").Should(Equal(202))
		AddReportEntry("200 clients created at once to all Ready", time.Since(start).String())
	})

	It("holds a PEM-mode rotation until the console is updated, then switches at once", func() {
		ns := newNamespace("lpac")
		ts := newServingServer(ns, "brand")
		c := clientCondition(newClient(ns, "pem", "brand", func(s *v1alpha1.LivePersonAuthClientSpec) {
			s.PublicKeyMode = v1alpha1.PublicKeyPEM
		}), metav1.ConditionTrue, v1alpha1.ReasonReconciled)
		sk := get(&v1alpha1.SigningKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: ts.Spec.SigningKeyRef.Name}})
		Expect(c.Status.LivePersonConsole.CertificateType).To(Equal("JWT Public Key"))
		Expect(c.Status.LivePersonConsole.JWTPublicKey).To(Equal(sk.Status.ActivePublicKey))
		Expect(meta.IsStatusConditionFalse(c.Status.Conditions, v1alpha1.ConditionConsoleUpdateRequired)).To(BeTrue())
		active, next := sk.Status.ActiveKeyID, keyIn(sk, v1alpha1.KeyNext).KeyID

		clock.Step(every + time.Hour)
		poke(sk)
		Eventually(func() string {
			r := meta.FindStatusCondition(get(sk).Status.Conditions, v1alpha1.ConditionRotating)
			return r.Reason
		}).Should(Equal(v1alpha1.ReasonRotationHeld))
		Expect(get(sk).Status.ActiveKeyID).To(Equal(active), "the rotation is held")
		Eventually(func(g Gomega) {
			cond := meta.FindStatusCondition(getClient(c).Status.Conditions, v1alpha1.ConditionConsoleUpdateRequired)
			g.Expect(cond).NotTo(BeNil())
			g.Expect(cond.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(cond.Message).To(And(ContainSubstring(next), ContainSubstring(get(sk).Status.NextPublicKey)))
		}).Should(Succeed())

		cur := getClient(c)
		base := cur.DeepCopy()
		metav1.SetMetaDataAnnotation(&cur.ObjectMeta, v1alpha1.AnnotationConsoleUpdated, next)
		Expect(k8s.Patch(ctx, cur, client.MergeFrom(base))).To(Succeed())

		Eventually(func() string { return get(sk).Status.ActiveKeyID }).Should(Equal(next))
		Eventually(func(g Gomega) {
			got := getClient(c)
			g.Expect(got.Status.LivePersonConsole.JWTPublicKey).To(Equal(get(sk).Status.ActivePublicKey))
			g.Expect(meta.IsStatusConditionFalse(got.Status.Conditions, v1alpha1.ConditionConsoleUpdateRequired)).To(BeTrue())
		}).Should(Succeed())
	})

	// Regression: two clients with one spec.clientID were both Ready, and the token server served
	// whichever its cache listed first.
	// Two PEM-mode clients of one SigningKey: the key that signs is one for both, so the one that
	// pastes first holds a key that does not sign yet. That is said (ConsoleKeyAhead, not Ready),
	// and the rotation waits for the other.
	It("says which of two PEM-mode clients holds a key ahead, and rotates once both acknowledged (PEMClientsAcknowledgeApart)", func() {
		ns := newNamespace("lpac")
		ts := newServingServer(ns, "brand")
		pem := func(s *v1alpha1.LivePersonAuthClientSpec) { s.PublicKeyMode = v1alpha1.PublicKeyPEM }
		first := clientCondition(newClient(ns, "first", "brand", pem), metav1.ConditionTrue, v1alpha1.ReasonReconciled)
		second := clientCondition(newClient(ns, "second", "brand", pem), metav1.ConditionTrue, v1alpha1.ReasonReconciled)
		sk := get(&v1alpha1.SigningKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: ts.Spec.SigningKeyRef.Name}})
		active, next := sk.Status.ActiveKeyID, keyIn(sk, v1alpha1.KeyNext).KeyID

		clock.Step(every + time.Hour)
		poke(sk)
		Eventually(func() string {
			return meta.FindStatusCondition(get(sk).Status.Conditions, v1alpha1.ConditionRotating).Reason
		}).
			Should(Equal(v1alpha1.ReasonRotationHeld))
		consoleReason := func(c *v1alpha1.LivePersonAuthClient) string {
			cond := meta.FindStatusCondition(getClient(c).Status.Conditions, v1alpha1.ConditionConsoleUpdateRequired)
			if cond == nil {
				return ""
			}
			return cond.Reason
		}
		for _, c := range []*v1alpha1.LivePersonAuthClient{first, second} {
			Eventually(func() string { return consoleReason(c) }).Should(Equal(v1alpha1.ReasonNewKeyPending), c.Name)
		}

		annotateObject(first, v1alpha1.AnnotationConsoleUpdated, next)
		Eventually(func() string { return consoleReason(first) }).Should(Equal(v1alpha1.ReasonConsoleKeyAhead))
		clientCondition(first, metav1.ConditionFalse, v1alpha1.ReasonConsoleKeyAhead)
		Consistently(func() string { return get(sk).Status.ActiveKeyID }, "1s").Should(Equal(active), "held for the second client")
		Expect(consoleReason(second)).To(Equal(v1alpha1.ReasonNewKeyPending))
		Expect(meta.IsStatusConditionTrue(getClient(second).Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue(),
			"the second client's console still holds the key that signs")

		annotateObject(second, v1alpha1.AnnotationConsoleUpdated, next)
		Eventually(func() string { return get(sk).Status.ActiveKeyID }).Should(Equal(next))
		for _, c := range []*v1alpha1.LivePersonAuthClient{first, second} {
			Eventually(func() string { return consoleReason(c) }).Should(Equal(v1alpha1.ReasonConsoleUpToDate), c.Name)
			clientCondition(c, metav1.ConditionTrue, v1alpha1.ReasonReconciled)
		}
	})

	It("keeps a client id for the older client: the younger is not Ready until the older goes (ClientIDBelongsToOneClient)", func() {
		ns := newNamespace("lpac")
		newServingServer(ns, "brand")
		first := clientCondition(newClient(ns, "real", "brand", func(s *v1alpha1.LivePersonAuthClientSpec) { s.ClientID = "shared-id" }),
			metav1.ConditionTrue, v1alpha1.ReasonReconciled)
		time.Sleep(1100 * time.Millisecond) // creation times are kept to the second
		second := newClient(ns, "attacker", "brand", func(s *v1alpha1.LivePersonAuthClientSpec) {
			s.ClientID = "shared-id"
			s.RedirectURIs = []string{"https://evil.example/callback"}
		})
		second = clientCondition(second, metav1.ConditionFalse, v1alpha1.ReasonClientIDConflict)
		Expect(readyMessage(second)).To(ContainSubstring(`client id "shared-id" is already used by LivePersonAuthClient real`))
		Eventually(func() []string { return eventReasons(ns) }).Should(ContainElement(v1alpha1.ReasonClientIDConflict))
		Consistently(func() metav1.ConditionStatus {
			return meta.FindStatusCondition(getClient(first).Status.Conditions, v1alpha1.ConditionReady).Status
		}, "1s").Should(Equal(metav1.ConditionTrue), "the older client keeps its id")

		Expect(k8s.Delete(ctx, first)).To(Succeed())
		clientCondition(second, metav1.ConditionTrue, v1alpha1.ReasonReconciled)
	})

	It("puts back a generated client id edited in its annotation (GeneratedClientIDCannotBeTaken)", func() {
		ns := newNamespace("lpac")
		newServingServer(ns, "brand")
		c := clientCondition(newClient(ns, "lp", "brand"), metav1.ConditionTrue, v1alpha1.ReasonReconciled)
		generated := c.Status.ClientID
		cur := getClient(c)
		patch := client.MergeFrom(cur.DeepCopy())
		// The id is kept in the client's Secret, so this adds the annotation.
		metav1.SetMetaDataAnnotation(&cur.ObjectMeta, v1alpha1.AnnotationGeneratedClientID, "someone-elses-id")
		Expect(k8s.Patch(ctx, cur, patch)).To(Succeed())
		Eventually(func() string { return getClient(c).Annotations[v1alpha1.AnnotationGeneratedClientID] }).Should(Equal(generated))
		Eventually(func() []string { return eventReasons(ns) }).Should(ContainElement(v1alpha1.ReasonGeneratedClientIDRestored))
		Expect(getClient(c).Status.ClientID).To(Equal(generated))
	})

	// Regression: a manual rotation or a revoke changed the key a PEM-mode client's console must
	// hold while ConsoleUpdateRequired stayed False and every object said Ready.
	It("never changes a PEM-mode client's key silently: manual rotation is held, forcing or revoking says so (PEMKeyNeverChangesSilently)", func() {
		ns := newNamespace("lpac")
		ts := newServingServer(ns, "brand")
		c := clientCondition(newClient(ns, "pem", "brand", func(s *v1alpha1.LivePersonAuthClientSpec) {
			s.PublicKeyMode = v1alpha1.PublicKeyPEM
		}), metav1.ConditionTrue, v1alpha1.ReasonReconciled)
		sk := get(&v1alpha1.SigningKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: ts.Spec.SigningKeyRef.Name}})
		active, next := sk.Status.ActiveKeyID, keyIn(sk, v1alpha1.KeyNext).KeyID
		Eventually(func() string { return getClient(c).Status.AcknowledgedKeyID }).Should(Equal(active), "the key it was shown to paste")

		// A plain manual rotation waits for the console, like a scheduled one.
		annotate(sk, v1alpha1.AnnotationRotate, "ticket-7")
		Eventually(func() []string { return eventReasons(ns) }).Should(ContainElement(v1alpha1.ReasonRotationHeld))
		Consistently(func() string { return get(sk).Status.ActiveKeyID }, "1s").Should(Equal(active))

		// A forced one rotates, warns, and the client says its console must change.
		annotate(sk, v1alpha1.AnnotationRotate, v1alpha1.ForceRotatePrefix+"incident-9")
		Eventually(func() string { return get(sk).Status.ActiveKeyID }).Should(Equal(next))
		consoleOutdated := func(key string) {
			Eventually(func(g Gomega) {
				cond := meta.FindStatusCondition(getClient(c).Status.Conditions, v1alpha1.ConditionConsoleUpdateRequired)
				g.Expect(cond).NotTo(BeNil())
				g.Expect([]string{string(cond.Status), cond.Reason}).To(Equal([]string{"True", v1alpha1.ReasonConsoleKeyOutdated}))
				g.Expect(cond.Message).To(ContainSubstring(key))
			}).WithTimeout(5 * time.Second).Should(Succeed())
		}
		consoleOutdated(next)
		Eventually(func() []string { return eventReasons(ns) }).Should(ContainElements("ForcedRotationBreaksPEMClients", v1alpha1.ReasonConsoleKeyOutdated))

		// Acknowledged: up to date again.
		cur := getClient(c)
		patch := client.MergeFrom(cur.DeepCopy())
		metav1.SetMetaDataAnnotation(&cur.ObjectMeta, v1alpha1.AnnotationConsoleUpdated, next)
		Expect(k8s.Patch(ctx, cur, patch)).To(Succeed())
		Eventually(func() bool {
			return meta.IsStatusConditionFalse(getClient(c).Status.Conditions, v1alpha1.ConditionConsoleUpdateRequired)
		}).WithTimeout(5 * time.Second).Should(BeTrue())

		// Revoking the Active key says so too.
		annotate(get(sk), v1alpha1.AnnotationRevoke, next)
		Eventually(func() string { return get(sk).Status.ActiveKeyID }).ShouldNot(BeElementOf(next, active, ""))
		consoleOutdated(get(sk).Status.ActiveKeyID)
		Eventually(func() []string { return eventReasons(ns) }).Should(ContainElement("RevokeBreaksPEMClients"))

		// An acknowledgement naming no key is warned about, once.
		cur = getClient(c)
		patch = client.MergeFrom(cur.DeepCopy())
		metav1.SetMetaDataAnnotation(&cur.ObjectMeta, v1alpha1.AnnotationConsoleUpdated, "no-such-kid")
		Expect(k8s.Patch(ctx, cur, patch)).To(Succeed())
		Eventually(func() []string { return eventReasons(ns) }).Should(ContainElement("ConsoleKeyUnknown"))
	})

	// Regression: retainAfterRetire shorter than a client's token lifetime, or publishAhead
	// shorter than the JWKS cache, passed without a word; tokens then fail verification.
	It("warns when tokens outlive retired keys or a key signs before caches refresh (TimingIsChecked)", func() {
		ns := newNamespace("lpac")
		ts := newServingServer(ns, "brand")
		sk := get(&v1alpha1.SigningKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: ts.Spec.SigningKeyRef.Name}})
		var clients []*v1alpha1.LivePersonAuthClient
		for i := range 5 {
			clients = append(clients, newClient(ns, fmt.Sprintf("lp%d", i), "brand", func(s *v1alpha1.LivePersonAuthClientSpec) {
				s.IDToken.Lifetime = metav1.Duration{Duration: 2 * time.Hour}
			}))
		}
		for _, each := range clients {
			Expect(meta.IsStatusConditionTrue(clientCondition(each, metav1.ConditionTrue, v1alpha1.ReasonReconciled).Status.Conditions, v1alpha1.ConditionTimingValid)).To(BeTrue())
		}
		c := clients[0]

		base := sk.DeepCopy()
		sk.Spec.Rotation.RetainAfterRetire = metav1.Duration{Duration: 90 * time.Minute}
		sk.Spec.Rotation.PublishAhead = metav1.Duration{Duration: time.Minute}
		Expect(k8s.Patch(ctx, sk, client.MergeFrom(base))).To(Succeed())
		Eventually(func(g Gomega) {
			cond := meta.FindStatusCondition(getClient(c).Status.Conditions, v1alpha1.ConditionTimingValid)
			g.Expect(cond).NotTo(BeNil())
			g.Expect(cond.Reason).To(Equal(v1alpha1.ReasonRetainTooShort))
			g.Expect(cond.Message).To(And(ContainSubstring("2h0m0s"), ContainSubstring("1h30m0s"), ContainSubstring("2h5m0s")))
		}).WithTimeout(5 * time.Second).Should(Succeed())
		Eventually(func(g Gomega) {
			cond := meta.FindStatusCondition(get(sk).Status.Conditions, v1alpha1.ConditionTimingValid)
			g.Expect(cond).NotTo(BeNil())
			g.Expect(cond.Reason).To(Equal(v1alpha1.ReasonPublishAheadTooShort))
		}).WithTimeout(5 * time.Second).Should(Succeed())
		Expect(meta.IsStatusConditionTrue(getClient(c).Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue(), "a warning, not a reason for not Ready")

		// One edit of the SigningKey is one cause: one Warning, on the SigningKey, however many
		// clients it affects (each says so in its condition).
		for _, each := range clients {
			Eventually(func() bool {
				return meta.IsStatusConditionFalse(getClient(each).Status.Conditions, v1alpha1.ConditionTimingValid)
			}).WithTimeout(5*time.Second).Should(BeTrue(), each.Name)
		}
		Eventually(func() []string { return eventsAbout(ns, v1alpha1.ReasonRetainTooShort) }).Should(Equal([]string{"SigningKey/" + sk.Name}))
		Consistently(func() []string { return eventsAbout(ns, v1alpha1.ReasonRetainTooShort) }, "1s").Should(HaveLen(1))

		// A client whose own spec makes its tokens outlive the key is told on the client.
		newClient(ns, "long", "brand", func(s *v1alpha1.LivePersonAuthClientSpec) {
			s.IDToken.Lifetime = metav1.Duration{Duration: 3 * time.Hour}
		})
		Eventually(func() []string { return eventsAbout(ns, v1alpha1.ReasonRetainTooShort) }).
			Should(ConsistOf("SigningKey/"+sk.Name, "LivePersonAuthClient/long"))
	})
})

func getSecret(s *corev1.Secret) *corev1.Secret {
	out := &corev1.Secret{}
	Expect(k8s.Get(ctx, client.ObjectKeyFromObject(s), out)).To(Succeed())
	return out
}
