package engine_test

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/engine"
	"github.com/payloom/payloom/processor/sandbox"
)

const publicURL = "https://pay.example"

func withPublicURL(c *engine.Config) { c.PublicURL = publicURL + "/" }

// unpaidReq is a payment request without a payment method.
func unpaidReq(amount int64, capture payloom.CaptureMethod) *payloom.PaymentCreate {
	return &payloom.PaymentCreate{
		Amount: amount, Currency: "USD", CaptureMethod: capture, Reference: "order-7",
		PageOptions: payloom.PageOptions{
			LineItems:  []payloom.LineItem{{Description: "Mug", Amount: 1000, Quantity: 2}, {Description: "Shipping", Amount: amount - 2000, Quantity: 1}},
			SuccessURL: "https://shop.example/ok", FailureURL: "https://shop.example/ko",
		},
	}
}

// createUnpaid creates a hosted-page payment and returns it with the secret
// of its payment_url.
func (e *env) createUnpaid(req *payloom.PaymentCreate) (*payloom.Payment, string) {
	e.t.Helper()
	p, err := e.eng.CreatePayment(e.ctx, e.scope, payloom.NewID("op"), req)
	if err != nil {
		e.t.Fatalf("CreatePayment(no payment method): %v", err)
	}
	return p, pageSecret(e.t, p)
}

// pageSecret checks payment_url's shape and returns its secret.
func pageSecret(t testing.TB, p *payloom.Payment) string {
	t.Helper()
	u, err := url.Parse(p.PaymentURL)
	if err != nil || u.Scheme+"://"+u.Host != publicURL || u.Path != "/pay/"+p.ID || len(u.Query()["s"]) != 1 {
		t.Fatalf("PaymentURL = %q; want %s/pay/%s?s=<secret>", p.PaymentURL, publicURL, p.ID)
	}
	s := u.Query().Get("s")
	if len(s) != 43 {
		t.Fatalf("page secret %q has %d characters; want 43", s, len(s))
	}
	return s
}

func (e *env) confirm(id, opKey, number string) (*payloom.Payment, error) {
	e.t.Helper()
	return e.eng.ConfirmPayment(e.ctx, e.scope, opKey, id, &payloom.PaymentConfirm{CardToken: e.token(number)})
}

func TestCreateUnpaidPayment(t *testing.T) {
	e := newEnv(t, withPublicURL)
	p, secret := e.createUnpaid(unpaidReq(2500, ""))
	if p.Status != payloom.PaymentStatusRequiresPaymentMethod || len(p.Attempts) != 0 || p.PaymentMethod != nil {
		t.Fatalf("CreatePayment(no payment method) = status %q, %d attempts, method %+v; want requires_payment_method, none, none",
			p.Status, len(p.Attempts), p.PaymentMethod)
	}
	if want := e.clock.Now().Add(30 * 24 * time.Hour); p.ExpiresAt == nil || !p.ExpiresAt.Equal(want.Truncate(time.Microsecond)) {
		t.Errorf("ExpiresAt = %v; want %v (P30D)", p.ExpiresAt, want)
	}
	if len(p.LineItems) != 2 || p.SuccessURL != "https://shop.example/ok" || p.ReceiptURL != "" {
		t.Errorf("page = %+v; want the request's line items and URLs, no receipt_url", p.PaymentPage)
	}

	// The secret is stored only hashed and never shown again: not by a
	// read, not in the event, not in the logs.
	again := e.payment(p.ID)
	if again.PaymentURL != "" || !payloom.PageSecretMatches(again.PageSecretHash, secret) {
		t.Errorf("Payment(%s): PaymentURL %q, hash matches %v; want no URL and a matching hash",
			p.ID, again.PaymentURL, payloom.PageSecretMatches(again.PageSecretHash, secret))
	}
	evs := e.events(p.ID)
	if got := eventTypes(evs); !slices.Equal(got, []payloom.EventType{payloom.EventPaymentCreated}) {
		t.Fatalf("events = %v; want [payment.created]", got)
	}
	for where, s := range map[string]string{"event": string(evs[0].Data.Object), "logs": e.logs.String()} {
		if strings.Contains(s, secret) {
			t.Errorf("the page secret appears in the %s", where)
		}
	}
	var snap map[string]any
	if err := json.Unmarshal(evs[0].Data.Object, &snap); err != nil || snap["expires_at"] == nil || snap["line_items"] == nil {
		t.Errorf("payment.created snapshot = %s; want expires_at and line_items", evs[0].Data.Object)
	}
}

