package lpauthctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lpauth/lpauth-operator/api/keys"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// rotate and revoke write the SigningKey annotations DESIGN.md and the README document, exactly
// as `kubectl annotate` would, then wait for the operator to act and say what it did.

func rotateFlags(fs *flag.FlagSet, o *options) {
	fs.BoolVar(&o.force, "force", false, "rotate even though PEM-mode clients have not acknowledged the Next key (their LivePerson logins fail until their console holds it)")
	waitFlag(fs, o)
}

func revokeFlags(fs *flag.FlagSet, o *options) { waitFlag(fs, o) }

func waitFlag(fs *flag.FlagSet, o *options) {
	fs.DurationVar(&o.wait, "wait", 30*time.Second, "how long to wait for the operator to act (0: do not wait)")
}

// runRotate sets auth.lpauth.dev/rotate to a new value: each distinct value rotates once.
func runRotate(ctx context.Context, c *cli, args []string) error {
	sk := &v1alpha1.SigningKey{}
	if err := c.get(ctx, args[0], sk); err != nil {
		return err
	}
	value := rotateValue(c.now(), c.opts.force)
	before := sk.Status.ActiveKeyID
	patch := client.MergeFrom(sk.DeepCopy())
	metav1.SetMetaDataAnnotation(&sk.ObjectMeta, v1alpha1.AnnotationRotate, value)
	if err := c.kube.Patch(ctx, sk, patch); err != nil {
		return fmt.Errorf("annotating SigningKey %s/%s: %w", sk.Namespace, sk.Name, err)
	}
	fmt.Fprintf(c.stdout, "Annotated SigningKey %s/%s %s=%s\n", sk.Namespace, sk.Name, v1alpha1.AnnotationRotate, value)
	if c.opts.wait <= 0 {
		return nil
	}
	sk, err := c.waitForSigningKey(ctx, sk.Name, func(sk *v1alpha1.SigningKey) bool { return sk.Status.LastRotateRequest == value })
	if err != nil {
		return err
	}
	if sk.Status.ActiveKeyID != before {
		fmt.Fprintf(c.stdout, "Rotated: %s signs now (was %s).\n", sk.Status.ActiveKeyID, orNone(before))
		if next := keyIn(sk, v1alpha1.KeyNext); next != "" {
			fmt.Fprintf(c.stdout, "New Next key: %s (published now, signs at the next rotation).\n", next)
		}
		if r := meta.FindStatusCondition(sk.Status.Conditions, v1alpha1.ConditionRotating); r != nil && r.Reason == v1alpha1.ReasonRotationEarly {
			fmt.Fprintf(c.stdout, "Warning: %s\n", r.Message)
		}
		return nil
	}
	// Handled without a new Active key: the operator held it for PEM-mode clients.
	return c.held(ctx, sk)
}

// held says why a handled rotation left the Active key signing: LivePerson's console pins one
// key for each PEM-mode client of the SigningKey, so the rotation waits for each to hold the
// Next key (README "LivePerson clients").
func (c *cli) held(ctx context.Context, sk *v1alpha1.SigningKey) error {
	pem, err := c.pemClientsOf(ctx, sk.Name)
	if err != nil || len(pem) == 0 {
		return fmt.Errorf("the operator handled the request but %s still signs: Rotating is %s (kubectl describe sk %s -n %s shows the events)",
			orNone(sk.Status.ActiveKeyID), condition(sk.Status.Conditions, v1alpha1.ConditionRotating, metav1.ConditionFalse), sk.Name, sk.Namespace)
	}
	next := keyIn(sk, v1alpha1.KeyNext)
	return fmt.Errorf("held: %s still signs, because PEM-mode client(s) %s have not acknowledged the Next key %s. For each: paste its JWT public key "+
		"(kubectl get sk %s -o jsonpath='{.status.nextPublicKey}') into LivePerson's console, then kubectl annotate lpac/NAME %s=%s --overwrite; "+
		"or rotate --force, and their logins fail until their console holds the new key",
		orNone(sk.Status.ActiveKeyID), strings.Join(pem, ", "), orNone(next), sk.Name, v1alpha1.AnnotationConsoleUpdated, next)
}

// pemClientsOf are the PEM-mode clients of the TokenServers signing with SigningKey sk.
func (c *cli) pemClientsOf(ctx context.Context, sk string) ([]string, error) {
	var tss v1alpha1.TokenServerList
	if err := c.kube.List(ctx, &tss, client.InNamespace(c.namespace)); err != nil {
		return nil, err
	}
	var out []string
	for _, ts := range tss.Items {
		if ts.Spec.SigningKeyRef.Name != sk {
			continue
		}
		clients, err := c.clientsOf(ctx, ts.Name)
		if err != nil {
			return nil, err
		}
		for _, lpac := range clients {
			if lpac.Spec.PublicKeyMode == v1alpha1.PublicKeyPEM {
				out = append(out, lpac.Name)
			}
		}
	}
	return out, nil
}

