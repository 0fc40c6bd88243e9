package main

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/payloom/payloom/internal/canary"
)

// syncBuffer is a bytes.Buffer safe for a server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testMain returns a Main with captured output and the given environment.
func testMain(env map[string]string) (*Main, *syncBuffer, *syncBuffer) {
	var out, errb syncBuffer
	return &Main{
		Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string { return env[k] },
	}, &out, &errb
}

// run runs a command in-process and returns its stdout, stderr and error.
func run(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	m, out, errb := testMain(env)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := m.Run(ctx, args)
	return out.String(), errb.String(), err
}

// mustRun is run that fails the test on error.
func mustRun(t *testing.T, env map[string]string, args ...string) (string, string) {
	t.Helper()
	out, errb, err := run(t, env, args...)
	if err != nil {
		t.Fatalf("payloom %s: %v\nstderr: %s", strings.Join(args, " "), err, errb)
	}
	return out, errb
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
	r, err := canary.New("cmd-" + t.Name())
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

// readBody reads and closes a response body, recording it for the canary.
func readBody(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := canaryFor(t).Response(resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, b); err != nil {
		t.Error(err)
	}
	return b
}

// recordServer writes a server's output (its logs) and a dump of its
// SQLite store into the canary directory.
func recordServer(t *testing.T, rec *canary.Recorder, dataDir string, out, errb *syncBuffer) {
	if rec == nil {
		return
	}
	if err := rec.WriteFile(".log", []byte(out.String()+errb.String())); err != nil {
		t.Error(err)
	}
	path := filepath.Join(dataDir, dbFileName)
	if _, err := os.Stat(path); err != nil {
		return // a server that failed before opening its store
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Error(err)
		return
	}
	defer db.Close()
	if err := rec.DumpDB(db, canary.SQLite); err != nil {
		t.Errorf("canary dump: %v", err)
	}
}

// serveInProcess runs payloom serve in a goroutine until the test ends and
// returns its base URL and stdout. With the PAN canary on, the server logs
// at debug level, and its logs and database are recorded when it stops.
func serveInProcess(t *testing.T, env map[string]string, args ...string) (url string, stdout *syncBuffer) {
	t.Helper()
	rec := canaryFor(t)
	if rec != nil {
		env = maps.Clone(env)
		if env == nil {
			env = map[string]string{}
		}
		env["PAYLOOM_LOG_LEVEL"] = "debug"
	}
	m, out, errb := testMain(env)
	dataDir := env["PAYLOOM_DATA"]
	for i, a := range args {
		if a == "--data" && i+1 < len(args) {
			dataDir = args[i+1]
		}
	}
	ready := make(chan string, 1)
	m.Ready = func(u string) { ready <- u }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, append([]string{"serve"}, args...)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve returned %v; want nil after shutdown", err)
			}
		case <-time.After(time.Minute):
			t.Errorf("serve did not shut down within a minute")
		}
		recordServer(t, rec, dataDir, out, errb)
	})
	select {
	case url = <-ready:
		return url, out
	case err := <-done:
		t.Fatalf("serve exited before listening: %v\nstderr: %s", err, errb)
	case <-time.After(time.Minute):
		t.Fatalf("serve did not listen within a minute\nstderr: %s", errb)
	}
	return "", nil
}

func TestVersion(t *testing.T) {
	out, _ := mustRun(t, nil, "version")
	if want := "payloom dev\n"; out != want {
		t.Errorf("payloom version = %q; want %q", out, want)
	}
}

var (
	keyRE      = regexp.MustCompile(`sk_test_[0-9A-Za-z_]+`)
	merchantRE = regexp.MustCompile(`^mrch_[0-9a-z]{26}$`)
)

// TestServeFirstStartAndRestart checks the once-only banner, the address
// from the environment, readiness, and that the banner's key works.
func TestServeFirstStartAndRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	env := map[string]string{"PAYLOOM_DATA": dir, "PAYLOOM_ADDR": "127.0.0.1:0", "PAYLOOM_LOG_LEVEL": "warn"}

	// Each server is shut down by its subtest's cleanup, so the first is
	// gone before the second starts.
	t.Run("first", func(t *testing.T) {
		url, out := serveInProcess(t, env)
		if !strings.HasPrefix(url, "http://127.0.0.1:") || strings.HasSuffix(url, ":0") {
			t.Fatalf("listening url = %q; want a real loopback port", url)
		}
		stdout := out.String()
		key := keyRE.FindString(stdout)
		if key == "" || !strings.Contains(stdout, "Merchant ID:  mrch_") || !strings.Contains(stdout, "payloom listening on "+url) {
			t.Fatalf("first start stdout = %q; want a merchant, a test key and the address", stdout)
		}
		if got := strings.Count(stdout, key); got != 2 {
			t.Errorf("key printed %d times; want twice (the key line and the curl example)", got)
		}
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("data dir mode = %v, %v; want 0700", fi.Mode().Perm(), err)
		}
		for _, tc := range []struct {
			path, key string
			want      int
		}{
			{"/v1/payments", key, http.StatusOK},
			{"/v1/payments", "", http.StatusUnauthorized},
		} {
			req, _ := http.NewRequest("GET", url+tc.path, nil)
			if tc.key != "" {
				req.Header.Set("Authorization", "Bearer "+tc.key)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			readBody(t, resp)
			if resp.StatusCode != tc.want {
				t.Errorf("GET %s (key %v) = %d; want %d", tc.path, tc.key != "", resp.StatusCode, tc.want)
			}
		}
	})

	t.Run("second", func(t *testing.T) {
		// The flag wins over the environment.
		env := map[string]string{"PAYLOOM_DATA": dir, "PAYLOOM_ADDR": "256.0.0.1:bad", "PAYLOOM_LOG_LEVEL": "warn"}
		url, out := serveInProcess(t, env, "--addr", "127.0.0.1:0")
		if s := out.String(); strings.Contains(s, "sk_") || s != "payloom listening on "+url+"\n" {
			t.Errorf("second start stdout = %q; want only the listening line", s)
		}
	})
}

