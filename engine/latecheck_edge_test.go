package engine_test

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/engine"
	"github.com/payloom/payloom/processor/simulator"
)

// lostTxnLookup is a simulator connector whose Lookup loses the
// transaction ID (a connector bug): a reversal sent with it is refused as
// invalid, every time.
type lostTxnLookup struct{ *simulator.Connector }

func (l lostTxnLookup) Lookup(ctx context.Context, req *payloom.LookupRequest) (*payloom.LookupResult, error) {
	res, err := l.Connector.Lookup(ctx, req)
	if err == nil && res.Result != nil {
		r := *res.Result
		r.TransactionID = ""
		res.Result = &r
	}
	return res, err
}

// A reversal the processor refuses as invalid (CodeValidation: here an
// empty transaction ID) would be refused again on every retry: the watch
// ends failed, logged for an operator, instead of trying every hour for
// ever.
func TestLateReversalInvalid(t *testing.T) {
	a := startSim(t, "simA", 0)
	e := lateEnv(t, lostTxnLookup{a.conn})
	p, att := failLate(t, e, a, payloom.CaptureMethodManual)
	e.clock.Advance(2 * time.Hour)
	if n, err := e.eng.CheckLateAuthorizations(e.ctx); err != nil || n != 0 {
		t.Fatalf("CheckLateAuthorizations = %d, %v; want 0, no error", n, err)
	}
	got := attemptOf(t, e.payment(p.ID))
	if got.Status != payloom.AttemptStatusFailed || got.LateCheck != payloom.LateCheckFailed || !got.LateCheckAt.IsZero() {
		t.Errorf("attempt %s = %s, late check %q at %v; want failed, late check failed, no next check", att.ID, got.Status, got.LateCheck, got.LateCheckAt)
	}
	if !strings.Contains(e.logs.String(), "refused the reversal of a late authorization as invalid") {
		t.Errorf("log lacks the refusal for an operator")
	}
	if ap := a.approvals(p.ID); len(ap) != 1 || ap[0].Voided {
		t.Errorf("simA approvals = %+v; want one, not voided (left to an operator)", ap)
	}
}

// A watched attempt whose processor is no longer configured is looked for
// again later while the window lasts, and no longer once it is over: a
// watch ends (done), a reversal still to send ends failed, for an
// operator.
func TestLateCheckProcessorGone(t *testing.T) {
	tests := []struct {
		name    string
		claimed bool // the void was claimed (void_pending) before the processor went away
		want    payloom.LateCheck
		log     string
	}{
		{name: "watching", want: payloom.LateCheckDone, log: "the watch ends without a last lookup"},
		{name: "void pending", claimed: true, want: payloom.LateCheckFailed, log: "reverse it at the processor by hand"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := startSim(t, "simA", 0), startSim(t, "simB", 0)
			e := lateEnv(t, a.conn, b.conn)
			p, _ := failLate(t, e, a, payloom.CaptureMethodManual)
			from := payloom.LateCheckWatching
			if tt.claimed {
				e.clock.Advance(2 * time.Hour)
				e.crashAt(engine.PhaseLateReversalClaimed)
				mustCrash(t, engine.PhaseLateReversalClaimed, func() { e.eng.CheckLateAuthorizations(e.ctx) })
				from = payloom.LateCheckVoidPending
			}
			cfg := e.cfg
			cfg.Router = engine.StaticRouter{Test: []payloom.Processor{b.conn}} // simA is gone
			gone := engine.New(cfg)

			e.clock.Advance(2 * time.Hour)
			if n, err := gone.CheckLateAuthorizations(e.ctx); err == nil || n != 0 {
				t.Fatalf("CheckLateAuthorizations(within the window) = %d, %v; want 0 and the processor's error", n, err)
			}
			if got := attemptOf(t, e.payment(p.ID)); got.LateCheck != from || !got.LateCheckAt.After(e.clock.Now()) {
				t.Fatalf("within the window: late check %q at %v; want %q, postponed", got.LateCheck, got.LateCheckAt, from)
			}
			e.clock.Advance(testLateWindow)
			if _, err := gone.CheckLateAuthorizations(e.ctx); err != nil {
				t.Fatalf("CheckLateAuthorizations(past the window) = %v; want no error", err)
			}
			got := attemptOf(t, e.payment(p.ID))
			if got.LateCheck != tt.want || !got.LateCheckAt.IsZero() || got.Status != payloom.AttemptStatusFailed {
				t.Errorf("past the window: attempt %s, late check %q at %v; want failed, %q, no next check", got.Status, got.LateCheck, got.LateCheckAt, tt.want)
			}
			if !strings.Contains(e.logs.String(), tt.log) {
				t.Errorf("log lacks %q", tt.log)
			}
		})
	}
}

