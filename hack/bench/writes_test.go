package main

import (
	"strings"
	"testing"
)

func TestWritesPerClientCountsOnlyWritesBeyondTheCreates(t *testing.T) {
	t.Parallel()
	before := parseWrites(`apiserver_request_total{code="201",component="apiserver",group="",resource="secrets",scope="resource",subresource="",verb="POST",version="v1"} 10
apiserver_request_total{code="200",component="apiserver",group="",resource="secrets",scope="namespace",subresource="",verb="LIST",version="v1"} 99
`)
	after := parseWrites(`apiserver_request_total{code="201",component="apiserver",group="",resource="secrets",scope="resource",subresource="",verb="POST",version="v1"} 30
apiserver_request_total{code="201",component="apiserver",group="auth.lpauth.dev",resource="livepersonauthclients",scope="resource",subresource="",verb="POST",version="v1alpha1"} 20
apiserver_request_total{code="200",component="apiserver",group="auth.lpauth.dev",resource="livepersonauthclients",scope="resource",subresource="status",verb="APPLY",version="v1alpha1"} 20
apiserver_request_total{code="200",component="apiserver",group="",resource="secrets",scope="namespace",subresource="",verb="LIST",version="v1"} 500
`)
	total, got := writesPerClient(before, after, 20)
	if total != 2 {
		t.Fatalf("writesPerClient total = %v, want 2", total)
	}
	if !strings.Contains(got, ": 2.00 (livepersonauthclients/status 1.00, secrets 1.00)") {
		t.Fatalf("writesPerClient = %q", got)
	}
}

func TestWriteDeltasLeavesOutTheBenchsOwnWrites(t *testing.T) {
	t.Parallel()
	before := map[string]float64{"secrets": 100, "events": 5, "leases": 40}
	after := map[string]float64{"secrets": 103, "events": 6, "leases": 41, "livepersonauthclients/status": 2}
	total, parts := writeDeltas(before, after, map[string]float64{"secrets": 1}, 1)
	if total != 6 || strings.Join(parts, ", ") != "events 1.00, leases 1.00, livepersonauthclients/status 2.00, secrets 2.00" {
		t.Fatalf("writeDeltas = %v, %v", total, parts)
	}
}

func TestThousands(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 41000: "41,000", 1234567: "1,234,567", -30000: "-30,000"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestStartPhasesReadBothLogFormats(t *testing.T) {
	for line, want := range map[string]string{
		`{"level":"info","ts":"2026-12-02T16:20:01Z","logger":"snapshot","msg":"Read the cluster","cachesSynced":0.412,"firstSnapshot":0.09}`: "cachesSynced 412.00ms, firstSnapshot 90.00ms",
		`INFO	snapshot	Read the cluster	{"cachesSynced": "412ms", "firstSnapshot": "90ms"}`:                                                   "cachesSynced 412ms, firstSnapshot 90ms",
	} {
		if got := phasesOf(line); got != want {
			t.Errorf("phasesOf(%s) = %q, want %q", line, got, want)
		}
	}
}
