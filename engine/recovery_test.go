package engine_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/engine"
	"github.com/payloom/payloom/processor/sandbox"
)

// resumeModes are the two ways work a crash left behind gets finished: the
// client retries with the same key, or the recovery loop finds it once it is
// older than the lock timeout. Both run on a fresh engine (a restarted
// process) on the same store.
var resumeModes = []string{"retry", "recovery"}

// recoverAll moves the clock past the lock timeout and runs one recovery
// pass, after checking that a pass before the timeout touches nothing.
func (e *env) recoverAll(eng *engine.Engine, wantFinished int) {
	e.t.Helper()
	if n, err := eng.RecoverStale(e.ctx); err != nil || n != 0 {
		e.t.Fatalf("RecoverStale(before the lock timeout) = %d, %v; want 0", n, err)
	}
	e.clock.Advance(31 * time.Second)
	if n, err := eng.RecoverStale(e.ctx); err != nil || n != wantFinished {
		e.t.Fatalf("RecoverStale = %d, %v; want %d", n, err, wantFinished)
	}
}

func TestCrashResumeCreatePayment(t *testing.T) {
	phases := []struct {
		phase string
		// status committed when the process died
		status  payloom.PaymentStatus
		pending bool
	}{
		{engine.PhasePaymentCreated, payloom.PaymentStatusProcessing, true},
		{engine.PhaseProcessorCalled, payloom.PaymentStatusProcessing, true},
		{engine.PhasePaymentRecorded, payloom.PaymentStatusCaptured, false},
	}
	for _, ph := range phases {
		for _, mode := range resumeModes {
			t.Run(ph.phase+"/"+mode, func(t *testing.T) {
				e := newEnv(t)
				req := paymentReq(e.token(sandbox.CardVisa), 4200, payloom.CaptureMethodAutomatic)
				e.crashAt(ph.phase)
				mustCrash(t, ph.phase, func() { e.eng.CreatePayment(e.ctx, e.scope, "op_crash", req) })

				l, err := e.eng.ListPayments(e.ctx, e.scope, payloom.PaymentFilter{})
				if err != nil || len(l.Data) != 1 || l.Data[0].Status != ph.status {
					t.Fatalf("after the crash: %d payments, %v; want one %s", len(l.Data), err, ph.status)
				}
				id := l.Data[0].ID

				restarted := engine.New(e.cfg)
				var p *payloom.Payment
				switch mode {
				case "retry":
					p, err = restarted.CreatePayment(e.ctx, e.scope, "op_crash", req)
					if err != nil {
						t.Fatalf("CreatePayment(retry): %v", err)
					}
				case "recovery":
					finished := 0
					if ph.pending {
						finished = 1
					}
					e.recoverAll(restarted, finished)
					p = e.payment(id)
				}
				if p.ID != id || p.Status != payloom.PaymentStatusCaptured || p.AmountCaptured != 4200 || len(p.Attempts) != 1 {
					t.Errorf("resumed payment = %s %s captured %d with %d attempts; want %s captured 4200 with 1 attempt",
						p.ID, p.Status, p.AmountCaptured, len(p.Attempts), id)
				}
				if n := e.charges(); n != 1 {
					t.Errorf("sandbox charges = %d; want exactly 1", n)
				}
				if n := e.ledger(sandbox.KindAuthorize); n != 1 {
					t.Errorf("sandbox authorizations = %d; want exactly 1", n)
				}
				want := []payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentAuthorized, payloom.EventPaymentCaptured}
				if got := eventTypes(e.events(id)); !slices.Equal(got, want) {
					t.Errorf("events = %v; want %v", got, want)
				}
				if l, _ := e.eng.ListPayments(e.ctx, e.scope, payloom.PaymentFilter{}); len(l.Data) != 1 {
					t.Errorf("%d payments; want 1", len(l.Data))
				}
			})
		}
	}
}

