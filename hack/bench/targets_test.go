package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTargetLinesReadBackAsPrinted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   target
		line string
		num  float64
		unit string
		pass bool
		scor bool
	}{
		{"below a limit", atMost("ready-10000", 41.25, 60, " s", "%.1f"),
			"TARGET ready-10000 | 41.2 s | < 60.0 s | 0.69 | PASS", 41.2, "s", true, true},
		{"over a limit", atMost("cold-start-10000", 2612, 1000, " ms", "%.0f"),
			"TARGET cold-start-10000 | 2612 ms | < 1000 ms | 2.61 | MISS", 2612, "ms", false, true},
		{"at least, met exactly", atLeast("token-vs-signer", 0.9, 0.9, "", "%.2f"),
			"TARGET token-vs-signer | 0.90 | >= 0.90 | 1.00 | PASS", 0.9, "", true, true},
		{"percent unit without a space", atLeast("token-server-under-5ms", 98.4, 99.5, "%", "%.2f"),
			"TARGET token-server-under-5ms | 98.40% | >= 99.50% | 0.99 | MISS", 98.4, "%", false, true},
		{"not over, equal", notOver("writes-per-client-10000", 3, 3, "", "%.2f"),
			"TARGET writes-per-client-10000 | 3.00 | <= 3.00 | 1.00 | PASS", 3, "", true, true},
		{"info without a ratio", info("rebuild-30000", 240, " ms", "%.0f", "", math.NaN()),
			"TARGET rebuild-30000 | 240 ms | report | - | INFO", 240, "ms", false, false},
		{"info with a reference", info("redis-2-processes", 3120, " req/s", "%.0f", "1 process: 1890 req/s", 3120.0/1890),
			"TARGET redis-2-processes | 3120 req/s | 1 process: 1890 req/s | 1.65 | INFO", 3120, "req/s", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.in.String(); got != tc.line {
				t.Fatalf("String() = %q, want %q", got, tc.line)
			}
			p, ok := parseTargetLine("  " + tc.line + "\n")
			if !ok {
				t.Fatalf("parseTargetLine(%q) refused it", tc.line)
			}
			if p.name != tc.in.name || p.num != tc.num || p.unit != tc.unit || p.passed != tc.pass || p.scored != tc.scor || p.limit != tc.in.limit {
				t.Fatalf("parseTargetLine(%q) = %+v", tc.line, p)
			}
		})
	}
}

func TestParseTargetLineRefusesOtherLines(t *testing.T) {
	t.Parallel()
	for _, line := range []string{
		"",
		"  10000 LivePersonAuthClients in all → all Ready   41.2 s",
		"Targets (issue 18): TARGET name | measured | target | measured ÷ target | PASS",
		"TARGET ready-10000 | 41.2 s | < 60 s | 0.69",              // a field short
		"TARGET ready 10000 | 41.2 s | < 60 s | 0.69 | PASS",       // a space in the name
		"TARGET ready-10000 | n/a | < 60 s | - | MISS",             // no number
		"TARGET ready-10000 | 41.2 s | < 60 s | 0.69 | PERHAPS",    // no such verdict
		"TARGET ready-10000 | 41.2 s | < 60 s | 0.69 | PASS | x",   // a field too many
		"#TARGET ready-10000 | 41.2 s | < 60 s | 0.69 | PASS",      // not at the start
		"TARGET  | 41.2 s | < 60 s | 0.69 | PASS",                  // no name
		"TARGETready-10000 | 41.2 s | < 60 s | 0.69 | PASS",        // no space after TARGET
		"TARGET ready-10000 | 1,041.2 s | < 60 s | 17.35 | MISS x", // verdict with trailing text
	} {
		if p, ok := parseTargetLine(line); ok {
			t.Errorf("parseTargetLine(%q) = %+v, want refused", line, p)
		}
	}
}

func lines(t *testing.T, ls ...string) []parsedTarget {
	t.Helper()
	var out []parsedTarget
	for _, l := range ls {
		p, ok := parseTargetLine(l)
		if !ok {
			t.Fatalf("fixture %q does not parse", l)
		}
		out = append(out, p)
	}
	return out
}