func TestServeRejectsBadConfiguration(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string
	}{
		{"log level", nil, []string{"--log-level", "loud"}, "invalid log level"},
		{"log level env", map[string]string{"PAYLOOM_LOG_LEVEL": "loud"}, nil, "PAYLOOM_LOG_LEVEL"},
		{"ttl env", map[string]string{"PAYLOOM_IDEMPOTENCY_TTL": "a day"}, nil, "PAYLOOM_IDEMPOTENCY_TTL"},
		{"ttl shorter than lock", nil, []string{"--idempotency-ttl", "1s", "--idempotency-lock-timeout", "2s"}, "idempotency-ttl"},
		{"latency env", map[string]string{"PAYLOOM_SANDBOX_LATENCY": "-1s"}, nil, "sandbox-latency"},
		{"fault phase", map[string]string{"PAYLOOM_FAULT_CRASH_AFTER": "lunch"}, nil, "PAYLOOM_FAULT_CRASH_AFTER"},
		{"address", nil, []string{"--addr", "127.0.0.1:99999"}, "listen"},
		{"pprof on all interfaces", nil, []string{"--pprof-addr", "0.0.0.0:6060"}, "loopback"},
		{"pprof public env", map[string]string{"PAYLOOM_PPROF_ADDR": "10.1.2.3:6060"}, nil, "loopback"},
		{"pprof no port", nil, []string{"--pprof-addr", "127.0.0.1"}, "pprof-addr"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--data", dir}, tc.args...)
			_, _, err := run(t, tc.env, args...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("payloom %v = %v; want an error mentioning %q", args, err, tc.wantErr)
			}
		})
	}
}

// TestOperatorCommands covers merchants and keys: stdout holds only the
// id or the secret, errors are reported, and a revoked key stops working.
func TestOperatorCommands(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PAYLOOM_DATA": dir}

	out, _ := mustRun(t, env, "merchants", "create", "--name", "Shop", "--min-amount", "50", "--max-amount", "100000")
	mid := strings.TrimSpace(out)
	if !merchantRE.MatchString(mid) || strings.Count(out, "\n") != 1 {
		t.Fatalf("merchants create stdout = %q; want only a merchant id", out)
	}

	out, errOut := mustRun(t, env, "keys", "create", "--merchant", mid, "--mode", "test")
	if !regexp.MustCompile(`^sk_test_\S+\n$`).MatchString(out) {
		t.Fatalf("keys create stdout = %q; want only the secret", out)
	}
	keyID := regexp.MustCompile(`key_[0-9a-z]{26}`).FindString(errOut)
	if keyID == "" || strings.Contains(errOut, strings.TrimSpace(out)) {
		t.Fatalf("keys create stderr = %q; want the key id and not the secret", errOut)
	}
	out, _ = mustRun(t, env, "keys", "create", "--platform", "--mode", "live")
	if !strings.HasPrefix(out, "sk_live_") {
		t.Errorf("keys create --platform --mode live stdout = %q; want sk_live_...", out)
	}
	mustRun(t, env, "keys", "revoke", keyID)

	bad := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"merchants", "create"}, "name"},
		{[]string{"merchants", "create", "--name", "X", "--min-amount", "10", "--max-amount", "5"}, ""},
		{[]string{"keys", "create", "--merchant", mid, "--mode", "staging"}, "--mode"},
		{[]string{"keys", "create", "--merchant", mid, "--platform", "--mode", "test"}, "not both"},
		{[]string{"keys", "create", "--mode", "test"}, "--merchant"},
		{[]string{"keys", "create", "--merchant", "mrch_00000000000000000000000000", "--mode", "test"}, ""},
		{[]string{"keys", "revoke", "key_00000000000000000000000000"}, ""},
		{[]string{"keys", "revoke"}, "arg"},
	}
	for _, tc := range bad {
		out, _, err := run(t, env, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("payloom %v = %v; want an error mentioning %q", tc.args, err, tc.wantErr)
		}
		if out != "" {
			t.Errorf("payloom %v stdout = %q; want nothing on failure", tc.args, out)
		}
	}

	if _, errOut := mustRun(t, env, "migrate"); !strings.Contains(errOut, "up to date") {
		t.Errorf("migrate stderr = %q; want it to say the schema is up to date", errOut)
	}
}

func TestPrintBox(t *testing.T) {
	var b bytes.Buffer
	printBox(&b, []string{"ab", "", "abcd"})
	want := "+------+\n| ab   |\n|      |\n| abcd |\n+------+\n"
	if b.String() != want {
		t.Errorf("printBox = %q; want %q", b.String(), want)
	}
}
