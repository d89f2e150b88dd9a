package main

// The end-to-end test: a real kube-apiserver, the operator and the token server as separate
// processes of the built binary (each with only the RBAC the installer and the operator grant),
// the samples applied with the real kubectl, and this test playing LivePerson as api/LIVEPERSON.md
// describes, with github.com/coreos/go-oidc as the independent verifier.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"sigs.k8s.io/yaml"

	"github.com/lpauth/lpauth-operator/controllers/testenv"
	"github.com/lpauth/lpauth-operator/hack/installer"
)

const (
	e2eNamespace = "brand-auth"
	lpRedirect   = "https://liveperson.net"
	lpEncKeyID   = "lp-enc-2026"
)

// e2e holds the running system.
type e2e struct {
	t          *testing.T
	dir, bin   string
	adminKube  string
	issuer     string
	httpClient *http.Client
}

// The whole test runs once per install mode, each on its own API server: cluster-wide (the
// ClusterRole of config/default, applied with kubectl -k) and namespaced (dist/install-namespaced.yaml
// as make build-installer writes it, whose manager holds Roles in brand-auth only). The manager
// runs as the install's ServiceAccount, so each mode proves its rights suffice.
func TestEndToEndAsLivePerson(t *testing.T) {
	if testing.Short() {
		t.Skip("the end-to-end test (envtest, the built binary, kubectl): skipped by -short")
	}
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Skip("kubectl is not on PATH")
	}
	for _, namespaced := range []bool{false, true} {
		name := "cluster-wide install"
		if namespaced {
			name = "namespaced install"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			endToEnd(t, namespaced)
		})
	}
}