func TestCreateUnpaidPaymentValidation(t *testing.T) {
	e := newEnv(t, withPublicURL)
	now := e.clock.Now()
	tok := e.token(sandbox.CardVisa)
	dur := func(s string) *payloom.Duration {
		d, err := payloom.ParseDuration(s)
		if err != nil {
			t.Fatalf("ParseDuration(%q): %v", s, err)
		}
		return &d
	}
	tests := []struct {
		name  string
		edit  func(r *payloom.PaymentCreate)
		param string
	}{
		{"default expiry", func(r *payloom.PaymentCreate) {}, ""},
		{"expires_in P31D", func(r *payloom.PaymentCreate) { r.ExpiresIn = dur("P31D") }, ""},
		{"expires_in PT1S", func(r *payloom.PaymentCreate) { r.ExpiresIn = dur("PT1S") }, ""},
		{"expires_in P31DT1S", func(r *payloom.PaymentCreate) { r.ExpiresIn = dur("P31DT1S") }, "expires_in"},
		{"expires_in P1M (31 days or fewer)", func(r *payloom.PaymentCreate) { r.ExpiresIn = dur("P1M") }, ""},
		{"expires_in zero", func(r *payloom.PaymentCreate) { r.ExpiresIn = dur("PT0S") }, "expires_in"},
		{"expires_at future", func(r *payloom.PaymentCreate) { r.ExpiresAt = ptr(now.Add(time.Hour)) }, ""},
		{"expires_at now", func(r *payloom.PaymentCreate) { r.ExpiresAt = ptr(now) }, "expires_at"},
		{"expires_at 32 days", func(r *payloom.PaymentCreate) { r.ExpiresAt = ptr(now.Add(32 * 24 * time.Hour)) }, "expires_at"},
		{"both", func(r *payloom.PaymentCreate) { r.ExpiresAt, r.ExpiresIn = ptr(now.Add(time.Hour)), dur("PT1H") }, "expires_at"},
		{"items do not add up", func(r *payloom.PaymentCreate) { r.LineItems[0].Quantity = 3 }, "line_items"},
		{"item without description", func(r *payloom.PaymentCreate) { r.LineItems[1].Description = "" }, "line_items[1][description]"},
		{"item quantity 0", func(r *payloom.PaymentCreate) { r.LineItems[0].Quantity = 0 }, "line_items[0][quantity]"},
		{"item overflow", func(r *payloom.PaymentCreate) {
			r.LineItems[0].Amount, r.LineItems[0].Quantity = 1<<62, 1_000_000
		}, "line_items"},
		{"101 items", func(r *payloom.PaymentCreate) {
			r.LineItems = make([]payloom.LineItem, 101)
			for i := range r.LineItems {
				r.LineItems[i] = payloom.LineItem{Description: "x", Amount: 0, Quantity: 1}
			}
		}, "line_items"},
		{"relative success_url", func(r *payloom.PaymentCreate) { r.SuccessURL = "/ok" }, "success_url"},
		{"javascript failure_url", func(r *payloom.PaymentCreate) { r.FailureURL = "javascript:alert(1)" }, "failure_url"},
		{"credentials in return_url", func(r *payloom.PaymentCreate) { r.ReturnURL = "https://u:p@shop.example/" }, "return_url"},
		{"success_url with a token", func(r *payloom.PaymentCreate) {
			r.PaymentMethodType, r.CardToken = payloom.PaymentMethodTypeCard, tok
		}, "success_url"},
		{"expires_in with a token", func(r *payloom.PaymentCreate) {
			r.PaymentMethodType, r.CardToken = payloom.PaymentMethodTypeCard, tok
			r.SuccessURL, r.FailureURL, r.ExpiresIn = "", "", dur("PT1H")
		}, "expires_in"},
		{"line items and return_url with a token", func(r *payloom.PaymentCreate) {
			r.PaymentMethodType, r.CardToken = payloom.PaymentMethodTypeCard, tok
			r.SuccessURL, r.FailureURL, r.ReturnURL = "", "", "https://shop.example/back"
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := unpaidReq(2500, "")
			tt.edit(req)
			p, err := e.eng.CreatePayment(e.ctx, e.scope, payloom.NewID("op"), req)
			if tt.param == "" {
				if err != nil {
					t.Fatalf("CreatePayment = %v; want success", err)
				}
				return
			}
			if payloom.ErrorCode(err) != payloom.CodeValidation || payloom.ErrorParam(err) != tt.param {
				t.Fatalf("CreatePayment = %v, %v; want validation_error on %q", p, err, tt.param)
			}
		})
	}
	// Live mode wants https.
	live := payloom.Scope{MerchantID: e.scope.MerchantID, Livemode: true}
	req := unpaidReq(2500, "")
	req.SuccessURL = "http://shop.example/ok"
	_, err := e.eng.CreatePayment(e.ctx, live, payloom.NewID("op"), req)
	if payloom.ErrorParam(err) != "success_url" {
		t.Errorf("CreatePayment(live, http success_url) = %v; want a validation error on success_url", err)
	}
}

