// Package lpauthctl is `kubectl lpauth`: the operator's objects seen and acted on from a
// terminal. status shows a TokenServer with its keys and clients, console prints LivePerson's
// form ready to paste, rotate and revoke set the SigningKey annotations DESIGN.md documents,
// check looks at the issuer from outside as LivePerson does, and try runs LivePerson's whole
// code flow against it.
//
// It is the same binary as the operator, installed as kubectl-lpauth (main.go dispatches on
// argv[0]). It lives under controllers/ because the top level is fixed and this is the
// operator's client side: it reads and annotates the objects the reconcilers own, through the
// names and formats in api/. Like LivePerson, it reaches the token server only over HTTP: it
// imports nothing of tokenserver/.
package lpauthctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lpauth/lpauth-operator/api/keys"
)

// Exit codes: what a script running the plugin can tell apart.
const (
	ExitOK      = 0
	ExitProblem = 1 // the command ran and found a problem, or an operation failed
	ExitUsage   = 2 // bad command line
)

// Name is what the plugin is called as, in messages: kubectl runs kubectl-lpauth for it.
const Name = "kubectl lpauth"

const usage = `kubectl lpauth: LivePerson's OpenID provider (lpauth-operator) from a terminal.

Commands:
  status [TOKENSERVER]        each TokenServer: issuer, endpoints, keys and their times, clients with their console values
  console CLIENT              LivePerson's "Consumer Identity Provider" form, ready to paste (--show-secret prints the client secret)
  rotate SIGNINGKEY           rotate now: the Next key signs, a new Next key is made (auth.lpauth.dev/rotate)
  revoke SIGNINGKEY KID...    drop compromised keys from the JWKS at once (auth.lpauth.dev/revoke); cannot be undone
  check TOKENSERVER           fetch discovery and the JWKS from the issuer, as LivePerson does, and compare with the cluster
  try CLIENT                  mint a code through the issue API, redeem it at /token as LivePerson, verify the id_token

Flags of every command:
  -n, --namespace NS          the namespace (default: the kubeconfig context's)
  --kubeconfig FILE           the kubeconfig (default: $KUBECONFIG, then ~/.kube/config)
  --context NAME              the kubeconfig context (default: its current one)

check and try take --issuer-url URL: reach the token server there instead of at the issuer
(e.g. http://127.0.0.1:8080 followed by the issuer's path, through kubectl port-forward
svc/NAME-token-server 8080:80). https, or http on loopback only. try sends the issue-API
credential and the client secret to the issuer's host or loopback only, unless
--send-credentials-to HOST names --issuer-url's host; it follows no redirect.

Exit status: 0 all good, 1 a problem was found or an operation failed, 2 bad usage.
Run "kubectl lpauth COMMAND -h" for a command's flags.
`

// command is one subcommand: its own flags, added to the common ones, and what it does.
type command struct {
	args  string // the positional arguments, for its usage line
	flags func(fs *flag.FlagSet, o *options)
	// min and max bound the positional arguments (max < 0: no bound).
	min, max int
	// positional, when set, says which arguments starting with '-' are positional, not flags.
	positional func(arg string) bool
	// dashHint is added to an unknown flag's error: how to write a positional argument that
	// starts with '-'.
	dashHint string
	run      func(ctx context.Context, c *cli, args []string) error
}

var commands = map[string]command{
	"status":  {args: "[TOKENSERVER]", min: 0, max: 1, run: runStatus},
	"console": {args: "CLIENT", min: 1, max: 1, flags: consoleFlags, run: runConsole},
	"rotate":  {args: "SIGNINGKEY", min: 1, max: 1, flags: rotateFlags, run: runRotate},
	"revoke":  {args: "SIGNINGKEY KID...", min: 2, max: -1, flags: revokeFlags, positional: keys.IsKID, dashHint: revokeDashHint, run: runRevoke},
	"check":   {args: "TOKENSERVER", min: 1, max: 1, flags: issuerFlags, run: runCheck},
	"try":     {args: "CLIENT", min: 1, max: 1, flags: tryFlags, run: runTry},
}

// A kid is base64url, so it may start with '-': revoke takes one as a kid, not a flag, and says
// how to write what it takes for a flag.
const revokeDashHint = "a key id starting with '-' goes after --: kubectl lpauth revoke SIGNINGKEY -- KID"

// options are every flag's value; each command registers the ones it takes.
type options struct {
	namespace, kubeconfig, context string
	issuerURL                      string
	showSecret, force              bool
	wait                           time.Duration
	subject, redirectURI           string
	clientAuth                     string
	sendCredentialsTo              string
}

// cli is what a command works with.
type cli struct {
	stdout, stderr io.Writer
	kube           client.Client
	namespace      string
	opts           options
	http           *http.Client
	now            func() time.Time
}

// Main runs the plugin with args (without the program's name) and returns the exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := Run(ctx, args, stdout, stderr)
	var u usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &u):
		fmt.Fprintf(stderr, "%s: %v\n", Name, err)
		return ExitUsage
	default:
		fmt.Fprintf(stderr, "%s: %v\n", Name, err)
		return ExitProblem
	}
}

// usageError is a bad command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// Run runs one command. Output goes to stdout; what goes wrong is returned (and, for check and
// try, each failed step is also written to stdout in its place).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	name, rest, err := splitCommand(args)
	if err != nil {
		fmt.Fprint(stderr, usage)
		return err
	}
	if name == "help" || name == "-h" || name == "--help" {
		fmt.Fprint(stdout, usage)
		return nil
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprint(stderr, usage)
		return usagef("unknown command %q", name)
	}
	var o options
	fs := flagSet(name, cmd, &o)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s %s %s [flags]\n\nFlags:\n", Name, name, cmd.args)
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, rest, cmd.positional)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		if cmd.dashHint != "" && strings.HasPrefix(err.Error(), "flag provided but not defined") {
			return usagef("%v (%s)", err, cmd.dashHint)
		}
		return usageError{err.Error()}
	}
	if len(pos) < cmd.min || cmd.max >= 0 && len(pos) > cmd.max {
		fs.Usage()
		return usagef("%s takes %s, got %d argument(s)", name, cmd.args, len(pos))
	}
	c := &cli{stdout: stdout, stderr: stderr, opts: o, http: newHTTPClient(), now: time.Now}
	if c.kube, c.namespace, err = connect(o); err != nil {
		return err
	}
	return cmd.run(ctx, c, pos)
}