func endToEnd(t *testing.T, namespaced bool) {
	env, _, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	x := &e2e{t: t, dir: t.TempDir(), httpClient: &http.Client{Timeout: 10 * time.Second}}
	if x.adminKube, err = testenv.Kubeconfig(env, x.dir); err != nil {
		t.Fatal(err)
	}
	x.bin = filepath.Join(x.dir, "lpauth-operator")
	x.run("go", "build", "-o", x.bin, ".")

	// The installer's RBAC, exactly as a platform team applies it (the manager Deployment itself
	// stays unscheduled: no kubelet here, this test runs the binary instead).
	x.kubectl("create", "namespace", e2eNamespace)
	managerArgs := []string{"manager", "--metrics-bind-address=0", "--health-probe-bind-address=0", "--token-server-image=lpauth-operator:e2e"}
	if namespaced {
		watch := x.installNamespaced()
		x.refusesAnUninstalledNamespace(managerArgs, watch)
		managerArgs = append(managerArgs, watch)
	} else {
		x.kubectl("apply", "--server-side", "-k", filepath.Join(testenv.RepoRoot(), "config", "default"))
	}
	x.start("manager", x.impersonating("system:serviceaccount:lpauth-system:lpauth-controller-manager"), managerArgs...)

	port := freePort(t)
	x.issuer = "http://127.0.0.1:" + port
	lpKey := x.applySamples()
	x.kubectl("wait", "-n", e2eNamespace, "--for=condition=Ready", "--timeout=60s", "sk/brand-keys")
	x.kubectl("wait", "-n", e2eNamespace, "--for=create", "--timeout=30s", "secret/brand-credentials", "deployment/brand-token-server")

	// The token server runs as the ServiceAccount the operator made, with the Role it made.
	x.start("tokenserver", x.impersonating("system:serviceaccount:"+e2eNamespace+":brand-token-server"),
		"tokenserver", "--namespace="+e2eNamespace, "--token-server=brand",
		"--listen=127.0.0.1:"+port, "--metrics-listen=127.0.0.1:0")
	x.waitReady()
	// It serves: say so in its Deployment's status, as the kubelet and the Deployment
	// controller would (none runs here). Until then the clients say TokenServerNotReady.
	x.kubectl("patch", "-n", e2eNamespace, "deployment/brand-token-server", "--subresource=status", "--type=merge", "-p",
		`{"status":{"observedGeneration":1,"replicas":1,"readyReplicas":1,"availableReplicas":1,"updatedReplicas":1,`+
			`"conditions":[{"type":"Available","status":"True","reason":"ServedByTheE2ETest","message":"the token server process serves"}]}}`)
	x.kubectl("wait", "-n", e2eNamespace, "--for=condition=Ready", "--timeout=60s", "ts/brand", "lpac/brand-liveperson", "lpac/brand-implicit")
	if namespaced {
		x.checkNamespacedRights()
	}

	clientID := x.jsonpath("lpac/brand-liveperson", "{.status.clientID}")
	secretName := x.jsonpath("lpac/brand-liveperson", "{.status.clientSecretRef.name}")
	clientSecret := x.secretValue(secretName, "clientSecret")
	issueToken := x.secretValue("brand-credentials", "issueAPIToken")
	implicitID := x.jsonpath("lpac/brand-implicit", "{.status.clientID}")

	// LivePerson's side: discovery, then the JWKS fetched once and cached, as a relying party that
	// caches for the publish-ahead window does. No refetch on an unknown kid.
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, x.issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	var disc struct {
		TokenEndpoint string `json:"token_endpoint"`
		JWKSURI       string `json:"jwks_uri"`
	}
	if err := provider.Claims(&disc); err != nil {
		t.Fatal(err)
	}
	cached := x.fetchKeys(disc.JWKSURI)
	verifier := oidc.NewVerifier(x.issuer, &oidc.StaticKeySet{PublicKeys: cached}, &oidc.Config{ClientID: clientID})
	lp := &livePerson{x: x, tokenURL: disc.TokenEndpoint, clientID: clientID, clientSecret: clientSecret, issueToken: issueToken, verifier: verifier}

	t.Run("SDK code flow", func(t *testing.T) {
		kid, claims, err := lp.codeFlow(ctx, "customer-8271")
		if err != nil {
			t.Fatal(err)
		}
		if claims.Issuer != x.issuer || claims.Subject != "customer-8271" || claims.Exp < time.Now().Unix() || claims.Exp > time.Now().Add(2*time.Hour).Unix() {
			t.Fatalf("claims = %+v", claims)
		}
		// The user's values over the client's template (cstatus comes from the sample's lpSdes).
		want := `[{"info":{"cstatus":"active","ctype":"gold","customerId":"8271"},"type":"ctmrinfo"}]`
		if got, _ := json.Marshal(claims.LPSdes); !jsonEqual(got, []byte(want)) {
			t.Fatalf("lp_sdes = %s, want %s", got, want)
		}
		if kid == "" {
			t.Fatal("no kid in the id_token header")
		}
	})

	t.Run("implicit flow with JWE", func(t *testing.T) {
		body := x.issue(issueToken, "/api/v1/tokens", map[string]any{"client_id": implicitID, "sub": "customer-9001",
			"claims": map[string]string{"given_name": "Grace"}})
		var out struct {
			Token string `json:"token"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatal(err)
		}
		enc, err := jose.ParseEncrypted(out.Token, []jose.KeyAlgorithm{jose.RSA_OAEP_256}, []jose.ContentEncryption{jose.A256GCM, jose.A128CBC_HS256})
		if err != nil {
			t.Fatalf("not a JWE LivePerson can read: %v", err)
		}
		if enc.Header.KeyID != lpEncKeyID || enc.Header.ExtraHeaders["cty"] != "JWT" {
			t.Fatalf("JWE header kid=%q cty=%v", enc.Header.KeyID, enc.Header.ExtraHeaders["cty"])
		}
		inner, err := enc.Decrypt(lpKey)
		if err != nil {
			t.Fatalf("LivePerson cannot decrypt: %v", err)
		}
		implicitVerifier := oidc.NewVerifier(x.issuer, &oidc.StaticKeySet{PublicKeys: cached}, &oidc.Config{ClientID: implicitID})
		tok, err := implicitVerifier.Verify(ctx, string(inner))
		if err != nil {
			t.Fatalf("the inner JWS does not verify: %v", err)
		}
		var c struct {
			GivenName string `json:"given_name"`
		}
		_ = tok.Claims(&c)
		if tok.Subject != "customer-9001" || c.GivenName != "Grace" {
			t.Fatalf("inner claims: sub=%q given_name=%q", tok.Subject, c.GivenName)
		}
	})

	t.Run("pop-out window", func(t *testing.T) {
		// LivePerson opens the authorization endpoint in the popped-out window; the sample logs
		// people in with its demo users (staticUsers); the window gets a code and its state back.
		const lpWindow = "https://lpcdn.lpsnmedia.net/le_unified_window/index.html"
		state := `{"lpUnifiedWindowConfig":{"accountId":"12345678"},"pad":"` + strings.Repeat("p", 2048) + `"}`
		jar, _ := cookiejar.New(nil)
		browser := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		authURL := x.issuer + "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {clientID}, "scope": {"openid"},
			"redirect_uri": {lpWindow}, "state": {state}, "parentWindowOrigin": {"https://www.brand.example"}}.Encode()
		resp, err := browser.Get(authURL)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		form := url.Values{"username": {"demo"}, "password": {"lpauth-demo"}}
		for _, m := range regexp.MustCompile(`name="(request|csrf)" value="([^"]*)"`).FindAllSubmatch(page, -1) {
			form.Set(string(m[1]), html.UnescapeString(string(m[2])))
		}
		if resp.StatusCode != http.StatusOK || form.Get("request") == "" {
			t.Fatalf("login page: %d\n%s", resp.StatusCode, page)
		}
		resp, err = browser.PostForm(x.issuer+"/authorize/login", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, lpWindow+"?code=") || !strings.HasSuffix(loc, "&state="+url.QueryEscape(state)) {
			t.Fatalf("after login: %d %q", resp.StatusCode, loc)
		}
		u, _ := url.Parse(loc)
		claims, err := lp.redeem(ctx, u.Query().Get("code"), lpWindow)
		if err != nil {
			t.Fatal(err)
		}
		if claims.Subject != "demo" || claims.Issuer != x.issuer {
			t.Fatalf("pop-out id_token claims: %+v", claims)
		}
	})

	t.Run("kubectl lpauth", func(t *testing.T) {
		// The built binary under the plugin's name on PATH, found and run by the real kubectl,
		// as a platform team would use it: check and try against this token server.
		plugins := filepath.Join(x.dir, "plugins")
		if err := os.MkdirAll(plugins, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(x.bin, filepath.Join(plugins, "kubectl-lpauth")); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"check", "brand"}, "No problem found"},
			{[]string{"try", "brand-liveperson"}, "OK: LivePerson can log this client's customers in."},
			{[]string{"try", "brand-implicit"}, "a JWE for LivePerson's key \"" + lpEncKeyID + "\""},
		} {
			cmd := exec.Command("kubectl", append([]string{"lpauth", "-n", e2eNamespace}, tc.args...)...)
			cmd.Env = append(os.Environ(), "KUBECONFIG="+x.adminKube, "PATH="+plugins+string(os.PathListSeparator)+os.Getenv("PATH"))
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), tc.want) {
				t.Errorf("kubectl lpauth %s: %v, want %q in\n%s", strings.Join(tc.args, " "), err, tc.want, out)
			}
		}
	})

	t.Run("rotation in the middle of a stream of flows", func(t *testing.T) {
		before := x.jsonpath("sk/brand-keys", "{.status.activeKeyID}")
		var (
			flows, failures atomic.Int64
			mu              sync.Mutex
			kids            = map[string]int{}
			firstErr        error
		)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					kid, _, err := lp.codeFlow(ctx, fmt.Sprintf("customer-%d-%d", w, i))
					flows.Add(1)
					mu.Lock()
					if err != nil {
						failures.Add(1)
						if firstErr == nil {
							firstErr = err
						}
					} else {
						kids[kid]++
					}
					mu.Unlock()
				}
			})
		}
		time.Sleep(500 * time.Millisecond)
		x.kubectl("annotate", "-n", e2eNamespace, "sk/brand-keys", "auth.lpauth.dev/rotate=e2e", "--overwrite")
		deadline := time.Now().Add(20 * time.Second)
		var after string
		for time.Now().Before(deadline) {
			after = x.jsonpath("sk/brand-keys", "{.status.activeKeyID}")
			mu.Lock()
			served := kids[after]
			mu.Unlock()
			if after != before && served >= 20 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		close(stop)
		wg.Wait()
		t.Logf("%d flows, %d failures, tokens by kid: %v", flows.Load(), failures.Load(), kids)
		if failures.Load() != 0 {
			t.Fatalf("%d of %d flows failed verification against the cached JWKS; first: %v", failures.Load(), flows.Load(), firstErr)
		}
		if after == before || kids[before] == 0 || kids[after] < 20 {
			t.Fatalf("the stream did not span the rotation: before %s, after %s, tokens by kid %v", before, after, kids)
		}
	})
}