// A retry of the creating request gets a working payment_url: the secret is
// replaced, the first one dies. Once an attempt exists, no URL is given.
func TestCreateUnpaidPaymentRetry(t *testing.T) {
	e := newEnv(t, withPublicURL)
	op := payloom.NewID("op")
	first, err := e.eng.CreatePayment(e.ctx, e.scope, op, unpaidReq(2500, ""))
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.eng.CreatePayment(e.ctx, e.scope, op, unpaidReq(2500, ""))
	if err != nil || again.ID != first.ID {
		t.Fatalf("retry = %v, %v; want payment %s", again, err, first.ID)
	}
	s1, s2 := pageSecret(t, first), pageSecret(t, again)
	if _, err := e.eng.PagePayment(e.ctx, first.ID, s1); !payloom.IsCode(err, payloom.CodeNotFound) {
		t.Errorf("PagePayment(first secret) = %v; want not_found", err)
	}
	if _, err := e.eng.PagePayment(e.ctx, first.ID, s2); err != nil {
		t.Errorf("PagePayment(new secret) = %v; want the payment", err)
	}
	if _, err := e.confirm(first.ID, payloom.NewID("op"), sandbox.CardDeclined); err != nil {
		t.Fatal(err)
	}
	third, err := e.eng.CreatePayment(e.ctx, e.scope, op, unpaidReq(2500, ""))
	if err != nil || third.PaymentURL != "" || len(third.Attempts) != 1 {
		t.Fatalf("retry after an attempt = %+v, %v; want the payment without payment_url", third, err)
	}
	if len(e.events(first.ID)) != 2 {
		t.Errorf("events = %v; want payment.created once and payment.failed", eventTypes(e.events(first.ID)))
	}
}

