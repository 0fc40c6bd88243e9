package engine_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/processor/sandbox"
)

func TestCreatePaymentOutcomes(t *testing.T) {
	const amount = 2500
	auto, manual := payloom.CaptureMethodAutomatic, payloom.CaptureMethodManual
	tests := []struct {
		name        string
		card        string
		capture     payloom.CaptureMethod
		status      payloom.PaymentStatus
		attempt     payloom.AttemptStatus
		code        string
		declineCode string
		capturable  int64
		captured    int64
		charges     int
		events      []payloom.EventType
	}{
		{"visa automatic", sandbox.CardVisa, auto, payloom.PaymentStatusCaptured, payloom.AttemptStatusCaptured, "", "", 0, amount, 1,
			[]payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentAuthorized, payloom.EventPaymentCaptured}},
		{"visa manual", sandbox.CardVisa, manual, payloom.PaymentStatusAuthorized, payloom.AttemptStatusAuthorized, "", "", amount, 0, 1,
			[]payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentAuthorized}},
		{"mastercard default capture", sandbox.CardMastercard, "", payloom.PaymentStatusCaptured, payloom.AttemptStatusCaptured, "", "", 0, amount, 1,
			[]payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentAuthorized, payloom.EventPaymentCaptured}},
		{"declined", sandbox.CardDeclined, auto, payloom.PaymentStatusDeclined, payloom.AttemptStatusDeclined, payloom.FailureCardDeclined, payloom.DeclineGeneric, 0, 0, 0,
			[]payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentFailed}},
		{"insufficient funds", sandbox.CardInsufficientFunds, auto, payloom.PaymentStatusDeclined, payloom.AttemptStatusDeclined, payloom.FailureCardDeclined, payloom.DeclineInsufficientFunds, 0, 0, 0,
			[]payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentFailed}},
		{"incorrect cvc", sandbox.CardIncorrectCVC, manual, payloom.PaymentStatusDeclined, payloom.AttemptStatusDeclined, payloom.FailureIncorrectCVC, payloom.DeclineIncorrectCVC, 0, 0, 0,
			[]payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentFailed}},
		{"expired card", sandbox.CardExpired, auto, payloom.PaymentStatusDeclined, payloom.AttemptStatusDeclined, payloom.FailureExpiredCard, payloom.DeclineExpiredCard, 0, 0, 0,
			[]payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentFailed}},
		{"fraudulent", sandbox.CardFraudulent, auto, payloom.PaymentStatusDeclined, payloom.AttemptStatusDeclined, payloom.FailureCardDeclined, payloom.DeclineFraudulent, 0, 0, 0,
			[]payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentFailed}},
		{"processing error", sandbox.CardProcessingError, auto, payloom.PaymentStatusFailed, payloom.AttemptStatusFailed, payloom.FailureProcessingError, payloom.DeclineProcessingError, 0, 0, 0,
			[]payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentFailed}},
		{"3-D Secure", sandbox.CardRequires3DS, auto, payloom.PaymentStatusRequiresAction, payloom.AttemptStatusRequiresAction, "", "", 0, 0, 0,
			[]payloom.EventType{payloom.EventPaymentCreated}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			p := e.pay(tt.card, amount, tt.capture)
			if p.Status != tt.status {
				t.Fatalf("CreatePayment(%s).Status = %q; want %q", tt.name, p.Status, tt.status)
			}
			if p.AmountCapturable != tt.capturable || p.AmountCaptured != tt.captured || p.AmountRefunded != 0 {
				t.Errorf("amounts (capturable, captured, refunded) = %d, %d, %d; want %d, %d, 0",
					p.AmountCapturable, p.AmountCaptured, p.AmountRefunded, tt.capturable, tt.captured)
			}
			if len(p.Attempts) != 1 {
				t.Fatalf("len(Attempts) = %d; want 1", len(p.Attempts))
			}
			a := p.Attempts[0]
			if a.Status != tt.attempt || a.Processor != sandbox.Name || a.CompletedAt == nil || !strings.HasPrefix(a.ID, "att_") {
				t.Errorf("attempt = %+v; want status %q at %q, completed, ID att_...", a, tt.attempt, sandbox.Name)
			}
			if tt.code == "" {
				if p.Failure != nil {
					t.Errorf("Failure = %+v; want none", p.Failure)
				}
			} else if p.Failure == nil || p.Failure.Code != tt.code || p.Failure.DeclineCode != tt.declineCode || p.Failure.Message == "" {
				t.Errorf("Failure = %+v; want code %q, decline code %q and a message", p.Failure, tt.code, tt.declineCode)
			} else if a.Code != tt.code || a.DeclineCode != tt.declineCode || a.RawCode == "" {
				t.Errorf("attempt codes = %q/%q raw %q; want %q/%q and a raw code", a.Code, a.DeclineCode, a.RawCode, tt.code, tt.declineCode)
			}
			if tt.status == payloom.PaymentStatusRequiresAction {
				if p.NextAction == nil || p.NextAction.Type != "redirect_to_url" || !strings.HasPrefix(p.NextAction.RedirectURL, sandbox.RedirectPathPrefix) {
					t.Errorf("NextAction = %+v; want redirect_to_url to %s...", p.NextAction, sandbox.RedirectPathPrefix)
				}
			} else if p.NextAction != nil {
				t.Errorf("NextAction = %+v; want none", p.NextAction)
			}
			if tt.charges == 1 {
				pd := p.Processor
				if pd == nil || pd.Name != sandbox.Name || pd.TransactionID == "" || pd.AuthorizationCode == "" || pd.AVSResult == "" || pd.CVVResult == "" || pd.NetworkTransactionID == "" {
					t.Errorf("Processor = %+v; want every detail of an approval", pd)
				}
			}
			if got := e.charges(); got != tt.charges {
				t.Errorf("sandbox charges = %d; want %d", got, tt.charges)
			}
			if got := e.ledger(sandbox.KindAuthorize); got != 1 {
				t.Errorf("sandbox authorizations = %d; want 1", got)
			}
			if got := eventTypes(e.events(p.ID)); !slices.Equal(got, tt.events) {
				t.Errorf("events = %v; want %v", got, tt.events)
			}
			// What was returned is what was committed.
			if got := e.payment(p.ID); !reflect.DeepEqual(got, p) {
				t.Errorf("Payment(%q) = %+v; want the returned %+v", p.ID, got, p)
			}
			card := p.PaymentMethod.Card
			if p.PaymentMethod.Type != payloom.PaymentMethodTypeCard || card == nil || card.Last4 != tt.card[12:] || card.First6 != tt.card[:6] {
				t.Errorf("PaymentMethod = %+v; want the card summary", p.PaymentMethod)
			}
		})
	}
}

