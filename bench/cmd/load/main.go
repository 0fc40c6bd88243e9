// Command load is the benchmark's load generator: a fixed number of virtual
// users, each on its own keep-alive connection, send requests back to back
// for a fixed time, and every request's duration is recorded, so the
// percentiles are exact rather than estimated.
//
// One tool drives every target of the benchmark (Payloom, stripe-mock and a
// bare net/http handler) with the same concurrency and the same client
// code, which is what keeps the comparison honest. wrk is not used because
// each Payloom request needs a unique Idempotency-Key and the mixed scenario
// needs per-user state (capture what you created, refund what you
// captured).
//
// Scenarios:
//
//	create  POST a payment (or a stripe-mock PaymentIntent) per request.
//	mixed   Payloom only: 60% creates, 20% manual create + capture, 10%
//	        refunds of captured payments, 10% reads; afterwards the totals
//	        the server lists are checked against what the clients were told.
//
// The result is one JSON document (see Result). The tool never prints an
// API key, and it only ever talks to the URL it is given; bench/run starts
// every server on 127.0.0.1.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Target names.
const (
	targetPayloom    = "payloom"
	targetStripeMock = "stripe-mock"
	targetBare       = "bare"
)

// Error classes.
const (
	classTransport  = "transport"
	classTimeout    = "timeout"
	class4xx        = "http_4xx"
	class5xx        = "http_5xx"
	classOther      = "http_other"
	classUnexpected = "unexpected_body"
)

// config is the command line.
type config struct {
	Target      string
	URL         string
	Key         string
	Scenario    string
	Label       string
	Concurrency int
	Duration    time.Duration
	Warmup      time.Duration
	Timeout     time.Duration
	ServerPID   int
	AuxPID      int
	Out         string
	Seed        uint64
}

// Result is the tool's output.
type Result struct {
	Label       string  `json:"label"`
	Target      string  `json:"target"`
	Scenario    string  `json:"scenario"`
	Concurrency int     `json:"concurrency"`
	DurationS   float64 `json:"duration_s"`
	WarmupS     float64 `json:"warmup_s"`
	// Requests counts measured requests (started inside the measured
	// window); OK those that succeeded.
	Requests int64   `json:"requests"`
	OK       int64   `json:"ok"`
	RPS      float64 `json:"rps"` // successful requests per second
	// Ops counts the mixed scenario's operations (a manual capture is two
	// requests and one operation).
	Ops         int64              `json:"ops,omitempty"`
	OpsPerS     float64            `json:"ops_per_s,omitempty"`
	Latency     Latency            `json:"latency"`
	ByOp        map[string]Latency `json:"by_op,omitempty"`
	Errors      map[string]int64   `json:"errors"`
	ErrorsTotal int64              `json:"errors_total"`
	Codes       map[string]int64   `json:"codes"`
	// Connections is how many TCP connections the client opened: about
	// the concurrency when keep-alive works.
	Connections int64 `json:"connections"`
	// Server process measurements (when -server-pid is given).
	PeakRSSKB  int64   `json:"peak_rss_kb,omitempty"`
	ServerCPUS float64 `json:"server_cpu_s,omitempty"`
	// ServerSysS is the part of ServerCPUS spent in the kernel (network,
	// writes, fsync).
	ServerSysS float64 `json:"server_sys_s,omitempty"`
	AuxCPUS    float64 `json:"aux_cpu_s,omitempty"`
	// LoadCPUS is the load tool's own CPU time in the measured window.
	LoadCPUS    float64 `json:"load_cpu_s"`
	CPUPerReqUS float64 `json:"server_cpu_us_per_req,omitempty"`
	// Write system calls and bytes written to storage by the server per
	// successful request (from /proc/PID/io; absent when unreadable).
	WriteCallsPerReq float64 `json:"server_write_calls_per_req,omitempty"`
	WriteKBPerReq    float64 `json:"server_write_kb_per_req,omitempty"`
	Verify           *Verify `json:"verify,omitempty"`
	StartedAt        string  `json:"started_at"`
	GoMaxProcs       int     `json:"gomaxprocs"`
	SetupToken       bool    `json:"setup_token,omitempty"`
}