func TestConfirmPayment(t *testing.T) {
	e := newEnv(t, withPublicURL)
	p, _ := e.createUnpaid(unpaidReq(2500, ""))

	// A decline: back to requires_payment_method, another card may follow.
	declined, err := e.confirm(p.ID, payloom.NewID("op"), sandbox.CardDeclined)
	if err != nil {
		t.Fatalf("ConfirmPayment(declined card) = %v", err)
	}
	if declined.Status != payloom.PaymentStatusRequiresPaymentMethod || declined.Failure == nil ||
		declined.Failure.DeclineCode != payloom.DeclineGeneric || declined.PaymentMethod != nil || len(declined.Attempts) != 1 {
		t.Fatalf("after a decline: status %q, failure %+v, method %+v, %d attempts; want requires_payment_method, generic_decline, none, 1",
			declined.Status, declined.Failure, declined.PaymentMethod, len(declined.Attempts))
	}

	op := payloom.NewID("op")
	paid, err := e.confirm(p.ID, op, sandbox.CardVisa)
	if err != nil {
		t.Fatalf("ConfirmPayment(visa) = %v", err)
	}
	if paid.Status != payloom.PaymentStatusCaptured || paid.Failure != nil || len(paid.Attempts) != 2 ||
		paid.PaymentMethod == nil || paid.PaymentMethod.Card.Last4 != "4242" {
		t.Fatalf("after paying: %+v; want captured with the visa, no failure, two attempts", paid)
	}
	wantReceipt := publicURL + "/receipts/" + p.ID + "?s=" + paid.ReceiptSecret.Reveal()
	if paid.ReceiptURL != wantReceipt || e.payment(p.ID).ReceiptURL != wantReceipt {
		t.Errorf("ReceiptURL = %q; want %q", paid.ReceiptURL, wantReceipt)
	}
	want := []payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentFailed,
		payloom.EventPaymentAuthorized, payloom.EventPaymentCaptured}
	if got := eventTypes(e.events(p.ID)); !slices.Equal(got, want) {
		t.Errorf("events = %v; want %v", got, want)
	}

	// The same request again answers the same; another is refused.
	charges := e.charges()
	again, err := e.confirm(p.ID, op, sandbox.CardVisa)
	if err != nil || again.Status != payloom.PaymentStatusCaptured || len(again.Attempts) != 2 {
		t.Errorf("retried ConfirmPayment = %v, %v; want the captured payment", again, err)
	}
	_, err = e.confirm(p.ID, payloom.NewID("op"), sandbox.CardVisa)
	wantCode(t, "ConfirmPayment(paid)", err, payloom.CodeInvalidState)
	if e.charges() != charges {
		t.Errorf("charges went from %d to %d", charges, e.charges())
	}

	// Errors that change nothing.
	_, err = e.eng.ConfirmPayment(e.ctx, e.scope, payloom.NewID("op"), p.ID, &payloom.PaymentConfirm{CardToken: "tok_unknown"})
	if payloom.ErrorParam(err) != "payment_method[card][token]" {
		t.Errorf("ConfirmPayment(unknown token) = %v; want a validation error on the token", err)
	}
	_, err = e.confirm("pay_unknown", payloom.NewID("op"), sandbox.CardVisa)
	wantCode(t, "ConfirmPayment(unknown payment)", err, payloom.CodeNotFound)
	other := payloom.Scope{MerchantID: e.scope.MerchantID, Livemode: true}
	_, err = e.eng.ConfirmPayment(e.ctx, other, payloom.NewID("op"), p.ID, &payloom.PaymentConfirm{CardToken: e.tokenIn(other, sandbox.CardVisa)})
	if !payloom.IsCode(err, payloom.CodeNotFound) && !payloom.IsCode(err, payloom.CodeInvalidState) {
		t.Errorf("ConfirmPayment(other mode) = %v; want not_found or invalid_state (no live processor)", err)
	}
	// A payment made with a token cannot be confirmed again.
	direct := e.pay(sandbox.CardVisa, 100, "")
	_, err = e.confirm(direct.ID, payloom.NewID("op"), sandbox.CardVisa)
	wantCode(t, "ConfirmPayment(direct payment)", err, payloom.CodeInvalidState)
}

// A crash right after the confirm phase leaves a pending attempt that the
// retry (or recovery) sends once.
func TestConfirmPaymentCrash(t *testing.T) {
	e := newEnv(t, withPublicURL)
	p, _ := e.createUnpaid(unpaidReq(2500, ""))
	op := payloom.NewID("op")
	tok := e.token(sandbox.CardVisa)
	e.crashAt(engine.PhasePaymentConfirmed)
	mustCrash(t, engine.PhasePaymentConfirmed, func() {
		_, _ = e.eng.ConfirmPayment(e.ctx, e.scope, op, p.ID, &payloom.PaymentConfirm{CardToken: tok})
	})
	if got := e.payment(p.ID); got.Status != payloom.PaymentStatusProcessing {
		t.Fatalf("after the crash: %q; want processing", got.Status)
	}
	out, err := e.eng.ConfirmPayment(e.ctx, e.scope, op, p.ID, &payloom.PaymentConfirm{CardToken: tok})
	if err != nil || out.Status != payloom.PaymentStatusCaptured || len(out.Attempts) != 1 {
		t.Fatalf("retry = %v, %v; want captured with one attempt", out, err)
	}
	if n := e.charges(); n != 1 {
		t.Errorf("charges = %d; want 1", n)
	}
}

