package controllers

import (
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestWatchNamespacesRefusesWhatCannotBeANamespace(t *testing.T) {
	t.Parallel()
	got, err := watchNamespaces(" team-a, team-b ,")
	if err != nil || !reflect.DeepEqual(got, []string{"team-a", "team-b"}) {
		t.Fatalf("watchNamespaces = %v, %v", got, err)
	}
	if got, err := watchNamespaces(""); err != nil || got != nil {
		t.Fatalf("empty: %v, %v (want every namespace)", got, err)
	}
	for in, want := range map[string]string{
		"Team_A":        `"Team_A" is not a namespace name`,
		"team-a,team-a": `"team-a" is listed twice`,
	} {
		if _, err := watchNamespaces(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("watchNamespaces(%q) = %v, want %q", in, err, want)
		}
	}
	// The manager stops before it looks for a cluster.
	if err := Run([]string{"--watch-namespaces=Bad"}, io.Discard); err == nil || !strings.Contains(err.Error(), "--watch-namespaces") {
		t.Fatalf("Run with a bad namespace: %v", err)
	}
}

func TestCacheOptionsWatchOnlyTheNamespacesGiven(t *testing.T) {
	t.Parallel()
	if o := CacheOptions(); o.DefaultNamespaces != nil {
		t.Fatalf("no namespaces given: DefaultNamespaces = %v, want every namespace", o.DefaultNamespaces)
	}
	o := CacheOptions("team-a", "team-b")
	if len(o.DefaultNamespaces) != 2 || o.DefaultNamespaces["team-a"].LabelSelector != nil {
		t.Fatalf("DefaultNamespaces = %v", o.DefaultNamespaces)
	}
	if len(o.ByObject) == 0 {
		t.Fatal("the label filters went with the namespaces")
	}
}