func TestSummarizeTargetsGivesMinMaxAndPasses(t *testing.T) {
	t.Parallel()
	runs := [][]parsedTarget{
		lines(t,
			"TARGET ready-10000 | 58.0 s | < 60.0 s | 0.97 | PASS",
			"TARGET rss-10000 | 125 MiB | < 128 MiB | 0.98 | PASS",
			"TARGET rebuild-30000 | 240 ms | report | - | INFO"),
		lines(t,
			"TARGET ready-10000 | 41.2 s | < 60.0 s | 0.69 | PASS",
			"TARGET rss-10000 | 131 MiB | < 128 MiB | 1.02 | MISS",
			"TARGET token-vs-signer | 0.93 | >= 0.90 | 1.03 | PASS"),
		lines(t,
			"TARGET ready-10000 | 63.5 s | < 60.0 s | 1.06 | MISS",
			"TARGET rebuild-30000 | 198 ms | report | - | INFO",
			"TARGET token-vs-signer | 0.66 | >= 0.90 | 0.73 | MISS"),
	}
	want := []string{
		"ready-10000 | 41.2–63.5 s | < 60.0 s | 0.69–1.06 | 2/3 passed",
		"rss-10000 | 125–131 MiB | < 128 MiB | 0.98–1.02 | 1/2 passed",
		"rebuild-30000 | 198–240 ms | report | - | info, 2 run(s)",
		"token-vs-signer | 0.66–0.93 | >= 0.90 | 0.73–1.03 | 1/2 passed",
	}
	got := summarizeTargets(runs)
	if len(got) != len(want) {
		t.Fatalf("%d summaries, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("summary %d = %q, want %q", i, got[i].String(), want[i])
		}
	}
}

func TestSummarizeTargetsOneRunAndMixedUnits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		runs [][]parsedTarget
		want string
	}{
		{"one run: no span", [][]parsedTarget{lines(t, "TARGET served-p99-10000 | 812 ms | < 1000 ms | 0.81 | PASS")},
			"served-p99-10000 | 812 ms | < 1000 ms | 0.81 | 1/1 passed"},
		{"a unit without a space keeps none", [][]parsedTarget{
			lines(t, "TARGET token-server-under-5ms | 98.40% | >= 99.50% | 0.99 | MISS"),
			lines(t, "TARGET token-server-under-5ms | 99.71% | >= 99.50% | 1.00 | PASS")},
			"token-server-under-5ms | 98.40–99.71% | >= 99.50% | 0.99–1.00 | 1/2 passed"},
		{"equal values: no span", [][]parsedTarget{
			lines(t, "TARGET writes-per-client-10000 | 3.00 | <= 3.00 | 1.00 | PASS"),
			lines(t, "TARGET writes-per-client-10000 | 3.00 | <= 3.00 | 1.00 | PASS")},
			"writes-per-client-10000 | 3.00 | <= 3.00 | 1.00 | 2/2 passed"},
		{"units that differ are said", [][]parsedTarget{
			lines(t, "TARGET cold-start-10000 | 900 ms | < 1000 ms | 0.90 | PASS"),
			lines(t, "TARGET cold-start-10000 | 2.6 s | < 1 s | 2.60 | MISS")},
			"cold-start-10000 | mixed units: 900 ms, 2.6 s | < 1000 ms | 0.90–2.60 | 1/2 passed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := summarizeTargets(tc.runs)
			if len(got) != 1 || got[0].String() != tc.want {
				t.Fatalf("summarizeTargets = %v, want [%s]", got, tc.want)
			}
		})
	}
}

func TestReadTargetsSkipsTheTable(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "results-20261129-101500.txt")
	body := strings.Join([]string{
		"lpauth-operator benchmarks — 2026-11-29T10:15:00Z",
		"  10,000 LivePersonAuthClients in all (9,000 created) → all Ready   41.2s",
		"",
		"Targets (issue 18): TARGET name | measured | target | measured ÷ target | PASS, MISS, or INFO (reported, no limit)",
		"TARGET ready-10000 | 41.2 s | < 60.0 s | 0.69 | PASS",
		"TARGET rebuild-10000 | 80 ms | report | - | INFO",
	}, "\n")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := readTargets(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].name != "ready-10000" || got[1].name != "rebuild-10000" {
		t.Fatalf("readTargets = %+v", got)
	}
}
