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
	got := writesPerClient(before, after, 20)
	if !strings.Contains(got, ": 2.00 (livepersonauthclients/status 1.00, secrets 1.00)") {
		t.Fatalf("writesPerClient = %q", got)
	}
}
