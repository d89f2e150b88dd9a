// Command lpauth-operator is one binary with two roles and a kubectl plugin:
//
//	lpauth-operator manager      the operator: reconciles SigningKeys, TokenServers, LivePersonAuthClients
//	lpauth-operator tokenserver  the token server LivePerson calls (deployed by the operator)
//	kubectl-lpauth ...           `kubectl lpauth`, when installed under that name (or lpauth-operator kubectl-lpauth ...)
//
// One image serves both roles, so the operator deploys its own image as the token server and the
// two never drift apart; the plugin is the same build, so it reads the very API it was built with. The whole system on an embedded control plane, for a laptop, is hack/dev
// (`make dev`): it is not in this binary.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/lpauth/lpauth-operator/controllers"
	"github.com/lpauth/lpauth-operator/controllers/lpauthctl"
	"github.com/lpauth/lpauth-operator/tokenserver"
)

const usage = `Usage: lpauth-operator <command> [flags]

Commands:
  manager         run the operator (reconciles SigningKeys, TokenServers, LivePersonAuthClients)
  tokenserver     run the token server LivePerson calls
  kubectl-lpauth  the kubectl plugin ("kubectl lpauth" once this binary is installed as kubectl-lpauth; make plugin)

For everything on an embedded control plane, on a laptop: make dev (hack/dev).

Run "lpauth-operator <command> -h" for a command's flags.
`

// pluginName is the name kubectl finds the plugin under: kubectl lpauth runs kubectl-lpauth.
const pluginName = "kubectl-lpauth"

func main() {
	if args, ok := pluginArgs(os.Args); ok {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		code := lpauthctl.Main(ctx, args, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	if err := run(os.Args[1:], os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "lpauth-operator:", err)
		}
		os.Exit(2)
	}
}

// pluginArgs are the plugin's arguments when the binary runs as the plugin: called
// kubectl-lpauth (kubectl runs it so), or with kubectl-lpauth as its command.
func pluginArgs(argv []string) ([]string, bool) {
	if len(argv) == 0 {
		return nil, false
	}
	if strings.TrimSuffix(filepath.Base(argv[0]), ".exe") == pluginName {
		return argv[1:], true
	}
	if len(argv) > 1 && argv[1] == pluginName {
		return argv[2:], true
	}
	return nil, false
}

func run(args []string, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "manager":
		return controllers.Run(rest, stderr)
	case "tokenserver":
		return tokenserver.Run(rest, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stderr, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}
