package engine_test

import (
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/processor/sandbox"
)

func TestRefunds(t *testing.T) {
	e := newEnv(t)
	p := e.pay(sandbox.CardVisa, 10000, payloom.CaptureMethodManual)
	if _, err := e.eng.CapturePayment(e.ctx, e.scope, "op_cap", p.ID, ptr(int64(8000))); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name     string
		amount   *int64
		reason   string
		wantAmt  int64
		code     string
		param    string
		refunded int64
	}{
		{"partial", ptr(int64(3000)), payloom.RefundReasonRequestedByCustomer, 3000, "", "", 3000},
		{"over the remainder", ptr(int64(5001)), "", 0, payloom.CodeValidation, "amount", 3000},
		{"zero", ptr(int64(0)), "", 0, payloom.CodeValidation, "amount", 3000},
		{"bad reason", ptr(int64(1)), "because", 0, payloom.CodeValidation, "reason", 3000},
		{"exactly the remainder", ptr(int64(4000)), payloom.RefundReasonDuplicate, 4000, "", "", 7000},
		{"the rest by default", nil, "", 1000, "", "", 8000},
		{"nothing left, explicit", ptr(int64(1)), "", 0, payloom.CodeValidation, "amount", 8000},
		{"nothing left, default", nil, "", 0, payloom.CodeInvalidState, "", 8000},
	}
	var made []string
	for _, st := range steps {
		r, err := e.eng.CreateRefund(e.ctx, e.scope, payloom.NewID("op"), &payloom.RefundCreate{PaymentID: p.ID, Amount: st.amount, Reason: st.reason})
		if st.code != "" {
			wantCode(t, "CreateRefund("+st.name+")", err, st.code)
			if got := payloom.ErrorParam(err); got != st.param {
				t.Errorf("CreateRefund(%s) param = %q; want %q", st.name, got, st.param)
			}
		} else {
			if err != nil {
				t.Fatalf("CreateRefund(%s): %v", st.name, err)
			}
			if r.Status != payloom.RefundStatusSucceeded || r.Amount != st.wantAmt || r.PaymentID != p.ID || r.Currency != "USD" ||
				r.Reason != st.reason || r.TransactionID == "" || !payloom.HasPrefix(r.ID, payloom.PrefixRefund) || r.Object != "refund" {
				t.Errorf("CreateRefund(%s) = %+v; want succeeded, %d", st.name, r, st.wantAmt)
			}
			made = append(made, r.ID)
		}
		if got := e.payment(p.ID); got.AmountRefunded != st.refunded || got.AmountCaptured != 8000 || got.Status != payloom.PaymentStatusCaptured {
			t.Errorf("after %s: refunded %d of captured %d, %s; want %d of 8000, captured", st.name, got.AmountRefunded, got.AmountCaptured, got.Status, st.refunded)
		}
	}
	l, err := e.eng.ListRefunds(e.ctx, e.scope, payloom.RefundFilter{PaymentID: &p.ID})
	if err != nil || len(l.Data) != 3 {
		t.Fatalf("ListRefunds = %d, %v; want 3", len(l.Data), err)
	}
	r, err := e.eng.Refund(e.ctx, e.scope, made[0])
	if err != nil || r.Amount != 3000 {
		t.Errorf("Refund(%q) = %+v, %v; want 3000", made[0], r, err)
	}
	_, err = e.eng.CreateRefund(e.ctx, e.scope, "op_missing", &payloom.RefundCreate{PaymentID: "pay_missing"})
	wantCode(t, "CreateRefund(unknown payment)", err, payloom.CodeNotFound)
	if got := payloom.ErrorParam(err); got != "payment_id" {
		t.Errorf("CreateRefund(unknown payment) param = %q; want payment_id", got)
	}
	_, err = e.eng.CreateRefund(e.ctx, payloom.Scope{MerchantID: e.merchant.ID, Livemode: true}, "op_live", &payloom.RefundCreate{PaymentID: p.ID})
	wantCode(t, "CreateRefund(other scope)", err, payloom.CodeNotFound)
}

