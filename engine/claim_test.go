package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/engine"
	"github.com/payloom/payloom/processor/sandbox"
	"github.com/payloom/payloom/processor/simulator"
)

// countingStore counts the engine's write transactions.
type countingStore struct {
	payloom.Store
	updates, views atomic.Int64
}

func (s *countingStore) View(ctx context.Context, fn func(tx payloom.Tx) error) error {
	s.views.Add(1)
	return s.Store.View(ctx, fn)
}

func (s *countingStore) Update(ctx context.Context, fn func(tx payloom.Tx) error) error {
	s.updates.Add(1)
	return s.Store.Update(ctx, fn)
}

// countingVault counts the vault's reads of a card: Card, CardIn and
// Reveal each read it from the store (inCaller counts CardIn's, inside a
// transaction of the caller), RevealCard reveals a copy read before.
type countingVault struct {
	payloom.Vault
	reads, inCaller, revealed atomic.Int64
}

func (v *countingVault) CardIn(ctx context.Context, tx payloom.Tx, scope payloom.Scope, token string) (*payloom.Card, error) {
	v.reads.Add(1)
	v.inCaller.Add(1)
	return v.Vault.CardIn(ctx, tx, scope, token)
}

func (v *countingVault) Card(ctx context.Context, scope payloom.Scope, token string) (*payloom.Card, error) {
	v.reads.Add(1)
	return v.Vault.Card(ctx, scope, token)
}

func (v *countingVault) Reveal(ctx context.Context, scope payloom.Scope, token string) (*payloom.CardData, error) {
	v.reads.Add(1)
	v.revealed.Add(1)
	return v.Vault.Reveal(ctx, scope, token)
}

func (v *countingVault) RevealCard(ctx context.Context, scope payloom.Scope, card *payloom.Card) (*payloom.CardData, error) {
	v.revealed.Add(1)
	return v.Vault.RevealCard(ctx, scope, card)
}

// newCountingEnv is newEnv with the engine's store and vault counting
// their calls; configure, if not nil, changes the rest of the config.
func newCountingEnv(t *testing.T, configure func(*engine.Config)) (*env, *countingStore, *countingVault) {
	counter := &countingStore{}
	vault := &countingVault{}
	e := newEnv(t, func(c *engine.Config) {
		counter.Store = c.Store
		c.Store = counter
		vault.Vault = c.Vault
		c.Vault = vault
		if configure != nil {
			configure(c)
		}
	})
	return e, counter, vault
}

// newClaim is a Claim as the API makes it, with a Respond that renders the
// payment's ID and status (enough to tell which outcome it saw).
func newClaim(scope payloom.Scope, key string) *payloom.Claim {
	return &payloom.Claim{
		Scope: scope, Key: key, Method: "POST", Path: "/v1/payments", Fingerprint: "fp-" + key,
		Respond: func(v any) (int, []byte, bool) {
			p := v.(*payloom.Payment)
			b, _ := json.Marshal(map[string]string{"id": p.ID, "status": string(p.Status)})
			return 200, b, true
		},
	}
}

func (e *env) idempotencyRecord(key string) (*payloom.IdempotencyKey, error) {
	var rec *payloom.IdempotencyKey
	err := e.store.View(e.ctx, func(tx payloom.Tx) error {
		var err error
		rec, err = tx.GetIdempotencyKey(e.ctx, e.scope, key)
		return err
	})
	return rec, err
}

func (e *env) paymentCount() int {
	e.t.Helper()
	l, err := e.eng.ListPayments(e.ctx, e.scope, payloom.PaymentFilter{ListParams: payloom.ListParams{Limit: 100}})
	if err != nil {
		e.t.Fatalf("ListPayments: %v", err)
	}
	return len(l.Data)
}

