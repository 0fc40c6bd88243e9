package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakePayloom is a small in-memory server with Payloom's API shapes and
// idempotent replays, with switches that make it misbehave, so that the
// load tool's counting and its end-of-run verification can be shown to
// catch each kind of lie. The real server is measured by bench/run.
type fakePayloom struct {
	mu       sync.Mutex
	pays     map[string]*fakePay
	order    []string // payment IDs, oldest first
	refunds  []refundJSON
	replays  map[string][]byte // Idempotency-Key -> stored response
	attempts map[string]int    // Idempotency-Key -> requests seen
	tokens   int
	n        int

	// failKeyAttempts: the first write key answers 500 this many times
	// (after doing the work on the first), so its outcome stays unknown.
	failKeyAttempts int
	failKey         string
	// errorEvery: every n-th create answers 500 without doing anything.
	errorEvery  int
	lieCaptured bool // the list adds a cent to one payment
	hideOne     bool // the list leaves one payment out
	ghost       bool // a payment no client created exists
	staleReads  bool // GET /v1/payments/{id} shows amount_captured 0
}

type fakePay struct {
	paymentJSON
	manual bool
}

func newFake() *fakePayloom {
	return &fakePayloom{pays: map[string]*fakePay{}, replays: map[string][]byte{}, attempts: map[string]int{}}
}

