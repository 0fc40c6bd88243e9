package engine_test

import (
	"context"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/engine"
	"github.com/payloom/payloom/processor/simulator"
)

// noLookup is a simulator connector that declares no Lookup, as Adyen's:
// the reconciler can only send a pending attempt again.
type noLookup struct{ *simulator.Connector }

func (n noLookup) Capabilities() payloom.Capabilities {
	c := n.Connector.Capabilities()
	c.Lookup = false
	return c
}

// How a test sends a pending attempt again.
const (
	viaRetry    = "retry of the request" // CreatePayment / ConfirmPayment with the same key
	viaRecovery = "recovery pass"
)

// A resend of an attempt whose first send got no answer is never moved to
// another processor by an answer that only says the resend was turned away
// before processing (a 429, a refused connection): the first send may have
// authorized. The attempt stays pending and is settled at its own
// processor, by lookup or a later resend. A decline on a resend is the
// processor's answer for the key and falls back as usual; a first send
// turned away falls back at once.
func TestResendNeverFallsBack(t *testing.T) {
	tests := []struct {
		name   string
		hosted bool // paid by ConfirmPayment, not created with the card
		lookup bool // simA declares Lookup
		down   bool // simA stops after the first send: connections are refused
		card   string
		rulesA []simulator.Rule
		via    string
		// after the resend, then once recovery passes settled it
		resent, final []attemptWant
	}{
		{
			name: "client retry, resend throttled", lookup: true, card: simulator.CardApprove, via: viaRetry,
			rulesA: []simulator.Rule{{Action: simulator.ActionHang, Times: 1}, {Action: simulator.ActionThrottle, Times: 1}},
			resent: []attemptWant{{"simA", payloom.AttemptStatusPending, ""}},
			final:  []attemptWant{{"simA", payloom.AttemptStatusCaptured, ""}},
		},
		{
			name: "hosted-page confirm retried, resend throttled", hosted: true, lookup: true, card: simulator.CardApprove, via: viaRetry,
			rulesA: []simulator.Rule{{Action: simulator.ActionDrop, Times: 1}, {Action: simulator.ActionThrottle, Times: 1}},
			resent: []attemptWant{{"simA", payloom.AttemptStatusPending, ""}},
			final:  []attemptWant{{"simA", payloom.AttemptStatusCaptured, ""}},
		},
		{
			name: "recovery resend without Lookup throttled", card: simulator.CardApprove, via: viaRecovery,
			rulesA: []simulator.Rule{{Action: simulator.ActionHang, Times: 1}, {Action: simulator.ActionThrottle, Times: 1}},
			resent: []attemptWant{{"simA", payloom.AttemptStatusPending, ""}},
			final:  []attemptWant{{"simA", payloom.AttemptStatusCaptured, ""}},
		},
		{
			name: "recovery resend without Lookup, processor unreachable", card: simulator.CardApprove, via: viaRecovery, down: true,
			rulesA: []simulator.Rule{{Action: simulator.ActionHang, Times: 1}},
			resent: []attemptWant{{"simA", payloom.AttemptStatusPending, ""}},
			final:  []attemptWant{{"simA", payloom.AttemptStatusPending, ""}},
		},
		{
			name: "client retry answered with a soft decline: falls back", lookup: true, card: simulator.CardDoNotHonor, via: viaRetry,
			rulesA: []simulator.Rule{{Action: simulator.ActionHang, Times: 1}},
			resent: []attemptWant{{"simA", payloom.AttemptStatusDeclined, "do_not_honor"}, {"simB", payloom.AttemptStatusCaptured, ""}},
			final:  []attemptWant{{"simA", payloom.AttemptStatusDeclined, "do_not_honor"}, {"simB", payloom.AttemptStatusCaptured, ""}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, stopA := startStoppableSim(t, "simA")
			b := startSim(t, "simB", 0)
			for _, r := range tt.rulesA {
				a.rule(t, r)
			}
			b.rule(t, simulator.Rule{Action: simulator.ActionApprove}) // B would approve anything
			var first payloom.Processor = a.conn
			if !tt.lookup {
				first = noLookup{a.conn}
			}
			e := routedPageEnv(t, 0, first, b.conn)

			send := func(opKey string, unpaidID string) *payloom.Payment {
				t.Helper()
				var p *payloom.Payment
				var err error
				if tt.hosted {
					p, err = e.confirm(unpaidID, opKey, tt.card)
				} else {
					p, err = e.eng.CreatePayment(e.ctx, e.scope, opKey, paymentReq(e.token(tt.card), 1200, ""))
				}
				if err != nil {
					t.Fatalf("send(%s) = %v", opKey, err)
				}
				return p
			}
			unpaidID := ""
			if tt.hosted {
				unpaid, _ := e.createUnpaid(unpaidReq(2500, ""))
				unpaidID = unpaid.ID
			}
			p := send("op_resend", unpaidID)
			want := []attemptWant{{"simA", payloom.AttemptStatusPending, ""}}
			if p.Status != payloom.PaymentStatusProcessing || !slices.Equal(attemptsOf(p), want) {
				t.Fatalf("first send = %s with %+v; want processing with %+v", p.Status, attemptsOf(p), want)
			}

			if tt.down {
				stopA()
			}
			switch tt.via {
			case viaRetry:
				p = send("op_resend", unpaidID)
			case viaRecovery:
				e.clock.Advance(31 * time.Second)
				if _, err := e.eng.RecoverStale(e.ctx); err != nil {
					t.Fatalf("RecoverStale: %v", err)
				}
				p = e.payment(p.ID)
			}
			if !slices.Equal(attemptsOf(p), tt.resent) {
				t.Fatalf("after the resend (%s): %s with %+v; want %+v", tt.via, p.Status, attemptsOf(p), tt.resent)
			}

			for range 3 {
				e.clock.Advance(31 * time.Second)
				if _, err := e.eng.RecoverStale(e.ctx); err != nil {
					t.Fatalf("RecoverStale: %v", err)
				}
			}
			got := e.payment(p.ID)
			if !slices.Equal(attemptsOf(got), tt.final) {
				t.Errorf("settled: %s with %+v; want %+v", got.Status, attemptsOf(got), tt.final)
			}
			// Never authorized twice: simA's approval (from the first
			// send) excludes one at simB.
			aApp, bApp := len(a.approvals(p.ID)), len(b.approvals(p.ID))
			if aApp+bApp > 1 {
				t.Fatalf("payment authorized %d times at simA and %d at simB; want at most once", aApp, bApp)
			}
			if last := tt.final[len(tt.final)-1]; last.status == payloom.AttemptStatusCaptured {
				if got.Status != payloom.PaymentStatusCaptured || got.Processor == nil || got.Processor.Name != last.processor {
					t.Errorf("settled payment %s at %+v; want captured at %s", got.Status, got.Processor, last.processor)
				}
			}
		})
	}
}

