package main

import (
	"bufio"

	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/go-logr/logr"

	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// system is hack/dev running as a process: an embedded control plane, the operator,
// the samples and a token server on loopback.
type system struct {
	cmd                                  *exec.Cmd
	dir                                  string
	issuer, clientID, secret, issueToken string
	kubeconfig                           string
	k8s                                  client.Client
	watch                                client.WithWatch
	jwe                                  [2]string // the JWE client's ID and secret, once made
	operatorMetrics                      string    // the operator's /metrics base URL
}

const devNamespace = "lpauth-demo"

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func startSystem(o options) (*system, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "lpauth-bench-")
	if err != nil {
		return nil, err
	}
	metricsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s := &system{dir: dir, operatorMetrics: "http://" + metricsAddr}
	s.cmd = exec.Command(o.dev, "--listen", addr, "--state-dir", dir, "--operator-metrics", metricsAddr)
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	s.cmd.Stderr = os.Stderr
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", o.dev, err)
	}
	fields := map[string]*regexp.Regexp{
		"issuer":     regexp.MustCompile(`^\s+Issuer\s+(\S+)`),
		"clientID":   regexp.MustCompile(`^\s+Client ID\s+(\S+)`),
		"secret":     regexp.MustCompile(`^\s+Client secret\s+(\S+)`),
		"issueToken": regexp.MustCompile(`ISSUE_API_TOKEN='([^']+)'`),
		"kubeconfig": regexp.MustCompile(`export KUBECONFIG=(\S+)`),
	}
	found := map[string]string{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && len(found) < len(fields) {
		for name, re := range fields {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found[name] = m[1]
			}
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if len(found) < len(fields) {
		s.stop()
		return nil, errors.New("hack/dev did not print its endpoints and credentials")
	}
	s.issuer, s.clientID, s.secret, s.issueToken, s.kubeconfig = found["issuer"], found["clientID"], found["secret"], found["issueToken"], found["kubeconfig"]
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig)
	if err != nil {
		s.stop()
		return nil, err
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	ctrllog.SetLogger(logr.Discard())
	scheme := k8sruntime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	if s.watch, err = client.NewWithWatch(cfg, client.Options{Scheme: scheme}); err != nil {
		s.stop()
		return nil, err
	}
	s.k8s = s.watch
	return s, waitReady(s.issuer, 30*time.Second)
}

func waitReady(base string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready within %s", base, timeout)
}

func (s *system) stop() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = s.cmd.Process.Kill()
		}
	}
	_ = os.RemoveAll(s.dir)
}

// tokenServerProcess starts a second token server for the same TokenServer (cold start and
// memory are measured on it, apart from the dev process that also runs the control plane).
// command is the binary, after any wrapper such as taskset.
func (s *system) tokenServerProcess(ctx context.Context, command ...string) (*exec.Cmd, string, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", "", err
	}
	maddr, err := freeAddr()
	if err != nil {
		return nil, "", "", err
	}
	args := append(command[1:], "tokenserver", "--namespace", devNamespace, "--token-server", "brand", "--listen", addr, "--metrics-listen", maddr)
	cmd := exec.CommandContext(ctx, command[0], args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+s.kubeconfig)
	// One log per process: the Redis section runs two at once, and a shared name would have the
	// second truncate the first's.
	_, port, _ := net.SplitHostPort(addr)
	logPath := filepath.Join(s.dir, "tokenserver-"+port+".log")
	log, _ := os.Create(logPath)
	cmd.Stdout, cmd.Stderr = log, log
	return cmd, "http://" + addr, "http://" + maddr, cmd.Start()
}

// rssMiB reads a process's resident memory now and at its peak.
func rssMiB(pid int) (now, peak float64) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		var kb float64
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			fmt.Sscanf(strings.TrimSpace(v), "%f", &kb)
			now = kb / 1024
		} else if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			fmt.Sscanf(strings.TrimSpace(v), "%f", &kb)
			peak = kb / 1024
		}
	}
	return now, peak
}
