package controllers_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/controllers/testenv"
)

var _ = Describe("config/samples", func() {
	It("goes Ready as written, with every console value filled in", func() {
		ns := newNamespace("samples")
		files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "samples", "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		for _, f := range files {
			if filepath.Base(f) == "kustomization.yaml" {
				continue
			}
			data, err := os.ReadFile(f)
			Expect(err).NotTo(HaveOccurred())
			u := &unstructured.Unstructured{}
			Expect(utilyaml.Unmarshal(data, &u.Object)).To(Succeed())
			u.SetNamespace(ns)
			Expect(k8s.Create(ctx, u)).To(Succeed(), f)
		}
		// The TokenServer is complete: only the Deployment (no kubelet here) is left to run, and
		// until it serves the client says so rather than Ready.
		ts := &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "brand"}}
		serverConditionWithin(ts, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonDeploymentProgressing, 5*time.Second)
		c := &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "brand-liveperson"}}
		clientCondition(c, metav1.ConditionFalse, v1alpha1.ReasonTokenServerNotReady)
		markServing(ts)
		c = clientCondition(c, metav1.ConditionTrue, v1alpha1.ReasonReconciled)
		console := c.Status.LivePersonConsole
		for field, value := range map[string]string{
			"authenticationType": console.AuthenticationType, "pkce": console.PKCE, "jwtIssuer": console.JWTIssuer,
			"authenticationEndpoint": console.AuthenticationEndpoint, "tokenEndpoint": console.TokenEndpoint,
			"clientID": console.ClientID, "certificateType": console.CertificateType, "jwksEndpoint": console.JWKSEndpoint,
			"jsMethodName": console.JSMethodName,
		} {
			Expect(value).NotTo(BeEmpty(), "livePersonConsole.%s", field)
		}
		Expect(console.ClientSecretRef).NotTo(BeNil())
		Expect(console.AuthenticationEndpoint).To(Equal("https://auth.brand.example/authorize"))

		// Applied in any order, the objects wait on one another without a single Warning. (The
		// samples' issuer is the one every spec of this suite uses, so IssuerConflict is the
		// suite's doing, not the samples'.)
		evs := &eventsv1.EventList{}
		Expect(k8s.List(ctx, evs, client.InNamespace(ns))).To(Succeed())
		for _, e := range evs.Items {
			if e.Type == corev1.EventTypeWarning && e.Reason != v1alpha1.ReasonIssuerConflict {
				Fail(fmt.Sprintf("Warning %s on %s %s: %s", e.Reason, e.Regarding.Kind, e.Regarding.Name, e.Note))
			}
		}
	})
})