// A payment whose first send was throttled (429: not processed) falls back
// at once: nothing can be held under a key never processed.
func TestFirstSendThrottledFallsBack(t *testing.T) {
	a, b := startSim(t, "simA", 0), startSim(t, "simB", 0)
	a.rule(t, simulator.Rule{Action: simulator.ActionThrottle, Times: 1})
	e := routedPageEnv(t, 0, a.conn, b.conn)
	p := e.pay(simulator.CardApprove, 800, "")
	want := []attemptWant{{"simA", payloom.AttemptStatusFailed, "processing_error"}, {"simB", payloom.AttemptStatusCaptured, ""}}
	if p.Status != payloom.PaymentStatusCaptured || !slices.Equal(attemptsOf(p), want) {
		t.Fatalf("CreatePayment = %s with %+v; want captured with %+v", p.Status, attemptsOf(p), want)
	}
}

// An attempt a concurrent request committed (its answer to the same
// attempt fell back first) is only resent by the request that finds it:
// turned away before processing, it stays pending rather than move the
// payment on, because the request that committed it may have authorized.
func TestConcurrentFallbackIsResent(t *testing.T) {
	a, b, c := startSim(t, "simA", 0), startSim(t, "simB", 0), startSim(t, "simC", 0)
	a.rule(t, simulator.Rule{Action: simulator.ActionDecline, Code: "05"}) // soft
	// The retry's send to B authorizes and gets no answer; the first
	// request's send of the same attempt is throttled.
	b.rule(t, simulator.Rule{Action: simulator.ActionHang, Times: 1})
	b.rule(t, simulator.Rule{Action: simulator.ActionThrottle, Times: 1})
	e := routedPageEnv(t, 0, a.conn, b.conn, c.conn)
	req := paymentReq(e.token(simulator.CardApprove), 1300, "")

	// Right after A answered the first request, its retry runs whole:
	// it records A's soft decline, commits the attempt at B and sends it.
	var once atomic.Bool
	var retried *payloom.Payment
	var retryErr error
	h := func(phase string) {
		if phase == engine.PhaseProcessorCalled && once.CompareAndSwap(false, true) {
			retried, retryErr = e.eng.CreatePayment(e.ctx, e.scope, "op_concurrent", req)
		}
	}
	e.hook.Store(&h)
	p, err := e.eng.CreatePayment(e.ctx, e.scope, "op_concurrent", req)
	e.hook.Store(nil)
	want := []attemptWant{{"simA", payloom.AttemptStatusDeclined, "do_not_honor"}, {"simB", payloom.AttemptStatusPending, ""}}
	if retryErr != nil || retried.Status != payloom.PaymentStatusProcessing || !slices.Equal(attemptsOf(retried), want) {
		t.Fatalf("retry = %v, %v; want processing with %+v", retried, retryErr, want)
	}
	if err != nil || p.Status != payloom.PaymentStatusProcessing || !slices.Equal(attemptsOf(p), want) {
		t.Fatalf("first request = %v %+v, %v; want processing with %+v", p.Status, attemptsOf(p), err, want)
	}
	if n := len(c.server.Ledger().Authorizations); n != 0 {
		t.Fatalf("simC authorizations = %d; want 0 (B may hold the payment's authorization)", n)
	}
	e.recoverAll(e.eng, 1)
	got := e.payment(p.ID)
	want = []attemptWant{{"simA", payloom.AttemptStatusDeclined, "do_not_honor"}, {"simB", payloom.AttemptStatusCaptured, ""}}
	if got.Status != payloom.PaymentStatusCaptured || !slices.Equal(attemptsOf(got), want) {
		t.Errorf("reconciled = %s with %+v; want captured with %+v", got.Status, attemptsOf(got), want)
	}
	if n := len(b.approvals(p.ID)); n != 1 {
		t.Errorf("simB approvals = %d; want 1", n)
	}
}

