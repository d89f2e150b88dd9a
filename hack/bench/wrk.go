package main

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// wrk runs Debian's wrk (C, one thread, so the server keeps the other cores) when it is
// installed: a load generator much lighter than Go's HTTP client, so the server's own rate shows.

const tokenScript = `
local codes, i = {}, 0
local auth, body = "", ""
function init(args)
  auth = args[2]
  for line in io.lines(args[1]) do codes[#codes + 1] = line end
end
function request()
  i = i + 1
  local code = codes[i] or "exhausted"
  return wrk.format("POST", "/token", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = "Basic " .. auth,
  }, "grant_type=authorization_code&redirect_uri=https%3A%2F%2Fliveperson.net&code=" .. code)
end
`

type wrkResult struct {
	rps             float64
	p50, p99        string
	non2xx, sockErr int
}

var (
	wrkRPS     = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	wrkLatency = regexp.MustCompile(`(?m)^\s+(50|99)%\s+(\S+)`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSocket  = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// runWrk runs wrk against url; script, when set, gets scriptArgs (wrk wants them after the URL).
func runWrk(conc int, d time.Duration, url, script string, scriptArgs ...string) (wrkResult, error) {
	cmdArgs := []string{"-t1", "-c" + strconv.Itoa(conc), "-d" + strconv.Itoa(int(d.Seconds())) + "s", "--latency"}
	if script != "" {
		cmdArgs = append(cmdArgs, "-s", script)
	}
	cmdArgs = append(cmdArgs, url)
	if len(scriptArgs) > 0 {
		cmdArgs = append(append(cmdArgs, "--"), scriptArgs...)
	}
	out, err := exec.Command("wrk", cmdArgs...).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %v: %s", err, out)
	}
	var r wrkResult
	if m := wrkRPS.FindSubmatch(out); m != nil {
		r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	for _, m := range wrkLatency.FindAllSubmatch(out, -1) {
		if string(m[1]) == "50" {
			r.p50 = string(m[2])
		} else {
			r.p99 = string(m[2])
		}
	}
	if m := wrkNon2xx.FindSubmatch(out); m != nil {
		r.non2xx, _ = strconv.Atoi(string(m[1]))
	}
	if m := wrkSocket.FindSubmatch(out); m != nil {
		for _, g := range m[1:] {
			n, _ := strconv.Atoi(string(g))
			r.sockErr += n
		}
	}
	return r, nil
}

// wrkLoad measures /token, JWKS and discovery with wrk.
func wrkLoad(o options, r *report, s *system, l limits) error {
	if _, err := exec.LookPath("wrk"); err != nil {
		r.line("  (wrk is not installed: `apt-get install wrk` adds the load-generator-light rows)")
		return nil
	}
	dir, err := os.MkdirTemp("", "lpauth-wrk-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "token.lua")
	if err := os.WriteFile(script, []byte(tokenScript), 0o600); err != nil {
		return err
	}
	r.line("HTTP load with wrk (C, one thread): the server's own rate")
	r.line("  %-26s %5s %10s %9s %9s %7s %10s", "endpoint", "conc", "req/s", "p50", "p99", "errors", "÷ limit")
	for _, conc := range []int{16, 64} {
		// Codes for the whole step, plus margin: every request needs an unused one.
		pool := &codePool{}
		need := int(l.rs2048*o.step.Seconds()*1.5) + 2000
		load(16, 30*time.Second, 0, func(hc *http.Client, i int64) (bool, error) {
			if len(pool.codes) >= need {
				return false, nil
			}
			b, err := post(hc, s.issuer+"/api/v1/codes", s.issueToken, "application/json", codeBody(s.clientID, i), [2]string{})
			if err == nil {
				pool.put(codeFrom(b))
			}
			return true, err
		})
		codesFile := filepath.Join(dir, fmt.Sprintf("codes-%d", conc))
		if err := os.WriteFile(codesFile, []byte(strings.Join(pool.codes, "\n")+"\n"), 0o600); err != nil {
			return err
		}
		auth := base64.StdEncoding.EncodeToString([]byte(s.clientID + ":" + s.secret))
		res, err := runWrk(conc, o.step, s.issuer+"/token", script, codesFile, auth)
		if err != nil {
			return err
		}
		r.line("  %-26s %5d %10.0f %9s %9s %7d %10.2f", "POST /token", conc, res.rps, res.p50, res.p99, res.non2xx+res.sockErr, res.rps/l.rs2048)
	}
	for _, ep := range []struct{ name, path string }{{"GET JWKS", "/.well-known/jwks.json"}, {"GET discovery", "/.well-known/openid-configuration"}} {
		res, err := runWrk(64, o.step, s.issuer+ep.path, "")
		if err != nil {
			return err
		}
		r.line("  %-26s %5d %10.0f %9s %9s %7d %10s", ep.name, 64, res.rps, res.p50, res.p99, res.non2xx+res.sockErr, "")
	}
	return nil
}

func codeFrom(b []byte) string {
	s := string(b)
	i := strings.Index(s, `"code":"`)
	if i < 0 {
		return ""
	}
	s = s[i+len(`"code":"`):]
	return s[:strings.IndexByte(s, '"')]
}