// Two confirms at once: one attempt goes through, the other is refused.
func TestConfirmPaymentConcurrent(t *testing.T) {
	e := newEnv(t, withPublicURL)
	p, _ := e.createUnpaid(unpaidReq(2500, ""))
	toks := []string{e.token(sandbox.CardVisa), e.token(sandbox.CardMastercard)}
	var wg sync.WaitGroup
	errs := make([]error, len(toks))
	for i, tok := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.eng.ConfirmPayment(e.ctx, e.scope, payloom.NewID("op"), p.ID, &payloom.PaymentConfirm{CardToken: tok})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !payloom.IsCode(err, payloom.CodeInvalidState):
			t.Errorf("ConfirmPayment = %v; want success or invalid_state", err)
		}
	}
	if got := e.payment(p.ID); ok != 1 || e.charges() != 1 || len(got.Attempts) != 1 {
		t.Errorf("%d confirms succeeded, %d charges, %d attempts; want 1, 1, 1", ok, e.charges(), len(got.Attempts))
	}
}

func TestExpiry(t *testing.T) {
	e := newEnv(t, withPublicURL)
	hour, _ := payloom.ParseDuration("PT1H")
	soon := unpaidReq(2500, "")
	soon.ExpiresIn = &hour
	a, _ := e.createUnpaid(soon)
	b, _ := e.createUnpaid(soon)
	paid, _ := e.createUnpaid(soon)
	if _, err := e.confirm(paid.ID, payloom.NewID("op"), sandbox.CardVisa); err != nil {
		t.Fatal(err)
	}
	later, _ := e.createUnpaid(unpaidReq(2500, "")) // P30D

	if n, err := e.eng.ExpireDue(e.ctx); err != nil || n != 0 {
		t.Fatalf("ExpireDue before the hour = %d, %v; want 0", n, err)
	}
	e.clock.Advance(time.Hour)
	// Confirming past the expiry expires the payment instead.
	_, err := e.confirm(a.ID, payloom.NewID("op"), sandbox.CardVisa)
	wantCode(t, "ConfirmPayment(expired)", err, payloom.CodeInvalidState)
	n, err := e.eng.ExpireDue(e.ctx)
	if err != nil || n != 1 {
		t.Fatalf("ExpireDue = %d, %v; want 1 (b; a was expired by the confirm)", n, err)
	}
	for _, tt := range []struct {
		p    *payloom.Payment
		want payloom.PaymentStatus
	}{{a, payloom.PaymentStatusExpired}, {b, payloom.PaymentStatusExpired},
		{paid, payloom.PaymentStatusCaptured}, {later, payloom.PaymentStatusRequiresPaymentMethod}} {
		if got := e.payment(tt.p.ID).Status; got != tt.want {
			t.Errorf("payment %s: status %q; want %q", tt.p.ID, got, tt.want)
		}
	}
	if got := eventTypes(e.events(b.ID)); !slices.Equal(got, []payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentExpired}) {
		t.Errorf("events of the expired payment = %v; want created, expired", got)
	}
	if n, _ := e.eng.ExpireDue(e.ctx); n != 0 {
		t.Errorf("second ExpireDue = %d; want 0", n)
	}
	// Only one of two nodes runs the job.
	other := engine.New(e.cfg)
	if ran, _, err := e.eng.ExpiryPass(e.ctx); !ran || err != nil {
		t.Fatalf("ExpiryPass(first node) = %v, %v; want it to run", ran, err)
	}
	if ran, _, err := other.ExpiryPass(e.ctx); ran || err != nil {
		t.Errorf("ExpiryPass(second node) = %v, %v; want it not to run while the first holds the lease", ran, err)
	}
}

func TestCancelUnpaidPayment(t *testing.T) {
	e := newEnv(t, withPublicURL)
	p, secret := e.createUnpaid(unpaidReq(2500, ""))
	op := payloom.NewID("op")
	out, err := e.eng.CancelPayment(e.ctx, e.scope, op, p.ID)
	if err != nil || out.Status != payloom.PaymentStatusCanceled {
		t.Fatalf("CancelPayment(unpaid) = %v, %v; want canceled", out, err)
	}
	if again, err := e.eng.CancelPayment(e.ctx, e.scope, op, p.ID); err != nil || again.Status != payloom.PaymentStatusCanceled {
		t.Errorf("retried CancelPayment = %v, %v; want canceled", again, err)
	}
	_, err = e.confirm(p.ID, payloom.NewID("op"), sandbox.CardVisa)
	wantCode(t, "ConfirmPayment(canceled)", err, payloom.CodeInvalidState)
	if got, err := e.eng.PagePayment(e.ctx, p.ID, secret); err != nil || got.Status != payloom.PaymentStatusCanceled {
		t.Errorf("PagePayment(canceled) = %v, %v; want the canceled payment", got, err)
	}
	if got := eventTypes(e.events(p.ID)); !slices.Equal(got, []payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentCanceled}) {
		t.Errorf("events = %v; want created, canceled", got)
	}
}

