package api

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/accounts"
	"github.com/payloom/payloom/engine"
	"github.com/payloom/payloom/internal/canary"
	"github.com/payloom/payloom/processor/sandbox"
	"github.com/payloom/payloom/processor/simulator"
	"github.com/payloom/payloom/processor/stripe"
	"github.com/payloom/payloom/sqlite"
	"github.com/payloom/payloom/vault"
	"github.com/payloom/payloom/webhook"
)

// harnessConnectors builds processor accounts' connectors, as
// cmd/payloom's factory does, for the connectors these tests create.
func harnessConnectors(connector, name string, creds map[string]payloom.Secret) (payloom.Processor, error) {
	switch connector {
	case payloom.ConnectorSimulator:
		return simulator.NewConnector(creds["base_url"].Reveal(), simulator.ConnectorOptions{Name: name}), nil
	case payloom.ConnectorStripe:
		return stripe.New(stripe.Options{Name: name, APIKey: creds["api_key"].Reveal(), BackendURL: creds["backend_url"].Reveal()}), nil
	}
	return nil, fmt.Errorf("no %s connector in the API tests", connector)
}

// harnessPublicURL is the engine's public URL in these tests: payment_url,
// receipt_url and next_action are built on it.
const harnessPublicURL = "https://pay.example"

// Test cards of the sandbox processor.
const (
	cardApprove = "4242424242424242"
	cardDecline = "4000000000000002"
	testCVC     = "737"
)

// harness is the real stack: a SQLite file in a temporary directory, the
// vault, the sandbox processor, the engine and this API, served over HTTP
// on 127.0.0.1. Every response it receives is validated against
// openapi.json.
type harness struct {
	t      *testing.T
	url    string
	client *http.Client
	eng    *engine.Engine
	store  *sqlite.Store
	logs   *lockedBuffer
	gate   *gatedProcessor
	spec   *specValidator
	// webhooks is the real webhook service on the same store; notified
	// counts Config.Notify calls.
	webhooks *webhook.Service
	notified atomic.Int64
	routes   *http.ServeMux // finds the route pattern of a request
	// canary records responses, logs and the database for the PAN scan
	// (nil unless PAYLOOM_CANARY_DIR is set).
	canary *canary.Recorder
	db     *sql.DB // see rawDB
	// processors is the processor-account service.
	processors *accounts.Service
}

type harnessOptions struct {
	// gate makes every authorization wait for gate.release.
	gate bool
	// ready is Config.Ready.
	ready func(ctx context.Context) error
	// payments, if set, wraps the engine's PaymentService (to inject
	// faults).
	payments func(payloom.PaymentService) payloom.PaymentService
}