// livePerson plays LivePerson's backend and the brand's backend of the SDK code flow.
type livePerson struct {
	x                                            *e2e
	tokenURL, clientID, clientSecret, issueToken string
	verifier                                     *oidc.IDTokenVerifier
}

type lpClaims struct {
	Issuer  string            `json:"iss"`
	Subject string            `json:"sub"`
	Exp     int64             `json:"exp"`
	LPSdes  []json.RawMessage `json:"lp_sdes"`
}

// codeFlow: the brand's backend gets a code from the issue API; LivePerson redeems it at /token
// with Basic auth and its redirect_uri, and verifies the id_token with the cached keys.
func (lp *livePerson) codeFlow(ctx context.Context, sub string) (string, lpClaims, error) {
	var claims lpClaims
	body, err := lp.x.post(lp.issueToken, "/api/v1/codes", map[string]any{
		"client_id": lp.clientID, "sub": sub, "redirect_uri": lpRedirect,
		"lp_sdes": []any{map[string]any{"type": "ctmrinfo", "info": map[string]any{"customerId": strings.TrimPrefix(sub, "customer-"), "ctype": "gold"}}},
	})
	if err != nil {
		return "", claims, err
	}
	var code struct {
		Code string `json:"code"`
	}
	if err := json.Unmarshal(body, &code); err != nil || code.Code == "" {
		return "", claims, fmt.Errorf("issue API: %s", body)
	}
	idToken, err := lp.exchange(ctx, code.Code, lpRedirect)
	if err != nil {
		return "", claims, err
	}
	if claims, err = lp.verify(ctx, idToken); err != nil {
		return "", claims, err
	}
	jws, err := jose.ParseSigned(idToken, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return "", claims, err
	}
	return jws.Signatures[0].Header.KeyID, claims, nil
}

