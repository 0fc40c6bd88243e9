package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/payloom/payloom/internal/canary"
)

// Deadlines that bound every wait. They are far above what a slow, loaded
// machine needs; reaching one is a failure (a hang), never a timing result.
const (
	startTimeout   = 90 * time.Second
	stopTimeout    = 60 * time.Second
	requestTimeout = 90 * time.Second
	cliTimeout     = 90 * time.Second
)

// binPath is the payloom binary built once by TestMain.
var binPath string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "payloom-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "payloom")
	args := []string{"build", "-o", binPath}
	if raceEnabled {
		// The server under test is checked for data races too; with
		// GORACE=halt_on_error=1 a race kills it and the test fails.
		args = append(args, "-race")
	}
	args = append(args, "-ldflags", "-X main.version=e2e-test", "github.com/payloom/payloom/cmd/payloom")
	build := exec.Command("go", args...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: go build:", err)
		return 1
	}
	return m.Run()
}

// baseEnv is the environment of every payloom process: the test's own,
// without any PAYLOOM_ setting that could leak in from the caller.
func baseEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PAYLOOM_") && !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	env = append(env, "GORACE=halt_on_error=1")
	if canary.Dir() != "" {
		// The PAN canary wants everything the server can log; a test's
		// own PAYLOOM_LOG_LEVEL, later in the list, still wins.
		env = append(env, "PAYLOOM_LOG_LEVEL=debug")
	}
	return append(env, extra...)
}

// canaries holds each test's canary recorder (see canaryFor).
var canaries sync.Map // *testing.T -> *canary.Recorder

// canaryFor returns the test's recorder for the PAN canary (nil when
// PAYLOOM_CANARY_DIR is unset), made on first use.
func canaryFor(t *testing.T) *canary.Recorder {
	t.Helper()
	if r, ok := canaries.Load(t); ok {
		return r.(*canary.Recorder)
	}
	// Goroutines of one test may get here at once: one recorder wins
	// (New opens no file, so the losers leave nothing behind).
	r, err := canary.New("e2e-" + t.Name())
	if err != nil {
		t.Error(err)
		return nil
	}
	actual, loaded := canaries.LoadOrStore(t, r)
	if !loaded {
		t.Cleanup(func() {
			if err := r.Close(); err != nil {
				t.Error(err)
			}
			canaries.Delete(t)
		})
	}
	return actual.(*canary.Recorder)
}

// record copies every process's output and dumps the store (the SQLite
// file, or the PostgreSQL database the processes used) into the canary
// directory. It runs at the end of the test, after the servers stopped.
func (in *instance) record() {
	t := in.t
	rec := canaryFor(t)
	if rec == nil {
		return
	}
	entries, _ := os.ReadDir(in.LogDir)
	var logs bytes.Buffer
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(in.LogDir, e.Name()))
		if err != nil {
			t.Error(err)
			continue
		}
		logs.WriteString("=== " + e.Name() + "\n")
		logs.Write(b)
	}
	if err := rec.WriteFile(".log", logs.Bytes()); err != nil {
		t.Error(err)
	}
	in.mu.Lock()
	dbURL := in.dbURL
	in.mu.Unlock()
	driver, source, dialect := "sqlite3", "file:"+filepath.Join(in.DataDir, "payloom.db")+"?mode=ro", canary.SQLite
	if dbURL != "" {
		driver, source, dialect = "pgx", dbURL, canary.Postgres
	} else if _, err := os.Stat(filepath.Join(in.DataDir, "payloom.db")); err != nil {
		return // no process opened a store
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		t.Error(err)
		return
	}
	defer db.Close()
	if err := rec.DumpDB(db, dialect); err != nil {
		t.Errorf("canary dump: %v", err)
	}
}