func newHarness(t *testing.T, opts harnessOptions) *harness {
	t.Helper()
	ctx := context.Background()
	rec, err := canary.New("api-" + t.Name())
	if err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(t.TempDir(), "payloom.db")
	logs := &lockedBuffer{}
	// Registered first, so it runs last: after the server and the store
	// are closed, every log line is written and the file is quiet.
	t.Cleanup(func() { recordCanary(t, rec, logs, dbPath) })
	st, err := sqlite.Open(dbPath)
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	keys, err := vault.NewKeys(bytes.Repeat([]byte{7}, vault.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	v := vault.New(st, keys, vault.Options{})
	var proc payloom.Processor = sandbox.New(st, sandbox.Options{AllowLivemode: true})
	h := &harness{t: t, store: st, logs: logs, spec: loadSpec(t), canary: rec}
	if opts.gate {
		h.gate = &gatedProcessor{Processor: proc, entered: make(chan struct{}, 16), release: make(chan struct{})}
		proc = h.gate
	}
	logger := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.eng = engine.New(engine.Config{
		Store: st, Vault: v, Logger: logger, PublicURL: harnessPublicURL,
		Processor: func(payloom.Scope) (payloom.Processor, error) { return proc, nil },
	})
	var payments payloom.PaymentService = h.eng
	if opts.payments != nil {
		payments = opts.payments(h.eng)
	}
	h.webhooks = webhook.NewService(st, webhook.Options{Logger: logger})
	h.processors = accounts.New(st, v, harnessConnectors, accounts.Options{Sandbox: proc, Health: h.eng.ProcessorHealth, Logger: logger})
	srv := httptest.NewServer(New(Config{
		Payments: payments, Idempotency: h.eng, Auth: h.eng, Vault: v, Webhooks: h.webhooks,
		Customers: h.eng, Audit: h.eng, Processors: h.processors,
		Notify: func() { h.notified.Add(1) }, Logger: logger, Ready: opts.ready,
	}))
	t.Cleanup(srv.Close)
	h.url, h.client = srv.URL, srv.Client()

	h.routes = http.NewServeMux()
	for _, rt := range Routes() {
		h.routes.Handle(rt.Method+" "+rt.Pattern, http.NotFoundHandler())
	}
	return h
}

// rawDB returns a read-only handle on the harness's SQLite file, for tests
// that look at stored rows directly.
func (h *harness) rawDB() *sql.DB {
	h.t.Helper()
	if h.db == nil {
		db, err := sql.Open("sqlite3", "file:"+h.store.Path()+"?mode=ro")
		if err != nil {
			h.t.Fatal(err)
		}
		h.t.Cleanup(func() { db.Close() })
		h.db = db
	}
	return h.db
}

// recordCanary writes the test's logs and a dump of its database into the
// canary directory, for the PAN scan after the suite.
func recordCanary(t *testing.T, rec *canary.Recorder, logs *lockedBuffer, dbPath string) {
	if rec == nil {
		return
	}
	if err := rec.Close(); err != nil {
		t.Error(err)
	}
	if err := rec.WriteFile(".log", []byte(logs.String())); err != nil {
		t.Error(err)
	}
	db, err := sql.Open("sqlite3", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Error(err)
		return
	}
	defer db.Close()
	if err := rec.DumpDB(db, canary.SQLite); err != nil {
		t.Errorf("canary dump of %s: %v", dbPath, err)
	}
}

// merchant creates a merchant and returns its ID.
func (h *harness) merchant(m *payloom.Merchant) string {
	h.t.Helper()
	if m == nil {
		m = &payloom.Merchant{}
	}
	if m.Name == "" {
		m.Name = "Shop"
	}
	if err := h.eng.CreateMerchant(context.Background(), m); err != nil {
		h.t.Fatalf("CreateMerchant: %v", err)
	}
	return m.ID
}

// key creates an API key ("" merchant: a platform key) and returns the
// secret.
func (h *harness) key(merchantID string, live bool) string {
	h.t.Helper()
	secret, _ := h.newKey(merchantID, live)
	return secret
}

// newKey creates an API key and returns the secret and the key's ID.
func (h *harness) newKey(merchantID string, live bool) (secret, id string) {
	h.t.Helper()
	k, s, err := h.eng.CreateAPIKey(context.Background(), merchantID, live)
	if err != nil {
		h.t.Fatalf("CreateAPIKey: %v", err)
	}
	return s.Reveal(), k.ID
}

// response is one HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

func (r *response) str(path ...string) string {
	var cur any = r.json
	for _, p := range path {
		m, _ := cur.(map[string]any)
		cur = m[p]
	}
	s, _ := cur.(string)
	return s
}

func (r *response) num(path ...string) int64 {
	var cur any = r.json
	for _, p := range path {
		m, _ := cur.(map[string]any)
		cur = m[p]
	}
	f, _ := cur.(float64)
	return int64(f)
}

// req is a request to send. body "" sends none.
type req struct {
	method, path, key, body string
	header                  map[string]string
}

// do sends a request and checks what every response must satisfy: a
// Request-Id header, a JSON body (with Content-Type application/json), one
// trailing newline, and a body that matches openapi.json for the route and
// status.
func (h *harness) do(r req) *response {
	h.t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr, err := http.NewRequest(r.method, h.url+r.path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	if r.body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.key != "" {
		hr.Header.Set("Authorization", "Bearer "+r.key)
	}
	for k, v := range r.header {
		if v == "" {
			hr.Header.Del(k)
		} else {
			hr.Header.Set(k, v)
		}
	}
	resp, err := h.client.Do(hr)
	if err != nil {
		h.t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	out := &response{status: resp.StatusCode, header: resp.Header}
	if out.body, err = io.ReadAll(resp.Body); err != nil {
		h.t.Fatal(err)
	}
	if err := h.canary.Response(r.method, r.path, out.status, out.body); err != nil {
		h.t.Error(err)
	}
	h.check(hr, out)
	return out
}

func (h *harness) check(hr *http.Request, out *response) {
	h.t.Helper()
	where := hr.Method + " " + hr.URL.Path
	if id := out.header.Get("Request-Id"); !payloom.HasPrefix(id, payloom.PrefixRequest) {
		h.t.Errorf("%s: Request-Id = %q; want req_...", where, id)
	}
	if ct := out.header.Get("Content-Type"); ct != "application/json" {
		h.t.Errorf("%s: Content-Type = %q; want application/json", where, ct)
	}
	if err := json.Unmarshal(out.body, &out.json); err != nil {
		h.t.Fatalf("%s: body %q is not a JSON object: %v", where, out.body, err)
	}
	_, pattern := h.routes.Handler(hr)
	if pattern != "" {
		pattern = pattern[strings.Index(pattern, " ")+1:]
	}
	if !bytes.HasSuffix(out.body, []byte("}\n")) || bytes.HasSuffix(out.body, []byte("\n\n")) {
		h.t.Errorf("%s: body %q does not end in one newline", where, out.body)
	}
	if err := h.spec.validate(hr.Method, pattern, out.status, out.body); err != nil {
		h.t.Errorf("%s -> %d %s\n%v", where, out.status, out.body, err)
	} else if pattern != "" {
		validated.add(hr.Method+" "+pattern, out.status)
	}
	if out.status >= 400 {
		if got := out.str("error", "request_id"); got != out.header.Get("Request-Id") && out.header.Get("Idempotent-Replayed") == "" {
			h.t.Errorf("%s: error.request_id = %q; want the Request-Id header %q", where, got, out.header.Get("Request-Id"))
		}
	}
}

// wantError checks an error response's status, code and param.
func wantError(t *testing.T, r *response, status int, code, param string) {
	t.Helper()
	if r.status != status || r.str("error", "code") != code || r.str("error", "param") != param {
		t.Fatalf("response = %d %s; want %d code %q param %q", r.status, r.body, status, code, param)
	}
}

func wantStatus(t *testing.T, r *response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("response = %d %s; want %d", r.status, r.body, status)
	}
}

// expYear is a card expiry year safely in the future.
var expYear = strconv.Itoa(time.Now().Year() + 3)

// tokenBody is a tokenization request for a test card.
func tokenBody(number string) string {
	return `{"card": {"number": "` + number + `", "exp_month": 12, "exp_year": ` + expYear + `, "cvc": "` + testCVC + `"}}`
}

// token tokenizes a card and returns the token ID.
func (h *harness) token(key, number string) string {
	h.t.Helper()
	r := h.do(req{method: "POST", path: "/v1/tokens", key: key, body: tokenBody(number)})
	wantStatus(h.t, r, 200)
	return r.str("id")
}

// pay creates a payment with a fresh token and returns the response.
func (h *harness) pay(key, number string, amount int64, extra string) *response {
	h.t.Helper()
	tok := h.token(key, number)
	body := `{"amount": ` + itoa(amount) + `, "currency": "usd", "payment_method": {"type": "card", "card": {"token": "` + tok + `"}}` + extra + `}`
	return h.do(req{method: "POST", path: "/v1/payments", key: key, body: body})
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// validated records which statuses of which routes were checked against
// openapi.json, so that TestMain can tell whether every endpoint was.
var validated = &coverage{seen: map[string]map[int]bool{}}

type coverage struct {
	mu   sync.Mutex
	seen map[string]map[int]bool
}

func (c *coverage) add(route string, status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen[route] == nil {
		c.seen[route] = map[int]bool{}
	}
	c.seen[route][status] = true
}

// missing lists the routes that did not get a validated 200, and the
// authenticated ones that did not get a validated 4xx.
func (c *coverage) missing() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, rt := range Routes() {
		name := rt.Method + " " + rt.Pattern
		seen := c.seen[name]
		if !seen[200] {
			out = append(out, name+": no 200")
		}
		if !rt.Auth {
			continue
		}
		client := false
		for st := range seen {
			client = client || (st >= 400 && st < 500)
		}
		if !client {
			out = append(out, name+": no 4xx")
		}
	}
	return out
}

// TestMain checks, after a full run, that every route answered both a
// success and (if it takes a key) a client error that matched the spec.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 && flag.Lookup("test.run").Value.String() == "" &&
		flag.Lookup("test.skip").Value.String() == "" && !testing.Short() {
		if miss := validated.missing(); len(miss) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: responses not validated against openapi.json:\n  %s\n", strings.Join(miss, "\n  "))
			code = 1
		}
	}
	os.Exit(code)
}

// lockedBuffer collects log output from concurrent handlers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// gatedProcessor is the sandbox with a gate: Authorize signals entered and
// waits for release, so a test can hold a request in flight for as long as
// it needs, without sleeping.
type gatedProcessor struct {
	payloom.Processor
	entered chan struct{}
	release chan struct{}
}

func (g *gatedProcessor) Authorize(ctx context.Context, r *payloom.AuthorizeRequest) (*payloom.AuthorizeResult, error) {
	g.entered <- struct{}{}
	select {
	case <-g.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.Processor.Authorize(ctx, r)
}
