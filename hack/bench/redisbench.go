package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lpauth/lpauth-operator/tokenserver/replay"
)

// What one Redis carries for the replay store, for issue 18's fourth target: the commands one
// redemption sends are captured from the token server's own replay.Redis (so the figure follows
// the claim script as it changes, rather than a copy of it here), then replayed pipelined over a
// plain connection with a fresh code ID each, so Redis, not the client, is the bound.

// claimPlaceholder is the code ID of the captured claim; each replay writes a counter of the
// same length in its place, so every RESP length in the command stays right.
const claimPlaceholder = "benchclaim000000000000"

func claimID(i int) string { return fmt.Sprintf("benchclaim%012d", i) }

// captureClaim makes one claim through replay.Redis, via a recording proxy in front of Redis at
// addr, and returns the commands (raw RESP) that carried claimPlaceholder: what a redemption
// sends when nothing fails. A first claim is made and left out, so one-time commands (HELLO,
// CLIENT SETINFO, a script load) are not counted as every redemption's.
func captureClaim(ctx context.Context, addr string) ([][]byte, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	var (
		mu       sync.Mutex
		captured [][]byte
		conns    []net.Conn
	)
	defer func() {
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", addr)
			if err != nil {
				_ = c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, up)
			mu.Unlock()
			go func() { _, _ = io.Copy(c, up) }()
			go func() {
				br := bufio.NewReader(c)
				for {
					raw, err := readRESP(br)
					if err != nil {
						return
					}
					if bytes.Contains(raw, []byte(claimPlaceholder)) {
						mu.Lock()
						captured = append(captured, raw)
						mu.Unlock()
					}
					if _, err := up.Write(raw); err != nil {
						return
					}
				}
			}()
		}
	}()
	store, err := replay.NewRedis("redis://"+ln.Addr().String(), "bench-capacity:")
	if err != nil {
		return nil, err
	}
	defer store.Close()
	now := time.Now()
	if _, err := store.Claim(ctx, "benchwarm", now, now.Add(5*time.Minute)); err != nil {
		return nil, fmt.Errorf("a claim through replay.Redis: %w", err)
	}
	if ok, err := store.Claim(ctx, claimPlaceholder, now, now.Add(5*time.Minute)); err != nil || !ok {
		return nil, fmt.Errorf("the captured claim through replay.Redis: fresh %v, %v", ok, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(captured) == 0 {
		return nil, errors.New("no command of the claim was seen")
	}
	return captured, nil
}

// readRESP reads one RESP2 or RESP3 value and returns its bytes as they came.
func readRESP(br *bufio.Reader) ([]byte, error) {
	var out []byte
	var read func() error
	read = func() error {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return err
		}
		out = append(out, line...)
		if len(line) < 3 {
			return fmt.Errorf("redis: short line %q", line)
		}
		n, _ := strconv.Atoi(string(bytes.TrimSpace(line[1:])))
		switch line[0] {
		case '$', '!', '=': // bulk string, bulk error, verbatim string
			if n < 0 {
				return nil
			}
			buf := make([]byte, n+2)
			if _, err := io.ReadFull(br, buf); err != nil {
				return err
			}
			out = append(out, buf...)
		case '*', '~', '>': // array, set, push
			for range max(n, 0) {
				if err := read(); err != nil {
					return err
				}
			}
		case '%': // map
			for range 2 * max(n, 0) {
				if err := read(); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err := read()
	return out, err
}

// commandNames names the captured commands (their first word), e.g. "EVAL".
func commandNames(cmds [][]byte) string {
	var names []string
	for _, c := range cmds {
		br := bufio.NewReader(bytes.NewReader(c))
		_, _ = br.ReadBytes('\n') // *N
		_, _ = br.ReadBytes('\n') // $len
		name, _ := br.ReadBytes('\n')
		names = append(names, strings.ToUpper(string(bytes.TrimSpace(name))))
	}
	return strings.Join(names, " + ")
}

// pipelineResult is one pipelined run against Redis.
type pipelineResult struct {
	ops, redisCPU float64 // operations per second; Redis's CPU seconds over the run
	n, errors     int
	firstErr      string
}

// Pipelining depth: batches of pipelineBatch commands, at most pipelineInflight batches
// unanswered, enough for one Redis thread never to wait for the client.
const (
	pipelineBatch    = 64
	pipelineInflight = 4
)

// pipelined sends the operations cmd(i) for d over one connection, pipelined, and counts the
// answers (error answers apart). Redis runs commands of one connection in order, on its one
// thread, as it runs those of many.
func pipelined(addr string, redisPid int, d time.Duration, cmd func(i int) []byte) (pipelineResult, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return pipelineResult{}, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(d + 10*time.Second))
	sem := make(chan struct{}, pipelineInflight)
	sent := make(chan struct{}, pipelineInflight)
	cpu0 := cpuSeconds(redisPid)
	start := time.Now()
	var writeErr error
	go func() {
		defer close(sent)
		var buf []byte
		for i := 0; time.Since(start) < d; {
			sem <- struct{}{}
			buf = buf[:0]
			for range pipelineBatch {
				buf = append(buf, cmd(i)...)
				i++
			}
			if _, err := conn.Write(buf); err != nil {
				writeErr = err
				return
			}
			sent <- struct{}{}
		}
	}()
	var res pipelineResult
	br := bufio.NewReaderSize(conn, 1<<16)
	for range sent {
		for range pipelineBatch {
			raw, err := readRESP(br)
			if err != nil {
				return res, err
			}
			res.n++
			if raw[0] == '-' || raw[0] == '!' {
				if res.errors++; res.errors == 1 {
					res.firstErr = strings.TrimSpace(string(raw))
				}
			}
		}
		<-sem
	}
	if writeErr != nil {
		return res, writeErr
	}
	res.ops = float64(res.n-res.errors) / time.Since(start).Seconds()
	res.redisCPU = cpuSeconds(redisPid) - cpu0
	return res, nil
}

// respCommand encodes a command as a RESP array of bulk strings.
func respCommand(args ...string) []byte {
	b := fmt.Appendf(nil, "*%d\r\n", len(args))
	for _, a := range args {
		b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b
}

// redisCapacity measures what the Redis at addr (process redisPid) carries: the commands of one
// claim, replayed with fresh IDs, and a bare SET NX PX beside them for scale. This process's
// threads move to loadCPUs for the length of it (the others' moved back to restoreCPUs after),
// so the load generator does not share Redis's core.
func redisCapacity(ctx context.Context, r func(format string, args ...any), addr string, redisPid int, loadCPUs, restoreCPUs string, d time.Duration) (claims, perCPU float64, err error) {
	cmds, err := captureClaim(ctx, addr)
	if err != nil {
		return 0, 0, err
	}
	if err := setOwnAffinity(loadCPUs); err != nil {
		return 0, 0, err
	}
	defer func() { _ = setOwnAffinity(restoreCPUs) }()
	claim := func(i int) []byte {
		id := []byte(claimID(i + 1)) // 0 is the captured claim's, already taken
		var b []byte
		for _, c := range cmds {
			b = append(b, bytes.ReplaceAll(c, []byte(claimPlaceholder), id)...)
		}
		return b
	}
	cr, err := pipelined(addr, redisPid, d, claim)
	if err != nil {
		return 0, 0, err
	}
	set, err := pipelined(addr, redisPid, d, func(i int) []byte {
		return respCommand("SET", "bench-capacity:set:"+claimID(i), "0123456789abcdefghijklmnop", "NX", "PX", "300000")
	})
	if err != nil {
		return 0, 0, err
	}
	// Commands per claim: each replayed operation is all of them, so claims/s is answers/s
	// divided by their number.
	per := float64(len(cmds))
	claims = cr.ops / per
	if cr.redisCPU > 0 {
		perCPU = float64(cr.n-cr.errors) / per / cr.redisCPU
	}
	r("    one Redis, the claim a redemption sends (%s, %d command(s), %d bytes; pipelined %d × %d over one connection, the load generator on core(s) %s): %.0f claims/s, Redis CPU %.1f s of %.1f s (%.0f claims per Redis CPU-second)",
		commandNames(cmds), len(cmds), len(claim(0)), pipelineBatch, pipelineInflight, loadCPUs, claims, cr.redisCPU, d.Seconds(), perCPU)
	r("      beside it, a bare SET NX PX (the claim alone, without the script's checks): %.0f/s (%.0f per Redis CPU-second)", set.ops, float64(set.n-set.errors)/max(set.redisCPU, 1e-9))
	if cr.errors > 0 {
		r("      %d error answers to the replayed claims, first: %.200s", cr.errors, cr.firstErr)
	}
	return claims, perCPU, nil
}

// setOwnAffinity moves this process's threads, and only them (setAffinity also moves the
// processes it started, among them the dev control plane and Redis), to cpus.
func setOwnAffinity(cpus string) error {
	if out, err := exec.Command("taskset", "-a", "-p", "-c", cpus, strconv.Itoa(os.Getpid())).CombinedOutput(); err != nil {
		return fmt.Errorf("taskset %d: %v: %s", os.Getpid(), err, out)
	}
	return nil
}