// redeem exchanges a code and verifies the id_token, as LivePerson's backend does.
func (lp *livePerson) redeem(ctx context.Context, code, redirectURI string) (lpClaims, error) {
	idToken, err := lp.exchange(ctx, code, redirectURI)
	if err != nil {
		return lpClaims{}, err
	}
	return lp.verify(ctx, idToken)
}

// exchange posts the code to /token with Basic auth and returns the id_token.
func (lp *livePerson) exchange(ctx context.Context, code, redirectURI string) (string, error) {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, lp.tokenURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(lp.clientID, lp.clientSecret)
	resp, err := lp.x.httpClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		return "", fmt.Errorf("/token: %d %s", resp.StatusCode, b)
	}
	var tok struct {
		IDToken string `json:"id_token"`
	}
	if err := json.Unmarshal(b, &tok); err != nil {
		return "", err
	}
	return tok.IDToken, nil
}

// verify checks the id_token against the cached keys and returns its claims.
func (lp *livePerson) verify(ctx context.Context, idToken string) (lpClaims, error) {
	var claims lpClaims
	idt, err := lp.verifier.Verify(ctx, idToken)
	if err != nil {
		return claims, fmt.Errorf("verifying the id_token: %w", err)
	}
	return claims, idt.Claims(&claims)
}

