// Command dev runs the whole system on an embedded control plane, for a laptop: kube-apiserver
// and etcd (envtest, started by controllers/testenv), the operator, the samples, and a token
// server on localhost; then it prints how to use it. `make dev` builds and runs it. It is its
// own program so the shipped binary carries neither envtest nor the demo samples.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/lpauth/lpauth-operator/api/credentials"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/controllers"
	"github.com/lpauth/lpauth-operator/controllers/testenv"
	"github.com/lpauth/lpauth-operator/controllers/workload"
	"github.com/lpauth/lpauth-operator/tokenserver"
	"github.com/lpauth/lpauth-operator/tokenserver/server"
)

const devNamespace = "lpauth-demo"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "dev:", err)
		}
		os.Exit(2)
	}
}

// run starts everything, prints the banner, and serves until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address of the token server (the issuer is http://<this>)")
	stateDir := fs.String("state-dir", filepath.Join(cacheDir(), "dev"), "where the kubeconfig of the embedded control plane is written")
	verbose := fs.Bool("verbose", false, "show the operator's and token server's logs")
	metricsAddr := fs.String("operator-metrics", "", "serve the operator's Prometheus metrics on this address (make bench reads them); empty: not served")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Listen first: a taken port is the commonest failure, and it should cost nothing.
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s (%v): another process is using it; stop it or run `make dev DEV_LISTEN=127.0.0.1:8181`", *listen, errors.Unwrap(err))
	}
	defer ln.Close()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return errors.New("KUBEBUILDER_ASSETS is not set: run `make dev`, which builds kube-apiserver and etcd once (hack/envtest.sh) and points dev at them")
	}
	issuer := "http://" + ln.Addr().String()

	logOut := io.Discard
	if *verbose {
		logOut = stderr
	}
	log := zap.New(zap.WriteTo(logOut), zap.UseDevMode(true))
	ctrl.SetLogger(log)
	fmt.Fprintln(stdout, "Starting an embedded control plane (kube-apiserver + etcd)...")
	env, cfg, err := testenv.Start()
	if err != nil {
		return fmt.Errorf("starting kube-apiserver and etcd from %s: %w", os.Getenv("KUBEBUILDER_ASSETS"), err)
	}
	defer func() {
		fmt.Fprintln(stdout, "Stopping the control plane.")
		_ = env.Stop()
	}()
	if err := os.MkdirAll(*stateDir, 0o700); err != nil {
		return err
	}
	kubeconfig, err := testenv.Kubeconfig(env, *stateDir)
	if err != nil {
		return err
	}

	mgrCtx, stopManager := context.WithCancel(ctx)
	defer stopManager()
	mgrDone, err := startDevManager(mgrCtx, cfg, *metricsAddr)
	if err != nil {
		return err
	}
	defer func() { stopManager(); <-mgrDone }()

	c, err := client.New(cfg, client.Options{Scheme: controllers.Scheme()})
	if err != nil {
		return err
	}
	if err := applySamples(ctx, c, issuer); err != nil {
		return err
	}
	// The token server serves first: its TokenServer is Ready only once its one replica (this
	// process) is, and the sample client only once its TokenServer is.
	ts, err := tokenserver.Start(ctx, cfg, devNamespace, "brand", log.WithName("tokenserver"))
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() {
		served <- ts.Serve(ctx, server.NewHTTPServer(*listen, ts.Handler), ln, 0, 5*time.Second, log.WithName("tokenserver"))
	}()
	go reportReplica(ctx, c, issuer, log)
	info, err := waitForDemo(ctx, c)
	if err != nil {
		return err
	}
	info.Issuer, info.Kubeconfig, info.Namespace = issuer, kubeconfig, devNamespace
	info.PopoutWindow = "https://lpcdn.lpsnmedia.net/le_unified_window/index.html"
	info.PopoutURL = info.Endpoints.Authorization + "?" + url.Values{"response_type": {"code"}, "client_id": {info.Console.ClientID},
		"scope": {"openid"}, "redirect_uri": {info.PopoutWindow}, "state": {`{"demo":true}`}}.Encode()
	if err := devBanner.Execute(stdout, info); err != nil {
		return err
	}
	err = <-served
	fmt.Fprintln(stdout, "\nStopping the token server and the operator.")
	return err
}

func cacheDir() string {
	if d := os.Getenv("LPAUTH_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "lpauth")
	}
	return filepath.Join(os.TempDir(), "lpauth")
}

// sameProcessAgain is set by tests that call run more than once in one process (go test
// -count=N): controller-runtime refuses a second controller of the same name per process, a
// check meant for two controllers in one operator, not one operator started twice.
var sameProcessAgain bool