func TestCreatePaymentFields(t *testing.T) {
	e := newEnv(t)
	tok := e.token(sandbox.CardVisa)
	req := &payloom.PaymentCreate{
		Amount: 1234, Currency: "EUR", CardToken: tok, CaptureMethod: payloom.CaptureMethodManual,
		CustomerID: "crm-customer-1", Reference: "ord_9", Description: "two mugs", StatementDescriptor: "PAYLOOM MUGS",
		Metadata: map[string]string{"a": "b"},
	}
	p, err := e.eng.CreatePayment(e.ctx, e.scope, "op_fields", req)
	if err != nil {
		t.Fatalf("CreatePayment: %v", err)
	}
	if !strings.HasPrefix(p.ID, "pay_") || p.Object != "payment" || p.MerchantID != e.merchant.ID || p.Livemode ||
		p.Amount != 1234 || p.Currency != "EUR" || p.CustomerID != "crm-customer-1" || p.Reference != "ord_9" ||
		p.Description != "two mugs" || p.StatementDescriptor != "PAYLOOM MUGS" || p.Metadata["a"] != "b" ||
		p.CaptureMethod != payloom.CaptureMethodManual || p.PaymentMethod.Card.Token != tok || p.CreatedAt.IsZero() {
		t.Errorf("CreatePayment = %+v; want the request's fields", p)
	}
	// The request's map is copied, not shared.
	req.Metadata["a"] = "changed"
	if got := e.payment(p.ID).Metadata["a"]; got != "b" {
		t.Errorf("Metadata[a] = %q; want b", got)
	}
}