// TestCreatePaymentClaimed: the claimed path writes the key's record with
// the payment and stores the response with the outcome, in two of the
// engine's transactions instead of the four of Begin, CreatePayment and
// Complete, and it reads the card once; a retry through Begin replays
// exactly the stored response.
func TestCreatePaymentClaimed(t *testing.T) {
	e, counter, vault := newCountingEnv(t, nil)
	tests := []struct {
		card   string
		status payloom.PaymentStatus
	}{
		{sandbox.CardVisa, payloom.PaymentStatusCaptured},
		{sandbox.CardDeclined, payloom.PaymentStatusDeclined},
		{sandbox.CardRequires3DS, payloom.PaymentStatusRequiresAction},
	}
	for i, tt := range tests {
		key := fmt.Sprintf("key-%d", i)
		req := paymentReq(e.token(tt.card), 1000, payloom.CaptureMethodAutomatic)
		claim := newClaim(e.scope, key)
		before, reads, revealed := counter.updates.Load(), vault.reads.Load(), vault.revealed.Load()
		p, err := e.eng.CreatePaymentClaimed(e.ctx, claim, req)
		if err != nil {
			t.Fatalf("CreatePaymentClaimed(%s): %v", tt.card, err)
		}
		if n := counter.updates.Load() - before; n != 2 {
			t.Errorf("CreatePaymentClaimed(%s): %d engine write transactions; want 2", tt.card, n)
		}
		if r, v := vault.reads.Load()-reads, vault.revealed.Load()-revealed; r != 1 || v != 1 {
			t.Errorf("CreatePaymentClaimed(%s): %d reads of the card, %d reveals; want 1 and 1", tt.card, r, v)
		}
		if p.Status != tt.status {
			t.Errorf("CreatePaymentClaimed(%s).Status = %q; want %q", tt.card, p.Status, tt.status)
		}
		if claim.Record == nil || !claim.Completed || claim.Code != 200 {
			t.Fatalf("claim after CreatePaymentClaimed(%s) = %+v; want a completed record with code 200", tt.card, claim)
		}
		want := fmt.Sprintf(`{"id":%q,"status":%q}`, p.ID, tt.status)
		if string(claim.Body) != want {
			t.Errorf("claim.Body = %s; want %s", claim.Body, want)
		}
		if p.CreationKey != claim.Record.ID {
			t.Errorf("payment.CreationKey = %q; want the record's ID %q", p.CreationKey, claim.Record.ID)
		}
		stored, err := e.idempotencyRecord(key)
		if err != nil {
			t.Fatalf("GetIdempotencyKey(%q): %v", key, err)
		}
		if !stored.Completed() || string(stored.ResponseBody) != want || stored.LockToken != "" {
			t.Errorf("stored record = %+v; want completed with %s and no lock", stored, want)
		}
		rec, held, err := e.eng.Begin(e.ctx, e.scope, key, "POST", "/v1/payments", "fp-"+key)
		if err != nil || held || string(rec.ResponseBody) != want {
			t.Errorf("Begin(%q) after the claimed create = held %v, body %s, err %v; want a replay of %s", key, held, rec.ResponseBody, err, want)
		}
	}
	if c := e.charges(); c != 1 {
		t.Errorf("sandbox charges = %d; want 1", c)
	}
}

// TestCreatePaymentClaimedKeyTaken: a key that has a record is not
// claimed again and nothing is written: the caller goes through Begin.
func TestCreatePaymentClaimedKeyTaken(t *testing.T) {
	e := newEnv(t)
	tok := e.token(sandbox.CardVisa)
	if _, err := e.eng.CreatePaymentClaimed(e.ctx, newClaim(e.scope, "k"), paymentReq(tok, 1000, payloom.CaptureMethodAutomatic)); err != nil {
		t.Fatalf("first CreatePaymentClaimed: %v", err)
	}
	claim := newClaim(e.scope, "k")
	p, err := e.eng.CreatePaymentClaimed(e.ctx, claim, paymentReq(tok, 1000, payloom.CaptureMethodAutomatic))
	if err == nil || claim.Record != nil || claim.Completed {
		t.Fatalf("second CreatePaymentClaimed = %v, %v, claim %+v; want an error and nothing claimed", p, err, claim)
	}
	if n := e.paymentCount(); n != 1 {
		t.Errorf("payments = %d; want 1", n)
	}
	if c := e.charges(); c != 1 {
		t.Errorf("sandbox charges = %d; want 1", c)
	}
}