// startStoppableSim is startSim with a function that stops the simulator
// (its ledger stays readable): from then on connections to it are refused.
func startStoppableSim(t *testing.T, name string) (*sim, func()) {
	t.Helper()
	s := simulator.NewServer(simulator.Options{})
	hs := httptest.NewServer(s)
	stop := func() {
		s.Close() // ends hung requests, so that hs.Close does not wait on them
		hs.Close()
	}
	t.Cleanup(stop)
	return &sim{name: name, server: s, conn: simulator.NewConnector(hs.URL, simulator.ConnectorOptions{Name: name})}, stop
}

// laggyIndex is a simulator connector whose Lookup, like a search index,
// misses authorizations the simulator made less than lag ago (by the
// simulator's clock).
type laggyIndex struct {
	*simulator.Connector
	server *simulator.Server
	now    func() time.Time
	lag    time.Duration
}

func (l laggyIndex) Capabilities() payloom.Capabilities {
	c := l.Connector.Capabilities()
	c.LookupLag = l.lag
	return c
}

func (l laggyIndex) Lookup(ctx context.Context, req *payloom.LookupRequest) (*payloom.LookupResult, error) {
	res, err := l.Connector.Lookup(ctx, req)
	if err != nil || !res.Found {
		return res, err
	}
	for _, a := range l.server.Ledger().Authorizations {
		if a.IdempotencyKey == req.IdempotencyKey && l.now().Sub(a.CreatedAt) < l.lag {
			return &payloom.LookupResult{}, nil // not indexed yet
		}
	}
	return res, nil
}