func TestCrashResumeCaptureAndCancel(t *testing.T) {
	phases := []string{engine.PhaseActionClaimed, engine.PhaseActionCalled, engine.PhaseActionRecorded}
	actions := []struct {
		name   string
		status payloom.PaymentStatus
		kind   string
		event  payloom.EventType
	}{
		{"capture", payloom.PaymentStatusCaptured, sandbox.KindCapture, payloom.EventPaymentCaptured},
		{"cancel", payloom.PaymentStatusCanceled, sandbox.KindVoid, payloom.EventPaymentCanceled},
	}
	for _, act := range actions {
		for _, phase := range phases {
			for _, mode := range resumeModes {
				t.Run(act.name+"/"+phase+"/"+mode, func(t *testing.T) {
					e := newEnv(t)
					p := e.pay(sandbox.CardVisa, 5000, payloom.CaptureMethodManual)
					run := func(eng *engine.Engine) (*payloom.Payment, error) {
						if act.name == "capture" {
							return eng.CapturePayment(e.ctx, e.scope, "op_act", p.ID, ptr(int64(1500)))
						}
						return eng.CancelPayment(e.ctx, e.scope, "op_act", p.ID)
					}
					e.crashAt(phase)
					mustCrash(t, phase, func() { run(e.eng) })

					restarted := engine.New(e.cfg)
					var got *payloom.Payment
					var err error
					switch mode {
					case "retry":
						if got, err = run(restarted); err != nil {
							t.Fatalf("%s(retry): %v", act.name, err)
						}
					case "recovery":
						finished := 1
						if phase == engine.PhaseActionRecorded {
							finished = 0
						}
						e.recoverAll(restarted, finished)
						got = e.payment(p.ID)
					}
					wantCaptured := int64(0)
					if act.name == "capture" {
						wantCaptured = 1500
					}
					if got.Status != act.status || got.AmountCaptured != wantCaptured || got.AmountCapturable != 0 || got.PendingAction != "" {
						t.Errorf("resumed = %s captured %d capturable %d pending %q; want %s, %d, 0, none",
							got.Status, got.AmountCaptured, got.AmountCapturable, got.PendingAction, act.status, wantCaptured)
					}
					if n := e.ledger(act.kind); n != 1 {
						t.Errorf("sandbox %s operations = %d; want 1", act.kind, n)
					}
					want := []payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentAuthorized, act.event}
					if evs := eventTypes(e.events(p.ID)); !slices.Equal(evs, want) {
						t.Errorf("events = %v; want %v", evs, want)
					}
				})
			}
		}
	}
}

func TestCrashResumeRefund(t *testing.T) {
	phases := []string{engine.PhaseRefundCreated, engine.PhaseRefundCalled, engine.PhaseRefundRecorded}
	for _, phase := range phases {
		for _, mode := range resumeModes {
			t.Run(phase+"/"+mode, func(t *testing.T) {
				e := newEnv(t)
				p := e.pay(sandbox.CardVisa, 5000, "")
				req := &payloom.RefundCreate{PaymentID: p.ID, Amount: ptr(int64(700))}
				e.crashAt(phase)
				mustCrash(t, phase, func() { e.eng.CreateRefund(e.ctx, e.scope, "op_ref", req) })
				if got := e.payment(p.ID).AmountRefunded; got != 700 {
					t.Fatalf("after the crash AmountRefunded = %d; want 700 (reserved)", got)
				}
				restarted := engine.New(e.cfg)
				var r *payloom.Refund
				switch mode {
				case "retry":
					var err error
					if r, err = restarted.CreateRefund(e.ctx, e.scope, "op_ref", req); err != nil {
						t.Fatalf("CreateRefund(retry): %v", err)
					}
				case "recovery":
					finished := 1
					if phase == engine.PhaseRefundRecorded {
						finished = 0
					}
					e.recoverAll(restarted, finished)
					l, err := e.eng.ListRefunds(e.ctx, e.scope, payloom.RefundFilter{PaymentID: &p.ID})
					if err != nil || len(l.Data) != 1 {
						t.Fatalf("ListRefunds = %d, %v; want 1", len(l.Data), err)
					}
					r = l.Data[0]
				}
				if r.Status != payloom.RefundStatusSucceeded || r.Amount != 700 {
					t.Errorf("refund = %s %d; want succeeded 700", r.Status, r.Amount)
				}
				if got := e.payment(p.ID).AmountRefunded; got != 700 {
					t.Errorf("AmountRefunded = %d; want 700", got)
				}
				if n := e.ledger(sandbox.KindRefund); n != 1 {
					t.Errorf("sandbox refunds = %d; want 1", n)
				}
				want := []payloom.EventType{payloom.EventRefundCreated, payloom.EventRefundSucceeded}
				if got := eventTypes(e.events(r.ID)); !slices.Equal(got, want) {
					t.Errorf("events = %v; want %v", got, want)
				}
			})
		}
	}
}

