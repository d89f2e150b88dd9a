package installer

import (
	"reflect"
	"strings"
	"testing"
)

const smallInstall = `apiVersion: v1
kind: ServiceAccount
metadata: {name: op, namespace: sys}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: op-role}
rules:
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: op-binding}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: op-role}
subjects: [{kind: ServiceAccount, name: op, namespace: sys}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: op, namespace: sys}
spec:
  replicas: 1
  template:
    spec:
      containers:
      - name: manager
        image: example.com/op:v1
        args: [manager, --leader-elect]
`

func parse(t *testing.T, s string) []Object {
	t.Helper()
	objs, err := Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func TestTheNamespacedInstallHoldsRightsOnlyInTheWatchedNamespaces(t *testing.T) {
	t.Parallel()
	in := parse(t, smallInstall)
	out, err := Namespaced(in, []string{"team-a", "team-b"})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out {
		keys = append(keys, Key(o))
		if k := str(o, "kind"); strings.HasPrefix(k, "Cluster") {
			t.Errorf("%s is left in the namespaced install", Key(o))
		}
	}
	want := []string{
		"v1 ServiceAccount sys/op",
		"rbac.authorization.k8s.io/v1 Role team-a/op-role", "rbac.authorization.k8s.io/v1 Role team-b/op-role",
		"rbac.authorization.k8s.io/v1 RoleBinding team-a/op-binding", "rbac.authorization.k8s.io/v1 RoleBinding team-b/op-binding",
		"apps/v1 Deployment sys/op",
	}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("objects:\n%s\nwant:\n%s", strings.Join(keys, "\n"), strings.Join(want, "\n"))
	}
	if got, want := out[1]["rules"], Normalize(in)[1]["rules"]; !reflect.DeepEqual(got, want) {
		t.Errorf("the Role's rules %v differ from the ClusterRole's %v", got, want)
	}
	b := out[3]
	if ref := b["roleRef"].(map[string]any); ref["kind"] != "Role" || ref["name"] != "op-role" {
		t.Errorf("roleRef = %v", ref)
	}
	if s := b["subjects"].([]any)[0].(map[string]any); s["namespace"] != "sys" || s["name"] != "op" {
		t.Errorf("the binding's subject moved: %v", s)
	}
	_, c, _ := managerContainer(out)
	if args := c["args"].([]any); args[len(args)-1] != "--watch-namespaces=team-a,team-b" {
		t.Errorf("manager args = %v", args)
	}
	// The input is left as it was (the chart is made from it too).
	if _, c, _ := managerContainer(in); len(c["args"].([]any)) != 2 {
		t.Error("Namespaced changed its input")
	}
}

func TestTheNamespacedInstallRefusesWhatItCannotMake(t *testing.T) {
	t.Parallel()
	builtin := strings.Replace(smallInstall, "kind: ClusterRole, name: op-role", "kind: ClusterRole, name: view", 1)
	already := strings.Replace(smallInstall, "[manager, --leader-elect]", "[manager, --watch-namespaces=x]", 1)
	noManager := strings.Replace(smallInstall, "name: manager", "name: sidecar", 1)
	for _, tc := range []struct {
		name, install string
		namespaces    []string
		want          string
	}{
		{"no namespaces", smallInstall, nil, "no namespaces"},
		{"not a name", smallInstall, []string{"Team_A"}, `"Team_A" is not a namespace name`},
		{"twice", smallInstall, []string{"a", "a"}, "listed twice"},
		{"a built-in ClusterRole", builtin, []string{"a"}, "not a ClusterRole of the install"},
		{"already namespaced", already, []string{"a"}, "already has --watch-namespaces=x"},
		{"no manager", noManager, []string{"a"}, "no Deployment with a container named manager"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Namespaced(parse(t, tc.install), tc.namespaces)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestParseNamesTheBrokenDocument(t *testing.T) {
	t.Parallel()
	if _, err := Parse([]byte("kind: A\nmetadata: {name: a}\n---\n# only a comment\n---\nkind: [\n")); err == nil || !strings.Contains(err.Error(), "document 3") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Parse([]byte("apiVersion: v1\nmetadata: {name: a}\n")); err == nil {
		t.Fatal("a document without a kind was accepted")
	}
}

// Text in the install that looks like a template is printed as it is, not run by helm.
func TestTemplateTextInTheInstallIsNotRun(t *testing.T) {
	t.Parallel()
	out, err := render(Object{"kind": "ConfigMap", "metadata": map[string]any{"name": "x", "namespace": "sys"},
		"data": map[string]any{"doc": "use {{ .Release.Name }} here"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `use {{ "{{" }} .Release.Name }} here`) {
		t.Fatalf("rendered:\n%s", out)
	}
}