func TestRefundRetrySameKey(t *testing.T) {
	e := newEnv(t)
	p := e.pay(sandbox.CardVisa, 1000, "")
	req := &payloom.RefundCreate{PaymentID: p.ID, Amount: ptr(int64(400))}
	first, err := e.eng.CreateRefund(e.ctx, e.scope, "op_r", req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.eng.CreateRefund(e.ctx, e.scope, "op_r", req)
	if err != nil || !reflect.DeepEqual(again, first) {
		t.Errorf("retry = %+v, %v; want %+v", again, err, first)
	}
	if got := e.payment(p.ID).AmountRefunded; got != 400 {
		t.Errorf("AmountRefunded = %d; want 400", got)
	}
	if n := e.ledger(sandbox.KindRefund); n != 1 {
		t.Errorf("sandbox refunds = %d; want 1", n)
	}
}

// TestRefundRefusedByProcessor refunds the whole payment at the processor
// behind the engine's back (as from a processor dashboard): the engine's
// refund is refused, recorded failed, and its reservation released.
func TestRefundRefusedByProcessor(t *testing.T) {
	e := newEnv(t)
	p := e.pay(sandbox.CardVisa, 1000, "")
	res, err := e.sandbox.Refund(e.ctx, &payloom.RefundRequest{IdempotencyKey: "outside", TransactionID: p.Processor.TransactionID, Amount: 1000, Currency: "USD"})
	if err != nil || !res.Succeeded {
		t.Fatalf("sandbox.Refund = %+v, %v", res, err)
	}
	r, err := e.eng.CreateRefund(e.ctx, e.scope, "op_r", &payloom.RefundCreate{PaymentID: p.ID, Amount: ptr(int64(600))})
	if err != nil {
		t.Fatalf("CreateRefund: %v", err)
	}
	if r.Status != payloom.RefundStatusFailed || r.Failure == nil || r.Failure.Code == "" || r.Failure.Message == "" {
		t.Errorf("CreateRefund = %+v; want failed with a failure", r)
	}
	if got := e.payment(p.ID).AmountRefunded; got != 0 {
		t.Errorf("AmountRefunded = %d; want 0 (reservation released)", got)
	}
	if got := eventTypes(e.events(r.ID)); !slices.Equal(got, []payloom.EventType{payloom.EventRefundCreated, payloom.EventRefundFailed}) {
		t.Errorf("events = %v; want refund.created, refund.failed", got)
	}
}

// TestConcurrentRefunds fires 50 partial refunds of 300 at a payment of
// 10000 at once: 33 fit. Never more is reserved than was captured, and what
// succeeded is exactly AmountRefunded.
func TestConcurrentRefunds(t *testing.T) {
	e := newEnv(t)
	p := e.pay(sandbox.CardVisa, 10000, "")
	const n, amount = 50, 300
	var wg sync.WaitGroup
	results := make([]*payloom.Refund, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = e.eng.CreateRefund(e.ctx, e.scope, payloom.NewID("op"),
				&payloom.RefundCreate{PaymentID: p.ID, Amount: ptr(int64(amount))})
		})
	}
	wg.Wait()
	var succeeded, sum int64
	for i := range n {
		switch {
		case errs[i] == nil && results[i].Status == payloom.RefundStatusSucceeded:
			succeeded++
			sum += results[i].Amount
		case errs[i] == nil:
			t.Errorf("refund %d = %s; want succeeded", i, results[i].Status)
		default:
			wantCode(t, "CreateRefund", errs[i], payloom.CodeValidation)
		}
	}
	got := e.payment(p.ID)
	if succeeded != 33 || sum != got.AmountRefunded || got.AmountRefunded > got.AmountCaptured {
		t.Errorf("%d refunds succeeded, summing %d; payment refunded %d of %d; want 33, summing AmountRefunded <= captured",
			succeeded, sum, got.AmountRefunded, got.AmountCaptured)
	}
	var stored int64
	l, err := e.eng.ListRefunds(e.ctx, e.scope, payloom.RefundFilter{ListParams: payloom.ListParams{Limit: 100}, PaymentID: &p.ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range l.Data {
		if r.Status != payloom.RefundStatusSucceeded {
			t.Errorf("stored refund %s is %s; want succeeded", r.ID, r.Status)
		}
		stored += r.Amount
	}
	if stored != got.AmountRefunded || int64(len(l.Data)) != succeeded {
		t.Errorf("stored refunds: %d summing %d; want %d summing %d", len(l.Data), stored, succeeded, got.AmountRefunded)
	}
	if k := e.ledger(sandbox.KindRefund); int64(k) != succeeded {
		t.Errorf("sandbox refunds = %d; want %d", k, succeeded)
	}
}