func TestCreatePaymentValidation(t *testing.T) {
	e := newEnv(t)
	limited := &payloom.Merchant{Name: "Limited", MinAmount: 100, MaxAmount: 1000}
	if err := e.eng.CreateMerchant(e.ctx, limited); err != nil {
		t.Fatalf("CreateMerchant: %v", err)
	}
	ls := payloom.Scope{MerchantID: limited.ID}
	ltok := e.tokenIn(ls, sandbox.CardVisa)
	tok := e.token(sandbox.CardVisa)
	otherMerchantTok := ltok
	liveTok := e.tokenIn(payloom.Scope{MerchantID: e.merchant.ID, Livemode: true}, sandbox.CardVisa)
	tests := []struct {
		name  string
		scope payloom.Scope
		req   *payloom.PaymentCreate
		code  string
		param string
	}{
		{"below merchant minimum", ls, paymentReq(ltok, 99, ""), payloom.CodeValidation, "amount"},
		{"above merchant maximum", ls, paymentReq(ltok, 1001, ""), payloom.CodeValidation, "amount"},
		{"zero amount", e.scope, paymentReq(tok, 0, ""), payloom.CodeValidation, "amount"},
		{"above default maximum", e.scope, paymentReq(tok, payloom.DefaultMaxAmount+1, ""), payloom.CodeValidation, "amount"},
		{"unknown token", e.scope, paymentReq("tok_nope", 100, ""), payloom.CodeValidation, "payment_method[card][token]"},
		{"empty token", e.scope, paymentReq("", 100, ""), payloom.CodeValidation, "payment_method[card][token]"},
		{"token of another merchant", e.scope, paymentReq(otherMerchantTok, 100, ""), payloom.CodeValidation, "payment_method[card][token]"},
		{"live token in test mode", e.scope, paymentReq(liveTok, 100, ""), payloom.CodeValidation, "payment_method[card][token]"},
		{"bad capture method", e.scope, paymentReq(tok, 100, "later"), payloom.CodeValidation, "capture_method"},
		{"unknown currency", e.scope, &payloom.PaymentCreate{Amount: 100, Currency: "XXX", CardToken: tok}, payloom.CodeValidation, "currency"},
		{"live mode has no processor", payloom.Scope{MerchantID: e.merchant.ID, Livemode: true}, paymentReq(liveTok, 100, ""), payloom.CodeInvalidState, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.eng.CreatePayment(e.ctx, tt.scope, payloom.NewID("op"), tt.req)
			wantCode(t, "CreatePayment", err, tt.code)
			if got := payloom.ErrorParam(err); got != tt.param {
				t.Errorf("CreatePayment(%s) param = %q; want %q", tt.name, got, tt.param)
			}
		})
	}
	_, err := e.eng.CreatePayment(e.ctx, payloom.Scope{MerchantID: e.merchant.ID, Livemode: true}, "op_live", paymentReq(liveTok, 100, ""))
	if msg := payloom.ErrorMessage(err); msg != "no processor is configured for live mode" {
		t.Errorf("live CreatePayment message = %q; want %q", msg, "no processor is configured for live mode")
	}
	// Nothing was stored by any of them.
	for _, s := range []payloom.Scope{e.scope, ls, {MerchantID: e.merchant.ID, Livemode: true}} {
		l, err := e.eng.ListPayments(e.ctx, s, payloom.PaymentFilter{})
		if err != nil || len(l.Data) != 0 {
			t.Errorf("ListPayments(%+v) = %d payments, %v; want none", s, len(l.Data), err)
		}
	}
	if got := e.ledger(sandbox.KindAuthorize); got != 0 {
		t.Errorf("sandbox authorizations = %d; want 0", got)
	}
	// Within limits works for the limited merchant.
	p, err := e.eng.CreatePayment(e.ctx, ls, "op_ok", paymentReq(ltok, 1000, ""))
	if err != nil || p.Status != payloom.PaymentStatusCaptured {
		t.Fatalf("CreatePayment(1000 within 100..1000) = %v, %v; want captured", p, err)
	}
}

