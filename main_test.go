package main

import (
	"io"
	"net"
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
		{[]string{"dev", "--no-such-flag"}, "flag provided but not defined"},
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
	for _, cmd := range []string{"manager", "tokenserver", "dev"} {
		if !strings.Contains(out.String(), cmd) {
			t.Errorf("help does not mention %q:\n%s", cmd, out.String())
		}
	}
}

// A taken port is the commonest failure of `make dev`: it must say so, not print a stack trace.
func TestDevSaysWhenThePortIsTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = run([]string{"dev", "--listen", ln.Addr().String()}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "another process is using it") || !strings.Contains(err.Error(), "DEV_LISTEN=") {
		t.Fatalf("dev on a taken port = %v, want a message naming the port and the way out", err)
	}
}