// byReference is a simulator connector whose Lookup, given a reference,
// returns the latest authorization made for it, as a processor that
// searches by the merchant's reference would.
type byReference struct {
	*simulator.Connector
	server *simulator.Server
}

func (r byReference) Lookup(ctx context.Context, req *payloom.LookupRequest) (*payloom.LookupResult, error) {
	if req.Reference != "" {
		auths := r.server.Ledger().Authorizations
		for i := len(auths) - 1; i >= 0; i-- {
			if auths[i].Reference == req.Reference {
				byKey := *req
				byKey.IdempotencyKey = auths[i].IdempotencyKey
				return r.Connector.Lookup(ctx, &byKey)
			}
		}
	}
	return r.Connector.Lookup(ctx, req)
}

// The watch of a hosted-page payment's failed attempt looks it up by its
// key only: the payment may meanwhile hold a real authorization at the
// same processor (the shopper confirmed again), which a lookup by the
// payment's reference would return, and the watch would void it.
func TestWatchLooksUpByKeyOnly(t *testing.T) {
	a := startSim(t, "simA", 0)
	e := newEnv(t, withPublicURL, func(c *engine.Config) {
		c.Router = engine.StaticRouter{Test: []payloom.Processor{byReference{a.conn, a.server}}}
		c.ProcessorTimeout = 300 * time.Millisecond
		c.LookupGrace = testGrace
		c.LateCheckInterval = time.Minute
		c.LateCheckWindow = testLateWindow
	})
	unpaid, _ := e.createUnpaid(unpaidReq(2500, payloom.CaptureMethodManual))
	a.rule(t, simulator.Rule{Action: simulator.ActionLose}) // the first card's requests, resends too
	p, err := e.confirm(unpaid.ID, payloom.NewID("op"), simulator.CardApprove)
	if err != nil || p.Status != payloom.PaymentStatusProcessing {
		t.Fatalf("ConfirmPayment = %v, %v; want processing", p, err)
	}
	e.recoverAfter(31*time.Second, 0)
	e.recoverAfter(testGrace, 1)
	failed := e.payment(p.ID)
	if failed.Status != payloom.PaymentStatusRequiresPaymentMethod || len(failed.Attempts) != 1 ||
		failed.Attempts[0].LateCheck != payloom.LateCheckWatching {
		t.Fatalf("after the grace: %s with %+v; want requires_payment_method, the attempt watched", failed.Status, failed.Attempts)
	}

	a.server.ClearRules()
	p, err = e.confirm(unpaid.ID, payloom.NewID("op"), simulator.CardApprove)
	if err != nil || p.Status != payloom.PaymentStatusAuthorized {
		t.Fatalf("second ConfirmPayment = %v, %v; want authorized", p, err)
	}
	for range 3 {
		e.clock.Advance(2 * time.Hour)
		if n, err := e.eng.CheckLateAuthorizations(e.ctx); err != nil || n != 0 {
			t.Fatalf("CheckLateAuthorizations = %d, %v; want 0: the watched attempt was never authorized", n, err)
		}
	}
	if ap := a.approvals(p.ID); len(ap) != 1 || ap[0].Voided || ap[0].IdempotencyKey != p.Attempts[1].ID {
		t.Errorf("simA approvals = %+v; want the second attempt's, not voided", ap)
	}
	if ops := opsOf(a); len(ops) != 0 {
		t.Errorf("simA operations = %+v; want none", ops)
	}
	if got := e.payment(p.ID); got.Status != payloom.PaymentStatusAuthorized || got.Attempts[0].Status != payloom.AttemptStatusFailed {
		t.Errorf("payment = %s, first attempt %s; want authorized, failed", got.Status, got.Attempts[0].Status)
	}
}

