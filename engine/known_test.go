package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/engine"
	"github.com/payloom/payloom/processor/sandbox"
)

// retryInsideAuthorize is the sandbox, except that during its first
// Authorize a retry of the same operation runs to its end: when the first
// request records its answer, the payment it holds is stale.
type retryInsideAuthorize struct {
	payloom.Processor
	calls atomic.Int32
	retry func()
}

func (p *retryInsideAuthorize) Authorize(ctx context.Context, req *payloom.AuthorizeRequest) (*payloom.AuthorizeResult, error) {
	res, err := p.Processor.Authorize(ctx, req)
	if p.calls.Add(1) == 1 {
		p.retry()
	}
	return res, err
}

// TestRecordingFromStalePayment: the recording phase starts from the
// payment its request committed; when a retry recorded the attempt first,
// that payment is stale and the phase must answer what is stored, without
// writing the outcome or its events a second time.
func TestRecordingFromStalePayment(t *testing.T) {
	for _, capture := range []payloom.CaptureMethod{payloom.CaptureMethodAutomatic, payloom.CaptureMethodManual} {
		t.Run(string(capture), func(t *testing.T) {
			e := newEnv(t)
			req := paymentReq(e.token("4242424242424242"), 1500, capture)
			const opKey = "op_stale_known"
			var retried *payloom.Payment
			proc := &retryInsideAuthorize{Processor: e.sandbox}
			proc.retry = func() {
				var err error
				retried, err = e.eng.CreatePayment(e.ctx, e.scope, opKey, req)
				if err != nil {
					t.Errorf("retry CreatePayment: %v", err)
				}
			}
			e.setProcessor(proc)
			first, err := e.eng.CreatePayment(e.ctx, e.scope, opKey, req)
			if err != nil {
				t.Fatalf("CreatePayment: %v", err)
			}
			want := payloom.PaymentStatusCaptured
			if capture == payloom.CaptureMethodManual {
				want = payloom.PaymentStatusAuthorized
			}
			stored := e.payment(first.ID)
			for name, p := range map[string]*payloom.Payment{"first": first, "retry": retried, "stored": stored} {
				if p == nil || p.ID != stored.ID || p.Status != want || p.Version != stored.Version {
					t.Errorf("%s = %+v; want payment %s %s at version %d", name, p, stored.ID, want, stored.Version)
				}
			}
			if n := proc.calls.Load(); n != 2 {
				t.Errorf("Authorize calls = %d; want 2 (the request and its retry, one key)", n)
			}
			if n := e.charges(); n != 1 {
				t.Errorf("sandbox charges = %d; want 1", n)
			}
			wantEvents := []payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentAuthorized}
			if capture == payloom.CaptureMethodAutomatic {
				wantEvents = append(wantEvents, payloom.EventPaymentCaptured)
			}
			if got := eventTypes(e.events(first.ID)); !equalTypes(got, wantEvents) {
				t.Errorf("events = %v; want %v (each once)", got, wantEvents)
			}
		})
	}
}