func (f *fakePayloom) start(t *testing.T) *httptest.Server {
	t.Helper()
	if f.ghost {
		f.newPayment(777, false)
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv
}

func (f *fakePayloom) newPayment(amount int64, manual bool) *fakePay {
	f.n++
	p := &fakePay{paymentJSON: paymentJSON{ID: fmt.Sprintf("pay_%08d", f.n), Amount: amount}, manual: manual}
	if manual {
		p.Status = "authorized"
	} else {
		p.Status, p.AmountCaptured = "captured", amount
	}
	f.pays[p.ID] = p
	f.order = append(f.order, p.ID)
	return p
}

func writeErr(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"type":"api_error","code":%q,"message":"fake"}}`, code)
}

func (f *fakePayloom) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer sk_test_fake" {
		writeErr(w, 401, "auth_failed")
		return
	}
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	key := r.Header.Get("Idempotency-Key")
	if r.Method == "POST" && key != "" {
		f.attempts[key]++
		if f.failKeyAttempts > 0 && f.failKey == "" && r.URL.Path == "/v1/payments" {
			f.failKey = key
		}
		if stored, ok := f.replays[key]; ok {
			if key == f.failKey && f.attempts[key] <= f.failKeyAttempts {
				writeErr(w, 500, "internal_error")
				return
			}
			w.Write(stored)
			return
		}
	}
	status, resp := f.handle(r, body)
	if status == 200 && r.Method == "POST" && key != "" {
		f.replays[key] = resp
		if key == f.failKey {
			writeErr(w, 500, "internal_error")
			return
		}
	}
	if status != 200 {
		writeErr(w, status, string(resp))
		return
	}
	w.Write(resp)
}

// handle runs one request with f.mu held; on an error it returns the
// status and the error code.
func (f *fakePayloom) handle(r *http.Request, body []byte) (int, []byte) {
	var req struct {
		Amount        int64  `json:"amount"`
		CaptureMethod string `json:"capture_method"`
		PaymentID     string `json:"payment_id"`
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return 400, []byte("invalid_json")
		}
	}
	path := r.URL.Path
	switch {
	case r.Method == "POST" && path == "/v1/tokens":
		f.tokens++
		return 200, []byte(`{"id":"tok_fake"}`)
	case r.Method == "POST" && path == "/v1/payments":
		if f.errorEvery > 0 && (f.n+1)%f.errorEvery == 0 {
			f.n++
			return 500, []byte("internal_error")
		}
		p := f.newPayment(req.Amount, req.CaptureMethod == "manual")
		return 200, mustJSON(p.paymentJSON)
	case r.Method == "POST" && strings.HasSuffix(path, "/capture"):
		p := f.pays[strings.TrimSuffix(strings.TrimPrefix(path, "/v1/payments/"), "/capture")]
		if p == nil || p.Status != "authorized" {
			return 409, []byte("invalid_state")
		}
		amount := req.Amount
		if amount == 0 {
			amount = p.Amount
		}
		p.Status, p.AmountCaptured = "captured", amount
		return 200, mustJSON(p.paymentJSON)
	case r.Method == "POST" && path == "/v1/refunds":
		p := f.pays[req.PaymentID]
		if p == nil || req.Amount <= 0 || req.Amount > p.AmountCaptured-p.AmountRefunded {
			return 400, []byte("validation_error")
		}
		p.AmountRefunded += req.Amount
		rf := refundJSON{ID: fmt.Sprintf("re_%08d", len(f.refunds)+1), PaymentID: p.ID, Status: "succeeded", Amount: req.Amount}
		f.refunds = append(f.refunds, rf)
		return 200, mustJSON(rf)
	case r.Method == "GET" && path == "/v1/payments":
		var all []paymentJSON
		for i, id := range slices.Backward(f.order) {
			p := f.pays[id].paymentJSON
			if f.hideOne && i == 0 {
				continue
			}
			if f.lieCaptured && i == 0 {
				p.AmountCaptured++
			}
			all = append(all, p)
		}
		return 200, page(all, r, func(p paymentJSON) string { return p.ID })
	case r.Method == "GET" && path == "/v1/refunds":
		all := slices.Clone(f.refunds)
		slices.Reverse(all)
		return 200, page(all, r, func(rf refundJSON) string { return rf.ID })
	case r.Method == "GET" && strings.HasPrefix(path, "/v1/payments/"):
		p := f.pays[strings.TrimPrefix(path, "/v1/payments/")]
		if p == nil {
			return 404, []byte("not_found")
		}
		pj := p.paymentJSON
		if f.staleReads {
			pj.AmountCaptured = 0
		}
		return 200, mustJSON(pj)
	}
	return 404, []byte("not_found")
}

// page serves a newest-first list with limit and starting_after.
func page[T any](all []T, r *http.Request, id func(T) string) []byte {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 {
		limit = 10
	}
	start := 0
	if after := r.URL.Query().Get("starting_after"); after != "" {
		start = slices.IndexFunc(all, func(v T) bool { return id(v) == after }) + 1
	}
	end := min(start+limit, len(all))
	return mustJSON(map[string]any{"object": "list", "data": all[start:end], "has_more": end < len(all)})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func testConfig(url, scenario string) config {
	return config{Target: targetPayloom, URL: url, Key: "sk_test_fake", Scenario: scenario, Label: "fake",
		Concurrency: 3, Duration: 400 * time.Millisecond, Warmup: 50 * time.Millisecond, Timeout: 5 * time.Second, Seed: 7}
}

func TestRunCreate(t *testing.T) {
	f := newFake()
	srv := f.start(t)
	c := testConfig(srv.URL, "create")
	c.ServerPID = os.Getpid() // the test process stands in for the server
	res, err := run(context.Background(), c, io.Discard)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.OK == 0 || res.ErrorsTotal != 0 || res.OK != res.Requests {
		t.Errorf("run = %d ok, %d errors of %d requests; want every request to succeed", res.OK, res.ErrorsTotal, res.Requests)
	}
	if res.Connections > int64(c.Concurrency) || res.Connections >= res.Requests {
		t.Errorf("connections = %d for %d requests; want at most %d (keep-alive)", res.Connections, res.Requests, c.Concurrency)
	}
	if res.PeakRSSKB <= 0 {
		t.Errorf("PeakRSSKB = %d; want the test process's high-water mark", res.PeakRSSKB)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tokens != 1 {
		t.Errorf("tokens created = %d; want 1 (one token reused by every payment)", f.tokens)
	}
	for key, n := range f.attempts {
		if n != 1 {
			t.Errorf("Idempotency-Key %q sent %d times; want each key once", key, n)
		}
	}
	// Warm-up and measured requests all reached the server with their own key.
	if int64(len(f.attempts)) < res.Requests+1 {
		t.Errorf("distinct keys = %d; want at least the %d measured requests + the token", len(f.attempts), res.Requests)
	}
}

func TestRunCountsErrorsByClass(t *testing.T) {
	f := newFake()
	f.errorEvery = 3
	srv := f.start(t)
	res, err := run(context.Background(), testConfig(srv.URL, "create"), io.Discard)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Errors[class5xx] == 0 || res.Codes["500 internal_error"] != res.Errors[class5xx] {
		t.Errorf("errors = %v, codes = %v; want the 500s counted as http_5xx with their code", res.Errors, res.Codes)
	}
	if res.OK+res.ErrorsTotal != res.Requests {
		t.Errorf("ok %d + errors %d != requests %d", res.OK, res.ErrorsTotal, res.Requests)
	}
	// A 2xx with the wrong body is an error too.
	body := []byte(`{"amount_captured":999}`)
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/tokens" {
			w.Write([]byte(`{"id":"tok_x"}`))
			return
		}
		w.Write(body)
	}))
	defer bad.Close()
	res, err = run(context.Background(), testConfig(bad.URL, "create"), io.Discard)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.OK != 0 || res.Errors[classUnexpected] != res.Requests || res.RPS != 0 {
		t.Errorf("against a server answering %s: ok=%d errors=%v rps=%v; want all unexpected_body and 0 req/s",
			body, res.OK, res.Errors, res.RPS)
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		edit func(*config)
	}{
		{"unknown target", func(c *config) { c.Target = "wrk" }},
		{"unknown scenario", func(c *config) { c.Scenario = "soak" }},
		{"mixed on stripe-mock", func(c *config) { c.Target, c.Scenario = targetStripeMock, "mixed" }},
		{"no url", func(c *config) { c.URL = "" }},
		{"payloom without key", func(c *config) { c.Key = "" }},
		{"zero users", func(c *config) { c.Concurrency = 0 }},
	}
	for _, tt := range tests {
		c := testConfig("http://127.0.0.1:1", "create")
		tt.edit(&c)
		if _, err := run(context.Background(), c, io.Discard); err == nil {
			t.Errorf("%s: run = nil error; want the config refused", tt.name)
		}
	}
}

func TestMixedVerify(t *testing.T) {
	tests := []struct {
		name  string
		fault func(*fakePayloom)
		pass  bool
		check func(t *testing.T, v *Verify)
	}{
		{"honest server", func(*fakePayloom) {}, true, func(t *testing.T, v *Verify) {
			if v.ExpectedPayments == 0 || v.ExpectedCaptured == 0 {
				t.Errorf("verify = %+v; want some payments and captured money", v)
			}
		}},
		{"a write's outcome is learned only by retrying its key", func(f *fakePayloom) { f.failKeyAttempts = 6 },
			true, func(t *testing.T, v *Verify) {
				if v.Resolved != 1 || v.Unresolved != 0 {
					t.Errorf("resolved = %d, unresolved = %d; want 1, 0", v.Resolved, v.Unresolved)
				}
			}},
		{"a listed amount is off by a cent", func(f *fakePayloom) { f.lieCaptured = true }, false,
			func(t *testing.T, v *Verify) {
				if v.Mismatched != 1 || v.ListedCaptured != v.ExpectedCaptured+1 {
					t.Errorf("mismatched = %d, listed %d vs told %d; want 1 and one cent more",
						v.Mismatched, v.ListedCaptured, v.ExpectedCaptured)
				}
			}},
		{"an acknowledged payment is not listed", func(f *fakePayloom) { f.hideOne = true }, false,
			func(t *testing.T, v *Verify) {
				if v.Missing != 1 {
					t.Errorf("missing = %d; want 1", v.Missing)
				}
			}},
		{"a payment nobody created is listed", func(f *fakePayloom) { f.ghost = true }, false,
			func(t *testing.T, v *Verify) {
				if v.Unknown != 1 {
					t.Errorf("unknown = %d; want 1", v.Unknown)
				}
			}},
		{"reads disagree with what the client was told", func(f *fakePayloom) { f.staleReads = true }, false,
			func(t *testing.T, v *Verify) {
				if v.ReadMismatches == 0 {
					t.Errorf("read mismatches = 0; want some")
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			tt.fault(f)
			srv := f.start(t)
			c := testConfig(srv.URL, "mixed")
			if tt.name == "reads disagree with what the client was told" {
				c.Duration = time.Second // enough operations to include reads
			}
			res, err := run(context.Background(), c, io.Discard)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			v := res.Verify
			if v == nil {
				t.Fatal("mixed run has no verification")
			}
			if v.Pass != tt.pass {
				t.Errorf("verify.Pass = %v (%s); want %v", v.Pass, v.Summary, tt.pass)
			}
			if wantWord := map[bool]string{true: "PASS", false: "FAIL"}[tt.pass]; !strings.HasPrefix(v.Summary, wantWord) {
				t.Errorf("summary = %q; want it to start with %s", v.Summary, wantWord)
			}
			tt.check(t, v)
		})
	}
}

// TestMixedMix: the operation mix follows the configured shares.
func TestMixedMix(t *testing.T) {
	f := newFake()
	srv := f.start(t)
	c := testConfig(srv.URL, "mixed")
	c.Duration = time.Second
	res, err := run(context.Background(), c, io.Discard)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, op := range []string{opCreate, opCreateManual, opCapture} {
		if res.ByOp[op].Count == 0 {
			t.Errorf("ByOp[%q].Count = 0; want some (by_op = %v)", op, res.ByOp)
		}
	}
	// Every manual create is followed by its capture (each user may have
	// one pair cut by the window's start or end).
	n := int64(c.Concurrency)
	if d := res.ByOp[opCreateManual].Count - res.ByOp[opCapture].Count; d < -n || d > n {
		t.Errorf("create_manual %d vs capture %d; want one capture per manual create",
			res.ByOp[opCreateManual].Count, res.ByOp[opCapture].Count)
	}
	if res.Ops == 0 || res.Ops > res.Requests {
		t.Errorf("ops = %d, requests = %d; want 0 < ops <= requests", res.Ops, res.Requests)
	}
}
