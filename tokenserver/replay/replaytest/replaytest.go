// Package replaytest starts throwaway Redis servers for tests.
package replaytest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// StartRedis runs redis-server on a free loopback port until the test ends and returns its URL.
// Without redis-server the test is skipped, except in CI, where it fails.
func StartRedis(t testing.TB) string {
	t.Helper()
	return Redis(t).URL
}

// Server is a redis-server a test can restart (without persistence: it comes back empty).
type Server struct {
	URL  string
	port int
	bin  string
	dir  string
	cmd  *exec.Cmd
	// extra are more redis-server arguments (a cluster node's).
	extra []string
}

// Restart kills the server and starts it again on the same port, empty.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.start(t)
}

// Redis runs redis-server like StartRedis and returns it.
func Redis(t testing.TB) *Server {
	t.Helper()
	return redisWith(t)
}

// RedisWith is Redis with extra redis-server arguments (--maxmemory 10mb, ...).
func RedisWith(t testing.TB, extra ...string) *Server {
	t.Helper()
	return redisWith(t, extra...)
}

func redisWith(t testing.TB, extra ...string) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not installed; in CI it must be (hack/redis.sh installs it)")
		}
		t.Skip("redis-server is not installed (make test installs it: hack/redis.sh)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port), port: port, bin: bin, dir: t.TempDir(), extra: extra}
	s.start(t)
	t.Cleanup(func() { _ = s.cmd.Process.Kill(); _ = s.cmd.Wait() })
	return s
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	// Its own folder: a redis-server loads any dump.rdb it finds where it starts.
	args := append([]string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", s.dir}, s.extra...)
	s.cmd = exec.Command(s.bin, args...)
	// A test binary that dies leaves no redis-server behind.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", s.port)
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill kills the server (it stays down).
func (s *Server) Kill() { _ = s.cmd.Process.Kill(); _ = s.cmd.Wait() }