func equalTypes(a, b []payloom.EventType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// finalFailure is a processor without Lookup (as Adyen) whose first answer
// is lost and which then repeats, for the same key, its final answer: a
// failure that names its transaction.
type finalFailure struct {
	payloom.Processor
	calls atomic.Int32
}

func (f *finalFailure) Capabilities() payloom.Capabilities {
	c := f.Processor.Capabilities()
	c.Lookup = false
	return c
}

func (f *finalFailure) Authorize(ctx context.Context, req *payloom.AuthorizeRequest) (*payloom.AuthorizeResult, error) {
	if f.calls.Add(1) == 1 {
		return nil, context.DeadlineExceeded // sent; the answer was lost
	}
	return &payloom.AuthorizeResult{Status: payloom.AuthorizationFailed, TransactionID: "txn_final_1",
		FailureCode: payloom.FailureProcessingError, RawCode: "Error", Message: "the processor failed the payment"}, nil
}

// TestResendRecordsFinalFailure: on a resend, a failure that names a
// transaction is the processor's record of the key, not a resend turned
// away before processing: it is recorded (the payment fails) rather than
// left pending, where a processor without Lookup would keep it forever.
func TestResendRecordsFinalFailure(t *testing.T) {
	e := newEnv(t)
	proc := &finalFailure{Processor: e.sandbox}
	e.setProcessor(proc)
	req := paymentReq(e.token("4242424242424242"), 700, payloom.CaptureMethodAutomatic)
	const opKey = "op_final_failure"
	p, err := e.eng.CreatePayment(e.ctx, e.scope, opKey, req)
	if err != nil || p.Status != payloom.PaymentStatusProcessing {
		t.Fatalf("CreatePayment (answer lost) = %v, %v; want processing", p, err)
	}
	p, err = e.eng.CreatePayment(e.ctx, e.scope, opKey, req) // the client's retry: a resend
	if err != nil {
		t.Fatalf("retry CreatePayment: %v", err)
	}
	if p.Status != payloom.PaymentStatusFailed || len(p.Attempts) != 1 || p.Attempts[0].Status != payloom.AttemptStatusFailed ||
		p.Attempts[0].TransactionID != "txn_final_1" {
		t.Errorf("after the resend: status %s, attempts %+v; want failed with one failed attempt txn_final_1", p.Status, p.Attempts)
	}
	if n := proc.calls.Load(); n != 2 {
		t.Errorf("Authorize calls = %d; want 2", n)
	}
}

// countingProcessor counts Authorize calls.
type countingProcessor struct {
	payloom.Processor
	calls atomic.Int32
}

func (c *countingProcessor) Authorize(ctx context.Context, req *payloom.AuthorizeRequest) (*payloom.AuthorizeResult, error) {
	c.calls.Add(1)
	return c.Processor.Authorize(ctx, req)
}

// TestFirstSendInsideTheWindow: a request that stalls between committing
// its attempt and sending it past the lookup grace does not send it: the
// "not found" that the reconciler may then record is final only because no
// send of the attempt starts after the grace.
func TestFirstSendInsideTheWindow(t *testing.T) {
	e := newEnv(t, func(c *engine.Config) { c.LookupGrace = time.Minute })
	proc := &countingProcessor{Processor: e.sandbox}
	e.setProcessor(proc)
	stall := func(phase string) {
		if phase == engine.PhasePaymentCreated {
			e.clock.Advance(2 * time.Minute)
		}
	}
	e.hook.Store(&stall)
	p, err := e.eng.CreatePayment(e.ctx, e.scope, "op_stalled", paymentReq(e.token("4242424242424242"), 800, payloom.CaptureMethodAutomatic))
	if err != nil {
		t.Fatalf("CreatePayment: %v", err)
	}
	if p.Status != payloom.PaymentStatusProcessing || len(p.Attempts) != 1 || p.Attempts[0].Status != payloom.AttemptStatusPending {
		t.Errorf("payment = %s %+v; want processing with its attempt pending", p.Status, p.Attempts)
	}
	if n := proc.calls.Load(); n != 0 {
		t.Errorf("Authorize calls = %d; want 0 (past the window)", n)
	}
}

// rehearsingStore runs the function of every Update once in a transaction
// it rolls back, then again for real: as the SQLite writer runs a group's
// functions again, isolated, when one of them failed, and as PostgreSQL
// runs a function again after a serialization failure.
type rehearsingStore struct{ payloom.Store }

var errRehearsal = errors.New("rehearsal: roll back")

func (s rehearsingStore) Update(ctx context.Context, fn func(tx payloom.Tx) error) error {
	err := s.Store.Update(ctx, func(tx payloom.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return errRehearsal
	})
	if !errors.Is(err, errRehearsal) {
		return err
	}
	return s.Store.Update(ctx, fn)
}

// TestFunctionsRunTwice: every write function of a payment may run twice
// (rehearsingStore), the second time from what is stored: the payment
// still ends in the right state, with each event once, and a claimed
// request stores the response of that state.
func TestFunctionsRunTwice(t *testing.T) {
	e := newEnv(t, func(c *engine.Config) { c.Store = rehearsingStore{c.Store} })
	tests := []struct {
		card   string
		status payloom.PaymentStatus
		events []payloom.EventType
	}{
		{sandbox.CardVisa, payloom.PaymentStatusCaptured,
			[]payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentAuthorized, payloom.EventPaymentCaptured}},
		{sandbox.CardDeclined, payloom.PaymentStatusDeclined,
			[]payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentFailed}},
	}
	for i, tt := range tests {
		for _, claimed := range []bool{false, true} {
			req := paymentReq(e.token(tt.card), 1000, payloom.CaptureMethodAutomatic)
			var p *payloom.Payment
			var err error
			var claim *payloom.Claim
			if claimed {
				claim = newClaim(e.scope, fmt.Sprintf("twice-%d", i))
				p, err = e.eng.CreatePaymentClaimed(e.ctx, claim, req)
			} else {
				p, err = e.eng.CreatePayment(e.ctx, e.scope, fmt.Sprintf("op_twice_%d", i), req)
			}
			if err != nil {
				t.Fatalf("create (%s, claimed %v): %v", tt.card, claimed, err)
			}
			stored := e.payment(p.ID)
			if p.Status != tt.status || stored.Status != tt.status || p.Version != stored.Version {
				t.Errorf("(%s, claimed %v) returned %s v%d, stored %s v%d; want %s", tt.card, claimed,
					p.Status, p.Version, stored.Status, stored.Version, tt.status)
			}
			if got := eventTypes(e.events(p.ID)); !equalTypes(got, tt.events) {
				t.Errorf("(%s, claimed %v) events = %v; want %v (each once)", tt.card, claimed, got, tt.events)
			}
			if !claimed {
				continue
			}
			rec, err := e.idempotencyRecord(claim.Key)
			want := fmt.Sprintf(`{"id":%q,"status":%q}`, p.ID, tt.status)
			if err != nil || !claim.Completed || string(claim.Body) != want || string(rec.ResponseBody) != want {
				t.Errorf("(%s) claim %+v, stored record %+v, %v; want the response %s stored", tt.card, claim, rec, err, want)
			}
		}
	}
}
