package controllers_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// restored is a Secret as a backup restores it: same name, labels, type and data, new UID,
// without ownerReferences (the README says to strip them, or a garbage collector deletes it).
func restored(from *corev1.Secret, ns string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: from.Name, Namespace: ns, Labels: from.Labels, Annotations: from.Annotations},
		Type: from.Type, Data: from.Data}
	Expect(k8s.Create(ctx, s)).To(Succeed())
	return s
}

// readyReason waits for obj's Ready condition to have the reason, and returns its message.
func readyReason(obj client.Object, conditions func() []metav1.Condition, reason string) string {
	var msg string
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
		c := meta.FindStatusCondition(conditions(), v1alpha1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(reason), c.Message)
		msg = c.Message
	}).WithTimeout(5 * time.Second).Should(Succeed())
	return msg
}

func annotateObject(obj client.Object, key, value string) {
	Expect(k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
	patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
	a := obj.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[key] = value
	obj.SetAnnotations(a)
	Expect(k8s.Patch(ctx, obj, patch)).To(Succeed())
}

var _ = Describe("Restore", func() {
	// Regression: a TokenServer or client re-created next to its restored Secret refused it
	// ("exists and is not owned"), and the only way forward threw away the issue-API credential
	// the brand's backends hold and the client secret LivePerson's console holds.
	It("keeps a restored TokenServer's credentials and a client's secret once told to (RestoredSecretsAreAdopted)", func() {
		from := newNamespace("backup")
		ts := newServingServer(from, "brand")
		c := clientCondition(newClient(from, "lp", "brand"), metav1.ConditionTrue, v1alpha1.ReasonReconciled)
		creds := credentialsOf(ts)
		clientSecret := &corev1.Secret{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: from, Name: v1alpha1.ClientSecretName(c.Name)}, clientSecret)).To(Succeed())

		// The restore: the Secrets first (as backup tools order them), then the objects, with
		// the client's generated id in its annotation.
		to := newNamespace("restore")
		credsCopy, secretCopy := restored(creds, to), restored(clientSecret, to)
		ts2 := newServer(to, "brand")
		msg := readyReason(ts2, func() []metav1.Condition { return ts2.Status.Conditions }, v1alpha1.ReasonSecretFound)
		Expect(msg).To(ContainSubstring("kubectl annotate ts/brand " + v1alpha1.AnnotationAdoptSecret + "=" + string(credsCopy.UID)))
		annotateObject(ts2, v1alpha1.AnnotationAdoptSecret, string(credsCopy.UID))
		Eventually(func(g Gomega) {
			got := credentialsOf(ts2)
			g.Expect(metav1.IsControlledBy(got, ts2)).To(BeTrue())
			g.Expect(got.Data).To(Equal(creds.Data), "the brand's backends keep their issue-API credential")
		}).WithTimeout(5 * time.Second).Should(Succeed())
		markServing(ts2)

		c2 := &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "lp", Namespace: to,
			Annotations: map[string]string{v1alpha1.AnnotationGeneratedClientID: c.Status.ClientID}}, Spec: c.Spec}
		Expect(k8s.Create(ctx, c2)).To(Succeed())
		msg = readyReason(c2, func() []metav1.Condition { return c2.Status.Conditions }, v1alpha1.ReasonSecretFound)
		Expect(msg).To(ContainSubstring("kubectl annotate lpac/lp " + v1alpha1.AnnotationAdoptSecret + "=" + string(secretCopy.UID)))
		annotateObject(c2, v1alpha1.AnnotationAdoptSecret, string(secretCopy.UID))
		c2 = clientCondition(c2, metav1.ConditionTrue, v1alpha1.ReasonReconciled)
		Expect(c2.Status.ClientID).To(Equal(c.Status.ClientID))
		got := &corev1.Secret{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(secretCopy), got)).To(Succeed())
		Expect(got.Data).To(Equal(clientSecret.Data), "LivePerson's console keeps its client secret")
		Expect(metav1.IsControlledBy(got, c2)).To(BeTrue())
		Eventually(func() []string { return eventReasons(to) }).Should(ContainElement("SecretAdopted"))
	})

	// A flow Code client keeps its generated id only in its Secret (no annotation), so a manifest
	// restored from a backup has none: the restored Secret's id is the candidate, and adopting
	// the Secret (one annotation, as with any restore) keeps both the id and the secret.
	It("keeps a restored client's generated id from its Secret once told to adopt it (RestoredClientKeepsItsID)", func() {
		from := newNamespace("backup")
		newServingServer(from, "brand")
		c := clientCondition(newClient(from, "lp", "brand"), metav1.ConditionTrue, v1alpha1.ReasonReconciled)
		Expect(c.Annotations).NotTo(HaveKey(v1alpha1.AnnotationGeneratedClientID))
		clientSecret := &corev1.Secret{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: from, Name: v1alpha1.ClientSecretName(c.Name)}, clientSecret)).To(Succeed())

		to := newNamespace("restore")
		secretCopy := restored(clientSecret, to)
		newServingServer(to, "brand")
		c2 := &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "lp", Namespace: to}, Spec: c.Spec}
		Expect(k8s.Create(ctx, c2)).To(Succeed())
		msg := readyReason(c2, func() []metav1.Condition { return c2.Status.Conditions }, v1alpha1.ReasonSecretFound)
		Expect(msg).To(ContainSubstring("kubectl annotate lpac/lp " + v1alpha1.AnnotationAdoptSecret + "=" + string(secretCopy.UID)))
		Expect(msg).To(ContainSubstring(`it holds client id "`+c.Status.ClientID+`"`), "what adopting it takes on, to compare with LivePerson's console")
		Expect(c2.Status.ClientID).To(BeEmpty(), "no id is shown before the Secret is adopted")
		annotateObject(c2, v1alpha1.AnnotationAdoptSecret, string(secretCopy.UID))
		c2 = clientCondition(c2, metav1.ConditionTrue, v1alpha1.ReasonReconciled)
		Expect(c2.Status.ClientID).To(Equal(c.Status.ClientID), "LivePerson's console keeps its client id")
		got := &corev1.Secret{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(secretCopy), got)).To(Succeed())
		Expect(got.Data).To(Equal(clientSecret.Data), "LivePerson's console keeps its client secret")
		Expect(metav1.IsControlledBy(got, c2)).To(BeTrue())
	})

	It("never takes over a Secret that is not one it wrote for this object (ForeignSecretsAreNotAdopted)", func() {
		ns := newNamespace("restore")
		// The client id does not match: someone else's client, or a planted Secret.
		planted := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "lp-client", Namespace: ns,
			Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}},
			Data: map[string][]byte{v1alpha1.ClientIDKey: []byte("someone-else"), v1alpha1.ClientSecretKey: []byte("planted-secret-planted-secret-planted")}}
		Expect(k8s.Create(ctx, planted)).To(Succeed())
		newServingServer(ns, "brand")
		// A restore whose manifest kept the client's own generated id.
		c := &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "lp", Namespace: ns,
			Annotations: map[string]string{v1alpha1.AnnotationGeneratedClientID: "lp-its-own-id"}},
			Spec: v1alpha1.LivePersonAuthClientSpec{TokenServerRef: v1alpha1.LocalObjectReference{Name: "brand"}, AccountID: "12345678"}}
		Expect(k8s.Create(ctx, c)).To(Succeed())
		Expect(c.Name + "-client").To(Equal(v1alpha1.ClientSecretName(c.Name)))
		annotateObject(c, v1alpha1.AnnotationAdoptSecret, string(planted.UID))
		// Never taken over; the message names the id it holds, for a restore that lost the
		// client's generated-id annotation, and says to delete it otherwise.
		msg := readyReason(c, func() []metav1.Condition { return c.Status.Conditions }, v1alpha1.ReasonInvalidSecret)
		Expect(msg).To(And(ContainSubstring(`client id "someone-else"`), ContainSubstring("otherwise delete the Secret")))
		Consistently(func(g Gomega) {
			got := &corev1.Secret{}
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(planted), got)).To(Succeed())
			g.Expect(got.OwnerReferences).To(BeEmpty())
			g.Expect(got.Data).To(Equal(planted.Data))
		}, "1s").Should(Succeed())
	})
})
