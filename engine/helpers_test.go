package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/engine"
	"github.com/payloom/payloom/processor/sandbox"
	"github.com/payloom/payloom/sqlite"
	"github.com/payloom/payloom/vault"
)

// testClock is a clock tests move by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// syncBuffer collects log output from many goroutines.
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

// env is one engine on a real SQLite file with the real vault and sandbox.
type env struct {
	t        testing.TB
	ctx      context.Context
	store    *sqlite.Store
	vault    *vault.Vault
	sandbox  *sandbox.Processor
	eng      *engine.Engine
	clock    *testClock
	logs     *syncBuffer
	merchant *payloom.Merchant
	scope    payloom.Scope
	cfg      engine.Config

	// hook is the fault hook in force (nil: none).
	hook atomic.Pointer[func(string)]
	// proc, when set, replaces the sandbox as the test-mode processor.
	proc atomic.Pointer[payloom.Processor]
}

// newEnv opens a migrated store in t.TempDir() and an engine with a test
// clock, a lock timeout of 30s and a JSON log captured in env.logs. opts
// may change the engine's Config before New.
func newEnv(t testing.TB, opts ...func(*engine.Config)) *env {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "payloom.db"))
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	keys, err := vault.NewKeys(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatalf("vault.NewKeys: %v", err)
	}
	e := &env{
		t:       t,
		ctx:     ctx,
		store:   store,
		vault:   vault.New(store, keys, vault.Options{}),
		sandbox: sandbox.New(store, sandbox.Options{}),
		clock:   &testClock{now: time.Now().UTC()},
		logs:    &syncBuffer{},
	}
	e.cfg = engine.Config{
		Store: store,
		Vault: e.vault,
		Processor: func(scope payloom.Scope) (payloom.Processor, error) {
			if scope.Livemode {
				return nil, fmt.Errorf("no live processor")
			}
			if p := e.proc.Load(); p != nil {
				return *p, nil
			}
			return e.sandbox, nil
		},
		Clock:       e.clock.Now,
		Logger:      slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		LockTimeout: 30 * time.Second,
		FaultHook: func(phase string) {
			if h := e.hook.Load(); h != nil {
				(*h)(phase)
			}
		},
	}
	for _, o := range opts {
		o(&e.cfg)
	}
	e.eng = engine.New(e.cfg)
	e.merchant = &payloom.Merchant{Name: "Test Shop"}
	if err := e.eng.CreateMerchant(ctx, e.merchant); err != nil {
		t.Fatalf("CreateMerchant: %v", err)
	}
	e.scope = payloom.Scope{MerchantID: e.merchant.ID}
	return e
}

// setProcessor makes p the test-mode processor (nil: back to the sandbox).
func (e *env) setProcessor(p payloom.Processor) {
	if p == nil {
		e.proc.Store(nil)
		return
	}
	e.proc.Store(&p)
}

// crash is what the fault hook panics with to simulate a process dying
// right after a phase.
type crash struct{ phase string }

// crashAt makes the next time the engine reaches phase panic with crash.
func (e *env) crashAt(phase string) {
	var once atomic.Bool
	h := func(p string) {
		if p == phase && once.CompareAndSwap(false, true) {
			panic(crash{phase})
		}
	}
	e.hook.Store(&h)
}

// mustCrash runs fn and fails the test unless it panicked with crash{phase}.
func mustCrash(t testing.TB, phase string, fn func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if c, ok := r.(crash); !ok || c.phase != phase {
			t.Fatalf("expected a crash at %q, got %v", phase, r)
		}
	}()
	fn()
}

// token tokenizes a card number in the env's scope.
func (e *env) token(number string) string {
	e.t.Helper()
	return e.tokenIn(e.scope, number)
}

func (e *env) tokenIn(scope payloom.Scope, number string) string {
	e.t.Helper()
	tok, err := e.vault.Tokenize(e.ctx, scope, &payloom.CardInput{
		Number: payloom.Secret(number), ExpMonth: 12, ExpYear: time.Now().Year() + 3,
		CVC: "123", HolderName: "Ada Lovelace",
	})
	if err != nil {
		e.t.Fatalf("Tokenize: %v", err)
	}
	return tok.ID
}

func paymentReq(token string, amount int64, capture payloom.CaptureMethod) *payloom.PaymentCreate {
	return &payloom.PaymentCreate{
		Amount: amount, Currency: "USD", PaymentMethodType: payloom.PaymentMethodTypeCard,
		CardToken: token, CaptureMethod: capture, Reference: "order-1",
		Metadata: map[string]string{"order": "1"},
	}
}

// pay creates a payment with a fresh operation key and fails on error.
func (e *env) pay(number string, amount int64, capture payloom.CaptureMethod) *payloom.Payment {
	e.t.Helper()
	p, err := e.eng.CreatePayment(e.ctx, e.scope, payloom.NewID("op"), paymentReq(e.token(number), amount, capture))
	if err != nil {
		e.t.Fatalf("CreatePayment: %v", err)
	}
	return p
}

func (e *env) payment(id string) *payloom.Payment {
	e.t.Helper()
	p, err := e.eng.Payment(e.ctx, e.scope, id)
	if err != nil {
		e.t.Fatalf("Payment(%q): %v", id, err)
	}
	return p
}

// charges counts approved authorizations in the sandbox ledger.
func (e *env) charges() int {
	e.t.Helper()
	n, err := e.sandbox.Charges(e.ctx)
	if err != nil {
		e.t.Fatalf("Charges: %v", err)
	}
	return n
}

// ledger counts sandbox operations of a kind.
func (e *env) ledger(kind string) int {
	e.t.Helper()
	var n int
	err := e.store.View(e.ctx, func(tx payloom.Tx) error {
		var err error
		n, err = tx.CountSandboxOperations(e.ctx, kind, "")
		return err
	})
	if err != nil {
		e.t.Fatalf("CountSandboxOperations: %v", err)
	}
	return n
}

// events returns the events of an object, oldest first.
func (e *env) events(objectID string) []*payloom.Event {
	e.t.Helper()
	l, err := e.eng.ListEvents(e.ctx, e.scope, payloom.EventFilter{ListParams: payloom.ListParams{Limit: 100}, ObjectID: &objectID})
	if err != nil {
		e.t.Fatalf("ListEvents: %v", err)
	}
	out := slices.Clone(l.Data)
	slices.Reverse(out)
	return out
}

func eventTypes(evs []*payloom.Event) []payloom.EventType {
	out := []payloom.EventType{}
	for _, ev := range evs {
		out = append(out, ev.Type)
	}
	return out
}

func wantCode(t testing.TB, call string, err error, code string) {
	t.Helper()
	if got := payloom.ErrorCode(err); got != code {
		t.Fatalf("%s: error %v (code %q); want code %q", call, err, got, code)
	}
}
