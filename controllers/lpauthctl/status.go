package lpauthctl

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lpauth/lpauth-operator/api/credentials"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// statusView is one TokenServer with what it serves: its SigningKey (nil with why in skErr)
// and its clients.
type statusView struct {
	ts      *v1alpha1.TokenServer
	sk      *v1alpha1.SigningKey
	skErr   error
	clients []v1alpha1.LivePersonAuthClient
}

func runStatus(ctx context.Context, c *cli, args []string) error {
	var list []v1alpha1.TokenServer
	if len(args) == 1 {
		ts := &v1alpha1.TokenServer{}
		if err := c.get(ctx, args[0], ts); err != nil {
			return err
		}
		list = []v1alpha1.TokenServer{*ts}
	} else {
		var l v1alpha1.TokenServerList
		if err := c.kube.List(ctx, &l, client.InNamespace(c.namespace)); err != nil {
			if meta.IsNoMatchError(err) {
				return noCRDs("TokenServer")
			}
			return fmt.Errorf("listing TokenServers in %s: %w", c.namespace, err)
		}
		if len(l.Items) == 0 {
			fmt.Fprintf(c.stdout, "No TokenServers in namespace %q (another one? -n NAMESPACE).\n", c.namespace)
			return nil
		}
		list = l.Items
		slices.SortFunc(list, func(a, b v1alpha1.TokenServer) int { return strings.Compare(a.Name, b.Name) })
	}
	for i := range list {
		v := statusView{ts: &list[i]}
		sk := &v1alpha1.SigningKey{}
		if v.skErr = c.get(ctx, v.ts.Spec.SigningKeyRef.Name, sk); v.skErr == nil {
			v.sk = sk
		}
		var err error
		if v.clients, err = c.clientsOf(ctx, v.ts.Name); err != nil {
			return err
		}
		if i > 0 {
			fmt.Fprintln(c.stdout, "\n"+strings.Repeat("─", 100)+"\n")
		}
		writeStatus(c.stdout, v, c.now())
	}
	return nil
}

// writeStatus is one screen: the TokenServer, its keys, its clients with their console values.
func writeStatus(w io.Writer, v statusView, now time.Time) {
	ts := v.ts
	fmt.Fprintf(w, "TokenServer %s (namespace %s)\n", ts.Name, ts.Namespace)
	fs := []field{{"Issuer", ts.Spec.Issuer}}
	fs = append(fs, conditionFields(ts.Status.Conditions, v1alpha1.ConditionReady, v1alpha1.ConditionAvailable)...)
	replicas := int32(1)
	if ts.Spec.Replicas != nil {
		replicas = *ts.Spec.Replicas
	}
	fs = append(fs, field{"Replicas", fmt.Sprintf("%d ready of %d", ts.Status.ReadyReplicas, replicas)})
	if e := ts.Status.Endpoints; e != nil {
		fs = append(fs, field{"Discovery", e.Discovery}, field{"JWKS", e.JWKS}, field{"Token", e.Token},
			field{"Authorization", e.Authorization},
			field{"Issue API", e.IssueAPI + " (bearer: Secret " + credentials.SecretName(ts.Name) + ", key " + credentials.IssueAPITokenKey + ")"})
	}
	writeFields(w, "  ", fs)

	fmt.Fprintln(w)
	switch {
	case v.sk == nil:
		fmt.Fprintf(w, "  SigningKey %s: %v\n", ts.Spec.SigningKeyRef.Name, v.skErr)
	default:
		writeSigningKey(w, "  ", v.sk, now)
	}

	fmt.Fprintln(w)
	if len(v.clients) == 0 {
		fmt.Fprintln(w, "  Clients: none (create a LivePersonAuthClient with spec.tokenServerRef.name: "+ts.Name+")")
		return
	}
	fmt.Fprintf(w, "  Clients: %d\n", len(v.clients))
	for i := range v.clients {
		writeClient(w, "    ", &v.clients[i])
	}
}

// writeSigningKey is a SigningKey's policy, conditions, coming rotation and keys.
func writeSigningKey(w io.Writer, indent string, sk *v1alpha1.SigningKey, now time.Time) {
	fmt.Fprintf(w, "%sSigningKey %s: %s\n", indent, sk.Name, rotationPolicy(sk))
	fs := conditionFields(sk.Status.Conditions, v1alpha1.ConditionReady, v1alpha1.ConditionRotating)
	fs = append(fs, field{"Next rotation", when(sk.Status.NextRotationTime, now)})
	revoked := "none"
	if n := len(sk.Status.RevokedKeyIDs); n > 0 {
		revoked = fmt.Sprintf("%d (newest %s)", n, sk.Status.RevokedKeyIDs[n-1])
	}
	fs = append(fs, field{"Revoked kids", revoked})
	writeFields(w, indent+"  ", fs)
	writeKeys(w, indent+"  ", sk)
}

// writeClient is a client's state and its console values (the secret hidden).
func writeClient(w io.Writer, indent string, lpac *v1alpha1.LivePersonAuthClient) {
	flow := lpac.Spec.Flow
	if flow == "" {
		flow = v1alpha1.FlowCode
	}
	fmt.Fprintf(w, "%s%s: account %s, %s flow\n", indent, lpac.Name, lpac.Spec.AccountID, flow)
	fs := conditionFields(lpac.Status.Conditions, v1alpha1.ConditionReady)
	if con := lpac.Status.LivePersonConsole; con != nil {
		fs = append(fs, consoleFields(con, hiddenSecret(con.ClientSecretRef))...)
	} else {
		fs = append(fs, field{"Console values", "none yet (see Ready)"})
	}
	writeFields(w, indent+"  ", fs)
}

// wantFalse are the condition types that are news when True; every other type is news when
// False.
var wantFalse = []string{v1alpha1.ConditionRotating, v1alpha1.ConditionDegraded, v1alpha1.ConditionDeletionBlocked, v1alpha1.ConditionConsoleUpdateRequired}

// conditionFields are the conditions always shown, then any other condition that is news
// (a Degraded SigningKey, a client whose console needs an update, an issuer conflict).
func conditionFields(conds []metav1.Condition, always ...string) []field {
	var fs []field
	want := func(typ string) metav1.ConditionStatus {
		if slices.Contains(wantFalse, typ) {
			return metav1.ConditionFalse
		}
		return metav1.ConditionTrue
	}
	for _, typ := range always {
		fs = append(fs, field{typ, condition(conds, typ, want(typ))})
	}
	for _, c := range conds {
		if !slices.Contains(always, c.Type) && c.Status != want(c.Type) {
			fs = append(fs, field{c.Type, condition(conds, c.Type, want(c.Type))})
		}
	}
	return fs
}