// TestCreatePaymentClaimedRefused: a request that fails a check claims
// nothing, and one without a payment method (paid on the hosted page) is
// left to the usual path.
func TestCreatePaymentClaimedRefused(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		req  *payloom.PaymentCreate
	}{
		{"unknown token", paymentReq("tok_missing", 1000, payloom.CaptureMethodAutomatic)},
		{"below the minimum", paymentReq(e.token(sandbox.CardVisa), 0, payloom.CaptureMethodAutomatic)},
		{"no payment method", &payloom.PaymentCreate{Amount: 1000, Currency: "USD"}},
	}
	for _, tt := range tests {
		claim := newClaim(e.scope, "k-"+tt.name)
		if _, err := e.eng.CreatePaymentClaimed(e.ctx, claim, tt.req); err == nil || claim.Record != nil {
			t.Errorf("CreatePaymentClaimed(%s) = %v, record %v; want an error and nothing claimed", tt.name, err, claim.Record)
		}
		if _, err := e.idempotencyRecord(claim.Key); !payloom.IsCode(err, payloom.CodeNotFound) {
			t.Errorf("record of %q after CreatePaymentClaimed(%s): %v; want not found", claim.Key, tt.name, err)
		}
	}
	if n := e.paymentCount(); n != 0 {
		t.Errorf("payments = %d; want 0", n)
	}
}

// noAnswer is a processor that never answers.
type noAnswer struct{ *sandbox.Processor }

func (noAnswer) Authorize(context.Context, *payloom.AuthorizeRequest) (*payloom.AuthorizeResult, error) {
	return nil, errors.New("connection reset")
}

// TestCreatePaymentClaimedUnfinished: when the request ends without a
// recorded outcome (no answer from the processor), the record is claimed
// and held but not completed: the API completes it with the payment in
// processing, or releases it.
func TestCreatePaymentClaimedUnfinished(t *testing.T) {
	e := newEnv(t)
	e.setProcessor(noAnswer{e.sandbox})
	claim := newClaim(e.scope, "k")
	p, err := e.eng.CreatePaymentClaimed(e.ctx, claim, paymentReq(e.token(sandbox.CardVisa), 1000, payloom.CaptureMethodAutomatic))
	if err != nil {
		t.Fatalf("CreatePaymentClaimed: %v", err)
	}
	if p.Status != payloom.PaymentStatusProcessing || claim.Record == nil || claim.Completed {
		t.Fatalf("CreatePaymentClaimed = status %q, claim %+v; want processing, a held record, not completed", p.Status, claim)
	}
	if err := e.eng.Complete(e.ctx, claim.Record, 200, []byte(`{}`)); err != nil {
		t.Errorf("Complete of the claimed record: %v; want nil (the request holds it)", err)
	}
}

// TestCreatePaymentClaimedLeaseLost: when a retry took the record over
// while the processor answered, the outcome is still recorded and the
// response is left to the record's new holder.
func TestCreatePaymentClaimedLeaseLost(t *testing.T) {
	e := newEnv(t)
	claim := newClaim(e.scope, "k")
	e.setProcessor(&onAuthorize{Processor: e.sandbox, hook: func() {
		e.clock.Advance(e.cfg.LockTimeout + 1)
		if _, held, err := e.eng.Begin(e.ctx, e.scope, "k", "POST", "/v1/payments", "fp-k"); err != nil || !held {
			t.Errorf("Begin by the retry = held %v, %v; want the lease taken over", held, err)
		}
	}})
	p, err := e.eng.CreatePaymentClaimed(e.ctx, claim, paymentReq(e.token(sandbox.CardVisa), 1000, payloom.CaptureMethodAutomatic))
	if err != nil {
		t.Fatalf("CreatePaymentClaimed: %v", err)
	}
	if p.Status != payloom.PaymentStatusCaptured || claim.Completed {
		t.Errorf("CreatePaymentClaimed = status %q, completed %v; want captured, not completed", p.Status, claim.Completed)
	}
	if got := e.payment(p.ID).Status; got != payloom.PaymentStatusCaptured {
		t.Errorf("stored status = %q; want captured", got)
	}
	stored, err := e.idempotencyRecord("k")
	if err != nil || stored.Completed() {
		t.Errorf("record = %+v, %v; want held by the retry, not completed", stored, err)
	}
}

