package lpauthctl

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

func consoleFlags(fs *flag.FlagSet, o *options) {
	fs.BoolVar(&o.showSecret, "show-secret", false, "print the client secret (read from its Secret) instead of where it is")
}

// runConsole prints LivePerson's form for one client, from the status the operator wrote.
func runConsole(ctx context.Context, c *cli, args []string) error {
	lpac := &v1alpha1.LivePersonAuthClient{}
	if err := c.get(ctx, args[0], lpac); err != nil {
		return err
	}
	con := lpac.Status.LivePersonConsole
	if con == nil {
		return fmt.Errorf("LivePersonAuthClient %s/%s has no console values yet: Ready is %s",
			lpac.Namespace, lpac.Name, condition(lpac.Status.Conditions, v1alpha1.ConditionReady, metav1.ConditionTrue))
	}
	// Values LivePerson cannot use yet are still printed (they are what to paste), with why.
	if !meta.IsStatusConditionTrue(lpac.Status.Conditions, v1alpha1.ConditionReady) {
		fmt.Fprintf(c.stderr, "warning: %s is not Ready: %s\n", lpac.Name, condition(lpac.Status.Conditions, v1alpha1.ConditionReady, metav1.ConditionTrue))
	}
	if meta.IsStatusConditionTrue(lpac.Status.Conditions, v1alpha1.ConditionConsoleUpdateRequired) {
		fmt.Fprintf(c.stderr, "warning: %s: %s\n", v1alpha1.ConditionConsoleUpdateRequired,
			condition(lpac.Status.Conditions, v1alpha1.ConditionConsoleUpdateRequired, metav1.ConditionFalse))
	}
	secret := hiddenSecret(con.ClientSecretRef)
	if c.opts.showSecret && con.ClientSecretRef != nil {
		v, err := c.secretValue(ctx, con.ClientSecretRef.Name, con.ClientSecretRef.Key)
		if err != nil {
			return fmt.Errorf("reading the client secret: %w", err)
		}
		secret = v
	} else if c.opts.showSecret && con.AuthenticationType == string(v1alpha1.FlowCode) {
		return errors.New("the status names no client secret yet: see the client's Ready condition")
	}
	fmt.Fprintf(c.stdout, "LivePerson console for LivePersonAuthClient %s/%s (account %s)\n", lpac.Namespace, lpac.Name, lpac.Spec.AccountID)
	fmt.Fprintln(c.stdout, "Consumer Identity Provider, Authentication: OAuth 2.0. Paste each value exactly:")
	fmt.Fprintln(c.stdout)
	writeFields(c.stdout, "  ", consoleFields(con, secret))
	return nil
}