func TestThreeDSecure(t *testing.T) {
	auto, manual := payloom.CaptureMethodAutomatic, payloom.CaptureMethodManual
	tests := []struct {
		name    string
		hosted  bool
		capture payloom.CaptureMethod
		approve bool
		status  payloom.PaymentStatus
		events  []payloom.EventType
	}{
		{"hosted approved automatic", true, auto, true, payloom.PaymentStatusCaptured,
			[]payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentAuthorized, payloom.EventPaymentCaptured}},
		{"hosted approved manual", true, manual, true, payloom.PaymentStatusAuthorized,
			[]payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentAuthorized}},
		{"hosted failed", true, auto, false, payloom.PaymentStatusRequiresPaymentMethod,
			[]payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentFailed}},
		{"API approved", false, auto, true, payloom.PaymentStatusCaptured,
			[]payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentAuthorized, payloom.EventPaymentCaptured}},
		{"API failed", false, auto, false, payloom.PaymentStatusDeclined,
			[]payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentFailed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, withPublicURL)
			var p *payloom.Payment
			var err error
			if tt.hosted {
				p, _ = e.createUnpaid(unpaidReq(2500, tt.capture))
				p, err = e.confirm(p.ID, payloom.NewID("op"), sandbox.CardRequires3DS)
			} else {
				req := paymentReq(e.token(sandbox.CardRequires3DS), 2500, tt.capture)
				req.ReturnURL = "https://shop.example/back"
				p, err = e.eng.CreatePayment(e.ctx, e.scope, payloom.NewID("op"), req)
			}
			if err != nil || p.Status != payloom.PaymentStatusRequiresAction {
				t.Fatalf("pay with the 3-D Secure card = %v, %v; want requires_action", p, err)
			}
			txn := p.Attempts[len(p.Attempts)-1].TransactionID
			if want := publicURL + sandbox.RedirectPathPrefix + txn; p.NextAction == nil || p.NextAction.RedirectURL != want {
				t.Fatalf("NextAction = %+v; want redirect_to_url %s", p.NextAction, want)
			}
			ch, err := e.sandbox.Challenge(e.ctx, txn)
			if want := publicURL + "/pay/" + p.ID + "/complete"; err != nil || ch.ReturnURL != want || ch.Outcome != "" {
				t.Fatalf("sandbox challenge = %+v, %v; want an open challenge returning to %s", ch, err, want)
			}

			// Before the shopper answers, nothing changes.
			same, err := e.eng.CompleteAuthentication(e.ctx, p.ID, nil)
			if err != nil || same.Status != payloom.PaymentStatusRequiresAction {
				t.Fatalf("CompleteAuthentication(open challenge) = %v, %v; want requires_action", same, err)
			}
			if _, err := e.sandbox.CompleteChallenge(e.ctx, txn, tt.approve); err != nil {
				t.Fatal(err)
			}
			done, err := e.eng.CompleteAuthentication(e.ctx, p.ID, nil)
			if err != nil || done.Status != tt.status || done.NextAction != nil {
				t.Fatalf("CompleteAuthentication = %+v, %v; want status %q without next_action", done, err, tt.status)
			}
			if !tt.approve && (done.Failure == nil || done.Failure.DeclineCode != payloom.DeclineAuthenticationFail) {
				t.Errorf("Failure = %+v; want decline code authentication_failed", done.Failure)
			}
			if tt.approve && (done.Processor == nil || done.Processor.AuthorizationCode == "") {
				t.Errorf("Processor = %+v; want an authorization code", done.Processor)
			}
			// Again: nothing more happens.
			again, err := e.eng.CompleteAuthentication(e.ctx, p.ID, nil)
			if err != nil || again.Status != tt.status {
				t.Errorf("second CompleteAuthentication = %v, %v; want %q", again, err, tt.status)
			}
			if got := eventTypes(e.events(p.ID)); !slices.Equal(got, tt.events) {
				t.Errorf("events = %v; want %v", got, tt.events)
			}
			if tt.status == payloom.PaymentStatusAuthorized {
				c, err := e.eng.CapturePayment(e.ctx, e.scope, payloom.NewID("op"), p.ID, nil)
				if err != nil || c.Status != payloom.PaymentStatusCaptured {
					t.Errorf("CapturePayment after 3-D Secure = %v, %v; want captured", c, err)
				}
			}
			wantCharges := 0
			if tt.approve {
				wantCharges = 1
			}
			if n := e.charges(); n != wantCharges {
				t.Errorf("charges = %d; want %d", n, wantCharges)
			}
		})
	}
	t.Run("unknown payment", func(t *testing.T) {
		e := newEnv(t)
		_, err := e.eng.CompleteAuthentication(e.ctx, payloom.NewID(payloom.PrefixPayment), nil)
		wantCode(t, "CompleteAuthentication(unknown)", err, payloom.CodeNotFound)
		_, err = e.eng.CompleteAuthentication(e.ctx, "../etc", nil)
		wantCode(t, "CompleteAuthentication(not an ID)", err, payloom.CodeNotFound)
	})
}