func TestCaptureAndCancel(t *testing.T) {
	tests := []struct {
		name       string
		cancel     bool
		amount     *int64
		status     payloom.PaymentStatus
		captured   int64
		eventAfter payloom.EventType
	}{
		{"full capture", false, nil, payloom.PaymentStatusCaptured, 5000, payloom.EventPaymentCaptured},
		{"explicit full capture", false, ptr(int64(5000)), payloom.PaymentStatusCaptured, 5000, payloom.EventPaymentCaptured},
		{"partial capture", false, ptr(int64(1999)), payloom.PaymentStatusCaptured, 1999, payloom.EventPaymentCaptured},
		{"cancel", true, nil, payloom.PaymentStatusCanceled, 0, payloom.EventPaymentCanceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			p := e.pay(sandbox.CardVisa, 5000, payloom.CaptureMethodManual)
			var got *payloom.Payment
			var err error
			if tt.cancel {
				got, err = e.eng.CancelPayment(e.ctx, e.scope, "op_x", p.ID)
			} else {
				got, err = e.eng.CapturePayment(e.ctx, e.scope, "op_x", p.ID, tt.amount)
			}
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if got.Status != tt.status || got.AmountCaptured != tt.captured || got.AmountCapturable != 0 || got.PendingAction != "" {
				t.Errorf("%s = status %q captured %d capturable %d pending %q; want %q, %d, 0, none",
					tt.name, got.Status, got.AmountCaptured, got.AmountCapturable, got.PendingAction, tt.status, tt.captured)
			}
			if stored := e.payment(p.ID); !reflect.DeepEqual(stored, got) {
				t.Errorf("stored %+v; want the returned %+v", stored, got)
			}
			want := []payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentAuthorized, tt.eventAfter}
			evs := e.events(p.ID)
			if types := eventTypes(evs); !slices.Equal(types, want) {
				t.Fatalf("events = %v; want %v", types, want)
			}
			var snap payloom.Payment
			if err := json.Unmarshal(evs[2].Data.Object, &snap); err != nil {
				t.Fatal(err)
			}
			if snap.Status != tt.status || snap.AmountCaptured != tt.captured {
				t.Errorf("%s snapshot = %q captured %d; want %q, %d", tt.eventAfter, snap.Status, snap.AmountCaptured, tt.status, tt.captured)
			}
			// A retry of the same request gets the same payment back.
			var again *payloom.Payment
			if tt.cancel {
				again, err = e.eng.CancelPayment(e.ctx, e.scope, "op_x", p.ID)
			} else {
				again, err = e.eng.CapturePayment(e.ctx, e.scope, "op_x", p.ID, tt.amount)
			}
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("retry = %+v, %v; want %+v", again, err, got)
			}
			if n := len(e.events(p.ID)); n != 3 {
				t.Errorf("events after retry = %d; want 3", n)
			}
		})
	}
}

func TestCaptureAmountValidation(t *testing.T) {
	e := newEnv(t)
	p := e.pay(sandbox.CardVisa, 5000, payloom.CaptureMethodManual)
	for _, amt := range []int64{0, -1, 5001} {
		_, err := e.eng.CapturePayment(e.ctx, e.scope, payloom.NewID("op"), p.ID, &amt)
		wantCode(t, "CapturePayment", err, payloom.CodeValidation)
		if got := payloom.ErrorParam(err); got != "amount" {
			t.Errorf("CapturePayment(%d) param = %q; want amount", amt, got)
		}
	}
	if got := e.payment(p.ID); !reflect.DeepEqual(got, p) {
		t.Errorf("payment changed after refused captures: %+v; want %+v", got, p)
	}
}

