// Package installer turns the kustomize rendering of config/default (dist/install.yaml, the one
// source of the operator's install) into its other shapes: the namespaced install, whose manager
// holds Roles in the namespaces it watches instead of a ClusterRole, and the Helm chart. Both are
// computed from that rendering, so neither can drift from it; the tests render the chart with the
// real helm and compare it object by object with the two install files.
package installer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// Object is one manifest, as JSON decodes it.
type Object = map[string]any

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// Parse reads a multi-document YAML stream; empty documents are skipped.
func Parse(data []byte) ([]Object, error) {
	var objs []Object
	for i, doc := range docSeparator.Split(string(data), -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var o Object
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if o == nil {
			continue // only comments
		}
		if str(o, "kind") == "" || str(o, "metadata", "name") == "" {
			return nil, fmt.Errorf("document %d has no kind or metadata.name", i+1)
		}
		objs = append(objs, o)
	}
	return objs, nil
}

// Marshal writes objects as one YAML stream.
func Marshal(objs []Object) ([]byte, error) {
	var b bytes.Buffer
	for i, o := range objs {
		y, err := yaml.Marshal(o)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}

// Key names an object the way the API server does.
func Key(o Object) string {
	return fmt.Sprintf("%s %s %s/%s", str(o, "apiVersion"), str(o, "kind"), str(o, "metadata", "namespace"), str(o, "metadata", "name"))
}

// CheckNamespaces refuses names that cannot be namespaces, and repeats.
func CheckNamespaces(namespaces []string) error {
	if len(namespaces) == 0 {
		return fmt.Errorf("no namespaces to watch")
	}
	seen := map[string]bool{}
	for _, ns := range namespaces {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return fmt.Errorf("%q is not a namespace name: %s", ns, strings.Join(errs, "; "))
		}
		if seen[ns] {
			return fmt.Errorf("namespace %q is listed twice", ns)
		}
		seen[ns] = true
	}
	return nil
}

// deepCopy copies an object through JSON, which is also what makes two objects comparable:
// numbers become float64 whichever YAML reader made them.
func deepCopy(o Object) Object {
	b, err := json.Marshal(o)
	if err != nil {
		panic(err) // objects come from JSON-compatible YAML
	}
	var c Object
	if err := json.Unmarshal(b, &c); err != nil {
		panic(err)
	}
	return c
}

// Normalize makes objects from different YAML writers comparable (see deepCopy).
func Normalize(objs []Object) []Object {
	out := make([]Object, len(objs))
	for i, o := range objs {
		out[i] = deepCopy(o)
	}
	return out
}

// str reads a string at a path of map keys ("" when absent).
func str(o Object, path ...string) string {
	v, _ := get(o, path...).(string)
	return v
}

func get(o Object, path ...string) any {
	var cur any = o
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

// ManagerArgs are the manager container's arguments, as the install gives them.
func ManagerArgs(objs []Object) ([]string, error) {
	_, c, err := managerContainer(objs)
	if err != nil {
		return nil, err
	}
	args, _ := c["args"].([]any)
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = fmt.Sprint(a)
	}
	return out, nil
}

// managerContainer finds the manager Deployment's container named "manager".
func managerContainer(objs []Object) (deploy Object, container map[string]any, err error) {
	for _, o := range objs {
		if str(o, "kind") != "Deployment" {
			continue
		}
		cs, _ := get(o, "spec", "template", "spec", "containers").([]any)
		for _, c := range cs {
			if m, ok := c.(map[string]any); ok && m["name"] == "manager" {
				return o, m, nil
			}
		}
	}
	return nil, nil, fmt.Errorf("no Deployment with a container named manager in the install")
}