// TestCreatePaymentClaimedCrash: a crash after the payment_created phase
// leaves the record and the payment together; the retry, once the lease
// expired, takes the record over and resumes the same payment.
func TestCreatePaymentClaimedCrash(t *testing.T) {
	e := newEnv(t)
	req := paymentReq(e.token(sandbox.CardVisa), 1000, payloom.CaptureMethodAutomatic)
	claim := newClaim(e.scope, "k")
	e.crashAt(engine.PhasePaymentCreated)
	mustCrash(t, engine.PhasePaymentCreated, func() { e.eng.CreatePaymentClaimed(e.ctx, claim, req) })
	if claim.Record == nil {
		t.Fatal("claim.Record = nil after payment_created; want the claimed record")
	}
	e.hook.Store(nil)
	if _, err := e.eng.CreatePaymentClaimed(e.ctx, newClaim(e.scope, "k"), req); err == nil {
		t.Fatal("CreatePaymentClaimed of the retry = nil error; want the key taken")
	}
	e.clock.Advance(e.cfg.LockTimeout + 1)
	rec, held, err := e.eng.Begin(e.ctx, e.scope, "k", "POST", "/v1/payments", "fp-k")
	if err != nil || !held || rec.ID != claim.Record.ID {
		t.Fatalf("Begin after the lease expired = %v, held %v, %v; want record %s taken over", rec, held, err, claim.Record.ID)
	}
	p, err := e.eng.CreatePayment(e.ctx, e.scope, rec.ID, req)
	if err != nil || p.Status != payloom.PaymentStatusCaptured {
		t.Fatalf("resumed CreatePayment = %v, %v; want captured", p, err)
	}
	if n, c := e.paymentCount(), e.charges(); n != 1 || c != 1 {
		t.Errorf("payments = %d, charges = %d; want 1 and 1", n, c)
	}
}

// TestClaimedRetryLeavesTheProbe: a retry of a used key claims nothing and
// is refused before routing, so it does not take a half-open circuit
// breaker's one probe: the next new payment probes the recovered
// processor.
func TestClaimedRetryLeavesTheProbe(t *testing.T) {
	e, a, _ := newBreakerEnv(t)
	req := paymentReq(e.token(simulator.CardApprove), 1000, "")
	if _, err := e.eng.CreatePaymentClaimed(e.ctx, newClaim(e.scope, "k"), req); err != nil {
		t.Fatalf("CreatePaymentClaimed: %v", err)
	}
	for i := range 2 {
		if _, err := e.eng.CreatePayment(e.ctx, e.scope, fmt.Sprintf("op_%d", i), req); err != nil {
			t.Fatalf("CreatePayment: %v", err)
		}
	}
	if h := e.eng.ProcessorHealth(e.scope, "simA"); h.State != engine.BreakerOpen {
		t.Fatalf("simA breaker after 3 failures = %s; want open", h.State)
	}
	e.clock.Advance(time.Minute + time.Second)
	a.server.ClearRules()
	retry := newClaim(e.scope, "k")
	if _, err := e.eng.CreatePaymentClaimed(e.ctx, retry, req); err == nil || retry.Record != nil {
		t.Fatalf("retry of a used key = %v, record %v; want nothing claimed", err, retry.Record)
	}
	p, err := e.eng.CreatePayment(e.ctx, e.scope, "op_new", req)
	if err != nil {
		t.Fatalf("CreatePayment after the retry: %v", err)
	}
	if got := p.Attempts[0].Processor; got != "simA" {
		t.Errorf("first attempt of the next payment went to %s; want simA (the half-open breaker's probe)", got)
	}
	if h := e.eng.ProcessorHealth(e.scope, "simA"); h.State != engine.BreakerClosed {
		t.Errorf("simA breaker after the probe = %s; want closed", h.State)
	}
}

