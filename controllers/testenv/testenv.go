// Package testenv starts a real kube-apiserver and etcd (envtest) with this project's CRDs
// installed, for the test suites of every package.
package testenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// RepoRoot is the repository's top folder: found from this file's location, so tests work from
// any package directory; in a binary built with -trimpath (which drops that location), the
// first folder up from the working directory that holds the CRDs.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	if hasCRDs(root) {
		return root
	}
	if dir, err := os.Getwd(); err == nil {
		for ; ; dir = filepath.Dir(dir) {
			if hasCRDs(dir) {
				return dir
			}
			if dir == filepath.Dir(dir) {
				break
			}
		}
	}
	return root
}

func hasCRDs(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "config", "crd", "bases"))
	return err == nil
}

// Start starts kube-apiserver and etcd from KUBEBUILDER_ASSETS and installs the CRDs from
// config/crd/bases, the Gateway API's standard CRDs and the ServiceMonitor CRD. Call Stop on the returned environment when done. Each option may change
// the environment before it starts (make faults keeps etcd's data in a folder of its own, to
// restart it).
func Start(options ...func(*envtest.Environment)) (*envtest.Environment, *rest.Config, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, nil, errors.New("KUBEBUILDER_ASSETS is not set: run the tests with `make test`, " +
			"which builds kube-apiserver and etcd once (hack/envtest.sh) and points the tests at them")
	}
	gateway, err := GatewayAPICRDs()
	if err != nil {
		return nil, nil, err
	}
	serviceMonitor, err := ServiceMonitorCRD()
	if err != nil {
		return nil, nil, err
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases"), gateway, serviceMonitor},
		ErrorIfCRDPathMissing: true,
	}
	for _, o := range options {
		o(env)
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, nil, err
	}
	return env, cfg, nil
}

// GatewayAPICRDs is the folder of the Gateway API's standard CRDs (HTTPRoute among them) in the
// sigs.k8s.io/gateway-api module the operator is built with, so the API server here serves the
// very version the operator's types are.
func GatewayAPICRDs() (string, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api")
	cmd.Dir = RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("finding the Gateway API CRDs (go list -m sigs.k8s.io/gateway-api in %s): %w", cmd.Dir, err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "config", "crd", "standard"), nil
}

// PrometheusOperatorVersion is the prometheus-operator module whose ServiceMonitor CRD the API
// server here serves. The operator's Go types come from its pkg/apis/monitoring module (v0.95.2);
// the main module, which holds the CRDs, is served by the module proxy here only up to v0.85.0,
// whose ServiceMonitor has every field the operator writes.
const PrometheusOperatorVersion = "v0.85.0"

// ServiceMonitorCRD is the ServiceMonitor CRD file of the prometheus-operator module, downloaded
// through the module proxy (once: it stays in the module cache), not copied into this repo.
func ServiceMonitorCRD() (string, error) {
	mod := "github.com/prometheus-operator/prometheus-operator@" + PrometheusOperatorVersion
	cmd := exec.Command("go", "mod", "download", "-json", mod)
	cmd.Dir = RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("finding the ServiceMonitor CRD (go mod download %s): %w", mod, err)
	}
	var dl struct{ Dir, Error string }
	if err := json.Unmarshal(out, &dl); err != nil || dl.Dir == "" {
		return "", fmt.Errorf("finding the ServiceMonitor CRD (go mod download %s): %v %s", mod, err, dl.Error)
	}
	return filepath.Join(dl.Dir, "example", "prometheus-operator-crd", "monitoring.coreos.com_servicemonitors.yaml"), nil
}

// Kubeconfig writes a kubeconfig for a cluster-admin user of env into dir, for tests that drive
// the real kubectl, and returns its path.
func Kubeconfig(env *envtest.Environment, dir string) (string, error) {
	user, err := env.AddUser(envtest.User{Name: "test-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", err
	}
	data, err := user.KubeConfig()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "kubeconfig")
	return path, os.WriteFile(path, data, 0o600)
}