// A void of a late authorization refused because the authorization is
// voided already (here by an operator, under another key, between the
// claim and the call) still ends with what the void was for: the attempt
// is voided_late, with payment.attempt_voided.
func TestLateVoidRefusedAlreadyVoided(t *testing.T) {
	a := startSim(t, "simA", 0)
	e := lateEnv(t, a.conn)
	p, att := failLate(t, e, a, payloom.CaptureMethodManual)
	txn := a.approvals(p.ID)[0].TransactionID
	var once atomic.Bool
	h := func(phase string) {
		if phase == engine.PhaseLateReversalClaimed && once.CompareAndSwap(false, true) {
			if res, err := a.conn.Void(e.ctx, &payloom.VoidRequest{IdempotencyKey: "void_by_operator", TransactionID: txn}); err != nil || !res.Succeeded {
				t.Errorf("operator's Void = %+v, %v; want succeeded", res, err)
			}
		}
	}
	e.hook.Store(&h)
	e.clock.Advance(2 * time.Hour)
	if n, err := e.eng.CheckLateAuthorizations(e.ctx); err != nil || n != 1 {
		t.Fatalf("CheckLateAuthorizations = %d, %v; want 1", n, err)
	}
	got := attemptOf(t, e.payment(p.ID))
	if got.Status != payloom.AttemptStatusVoidedLate || got.LateCheck != payloom.LateCheckDone || !got.LateCheckAt.IsZero() {
		t.Errorf("attempt %s = %s, late check %q at %v; want voided_late, done, no next check", att.ID, got.Status, got.LateCheck, got.LateCheckAt)
	}
	want := []payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentFailed, payloom.EventPaymentAttemptVoided}
	if evs := eventTypes(e.events(p.ID)); !slices.Equal(evs, want) {
		t.Errorf("events = %v; want %v", evs, want)
	}
	wantOps := []opWant{{"void", "void_by_operator", "succeeded"}, {"void", "void_late_" + att.ID, "refused"}}
	if ops := opsOf(a); !slices.Equal(ops, wantOps) {
		t.Errorf("simA operations = %+v; want %+v", ops, wantOps)
	}
}

// The late-check lease outlasts one attempt whose calls each take the
// whole processor timeout: another node cannot take the job over (and act
// on the same attempt) while a pass is still busy with one.
func TestLateCheckLeaseOutlastsAnAttempt(t *testing.T) {
	a := startSim(t, "simA", 0)
	e := lateEnv(t, a.conn)
	p, _ := failLate(t, e, a, payloom.CaptureMethodManual)

	// Two nodes with the default processor timeout (20s; the calls
	// themselves are quick, the clock says how long they took).
	cfg := e.cfg
	cfg.ProcessorTimeout = 20 * time.Second
	cfg.NodeID = "node-1"
	node1 := engine.New(cfg)
	cfg.NodeID = "node-2"
	node2 := engine.New(cfg)

	var once atomic.Bool
	var otherRan bool
	var otherErr error
	h := func(phase string) {
		if phase == engine.PhaseLateReversalClaimed && once.CompareAndSwap(false, true) {
			// Node 1's calls for this attempt took 3 intervals and
			// two processor timeouts so far.
			e.clock.Advance(3*time.Minute + 40*time.Second)
			otherRan, _, otherErr = node2.LateCheckPass(e.ctx)
		}
	}
	e.hook.Store(&h)
	e.clock.Advance(2 * time.Hour)
	ran, n, err := node1.LateCheckPass(e.ctx)
	if err != nil || !ran || n != 1 {
		t.Fatalf("LateCheckPass(node 1) = ran %v, %d, %v; want ran, 1", ran, n, err)
	}
	if otherRan || otherErr != nil {
		t.Errorf("LateCheckPass(node 2, during node 1's attempt) = ran %v, %v; want it not to run", otherRan, otherErr)
	}
	if ap := a.approvals(p.ID); len(ap) != 1 || !ap[0].Voided {
		t.Errorf("simA approvals = %+v; want one, voided", ap)
	}
}
