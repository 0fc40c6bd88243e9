package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/sqlite"
	"github.com/payloom/payloom/webhook"
)

var ctx = context.Background()

// clock is a test clock that moves only when told. It starts at the real
// time, so the stores' time range and TLS never notice.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Millisecond)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// openStore opens and migrates a SQLite store at path, closed at cleanup.
func openStore(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatalf("sqlite.Open(%q): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func dbPath(t testing.TB) string { return filepath.Join(t.TempDir(), "payloom.db") }

// env is one store, a clock, a merchant and its test-mode scope, with the
// webhook service and a dispatcher on them.
type env struct {
	t     *testing.T
	store payloom.Store
	clock *clock
	scope payloom.Scope
	opts  webhook.Options
	svc   *webhook.Service
	disp  *webhook.Dispatcher
}

// newEnv builds an env; opts' Clock is set to the env's clock.
func newEnv(t *testing.T, opts webhook.Options) *env {
	t.Helper()
	e := &env{t: t, store: openStore(t, dbPath(t)), clock: newClock()}
	opts.Clock = e.clock.Now
	e.opts = opts
	e.scope = e.merchant()
	e.svc = webhook.NewService(e.store, opts)
	e.disp = webhook.NewDispatcher(e.store, opts)
	return e
}

// merchant creates a merchant and returns its test-mode scope.
func (e *env) merchant() payloom.Scope {
	e.t.Helper()
	m := &payloom.Merchant{ID: payloom.NewID(payloom.PrefixMerchant), Name: "Acme", MinAmount: 1, MaxAmount: 1e6,
		CreatedAt: e.clock.Now()}
	if err := e.store.Update(ctx, func(tx payloom.Tx) error { return tx.CreateMerchant(ctx, m) }); err != nil {
		e.t.Fatalf("CreateMerchant: %v", err)
	}
	return payloom.Scope{MerchantID: m.ID}
}

// endpoint creates an endpoint in scope for url and returns it with its
// secret.
func (e *env) endpoint(scope payloom.Scope, url string, events ...string) (*payloom.WebhookEndpoint, string) {
	e.t.Helper()
	if len(events) == 0 {
		events = []string{"*"}
	}
	ep, secret, err := e.svc.CreateEndpoint(ctx, scope, &payloom.WebhookEndpointCreate{URL: url, EnabledEvents: events})
	if err != nil {
		e.t.Fatalf("CreateEndpoint(%q, %v): %v", url, events, err)
	}
	return ep, secret.Reveal()
}

// event commits an event of typ about a made-up payment in scope.
func (e *env) event(scope payloom.Scope, typ payloom.EventType) *payloom.Event {
	e.t.Helper()
	obj := map[string]any{"id": payloom.NewID(payloom.PrefixPayment), "object": "payment", "amount": 1999, "currency": "EUR"}
	ev, err := payloom.NewEvent(scope, typ, obj["id"].(string), obj, e.clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.Update(ctx, func(tx payloom.Tx) error { return tx.CreateEvent(ctx, ev) }); err != nil {
		e.t.Fatalf("CreateEvent: %v", err)
	}
	return ev
}

// runOnce runs one dispatcher pass and fails the test on a store error.
func (e *env) runOnce(d *webhook.Dispatcher) int {
	e.t.Helper()
	n, err := d.RunOnce(ctx)
	if err != nil {
		e.t.Fatalf("RunOnce: %v", err)
	}
	return n
}

func (e *env) deliveries(scope payloom.Scope, eventID string) []*payloom.WebhookDelivery {
	e.t.Helper()
	var ds []*payloom.WebhookDelivery
	err := e.store.View(ctx, func(tx payloom.Tx) error {
		var err error
		ds, err = tx.ListWebhookDeliveries(ctx, scope, eventID)
		return err
	})
	if err != nil {
		e.t.Fatalf("ListWebhookDeliveries: %v", err)
	}
	return ds
}

// onlyDelivery returns the one delivery of an event.
func (e *env) onlyDelivery(scope payloom.Scope, eventID string) *payloom.WebhookDelivery {
	e.t.Helper()
	ds := e.deliveries(scope, eventID)
	if len(ds) != 1 {
		e.t.Fatalf("event %s has %d deliveries; want 1", eventID, len(ds))
	}
	return ds[0]
}

func (e *env) attempts(scope payloom.Scope, eventID string) []*payloom.WebhookAttempt {
	e.t.Helper()
	as, err := e.svc.ListDeliveryAttempts(ctx, scope, eventID)
	if err != nil {
		e.t.Fatalf("ListDeliveryAttempts(%s): %v", eventID, err)
	}
	return as
}

func (e *env) getEndpoint(scope payloom.Scope, id string) *payloom.WebhookEndpoint {
	e.t.Helper()
	ep, err := e.svc.Endpoint(ctx, scope, id)
	if err != nil {
		e.t.Fatalf("Endpoint(%s): %v", id, err)
	}
	return ep
}

func statusCodes(as []*payloom.WebhookAttempt) []int {
	out := make([]int, len(as))
	for i, a := range as {
		out[i] = a.StatusCode
	}
	return out
}

// request is one request a receiver got.
type request struct {
	header http.Header
	body   []byte
	at     time.Time // the test clock when it arrived
}

func (r request) id() string { return r.header.Get("webhook-id") }

// eventType decodes the event type from the body.
func (r request) eventType() string {
	var v struct{ Type string }
	json.Unmarshal(r.body, &v)
	return v.Type
}

// receiver is a real HTTP endpoint on 127.0.0.1 that records what it gets
// and answers what respond says (200 when respond is nil). respond gets
// how many earlier requests carried the same webhook-id.
type receiver struct {
	srv   *httptest.Server
	clock *clock

	mu       sync.Mutex
	respond  func(w http.ResponseWriter, r *http.Request, seen int)
	got      []request
	seen     map[string]int
	inFlight map[string]int
	overlaps []string // webhook-ids received while a request with the same id was in flight
}

func newReceiver(t *testing.T, c *clock, respond func(w http.ResponseWriter, r *http.Request, seen int)) *receiver {
	t.Helper()
	rc := &receiver{clock: c, respond: respond, seen: map[string]int{}, inFlight: map[string]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.handle))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) URL() string { return rc.srv.URL + "/hooks?tenant=1" }

func (rc *receiver) handle(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id := r.Header.Get("webhook-id")
	rc.mu.Lock()
	if rc.inFlight[id] > 0 {
		rc.overlaps = append(rc.overlaps, id)
	}
	rc.inFlight[id]++
	seen := rc.seen[id]
	rc.seen[id]++
	rc.got = append(rc.got, request{header: r.Header.Clone(), body: body, at: rc.clock.Now()})
	respond := rc.respond
	rc.mu.Unlock()
	defer func() {
		rc.mu.Lock()
		rc.inFlight[id]--
		rc.mu.Unlock()
	}()
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if respond == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	respond(w, r, seen)
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.got...)
}

// verify fails the test unless req verifies under secret at its arrival.
func verify(t *testing.T, secret string, req request) {
	t.Helper()
	if err := webhook.VerifyAt(secret, req.header, req.body, 0, req.at); err != nil {
		t.Errorf("receiver: VerifyAt(request %s) = %v; want nil", req.id(), err)
	}
}
