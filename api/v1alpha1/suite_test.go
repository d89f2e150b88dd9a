package v1alpha1_test

import (
	"context"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/lpauth/lpauth-operator/controllers/testenv"
)

var (
	env *envtest.Environment
	cfg *rest.Config
	k8s client.Client
	ctx = context.Background()
)

func TestAPIValidation(t *testing.T) {
	if testing.Short() {
		t.Skip("a real kube-apiserver and etcd (envtest): skipped by -short")
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "API validation against a real kube-apiserver")
}

var _ = BeforeSuite(func() {
	var err error
	env, cfg, err = testenv.Start()
	Expect(err).NotTo(HaveOccurred())
	// A plain, non-cached client: every assertion reads what the API server stored.
	k8s, err = client.New(cfg, client.Options{})
	Expect(err).NotTo(HaveOccurred())
})

var _ = AfterSuite(func() {
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})