// TestInvalidTransitions checks that every illegal operation answers
// invalid_state and changes nothing: not the payment, not its events, not
// the processor's ledger.
func TestInvalidTransitions(t *testing.T) {
	e := newEnv(t)
	declined := e.pay(sandbox.CardDeclined, 1000, "")
	failed := e.pay(sandbox.CardProcessingError, 1000, "")
	action := e.pay(sandbox.CardRequires3DS, 1000, "")
	captured := e.pay(sandbox.CardVisa, 1000, "")
	authorized := e.pay(sandbox.CardVisa, 1000, payloom.CaptureMethodManual)
	canceled := e.pay(sandbox.CardVisa, 1000, payloom.CaptureMethodManual)
	if _, err := e.eng.CancelPayment(e.ctx, e.scope, "op_cancel", canceled.ID); err != nil {
		t.Fatal(err)
	}
	capture := func(id string) error {
		_, err := e.eng.CapturePayment(e.ctx, e.scope, payloom.NewID("op"), id, nil)
		return err
	}
	cancel := func(id string) error {
		_, err := e.eng.CancelPayment(e.ctx, e.scope, payloom.NewID("op"), id)
		return err
	}
	refund := func(id string) error {
		_, err := e.eng.CreateRefund(e.ctx, e.scope, payloom.NewID("op"), &payloom.RefundCreate{PaymentID: id})
		return err
	}
	tests := []struct {
		name string
		id   string
		op   func(string) error
		msg  string
	}{
		{"capture declined", declined.ID, capture, "payment is declined; only authorized payments can be captured"},
		{"capture failed", failed.ID, capture, "payment is failed; only authorized payments can be captured"},
		{"capture requires_action", action.ID, capture, "payment is requires_action; only authorized payments can be captured"},
		{"capture captured", captured.ID, capture, "payment is captured; only authorized payments can be captured"},
		{"capture canceled", canceled.ID, capture, "payment is canceled; only authorized payments can be captured"},
		{"cancel captured", captured.ID, cancel, "payment is captured; only authorized payments can be canceled"},
		{"cancel canceled", canceled.ID, cancel, "payment is canceled; only authorized payments can be canceled"},
		{"cancel declined", declined.ID, cancel, "payment is declined; only authorized payments can be canceled"},
		{"refund authorized", authorized.ID, refund, "payment is authorized; only captured payments can be refunded"},
		{"refund declined", declined.ID, refund, "payment is declined; only captured payments can be refunded"},
		{"refund canceled", canceled.ID, refund, "payment is canceled; only captured payments can be refunded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.payment(tt.id)
			evBefore := len(e.events(tt.id))
			ledgerBefore := e.ledger(sandbox.KindCapture) + e.ledger(sandbox.KindVoid) + e.ledger(sandbox.KindRefund)
			err := tt.op(tt.id)
			wantCode(t, tt.name, err, payloom.CodeInvalidState)
			if got := payloom.ErrorMessage(err); got != tt.msg {
				t.Errorf("%s message = %q; want %q", tt.name, got, tt.msg)
			}
			if after := e.payment(tt.id); !reflect.DeepEqual(after, before) {
				t.Errorf("%s changed the payment: %+v; want %+v", tt.name, after, before)
			}
			if n := len(e.events(tt.id)); n != evBefore {
				t.Errorf("%s: %d events; want %d", tt.name, n, evBefore)
			}
			if n := e.ledger(sandbox.KindCapture) + e.ledger(sandbox.KindVoid) + e.ledger(sandbox.KindRefund); n != ledgerBefore {
				t.Errorf("%s: %d processor operations; want %d", tt.name, n, ledgerBefore)
			}
		})
	}
	_, err := e.eng.CapturePayment(e.ctx, e.scope, "op", "pay_missing", nil)
	wantCode(t, "CapturePayment(missing)", err, payloom.CodeNotFound)
	other := payloom.Scope{MerchantID: e.merchant.ID, Livemode: true}
	_, err = e.eng.CancelPayment(e.ctx, other, "op", authorized.ID)
	wantCode(t, "CancelPayment(other scope)", err, payloom.CodeNotFound)
}

