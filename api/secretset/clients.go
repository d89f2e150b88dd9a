package secretset

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// The set carries each client's spec so the token server builds its clients from the set alone:
// reading 10,000 LivePersonAuthClients (JSON only, each with its status and managed fields) made
// a cold start take seconds and every client event a rebuild, and the token server's Role no
// longer reads clients at all. The operator compiles the spec only for a client whose id it
// accepted, so the set holds exactly what is served.

// compiledClient is a client as the set carries it: what the token server reads of a client.
type compiledClient struct {
	Name string `json:"name"`
	// Created orders clients that claim the same id (v1alpha1.ClaimsBefore).
	Created metav1.Time                       `json:"created"`
	Spec    v1alpha1.LivePersonAuthClientSpec `json:"spec"`
}

// CompiledSpec is client c as the set carries it (deterministic JSON).
func CompiledSpec(c *v1alpha1.LivePersonAuthClient) []byte {
	b, err := json.Marshal(compiledClient{Name: c.Name, Created: c.CreationTimestamp, Spec: c.Spec})
	if err != nil {
		// A spec that came from the API server always encodes; never a partial entry.
		return nil
	}
	return b
}

// Clients are the clients the set serves, as LivePersonAuthClients of namespace with the
// accepted client id (generated ids in the annotation), sorted by name; an entry that does not
// decode, or names another client than its key, is an error and left out.
func Clients(namespace string, data map[string][]byte) ([]v1alpha1.LivePersonAuthClient, []error) {
	var out []v1alpha1.LivePersonAuthClient
	var errs []error
	for key, v := range data {
		ckey, ok := strings.CutSuffix(key, ".spec")
		if !ok || !strings.HasPrefix(ckey, "client.") {
			continue
		}
		var cc compiledClient
		if err := json.Unmarshal(v, &cc); err != nil {
			errs = append(errs, fmt.Errorf("secret set entry %s: %w", key, err))
			continue
		}
		if specKey(cc.Name) != key {
			errs = append(errs, fmt.Errorf("secret set entry %s names client %q", key, cc.Name))
			continue
		}
		c := v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: cc.Name, Namespace: namespace, CreationTimestamp: cc.Created}, Spec: cc.Spec}
		if id := AcceptedClientID(data, cc.Name); c.Spec.ClientID == "" && id != "" {
			c.Annotations = map[string]string{v1alpha1.AnnotationGeneratedClientID: id}
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, errs
}