// startDevManager runs the operator in this process; the returned channel closes when it stops.
func startDevManager(ctx context.Context, cfg *rest.Config, metricsAddr string) (<-chan struct{}, error) {
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Controller: config.Controller{SkipNameValidation: &sameProcessAgain},
		Scheme:     controllers.Scheme(), Cache: controllers.CacheOptions(),
		// Beside the metrics, Go's profiles of this process (operator and token server), for
		// make bench's analysis; only when asked for, on the loopback address given.
		Metrics: metricsserver.Options{BindAddress: cmp.Or(metricsAddr, "0"), ExtraHandlers: map[string]http.Handler{
			"/debug/pprof/":        http.HandlerFunc(pprof.Index),
			"/debug/pprof/profile": http.HandlerFunc(pprof.Profile),
		}}, HealthProbeBindAddress: "0",
	})
	if err != nil {
		return nil, err
	}
	// No kubelet runs here: the Deployment is created as in a cluster, and this process serves.
	if err := controllers.Setup(ctx, mgr, controllers.Options{TokenServerImage: "lpauth-operator:dev"}); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			ctrl.Log.Error(err, "Operator stopped")
		}
	}()
	return done, nil
}

// applySamples creates config/samples in the demo namespace, with the issuer this process serves.
func applySamples(ctx context.Context, c client.Client, issuer string) error {
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: devNamespace}}); err != nil {
		return err
	}
	dir := filepath.Join(testenv.RepoRoot(), "config", "samples")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		u := &unstructured.Unstructured{}
		if err := utilyaml.Unmarshal(data, &u.Object); err != nil {
			return fmt.Errorf("config/samples/%s: %w", e.Name(), err)
		}
		u.SetNamespace(devNamespace)
		if u.GetKind() == "TokenServer" {
			if err := unstructured.SetNestedField(u.Object, issuer, "spec", "issuer"); err != nil {
				return err
			}
		}
		if err := c.Create(ctx, u); err != nil {
			return fmt.Errorf("applying config/samples/%s: %w", e.Name(), err)
		}
	}
	return nil
}

// reportReplica plays the kubelet and Deployment controller, which an embedded control plane
// does not run: once this process answers /readyz, it is the token-server Deployment's one
// available replica, so the TokenServer's status shows what a cluster would.
func reportReplica(ctx context.Context, c client.Client, issuer string, log logr.Logger) {
	for ctx.Err() == nil {
		if resp, err := http.Get(issuer + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	ts := &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand", Namespace: devNamespace}}
	d := &appsv1.Deployment{}
	// The operator creates the Deployment once the TokenServer's key is ready.
	for c.Get(ctx, client.ObjectKey{Namespace: devNamespace, Name: workload.Name(ts)}, d) != nil {
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	now := metav1.Now()
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 1, ReadyReplicas: 1, AvailableReplicas: 1, UpdatedReplicas: 1,
		Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "ServedByLpauthDev",
			Message: "make dev (hack/dev) serves this token server in-process", LastUpdateTime: now, LastTransitionTime: now}}}
	if err := c.Status().Update(ctx, d); err != nil {
		log.Error(err, "Reporting the in-process replica")
	}
}

// demoInfo is what the banner prints.
type demoInfo struct {
	Issuer, Kubeconfig, Namespace string
	Endpoints                     endpointsInfo
	Console                       v1alpha1.LivePersonConsole
	ClientSecret, IssueAPIToken   string
	SigningKey                    string
	PopoutURL, PopoutWindow       string
}

type endpointsInfo struct{ Authorization, Token, JWKS, Discovery, IssueAPI string }