// noteDatabase remembers the PostgreSQL database a process was started on,
// from its environment (PAYLOOM_DATABASE_URL=...) or its flags
// (--database-url URL).
func (in *instance) noteDatabase(envAndArgs []string) {
	for i, kv := range envAndArgs {
		u, ok := strings.CutPrefix(kv, "PAYLOOM_DATABASE_URL=")
		if !ok {
			u, ok = strings.CutPrefix(kv, "--database-url=")
		}
		if !ok && kv == "--database-url" && i+1 < len(envAndArgs) {
			u, ok = envAndArgs[i+1], true
		}
		if ok {
			in.mu.Lock()
			in.dbURL = u
			in.mu.Unlock()
		}
	}
}

// instance is one data directory that servers and CLI commands share, with
// a log directory that keeps every process's stdout and stderr for the
// card-data scan.
type instance struct {
	t       *testing.T
	DataDir string
	LogDir  string
	seq     atomic.Int64

	mu    sync.Mutex
	dbURL string // the PostgreSQL database processes used, if any
}

func newInstance(t *testing.T) *instance {
	t.Helper()
	root := t.TempDir()
	in := &instance{t: t, DataDir: filepath.Join(root, "data"), LogDir: filepath.Join(root, "logs")}
	if err := os.MkdirAll(in.LogDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Registered before any server starts, so it runs after they stopped.
	t.Cleanup(in.record)
	return in
}

// logFiles opens a fresh pair of log files for a process.
func (in *instance) logFiles(name string) (stdout, stderr *os.File) {
	in.t.Helper()
	n := in.seq.Add(1)
	open := func(stream string) *os.File {
		f, err := os.Create(filepath.Join(in.LogDir, fmt.Sprintf("%03d-%s.%s.log", n, name, stream)))
		if err != nil {
			in.t.Fatal(err)
		}
		return f
	}
	return open("stdout"), open("stderr")
}

// server is one running payloom serve process.
type server struct {
	t      *testing.T
	in     *instance
	cmd    *exec.Cmd
	URL    string
	stdout *watchBuffer
	stderr *watchBuffer
	exited chan struct{}
	state  *os.ProcessState // set when exited is closed
}

var listeningRE = regexp.MustCompile(`payloom listening on (http://127\.0\.0\.1:\d+)`)

// start runs payloom serve on a free loopback port with the instance's
// data directory, waits until it listens, and stops it at the end of the
// test. env holds extra KEY=VALUE settings, args extra flags.
func (in *instance) start(env []string, args ...string) *server {
	in.t.Helper()
	t := in.t
	in.noteDatabase(append(append([]string{}, env...), args...))
	outFile, errFile := in.logFiles("serve")
	s := &server{t: t, in: in, stdout: newWatchBuffer(outFile), stderr: newWatchBuffer(errFile), exited: make(chan struct{})}
	all := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", in.DataDir}, args...)
	s.cmd = exec.Command(binPath, all...)
	s.cmd.Env = baseEnv(env...)
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start payloom serve: %v", err)
	}
	go func() {
		_ = s.cmd.Wait()
		s.state = s.cmd.ProcessState
		outFile.Close()
		errFile.Close()
		close(s.exited)
	}()
	t.Cleanup(func() { s.stopQuietly() })

	m, err := s.stdout.waitFor(listeningRE, s.exited, startTimeout)
	if err != nil {
		t.Fatalf("payloom serve did not start: %v\nstdout:\n%s\nstderr:\n%s", err, s.stdout, s.stderr)
	}
	s.URL = m[1]
	return s
}

