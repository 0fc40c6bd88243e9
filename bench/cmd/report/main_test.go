package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHistoryRows(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"no document", "", nil},
		{"no markers", "# Benchmarks\n| a | b |\n|---|---|\n| 1 | 2 |\n", nil},
		{"header and separator dropped",
			"x\n" + historyBegin + "\n| Date | Commit |\n|---|---|\n| d1 | c1 |\n| d2 | c2 |\n" + historyEnd + "\n",
			[]string{"| d1 | c1 |", "| d2 | c2 |"}},
		{"only a header", historyBegin + "\n| Date | Commit |\n|:---|---:|\n" + historyEnd, nil},
		{"text around rows ignored",
			historyBegin + "\nnote\n| Date |\n|---|\n\n| d1 |\n" + historyEnd + "\n| after |\n",
			[]string{"| d1 |"}},
	}
	for _, tt := range tests {
		got := historyRows(tt.doc)
		if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("%s: historyRows = %q; want %q", tt.name, got, tt.want)
		}
	}
}

// writeResults writes a results directory like bench/run's.
func writeResults(t *testing.T, results []result, skips map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	meta := "date=2026-01-02T03:04Z\ncommit=abc1234\ncommit_dirty=no\nconcurrency=32\nduration=20s\nwarmup=2s\n" +
		"timeout=10s\nquick=0\nloadavg_start=1.00 1.00 1.00\nloadavg_end=2.00 1.00 1.00\n" +
		"sqlite_journal_mode=wal\nsqlite_synchronous=FULL (2)\npg_fsync=on\npg_synchronous_commit=on\n" +
		"log_users=32\nlog_payments_per_s=15066\nlog_cpu_us_per_payment=44.5\nlog_writes_per_group=15.9\n" +
		"pg_log_users=32\npg_log_payments_per_s=2500\n"
	if err := os.WriteFile(filepath.Join(dir, "meta.env"), []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		b, _ := json.Marshal(r)
		if err := os.WriteFile(filepath.Join(dir, r.Scenario+"-"+r.Label+".json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, reason := range skips {
		if err := os.WriteFile(filepath.Join(dir, name+".skip"), []byte(reason+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func sampleResults() []result {
	return []result{
		{Label: labelSQLite, Scenario: "create", RPS: 1000, OK: 20000, Latency: latency{P50: 3, P90: 6, P99: 8, Max: 20},
			PeakRSSKB: 40 << 10, ServerCPUS: 10, ServerSysS: 4, CPUPerReqUS: 500, Connections: 32},
		{Label: labelStripeMock, Scenario: "create", RPS: 400, Latency: latency{P99: 30}, PeakRSSKB: 80 << 10},
		{Label: labelBare, Scenario: "create", RPS: 4000, Latency: latency{P99: 2}, PeakRSSKB: 10 << 10},
		{Label: labelSQLite, Scenario: "mixed", RPS: 900, OpsPerS: 800, PeakRSSKB: 200 << 10,
			ByOp: map[string]latency{"create": {Count: 10, P50: 1}},
			Verify: &verify{Pass: true, ExpectedPayments: 10, ListedPayments: 10, ExpectedCaptured: 12345,
				ListedCaptured: 12345, ExpectedRefunded: 100, ListedRefunded: 100, RefundObjects: 100}},
	}
}

func TestGoals(t *testing.T) {
	r := &run{results: map[string]*result{}, skipped: map[string]string{"create/" + labelPostgres: "not wired"}}
	for _, res := range sampleResults() {
		r.results[res.Scenario+"/"+res.Label] = &res
	}
	want := map[string][2]string{ // name -> measured, met
		"Payloom (SQLite) / stripe-mock, requests/s":     {"2.50×", "yes"},
		"Payloom (SQLite) p99":                           {"8.00 ms", "yes"},
		"Payloom (PostgreSQL) / stripe-mock, requests/s": {"n/a (Payloom (PostgreSQL) skipped: not wired)", "n/a"},
		"Payloom (SQLite) / bare handler, requests/s":    {"0.25×", "**no**"},
		"Peak RSS of Payloom (any run)":                  {"200.0 MB", "**no**"},
	}
	gs := r.goals()
	if len(gs) != len(want) {
		t.Fatalf("goals() returned %d goals; want %d", len(gs), len(want))
	}
	for _, g := range gs {
		w, ok := want[g.name]
		if !ok {
			t.Errorf("unexpected goal %q", g.name)
			continue
		}
		if g.measured != w[0] || g.met != w[1] {
			t.Errorf("goal %q = %q, met %q; want %q, met %q", g.name, g.measured, g.met, w[0], w[1])
		}
	}
}

func TestMainWritesDocumentAndKeepsHistory(t *testing.T) {
	dir := writeResults(t, sampleResults(), map[string]string{
		"create-" + labelPostgres: "payloom serve has no --database-url yet",
		"mixed-" + labelPostgres:  "payloom serve has no --database-url yet",
	})
	doc := filepath.Join(t.TempDir(), "docs", "benchmarks.md")
	for i := 1; i <= 3; i++ {
		if err := mainErr(dir, doc, true, io.Discard); err != nil {
			t.Fatalf("run %d: mainErr: %v", i, err)
		}
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		rows := historyRows(string(b))
		if len(rows) != i {
			t.Fatalf("after %d runs the history has %d rows; want %d:\n%s", i, len(rows), i, b)
		}
		if !strings.Contains(rows[i-1], "| abc1234 |") || !strings.Contains(rows[i-1], "2.50×") {
			t.Errorf("history row %q; want the commit and the SQLite/stripe-mock ratio", rows[i-1])
		}
	}
	b, _ := os.ReadFile(doc)
	for _, want := range []string{
		"## How to read these numbers",                     // the prose is included
		"skipped: payloom serve has no --database-url yet", // a skipped target says why
		"| amount_captured (USD) | 123.45 | 123.45 |",      // the mixed totals, in currency units
		"| SQLite | journal_mode | wal |",
		"totals **PASS**",
		"| Payloom (SQLite) | 500 | 40% |", // the cost table
		"| Durable-log floor | 15066 payments/s at 44.5 µs of CPU each (bench/cmd/probe log: 32 users,",
		"| PostgreSQL floor | 2500 payments/s (bench/cmd/probe pg: 32 users,",
		"| Payloom (PostgreSQL) | skipped: payloom serve has no --database-url yet |",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("document lacks %q", want)
		}
	}
}

func TestMainWithoutWriteLeavesDocument(t *testing.T) {
	dir := writeResults(t, sampleResults(), nil)
	doc := filepath.Join(t.TempDir(), "benchmarks.md")
	var out strings.Builder
	if err := mainErr(dir, doc, false, &out); err != nil {
		t.Fatalf("mainErr: %v", err)
	}
	if _, err := os.Stat(doc); !os.IsNotExist(err) {
		t.Errorf("without -write the document exists (%v); want it untouched", err)
	}
	if !strings.Contains(out.String(), "Payloom (SQLite)") || !strings.Contains(out.String(), "totals PASS") {
		t.Errorf("summary = %q; want the SQLite row and the verdict", out.String())
	}
}

func TestMainNeedsMeta(t *testing.T) {
	if err := mainErr(t.TempDir(), filepath.Join(t.TempDir(), "b.md"), true, io.Discard); err == nil {
		t.Errorf("mainErr(results without meta.env) = nil; want an error")
	}
}
