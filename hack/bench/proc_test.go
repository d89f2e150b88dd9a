package main

import (
	"testing"
	"time"
)

func TestParseSteal(t *testing.T) {
	t.Parallel()
	const stat = "cpu  1632980 5182 167169 6777684 6703 0 18184 103998 0 0\n" +
		"cpu0 845026 2313 81170 3367812 4032 0 6811 49960 0 0\n" +
		"cpu1 787953 2869 85999 3409872 2671 0 11373 54037 0 0\n" +
		"cpu10 1 1 1 1 1 0 1 777 0 0\n" +
		"cpu2 1 2 3 4 5 6 7\n" +
		"intr 1 2 3\n"
	for _, tc := range []struct {
		cpu  int
		want time.Duration
		ok   bool
	}{
		{0, 49960 * 10 * time.Millisecond, true},
		{1, 54037 * 10 * time.Millisecond, true},
		{10, 777 * 10 * time.Millisecond, true}, // not cpu1's line
		{2, 0, false},                           // no steal column
		{3, 0, false},                           // no such core
	} {
		if got, ok := parseSteal(stat, tc.cpu); got != tc.want || ok != tc.ok {
			t.Errorf("cpu%d: %v %v, want %v %v", tc.cpu, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseSchedstat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in        string
		run, wait time.Duration
		ok        bool
	}{
		{"896091 2345 17\n", 896091, 2345, true},
		{"0 0 0", 0, 0, true},
		{"896091", 0, 0, false},
		{"", 0, 0, false},
		{"x 1 2", 0, 1, false},
	} {
		run, wait, ok := parseSchedstat(tc.in)
		if ok != tc.ok || ok && (run != tc.run || wait != tc.wait) {
			t.Errorf("%q: %v %v %v, want %v %v %v", tc.in, run, wait, ok, tc.run, tc.wait, tc.ok)
		}
	}
}
