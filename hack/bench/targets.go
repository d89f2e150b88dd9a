package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Issue 18 asks for each target's measured value, limit, ratio and verdict in one run, and for
// the README to give five runs as min–max. So every part records what it measured against a
// target, the run prints them last as TARGET lines in one fixed format (greppable, and parsed
// back by -summarize), and -summarize folds several results files into min–max per target.

// Verdicts of a TARGET line. INFO is a figure the issue asks to report without a limit (the
// growth steps, write amplification, the Redis figures): it is summarized but never counted as
// passed or missed.
const (
	verdictPass = "PASS"
	verdictMiss = "MISS"
	verdictInfo = "INFO"
)

// target is one TARGET line: name (no spaces, no '|'), the measured value as printed with its
// unit, the limit or reference it is compared with, value ÷ limit, and the verdict.
type target struct {
	name, value, limit string
	ratio              float64 // NaN when there is none
	verdict            string
}

// String is the TARGET line. The value and ratio carry no thousands separators, so that
// parseTargetLine reads them back as numbers.
func (t target) String() string {
	ratio := "-"
	if t.ratio == t.ratio { // not NaN
		ratio = strconv.FormatFloat(t.ratio, 'f', 2, 64)
	}
	return fmt.Sprintf("TARGET %s | %s | %s | %s | %s", t.name, t.value, t.limit, ratio, t.verdict)
}

// atMost records a "value < limit" target, notOver "value ≤ limit", atLeast "value ≥ limit".
// format prints value and limit alike (no thousands separators); unit follows them.
func atMost(name string, value, limit float64, unit, format string) target {
	return compared(name, value, limit, "<", value < limit, unit, format)
}

func notOver(name string, value, limit float64, unit, format string) target {
	return compared(name, value, limit, "<=", value <= limit, unit, format)
}

func atLeast(name string, value, limit float64, unit, format string) target {
	return compared(name, value, limit, ">=", value >= limit, unit, format)
}

func compared(name string, value, limit float64, op string, pass bool, unit, format string) target {
	v := verdictMiss
	if pass {
		v = verdictPass
	}
	return target{name: name, value: fmt.Sprintf(format, value) + unit, limit: op + " " + fmt.Sprintf(format, limit) + unit, ratio: value / limit, verdict: v}
}

// info records a figure with no limit; reference says what ratio (if any) is relative to.
func info(name string, value float64, unit, format, reference string, ratio float64) target {
	if reference == "" {
		reference = "report"
	}
	return target{name: name, value: fmt.Sprintf(format, value) + unit, limit: reference, ratio: ratio, verdict: verdictInfo}
}

// parsedTarget is a TARGET line read back: the value split into its number and unit.
type parsedTarget struct {
	name           string
	num            float64
	numText, unit  string
	value          string // as printed: number, separator, unit
	limit          string
	ratio          float64
	ratioText      string
	hasRatio       bool
	verdict        string
	passed, scored bool
}

var leadingNumber = regexp.MustCompile(`^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$`)

// parseTargetLine reads one TARGET line; ok is false for any other line.
func parseTargetLine(line string) (parsedTarget, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "TARGET ")
	if !ok {
		return parsedTarget{}, false
	}
	f := strings.Split(rest, "|")
	if len(f) != 5 {
		return parsedTarget{}, false
	}
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	p := parsedTarget{name: f[0], limit: f[2], ratioText: f[3], verdict: f[4]}
	if p.name == "" || strings.ContainsAny(p.name, " \t") {
		return parsedTarget{}, false
	}
	m := leadingNumber.FindStringSubmatch(f[1])
	if m == nil {
		return parsedTarget{}, false
	}
	var err error
	if p.num, err = strconv.ParseFloat(m[1], 64); err != nil {
		return parsedTarget{}, false
	}
	p.numText, p.unit, p.value = m[1], m[2], f[1]
	if r, err := strconv.ParseFloat(p.ratioText, 64); err == nil {
		p.ratio, p.hasRatio = r, true
	}
	switch p.verdict {
	case verdictPass:
		p.passed, p.scored = true, true
	case verdictMiss:
		p.scored = true
	case verdictInfo:
	default:
		return parsedTarget{}, false
	}
	return p, true
}

