package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/lpauth/lpauth-operator/api/credentials"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/controllers"
	"github.com/lpauth/lpauth-operator/controllers/testenv"
	"github.com/lpauth/lpauth-operator/controllers/workload"
)

// cluster is the system under test: the embedded kube-apiserver and etcd (in this process),
// and the operator, token servers and Redis as processes of their own, each of which a trial
// may kill and start again.
type cluster struct {
	dir string
	bin string
	env *envtest.Environment
	// kubeconfig is the harness's own (straight to the API server); processes use procConfig,
	// through apiProxy, which a trial cuts to take the API server away from them.
	kubeconfig, procConfig string
	apiProxy               *proxy
	k8s                    client.Client
	operator               *proc
	redis                  *proc
	redisAddr              string
	// The TokenServer's issuer names the address its token servers are reached at (the proxy
	// in front of them).
	issuer               string
	clientID, secret     string
	issueToken, keyName  string
	namespace, tokenName string
}

// proc is a process a trial can stop, kill and start again with the same arguments.
type proc struct {
	name string
	// metrics is the token server's metrics address, if it has one.
	metrics string
	args    []string
	env     []string
	log     string

	mu  sync.Mutex
	cmd *exec.Cmd
	// exited is closed when the current process has exited.
	exited chan struct{}
}

func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	logFile, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Env = append(os.Environ(), p.env...)
	// If the harness dies, so do its processes (no redis-server or token server left behind).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logFile.Close(); close(exited) }()
	p.cmd, p.exited = cmd, exited
	return nil
}

// signal sends sig and waits up to wait for the process to exit (SIGKILL after that).
func (p *proc) signal(sig syscall.Signal, wait time.Duration) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-exited
	}
}

func (p *proc) kill() { p.signal(syscall.SIGKILL, 10*time.Second) }
func (p *proc) send(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.cmd.Process.Signal(sig)
}
func (p *proc) stop()           { p.signal(syscall.SIGTERM, 30*time.Second) }
func (p *proc) restart() error  { p.kill(); return p.start() }
func (p *proc) pid() int        { p.mu.Lock(); defer p.mu.Unlock(); return p.cmd.Process.Pid }
func freeAddr() (string, error) { return listenAddr("127.0.0.1:0") }
func listenAddr(a string) (string, error) {
	ln, err := net.Listen("tcp", a)
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startCluster starts the control plane, Redis and the operator, and applies one SigningKey,
// one TokenServer (Redis replay store, so several token servers share it) and one client.
func startCluster(ctx context.Context, bin, dir, issuerAddr string) (*cluster, error) {
	c := &cluster{dir: dir, bin: bin, namespace: "faults", tokenName: "brand", keyName: "keys", issuer: "http://" + issuerAddr}
	var err error
	// etcd keeps its data in a folder it does not remove on Stop, so the etcd trial can restart it.
	etcdData := filepath.Join(dir, "etcd")
	if err := os.MkdirAll(etcdData, 0o700); err != nil {
		return nil, err
	}
	if c.env, _, err = testenv.Start(func(e *envtest.Environment) {
		e.ControlPlane.Etcd = &envtest.Etcd{DataDir: etcdData}
	}); err != nil {
		return nil, err
	}
	if c.kubeconfig, err = testenv.Kubeconfig(c.env, dir); err != nil {
		return c, err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		return c, err
	}
	apiURL, err := url.Parse(cfg.Host)
	if err != nil {
		return c, err
	}
	if c.apiProxy, err = newProxy("127.0.0.1:0"); err != nil {
		return c, err
	}
	c.apiProxy.always = true
	c.apiProxy.set(apiURL.Host)
	raw, err := os.ReadFile(c.kubeconfig)
	if err != nil {
		return c, err
	}
	c.procConfig = filepath.Join(dir, "kubeconfig-through-proxy")
	proxied := strings.ReplaceAll(string(raw), apiURL.Host, c.apiProxy.ln.Addr().String())
	if err := os.WriteFile(c.procConfig, []byte(proxied), 0o600); err != nil {
		return c, err
	}
	cfg.QPS, cfg.Burst = 500, 1000
	if c.k8s, err = client.New(cfg, client.Options{Scheme: controllers.Scheme()}); err != nil {
		return c, err
	}
	if err := c.startRedis(); err != nil {
		return c, err
	}
	c.operator = &proc{name: "operator", log: filepath.Join(dir, "operator.log"), env: []string{"KUBECONFIG=" + c.procConfig},
		args: []string{bin, "manager", "--metrics-bind-address=0", "--health-probe-bind-address=0", "--token-server-image=lpauth-operator:faults"}}
	if err := c.operator.start(); err != nil {
		return c, err
	}
	return c, c.apply(ctx)
}

func (c *cluster) startRedis() error {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return errors.New("redis-server is not installed (make faults installs it: hack/redis.sh)")
	}
	if c.redisAddr == "" {
		if c.redisAddr, err = freeAddr(); err != nil {
			return err
		}
	}
	_, port, _ := net.SplitHostPort(c.redisAddr)
	c.redis = &proc{name: "redis", log: filepath.Join(c.dir, "redis.log"),
		args: []string{bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", c.dir}}
	if err := c.redis.start(); err != nil {
		return err
	}
	return waitTCP(c.redisAddr, 5*time.Second)
}

func waitTCP(addr string, d time.Duration) error {
	for deadline := time.Now().Add(d); ; {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *cluster) apply(ctx context.Context) error {
	ns := c.namespace
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "redis", Namespace: ns}, StringData: map[string]string{"url": "redis://" + c.redisAddr + "/0"}},
		&v1alpha1.SigningKey{ObjectMeta: metav1.ObjectMeta{Name: c.keyName, Namespace: ns}, Spec: v1alpha1.SigningKeySpec{
			Algorithm: v1alpha1.RS256, Rotation: v1alpha1.KeyRotation{Every: metav1.Duration{Duration: 2160 * time.Hour},
				PublishAhead: metav1.Duration{Duration: 24 * time.Hour}, RetainAfterRetire: metav1.Duration{Duration: 24 * time.Hour}}}},
		&v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: c.tokenName, Namespace: ns}, Spec: v1alpha1.TokenServerSpec{
			Issuer: c.issuer, SigningKeyRef: v1alpha1.LocalObjectReference{Name: c.keyName}, Replicas: ptr(int32(2)),
			ReplayStore: &v1alpha1.ReplayStoreSpec{Type: v1alpha1.ReplayStoreRedis, Redis: &v1alpha1.RedisReplayStore{
				AddressSecretRef: v1alpha1.SecretKeyRef{Name: "redis", Key: "url"}}}}},
		&v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "lp", Namespace: ns}, Spec: v1alpha1.LivePersonAuthClientSpec{
			TokenServerRef: v1alpha1.LocalObjectReference{Name: c.tokenName}, AccountID: "12345678", Flow: v1alpha1.FlowCode,
			RedirectURIs: []string{lpRedirect}}},
	}
	for _, o := range objs {
		if err := c.k8s.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	// Credentials and the client's id and secret, once the operator has written them.
	return poll(ctx, 60*time.Second, "the credentials and the client Secret", func() (bool, error) {
		creds, sec := &corev1.Secret{}, &corev1.Secret{}
		if c.k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: credentials.SecretName(c.tokenName)}, creds) != nil ||
			c.k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: v1alpha1.ClientSecretName("lp")}, sec) != nil {
			return false, nil
		}
		c.issueToken = string(creds.Data[credentials.IssueAPITokenKey])
		c.clientID, c.secret = string(sec.Data[v1alpha1.ClientIDKey]), string(sec.Data[v1alpha1.ClientSecretKey])
		return c.clientID != "", nil
	})
}