// A page secret opens its own payment and nothing else; a receipt secret
// opens its payment's receipt once captured.
func TestPageAndReceiptSecrets(t *testing.T) {
	e := newEnv(t, withPublicURL)
	a, secretA := e.createUnpaid(unpaidReq(2500, ""))
	b, secretB := e.createUnpaid(unpaidReq(2600, ""))
	for _, tt := range []struct {
		id, secret string
		ok         bool
	}{
		{a.ID, secretA, true}, {b.ID, secretB, true},
		{a.ID, secretB, false}, {b.ID, secretA, false},
		{a.ID, "", false}, {a.ID, secretA + "x", false}, {a.ID, strings.ToUpper(secretA), false},
		{payloom.NewID(payloom.PrefixPayment), secretA, false},
	} {
		p, err := e.eng.PagePayment(e.ctx, tt.id, tt.secret)
		switch {
		case tt.ok && (err != nil || p.ID != tt.id):
			t.Errorf("PagePayment(%s, right secret) = %v, %v; want the payment", tt.id, p, err)
		case !tt.ok && !payloom.IsCode(err, payloom.CodeNotFound):
			t.Errorf("PagePayment(%s, wrong secret) = %v, %v; want not_found", tt.id, p, err)
		}
	}

	paid, err := e.confirm(a.ID, payloom.NewID("op"), sandbox.CardVisa)
	if err != nil {
		t.Fatal(err)
	}
	receiptSecret := strings.SplitN(paid.ReceiptURL, "?s=", 2)[1]
	if _, err := e.eng.ReceiptPayment(e.ctx, b.ID, receiptSecret); !payloom.IsCode(err, payloom.CodeNotFound) {
		t.Errorf("ReceiptPayment(other payment) = %v; want not_found", err)
	}
	if _, err := e.eng.ReceiptPayment(e.ctx, a.ID, secretA); !payloom.IsCode(err, payloom.CodeNotFound) {
		t.Errorf("ReceiptPayment(page secret) = %v; want not_found", err)
	}
	amt := int64(500)
	if _, err := e.eng.CreateRefund(e.ctx, e.scope, payloom.NewID("op"), &payloom.RefundCreate{PaymentID: a.ID, Amount: &amt}); err != nil {
		t.Fatal(err)
	}
	rc, err := e.eng.ReceiptPayment(e.ctx, a.ID, receiptSecret)
	if err != nil {
		t.Fatalf("ReceiptPayment = %v", err)
	}
	if rc.Payment.ID != a.ID || rc.Merchant.Name != "Test Shop" || len(rc.Refunds) != 1 || rc.Refunds[0].Amount != 500 || rc.CapturedAt.IsZero() {
		t.Errorf("receipt = %+v; want payment %s, merchant Test Shop, one refund of 500, a capture time", rc, a.ID)
	}
}
