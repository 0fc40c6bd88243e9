// Command report turns one bench/run's results directory into
// docs/benchmarks.md and a summary on stdout.
//
// The results directory holds one JSON file per measured run from
// bench/cmd/load (SCENARIO-TARGET.json), a SCENARIO-TARGET.skip file with the
// reason for each target that was not measured, and meta.env (key=value
// lines: date, commit, durability settings ...) written by bench/run. The
// machine (cores, memory, CPU model) is read from /proc here.
//
// The document is regenerated whole on every run, except its history
// table: the rows between the history markers are kept and one row is
// appended per run. report never invents a number: a missing measurement
// is shown as "n/a" with its reason.
package main

import (
	"bufio"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// Targets, in the order the document shows them.
const (
	labelSQLite     = "payloom-sqlite"
	labelPostgres   = "payloom-postgres"
	labelStripeMock = "stripe-mock"
	labelBare       = "bare"
)

var targetOrder = []string{labelSQLite, labelPostgres, labelStripeMock, labelBare}

var displayName = map[string]string{
	labelSQLite:     "Payloom (SQLite)",
	labelPostgres:   "Payloom (PostgreSQL)",
	labelStripeMock: "stripe-mock",
	labelBare:       "bare net/http",
}

var scenarioOrder = []string{"create", "mixed"}

// Goals of issue 8 (goals for the benchmark, never test assertions).
const (
	goalSQLiteVsStripe = 2.0
	goalSQLiteP99MS    = 10.0
	goalPGVsStripe     = 1.0
	goalVsBare         = 0.35
	goalRSSMB          = 150.0
)

const (
	historyBegin = "<!-- history:begin -->"
	historyEnd   = "<!-- history:end -->"
)

//go:embed prose.md
var prose string

type latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

type verify struct {
	Pass             bool             `json:"pass"`
	Summary          string           `json:"summary"`
	ExpectedPayments int64            `json:"expected_payments"`
	ExpectedCaptured int64            `json:"expected_captured"`
	ExpectedRefunded int64            `json:"expected_refunded"`
	ListedPayments   int64            `json:"listed_payments"`
	ListedCaptured   int64            `json:"listed_captured"`
	ListedRefunded   int64            `json:"listed_refunded"`
	RefundObjects    int64            `json:"listed_refund_objects_total"`
	Resolved         int64            `json:"resolved_by_retry"`
	Unresolved       int64            `json:"unresolved"`
	Rejected         map[string]int64 `json:"rejected"`
	Samples          []string         `json:"samples"`
}

// result is the part of bench/cmd/load's output the report uses.
type result struct {
	Label       string             `json:"label"`
	Target      string             `json:"target"`
	Scenario    string             `json:"scenario"`
	Concurrency int                `json:"concurrency"`
	DurationS   float64            `json:"duration_s"`
	Requests    int64              `json:"requests"`
	OK          int64              `json:"ok"`
	RPS         float64            `json:"rps"`
	Ops         int64              `json:"ops"`
	OpsPerS     float64            `json:"ops_per_s"`
	Latency     latency            `json:"latency"`
	ByOp        map[string]latency `json:"by_op"`
	Errors      map[string]int64   `json:"errors"`
	ErrorsTotal int64              `json:"errors_total"`
	Codes       map[string]int64   `json:"codes"`
	Connections int64              `json:"connections"`
	PeakRSSKB   int64              `json:"peak_rss_kb"`
	ServerCPUS  float64            `json:"server_cpu_s"`
	ServerSysS  float64            `json:"server_sys_s"`
	AuxCPUS     float64            `json:"aux_cpu_s"`
	LoadCPUS    float64            `json:"load_cpu_s"`
	CPUPerReqUS float64            `json:"server_cpu_us_per_req"`
	WriteCalls  float64            `json:"server_write_calls_per_req"`
	WriteKB     float64            `json:"server_write_kb_per_req"`
	Verify      *verify            `json:"verify"`
}

// run is everything one bench/run produced.
type run struct {
	meta    map[string]string
	results map[string]*result // "scenario/label"
	skipped map[string]string  // "scenario/label" -> reason
	machine machine
	profile string // top of the CPU profile, if one was taken
}

func (r *run) get(scenario, label string) *result { return r.results[scenario+"/"+label] }

// has says whether any target of scenario was measured or skipped.
func (r *run) has(scenario string) bool {
	for _, l := range targetOrder {
		_, skipped := r.skipped[scenario+"/"+l]
		if r.get(scenario, l) != nil || skipped {
			return true
		}
	}
	return false
}

type machine struct {
	CPUs     int
	CPUModel string
	MemBytes int64
	Kernel   string
}

func main() {
	dir := flag.String("results", "", "results directory of bench/run")
	doc := flag.String("doc", "docs/benchmarks.md", "the document to regenerate")
	write := flag.Bool("write", false, "write the document (otherwise only print the summary)")
	flag.Parse()
	if err := mainErr(*dir, *doc, *write, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func mainErr(dir, doc string, write bool, stdout io.Writer) error {
	if dir == "" {
		return errors.New("-results is required")
	}
	r, err := load(dir)
	if err != nil {
		return err
	}
	r.machine = readMachine()
	fmt.Fprint(stdout, summary(r))
	if !write {
		return nil
	}
	old, err := os.ReadFile(doc)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	history := append(historyRows(string(old)), historyRow(r))
	out := render(r, history)
	if err := os.MkdirAll(filepath.Dir(doc), 0o755); err != nil {
		return err
	}
	tmp := doc + ".tmp"
	if err := os.WriteFile(tmp, []byte(out), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, doc); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", doc)
	return nil
}

// load reads a results directory.
func load(dir string) (*run, error) {
	r := &run{results: map[string]*result{}, skipped: map[string]string{}}
	meta, err := readEnv(filepath.Join(dir, "meta.env"))
	if err != nil {
		return nil, err
	}
	r.meta = meta
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		name := e.Name()
		base, ext := strings.TrimSuffix(name, filepath.Ext(name)), filepath.Ext(name)
		scenario, label, ok := strings.Cut(base, "-")
		if !ok || !slices.Contains(scenarioOrder, scenario) || !slices.Contains(targetOrder, label) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		switch ext {
		case ".json":
			var res result
			if err := json.Unmarshal(b, &res); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			r.results[scenario+"/"+label] = &res
		case ".skip":
			r.skipped[scenario+"/"+label] = strings.TrimSpace(string(b))
		}
	}
	if p := meta["profile"]; p != "" {
		if b, err := os.ReadFile(filepath.Join(dir, p)); err == nil {
			r.profile = strings.TrimRight(string(b), "\n")
		}
	}
	return r, nil
}

// readEnv reads key=value lines; blank lines and # comments are skipped.
func readEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s: malformed line %q", path, line)
		}
		m[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return m, sc.Err()
}

func readMachine() machine {
	m := machine{CPUs: runtime.NumCPU()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				m.MemBytes = kb << 10
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

func (m machine) String() string {
	s := fmt.Sprintf("%d CPUs", m.CPUs)
	if m.CPUModel != "" {
		s += " (" + m.CPUModel + ")"
	}
	if m.MemBytes > 0 {
		s += fmt.Sprintf(", %.1f GiB RAM", float64(m.MemBytes)/(1<<30))
	}
	if m.Kernel != "" {
		s += ", Linux " + m.Kernel
	}
	return s
}

// ratio returns a/b of the create scenario's requests/s, or false.
func (r *run) ratio(a, b string) (float64, bool) {
	ra, rb := r.get("create", a), r.get("create", b)
	if ra == nil || rb == nil || rb.RPS == 0 {
		return 0, false
	}
	return ra.RPS / rb.RPS, true
}

// peakRSSMB is the largest peak RSS of Payloom over every run.
func (r *run) peakRSSMB() (float64, bool) {
	var peak int64
	for _, res := range r.results {
		if strings.HasPrefix(res.Label, "payloom") && res.PeakRSSKB > peak {
			peak = res.PeakRSSKB
		}
	}
	return float64(peak) / 1024, peak > 0
}

func f2(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func fms(v float64) string {
	if v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	if v >= 10 {
		return f1(v)
	}
	return f2(v)
}

func mb(kb int64) string {
	if kb == 0 {
		return "n/a"
	}
	return f1(float64(kb) / 1024)
}

func cents(v int64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func errorsCell(res *result) string {
	if res.ErrorsTotal == 0 {
		return "0"
	}
	var parts []string
	for _, k := range sortedKeys(res.Errors) {
		parts = append(parts, fmt.Sprintf("%s %d", k, res.Errors[k]))
	}
	return fmt.Sprintf("%d (%s)", res.ErrorsTotal, strings.Join(parts, ", "))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// goals evaluates the targets of issue 8.
type goal struct {
	name, measured, target string
	met                    string
}

func (r *run) goals() []goal {
	var gs []goal
	add := func(name, target string, v float64, ok bool, met func(float64) bool, format func(float64) string, why string) {
		g := goal{name: name, target: target, measured: "n/a", met: "n/a"}
		if ok {
			g.measured, g.met = format(v), yesNo(met(v))
		} else if why != "" {
			g.measured = "n/a (" + why + ")"
		}
		gs = append(gs, g)
	}
	x := func(v float64) string { return f2(v) + "×" }
	v, ok := r.ratio(labelSQLite, labelStripeMock)
	add("Payloom (SQLite) / stripe-mock, requests/s", "≥ "+f1(goalSQLiteVsStripe)+"×", v, ok,
		func(v float64) bool { return v >= goalSQLiteVsStripe }, x, r.why("create", labelSQLite, labelStripeMock))
	if s := r.get("create", labelSQLite); s != nil {
		add("Payloom (SQLite) p99", "≤ "+f1(goalSQLiteP99MS)+" ms", s.Latency.P99, true,
			func(v float64) bool { return v <= goalSQLiteP99MS }, func(v float64) string { return fms(v) + " ms" }, "")
	} else {
		add("Payloom (SQLite) p99", "≤ "+f1(goalSQLiteP99MS)+" ms", 0, false, nil, nil, r.why("create", labelSQLite))
	}
	v, ok = r.ratio(labelPostgres, labelStripeMock)
	add("Payloom (PostgreSQL) / stripe-mock, requests/s", "≥ "+f1(goalPGVsStripe)+"×", v, ok,
		func(v float64) bool { return v >= goalPGVsStripe }, x, r.why("create", labelPostgres, labelStripeMock))
	v, ok = r.ratio(labelSQLite, labelBare)
	add("Payloom (SQLite) / bare handler, requests/s", "≥ "+f2(goalVsBare)+"×", v, ok,
		func(v float64) bool { return v >= goalVsBare }, x, r.why("create", labelSQLite, labelBare))
	v, ok = r.peakRSSMB()
	add("Peak RSS of Payloom (any run)", "≤ "+strconv.Itoa(goalRSSMB)+" MB", v, ok,
		func(v float64) bool { return v <= goalRSSMB }, func(v float64) string { return f1(v) + " MB" }, "")
	return gs
}

// why explains a missing measurement.
func (r *run) why(scenario string, labels ...string) string {
	for _, l := range labels {
		if r.get(scenario, l) != nil {
			continue
		}
		if s, ok := r.skipped[scenario+"/"+l]; ok {
			return displayName[l] + " skipped: " + s
		}
		return displayName[l] + " not run"
	}
	return ""
}

// summary is the terminal output.
func summary(r *run) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nPayloom benchmark %s  commit %s  %s\n", r.meta["date"], r.meta["commit"], r.machine)
	fmt.Fprintf(&b, "concurrency %s, %s measured after %s warm-up; load average at start %s\n",
		r.meta["concurrency"], r.meta["duration"], r.meta["warmup"], r.meta["loadavg_start"])
	for _, sc := range scenarioOrder {
		if !r.has(sc) {
			continue
		}
		fmt.Fprintf(&b, "\nscenario %s\n", sc)
		fmt.Fprintf(&b, "  %-22s %10s %9s %9s %9s %9s %8s %9s\n", "target", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "RSS MB")
		for _, l := range targetOrder {
			res := r.get(sc, l)
			if res == nil {
				if s, ok := r.skipped[sc+"/"+l]; ok {
					fmt.Fprintf(&b, "  %-22s skipped: %s\n", displayName[l], s)
				}
				continue
			}
			fmt.Fprintf(&b, "  %-22s %10.1f %9s %9s %9s %9s %8d %9s\n", displayName[l], res.RPS,
				fms(res.Latency.P50), fms(res.Latency.P90), fms(res.Latency.P99), fms(res.Latency.Max),
				res.ErrorsTotal, mb(res.PeakRSSKB))
			if res.Verify != nil {
				fmt.Fprintf(&b, "  %-22s %.1f operations/s; totals %s\n", "", res.OpsPerS, verdict(res.Verify))
				if res.Verify.Summary != "" {
					fmt.Fprintf(&b, "  %-22s %s\n", "", res.Verify.Summary)
				}
			}
		}
	}
	fmt.Fprintf(&b, "\ngoals of issue 8\n")
	for _, g := range r.goals() {
		fmt.Fprintf(&b, "  %-48s %-14s target %-9s met: %s\n", g.name, g.measured, g.target, strings.Trim(g.met, "*"))
	}
	return b.String()
}

// historyRows returns the data rows of the history table in doc.
func historyRows(doc string) []string {
	i := strings.Index(doc, historyBegin)
	j := strings.Index(doc, historyEnd)
	if i < 0 || j < i {
		return nil
	}
	var rows []string
	header := true
	for line := range strings.SplitSeq(doc[i+len(historyBegin):j], "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			continue
		}
		if header { // the first table row is the header
			header = false
			continue
		}
		if strings.Trim(line, "|-: ") == "" { // the separator row
			continue
		}
		rows = append(rows, line)
	}
	return rows
}

var historyHeader = []string{"Date", "Commit", "Run", "SQLite req/s", "SQLite p99 ms", "PostgreSQL req/s",
	"stripe-mock req/s", "bare req/s", "SQLite/stripe-mock", "PG/stripe-mock", "SQLite/bare",
	"Payloom peak RSS MB", "mixed (SQLite) ops/s", "mixed totals", "load avg"}

func historyRow(r *run) string {
	rps := func(l string) string {
		if res := r.get("create", l); res != nil {
			return f1(res.RPS)
		}
		return "n/a"
	}
	ratio := func(a, b string) string {
		if v, ok := r.ratio(a, b); ok {
			return f2(v) + "×"
		}
		return "n/a"
	}
	p99 := "n/a"
	if s := r.get("create", labelSQLite); s != nil {
		p99 = fms(s.Latency.P99)
	}
	rss := "n/a"
	if v, ok := r.peakRSSMB(); ok {
		rss = f1(v)
	}
	mixedOps, totals := "n/a", "n/a"
	var verdicts []string
	for _, l := range []string{labelSQLite, labelPostgres} {
		res := r.get("mixed", l)
		if res == nil || res.Verify == nil {
			continue
		}
		verdicts = append(verdicts, map[string]string{labelSQLite: "SQLite ", labelPostgres: "PG "}[l]+verdict(res.Verify))
		if l == labelSQLite {
			mixedOps = f1(res.OpsPerS)
		}
	}
	if len(verdicts) > 0 {
		totals = strings.Join(verdicts, ", ")
	}
	run := "c" + r.meta["concurrency"] + " " + r.meta["duration"]
	if r.meta["quick"] == "1" {
		run += " quick"
	}
	cells := []string{r.meta["date"], r.meta["commit"], run, rps(labelSQLite), p99, rps(labelPostgres),
		rps(labelStripeMock), rps(labelBare), ratio(labelSQLite, labelStripeMock), ratio(labelPostgres, labelStripeMock),
		ratio(labelSQLite, labelBare), rss, mixedOps, totals, r.meta["loadavg_start"]}
	for i, c := range cells {
		cells[i] = strings.ReplaceAll(c, "|", "/")
	}
	return "| " + strings.Join(cells, " | ") + " |"
}

func tableRow(cells ...string) string { return "| " + strings.Join(cells, " | ") + " |\n" }

func tableSep(n int) string { return "|" + strings.Repeat("---|", n) + "\n" }

// costTable shows what one successful request cost, measured over the
// measured window: the server's CPU (and its kernel share), its write
// system calls and bytes written, PostgreSQL's CPU, and the load tool's.
func costTable(r *run, scenario string) string {
	var b strings.Builder
	b.WriteString("Cost per successful request in the measured window:\n\n")
	b.WriteString(tableRow("Target", "server CPU µs", "of which kernel", "write syscalls", "KB written",
		"PostgreSQL CPU µs", "load-tool CPU µs", "connections"))
	b.WriteString(tableSep(8))
	per := func(total float64, res *result) string {
		if total <= 0 || res.OK == 0 {
			return "n/a"
		}
		return strconv.FormatFloat(total/float64(res.OK)*1e6, 'f', 0, 64)
	}
	for _, l := range targetOrder {
		res := r.get(scenario, l)
		if res == nil {
			continue
		}
		cpu, kernel := "n/a", "n/a"
		if res.CPUPerReqUS > 0 {
			cpu = strconv.FormatFloat(res.CPUPerReqUS, 'f', 0, 64)
			kernel = fmt.Sprintf("%.0f%%", 100*res.ServerSysS/res.ServerCPUS)
		}
		writes, kb := "n/a", "n/a"
		if res.WriteCalls > 0 || res.WriteKB > 0 {
			writes, kb = f1(res.WriteCalls), f1(res.WriteKB)
		}
		pg := "–"
		if l == labelPostgres {
			pg = per(res.AuxCPUS, res)
		}
		b.WriteString(tableRow(displayName[l], cpu, kernel, writes, kb, pg, per(res.LoadCPUS, res),
			strconv.FormatInt(res.Connections, 10)))
	}
	b.WriteString("\n")
	return b.String()
}

// render produces the whole document.
func render(r *run, history []string) string {
	var b strings.Builder
	m := r.meta
	b.WriteString("# Benchmarks\n\n")
	b.WriteString("<!-- Generated by bench/run (bench/cmd/report). Do not edit by hand: run `bench/run` again;\n" +
		"     the history table at the end is kept and grows by one row per run. -->\n\n")
	b.WriteString("Payloom's throughput and latency for `POST /v1/payments`, side by side with stripe-mock\n" +
		"and a bare Go handler, measured by `bench/run` (see [How to run](#how-to-run)). Every Payloom\n" +
		"response counted here was durable when it was sent: see [Durability](#durability).\n\n")

	b.WriteString("## Latest run\n\n")
	b.WriteString(tableRow("", ""))
	b.WriteString(tableSep(2))
	commit := m["commit"]
	if m["commit_dirty"] == "yes" {
		commit += " (with uncommitted changes)"
	}
	rows := [][2]string{
		{"Date", m["date"]},
		{"Commit", commit},
		{"Machine", r.machine.String()},
		{"Load average (1/5/15 min) at start / end", m["loadavg_start"] + " / " + m["loadavg_end"]},
		{"Go", m["go_version"]},
		{"Load", fmt.Sprintf("bench/cmd/load, %s virtual users (keep-alive, one connection each), %s measured after %s warm-up, %s per-request timeout",
			m["concurrency"], m["duration"], m["warmup"], m["timeout"])},
		{"stripe-mock", m["stripe_mock_version"]},
		{"Disk: 8 KiB append + fdatasync", fmt.Sprintf("p50 %s µs, mean %s µs, p99 %s µs (bench/cmd/probe fsync on the SQLite files' filesystem: %s)",
			m["fsync_p50_us"], m["fsync_mean_us"], m["fsync_p99_us"], orNA(m["fsync_fs"]))},
		{"Durable-log floor", logFloor(m)},
		{"PostgreSQL floor", pgFloor(m)},
		{"Payloom log level", m["payloom_log_level"]},
	}
	if m["quick"] == "1" {
		rows = append(rows, [2]string{"Mode", "**--quick** (short run: indicative only)"})
	}
	for _, row := range rows {
		b.WriteString(tableRow(row[0], row[1]))
	}
	b.WriteString("\n")

	b.WriteString("## Goals of issue 8\n\n")
	b.WriteString("Goals for the benchmark, never assertions in tests. Ratios compare requests/s of the create\n" +
		"scenario at the same concurrency, measured in the same run.\n\n")
	b.WriteString(tableRow("Goal", "Measured", "Target", "Met"))
	b.WriteString(tableSep(4))
	for _, g := range r.goals() {
		b.WriteString(tableRow(g.name, g.measured, g.target, g.met))
	}
	b.WriteString("\n")

	b.WriteString("## Scenario create\n\n")
	b.WriteString("Each request creates one payment: `POST /v1/payments` with a card token created once before\n" +
		"the run, automatic capture, amount 10.00 USD and a unique `Idempotency-Key`; the sandbox processor\n" +
		"answers at once. stripe-mock gets `POST /v1/payment_intents` (form-encoded `amount`, `currency`,\n" +
		"`payment_method_types[]=card`), the bare handler the same JSON as Payloom. A response counts as\n" +
		"successful only if it is a 2xx with the expected body (a captured payment, a PaymentIntent).\n\n")
	b.WriteString(tableRow("Target", "req/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "errors", "peak RSS MB"))
	b.WriteString(tableSep(9))
	for _, l := range targetOrder {
		res := r.get("create", l)
		if res == nil {
			if s, ok := r.skipped["create/"+l]; ok {
				b.WriteString(tableRow(displayName[l], "skipped: "+s, "", "", "", "", "", "", ""))
			}
			continue
		}
		b.WriteString(tableRow(displayName[l], f1(res.RPS), fms(res.Latency.P50), fms(res.Latency.P90),
			fms(res.Latency.P99), fms(res.Latency.P999), fms(res.Latency.Max), errorsCell(res), mb(res.PeakRSSKB)))
	}
	b.WriteString("\n")
	b.WriteString(costTable(r, "create"))
	if v, ok := r.ratio(labelSQLite, labelStripeMock); ok {
		fmt.Fprintf(&b, "Payloom (SQLite) / stripe-mock = **%s×**", f2(v))
		if v2, ok := r.ratio(labelSQLite, labelBare); ok {
			fmt.Fprintf(&b, "; Payloom (SQLite) / bare = **%s×**", f2(v2))
		}
		if v3, ok := r.ratio(labelPostgres, labelStripeMock); ok {
			fmt.Fprintf(&b, "; Payloom (PostgreSQL) / stripe-mock = **%s×**", f2(v3))
		}
		b.WriteString(".\n\n")
	}

	b.WriteString("## Scenario mixed\n\n")
	b.WriteString("Each virtual user picks, per operation: 60% create (automatic capture), 20% create with manual\n" +
		"capture then capture it (in full or in part), 10% refund (in full or in part) of one of its captured\n" +
		"payments, 10% read one of its payments (which must show what the user was last told). Amounts are\n" +
		"random, 1.00 to 1000.00 USD. A write whose outcome is unknown (timeout, 5xx, key in progress) is\n" +
		"retried with the same `Idempotency-Key`. At the end every payment is listed with `GET /v1/payments`\n" +
		"(and every refund with `GET /v1/refunds`): the sums of `amount_captured` and `amount_refunded` must\n" +
		"equal, to the cent, what the clients were told, payment by payment.\n\n")
	anyMixed := false
	for _, l := range []string{labelSQLite, labelPostgres} {
		res := r.get("mixed", l)
		if res == nil {
			if s, ok := r.skipped["mixed/"+l]; ok {
				fmt.Fprintf(&b, "**%s**: skipped: %s\n\n", displayName[l], s)
			}
			continue
		}
		anyMixed = true
		fmt.Fprintf(&b, "**%s**: %s operations/s (%s requests/s), errors %s, peak RSS %s MB; totals **%s**\n\n",
			displayName[l], f1(res.OpsPerS), f1(res.RPS), errorsCell(res), mb(res.PeakRSSKB), verdict(res.Verify))
		b.WriteString(tableRow("Request", "count", "p50 ms", "p90 ms", "p99 ms", "max ms"))
		b.WriteString(tableSep(6))
		for _, op := range []string{"create", "create_manual", "capture", "refund", "read"} {
			lt, ok := res.ByOp[op]
			if !ok {
				continue
			}
			b.WriteString(tableRow("`"+op+"`", strconv.FormatInt(lt.Count, 10), fms(lt.P50), fms(lt.P90), fms(lt.P99), fms(lt.Max)))
		}
		b.WriteString(tableRow("all", strconv.FormatInt(res.Latency.Count, 10), fms(res.Latency.P50),
			fms(res.Latency.P90), fms(res.Latency.P99), fms(res.Latency.Max)))
		b.WriteString("\n")
		if v := res.Verify; v != nil {
			b.WriteString(tableRow("Totals", "told to clients", "listed by the server"))
			b.WriteString(tableSep(3))
			b.WriteString(tableRow("payments", strconv.FormatInt(v.ExpectedPayments, 10), strconv.FormatInt(v.ListedPayments, 10)))
			b.WriteString(tableRow("amount_captured (USD)", cents(v.ExpectedCaptured), cents(v.ListedCaptured)))
			b.WriteString(tableRow("amount_refunded (USD)", cents(v.ExpectedRefunded),
				cents(v.ListedRefunded)+" (refund objects: "+cents(v.RefundObjects)+")"))
			b.WriteString("\n")
			if v.Resolved+v.Unresolved > 0 {
				fmt.Fprintf(&b, "Writes with an unknown outcome resolved by retrying their key: %d; unresolved: %d.\n\n",
					v.Resolved, v.Unresolved)
			}
			for _, s := range v.Samples {
				fmt.Fprintf(&b, "- %s\n", s)
			}
			if len(v.Samples) > 0 {
				b.WriteString("\n")
			}
		}
	}
	if anyMixed {
		b.WriteString(costTable(r, "mixed"))
	} else if len(r.skipped) == 0 {
		b.WriteString("Not run.\n\n")
	}

	b.WriteString("## Durability\n\n")
	b.WriteString(tableRow("Store", "Setting", "Value", "Source"))
	b.WriteString(tableSep(4))
	b.WriteString(tableRow("SQLite", "journal_mode", orNA(m["sqlite_journal_mode"]), "read from the benchmarked file after the run (bench/cmd/probe sqlite)"))
	b.WriteString(tableRow("SQLite", "synchronous (write connection)", orNA(m["sqlite_synchronous"]),
		"per-connection, not stored in the file: "+orNA(m["sqlite_synchronous_source"])))
	for _, s := range []string{"fsync", "synchronous_commit", "full_page_writes", "wal_sync_method", "server_version"} {
		if v := m["pg_"+s]; v != "" {
			b.WriteString(tableRow("PostgreSQL", s, strings.ReplaceAll(v, "_", " "), "`current_setting()` of the throwaway cluster (bench/cmd/pgcluster)"))
		}
	}
	b.WriteString("\n")
	b.WriteString("With `journal_mode=wal` and `synchronous=FULL`, SQLite fsyncs the WAL at every commit, so a\n" +
		"committed transaction survives a power cut; Payloom answers only after its last commit of the\n" +
		"request. Group commit changes how many requests one commit carries, not when a request is\n" +
		"answered: each caller is answered after the COMMIT (and fsync) that holds its writes. PostgreSQL with `fsync=on` and `synchronous_commit=on` flushes the WAL at every commit.\n\n")

	if r.profile != "" {
		b.WriteString("## CPU profile of the server (latest run)\n\n")
		b.WriteString("`perf record -g -F 499` attached to the Payloom (SQLite) server during a repeat of the create\n" +
			"scenario (`bench/run --profile`; that run's numbers are not recorded). Percentages are of all\n" +
			"samples of the server process, kernel included:\n\n```\n")
		b.WriteString(r.profile)
		b.WriteString("\n```\n\n")
	}

	b.WriteString(prose)
	b.WriteString("\n## History\n\n")
	b.WriteString("One row per `bench/run` that wrote this file (oldest first). Compare rows only with a similar\n" +
		"load average: the machine is shared.\n\n")
	b.WriteString(historyBegin + "\n")
	b.WriteString(tableRow(historyHeader...))
	b.WriteString(tableSep(len(historyHeader)))
	for _, h := range history {
		b.WriteString(h + "\n")
	}
	b.WriteString(historyEnd + "\n")
	return b.String()
}

func verdict(v *verify) string {
	if v != nil && v.Pass {
		return "PASS"
	}
	return "FAIL"
}

func orNA(s string) string {
	if s == "" {
		return "n/a"
	}
	return s
}

// logFloor describes bench/cmd/probe's log probe: what a bare durable log
// takes on this machine, the bound under any store's rate.
func logFloor(m map[string]string) string {
	if m["log_payments_per_s"] == "" {
		return "not measured"
	}
	return fmt.Sprintf("%s payments/s at %s µs of CPU each (bench/cmd/probe log: %s users, a payment's three "+
		"durable writes of 1.6, 0.4 and 4.6 KB appended to one file, one write + fdatasync per group of %s writes; "+
		"no index, no SQL, no HTTP: about the most any store that makes each write durable before the next could take here)",
		m["log_payments_per_s"], m["log_cpu_us_per_payment"], m["log_users"], m["log_writes_per_group"])
}

// pgFloor describes bench/cmd/probe's pg probe: the same three durable
// writes per payment as single-INSERT commits on the run's PostgreSQL.
func pgFloor(m map[string]string) string {
	if m["pg_log_payments_per_s"] == "" {
		return "not measured"
	}
	return fmt.Sprintf("%s payments/s (bench/cmd/probe pg: %s users, a payment's three durable writes as three "+
		"single-INSERT commits into a table with only its key, on the run's cluster)",
		m["pg_log_payments_per_s"], m["pg_log_users"])
}