func (x *e2e) run(name string, args ...string) []byte {
	x.t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = testenv.RepoRoot()
	// A kubectl cache of its own: the shared one is keyed by host:port, which other suites'
	// API servers may have used a moment ago without our CRDs.
	cmd.Env = append(os.Environ(), "KUBECONFIG="+x.adminKube, "KUBECACHEDIR="+filepath.Join(x.dir, "kubectl-cache"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		if name == "kubectl" && len(args) > 0 && args[0] == "wait" {
			// What the objects say is what a person would look at next.
			get := exec.Command("kubectl", "get", "-n", e2eNamespace, "sk,ts,lpac", "-o", "yaml")
			get.Env = cmd.Env
			state, _ := get.CombinedOutput()
			out = append(out, "\n--- objects ---\n"...)
			out = append(out, state...)
		}
		x.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func (x *e2e) kubectl(args ...string) string { return string(x.run("kubectl", args...)) }

func (x *e2e) jsonpath(obj, path string) string {
	return x.kubectl("get", "-n", e2eNamespace, obj, "-o", "jsonpath="+path)
}

func (x *e2e) secretValue(name, key string) string {
	var s struct {
		Data map[string][]byte `json:"data"`
	}
	if err := json.Unmarshal([]byte(x.kubectl("get", "-n", e2eNamespace, "secret", name, "-o", "json")), &s); err != nil {
		x.t.Fatal(err)
	}
	return string(s.Data[key])
}

// installNamespaced applies the namespaced install as make build-installer writes it
// (hack/installer from config/default), watching brand-auth only. A second namespace holds a
// SigningKey the manager must leave alone. It returns the --watch-namespaces flag the install
// gives the manager's Deployment, for the manager this test runs.
func (x *e2e) installNamespaced() string {
	cmd := exec.Command("kubectl", "kustomize", filepath.Join(testenv.RepoRoot(), "config", "default"))
	rendered, err := cmd.Output()
	if err != nil {
		x.t.Fatalf("kubectl kustomize config/default: %v", err)
	}
	objs, err := installer.Parse(rendered)
	if err != nil {
		x.t.Fatal(err)
	}
	if objs, err = installer.Namespaced(objs, []string{e2eNamespace}); err != nil {
		x.t.Fatal(err)
	}
	out, err := installer.Marshal(objs)
	if err != nil {
		x.t.Fatal(err)
	}
	path := filepath.Join(x.dir, "install-namespaced.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		x.t.Fatal(err)
	}
	x.kubectl("apply", "--server-side", "-f", path)
	x.kubectl("create", "namespace", "other-team")
	x.kubectl("apply", "-n", "other-team", "-f", filepath.Join(testenv.RepoRoot(), "config", "samples", "auth_v1alpha1_signingkey.yaml"))
	args, err := installer.ManagerArgs(objs)
	if err != nil {
		x.t.Fatal(err)
	}
	for _, a := range args {
		if strings.HasPrefix(a, installer.WatchFlag+"=") {
			return a
		}
	}
	x.t.Fatal("the namespaced install does not give the manager " + installer.WatchFlag)
	return ""
}

// refusesAnUninstalledNamespace: a manager told to watch a namespace the install gave it no Role
// in stops at once and names it, instead of holding back every namespace's controllers.
func (x *e2e) refusesAnUninstalledNamespace(args []string, watch string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, x.bin, append(args, watch+",not-installed")...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+x.impersonating("system:serviceaccount:lpauth-system:lpauth-controller-manager"))
	out, err := cmd.CombinedOutput()
	if err == nil || ctx.Err() != nil || !strings.Contains(string(out), "namespace not-installed: may not list") {
		x.t.Fatalf("a manager watching a namespace outside the install: err %v (context %v)\n%s", err, ctx.Err(), tail(out, 4000))
	}
	if strings.Contains(string(out), "namespace "+strings.TrimPrefix(watch, installer.WatchFlag+"=")+":") {
		x.t.Errorf("the installed namespace was reported too:\n%s", out)
	}
}

// checkNamespacedRights: the namespaced manager served brand-auth with no right outside it, and
// never touched the other namespace's SigningKey.
func (x *e2e) checkNamespacedRights() {
	const sa = "system:serviceaccount:lpauth-system:lpauth-controller-manager"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"list", "secrets", "-n", e2eNamespace}, "yes"},
		{[]string{"list", "secrets", "--all-namespaces"}, "no"},
		{[]string{"get", "secrets", "-n", "other-team"}, "no"},
		{[]string{"list", "signingkeys.auth.lpauth.dev", "-n", "other-team"}, "no"},
		{[]string{"create", "roles", "-n", "default"}, "no"},
	} {
		cmd := exec.Command("kubectl", append([]string{"auth", "can-i", "--as=" + sa}, c.args...)...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+x.adminKube)
		out, _ := cmd.Output() // can-i exits 1 for "no"
		if got := strings.TrimSpace(string(out)); got != c.want {
			x.t.Errorf("kubectl auth can-i %s as the manager = %q, want %q", strings.Join(c.args, " "), got, c.want)
		}
	}
	if status := x.kubectl("get", "-n", "other-team", "sk/brand-keys", "-o", "jsonpath={.status}"); status != "" {
		x.t.Errorf("the manager watching %s only reconciled other-team's SigningKey: status %s", e2eNamespace, status)
	}
}

