// Package prometheus holds the monitoring a brand applies (kustomize, beside this file) and the
// tests that keep it true to the code: the alert rules pass promtool's unit tests, every alert has
// a runbook in the README, and the rules and the Grafana dashboard query only metrics the
// operator and the token server export.
package prometheus

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// ruleFile is the part of a PrometheusRule promtool reads: its spec.
type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Expr        string            `json:"expr"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

// shippedRules reads prometheusrule.yaml: its spec, as the rules file promtool takes.
func shippedRules(t *testing.T) ([]byte, ruleFile) {
	t.Helper()
	raw, err := os.ReadFile("prometheusrule.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var obj struct {
		Kind string          `json:"kind"`
		Spec json.RawMessage `json:"spec"`
	}
	if err := yaml.Unmarshal(raw, &obj); err != nil || obj.Kind != "PrometheusRule" {
		t.Fatalf("prometheusrule.yaml: kind %q, %v; want a PrometheusRule", obj.Kind, err)
	}
	var rules ruleFile
	if err := json.Unmarshal(obj.Spec, &rules); err != nil {
		t.Fatal(err)
	}
	spec, err := yaml.JSONToYAML(obj.Spec)
	if err != nil {
		t.Fatal(err)
	}
	return spec, rules
}

// promtool is the promtool binary: $PROMTOOL (make test sets it), else what hack/promtool.sh
// builds (once, cached outside the repo).
func promtool(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PROMTOOL"); p != "" {
		return p
	}
	out, err := exec.Command("../../hack/promtool.sh").Output()
	if err != nil {
		t.Fatalf("hack/promtool.sh (builds promtool from its Go module): %v", err)
	}
	return strings.TrimSpace(string(out))
}

// The shipped rules, not a copy: the PrometheusRule's spec is written out as rules.yaml beside
// tests.yaml, and promtool checks it and runs the unit tests against it.
func TestAlertRulesWithPromtool(t *testing.T) {
	if testing.Short() {
		t.Skip("promtool (built from github.com/prometheus/prometheus by hack/promtool.sh, minutes the first time): skipped by -short")
	}
	bin := promtool(t)
	spec, _ := shippedRules(t)
	dir := t.TempDir()
	tests, err := os.ReadFile("tests.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"rules.yaml": spec, "tests.yaml": tests} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"check", "rules", "rules.yaml"}, {"test", "rules", "tests.yaml"}} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// The alerts the README promises, each with what an on-call person needs.
var wantAlerts = []string{
	"LPAuthSigningKeyRotationOverdue", "LPAuthNoNextKeyPublishedAhead", "LPAuthSigningKeyRotatedEarly", "LPAuthSigningKeySetFull",
	"LPAuthConsoleUpdatePending", "LPAuthConsoleKeyOutdated", "LPAuthOperatorDown",
	"LPAuthTokenErrorRatioHigh", "LPAuthReplayStoreUnavailable", "LPAuthTokenServerSnapshotStale",
}

const runbookBase = "https://github.com/lpauth/lpauth-operator/blob/main/README.md#"

func TestEveryAlertHasARunbookInTheREADME(t *testing.T) {
	_, rules := shippedRules(t)
	anchors := readmeAnchors(t)
	var got []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			got = append(got, r.Alert)
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if r.Annotations[a] == "" {
					t.Errorf("%s: no %s annotation", r.Alert, a)
				}
			}
			anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], runbookBase)
			if !ok || !anchors[anchor] || anchor != strings.ToLower(r.Alert) {
				t.Errorf("%s: runbook_url %q, want %s%s, a heading of the README", r.Alert, r.Annotations["runbook_url"], runbookBase, strings.ToLower(r.Alert))
			}
		}
	}
	sort.Strings(got)
	want := append([]string(nil), wantAlerts...)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("alerts %v, want %v", got, want)
	}
}

// The operator-down alert watches the job the shipped PodMonitor's targets get: the Prometheus
// Operator names it "<PodMonitor namespace>/<PodMonitor name>", here kustomization.yaml's
// namespace and namePrefix applied to podmonitor.yaml's name. A job that matches nothing would
// make absent() fire forever, or, if the expression were changed to match anything, never.
func TestOperatorDownWatchesTheShippedPodMonitorsJob(t *testing.T) {
	var kust struct {
		Namespace  string   `json:"namespace"`
		NamePrefix string   `json:"namePrefix"`
		Resources  []string `json:"resources"`
	}
	var pm struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	for file, into := range map[string]any{"kustomization.yaml": &kust, "podmonitor.yaml": &pm} {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(raw, into); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	if pm.Kind != "PodMonitor" || !strings.Contains(strings.Join(kust.Resources, ","), "podmonitor.yaml") {
		t.Fatalf("podmonitor.yaml is a %q, kustomization resources %v: want the PodMonitor shipped", pm.Kind, kust.Resources)
	}
	ns := kust.Namespace
	if ns == "" {
		ns = pm.Metadata.Namespace
	}
	job := ns + "/" + kust.NamePrefix + pm.Metadata.Name
	_, rules := shippedRules(t)
	found := false
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert != "LPAuthOperatorDown" {
				continue
			}
			found = true
			if want := `absent(up{job="` + job + `"} == 1)`; strings.TrimSpace(r.Expr) != want {
				t.Errorf("LPAuthOperatorDown: expr %q, want %q (the shipped PodMonitor's job)", r.Expr, want)
			}
			if !strings.Contains(r.Annotations["description"], job) {
				t.Errorf("LPAuthOperatorDown: description %q does not name the PodMonitor %s", r.Annotations["description"], job)
			}
		}
	}
	if !found {
		t.Error("no LPAuthOperatorDown alert")
	}
}

// readmeAnchors are the README's headings as GitHub anchors them.
func readmeAnchors(t *testing.T) map[string]bool {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	for _, line := range strings.Split(string(raw), "\n") {
		if h, ok := strings.CutPrefix(line, "#"); ok {
			h = strings.TrimSpace(strings.TrimLeft(h, "#"))
			anchors[strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(h), ""), " ", "-")] = true
		}
	}
	return anchors
}

// exported are the metric names the code registers, read from the source as a reviewer would
// grep them: every `Name: "lpauth_..."` of the two metrics files.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	re := regexp.MustCompile(`Name:\s*"(lpauth_[a-z0-9_]+)"`)
	for _, f := range []string{"../../controllers/metrics.go", "../../tokenserver/metrics/metrics.go"} {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			names[m[1]] = true
		}
	}
	if len(names) < 20 {
		t.Fatalf("found %d metric names in the source, want the 20 or more it registers: did the files move?", len(names))
	}
	return names
}

var metricRef = regexp.MustCompile(`\blpauth_[a-z0-9_]+`)

// scrapeHealth is the one series not of the code that a rule may read: Prometheus's own up of
// a scrape job (LPAuthOperatorDown, on the shipped PodMonitor's job).
var scrapeHealth = regexp.MustCompile(`\bup\{job="[^"]+"\}`)

