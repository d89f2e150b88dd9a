package main

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

func TestReadRESPReturnsOneValueAsItCame(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want string }{
		{"command", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv\n\r\n", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv\n\r\n"},
		{"claim answer", "*2\r\n:1700000000\r\n:1\r\n+OK\r\n", "*2\r\n:1700000000\r\n:1\r\n"},
		{"error", "-NOSCRIPT No matching script\r\n:1\r\n", "-NOSCRIPT No matching script\r\n"},
		{"nil bulk", "$-1\r\n+OK\r\n", "$-1\r\n"},
		{"RESP3 map", "%1\r\n+a\r\n*1\r\n_\r\n+next\r\n", "%1\r\n+a\r\n*1\r\n_\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := readRESP(bufio.NewReader(strings.NewReader(tc.in)))
			if err != nil || string(got) != tc.want {
				t.Fatalf("readRESP = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestReplayedClaimKeepsItsLengths(t *testing.T) {
	t.Parallel()
	cmd := respCommand("EVAL", "return 1", "1", "lpauth:"+claimPlaceholder, "token", "300000")
	if commandNames([][]byte{cmd}) != "EVAL" {
		t.Fatalf("commandNames = %q", commandNames([][]byte{cmd}))
	}
	replayed := bytes.ReplaceAll(cmd, []byte(claimPlaceholder), []byte(claimID(123456)))
	want := respCommand("EVAL", "return 1", "1", "lpauth:benchclaim000000123456", "token", "300000")
	if !bytes.Equal(replayed, want) {
		t.Fatalf("replayed %q, want %q", replayed, want)
	}
}