// Stop sends SIGTERM and waits for the process to exit. It fails the test
// unless the exit was clean (status 0): a data race or an error on shutdown
// shows here.
func (s *server) Stop() {
	s.t.Helper()
	state := s.signalAndWait(syscall.SIGTERM)
	if state == nil {
		s.t.Fatalf("payloom serve did not exit within %v after SIGTERM\nstderr:\n%s", stopTimeout, s.stderr)
	}
	if code := state.ExitCode(); code != 0 {
		s.t.Fatalf("payloom serve exit status = %v; want 0\nstderr:\n%s", state, s.stderr)
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (s *server) Kill() {
	s.t.Helper()
	if s.signalAndWait(syscall.SIGKILL) == nil {
		s.t.Fatal("payloom serve survived SIGKILL")
	}
}

// WaitExit waits for the process to exit by itself (for the fault hook).
func (s *server) WaitExit() *os.ProcessState {
	s.t.Helper()
	select {
	case <-s.exited:
		return s.state
	case <-time.After(stopTimeout):
		s.t.Fatalf("payloom serve did not exit within %v", stopTimeout)
		return nil
	}
}

func (s *server) signalAndWait(sig syscall.Signal) *os.ProcessState {
	select {
	case <-s.exited:
		return s.state
	default:
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
		return s.state
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return nil
	}
}

// stopQuietly is the cleanup: SIGTERM, then SIGKILL if it hangs.
func (s *server) stopQuietly() {
	if st := s.signalAndWait(syscall.SIGTERM); st == nil {
		s.t.Errorf("payloom serve did not exit within %v after SIGTERM; killed", stopTimeout)
	}
}

// Stdout returns everything the server printed on stdout so far.
func (s *server) Stdout() string { return s.stdout.String() }

// runCLI runs a payloom command on the instance's data directory and
// returns its stdout and stderr. It fails the test if the command fails.
func (in *instance) runCLI(args ...string) (stdout, stderr string) {
	in.t.Helper()
	stdout, stderr, err := in.tryCLI(nil, args...)
	if err != nil {
		in.t.Fatalf("payloom %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout, stderr
}

// tryCLI runs a payloom command and returns its outcome.
func (in *instance) tryCLI(env []string, args ...string) (stdout, stderr string, err error) {
	in.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	in.noteDatabase(append(append([]string{}, env...), args...))
	outFile, errFile := in.logFiles("cli")
	defer outFile.Close()
	defer errFile.Close()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, binPath, append(args, "--data", in.DataDir)...)
	cmd.Env = baseEnv(env...)
	cmd.Stdout = io.MultiWriter(&out, outFile)
	cmd.Stderr = io.MultiWriter(&errb, errFile)
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// watchBuffer collects a process's output (also into a log file) and lets
// a test wait for a line.
type watchBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	file    io.Writer
	changed chan struct{}
}

func newWatchBuffer(file io.Writer) *watchBuffer {
	return &watchBuffer{file: file, changed: make(chan struct{})}
}

func (w *watchBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	_, _ = w.file.Write(p)
	close(w.changed)
	w.changed = make(chan struct{})
	return len(p), nil
}

func (w *watchBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitFor waits until the output matches re, the process exits (done), or
// the timeout passes.
func (w *watchBuffer) waitFor(re *regexp.Regexp, done <-chan struct{}, timeout time.Duration) ([]string, error) {
	deadline := time.After(timeout)
	for {
		w.mu.Lock()
		m := re.FindStringSubmatch(w.buf.String())
		changed := w.changed
		w.mu.Unlock()
		if m != nil {
			return m, nil
		}
		select {
		case <-changed:
		case <-done:
			// The process may have written its last output just before
			// exiting; look once more.
			if m := re.FindStringSubmatch(w.String()); m != nil {
				return m, nil
			}
			return nil, errors.New("process exited")
		case <-deadline:
			return nil, fmt.Errorf("no match for %q after %v", re, timeout)
		}
	}
}

// firstStart is what the first start of a server on an empty store prints.
type firstStart struct {
	MerchantID string
	Key        string
}

var (
	merchantLineRE = regexp.MustCompile(`Merchant ID:\s+(mrch_[0-9a-z]+)`)
	keyLineRE      = regexp.MustCompile(`Secret key:\s+(sk_test_[0-9A-Za-z_]+)`)
)

// parseFirstStart reads the merchant and key from a first start's stdout.
func parseFirstStart(t *testing.T, stdout string) firstStart {
	t.Helper()
	m := merchantLineRE.FindStringSubmatch(stdout)
	k := keyLineRE.FindStringSubmatch(stdout)
	if m == nil || k == nil {
		t.Fatalf("first start did not print a merchant and a test key; stdout:\n%s", stdout)
	}
	return firstStart{MerchantID: m[1], Key: k[1]}
}

// client talks to a server's API with one secret key.
type client struct {
	t    *testing.T
	base string
	key  string
	hc   *http.Client
}

var sharedTransport = &http.Transport{
	MaxIdleConns:        200,
	MaxIdleConnsPerHost: 200,
	IdleConnTimeout:     30 * time.Second,
}

func newClient(t *testing.T, base, key string) *client {
	return &client{t: t, base: base, key: key, hc: &http.Client{Transport: sharedTransport, Timeout: requestTimeout}}
}

// on returns a copy of the client that reports to t (for subtests).
func (c *client) on(t *testing.T) *client {
	cc := *c
	cc.t = t
	return &cc
}

// withKey returns a client with another secret key.
func (c *client) withKey(key string) *client {
	cc := *c
	cc.key = key
	return &cc
}

// response is an HTTP answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r *response) String() string { return fmt.Sprintf("%d %s", r.Status, r.Body) }

// errorBody is the API's error envelope.
type errorBody struct {
	Error struct {
		Type      string `json:"type"`
		Code      string `json:"code"`
		Message   string `json:"message"`
		Param     string `json:"param"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

// ErrorCode returns error.code of an error response, or "".
func (r *response) ErrorCode() string {
	var e errorBody
	_ = json.Unmarshal(r.Body, &e)
	return e.Error.Code
}

// ErrorParam returns error.param of an error response, or "".
func (r *response) ErrorParam() string {
	var e errorBody
	_ = json.Unmarshal(r.Body, &e)
	return e.Error.Param
}

// send makes a request; body is marshalled to JSON unless nil. Headers come
// in name, value pairs. It returns a transport error instead of failing, so
// that goroutines and crash tests can use it.
func (c *client) send(method, path string, body any, headers ...string) (*response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if err := canaryFor(c.t).Response(method, path, resp.StatusCode, b); err != nil {
		return nil, err
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// do makes a request and fails the test on a transport error.
func (c *client) do(method, path string, body any, headers ...string) *response {
	c.t.Helper()
	r, err := c.send(method, path, body, headers...)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	if r.Header.Get("Request-Id") == "" {
		c.t.Errorf("%s %s: no Request-Id header", method, path)
	}
	return r
}

// expect makes a request, checks the status and decodes the body into out
// (if not nil).
func (c *client) expect(want int, out any, method, path string, body any, headers ...string) *response {
	c.t.Helper()
	r := c.do(method, path, body, headers...)
	if r.Status != want {
		c.t.Fatalf("%s %s = %v; want status %d", method, path, r, want)
	}
	if out != nil {
		if err := json.Unmarshal(r.Body, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, r.Body, err)
		}
	}
	return r
}

// expectError makes a request and checks the status and error code.
func (c *client) expectError(wantStatus int, wantCode, method, path string, body any, headers ...string) *response {
	c.t.Helper()
	r := c.do(method, path, body, headers...)
	if r.Status != wantStatus || r.ErrorCode() != wantCode {
		c.t.Fatalf("%s %s = %v; want %d %s", method, path, r, wantStatus, wantCode)
	}
	return r
}

// The API objects as the tests read them.
type (
	cardSummary struct {
		Token       string `json:"token"`
		Brand       string `json:"brand"`
		First6      string `json:"first6"`
		Last4       string `json:"last4"`
		ExpMonth    int    `json:"exp_month"`
		ExpYear     int    `json:"exp_year"`
		Fingerprint string `json:"fingerprint"`
	}
	token struct {
		ID       string      `json:"id"`
		Object   string      `json:"object"`
		Livemode bool        `json:"livemode"`
		Card     cardSummary `json:"card"`
	}
	failure struct {
		Code        string `json:"code"`
		DeclineCode string `json:"decline_code"`
		Message     string `json:"message"`
	}
	payment struct {
		ID               string `json:"id"`
		Object           string `json:"object"`
		MerchantID       string `json:"merchant_id"`
		Livemode         bool   `json:"livemode"`
		Amount           int64  `json:"amount"`
		AmountCapturable int64  `json:"amount_capturable"`
		AmountCaptured   int64  `json:"amount_captured"`
		AmountRefunded   int64  `json:"amount_refunded"`
		Currency         string `json:"currency"`
		Status           string `json:"status"`
		CaptureMethod    string `json:"capture_method"`
		PaymentMethod    *struct {
			Type string       `json:"type"`
			Card *cardSummary `json:"card"`
		} `json:"payment_method"`
		Processor *struct {
			Name              string `json:"name"`
			TransactionID     string `json:"transaction_id"`
			AuthorizationCode string `json:"authorization_code"`
		} `json:"processor"`
		Attempts []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"attempts"`
		Failure  *failure          `json:"failure"`
		Metadata map[string]string `json:"metadata"`
	}
	refund struct {
		ID        string `json:"id"`
		Object    string `json:"object"`
		PaymentID string `json:"payment_id"`
		Amount    int64  `json:"amount"`
		Currency  string `json:"currency"`
		Status    string `json:"status"`
	}
	event struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data struct {
			Object json.RawMessage `json:"object"`
		} `json:"data"`
	}
	list[T any] struct {
		Object  string `json:"object"`
		Data    []T    `json:"data"`
		HasMore bool   `json:"has_more"`
	}
)

// testExpYear is a card expiry year safely in the future.
var testExpYear = time.Now().Year() + 3

// cardBody is a tokenization request.
func cardBody(number, cvc string) map[string]any {
	return map[string]any{"card": map[string]any{
		"number": number, "exp_month": 12, "exp_year": testExpYear, "cvc": cvc, "holder_name": "Ada Lovelace",
	}}
}

// tokenize makes a token for the card and checks its summary.
func (c *client) tokenize(number, cvc string) token {
	c.t.Helper()
	var tok token
	r := c.expect(http.StatusOK, &tok, "POST", "/v1/tokens", cardBody(number, cvc))
	if !strings.HasPrefix(tok.ID, "tok_") || tok.Card.Last4 != number[len(number)-4:] || tok.Card.First6 != number[:6] {
		c.t.Fatalf("POST /v1/tokens(%s...) = %s; want tok_ with first6 %s and last4 %s",
			number[:6], r.Body, number[:6], number[len(number)-4:])
	}
	return tok
}

// paymentBody is a payment request for a token.
func paymentBody(tok string, amount int64, currency, captureMethod string) map[string]any {
	return map[string]any{
		"amount": amount, "currency": currency, "capture_method": captureMethod,
		"payment_method": map[string]any{"type": "card", "card": map[string]any{"token": tok}},
	}
}

// idem returns the Idempotency-Key header pair.
func idem(key string) []string { return []string{"Idempotency-Key", key} }

// retryUntilDone sends the request until it is no longer answered with
// 409 idempotency_in_progress (the previous holder's lease must expire
// first), honouring Retry-After, and returns the final response.
func (c *client) retryUntilDone(method, path string, body any, headers ...string) *response {
	c.t.Helper()
	deadline := time.Now().Add(requestTimeout)
	for {
		r := c.do(method, path, body, headers...)
		if r.Status != http.StatusConflict || r.ErrorCode() != "idempotency_in_progress" {
			return r
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s %s still in progress after %v: %v", method, path, requestTimeout, r)
		}
		wait := 100 * time.Millisecond
		if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err == nil && s > 0 {
			wait = min(time.Duration(s)*time.Second, 2*time.Second)
		}
		time.Sleep(wait)
	}
}

// decode unmarshals a response body or fails the test.
func decode(t *testing.T, r *response, v any) {
	t.Helper()
	if err := decodeBytes(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

func decodeBytes(b []byte, v any) error { return json.Unmarshal(b, v) }