// TestCaptureRefusedByProcessor voids the authorization at the processor
// behind the engine's back, as an expired authorization would be: the
// capture is refused, the payment stays authorized and can still be
// canceled... which the processor refuses too.
func TestCaptureRefusedByProcessor(t *testing.T) {
	e := newEnv(t)
	p := e.pay(sandbox.CardVisa, 5000, payloom.CaptureMethodManual)
	res, err := e.sandbox.Void(e.ctx, &payloom.VoidRequest{IdempotencyKey: "outside", TransactionID: p.Processor.TransactionID})
	if err != nil || !res.Succeeded {
		t.Fatalf("sandbox.Void = %+v, %v", res, err)
	}
	_, err = e.eng.CapturePayment(e.ctx, e.scope, "op_cap", p.ID, nil)
	wantCode(t, "CapturePayment", err, payloom.CodeInvalidState)
	if msg := payloom.ErrorMessage(err); !strings.HasPrefix(msg, "the processor refused the capture: ") {
		t.Errorf("CapturePayment message = %q; want the processor's refusal", msg)
	}
	got := e.payment(p.ID)
	if got.Status != payloom.PaymentStatusAuthorized || got.AmountCapturable != 5000 || got.PendingAction != "" {
		t.Errorf("after refusal: status %q capturable %d pending %q; want authorized, 5000, none", got.Status, got.AmountCapturable, got.PendingAction)
	}
	// A second capture of another amount hits the same per-payment key:
	// still a refusal, not an endless unknown outcome.
	_, err = e.eng.CapturePayment(e.ctx, e.scope, "op_cap2", p.ID, ptr(int64(100)))
	wantCode(t, "CapturePayment(again)", err, payloom.CodeInvalidState)
	if got := e.payment(p.ID); got.PendingAction != "" || got.Status != payloom.PaymentStatusAuthorized {
		t.Errorf("after second refusal: status %q pending %q; want authorized, none", got.Status, got.PendingAction)
	}
	if n := len(e.events(p.ID)); n != 2 {
		t.Errorf("events = %d; want 2 (created, authorized)", n)
	}
}

func TestReads(t *testing.T) {
	e := newEnv(t)
	l, err := e.eng.ListPayments(e.ctx, e.scope, payloom.PaymentFilter{})
	if err != nil || l.Object != "list" || l.Data == nil || len(l.Data) != 0 || l.HasMore {
		t.Fatalf("ListPayments(empty) = %+v, %v; want an empty non-nil list", l, err)
	}
	rl, err := e.eng.ListRefunds(e.ctx, e.scope, payloom.RefundFilter{})
	if err != nil || rl.Object != "list" || rl.Data == nil {
		t.Fatalf("ListRefunds(empty) = %+v, %v; want an empty non-nil list", rl, err)
	}
	el, err := e.eng.ListEvents(e.ctx, e.scope, payloom.EventFilter{})
	if err != nil || el.Object != "list" || el.Data == nil {
		t.Fatalf("ListEvents(empty) = %+v, %v; want an empty non-nil list", el, err)
	}
	var ids []string
	for range 12 {
		ids = append(ids, e.pay(sandbox.CardVisa, 100, "").ID)
	}
	tests := []struct {
		limit int
		n     int
		more  bool
	}{{0, 10, true}, {-5, 10, true}, {1000, 12, false}, {12, 12, false}, {3, 3, true}}
	for _, tt := range tests {
		l, err := e.eng.ListPayments(e.ctx, e.scope, payloom.PaymentFilter{ListParams: payloom.ListParams{Limit: tt.limit}})
		if err != nil || len(l.Data) != tt.n || l.HasMore != tt.more {
			t.Errorf("ListPayments(limit %d) = %d, more %v, %v; want %d, more %v", tt.limit, len(l.Data), l.HasMore, err, tt.n, tt.more)
			continue
		}
		if l.Data[0].ID != ids[len(ids)-1] {
			t.Errorf("ListPayments(limit %d)[0] = %s; want the newest %s", tt.limit, l.Data[0].ID, ids[len(ids)-1])
		}
	}
	evs := e.events(ids[0])
	ev, err := e.eng.Event(e.ctx, e.scope, evs[0].ID)
	if err != nil || ev.Type != payloom.EventPaymentCreated {
		t.Errorf("Event(%q) = %+v, %v; want payment.created", evs[0].ID, ev, err)
	}
	_, err = e.eng.Event(e.ctx, payloom.Scope{MerchantID: "mrch_other"}, evs[0].ID)
	wantCode(t, "Event(other scope)", err, payloom.CodeNotFound)
	_, err = e.eng.Payment(e.ctx, payloom.Scope{MerchantID: e.merchant.ID, Livemode: true}, ids[0])
	wantCode(t, "Payment(live scope)", err, payloom.CodeNotFound)
}

