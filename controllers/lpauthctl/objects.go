package lpauthctl

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// get reads one object of the namespace. A missing one is named with what the namespace has,
// so a typo is seen at once; a cluster without our CRDs is told what to install.
func (c *cli) get(ctx context.Context, name string, obj client.Object) error {
	err := c.kube.Get(ctx, client.ObjectKey{Namespace: c.namespace, Name: name}, obj)
	kind := kindOf(obj)
	switch {
	case err == nil:
		return nil
	case meta.IsNoMatchError(err):
		return noCRDs(kind)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s %q not found in namespace %q%s", kind, name, c.namespace, c.existing(ctx, obj))
	default:
		return fmt.Errorf("reading %s %s/%s: %w", kind, c.namespace, name, err)
	}
}

// existing lists the names of the namespace's objects of obj's kind, for a not-found message.
func (c *cli) existing(ctx context.Context, obj client.Object) string {
	var names []string
	switch obj.(type) {
	case *v1alpha1.TokenServer:
		var l v1alpha1.TokenServerList
		if c.kube.List(ctx, &l, client.InNamespace(c.namespace)) == nil {
			for _, o := range l.Items {
				names = append(names, o.Name)
			}
		}
	case *v1alpha1.SigningKey:
		var l v1alpha1.SigningKeyList
		if c.kube.List(ctx, &l, client.InNamespace(c.namespace)) == nil {
			for _, o := range l.Items {
				names = append(names, o.Name)
			}
		}
	case *v1alpha1.LivePersonAuthClient:
		var l v1alpha1.LivePersonAuthClientList
		if c.kube.List(ctx, &l, client.InNamespace(c.namespace)) == nil {
			for _, o := range l.Items {
				names = append(names, o.Name)
			}
		}
	default:
		return ""
	}
	if len(names) == 0 {
		return " (it has none; another namespace? -n NAMESPACE)"
	}
	slices.Sort(names)
	return " (it has: " + strings.Join(names, ", ") + ")"
}

func kindOf(obj client.Object) string {
	switch obj.(type) {
	case *v1alpha1.TokenServer:
		return "TokenServer"
	case *v1alpha1.SigningKey:
		return "SigningKey"
	case *v1alpha1.LivePersonAuthClient:
		return "LivePersonAuthClient"
	case *corev1.Secret:
		return "Secret"
	default:
		return fmt.Sprintf("%T", obj)
	}
}

func noCRDs(kind string) error {
	return fmt.Errorf("the cluster does not serve %s (%s): is lpauth-operator installed? (make build-installer; kubectl apply --server-side -f dist/install.yaml)",
		kind, v1alpha1.GroupVersion.String())
}

// clientsOf lists the namespace's clients of TokenServer ts, by name.
func (c *cli) clientsOf(ctx context.Context, ts string) ([]v1alpha1.LivePersonAuthClient, error) {
	var l v1alpha1.LivePersonAuthClientList
	if err := c.kube.List(ctx, &l, client.InNamespace(c.namespace)); err != nil {
		if meta.IsNoMatchError(err) {
			return nil, noCRDs("LivePersonAuthClient")
		}
		return nil, fmt.Errorf("listing LivePersonAuthClients in %s: %w", c.namespace, err)
	}
	var out []v1alpha1.LivePersonAuthClient
	for _, lpac := range l.Items {
		if lpac.Spec.TokenServerRef.Name == ts {
			out = append(out, lpac)
		}
	}
	slices.SortFunc(out, func(a, b v1alpha1.LivePersonAuthClient) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// secretValue reads one key of a Secret: the client secret, the issue-API credential. The
// value is returned, never printed or logged here.
func (c *cli) secretValue(ctx context.Context, name, key string) (string, error) {
	var s corev1.Secret
	if err := c.get(ctx, name, &s); err != nil {
		return "", err
	}
	v, ok := s.Data[key]
	if !ok || len(v) == 0 {
		return "", fmt.Errorf("the Secret %s/%s has no %q", c.namespace, name, key)
	}
	return string(v), nil
}
