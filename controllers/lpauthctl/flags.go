package lpauthctl

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// commonFlags are the flags of every command, spelt as kubectl spells them.
func commonFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.namespace, "namespace", "", "the namespace (default: the kubeconfig context's)")
	fs.StringVar(&o.namespace, "n", "", "short for --namespace")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
	fs.StringVar(&o.context, "context", "", "the kubeconfig context (default: its current one)")
}

// issuerFlags are check's, and part of try's.
func issuerFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.issuerURL, "issuer-url", "", "reach the token server at this URL instead of the issuer (e.g. through kubectl port-forward)")
}

// valueFlags are the common flags that take a value, so splitCommand can step over the value of
// one written before the command ("-n brand-auth status").
var valueFlags = []string{"n", "namespace", "kubeconfig", "context", "issuer-url"}

// splitCommand finds the command among args (the first word that is neither a flag nor a flag's
// value) and returns it with the other arguments in their order.
func splitCommand(args []string) (string, []string, error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "-h" || a == "--help" || a == "help" {
			return "help", nil, nil
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			return a, append(slices.Clone(args[:i]), args[i+1:]...), nil
		}
		name := strings.TrimLeft(a, "-")
		if !strings.Contains(name, "=") && slices.Contains(valueFlags, name) {
			i++ // its value
		}
	}
	return "", nil, usagef("no command given")
}

// parseInterspersed parses flags wherever they are among the positional arguments, as kubectl
// does ("status brand -n brand-auth"); the standard flag package stops at the first argument.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// scheme is what the plugin reads: Secrets and our kinds.
func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}

// connect finds the cluster and namespace as kubectl does: --kubeconfig, else $KUBECONFIG, else
// ~/.kube/config; --context, else the current one; --namespace, else the context's, else
// "default".
func connect(o options) (client.Client, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: o.context}
	overrides.Context.Namespace = o.namespace
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, "", errors.New("no cluster configured: set KUBECONFIG or pass --kubeconfig")
		}
		return nil, "", fmt.Errorf("reading the kubeconfig: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("finding the namespace: %w", err)
	}
	cfg.Timeout = 30 * time.Second
	cfg.UserAgent = "kubectl-lpauth"
	c, err := client.New(cfg, client.Options{Scheme: scheme()})
	if err != nil {
		return nil, "", fmt.Errorf("connecting to %s: %w", cfg.Host, err)
	}
	return c, ns, nil
}