// targetSummary is min–max of one target over several runs.
type targetSummary struct {
	name, limit          string
	min, max             parsedTarget
	minRatio, maxRatio   parsedTarget
	hasRatio             bool
	runs, scored, passed int
	units                []string
	values               []string // as printed, in run order
}

// summarizeTargets folds runs (each a results file's TARGET lines) into one summary per target
// name, in the order names first appear.
func summarizeTargets(runs [][]parsedTarget) []targetSummary {
	var order []string
	by := map[string]*targetSummary{}
	for _, run := range runs {
		for _, t := range run {
			s := by[t.name]
			if s == nil {
				s = &targetSummary{name: t.name, limit: t.limit, min: t, max: t}
				by[t.name] = s
				order = append(order, t.name)
			}
			s.runs++
			if t.num < s.min.num {
				s.min = t
			}
			if t.num > s.max.num {
				s.max = t
			}
			if t.hasRatio {
				if !s.hasRatio || t.ratio < s.minRatio.ratio {
					s.minRatio = t
				}
				if !s.hasRatio || t.ratio > s.maxRatio.ratio {
					s.maxRatio = t
				}
				s.hasRatio = true
			}
			if t.scored {
				s.scored++
				if t.passed {
					s.passed++
				}
			}
			s.values = append(s.values, t.value)
			if !slices.Contains(s.units, t.unit) {
				s.units = append(s.units, t.unit)
			}
		}
	}
	out := make([]targetSummary, 0, len(order))
	for _, n := range order {
		out = append(out, *by[n])
	}
	return out
}

// String is one summary line: name | value min–max | limit | ratio min–max | passed/scored
// (INFO targets: the number of runs that measured them).
func (s targetSummary) String() string {
	span := func(lo, hi string) string {
		if lo == hi {
			return lo
		}
		return lo + "–" + hi
	}
	// The number keeps the separator it was printed with ("41.2 s", "98.40%").
	value := span(s.min.numText, s.max.numText) + strings.TrimPrefix(s.min.value, s.min.numText)
	if len(s.units) > 1 {
		// No min–max across units (the code prints each target in one unit; an older file may not).
		value = "mixed units: " + strings.Join(s.values, ", ")
	}
	ratio := "-"
	if s.hasRatio {
		ratio = span(s.minRatio.ratioText, s.maxRatio.ratioText)
	}
	passed := fmt.Sprintf("%d/%d passed", s.passed, s.scored)
	if s.scored == 0 {
		passed = fmt.Sprintf("info, %d run(s)", s.runs)
	} else if s.scored < s.runs {
		passed += fmt.Sprintf(" (%d run(s) without a verdict)", s.runs-s.scored)
	}
	return fmt.Sprintf("%s | %s | %s | %s | %s", s.name, value, s.limit, ratio, passed)
}

// summarize prints the min–max summary of the results files matching pattern.
func summarize(pattern string) error {
	files, err := filepath.Glob(pattern)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no file matches %q", pattern)
	}
	slices.Sort(files)
	var runs [][]parsedTarget
	for _, f := range files {
		ts, err := readTargets(f)
		if err != nil {
			return err
		}
		if len(ts) == 0 {
			fmt.Printf("(%s has no TARGET lines)\n", f)
			continue
		}
		runs = append(runs, ts)
	}
	fmt.Printf("%d results file(s) with TARGET lines, of %d matching %s\n", len(runs), len(files), pattern)
	fmt.Println("name | value min–max | target | ratio min–max | verdicts")
	for _, s := range summarizeTargets(runs) {
		fmt.Println(s)
	}
	return nil
}

func readTargets(path string) ([]parsedTarget, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []parsedTarget
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if t, ok := parseTargetLine(sc.Text()); ok {
			out = append(out, t)
		}
	}
	return out, sc.Err()
}