// unknownMetrics are the names expr refers to that the code does not export (a histogram's
// _bucket, _sum and _count series count as its name's).
func unknownMetrics(expr string, names map[string]bool) []string {
	var out []string
	for _, ref := range metricRef.FindAllString(expr, -1) {
		base := ref
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(ref, suffix); ok && names[b] {
				base = b
			}
		}
		if !names[base] {
			out = append(out, ref)
		}
	}
	return out
}

func TestAlertRulesQueryExportedMetrics(t *testing.T) {
	names := exported(t)
	_, rules := shippedRules(t)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if bad := unknownMetrics(r.Expr, names); len(bad) > 0 || !metricRef.MatchString(r.Expr) && !scrapeHealth.MatchString(r.Expr) {
				t.Errorf("%s: queries %v, which the code does not export", r.Alert, bad)
			}
		}
	}
}

// The dashboard parses, and each panel's queries read only exported metrics.
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if dash.Title == "" || dash.UID == "" {
		t.Errorf("dashboard title %q, uid %q: want both", dash.Title, dash.UID)
	}
	names := exported(t)
	queries := 0
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			queries++
			if bad := unknownMetrics(q.Expr, names); len(bad) > 0 || !metricRef.MatchString(q.Expr) {
				t.Errorf("panel %q queries %v (in %q), which the code does not export", p.Title, bad, q.Expr)
			}
		}
	}
	for _, want := range []string{"lpauth_http_requests_total", "lpauth_http_request_duration_seconds_bucket", "lpauth_request_failures_total",
		"lpauth_operator_signingkey_active_key_activated_timestamp_seconds", "lpauth_operator_signingkey_next_rotation_timestamp_seconds", "lpauth_operator_signingkey_next_key_published"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("the dashboard does not show %s", want)
		}
	}
	t.Logf("%d panels, %d queries", len(dash.Panels), queries)
}
