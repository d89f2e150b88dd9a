package main

import (
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// proxy is what a Service gives the token servers: a TCP round robin over the backends whose
// /readyz answers 200, checked every 100 ms (a kube-proxy endpoint drops a pod that turns
// unready). An open connection stays with its backend, as it does through kube-proxy.
type proxy struct {
	ln       net.Listener
	mu       sync.Mutex
	backends []*backend
	next     atomic.Uint64
	done     chan struct{}
	// always: the backends are used whatever their /readyz says (the API server's proxy).
	always bool
	// down: the network is cut; conns are the open connections, closed when it is.
	down  atomic.Bool
	conns map[net.Conn]struct{}
}

// cut drops every open connection and refuses new ones until restore: to the processes behind
// it, the backend is gone.
func (p *proxy) cut() {
	p.down.Store(true)
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

func (p *proxy) restore() { p.down.Store(false) }

type backend struct {
	addr  string
	ready atomic.Bool
}

func newProxy(addr string) (*proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, done: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	go p.accept()
	go p.check()
	return p, nil
}

// set replaces the backends (their readiness is checked before any is used).
func (p *proxy) set(addrs ...string) {
	bs := make([]*backend, len(addrs))
	for i, a := range addrs {
		bs[i] = &backend{addr: a}
		bs[i].ready.Store(p.always || probe(a))
	}
	p.mu.Lock()
	p.backends = bs
	p.mu.Unlock()
}

func probe(addr string) bool {
	c := http.Client{Timeout: 200 * time.Millisecond}
	resp, err := c.Get("http://" + addr + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (p *proxy) check() {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
		}
		p.mu.Lock()
		bs := p.backends
		p.mu.Unlock()
		for _, b := range bs {
			b.ready.Store(p.always || probe(b.addr))
		}
	}
}

func (p *proxy) pick() string {
	p.mu.Lock()
	bs := p.backends
	p.mu.Unlock()
	for range bs {
		b := bs[p.next.Add(1)%uint64(len(bs))]
		if b.ready.Load() {
			return b.addr
		}
	}
	return ""
}

func (p *proxy) accept() {
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.serve(conn)
	}
}

func (p *proxy) serve(in net.Conn) {
	defer in.Close()
	if p.down.Load() {
		return
	}
	addr := p.pick()
	if addr == "" {
		return // no ready backend: the connection is refused, as with no endpoints
	}
	out, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	defer out.Close()
	p.mu.Lock()
	p.conns[in], p.conns[out] = struct{}{}, struct{}{}
	p.mu.Unlock()
	if p.down.Load() {
		return // cut while this connection was being set up
	}
	defer func() {
		p.mu.Lock()
		delete(p.conns, in)
		delete(p.conns, out)
		p.mu.Unlock()
	}()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(out, in); _ = out.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { _, _ = io.Copy(in, out); _ = in.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	<-done
	<-done
}

func (p *proxy) close() {
	close(p.done)
	p.ln.Close()
}
