package controllers_test

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"os/exec"
	"regexp"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lpauth/lpauth-operator/api/keys"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/controllers/testenv"
)

const (
	every        = 720 * time.Hour
	publishAhead = 24 * time.Hour
	retain       = 25 * time.Hour
)

func newSigningKey(ns string, alg v1alpha1.SigningAlgorithm) *v1alpha1.SigningKey {
	return newSigningKeyNamed(ns, "keys", alg)
}

func get(sk *v1alpha1.SigningKey) *v1alpha1.SigningKey {
	out := &v1alpha1.SigningKey{}
	Expect(k8s.Get(ctx, client.ObjectKeyFromObject(sk), out)).To(Succeed())
	return out
}

// ready waits until the SigningKey is Ready for its current generation and returns it.
func ready(sk *v1alpha1.SigningKey) *v1alpha1.SigningKey {
	var out *v1alpha1.SigningKey
	Eventually(func(g Gomega) {
		out = get(sk)
		c := meta.FindStatusCondition(out.Status.Conditions, v1alpha1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
		g.Expect(c.ObservedGeneration).To(Equal(out.Generation))
	}).WithTimeout(5 * time.Second).Should(Succeed()) // key generation and two Secrets under -race on a busy machine
	return out
}

func keyIn(sk *v1alpha1.SigningKey, state v1alpha1.KeyState) v1alpha1.KeyStatus {
	for _, k := range sk.Status.Keys {
		if k.State == state {
			return k
		}
	}
	return v1alpha1.KeyStatus{}
}

func secretOf(sk *v1alpha1.SigningKey) *corev1.Secret {
	s := &corev1.Secret{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: sk.Namespace, Name: keys.SecretName(sk.Name)}, s)).To(Succeed())
	return s
}

func storedKeys(sk *v1alpha1.SigningKey) map[string]keys.Key {
	set, problems := keys.Decode(secretOf(sk).Data)
	Expect(problems).To(BeEmpty())
	out := map[string]keys.Key{}
	for _, k := range set {
		out[k.ID()] = k
	}
	return out
}

func annotate(sk *v1alpha1.SigningKey, key, value string) {
	cur := get(sk)
	base := cur.DeepCopy()
	if cur.Annotations == nil {
		cur.Annotations = map[string]string{}
	}
	cur.Annotations[key] = value
	Expect(k8s.Patch(ctx, cur, client.MergeFrom(base))).To(Succeed())
}

// poke makes the controller look again after the fake clock moved (in production, RequeueAfter
// does this at the due time; the fake clock does not move real timers).
func poke(sk *v1alpha1.SigningKey) { annotate(sk, "test.lpauth.dev/poke", time.Now().String()) }

