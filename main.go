// Command lpauth-operator is one binary with two roles:
//
//	lpauth-operator manager      the operator: reconciles SigningKeys, TokenServers, LivePersonAuthClients
//	lpauth-operator tokenserver  the token server LivePerson calls (deployed by the operator)
//
// One image serves both, so the operator deploys its own image as the token server and the two
// never drift apart. The whole system on an embedded control plane, for a laptop, is hack/dev
// (`make dev`): it is not in this binary.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/lpauth/lpauth-operator/controllers"
	"github.com/lpauth/lpauth-operator/tokenserver"
)

const usage = `Usage: lpauth-operator <command> [flags]

Commands:
  manager      run the operator (reconciles SigningKeys, TokenServers, LivePersonAuthClients)
  tokenserver  run the token server LivePerson calls

For everything on an embedded control plane, on a laptop: make dev (hack/dev).

Run "lpauth-operator <command> -h" for a command's flags.
`

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "lpauth-operator:", err)
		}
		os.Exit(2)
	}
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