// TestStaleActionTakeover: a capture claimed by a request that died blocks
// other captures and cancels until the lock timeout; then the next request
// finishes the abandoned capture as claimed before deciding its own.
func TestStaleActionTakeover(t *testing.T) {
	e := newEnv(t)
	p := e.pay(sandbox.CardVisa, 5000, payloom.CaptureMethodManual)
	e.crashAt(engine.PhaseActionClaimed)
	mustCrash(t, engine.PhaseActionClaimed, func() { e.eng.CapturePayment(e.ctx, e.scope, "op_a", p.ID, ptr(int64(1000))) })
	e.hook.Store(nil)

	before := e.payment(p.ID)
	_, err := e.eng.CancelPayment(e.ctx, e.scope, "op_b", p.ID)
	wantCode(t, "CancelPayment(while claimed)", err, payloom.CodeInvalidState)
	if msg := payloom.ErrorMessage(err); msg != "another capture or cancel is in progress" {
		t.Errorf("message = %q; want %q", msg, "another capture or cancel is in progress")
	}
	_, err = e.eng.CapturePayment(e.ctx, e.scope, "op_c", p.ID, nil)
	wantCode(t, "CapturePayment(while claimed)", err, payloom.CodeInvalidState)
	if after := e.payment(p.ID); after.Version != before.Version {
		t.Errorf("refused requests changed the payment (version %d -> %d)", before.Version, after.Version)
	}

	e.clock.Advance(31 * time.Second)
	_, err = e.eng.CancelPayment(e.ctx, e.scope, "op_b", p.ID)
	wantCode(t, "CancelPayment(after takeover)", err, payloom.CodeInvalidState)
	if msg := payloom.ErrorMessage(err); msg != "payment is captured; only authorized payments can be canceled" {
		t.Errorf("message = %q; want the captured state", msg)
	}
	got := e.payment(p.ID)
	if got.Status != payloom.PaymentStatusCaptured || got.AmountCaptured != 1000 || got.PendingAction != "" {
		t.Errorf("payment = %s captured %d pending %q; want captured 1000 by the abandoned request", got.Status, got.AmountCaptured, got.PendingAction)
	}
	if n := e.ledger(sandbox.KindVoid); n != 0 {
		t.Errorf("sandbox voids = %d; want 0", n)
	}
	// The abandoned request's retry gets its capture.
	again, err := e.eng.CapturePayment(e.ctx, e.scope, "op_a", p.ID, ptr(int64(1000)))
	if err != nil || again.Status != payloom.PaymentStatusCaptured {
		t.Errorf("CapturePayment(op_a retry) = %v, %v; want the captured payment", again, err)
	}
}

// slowSandbox is the real sandbox with a latency far beyond the engine's
// processor timeout: it records its answer, then the answer never arrives in
// time. Every call's outcome is unknown to the engine.
func (e *env) useSlowSandbox() {
	e.setProcessor(sandbox.New(e.store, sandbox.Options{Latency: time.Hour}))
}

func withShortProcessorTimeout(c *engine.Config) { c.ProcessorTimeout = 20 * time.Millisecond }

func TestUnknownOutcomeCreatePayment(t *testing.T) {
	for _, mode := range resumeModes {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, withShortProcessorTimeout)
			e.useSlowSandbox()
			req := paymentReq(e.token(sandbox.CardVisa), 900, "")
			p, err := e.eng.CreatePayment(e.ctx, e.scope, "op_u", req)
			if err != nil {
				t.Fatalf("CreatePayment(no answer) = %v; want the processing payment, no error", err)
			}
			if p.Status != payloom.PaymentStatusProcessing || len(p.Attempts) != 1 || p.Attempts[0].Status != payloom.AttemptStatusPending {
				t.Fatalf("CreatePayment(no answer) = %s with %+v; want processing with one pending attempt", p.Status, p.Attempts)
			}
			e.setProcessor(nil) // the processor answers again
			switch mode {
			case "retry":
				p, err = e.eng.CreatePayment(e.ctx, e.scope, "op_u", req)
				if err != nil {
					t.Fatal(err)
				}
			case "recovery":
				e.recoverAll(e.eng, 1)
				p = e.payment(p.ID)
			}
			if p.Status != payloom.PaymentStatusCaptured || len(p.Attempts) != 1 || p.Attempts[0].Status != payloom.AttemptStatusCaptured {
				t.Errorf("resumed = %s with %d attempts; want captured with the one attempt", p.Status, len(p.Attempts))
			}
			if n := e.charges(); n != 1 {
				t.Errorf("sandbox charges = %d; want 1", n)
			}
		})
	}
}