func main() {
	var c config
	flag.StringVar(&c.Target, "target", targetPayloom, "payloom, stripe-mock or bare")
	flag.StringVar(&c.URL, "url", "", "base URL of the server, e.g. http://127.0.0.1:8080")
	flag.StringVar(&c.Key, "key", "", "API key sent as a Bearer token (Payloom: a test secret key; env LOAD_KEY)")
	flag.StringVar(&c.Scenario, "scenario", "create", "create or mixed")
	flag.StringVar(&c.Label, "label", "", "name of this run in the output (default: the target)")
	flag.IntVar(&c.Concurrency, "c", 32, "virtual users (each with its own keep-alive connection)")
	flag.DurationVar(&c.Duration, "d", 20*time.Second, "measured duration")
	flag.DurationVar(&c.Warmup, "warmup", 2*time.Second, "load before the measured window (not recorded)")
	flag.DurationVar(&c.Timeout, "timeout", 10*time.Second, "per-request timeout")
	flag.IntVar(&c.ServerPID, "server-pid", 0, "PID of the server: sample its peak RSS and CPU time")
	flag.IntVar(&c.AuxPID, "aux-pid", 0, "PID of a helper process tree (the PostgreSQL postmaster): sample its CPU time")
	flag.StringVar(&c.Out, "o", "", "write the JSON result to this file (default stdout)")
	flag.Uint64Var(&c.Seed, "seed", 1, "seed of the mixed scenario's choices")
	flag.Parse()
	if c.Key == "" {
		c.Key = os.Getenv("LOAD_KEY")
	}
	if c.Label == "" {
		c.Label = c.Target
	}
	res, err := run(context.Background(), c, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
	out, _ := json.MarshalIndent(res, "", "  ")
	out = append(out, '\n')
	if c.Out == "" {
		os.Stdout.Write(out)
	} else if err := os.WriteFile(c.Out, out, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
	if res.Verify != nil && !res.Verify.Pass {
		os.Exit(3)
	}
}

func (c config) validate() error {
	switch c.Target {
	case targetPayloom, targetStripeMock, targetBare:
	default:
		return fmt.Errorf("unknown -target %q", c.Target)
	}
	switch c.Scenario {
	case "create":
	case "mixed":
		if c.Target != targetPayloom {
			return fmt.Errorf("the mixed scenario needs -target payloom")
		}
	default:
		return fmt.Errorf("unknown -scenario %q", c.Scenario)
	}
	if c.URL == "" {
		return errors.New("-url is required")
	}
	if c.Target == targetPayloom && c.Key == "" {
		return errors.New("-key (or LOAD_KEY) is required for payloom")
	}
	if c.Concurrency < 1 || c.Duration <= 0 || c.Warmup < 0 || c.Timeout <= 0 {
		return errors.New("-c, -d and -timeout must be positive")
	}
	return nil
}

// client is the HTTP client every virtual user shares: one keep-alive
// connection per user, no compression, HTTP/1.1 (as wrk would).
type client struct {
	http  *http.Client
	dials atomic.Int64
	base  string
	key   string
	runID string
}

func newClient(c config) *client {
	cl := &client{base: c.URL, key: c.Key, runID: randomHex(6)}
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			cl.dials.Add(1)
			return d.DialContext(ctx, network, addr)
		},
		// Exactly one connection per user, as wrk's fixed connections:
		// without the cap, a request issued before the previous
		// response's connection is back in the idle pool dials a new one.
		MaxConnsPerHost:     c.Concurrency,
		MaxIdleConns:        c.Concurrency,
		MaxIdleConnsPerHost: c.Concurrency,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	cl.http = &http.Client{Transport: tr}
	return cl
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// window is the measured interval; requests started inside it are
// recorded.
type window struct{ start, end time.Time }

func (w window) in(t time.Time) bool { return !t.Before(w.start) && t.Before(w.end) }

// worker is one virtual user.
type worker struct {
	id     int
	cl     *client
	win    window
	rec    *recorder
	buf    bytes.Buffer
	keyN   int
	tmo    time.Duration
	target string
}

// newKey returns an Idempotency-Key unique to this run, user and request.
func (w *worker) newKey() string {
	w.keyN++
	return w.cl.runID + "-" + strconv.Itoa(w.id) + "-" + strconv.Itoa(w.keyN)
}

// response is one finished request. body is valid until the worker's next
// request.
type response struct {
	status int
	body   []byte
	err    error
	class  string // "" when the request succeeded
}

// do sends one request and records it under op when it started in the
// measured window. ok decides whether a 2xx answer is what was expected.
func (w *worker) do(ctx context.Context, op, method, path, contentType, idemKey string, body []byte,
	ok func(status int, body []byte) bool) response {
	ctx, cancel := context.WithTimeout(ctx, w.tmo)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, w.cl.base+path, rd)
	if err != nil {
		panic(err) // the tool built a bad URL: a bug, not a measurement
	}
	if w.cl.key != "" {
		req.Header.Set("Authorization", "Bearer "+w.cl.key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	start := time.Now()
	resp, err := w.cl.http.Do(req)
	var r response
	if err == nil {
		w.buf.Reset()
		_, err = w.buf.ReadFrom(resp.Body)
		resp.Body.Close()
		r.status = resp.StatusCode
	}
	d := time.Since(start)
	r.err = err
	code := strconv.Itoa(r.status)
	switch {
	case err != nil && (errors.Is(err, context.DeadlineExceeded) || isTimeout(err)):
		r.class, code = classTimeout, classTimeout
	case err != nil:
		r.class, code = classTransport, classTransport
	case r.status >= 200 && r.status < 300:
		r.body = w.buf.Bytes()
		if ok != nil && !ok(r.status, r.body) {
			r.class = classUnexpected
		}
	default:
		r.body = w.buf.Bytes()
		if ec := errorCode(r.body); ec != "" {
			code += " " + ec
		}
		switch {
		case r.status >= 500:
			r.class = class5xx
		case r.status >= 400:
			r.class = class4xx
		default:
			r.class = classOther
		}
	}
	if w.win.in(start) {
		w.rec.add(op, d, r.class, code)
	}
	return r
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// errorCode returns error.code of a Payloom (or Stripe) error body.
func errorCode(body []byte) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
			Type string `json:"type"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	if e.Error.Code != "" {
		return e.Error.Code
	}
	return e.Error.Type
}

// run runs the whole benchmark described by c and returns its result.
func run(ctx context.Context, c config, logw io.Writer) (*Result, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	cl := newClient(c)
	defer cl.http.CloseIdleConnections()

	var step func(ctx context.Context, w *worker)
	var mixed *mixedRun
	res := &Result{Label: c.Label, Target: c.Target, Scenario: c.Scenario, Concurrency: c.Concurrency,
		DurationS: c.Duration.Seconds(), WarmupS: c.Warmup.Seconds(), GoMaxProcs: runtime.GOMAXPROCS(0)}
	switch {
	case c.Scenario == "mixed":
		tok, err := createToken(ctx, cl, c.Timeout)
		if err != nil {
			return nil, err
		}
		res.SetupToken = true
		mixed = newMixedRun(tok, c.Concurrency, c.Seed)
		step = mixed.step
	case c.Target == targetPayloom:
		tok, err := createToken(ctx, cl, c.Timeout)
		if err != nil {
			return nil, err
		}
		res.SetupToken = true
		step = createStep(c.Target, tok)
	default:
		step = createStep(c.Target, "")
	}

	now := time.Now()
	res.StartedAt = now.UTC().Format(time.RFC3339)
	win := window{start: now.Add(c.Warmup), end: now.Add(c.Warmup + c.Duration)}
	mon := startMonitor(c.ServerPID, c.AuxPID, win)
	fmt.Fprintf(logw, "load: %s %s: %d users, %s warm-up + %s measured\n",
		c.Label, c.Scenario, c.Concurrency, c.Warmup, c.Duration)
	// Requests in flight at the end finish (each bounded by -timeout);
	// none starts after it.
	runCtx, cancel := context.WithTimeout(ctx, c.Warmup+c.Duration+2*c.Timeout)
	defer cancel()
	workers := make([]*worker, c.Concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{id: i, cl: cl, win: win, rec: newRecorder(), tmo: c.Timeout, target: c.Target}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for runCtx.Err() == nil && time.Now().Before(win.end) {
				step(runCtx, w)
			}
		}()
	}
	wg.Wait()

	total := newRecorder()
	for _, w := range workers {
		total.merge(w.rec)
	}
	var all []int64
	res.ByOp = map[string]Latency{}
	for op, l := range total.lat {
		all = append(all, l...)
		res.ByOp[op] = summarize(l)
	}
	if c.Scenario != "mixed" {
		res.ByOp = nil
	}
	res.Latency = summarize(all)
	res.Requests = int64(len(all))
	res.OK = total.ok
	res.RPS = round2(float64(total.ok) / c.Duration.Seconds())
	res.Errors = total.errors
	for _, v := range total.errors {
		res.ErrorsTotal += v
	}
	res.Codes = total.codes
	res.Connections = cl.dials.Load()
	mon.stop(res)

	if mixed != nil {
		res.Ops = mixed.measuredOps.Load()
		res.OpsPerS = round2(float64(res.Ops) / c.Duration.Seconds())
		// Verification gets its own time budget: it resolves unknown
		// outcomes and pages through every payment.
		vctx, vcancel := context.WithTimeout(ctx, 5*time.Minute)
		defer vcancel()
		vw := &worker{id: -1, cl: cl, rec: newRecorder(), tmo: c.Timeout, target: c.Target}
		res.Verify = mixed.verify(vctx, vw)
		fmt.Fprintf(logw, "load: verify: %s\n", res.Verify.Summary)
	}
	return res, nil
}

func rusageSeconds(r syscall.Rusage) float64 {
	return float64(r.Utime.Sec+r.Stime.Sec) + float64(r.Utime.Usec+r.Stime.Usec)/1e6
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }

// createToken tokenizes Stripe's test Visa once; every payment of the run
// reuses the token, as a shop charging a saved card would.
func createToken(ctx context.Context, cl *client, timeout time.Duration) (string, error) {
	w := &worker{id: -1, cl: cl, rec: newRecorder(), tmo: timeout}
	body := []byte(`{"card":{"number":"4242424242424242","exp_month":12,"exp_year":2030,"cvc":"123"}}`)
	r := w.do(ctx, "token", "POST", "/v1/tokens", "application/json", w.newKey(), body, nil)
	if r.err != nil {
		return "", fmt.Errorf("create token: %w", r.err)
	}
	if r.class != "" {
		return "", fmt.Errorf("create token: HTTP %d: %s", r.status, r.body)
	}
	var t struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(r.body, &t); err != nil || t.ID == "" {
		return "", fmt.Errorf("create token: unexpected answer %q", r.body)
	}
	return t.ID, nil
}

// createStep returns the create scenario's request for target.
func createStep(target, token string) func(ctx context.Context, w *worker) {
	switch target {
	case targetStripeMock:
		// stripe-mock takes Stripe's form encoding; sk_test_123 is the key
		// its documentation uses (it accepts any test key).
		body := []byte("amount=1000&currency=usd&payment_method_types[]=card")
		marker := []byte(`payment_intent`)
		return func(ctx context.Context, w *worker) {
			w.do(ctx, "create", "POST", "/v1/payment_intents", "application/x-www-form-urlencoded",
				w.newKey(), body, func(_ int, b []byte) bool { return bytes.Contains(b, marker) })
		}
	default:
		body := []byte(`{"amount":1000,"currency":"USD","payment_method":{"type":"card","card":{"token":"` +
			token + `"}}}`)
		if target == targetBare {
			body = []byte(`{"amount":1000,"currency":"USD","payment_method":{"type":"card","card":{"token":"tok_bare"}}}`)
		}
		// An automatic-capture payment on the test Visa is captured in
		// full; anything else (declined, processing) is not what the
		// benchmark measures.
		marker := []byte(`"amount_captured":1000`)
		return func(ctx context.Context, w *worker) {
			w.do(ctx, "create", "POST", "/v1/payments", "application/json", w.newKey(), body,
				func(_ int, b []byte) bool { return bytes.Contains(b, marker) })
		}
	}
}

// monitor samples the server while the load runs: its resident set all
// along, and its CPU time and writes at the edges of the measured window,
// so that per-request costs cover the same interval as the requests.
type monitor struct {
	pid, aux int
	win      window
	peakRSS  atomic.Int64
	done     chan struct{}
	exited   chan struct{}
	stopOnce sync.Once
	// Snapshots at the window's start and end, written by the sampling
	// goroutine before exited is closed.
	snap [2]snapshot
	got  [2]bool
}

type snapshot struct {
	self     float64 // the load tool's own CPU seconds
	cpu, aux cpuTime
	io       ioStat
	ioErr    error
	cpuErr   error
	auxErr   error
}

func (m *monitor) take() snapshot {
	var s snapshot
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	s.self = rusageSeconds(ru)
	if m.pid <= 0 {
		return s
	}
	s.cpu, s.cpuErr = treeCPU(m.pid)
	s.io, s.ioErr = readIO(m.pid)
	if m.aux > 0 {
		s.aux, s.auxErr = treeCPU(m.aux)
	}
	return s
}

func startMonitor(pid, aux int, win window) *monitor {
	m := &monitor{pid: pid, aux: aux, win: win, done: make(chan struct{}), exited: make(chan struct{})}
	go func() {
		defer close(m.exited)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		startT, endT := time.NewTimer(time.Until(win.start)), time.NewTimer(time.Until(win.end))
		defer startT.Stop()
		defer endT.Stop()
		for {
			select {
			case <-m.done:
				return
			case <-startT.C:
				m.snap[0], m.got[0] = m.take(), true
			case <-endT.C:
				m.snap[1], m.got[1] = m.take(), true
			case <-tick.C:
				if pid > 0 {
					if v, err := statusKB(pid, "VmRSS"); err == nil && v > m.peakRSS.Load() {
						m.peakRSS.Store(v)
					}
				}
			}
		}
	}()
	return m
}

// stop ends sampling and fills the server fields of res, whose OK count
// must be final. VmHWM is the kernel's own high-water mark of the resident
// set, so no peak between two samples is missed.
func (m *monitor) stop(res *Result) {
	m.stopOnce.Do(func() { close(m.done) })
	<-m.exited
	if m.pid > 0 {
		peak := m.peakRSS.Load()
		if hwm, err := statusKB(m.pid, "VmHWM"); err == nil {
			peak = max(peak, hwm)
		}
		res.PeakRSSKB = peak
	}
	if !m.got[0] || !m.got[1] {
		return // the run ended early: no per-request costs
	}
	a, b := m.snap[0], m.snap[1]
	res.LoadCPUS = round2(b.self - a.self)
	if m.pid <= 0 {
		return
	}
	if a.cpuErr == nil && b.cpuErr == nil {
		res.ServerCPUS = round2(b.cpu.user + b.cpu.sys - a.cpu.user - a.cpu.sys)
		res.ServerSysS = round2(b.cpu.sys - a.cpu.sys)
		if res.OK > 0 {
			res.CPUPerReqUS = round2(res.ServerCPUS / float64(res.OK) * 1e6)
		}
	}
	if a.ioErr == nil && b.ioErr == nil && res.OK > 0 {
		res.WriteCallsPerReq = round2(float64(b.io.syscw-a.io.syscw) / float64(res.OK))
		res.WriteKBPerReq = round2(float64(b.io.writeBytes-a.io.writeBytes) / 1024 / float64(res.OK))
	}
	if m.aux > 0 && a.auxErr == nil && b.auxErr == nil {
		res.AuxCPUS = round2(b.aux.user + b.aux.sys - a.aux.user - a.aux.sys)
	}
}