// ambiguousStore commits the first Update whose function it is told to
// watch for and then reports a store error, as a lost answer to COMMIT
// would.
type ambiguousStore struct {
	payloom.Store
	fail atomic.Bool
}

func (s *ambiguousStore) Update(ctx context.Context, fn func(tx payloom.Tx) error) error {
	err := s.Store.Update(ctx, fn)
	if err == nil && s.fail.CompareAndSwap(true, false) {
		return payloom.Errorf(payloom.CodeInternal, "commit: connection reset")
	}
	return err
}

// TestCreatePaymentClaimedAmbiguousCommit: when the store cannot say
// whether payment_created committed, the claim reports the record so that
// the API answers 5xx and releases it: the retry resumes the payment at
// once instead of waiting out a lease nobody holds.
func TestCreatePaymentClaimedAmbiguousCommit(t *testing.T) {
	amb := &ambiguousStore{}
	e := newEnv(t, func(c *engine.Config) {
		amb.Store = c.Store
		c.Store = amb
	})
	req := paymentReq(e.token(sandbox.CardVisa), 1000, payloom.CaptureMethodAutomatic)
	claim := newClaim(e.scope, "k")
	amb.fail.Store(true)
	if _, err := e.eng.CreatePaymentClaimed(e.ctx, claim, req); payloom.ErrorCode(err) != payloom.CodeInternal || claim.Record == nil {
		t.Fatalf("CreatePaymentClaimed = %v, record %v; want an internal error and the record", err, claim.Record)
	}
	if err := e.eng.Release(e.ctx, claim.Record); err != nil {
		t.Fatalf("Release of the committed record: %v", err)
	}
	rec, held, err := e.eng.Begin(e.ctx, e.scope, "k", "POST", "/v1/payments", "fp-k")
	if err != nil || !held || rec.ID != claim.Record.ID {
		t.Fatalf("Begin of the retry = %v, held %v, %v; want record %s, held", rec, held, err, claim.Record.ID)
	}
	p, err := e.eng.CreatePayment(e.ctx, e.scope, rec.ID, req)
	if err != nil || p.Status != payloom.PaymentStatusCaptured {
		t.Fatalf("resumed CreatePayment = %v, %v; want captured", p, err)
	}
	if n, c := e.paymentCount(), e.charges(); n != 1 || c != 1 {
		t.Errorf("payments = %d, charges = %d; want 1 and 1", n, c)
	}
}

