package main

import (
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	hundred := make([]int64, 100)
	for i := range hundred {
		hundred[i] = int64(i + 1)
	}
	tests := []struct {
		name   string
		sorted []int64
		q      float64
		want   int64
	}{
		{"empty", nil, 0.5, 0},
		{"one", []int64{7}, 0.99, 7},
		{"median of 1..100", hundred, 0.50, 50},
		{"p90 of 1..100", hundred, 0.90, 90},
		{"p99 of 1..100", hundred, 0.99, 99},
		{"p99.9 of 1..100 is the max", hundred, 0.999, 100},
		{"p0 is the min", hundred, 0, 1},
		{"p100 is the max", hundred, 1, 100},
		{"nearest rank rounds up", []int64{1, 2, 3}, 0.5, 2},
	}
	for _, tt := range tests {
		if got := percentile(tt.sorted, tt.q); got != tt.want {
			t.Errorf("%s: percentile(%v, %v) = %d; want %d", tt.name, tt.sorted, tt.q, got, tt.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	// 1 ms ... 100 ms, shuffled: summarize sorts.
	ns := make([]int64, 100)
	for i := range ns {
		ns[i] = int64((100-i)*1000) * int64(time.Microsecond)
	}
	got := summarize(ns)
	want := Latency{Count: 100, Mean: 50.5, P50: 50, P90: 90, P99: 99, P999: 100, Max: 100}
	if got != want {
		t.Errorf("summarize(1..100 ms) = %+v; want %+v", got, want)
	}
	if got := summarize(nil); got != (Latency{}) {
		t.Errorf("summarize(nil) = %+v; want zero", got)
	}
}

func TestRecorderMerge(t *testing.T) {
	a, b := newRecorder(), newRecorder()
	a.add("create", time.Millisecond, "", "200")
	a.add("create", 2*time.Millisecond, class5xx, "500 internal_error")
	b.add("read", 3*time.Millisecond, "", "200")
	b.add("create", 4*time.Millisecond, classTimeout, classTimeout)
	a.merge(b)
	if a.ok != 2 {
		t.Errorf("ok = %d; want 2", a.ok)
	}
	if len(a.lat["create"]) != 3 || len(a.lat["read"]) != 1 {
		t.Errorf("lat = %v; want 3 creates and 1 read", a.lat)
	}
	if a.errors[class5xx] != 1 || a.errors[classTimeout] != 1 || len(a.errors) != 2 {
		t.Errorf("errors = %v; want one http_5xx and one timeout", a.errors)
	}
	if a.codes["200"] != 2 || a.codes["500 internal_error"] != 1 {
		t.Errorf("codes = %v", a.codes)
	}
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name string
		line string
		want procStat
	}{
		{"plain", "123 (payloom) S 1 123 123 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 9 0 100 0",
			procStat{ppid: 1, user: 257, sys: 53}},
		{"name with spaces and parens", "77 (a (b) c) R 42 77 77 0 -1 0 0 0 0 0 10 20 30 40 20 0 1 0 5 0",
			procStat{ppid: 42, user: 40, sys: 60}},
	}
	for _, tt := range tests {
		got, err := parseStat([]byte(tt.line))
		if err != nil || got != tt.want {
			t.Errorf("%s: parseStat(%q) = %+v, %v; want %+v", tt.name, tt.line, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "1 (x) S", "1 x S 1 2 3"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) = nil error; want an error", bad)
		}
	}
}

func TestParseStatusKB(t *testing.T) {
	status := "Name:\tpayloom\nVmPeak:\t  900000 kB\nVmHWM:\t   25300 kB\nVmRSS:\t   24100 kB\n"
	tests := []struct {
		field string
		want  int64
		ok    bool
	}{
		{"VmHWM", 25300, true},
		{"VmRSS", 24100, true},
		{"VmSwap", 0, false},
	}
	for _, tt := range tests {
		got, err := parseStatusKB(strings.NewReader(status), tt.field)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseStatusKB(%q) = %d, %v; want %d (ok=%v)", tt.field, got, err, tt.want, tt.ok)
		}
	}
}

func TestCents(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{{0, "0.00"}, {5, "0.05"}, {100, "1.00"}, {123456, "1234.56"}, {-101, "-1.01"}}
	for _, tt := range tests {
		if got := cents(tt.in); got != tt.want {
			t.Errorf("cents(%d) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
