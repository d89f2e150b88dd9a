package installer

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/lpauth/lpauth-operator/controllers/testenv"
)

const testImage = "registry.brand.example/lpauth-operator:v1.2.3"

// built is one `make chart-files` run, shared by the chart tests: the installs and the chart
// exactly as make helm writes them.
var built struct {
	once sync.Once
	dir  string
	err  error
	out  []byte
}

func buildChart(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("the chart tests build kustomize and helm and run them: skipped by -short")
	}
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "lpauth-chart-")
		if built.err != nil {
			return
		}
		cmd := exec.Command("make", "-s", "-C", testenv.RepoRoot(), "chart-files",
			"DIST="+built.dir, "IMG="+testImage, "WATCH_NAMESPACES=team-a,team-b")
		built.out, built.err = cmd.CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("make chart-files: %v\n%s", built.err, built.out)
	}
	return built.dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// helm runs the helm binary hack/helm.sh builds, with its own config and cache folders.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin, err := exec.Command(filepath.Join(testenv.RepoRoot(), "hack", "helm.sh")).Output()
	if err != nil {
		t.Fatalf("hack/helm.sh: %v", err)
	}
	home := t.TempDir()
	cmd := exec.Command(strings.TrimSpace(string(bin)), args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home+"/cache", "HELM_CONFIG_HOME="+home+"/config", "HELM_DATA_HOME="+home+"/data")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func readObjects(t *testing.T, path string) []Object {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parse(t, string(data))
}

