package lpauthctl

import (
	"flag"
	"slices"
	"strings"
	"testing"
)

// Every flag that takes a value may come before the command, its value with it: splitCommand
// knows them from the flag sets, not from a list kept by hand.
func TestFlagsBeforeTheCommandKeepTheirValues(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		wantCmd  string
		wantRest []string
	}{
		{[]string{"--wait", "5s", "rotate", "keys"}, "rotate", []string{"--wait", "5s", "keys"}},
		{[]string{"--force", "rotate", "keys"}, "rotate", []string{"--force", "keys"}},
		{[]string{"--sub", "customer-42", "try", "c"}, "try", []string{"--sub", "customer-42", "c"}},
		{[]string{"--redirect-uri", "https://x", "--client-auth", "post", "try", "c"}, "try", []string{"--redirect-uri", "https://x", "--client-auth", "post", "c"}},
		{[]string{"-wait=5s", "revoke", "keys", "k"}, "revoke", []string{"-wait=5s", "keys", "k"}},
	} {
		cmd, rest, err := splitCommand(tc.args)
		if err != nil || cmd != tc.wantCmd || !slices.Equal(rest, tc.wantRest) {
			t.Errorf("splitCommand(%q) = %q, %q, %v; want %q, %q", tc.args, cmd, rest, err, tc.wantCmd, tc.wantRest)
		}
	}
	// Every value flag of every command, in both spellings.
	for name, c := range commands {
		flagSet(name, c, &options{}).VisitAll(func(f *flag.Flag) {
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
				return
			}
			for _, spelt := range []string{"-" + f.Name, "--" + f.Name} {
				args := []string{spelt, "VALUE", name, "ARG"}
				if cmd, rest, err := splitCommand(args); err != nil || cmd != name || !slices.Equal(rest, []string{spelt, "VALUE", "ARG"}) {
					t.Errorf("splitCommand(%q) = %q, %q, %v: %s takes a value", args, cmd, rest, err, spelt)
				}
			}
		})
	}
}

// A kid is base64url, so one in 64 starts with '-': revoke takes it as a kid, not as a flag,
// after the SigningKey or after "--"; what is not a kid gets a hint at "--".
func TestRevokeTakesKidsStartingWithADash(t *testing.T) {
	kid := "-ZcTaPN-aAUO1r2bzI6khF87Q2V8kQnc-Rt-fnBuRqE"
	kid2 := "--" + strings.Repeat("A", 41)
	rev := commands["revoke"]
	for _, args := range [][]string{
		{"keys", kid, kid2, "-n", "ns"},
		{"-n", "ns", "keys", "--", kid, kid2},
		{"keys", "-n=ns", "--wait", "1s", "--", kid, kid2},
	} {
		var o options
		fs := flagSet("revoke", rev, &o)
		fs.SetOutput(new(strings.Builder))
		pos, err := parseInterspersed(fs, args, rev.positional)
		if err != nil || !slices.Equal(pos, []string{"keys", kid, kid2}) || o.namespace != "ns" {
			t.Errorf("revoke %q: positional %q, namespace %q, %v", args, pos, o.namespace, err)
		}
	}
	// Through the whole command line: a short '-' word is refused with the hint, before any
	// cluster is needed.
	var out, errs strings.Builder
	err := Run(t.Context(), []string{"revoke", "keys", "-ZcTa"}, &out, &errs)
	if _, ok := err.(usageError); !ok || !strings.Contains(err.Error(), "a key id starting with '-' goes after --: kubectl lpauth revoke SIGNINGKEY -- KID") {
		t.Errorf("revoke keys -ZcTa: %v", err)
	}
	// Other commands still refuse an unknown flag, without the hint.
	err = Run(t.Context(), []string{"status", "-" + strings.Repeat("A", 43)}, &out, &errs)
	if err == nil || strings.Contains(err.Error(), "key id") {
		t.Errorf("status with a kid-like flag: %v", err)
	}
}