// rotateValue is a new rotate request: a value never used before (each distinct value rotates
// once), that says who asked and when.
func rotateValue(now time.Time, force bool) string {
	v := "kubectl-lpauth-" + now.UTC().Format(time.RFC3339Nano)
	if force {
		v = v1alpha1.ForceRotatePrefix + v
	}
	return v
}

// runRevoke adds kids to auth.lpauth.dev/revoke. The README says to add rather than replace:
// kids already listed stay, so a request the operator has not handled yet is never lost.
func runRevoke(ctx context.Context, c *cli, args []string) error {
	name, kids := args[0], args[1:]
	for _, kid := range kids {
		if !keys.IsKID(kid) {
			return usagef("%q is not a kid: a kid is 43 base64url characters, as `kubectl lpauth status` lists them", kid)
		}
	}
	sk := &v1alpha1.SigningKey{}
	if err := c.get(ctx, name, sk); err != nil {
		return err
	}
	for _, kid := range kids {
		if !slices.ContainsFunc(sk.Status.Keys, func(k v1alpha1.KeyStatus) bool { return k.KeyID == kid }) {
			fmt.Fprintf(c.stderr, "warning: %s is not one of %s's keys now; it is put on the deny-list all the same\n", kid, sk.Name)
		}
	}
	value, err := revokeValue(sk.Annotations[v1alpha1.AnnotationRevoke], sk.Status.RevokedKeyIDs, kids)
	if err != nil {
		return err
	}
	before := sk.Status.ActiveKeyID
	// Optimistic lock: two people revoking at once must not drop each other's kids.
	patch := client.MergeFromWithOptions(sk.DeepCopy(), client.MergeFromWithOptimisticLock{})
	metav1.SetMetaDataAnnotation(&sk.ObjectMeta, v1alpha1.AnnotationRevoke, value)
	if err := c.kube.Patch(ctx, sk, patch); err != nil {
		return fmt.Errorf("annotating SigningKey %s/%s (run it again if someone else changed it meanwhile): %w", sk.Namespace, sk.Name, err)
	}
	fmt.Fprintf(c.stdout, "Annotated SigningKey %s/%s %s=%s\n", sk.Namespace, sk.Name, v1alpha1.AnnotationRevoke, value)
	if c.opts.wait <= 0 {
		return nil
	}
	sk, err = c.waitForSigningKey(ctx, sk.Name, func(sk *v1alpha1.SigningKey) bool {
		return !slices.ContainsFunc(kids, func(kid string) bool { return !slices.Contains(sk.Status.RevokedKeyIDs, kid) })
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "Revoked: %s (on the deny-list, out of the Secret and the JWKS).\n", strings.Join(kids, ", "))
	if sk.Status.ActiveKeyID != before {
		fmt.Fprintf(c.stdout, "The Active key was revoked: %s signs now.\n", orNone(sk.Status.ActiveKeyID))
	}
	return nil
}

// revokeValue is the revoke annotation with kids added to what it lists (in order, once each).
// The operator acts on at most keys.MaxRevokeRequest kids per value, so when the list would be
// longer, kids already on the deny-list (revoked, handled) make room.
func revokeValue(current string, revoked, add []string) (string, error) {
	listed, _ := keys.ParseKIDs(current) // values that are not kids were reported by the operator
	for _, kid := range add {
		if !slices.Contains(listed, kid) {
			listed = append(listed, kid)
		}
	}
	for i := 0; len(listed) > keys.MaxRevokeRequest && i < len(listed); {
		if slices.Contains(revoked, listed[i]) && !slices.Contains(add, listed[i]) {
			listed = slices.Delete(listed, i, i+1)
			continue
		}
		i++
	}
	if len(listed) > keys.MaxRevokeRequest {
		return "", fmt.Errorf("the revoke annotation would list %d kids not yet handled; the operator acts on at most %d at a time: revoke fewer, wait, then the rest",
			len(listed), keys.MaxRevokeRequest)
	}
	return strings.Join(listed, ","), nil
}

// waitForSigningKey polls until done says the operator has acted, for --wait.
func (c *cli) waitForSigningKey(ctx context.Context, name string, done func(*v1alpha1.SigningKey) bool) (*v1alpha1.SigningKey, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.wait)
	defer cancel()
	for {
		sk := &v1alpha1.SigningKey{}
		if err := c.kube.Get(ctx, client.ObjectKey{Namespace: c.namespace, Name: name}, sk); err == nil && done(sk) {
			return sk, nil
		} else if err != nil && ctx.Err() == nil {
			return nil, fmt.Errorf("reading SigningKey %s/%s: %w", c.namespace, name, err)
		}
		select {
		case <-ctx.Done():
			return nil, errors.New("the operator has not acted within " + c.opts.wait.String() +
				": is it running? (kubectl get deploy -n lpauth-system); the annotation stays, and it acts when it can")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func keyIn(sk *v1alpha1.SigningKey, state v1alpha1.KeyState) string {
	for _, k := range sk.Status.Keys {
		if k.State == state {
			return k.KeyID
		}
	}
	return ""
}

func orNone(kid string) string {
	if kid == "" {
		return "(none)"
	}
	return kid
}