// An attempt is not sent again once it is older than the lookup grace, so
// that when "not found" becomes final (grace + processor timeout + lookup
// lag after the attempt was created) no send is younger than the lag: a
// resend near the end of the grace could otherwise authorize where the
// lookup that fails the payment cannot see it yet.
func TestNoResendPastGrace(t *testing.T) {
	for _, via := range []string{viaRetry, viaRecovery} {
		t.Run(via, func(t *testing.T) {
			var clock func() time.Time
			s := simulator.NewServer(simulator.Options{Clock: func() time.Time { return clock() }})
			hs := httptest.NewServer(s)
			t.Cleanup(hs.Close)
			t.Cleanup(s.Close)
			a := &sim{name: "simA", server: s, conn: simulator.NewConnector(hs.URL, simulator.ConnectorOptions{Name: "simA"})}
			b := startSim(t, "simB", 0)
			// The first send is lost; a resend would authorize and get
			// no answer.
			a.rule(t, simulator.Rule{Action: simulator.ActionLose, Times: 1})
			a.rule(t, simulator.Rule{Action: simulator.ActionHang, Times: 1})
			var e *env
			clock = func() time.Time { return e.clock.Now() }
			e = lateEnv(t, laggyIndex{Connector: a.conn, server: s, now: func() time.Time { return e.clock.Now() }, lag: time.Hour}, b.conn)

			req := paymentReq(e.token(simulator.CardApprove), 1100, payloom.CaptureMethodManual)
			p, err := e.eng.CreatePayment(e.ctx, e.scope, "op_window", req)
			if err != nil || p.Status != payloom.PaymentStatusProcessing {
				t.Fatalf("CreatePayment = %v, %v; want processing", p, err)
			}
			e.clock.Advance(59 * time.Minute) // within the old grace (max(grace, lag) = 1 h), past the new resend window
			switch via {
			case viaRetry:
				if p, err = e.eng.CreatePayment(e.ctx, e.scope, "op_window", req); err != nil || p.Status != payloom.PaymentStatusProcessing {
					t.Fatalf("retry at 59 min = %v, %v; want processing", p, err)
				}
			case viaRecovery:
				if n, err := e.eng.RecoverStale(e.ctx); err != nil || n != 0 {
					t.Fatalf("RecoverStale at 59 min = %d, %v; want 0", n, err)
				}
			}
			if l := a.server.Ledger(); len(l.Authorizations) != 0 {
				t.Fatalf("simA authorizations after the 59 min %s = %+v; want none (not sent again)", via, l.Authorizations)
			}
			e.recoverAfter(2*time.Minute, 0) // 61 min: before the grace of 2 min + 300 ms + 1 h
			e.recoverAfter(2*time.Minute, 1) // 63 min: "not found" is final
			wantNotFoundFailure(t, e, e.payment(p.ID))
			if l := a.server.Ledger(); len(l.Authorizations) != 0 || len(b.server.Ledger().Authorizations) != 0 {
				t.Errorf("authorizations at simA %+v, simB %+v; want none for a payment recorded failed", l.Authorizations, b.server.Ledger().Authorizations)
			}
		})
	}
}