// TestEventSnapshots checks that each event carries the object as it was
// when the event was written.
func TestEventSnapshots(t *testing.T) {
	e := newEnv(t)
	p := e.pay(sandbox.CardVisa, 3000, payloom.CaptureMethodManual)
	if _, err := e.eng.CapturePayment(e.ctx, e.scope, "op_c", p.ID, ptr(int64(2000))); err != nil {
		t.Fatal(err)
	}
	r, err := e.eng.CreateRefund(e.ctx, e.scope, "op_r", &payloom.RefundCreate{PaymentID: p.ID, Amount: ptr(int64(500)), Reason: payloom.RefundReasonRequestedByCustomer})
	if err != nil {
		t.Fatal(err)
	}
	type snap struct {
		Status         string `json:"status"`
		Capturable     int64  `json:"amount_capturable"`
		Captured       int64  `json:"amount_captured"`
		Refunded       int64  `json:"amount_refunded"`
		Amount         int64  `json:"amount"`
		AttemptsStatus []struct {
			Status string `json:"status"`
		} `json:"attempts"`
	}
	want := []struct {
		typ  payloom.EventType
		want snap
	}{
		{payloom.EventPaymentCreated, snap{Status: "processing", Amount: 3000}},
		{payloom.EventPaymentAuthorized, snap{Status: "authorized", Capturable: 3000, Amount: 3000}},
		{payloom.EventPaymentCaptured, snap{Status: "captured", Captured: 2000, Amount: 3000}},
	}
	evs := e.events(p.ID)
	if len(evs) != len(want) {
		t.Fatalf("events = %v; want %d", eventTypes(evs), len(want))
	}
	attemptStatus := []string{"pending", "authorized", "authorized"}
	for i, w := range want {
		var got snap
		if err := json.Unmarshal(evs[i].Data.Object, &got); err != nil {
			t.Fatal(err)
		}
		if evs[i].Type != w.typ || evs[i].ObjectID != p.ID || evs[i].MerchantID != e.merchant.ID {
			t.Errorf("event %d = %s for %s; want %s for %s", i, evs[i].Type, evs[i].ObjectID, w.typ, p.ID)
		}
		if len(got.AttemptsStatus) != 1 || got.AttemptsStatus[0].Status != attemptStatus[i] {
			t.Errorf("%s attempts = %+v; want one %s", w.typ, got.AttemptsStatus, attemptStatus[i])
		}
		got.AttemptsStatus = nil
		if !reflect.DeepEqual(got, w.want) {
			t.Errorf("%s snapshot = %+v; want %+v", w.typ, got, w.want)
		}
		if strings.Contains(string(evs[i].Data.Object), sandbox.CardVisa) {
			t.Errorf("%s snapshot holds the card number", w.typ)
		}
	}
	revs := e.events(r.ID)
	if got := eventTypes(revs); !slices.Equal(got, []payloom.EventType{payloom.EventRefundCreated, payloom.EventRefundSucceeded}) {
		t.Fatalf("refund events = %v", got)
	}
	for i, status := range []payloom.RefundStatus{payloom.RefundStatusPending, payloom.RefundStatusSucceeded} {
		var got payloom.Refund
		if err := json.Unmarshal(revs[i].Data.Object, &got); err != nil {
			t.Fatal(err)
		}
		if got.Status != status || got.Amount != 500 || got.PaymentID != p.ID {
			t.Errorf("%s snapshot = %+v; want %s of 500 for %s", revs[i].Type, got, status, p.ID)
		}
	}
}

// TestLogsHoldNoCardData runs every flow and scans the log for the card
// number.
func TestLogsHoldNoCardData(t *testing.T) {
	e := newEnv(t)
	p := e.pay(sandbox.CardVisa, 3000, payloom.CaptureMethodManual)
	if _, err := e.eng.CapturePayment(e.ctx, e.scope, "op_c", p.ID, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.eng.CreateRefund(e.ctx, e.scope, "op_r", &payloom.RefundCreate{PaymentID: p.ID}); err != nil {
		t.Fatal(err)
	}
	e.pay(sandbox.CardDeclined, 3000, "")
	logs := e.logs.String()
	for _, want := range []string{"payment created", "payment recorded", "payment action recorded", "refund recorded"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	for _, number := range []string{sandbox.CardVisa, sandbox.CardDeclined} {
		if strings.Contains(logs, number) {
			t.Errorf("log holds card number %s", number)
		}
	}
}

func ptr[T any](v T) *T { return &v }