func TestUnknownOutcomeCaptureAndRefund(t *testing.T) {
	e := newEnv(t, withShortProcessorTimeout)
	p := e.pay(sandbox.CardVisa, 5000, payloom.CaptureMethodManual)
	e.useSlowSandbox()
	_, err := e.eng.CapturePayment(e.ctx, e.scope, "op_cap", p.ID, nil)
	wantCode(t, "CapturePayment(no answer)", err, payloom.CodeUnavailable)
	if got := e.payment(p.ID); got.Status != payloom.PaymentStatusAuthorized || got.PendingAction != payloom.PendingActionCapture {
		t.Fatalf("after no answer: %s pending %q; want authorized with a pending capture", got.Status, got.PendingAction)
	}
	e.setProcessor(nil)
	got, err := e.eng.CapturePayment(e.ctx, e.scope, "op_cap", p.ID, nil)
	if err != nil || got.Status != payloom.PaymentStatusCaptured || got.AmountCaptured != 5000 {
		t.Fatalf("CapturePayment(retry) = %+v, %v; want captured 5000", got, err)
	}

	e.useSlowSandbox()
	r, err := e.eng.CreateRefund(e.ctx, e.scope, "op_ref", &payloom.RefundCreate{PaymentID: p.ID, Amount: ptr(int64(100))})
	if err != nil || r.Status != payloom.RefundStatusPending {
		t.Fatalf("CreateRefund(no answer) = %+v, %v; want pending, no error", r, err)
	}
	if got := e.payment(p.ID).AmountRefunded; got != 100 {
		t.Errorf("AmountRefunded = %d; want 100 reserved", got)
	}
	e.setProcessor(nil)
	e.recoverAll(e.eng, 1)
	r, err = e.eng.Refund(e.ctx, e.scope, r.ID)
	if err != nil || r.Status != payloom.RefundStatusSucceeded {
		t.Errorf("Refund after recovery = %+v, %v; want succeeded", r, err)
	}
	if n := e.ledger(sandbox.KindRefund); n != 1 {
		t.Errorf("sandbox refunds = %d; want 1", n)
	}
}

// TestRunBackgroundRecovers leaves a payment processing and lets the
// background loop finish it; the test waits for that without a deadline.
func TestRunBackgroundRecovers(t *testing.T) {
	e := newEnv(t, withShortProcessorTimeout, func(c *engine.Config) { c.RecoveryInterval = time.Millisecond })
	e.useSlowSandbox()
	p, err := e.eng.CreatePayment(e.ctx, e.scope, "op_bg", paymentReq(e.token(sandbox.CardVisa), 900, ""))
	if err != nil || p.Status != payloom.PaymentStatusProcessing {
		t.Fatalf("CreatePayment = %v, %v; want processing", p, err)
	}
	e.setProcessor(nil)
	e.clock.Advance(31 * time.Second)
	ctx, stop := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() { e.eng.RunBackground(ctx); close(done) }()
	for e.payment(p.ID).Status == payloom.PaymentStatusProcessing {
		time.Sleep(time.Millisecond)
	}
	stop()
	<-done
	if got := e.payment(p.ID); got.Status != payloom.PaymentStatusCaptured || e.charges() != 1 {
		t.Errorf("after background recovery: %s, %d charges; want captured, 1", got.Status, e.charges())
	}
}

// TestConcurrentCreateOneKey: 100 requests with one operation key make one
// payment and one charge, and all of them answer with that payment.
func TestConcurrentCreateOneKey(t *testing.T) {
	e := newEnv(t)
	req := paymentReq(e.token(sandbox.CardVisa), 777, "")
	const n = 100
	var wg sync.WaitGroup
	got := make([]*payloom.Payment, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { got[i], errs[i] = e.eng.CreatePayment(e.ctx, e.scope, "op_same", req) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("CreatePayment #%d: %v", i, errs[i])
		}
		if got[i].ID != got[0].ID {
			t.Errorf("CreatePayment #%d = %s; want %s", i, got[i].ID, got[0].ID)
		}
	}
	l, err := e.eng.ListPayments(e.ctx, e.scope, payloom.PaymentFilter{})
	if err != nil || len(l.Data) != 1 || l.Data[0].Status != payloom.PaymentStatusCaptured || len(l.Data[0].Attempts) != 1 {
		t.Fatalf("ListPayments = %d, %v; want one captured payment with one attempt", len(l.Data), err)
	}
	if c := e.charges(); c != 1 {
		t.Errorf("sandbox charges = %d; want 1", c)
	}
	want := []payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentAuthorized, payloom.EventPaymentCaptured}
	if evs := eventTypes(e.events(l.Data[0].ID)); !slices.Equal(evs, want) {
		t.Errorf("events = %v; want %v", evs, want)
	}
}
