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

// takesValue reports whether arg is a flag of fs written without its value ("--wait", not
// "--wait=5s" nor a boolean flag such as "--force"): the next argument is its value. The flag
// package decides the same way, so the two never disagree.
func takesValue(fs *flag.FlagSet, arg string) bool {
	if !isFlag(arg) {
		return false
	}
	name := strings.TrimPrefix(strings.TrimPrefix(arg, "-"), "-")
	if strings.Contains(name, "=") {
		return false
	}
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

func isFlag(arg string) bool { return len(arg) > 1 && arg[0] == '-' }

// flagSet is the flag set of command name: the common flags and its own.
func flagSet(name string, cmd command, o *options) *flag.FlagSet {
	fs := flag.NewFlagSet(Name+" "+name, flag.ContinueOnError)
	commonFlags(fs, o)
	if cmd.flags != nil {
		cmd.flags(fs, o)
	}
	return fs
}

// anyTakesValue reports whether arg is a flag taking a value in some command: before the
// command is found, a flag of any command may come ("--wait 5s rotate KEYS").
func anyTakesValue(arg string) bool {
	for name, cmd := range commands {
		if takesValue(flagSet(name, cmd, &options{}), arg) {
			return true
		}
	}
	return false
}

// splitCommand finds the command among args (the first word that is neither a flag nor a flag's
// value) and returns it with the other arguments in their order.
func splitCommand(args []string) (string, []string, error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "-h" || a == "--help" || a == "help" {
			return "help", nil, nil
		}
		if !isFlag(a) {
			return a, append(slices.Clone(args[:i]), args[i+1:]...), nil
		}
		if anyTakesValue(a) {
			i++ // its value
		}
	}
	return "", nil, usagef("no command given")
}

// parseInterspersed parses flags wherever they are among the positional arguments, as kubectl
// does ("status brand -n brand-auth"); the standard flag package stops at the first argument.
// After "--" every argument is positional. positional (may be nil) says which arguments are
// positional even though they start with '-': revoke's kids, a quarter of which do
// (base64url thumbprints).
func parseInterspersed(fs *flag.FlagSet, args []string, positional func(string) bool) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		a := args[0]
		switch {
		case a == "--":
			return append(pos, args[1:]...), nil
		case !isFlag(a) || positional != nil && positional(a):
			pos = append(pos, a)
			args = args[1:]
		default:
			n := 1
			if takesValue(fs, a) && len(args) > 1 {
				n = 2
			}
			if err := fs.Parse(args[:n]); err != nil {
				return nil, err
			}
			args = args[n:]
		}
	}
	return pos, nil
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