// TestPurgeInChunks: a purge that fell behind deletes in transactions of
// at most a thousand records, all of them in one pass.
func TestPurgeInChunks(t *testing.T) {
	counter := &countingStore{}
	e := newEnv(t, func(c *engine.Config) {
		counter.Store = c.Store
		c.Store = counter
	})
	const n = 2500
	old := e.clock.Now().Add(-48 * time.Hour)
	err := e.store.Update(e.ctx, func(tx payloom.Tx) error {
		for i := range n {
			k := &payloom.IdempotencyKey{ID: payloom.NewID(payloom.PrefixIdempotency), MerchantID: e.scope.MerchantID,
				Key: fmt.Sprintf("old-%d", i), Fingerprint: "fp", Method: "POST", Path: "/v1/payments", CreatedAt: old}
			if err := tx.CreateIdempotencyKey(e.ctx, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("creating old keys: %v", err)
	}
	before := counter.updates.Load()
	ran, purged, err := e.eng.PurgePass(e.ctx)
	if err != nil || !ran || purged != n {
		t.Fatalf("PurgePass = %v, %d, %v; want true, %d, nil", ran, purged, err, n)
	}
	if txs := counter.updates.Load() - before; txs < 3 {
		t.Errorf("PurgePass used %d transactions for %d records; want at least 3 (at most 1000 each)", txs, n)
	}
	if _, err := e.idempotencyRecord("old-0"); !payloom.IsCode(err, payloom.CodeNotFound) {
		t.Errorf("old-0 after the purge: %v; want not found", err)
	}
}

// preparedRouter is a StaticRouter that is also an engine.PreparedRouter,
// counting how it is asked.
type preparedRouter struct {
	engine.StaticRouter
	routes, prepared atomic.Int64
	// inErr, if set, is RouterIn's answer.
	inErr error
}

func (r *preparedRouter) Route(scope payloom.Scope, p *payloom.Payment) ([]payloom.Processor, error) {
	r.routes.Add(1)
	return r.StaticRouter.Route(scope, p)
}

func (r *preparedRouter) RouterIn(ctx context.Context, tx payloom.Tx, scope payloom.Scope) (func(*payloom.Payment) ([]payloom.Processor, error), error) {
	r.prepared.Add(1)
	if r.inErr != nil {
		return nil, r.inErr
	}
	if _, err := tx.GetMerchant(ctx, scope.MerchantID); err != nil { // a read in the engine's transaction
		return nil, err
	}
	return func(p *payloom.Payment) ([]payloom.Processor, error) { return r.StaticRouter.Route(scope, p) }, nil
}

// TestPaymentReadsOnce: a card payment reads its merchant, key, card and
// route in one read transaction of the engine (the vault's CardIn and the
// router's RouterIn inside it), and routes by that read.
func TestPaymentReadsOnce(t *testing.T) {
	router := &preparedRouter{}
	e, counter, vault := newCountingEnv(t, func(c *engine.Config) { c.Router = router })
	router.StaticRouter = engine.StaticRouter{Test: []payloom.Processor{e.sandbox}}
	for i, claimed := range []bool{true, false} {
		req := paymentReq(e.token(sandbox.CardVisa), 1000, payloom.CaptureMethodAutomatic)
		views, reads, inCaller := counter.views.Load(), vault.reads.Load(), vault.inCaller.Load()
		var p *payloom.Payment
		var err error
		if claimed {
			p, err = e.eng.CreatePaymentClaimed(e.ctx, newClaim(e.scope, fmt.Sprintf("once-%d", i)), req)
		} else {
			p, err = e.eng.CreatePayment(e.ctx, e.scope, fmt.Sprintf("op_once_%d", i), req)
		}
		if err != nil || p.Status != payloom.PaymentStatusCaptured {
			t.Fatalf("create (claimed %v) = %+v, %v; want a captured payment", claimed, p, err)
		}
		if n := counter.views.Load() - views; n != 1 {
			t.Errorf("claimed %v: %d read transactions of the engine; want 1", claimed, n)
		}
		if r, in := vault.reads.Load()-reads, vault.inCaller.Load()-inCaller; r != 1 || in != 1 {
			t.Errorf("claimed %v: %d reads of the card, %d in the engine's transaction; want 1 and 1", claimed, r, in)
		}
	}
	if r, p := router.routes.Load(), router.prepared.Load(); r != 0 || p != 2 {
		t.Errorf("router: Route called %d times, RouterIn %d; want 0 and 2", r, p)
	}
}

// TestPaymentRoutesWhenRouterInFails: a router that cannot read its state
// in the engine's transaction is asked again with Route, in a read of its
// own, and the payment goes through.
func TestPaymentRoutesWhenRouterInFails(t *testing.T) {
	router := &preparedRouter{inErr: errors.New("routing state unreadable")}
	e, _, _ := newCountingEnv(t, func(c *engine.Config) { c.Router = router })
	router.StaticRouter = engine.StaticRouter{Test: []payloom.Processor{e.sandbox}}
	req := paymentReq(e.token(sandbox.CardVisa), 1000, payloom.CaptureMethodAutomatic)
	p, err := e.eng.CreatePaymentClaimed(e.ctx, newClaim(e.scope, "router-in-fails"), req)
	if err != nil || p.Status != payloom.PaymentStatusCaptured {
		t.Fatalf("CreatePaymentClaimed = %+v, %v; want a captured payment", p, err)
	}
	if r, in := router.routes.Load(), router.prepared.Load(); r != 1 || in != 1 {
		t.Errorf("router: Route called %d times, RouterIn %d; want 1 and 1", r, in)
	}
}