// sameObjects fails the test when two renderings differ in any object or field. The chart differs
// in two things on purpose: it keeps the CRDs on uninstall, and it leaves the install's own
// Namespace to the platform team (helm needs it before the first template applies).
func sameObjects(t *testing.T, chart, install []Object) {
	t.Helper()
	index := func(objs []Object) map[string]Object {
		m := map[string]Object{}
		for _, o := range Normalize(objs) {
			if IsInstallNamespace(o, "lpauth-system") {
				continue
			}
			if a, _ := get(o, "metadata", "annotations").(map[string]any); a != nil && str(o, "kind") == "CustomResourceDefinition" {
				delete(a, "helm.sh/resource-policy")
				if len(a) == 0 {
					delete(o["metadata"].(map[string]any), "annotations")
				}
			}
			if _, dup := m[Key(o)]; dup {
				t.Errorf("%s is rendered twice", Key(o))
			}
			m[Key(o)] = o
		}
		return m
	}
	c, i := index(chart), index(install)
	var keys []string
	for k := range c {
		keys = append(keys, k)
	}
	for k := range i {
		if _, ok := c[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch a, b := c[k], i[k]; {
		case a == nil:
			t.Errorf("the chart does not render %s", k)
		case b == nil:
			t.Errorf("the chart renders %s, which the install does not hold", k)
		case !reflect.DeepEqual(a, b):
			ja, _ := json.MarshalIndent(a, "", " ")
			jb, _ := json.MarshalIndent(b, "", " ")
			t.Errorf("%s differs:\nchart:   %s\ninstall: %s", k, ja, jb)
		}
	}
}

func TestTheChartRendersBothInstallsExactly(t *testing.T) {
	t.Parallel()
	dir := buildChart(t)
	chart := filepath.Join(dir, "chart")
	if out, err := helm(t, "lint", "--strict", chart); err != nil {
		t.Fatalf("helm lint: %v\n%s", err, out)
	}
	t.Run("cluster-wide: the defaults are dist/install.yaml", func(t *testing.T) {
		out, err := helm(t, "template", "lpauth", chart, "-n", "lpauth-system")
		if err != nil {
			t.Fatalf("helm template: %v\n%s", err, out)
		}
		sameObjects(t, parse(t, out), readObjects(t, filepath.Join(dir, "install.yaml")))
	})
	t.Run("namespaced: watchNamespaces is dist/install-namespaced.yaml", func(t *testing.T) {
		out, err := helm(t, "template", "lpauth", chart, "-n", "lpauth-system", "--set", "watchNamespaces={team-a,team-b}")
		if err != nil {
			t.Fatalf("helm template: %v\n%s", err, out)
		}
		sameObjects(t, parse(t, out), readObjects(t, filepath.Join(dir, "install-namespaced.yaml")))
	})
}

func TestTheChartValuesReachTheManager(t *testing.T) {
	t.Parallel()
	chart := filepath.Join(buildChart(t), "chart")
	out, err := helm(t, "template", "lpauth", chart, "-n", "auth-ops",
		"--set", "replicas=3,logLevel=debug,metrics.enabled=false,leaderElection.enabled=true",
		"--set", "image.repository=registry.brand.example/mirror/lpauth,image.tag=sha256:0123456789abcdef",
		"--set", "extraArgs={--allowed-token-server-images=registry.brand.example/lpauth/}",
		"--set", "resources.limits.memory=1Gi")
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	objs := parse(t, out)
	deploy, c, err := managerContainer(objs)
	if err != nil {
		t.Fatal(err)
	}
	if ns := str(deploy, "metadata", "namespace"); ns != "auth-ops" {
		t.Errorf("the manager is in %q, not the release's namespace", ns)
	}
	if r := get(deploy, "spec", "replicas"); r != float64(3) {
		t.Errorf("replicas = %v", r)
	}
	const image = "registry.brand.example/mirror/lpauth@sha256:0123456789abcdef"
	if c["image"] != image {
		t.Errorf("image = %v", c["image"])
	}
	args := strings.Join(strings.Fields(strings.Trim(jsonString(c["args"]), "[]")), " ")
	for _, want := range []string{`"--leader-elect"`, `"--zap-log-level=debug"`, `"--metrics-bind-address=0"`, `"--allowed-token-server-images=registry.brand.example/lpauth/"`} {
		if !strings.Contains(args, want) {
			t.Errorf("args %s lack %s", args, want)
		}
	}
	env := jsonString(c["env"])
	if !strings.Contains(env, `"value":"`+image+`"`) {
		t.Errorf("token servers do not run the manager's image: env %s", env)
	}
	if m := get(Object(c), "resources", "limits", "memory"); m != "1Gi" {
		t.Errorf("memory limit = %v", m)
	}
	for _, o := range objs {
		if str(o, "kind") == "Namespace" {
			t.Errorf("the chart creates %s", Key(o))
		}
		if strings.Contains(jsonString(o), "lpauth-system") {
			t.Errorf("%s still names the install's namespace lpauth-system", Key(o))
		}
	}
}

func TestTheChartRefusesBadValuesAndSaysWhy(t *testing.T) {
	t.Parallel()
	chart := filepath.Join(buildChart(t), "chart")
	for _, tc := range []struct {
		set, want string
	}{
		{"watchNamespaces={Team_A}", "does not match pattern"},
		{"replicas=2,leaderElection.enabled=false", "replicas above 1 need leaderElection.enabled"},
		{"replicas=0", "minimum"},
		{"logLevel=loud", "logLevel"},
		{"imageTag=v2", "imageTag"},
		{"extraArgs={leader-elect}", "does not match pattern"},
		{"extraArgs={--watch-namespaces=}", "extraArgs"},
		{"extraArgs={--leader-elect=false}", "extraArgs"},
		{"extraArgs={--token-server-image=evil.example/ts:1}", "extraArgs"},
		{"image.repository=evil\nkind: Secret", "does not match pattern"},
		{"metrics=null", "metrics"},
	} {
		t.Run(tc.set, func(t *testing.T) {
			out, err := helm(t, "template", "lpauth", chart, "--set", tc.set)
			if err == nil || !strings.Contains(out, tc.want) {
				t.Fatalf("helm template --set %s: err %v, output lacks %q:\n%s", tc.set, err, tc.want, out)
			}
		})
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Namespace names YAML would read as a number, a boolean or nothing stay strings.
func TestNamespacesThatLookLikeOtherYAMLStayNames(t *testing.T) {
	t.Parallel()
	chart := filepath.Join(buildChart(t), "chart")
	values := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(values, []byte("watchNamespaces: [\"on\", \"123\", \"null\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := helm(t, "template", "lpauth", chart, "-n", "007", "-f", values)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	roles := map[string]bool{}
	for _, o := range parse(t, out) {
		ns, ok := get(o, "metadata", "namespace").(string)
		if str(o, "kind") != "CustomResourceDefinition" && !strings.HasPrefix(str(o, "kind"), "Cluster") && !ok {
			t.Errorf("%s: namespace %v is not a string", Key(o), get(o, "metadata", "namespace"))
		}
		if str(o, "kind") == "Role" && str(o, "metadata", "name") == "lpauth-manager-role" {
			roles[ns] = true
		}
		if str(o, "kind") == "Deployment" && ns != "007" {
			t.Errorf("the manager is in %q, not 007", ns)
		}
	}
	if !roles["on"] || !roles["123"] || !roles["null"] {
		t.Errorf("manager Roles in %v, want on, 123 and null", roles)
	}
}