var _ = Describe("SigningKey", func() {
	// Regression (make faults, tampering): a deleted key record was written again only at the
	// next hourly look, leaving the keys without their disaster copy for up to an hour.
	It("writes a deleted key record again at once (RecordIsWatched)", func() {
		ns := newNamespace("sk")
		sk := ready(newSigningKey(ns, v1alpha1.ES256))
		record := &corev1.Secret{}
		key := client.ObjectKey{Namespace: ns, Name: keys.RecordSecretName(sk.Name)}
		Expect(k8s.Get(ctx, key, record)).To(Succeed())
		Expect(k8s.Delete(ctx, record)).To(Succeed())
		Eventually(func(g Gomega) {
			again := &corev1.Secret{}
			g.Expect(k8s.Get(ctx, key, again)).To(Succeed())
			g.Expect(again.UID).NotTo(Equal(record.UID))
		}).WithTimeout(5 * time.Second).Should(Succeed())
	})

	It("creates an owned Secret with an Active and a Next key, and mirrors only public facts", func() {
		sk := ready(newSigningKey(newNamespace("sk"), v1alpha1.RS256))
		Expect(sk.Status.Keys).To(HaveLen(2))
		active, next := keyIn(sk, v1alpha1.KeyActive), keyIn(sk, v1alpha1.KeyNext)
		Expect(sk.Status.ActiveKeyID).To(Equal(active.KeyID))
		Expect(next.KeyID).NotTo(BeEmpty())
		Expect(sk.Status.NextRotationTime.Time).To(BeTemporally("~", active.ActivatesAt.Add(every), time.Second))

		der, err := base64.StdEncoding.DecodeString(sk.Status.ActivePublicKey)
		Expect(err).NotTo(HaveOccurred())
		pub, err := x509.ParsePKIXPublicKey(der)
		Expect(err).NotTo(HaveOccurred())
		Expect(pub.(*rsa.PublicKey).N.BitLen()).To(Equal(2048))

		secret := secretOf(sk)
		Expect(string(secret.Type)).To(Equal(v1alpha1.SecretTypeSigningKeys))
		Expect(metav1.IsControlledBy(secret, sk)).To(BeTrue())
		Expect(secret.Labels).To(HaveKeyWithValue(v1alpha1.LabelTokenServerReads, "true"))
		Expect(storedKeys(sk)).To(HaveKey(active.KeyID))
		Expect(storedKeys(sk)[active.KeyID].CanSign()).To(BeTrue())

		for _, c := range []string{v1alpha1.ConditionRotating, v1alpha1.ConditionDegraded} {
			cond := meta.FindStatusCondition(sk.Status.Conditions, c)
			Expect(cond).NotTo(BeNil())
			Expect(cond.Status).To(Equal(metav1.ConditionFalse), "%s: %s", c, cond.Message)
		}
		Eventually(func(g Gomega) {
			evs := &eventsv1.EventList{}
			g.Expect(k8s.List(ctx, evs, client.InNamespace(sk.Namespace))).To(Succeed())
			var reasons []string
			for _, e := range evs.Items {
				reasons = append(reasons, e.Reason)
			}
			g.Expect(reasons).To(ContainElements("KeyCreated", v1alpha1.ReasonKeysPublished))
		}).Should(Succeed())
	})

	It("writes nothing once settled, and shows its facts in kubectl get", func() {
		sk := ready(newSigningKey(newNamespace("sk"), v1alpha1.ES256))
		versions := func() []string { return []string{get(sk).ResourceVersion, secretOf(sk).ResourceVersion} }
		// The write after a change may be followed by one more status write from a reconcile
		// that read a cached copy from before it; after that, nothing may be written at all.
		var settled []string
		Eventually(func(g Gomega) {
			settled = versions()
			g.Consistently(versions, "500ms").Should(Equal(settled))
		}).Should(Succeed())
		Consistently(versions, "2s").Should(Equal(settled))

		kubectl, err := exec.LookPath("kubectl")
		if err != nil {
			Skip("kubectl is not on PATH")
		}
		dir := GinkgoT().TempDir()
		kubeconfig, err := testenv.Kubeconfig(env, dir)
		Expect(err).NotTo(HaveOccurred())
		// Its own discovery cache: the shared one is keyed by host:port, which another suite's
		// API server may have used without our CRDs.
		out, err := exec.Command(kubectl, "--kubeconfig", kubeconfig, "--cache-dir", dir+"/kubectl-cache", "get", "sk", "-n", sk.Namespace).CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		Expect(string(out)).To(MatchRegexp(`keys\s+ES256\s+` + regexp.QuoteMeta(get(sk).Status.ActiveKeyID) + `\s+\S+\s+True\s`))
	})

	It("rotates on schedule and removes the retired key when its window ends", func() {
		sk := ready(newSigningKey(newNamespace("sk"), v1alpha1.ES256))
		active, next := keyIn(sk, v1alpha1.KeyActive).KeyID, keyIn(sk, v1alpha1.KeyNext).KeyID

		clock.Step(every + time.Minute)
		poke(sk)
		Eventually(func() string { return get(sk).Status.ActiveKeyID }).Should(Equal(next))
		sk = get(sk)
		retired := keyIn(sk, v1alpha1.KeyRetired)
		Expect(retired.KeyID).To(Equal(active))
		Expect(retired.RemoveAt.Time).To(BeTemporally("~", clock.Now().Add(retain), time.Second))
		Expect(storedKeys(sk)).To(HaveKey(active), "the retired key must stay published")
		Expect(meta.IsStatusConditionTrue(sk.Status.Conditions, v1alpha1.ConditionRotating)).To(BeTrue())

		clock.Step(retain + time.Minute)
		poke(sk)
		Eventually(func() map[string]keys.Key { return storedKeys(sk) }).ShouldNot(HaveKey(active))
		Eventually(func() []v1alpha1.KeyStatus { return get(sk).Status.Keys }).Should(HaveLen(2))
	})

	It("rotates once per distinct rotate annotation, warning when the next key is too new", func() {
		sk := ready(newSigningKey(newNamespace("sk"), v1alpha1.ES256))
		next := keyIn(sk, v1alpha1.KeyNext).KeyID

		start := time.Now()
		annotate(sk, v1alpha1.AnnotationRotate, "ticket-1")
		Eventually(func() string { return get(sk).Status.ActiveKeyID }).WithPolling(5 * time.Millisecond).Should(Equal(next))
		AddReportEntry("annotate to status updated", time.Since(start).String())
		sk = ready(sk)
		Expect(sk.Status.LastRotateRequest).To(Equal("ticket-1"))
		c := meta.FindStatusCondition(sk.Status.Conditions, v1alpha1.ConditionRotating)
		Expect(c.Reason).To(Equal(v1alpha1.ReasonRotationEarly))

		poke(sk) // same rotate value, another change: no second rotation
		Consistently(func() string { return get(sk).Status.ActiveKeyID }, "1s").Should(Equal(next))
	})

	It("revokes the active key at once and activates a fresh one", func() {
		sk := ready(newSigningKey(newNamespace("sk"), v1alpha1.ES256))
		active, next := keyIn(sk, v1alpha1.KeyActive).KeyID, keyIn(sk, v1alpha1.KeyNext).KeyID
		annotate(sk, v1alpha1.AnnotationRevoke, active)
		Eventually(func() map[string]keys.Key { return storedKeys(sk) }).ShouldNot(HaveKey(active))
		// The Secret is written before status: wait for status to catch up.
		Eventually(func() string { return get(sk).Status.ActiveKeyID }).ShouldNot(BeElementOf(active, next, ""))
		sk = ready(sk)
		Expect(keyIn(sk, v1alpha1.KeyNext).KeyID).To(Equal(next))
		for _, k := range sk.Status.Keys {
			Expect(k.KeyID).NotTo(Equal(active))
		}
	})

	It("keeps publishing every key when its Secret is deleted", func() {
		sk := ready(newSigningKey(newNamespace("sk"), v1alpha1.ES256))
		active := keyIn(sk, v1alpha1.KeyActive).KeyID
		old := secretOf(sk)
		Expect(k8s.Delete(ctx, old)).To(Succeed())

		Eventually(func(g Gomega) {
			s := &corev1.Secret{}
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(old), s)).To(Succeed())
			g.Expect(s.UID).NotTo(Equal(old.UID))
		}).Should(Succeed())
		Eventually(func() *v1alpha1.SigningKey { return get(sk) }).Should(WithTransform(func(s *v1alpha1.SigningKey) bool {
			return meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.ConditionDegraded)
		}, BeTrue()))
		stored := storedKeys(sk)
		Expect(stored).To(HaveKey(active), "the lost active key must stay in the JWKS")
		Expect(stored[active].CanSign()).To(BeFalse())
		Expect(stored[active].State).To(Equal(v1alpha1.KeyRetired))
		sk = ready(sk)
		Expect(sk.Status.ActiveKeyID).NotTo(Equal(active))
		Expect(storedKeys(sk)[sk.Status.ActiveKeyID].CanSign()).To(BeTrue())
	})

	It("recovers what it can from a Secret with garbage in it", func() {
		sk := ready(newSigningKey(newNamespace("sk"), v1alpha1.ES256))
		active, next := keyIn(sk, v1alpha1.KeyActive).KeyID, keyIn(sk, v1alpha1.KeyNext).KeyID
		s := secretOf(sk)
		s.Data[keys.DataKey(next)] = []byte("{garbage")
		s.Data["notes"] = []byte("someone was here")
		Expect(k8s.Update(ctx, s)).To(Succeed())

		Eventually(func(g Gomega) {
			set, problems := keys.Decode(secretOf(sk).Data)
			g.Expect(problems).To(BeEmpty())
			g.Expect(set).To(HaveLen(2))
		}).Should(Succeed())
		Eventually(func() string { return keyIn(get(sk), v1alpha1.KeyNext).KeyID }).ShouldNot(Equal(next))
		sk = ready(sk)
		Expect(sk.Status.ActiveKeyID).To(Equal(active), "an intact active key is kept")
		Expect(keyIn(sk, v1alpha1.KeyNext).KeyID).NotTo(Equal(next))
		c := meta.FindStatusCondition(sk.Status.Conditions, v1alpha1.ConditionDegraded)
		Expect(c.Status).To(Equal(metav1.ConditionTrue))
		Expect(c.Message).To(ContainSubstring("unreadable"))
	})

	It("survives a write conflict without generating any key twice", func() {
		before, conflicts := keysGenerated.Load(), conflictsInjected.Load()
		sk := ready(newSigningKey(newNamespace("conflict"), v1alpha1.RS256))
		Expect(conflictsInjected.Load() - conflicts).To(Equal(int64(1)))
		Expect(keysGenerated.Load()-before).To(Equal(int64(2)), "one Active and one Next key, each generated once")
		Expect(storedKeys(sk)).To(HaveLen(2))
	})

	// Regression: status was a source of key material (recoverFromStatus). Whoever could patch
	// signingkeys/status could publish a key of their own and forge tokens for any sub.
	It("never publishes a key written into status (KeyMaterialNeverComesFromStatus)", func() {
		sk := ready(newSigningKey(newNamespace("sk"), v1alpha1.ES256))
		forged, err := keys.Generate(v1alpha1.ES256, 0)
		Expect(err).NotTo(HaveOccurred())
		pub, err := json.Marshal(forged.Public())
		Expect(err).NotTo(HaveOccurred())
		cur := get(sk)
		base := cur.DeepCopy()
		far := metav1.NewTime(clock.Now().Add(10 * 365 * 24 * time.Hour))
		cur.Status.Keys = append(cur.Status.Keys, v1alpha1.KeyStatus{
			KeyID: forged.KeyID, Algorithm: v1alpha1.ES256, State: v1alpha1.KeyRetired,
			CreatedAt: metav1.NewTime(clock.Now()), RetiresAt: &far, RemoveAt: &far, PublicJWK: string(pub),
		})
		Expect(k8s.Status().Patch(ctx, cur, client.MergeFrom(base))).To(Succeed())

		poke(sk)                                            // a reconcile that reads the forged status
		Expect(k8s.Delete(ctx, secretOf(sk))).To(Succeed()) // and one that recovers a lost Secret
		Eventually(func(g Gomega) {
			s := &corev1.Secret{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: sk.Namespace, Name: keys.SecretName(sk.Name)}, s)).To(Succeed())
			set, _ := keys.Decode(s.Data)
			g.Expect(set).NotTo(BeEmpty())
		}).Should(Succeed())
		Consistently(func() map[string]keys.Key { return storedKeys(sk) }, "1s").ShouldNot(HaveKey(forged.KeyID))
		Eventually(func() []string {
			var kids []string
			for _, k := range get(sk).Status.Keys {
				kids = append(kids, k.KeyID)
			}
			return kids
		}).ShouldNot(ContainElement(forged.KeyID))
	})

	It("restores a lost key from its own record for at most retainAfterRetire (RestoredKeyRemovalIsCapped)", func() {
		sk := ready(newSigningKey(newNamespace("sk"), v1alpha1.ES256))
		active := keyIn(sk, v1alpha1.KeyActive).KeyID
		record := &corev1.Secret{}
		Eventually(func() error {
			return k8s.Get(ctx, client.ObjectKey{Namespace: sk.Namespace, Name: keys.RecordSecretName(sk.Name)}, record)
		}).Should(Succeed())
		Expect(metav1.IsControlledBy(record, sk)).To(BeTrue())
		Expect(string(record.Data[keys.RecordDataKey])).NotTo(ContainSubstring(`"d":`), "the record holds public parts only")
		// A record edited to keep the key published for ten years.
		set, revoked, problems := keys.DecodeRecord(record.Data[keys.RecordDataKey])
		Expect(problems).To(BeEmpty())
		for i := range set {
			set[i].State, set[i].RemoveAt = v1alpha1.KeyRetired, clock.Now().Add(10*365*24*time.Hour)
		}
		data, err := keys.EncodeRecord(set, revoked)
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() error { // the operator may be writing it too
			cur := &corev1.Secret{}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(record), cur); err != nil {
				return err
			}
			cur.Data[keys.RecordDataKey] = data
			return k8s.Update(ctx, cur)
		}).Should(Succeed())

		Expect(k8s.Delete(ctx, secretOf(sk))).To(Succeed())
		Eventually(func(g Gomega) {
			s := &corev1.Secret{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: sk.Namespace, Name: keys.SecretName(sk.Name)}, s)).To(Succeed())
			set, _ := keys.Decode(s.Data)
			g.Expect(set).To(ContainElement(WithTransform(keys.Key.ID, Equal(active))))
		}).Should(Succeed())
		restored := storedKeys(sk)[active]
		Expect(restored.CanSign()).To(BeFalse())
		Expect(restored.State).To(Equal(v1alpha1.KeyRetired))
		Expect(restored.RemoveAt).To(BeTemporally("<=", clock.Now().Add(retain).Add(time.Second)))
	})

	// Regression: the revoke annotation held one kid; a second revoke written before the first
	// was handled lost the first, which kept signing.
	It("revokes every kid of a comma-separated list, one event each, and never publishes them again (RevocationIsASet)", func() {
		sk := ready(newSigningKey(newNamespace("sk"), v1alpha1.ES256))
		active, next := keyIn(sk, v1alpha1.KeyActive).KeyID, keyIn(sk, v1alpha1.KeyNext).KeyID
		activeEntry := secretOf(sk).Data[keys.DataKey(active)]
		annotate(sk, v1alpha1.AnnotationRevoke, active+", "+next)
		Eventually(func(g Gomega) {
			stored := storedKeys(sk)
			g.Expect(stored).NotTo(HaveKey(active))
			g.Expect(stored).NotTo(HaveKey(next))
			g.Expect(stored).To(HaveLen(2))
		}).Should(Succeed())
		Eventually(func() []string { return get(sk).Status.RevokedKeyIDs }).Should(ConsistOf(active, next))
		Eventually(func(g Gomega) {
			evs := &eventsv1.EventList{}
			g.Expect(k8s.List(ctx, evs, client.InNamespace(sk.Namespace))).To(Succeed())
			n := 0
			for _, e := range evs.Items {
				if e.Reason == v1alpha1.ReasonKeyRevoked {
					n++
				}
			}
			g.Expect(n).To(Equal(2))
		}).Should(Succeed())

		// A backup restored over the Secret brings the revoked Active key back: it is dropped.
		s := secretOf(sk)
		s.Data[keys.DataKey(active)] = activeEntry
		Expect(k8s.Update(ctx, s)).To(Succeed())
		Eventually(func() map[string]keys.Key { return storedKeys(sk) }).ShouldNot(HaveKey(active))
		Consistently(func() map[string]keys.Key { return storedKeys(sk) }, "1s").ShouldNot(HaveKey(active))
		// And a second revoke of the same kids does nothing more.
		Expect(ready(sk).Status.ActiveKeyID).NotTo(BeElementOf(active, next))
	})

	// Regression: a mistyped annotation (rotation instead of rotate) was ignored without a word.
	It("warns once about an annotation it does not act on, naming the ones it does (AnnotationsAreNeverSilentlyIgnored)", func() {
		sk := ready(newSigningKey(newNamespace("sk"), v1alpha1.ES256))
		active := sk.Status.ActiveKeyID
		annotate(sk, "auth.lpauth.dev/rotation", "now")
		Eventually(func(g Gomega) {
			evs := &eventsv1.EventList{}
			g.Expect(k8s.List(ctx, evs, client.InNamespace(sk.Namespace))).To(Succeed())
			var notes []string
			for _, e := range evs.Items {
				if e.Reason == "UnknownAnnotation" {
					notes = append(notes, e.Note)
				}
			}
			g.Expect(notes).To(ConsistOf(And(ContainSubstring("auth.lpauth.dev/rotation"), ContainSubstring(v1alpha1.AnnotationRotate))))
		}).Should(Succeed())
		Expect(get(sk).Status.ActiveKeyID).To(Equal(active))
	})

	// Regression: re-creating a SigningKey whose Secret survived (what a backup restore gives)
	// failed with "exists and is not owned", and the only way on threw the keys away.
	It("takes over its own keys after a restore, never a foreign Secret (KeysSurviveARestore)", func() {
		ns := newNamespace("sk")
		sk := ready(newSigningKey(ns, v1alpha1.ES256))
		active, next := sk.Status.ActiveKeyID, keyIn(sk, v1alpha1.KeyNext).KeyID
		// envtest runs no garbage collector: the Secrets stay, owned by a SigningKey that is
		// gone, as after a restore that brought back the Secrets before the SigningKey.
		Expect(k8s.Delete(ctx, sk)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(sk), &v1alpha1.SigningKey{}))
		}).Should(BeTrue())

		// Taken over only when someone allowed to edit the SigningKey says so, naming the Secret.
		again := newSigningKey(ns, v1alpha1.ES256)
		Eventually(func(g Gomega) {
			c := meta.FindStatusCondition(get(again).Status.Conditions, v1alpha1.ConditionReady)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(v1alpha1.ReasonKeysFound))
			g.Expect(c.Message).To(ContainSubstring(v1alpha1.AnnotationAdoptKeys + "=" + string(secretOf(again).UID)))
		}).WithTimeout(5 * time.Second).Should(Succeed())
		annotate(again, v1alpha1.AnnotationAdoptKeys, string(secretOf(again).UID))
		again = ready(again)
		Expect(again.Status.ActiveKeyID).To(Equal(active), "the restored Active key keeps signing")
		Expect(keyIn(again, v1alpha1.KeyNext).KeyID).To(Equal(next))
		Expect(metav1.IsControlledBy(secretOf(again), again)).To(BeTrue())
		Eventually(func() []string { return eventReasons(ns) }).Should(ContainElement("KeysAdopted"))

		// A Secret that is not ours (another type) is never taken over.
		other := newNamespace("sk")
		Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "keys-signing-keys", Namespace: other,
			Labels: map[string]string{v1alpha1.LabelSigningKey: "keys"}}, StringData: map[string]string{"x": "y"}})).To(Succeed())
		foreign := newSigningKey(other, v1alpha1.ES256)
		Eventually(func(g Gomega) {
			c := meta.FindStatusCondition(get(foreign).Status.Conditions, v1alpha1.ConditionReady)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Message).To(ContainSubstring("is not this SigningKey's"))
		}).WithTimeout(5 * time.Second).Should(Succeed())
	})
})
