package main

import (
	"io"
	"os/exec"
	"strings"
	"testing"
)

func TestRunRejectsBadCommands(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"serve"}, `unknown command "serve"`},
		// The laptop mode is its own program (hack/dev), not linked into this binary.
		{[]string{"dev"}, `unknown command "dev"`},
		{[]string{"tokenserver"}, "--namespace and --token-server are required"},
		{[]string{"manager", "--no-such-flag"}, "flag provided but not defined"},
	} {
		err := run(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}

func TestRunHelp(t *testing.T) {
	var out strings.Builder
	if err := run([]string{"help"}, &out); err != nil {
		t.Fatalf("run(help) = %v, want nil", err)
	}
	for _, cmd := range []string{"manager", "tokenserver", "make dev"} {
		if !strings.Contains(out.String(), cmd) {
			t.Errorf("help does not mention %q:\n%s", cmd, out.String())
		}
	}
}

// The shipped binary carries no dev wiring: it depends on neither envtest (controller-runtime's
// testing packages) nor hack/dev (which reads the demo samples) nor controllers/testenv.
func TestTheBinaryLinksNoTestEnvironment(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "/envtest") || strings.HasSuffix(dep, "/testenv") || strings.Contains(dep, "/hack/") {
			t.Errorf("the binary depends on %s", dep)
		}
	}
}

// kubectl runs the plugin as kubectl-lpauth (a copy or link of this binary); tests and people
// without the link run it as a command.
func TestThePluginIsFoundByItsName(t *testing.T) {
	for _, tc := range []struct {
		argv   []string
		want   []string
		plugin bool
	}{
		{[]string{"/usr/local/bin/kubectl-lpauth", "status", "-n", "x"}, []string{"status", "-n", "x"}, true},
		{[]string{"/krew/bin/kubectl-lpauth.exe", "check"}, []string{"check"}, true},
		{[]string{"kubectl-lpauth"}, []string{}, true},
		{[]string{"./lpauth-operator", "kubectl-lpauth", "try", "c"}, []string{"try", "c"}, true},
		{[]string{"./lpauth-operator", "manager"}, nil, false},
		{[]string{"/kubectl-lpauth-old", "status"}, nil, false},
	} {
		got, ok := pluginArgs(tc.argv)
		if ok != tc.plugin || strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("pluginArgs(%q) = %q, %v; want %q, %v", tc.argv, got, ok, tc.want, tc.plugin)
		}
	}
}
