package installer

import (
	"fmt"
	"strings"
)

// WatchFlag is the manager's flag that limits it to some namespaces (controllers.Run).
const WatchFlag = "--watch-namespaces"

// Namespaced turns the cluster-wide install into one that watches only the given namespaces:
// each ClusterRole becomes a Role in every watched namespace, each ClusterRoleBinding a
// RoleBinding there, and the manager is started with --watch-namespaces. The manager then holds
// no right outside those namespaces (and its own, for leader election), Secrets included.
func Namespaced(objs []Object, namespaces []string) ([]Object, error) {
	if err := CheckNamespaces(namespaces); err != nil {
		return nil, err
	}
	if _, _, err := managerContainer(objs); err != nil {
		return nil, err
	}
	roles := map[string]bool{}
	for _, o := range objs {
		if str(o, "kind") == "ClusterRole" {
			roles[str(o, "metadata", "name")] = true
		}
	}
	var out []Object
	for _, o := range objs {
		switch str(o, "kind") {
		case "ClusterRole":
			for _, ns := range namespaces {
				out = append(out, asRole(o, ns))
			}
		case "ClusterRoleBinding":
			for _, ns := range namespaces {
				b, err := asRoleBinding(o, ns, roles)
				if err != nil {
					return nil, err
				}
				out = append(out, b)
			}
		default:
			out = append(out, deepCopy(o))
		}
	}
	_, c, _ := managerContainer(out)
	args, _ := c["args"].([]any)
	for _, a := range args {
		if s, _ := a.(string); strings.HasPrefix(s, WatchFlag) {
			return nil, fmt.Errorf("the manager already has %s", s)
		}
	}
	c["args"] = append(args, WatchFlag+"="+strings.Join(namespaces, ","))
	return out, nil
}

// asRole is a ClusterRole's rules as a Role in one namespace.
func asRole(cr Object, ns string) Object {
	r := deepCopy(cr)
	r["kind"] = "Role"
	r["metadata"].(map[string]any)["namespace"] = ns
	delete(r, "aggregationRule")
	return r
}

// asRoleBinding binds the same subjects to the Role of that name in one namespace.
// Only bindings of the install's own ClusterRoles can become namespaced: a built-in one (view,
// say) has no Role of its name to bind.
func asRoleBinding(crb Object, ns string, roles map[string]bool) (Object, error) {
	b := deepCopy(crb)
	ref, _ := b["roleRef"].(map[string]any)
	if ref == nil || ref["kind"] != "ClusterRole" || !roles[fmt.Sprint(ref["name"])] {
		return nil, fmt.Errorf("%s: roleRef is not a ClusterRole of the install", Key(crb))
	}
	b["kind"] = "RoleBinding"
	b["metadata"].(map[string]any)["namespace"] = ns
	ref["kind"] = "Role"
	return b, nil
}
