package engine_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/payloom/payloom"
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