// impersonating writes a kubeconfig that acts as user (a ServiceAccount), so a process gets
// exactly the RBAC that user has.
func (x *e2e) impersonating(user string) string {
	var cfg map[string]any
	data, err := os.ReadFile(x.adminKube)
	if err != nil {
		x.t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		x.t.Fatal(err)
	}
	for _, u := range cfg["users"].([]any) {
		u.(map[string]any)["user"].(map[string]any)["as"] = user
	}
	out, _ := yaml.Marshal(cfg)
	path := filepath.Join(x.dir, strings.NewReplacer(":", "_").Replace(user)+".kubeconfig")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		x.t.Fatal(err)
	}
	return path
}

// start runs the binary in the background; its output goes to a log file shown on failure.
func (x *e2e) start(name, kubeconfig string, args ...string) {
	logPath := filepath.Join(x.dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		x.t.Fatal(err)
	}
	cmd := exec.Command(x.bin, args...)
	// WATCH_NAMESPACES in the test's own environment (exported for make build-installer, say)
	// would make the cluster-wide manager namespaced: the flags alone decide here.
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "WATCH_NAMESPACES=")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		x.t.Fatal(err)
	}
	x.t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logFile.Close()
		if x.t.Failed() {
			b, _ := os.ReadFile(logPath)
			x.t.Logf("--- %s log ---\n%s", name, tail(b, 60000))
		}
	})
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// applySamples applies config/samples with kubectl through an overlay that sets this test's
// issuer and adds an implicit client that encrypts for LivePerson. It returns LivePerson's
// private decryption key.
func (x *e2e) applySamples() *rsa.PrivateKey {
	lpKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		x.t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&lpKey.PublicKey)
	pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	overlay := filepath.Join(x.dir, "overlay")
	samples, _ := filepath.Rel(overlay, filepath.Join(testenv.RepoRoot(), "config", "samples"))
	files := map[string]string{
		"kustomization.yaml": fmt.Sprintf(`resources:
  - %s
  - implicit.yaml
secretGenerator:
  - name: lp-encryption
    options: {disableNameSuffixHash: true}
    files:
      - %s=lp.pem
patches:
  - target: {kind: TokenServer, name: brand}
    patch: |-
      - op: replace
        path: /spec/issuer
        value: %s
`, samples, lpEncKeyID, x.issuer),
		"lp.pem": string(pub),
		"implicit.yaml": `apiVersion: auth.lpauth.dev/v1alpha1
kind: LivePersonAuthClient
metadata:
  name: brand-implicit
spec:
  tokenServerRef: {name: brand}
  accountID: "87654321"
  flow: Implicit
  encryption:
    keysSecretRef: {name: lp-encryption}
    keyID: ` + lpEncKeyID + `
`,
	}
	if err := os.MkdirAll(overlay, 0o700); err != nil {
		x.t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(overlay, name), []byte(content), 0o600); err != nil {
			x.t.Fatal(err)
		}
	}
	x.kubectl("apply", "-n", e2eNamespace, "-k", overlay)
	return lpKey
}

func (x *e2e) waitReady() {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := x.httpClient.Get(x.issuer + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	x.t.Fatal("the token server did not become ready within 30 s")
}

func (x *e2e) fetchKeys(jwksURL string) []crypto.PublicKey {
	resp, err := x.httpClient.Get(jwksURL)
	if err != nil {
		x.t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		x.t.Fatal(err)
	}
	var out []crypto.PublicKey
	for _, k := range set.Keys {
		out = append(out, k.Key)
	}
	if len(out) < 2 {
		x.t.Fatalf("the JWKS has %d keys; the Next key must be published ahead of its use", len(out))
	}
	return out
}

func (x *e2e) post(bearer, path string, body any) ([]byte, error) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, x.issuer+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := x.httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %d %s", path, resp.StatusCode, out)
	}
	return out, nil
}

func (x *e2e) issue(bearer, path string, body any) []byte {
	out, err := x.post(bearer, path, body)
	if err != nil {
		x.t.Fatal(err)
	}
	return out
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ax, _ := json.Marshal(x)
	by, _ := json.Marshal(y)
	return bytes.Equal(ax, by)
}
