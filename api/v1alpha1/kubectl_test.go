package v1alpha1_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/lpauth/lpauth-operator/controllers/testenv"
)

// What a platform team sees with the real kubectl: field docs and table columns.
var _ = Describe("kubectl", func() {
	var kubectl func(args ...string) string

	BeforeEach(func() {
		path, err := exec.LookPath("kubectl")
		if err != nil {
			Skip("kubectl is not on PATH")
		}
		dir := GinkgoT().TempDir()
		kubeconfig, err := testenv.Kubeconfig(env, dir)
		Expect(err).NotTo(HaveOccurred())
		// A cache of its own: kubectl's shared discovery cache is keyed by host:port, and another
		// suite's API server may have used this port a moment ago, without our CRDs.
		base := []string{"--kubeconfig", kubeconfig, "--cache-dir", filepath.Join(dir, "kubectl-cache")}
		kubectl = func(args ...string) string {
			out, err := exec.Command(path, append(base, args...)...).CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), "kubectl %s: %s", strings.Join(args, " "), out)
			return string(out)
		}
		// The API server publishes a new CRD's schema a moment after accepting it.
		Eventually(func() error {
			return exec.Command(path, append(base, "explain", "signingkey")...).Run()
		}).WithTimeout(15 * time.Second).Should(Succeed())
	})

	DescribeTable("explains every field in words",
		func(field, want string) {
			Expect(kubectl("explain", field)).To(ContainSubstring(want))
		},
		Entry(nil, "signingkey", "Rotate"),
		Entry(nil, "signingkey.spec.rotation.publishAhead", "relying parties cache the JWKS"),
		Entry(nil, "signingkey.status.activePublicKey", `"JWT Public Key"`),
		Entry(nil, "tokenserver.spec.issuer", "It cannot change"),
		Entry(nil, "tokenserver.spec.login", "exactly one"),
		Entry(nil, "tokenserver.spec.replayStore.type", "Memory (one replica)"),
		Entry(nil, "livepersonauthclient.spec.redirectURIs", "prefix:"),
		Entry(nil, "livepersonauthclient.spec.publicKeyMode", "console-updated"),
		Entry(nil, "livepersonauthclient.status.livePersonConsole", "ready to"),
	)

	It("leaves no field undocumented", func() {
		for _, kind := range []string{"signingkey", "tokenserver", "livepersonauthclient"} {
			out := kubectl("explain", kind, "--recursive", "--output=plaintext-openapiv2")
			Expect(out).To(ContainSubstring("FIELDS:"))
			// Every field of ours has a description, so the non-recursive view of each of its
			// top-level parts must never say "<empty>".
			for _, part := range []string{"spec", "status"} {
				Expect(kubectl("explain", kind+"."+part)).NotTo(ContainSubstring("<empty>"), "%s.%s", kind, part)
			}
		}
	})

	It("says each default in kubectl explain", func() {
		defaults := crdDefaults()
		Expect(defaults).To(HaveLen(16), "every defaulted field of the CRDs (update the count when adding one)")
		for field, value := range defaults {
			// kubectl wraps descriptions: compare words.
			words := strings.Join(strings.Fields(kubectl("explain", field)), " ")
			Expect(words).To(ContainSubstring("Defaults to "+value+"."), field)
		}
	})

	It("shows the key facts as table columns, by short name", func() {
		ns := newNamespace()
		Expect(create(object("SigningKey", ns, validSigningKey))).To(Succeed())
		Expect(create(object("TokenServer", ns, validTokenServer))).To(Succeed())
		Expect(create(object("LivePersonAuthClient", ns, validClient))).To(Succeed())
		Expect(kubectl("get", "sk", "-n", ns)).To(MatchRegexp(`NAME\s+ALGORITHM\s+ACTIVE KEY\s+NEXT ROTATION\s+READY\s+AGE`))
		Expect(kubectl("get", "ts", "-n", ns)).To(MatchRegexp(`NAME\s+ISSUER\s+READY\s+REPLICAS\s+AGE\n\S+\s+https://auth.brand.example`))
		Expect(kubectl("get", "lpac", "-n", ns)).To(MatchRegexp(`NAME\s+ACCOUNT\s+FLOW\s+CLIENT ID\s+READY\s+AGE\n\S+\s+12345678\s+Code`))
		Expect(kubectl("get", "lpauth", "-n", ns)).To(ContainSubstring("livepersonauthclient.auth.lpauth.dev/"))
	})
})

// crdDefaults reads the CRDs as installed and returns each field with a scalar or list default
// ("kind.spec.field") and that default as the docs write it.
func crdDefaults() map[string]string {
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "crd", "bases", "*.yaml"))
	Expect(err).NotTo(HaveOccurred())
	out := map[string]string{}
	var walk func(path string, p apiextensionsv1.JSONSchemaProps)
	walk = func(path string, p apiextensionsv1.JSONSchemaProps) {
		if p.Default != nil && p.Type != "object" {
			var v any
			Expect(json.Unmarshal(p.Default.Raw, &v)).To(Succeed())
			switch v := v.(type) {
			case []any:
				words := make([]string, len(v))
				for i, w := range v {
					words[i] = fmt.Sprint(w)
				}
				out[path] = strings.Join(words, ", ")
			default:
				out[path] = fmt.Sprint(v)
			}
		}
		for name, child := range p.Properties {
			walk(path+"."+name, child)
		}
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		Expect(err).NotTo(HaveOccurred())
		crd := &apiextensionsv1.CustomResourceDefinition{}
		Expect(yaml.Unmarshal(raw, crd)).To(Succeed())
		for _, v := range crd.Spec.Versions {
			walk(strings.ToLower(crd.Spec.Names.Kind), *v.Schema.OpenAPIV3Schema)
		}
	}
	return out
}