// waitForDemo waits until the operator has made the samples Ready and reads what to print.
func waitForDemo(ctx context.Context, c client.Client) (*demoInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	info := &demoInfo{SigningKey: "brand-keys"}
	lpac := &v1alpha1.LivePersonAuthClient{}
	for {
		err := c.Get(ctx, client.ObjectKey{Namespace: devNamespace, Name: "brand-liveperson"}, lpac)
		if err == nil && meta.IsStatusConditionTrue(lpac.Status.Conditions, v1alpha1.ConditionReady) {
			break
		}
		select {
		case <-ctx.Done():
			msg := "no status yet"
			if cond := meta.FindStatusCondition(lpac.Status.Conditions, v1alpha1.ConditionReady); cond != nil {
				msg = cond.Reason + ": " + cond.Message
			}
			return nil, fmt.Errorf("the sample LivePersonAuthClient did not become Ready (%s)", msg)
		case <-time.After(200 * time.Millisecond):
		}
	}
	info.Console = *lpac.Status.LivePersonConsole
	secret := &corev1.Secret{}
	ref := lpac.Status.ClientSecretRef
	if err := c.Get(ctx, client.ObjectKey{Namespace: devNamespace, Name: ref.Name}, secret); err != nil {
		return nil, err
	}
	info.ClientSecret = string(secret.Data[ref.Key])
	creds := &corev1.Secret{}
	ts := &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "brand", Namespace: devNamespace}}
	if err := c.Get(ctx, client.ObjectKey{Namespace: devNamespace, Name: credentials.SecretName(ts.Name)}, creds); err != nil {
		return nil, err
	}
	info.IssueAPIToken = string(creds.Data[credentials.IssueAPITokenKey])
	if err := c.Get(ctx, client.ObjectKeyFromObject(ts), ts); err != nil {
		return nil, err
	}
	if e := ts.Status.Endpoints; e != nil {
		info.Endpoints = endpointsInfo{e.Authorization, e.Token, e.JWKS, e.Discovery, e.IssueAPI}
	}
	return info, nil
}

var devBanner = template.Must(template.New("banner").Funcs(template.FuncMap{
	"shq": func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" },
}).Parse(`
lpauth-operator is running: an embedded control plane, the operator, and the sample token server.

  Issuer              {{.Issuer}}
  Discovery           {{.Endpoints.Discovery}}
  JWKS                {{.Endpoints.JWKS}}
  Token endpoint      {{.Endpoints.Token}}
  Authorization       {{.Endpoints.Authorization}}
  Issue API           {{.Endpoints.IssueAPI}}   (Authorization: Bearer $ISSUE_API_TOKEN)

LivePerson console values (kubectl get lpac brand-liveperson -o jsonpath='{.status.livePersonConsole}'):
  Authentication type      {{.Console.AuthenticationType}}
  PKCE                     {{.Console.PKCE}}
  JWT issuer               {{.Console.JWTIssuer}}
  Authentication endpoint  {{.Console.AuthenticationEndpoint}}
  Token endpoint           {{.Console.TokenEndpoint}}
  Client ID                {{.Console.ClientID}}
  Client secret            {{.ClientSecret}}
  Certificate type         {{.Console.CertificateType}}
  JWKS endpoint            {{.Console.JWKSEndpoint}}
  JS method name           {{.Console.JSMethodName}}

Try it (in another shell):
  export KUBECONFIG={{.Kubeconfig}}
  kubectl get sk,ts,lpac -n {{.Namespace}}
  export ISSUE_API_TOKEN={{shq .IssueAPIToken}}

  # SDK code flow: the brand's backend gets a code for a logged-in user...
  CODE=$(curl -s {{.Endpoints.IssueAPI}}/codes -H "Authorization: Bearer $ISSUE_API_TOKEN" \
    -H 'Content-Type: application/json' \
    -d '{"client_id":"{{.Console.ClientID}}","sub":"customer-42","claims":{"given_name":"Ada","email":"ada@brand.example"},"lp_sdes":[{"type":"ctmrinfo","info":{"customerId":"42","ctype":"gold"}}],"redirect_uri":"https://liveperson.net"}' \
    | sed -E 's/.*"code":"([^"]+)".*/\1/')
  # ...and LivePerson redeems it for an id_token:
  curl -s {{.Endpoints.Token}} -u {{shq .Console.ClientID}}:{{shq .ClientSecret}} \
    -d grant_type=authorization_code -d "code=$CODE" -d redirect_uri=https://liveperson.net

  # Implicit flow: a signed JWT for the JS method ({{.Console.JSMethodName}}):
  curl -s {{.Endpoints.IssueAPI}}/tokens -H "Authorization: Bearer $ISSUE_API_TOKEN" \
    -H 'Content-Type: application/json' -d '{"client_id":"{{.Console.ClientID}}","sub":"customer-42"}'

  # Pop-out window: open this in a browser and sign in as demo / lpauth-demo. The browser then
  # goes to LivePerson's window URL (it will not load here); the code is in the address bar.
  {{.PopoutURL}}
  curl -s {{.Endpoints.Token}} -u {{shq .Console.ClientID}}:{{shq .ClientSecret}} \
    -d grant_type=authorization_code -d "code=<code from the address bar>" -d redirect_uri={{.PopoutWindow}}

  # Public keys LivePerson verifies with, and a key rotation:
  curl -s {{.Endpoints.JWKS}}
  kubectl annotate sk/{{.SigningKey}} -n {{.Namespace}} auth.lpauth.dev/rotate=$(date +%s) --overwrite

Ctrl-C stops everything.
`))