// tokenServer is one token-server process for the TokenServer, on its own address.
func (c *cluster) tokenServer(name string, extra ...string) (*proc, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	maddr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	p := &proc{name: name, log: filepath.Join(c.dir, name+".log"), env: []string{"KUBECONFIG=" + c.procConfig},
		args: []string{c.bin, "tokenserver", "--namespace", c.namespace, "--token-server", c.tokenName,
			"--listen", addr, "--metrics-listen", maddr, "--shutdown-grace", "20s"}}
	p.args = append(p.args, extra...)
	p.metrics = maddr
	return p, addr, p.start()
}

// markAvailable plays the Deployment controller and kubelet, which the embedded control plane
// does not run, so the TokenServer (and its clients) can be Ready.
func (c *cluster) markAvailable(ctx context.Context) error {
	ts := &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: c.tokenName, Namespace: c.namespace}}
	d := &appsv1.Deployment{}
	return poll(ctx, 60*time.Second, "the token-server Deployment", func() (bool, error) {
		if err := c.k8s.Get(ctx, client.ObjectKey{Namespace: c.namespace, Name: workload.Name(ts)}, d); err != nil {
			return false, nil
		}
		now := metav1.Now()
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 2, ReadyReplicas: 2, AvailableReplicas: 2, UpdatedReplicas: 2,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "Faults",
				Message: "make faults runs this token server as processes", LastUpdateTime: now, LastTransitionTime: now}}}
		return c.k8s.Status().Update(ctx, d) == nil, nil
	})
}

// ready reports whether obj's Ready condition is True for its generation.
func ready(conds []metav1.Condition, generation int64) bool {
	r := meta.FindStatusCondition(conds, v1alpha1.ConditionReady)
	return r != nil && r.Status == metav1.ConditionTrue && r.ObservedGeneration == generation
}

func (c *cluster) stop() {
	for _, p := range []*proc{c.operator, c.redis} {
		if p != nil {
			p.stop()
		}
	}
	if c.apiProxy != nil {
		c.apiProxy.close()
	}
	if c.env != nil {
		_ = c.env.Stop()
	}
}

// poll calls f until it reports done, fails, or d passes.
func poll(ctx context.Context, d time.Duration, what string, f func() (bool, error)) error {
	deadline := time.Now().Add(d)
	for {
		done, err := f()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %s", what, d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitServing waits until base answers /readyz.
func waitServing(base string, d time.Duration) error {
	return poll(context.Background(), d, base+" ready", func() (bool, error) {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

func ptr[T any](v T) *T { return &v }
