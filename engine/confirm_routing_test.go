package engine_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/engine"
	"github.com/payloom/payloom/processor/adyen"
	"github.com/payloom/payloom/processor/simulator"
)

// routedPageEnv is a routedEnv with a public URL, for hosted-page payments.
func routedPageEnv(t testing.TB, maxAttempts int, route ...payloom.Processor) *env {
	t.Helper()
	return newEnv(t, withPublicURL, func(c *engine.Config) {
		c.Router = engine.StaticRouter{Test: route}
		c.MaxAttempts = maxAttempts
		c.ProcessorTimeout = 300 * time.Millisecond
	})
}

// A hosted-page payment confirmed with a card is routed and falls back
// exactly as one created with the card: a failure before sending or a
// soft decline at A moves on to B, a hard decline stops (and the page may
// take another card), an unknown outcome stays processing at A, never
// sent to B.
func TestConfirmFallback(t *testing.T) {
	tests := []struct {
		name      string
		card      string
		setup     func(t *testing.T, a, b *sim)
		status    payloom.PaymentStatus
		attempts  []attemptWant
		approvals [2]int
		events    []payloom.EventType
	}{
		{
			name:   "A answers 5xx, captured on B",
			card:   simulator.CardApprove,
			setup:  func(t *testing.T, a, b *sim) { a.rule(t, simulator.Rule{Action: simulator.ActionError}) },
			status: payloom.PaymentStatusCaptured,
			attempts: []attemptWant{
				{"simA", payloom.AttemptStatusFailed, "processing_error"},
				{"simB", payloom.AttemptStatusCaptured, ""},
			},
			approvals: [2]int{0, 1},
			events:    []payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentAuthorized, payloom.EventPaymentCaptured},
		},
		{
			name:   "A declines soft, B approves",
			card:   simulator.CardDoNotHonor,
			setup:  func(t *testing.T, a, b *sim) { b.rule(t, simulator.Rule{Action: simulator.ActionApprove}) },
			status: payloom.PaymentStatusCaptured,
			attempts: []attemptWant{
				{"simA", payloom.AttemptStatusDeclined, "do_not_honor"},
				{"simB", payloom.AttemptStatusCaptured, ""},
			},
			approvals: [2]int{0, 1},
			events:    []payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentAuthorized, payloom.EventPaymentCaptured},
		},
		{
			name:      "A declines hard, no attempt on B, the page takes another card",
			card:      simulator.CardStolen,
			setup:     func(t *testing.T, a, b *sim) { b.rule(t, simulator.Rule{Action: simulator.ActionApprove}) },
			status:    payloom.PaymentStatusRequiresPaymentMethod,
			attempts:  []attemptWant{{"simA", payloom.AttemptStatusDeclined, "stolen_card"}},
			approvals: [2]int{0, 0},
			events:    []payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentFailed},
		},
		{
			name:      "A hangs after committing: processing, nothing on B",
			card:      simulator.CardApprove,
			setup:     func(t *testing.T, a, b *sim) { a.rule(t, simulator.Rule{Action: simulator.ActionHang, Times: 1}) },
			status:    payloom.PaymentStatusProcessing,
			attempts:  []attemptWant{{"simA", payloom.AttemptStatusPending, ""}},
			approvals: [2]int{1, 0},
			events:    []payloom.EventType{payloom.EventPaymentCreated},
		},
		{
			name:      "A drops the connection after committing: processing, nothing on B",
			card:      simulator.CardApprove,
			setup:     func(t *testing.T, a, b *sim) { a.rule(t, simulator.Rule{Action: simulator.ActionDrop, Times: 1}) },
			status:    payloom.PaymentStatusProcessing,
			attempts:  []attemptWant{{"simA", payloom.AttemptStatusPending, ""}},
			approvals: [2]int{1, 0},
			events:    []payloom.EventType{payloom.EventPaymentCreated},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := startSim(t, "simA", 0), startSim(t, "simB", 0)
			tt.setup(t, a, b)
			e := routedPageEnv(t, 0, a.conn, b.conn)
			unpaid, _ := e.createUnpaid(unpaidReq(2500, ""))
			p, err := e.confirm(unpaid.ID, payloom.NewID("op"), tt.card)
			if err != nil {
				t.Fatalf("ConfirmPayment(%s) = %v; want a payment", tt.card, err)
			}
			if p.Status != tt.status || !slices.Equal(attemptsOf(p), tt.attempts) {
				t.Fatalf("ConfirmPayment(%s) = %s with %+v; want %s with %+v", tt.card, p.Status, attemptsOf(p), tt.status, tt.attempts)
			}
			if got := e.payment(p.ID); got.Status != p.Status || !slices.Equal(attemptsOf(got), tt.attempts) {
				t.Errorf("stored payment = %s with %+v; want what ConfirmPayment returned", got.Status, attemptsOf(got))
			}
			for i, s := range []*sim{a, b} {
				if n := len(s.approvals(p.ID)); n != tt.approvals[i] {
					t.Errorf("%s approvals = %d; want %d", s.name, n, tt.approvals[i])
				}
			}
			if got := eventTypes(e.events(p.ID)); !slices.Equal(got, tt.events) {
				t.Errorf("events = %v; want %v", got, tt.events)
			}
			switch p.Status {
			case payloom.PaymentStatusRequiresPaymentMethod:
				if p.Failure == nil || p.Failure.DeclineCode != tt.attempts[len(tt.attempts)-1].code {
					t.Errorf("Failure = %+v; want the last attempt's decline", p.Failure)
				}
			case payloom.PaymentStatusProcessing:
				// The reconciler settles it from A alone.
				e.recoverAll(e.eng, 1)
				got := e.payment(p.ID)
				want := []attemptWant{{"simA", payloom.AttemptStatusCaptured, ""}}
				if got.Status != payloom.PaymentStatusCaptured || !slices.Equal(attemptsOf(got), want) {
					t.Errorf("reconciled = %s with %+v; want captured with %+v", got.Status, attemptsOf(got), want)
				}
				if n := len(a.approvals(p.ID)); n != 1 {
					t.Errorf("simA approvals after reconciliation = %d; want 1", n)
				}
				if n := len(b.server.Ledger().Authorizations); n != 0 {
					t.Errorf("simB authorizations = %d; want 0", n)
				}
			}
		})
	}
}

// Each card the shopper tries is routed anew: after a first card used up
// the route (and the attempt limit), a second card still starts at A and
// may still fall back to B.
func TestConfirmRoutesEachCardAnew(t *testing.T) {
	a, b := startSim(t, "simA", 0), startSim(t, "simB", 0)
	e := routedPageEnv(t, 2, a.conn, b.conn)
	unpaid, _ := e.createUnpaid(unpaidReq(2500, ""))

	p, err := e.confirm(unpaid.ID, payloom.NewID("op"), simulator.CardDoNotHonor)
	first := []attemptWant{
		{"simA", payloom.AttemptStatusDeclined, "do_not_honor"},
		{"simB", payloom.AttemptStatusDeclined, "do_not_honor"},
	}
	if err != nil || p.Status != payloom.PaymentStatusRequiresPaymentMethod || !slices.Equal(attemptsOf(p), first) {
		t.Fatalf("first card = %v %+v, %v; want requires_payment_method with %+v", p.Status, attemptsOf(p), err, first)
	}

	a.rule(t, simulator.Rule{Action: simulator.ActionError, Times: 1})
	p, err = e.confirm(unpaid.ID, payloom.NewID("op"), simulator.CardApprove)
	want := append(first,
		attemptWant{"simA", payloom.AttemptStatusFailed, "processing_error"},
		attemptWant{"simB", payloom.AttemptStatusCaptured, ""})
	if err != nil || p.Status != payloom.PaymentStatusCaptured || !slices.Equal(attemptsOf(p), want) {
		t.Fatalf("second card = %v %+v, %v; want captured with %+v", p.Status, attemptsOf(p), err, want)
	}
	if p.PaymentMethod == nil || p.PaymentMethod.Card.Last4 != "4242" || p.Processor == nil || p.Processor.Name != "simB" {
		t.Errorf("payment method %+v, processor %+v; want the second card, captured at simB", p.PaymentMethod, p.Processor)
	}
	if n := len(b.approvals(p.ID)); n != 1 {
		t.Errorf("simB approvals = %d; want 1", n)
	}
}

// brandRouter sends Mastercard payments to its second processor first: a
// routing rule on the card, which a confirmation must see.
type brandRouter struct{ engine.StaticRouter }

func (r brandRouter) Route(scope payloom.Scope, p *payloom.Payment) ([]payloom.Processor, error) {
	l, err := r.StaticRouter.Route(scope, p)
	if err == nil && p.PaymentMethod != nil && p.PaymentMethod.Card != nil && p.PaymentMethod.Card.Brand == payloom.CardBrandMastercard {
		l = []payloom.Processor{l[1], l[0]}
	}
	return l, err
}

func TestConfirmRoutesOnTheCard(t *testing.T) {
	a, b := startSim(t, "simA", 0), startSim(t, "simB", 0)
	e := newEnv(t, withPublicURL, func(c *engine.Config) {
		c.Router = brandRouter{engine.StaticRouter{Test: []payloom.Processor{a.conn, b.conn}}}
	})
	for _, tt := range []struct{ card, want string }{
		{simulator.CardApprove, "simA"}, {"5555555555554444", "simB"},
	} {
		unpaid, _ := e.createUnpaid(unpaidReq(2500, ""))
		p, err := e.confirm(unpaid.ID, payloom.NewID("op"), tt.card)
		if err != nil || p.Status != payloom.PaymentStatusCaptured || len(p.Attempts) != 1 || p.Attempts[0].Processor != tt.want {
			t.Errorf("ConfirmPayment(%s) = %v %+v, %v; want captured at %s", tt.card[:4], p.Status, attemptsOf(p), err, tt.want)
		}
	}
}

// A confirmation that dies after committing its fallback decision resumes
// at B, by a retry of the confirm or by recovery; A is not asked again.
func TestConfirmFallbackCrashResume(t *testing.T) {
	for _, mode := range resumeModes {
		t.Run(mode, func(t *testing.T) {
			a, b := startSim(t, "simA", 0), startSim(t, "simB", 0)
			a.rule(t, simulator.Rule{Action: simulator.ActionError, Times: 1})
			e := routedPageEnv(t, 0, a.conn, b.conn)
			unpaid, _ := e.createUnpaid(unpaidReq(2500, ""))
			op, tok := payloom.NewID("op"), e.token(simulator.CardApprove)
			e.crashAt(engine.PhasePaymentRecorded)
			mustCrash(t, engine.PhasePaymentRecorded, func() {
				e.eng.ConfirmPayment(e.ctx, e.scope, op, unpaid.ID, &payloom.PaymentConfirm{CardToken: tok})
			})
			pending := []attemptWant{{"simA", payloom.AttemptStatusFailed, "processing_error"}, {"simB", payloom.AttemptStatusPending, ""}}
			if p := e.payment(unpaid.ID); p.Status != payloom.PaymentStatusProcessing || !slices.Equal(attemptsOf(p), pending) {
				t.Fatalf("after the crash: %s with %+v; want processing with %+v", p.Status, attemptsOf(p), pending)
			}
			restarted := engine.New(e.cfg)
			var p *payloom.Payment
			var err error
			switch mode {
			case "retry":
				if p, err = restarted.ConfirmPayment(e.ctx, e.scope, op, unpaid.ID, &payloom.PaymentConfirm{CardToken: tok}); err != nil {
					t.Fatalf("ConfirmPayment(retry): %v", err)
				}
			case "recovery":
				e.recoverAll(restarted, 1)
				p = e.payment(unpaid.ID)
			}
			want := []attemptWant{{"simA", payloom.AttemptStatusFailed, "processing_error"}, {"simB", payloom.AttemptStatusCaptured, ""}}
			if p.Status != payloom.PaymentStatusCaptured || !slices.Equal(attemptsOf(p), want) {
				t.Errorf("resumed = %s with %+v; want captured with %+v", p.Status, attemptsOf(p), want)
			}
			if n := len(a.server.Ledger().Authorizations); n != 0 {
				t.Errorf("simA authorizations = %d; want 0", n)
			}
			if n := len(b.approvals(unpaid.ID)); n != 1 {
				t.Errorf("simB approvals = %d; want 1", n)
			}
		})
	}
}

// fakeAdyen is a stand-in for Adyen's Checkout API, enough for 3-D Secure
// through the real adyen connector: /payments asks every card to redirect
// the shopper; /payments/details answers by the redirectResult the
// shopper came back with: "passed" Authorised, "soft" Refused 2 (a generic
// refusal, soft), "hard" Refused 11 (3D Not Authenticated), anything else
// 422. It keeps Adyen's idempotency: a repeated key gets the first answer.
type fakeAdyen struct {
	mu         sync.Mutex
	returnURLs []string
	details    int // /payments/details requests answered afresh
	keys       map[string][]byte
	// last is the reference of the last /payments request: details
	// answers name that payment, as Adyen's name the one the shopper
	// authenticated for (the connector refuses an answer for another).
	last string
}

// calls returns the return URLs /payments was sent and how many
// /payments/details requests were answered afresh.
func (f *fakeAdyen) calls() ([]string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.returnURLs), f.details
}

func startFakeAdyen(t *testing.T, name string) (*fakeAdyen, *adyen.Connector) {
	t.Helper()
	f := &fakeAdyen{keys: map[string][]byte{}}
	ts := httptest.NewServer(f)
	t.Cleanup(ts.Close)
	return f, adyen.New(adyen.Options{APIKey: "test_key", MerchantAccount: "PayloomTest", BaseURL: ts.URL,
		ReturnURL: publicURL + "/", Name: name})
}

func (f *fakeAdyen) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Reference string            `json:"reference"`
		ReturnURL string            `json:"returnUrl"`
		Details   map[string]string `json:"details"`
	}
	raw, _ := io.ReadAll(r.Body)
	json.Unmarshal(raw, &body)
	f.mu.Lock()
	defer f.mu.Unlock()
	key := r.URL.Path + " " + r.Header.Get("Idempotency-Key")
	if b, ok := f.keys[key]; ok {
		w.Write(b)
		return
	}
	status, answer := http.StatusOK, map[string]any{}
	switch {
	case strings.HasSuffix(r.URL.Path, "/payments"):
		f.returnURLs = append(f.returnURLs, body.ReturnURL)
		f.last = body.Reference
		answer = map[string]any{"resultCode": "RedirectShopper", "pspReference": "PSP" + body.Reference[len(body.Reference)-13:],
			"action": map[string]any{"type": "redirect", "method": "GET",
				"url": "https://checkoutshopper-test.adyen.com/checkoutshopper/threeDS/redirect?MD=" + body.Reference}}
	case strings.HasSuffix(r.URL.Path, "/payments/details"):
		f.details++
		switch body.Details["redirectResult"] {
		case "passed":
			answer = map[string]any{"resultCode": "Authorised", "pspReference": "PSP0000000000001",
				"additionalData": map[string]any{"authCode": "065696"}}
		case "soft":
			answer = map[string]any{"resultCode": "Refused", "refusalReasonCode": "2", "refusalReason": "Refused", "pspReference": "PSP0000000000001"}
		case "hard":
			answer = map[string]any{"resultCode": "Refused", "refusalReasonCode": "11", "refusalReason": "3D Not Authenticated", "pspReference": "PSP0000000000001"}
		default:
			status, answer = http.StatusUnprocessableEntity, map[string]any{"status": 422, "errorCode": "14_018", "message": "Invalid payload provided", "errorType": "validation"}
		}
		if status == http.StatusOK {
			answer["pspReference"], answer["merchantReference"] = "PSP"+f.last[len(f.last)-13:], f.last
		}
	default:
		status = http.StatusNotFound
	}
	b, _ := json.Marshal(answer)
	if status == http.StatusOK {
		f.keys[key] = b
	}
	w.WriteHeader(status)
	w.Write(b)
}

// The outcome of a 3-D Secure authentication goes through the same
// fallback as an authorization's answer: a soft decline after the
// shopper authenticated at A (Adyen) moves the payment to B; a failed
// authentication (hard) stops; a pass is captured at A. Forged details and
// a shopper not back yet change nothing.
func TestCompleteAuthenticationFallback(t *testing.T) {
	tests := []struct {
		name     string
		hosted   bool
		result   string // the redirectResult the shopper comes back with
		status   payloom.PaymentStatus
		attempts []attemptWant
		events   []payloom.EventType
	}{
		{"hosted, passed", true, "passed", payloom.PaymentStatusCaptured,
			[]attemptWant{{"adyenA", payloom.AttemptStatusCaptured, ""}},
			[]payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentAuthorized, payloom.EventPaymentCaptured}},
		{"hosted, soft decline: captured on B", true, "soft", payloom.PaymentStatusCaptured,
			[]attemptWant{{"adyenA", payloom.AttemptStatusDeclined, payloom.DeclineGeneric}, {"simB", payloom.AttemptStatusCaptured, ""}},
			[]payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentAuthorized, payloom.EventPaymentCaptured}},
		{"hosted, authentication failed: no attempt on B", true, "hard", payloom.PaymentStatusRequiresPaymentMethod,
			[]attemptWant{{"adyenA", payloom.AttemptStatusDeclined, payloom.DeclineAuthenticationFail}},
			[]payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentFailed}},
		{"API, soft decline: captured on B", false, "soft", payloom.PaymentStatusCaptured,
			[]attemptWant{{"adyenA", payloom.AttemptStatusDeclined, payloom.DeclineGeneric}, {"simB", payloom.AttemptStatusCaptured, ""}},
			[]payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentAuthorized, payloom.EventPaymentCaptured}},
		{"API, authentication failed", false, "hard", payloom.PaymentStatusDeclined,
			[]attemptWant{{"adyenA", payloom.AttemptStatusDeclined, payloom.DeclineAuthenticationFail}},
			[]payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentFailed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, ady := startFakeAdyen(t, "adyenA")
			b := startSim(t, "simB", 0)
			e := routedPageEnv(t, 0, ady, b.conn)
			var p *payloom.Payment
			var err error
			if tt.hosted {
				unpaid, _ := e.createUnpaid(unpaidReq(2500, ""))
				p, err = e.confirm(unpaid.ID, payloom.NewID("op"), simulator.CardApprove)
			} else {
				p, err = e.eng.CreatePayment(e.ctx, e.scope, payloom.NewID("op"), paymentReq(e.token(simulator.CardApprove), 2500, ""))
			}
			if err != nil || p.Status != payloom.PaymentStatusRequiresAction {
				t.Fatalf("pay = %v, %v; want requires_action", p, err)
			}
			if p.NextAction == nil || !strings.HasPrefix(p.NextAction.RedirectURL, "https://checkoutshopper-test.adyen.com/") {
				t.Fatalf("NextAction = %+v; want Adyen's redirect", p.NextAction)
			}
			if urls, _ := fake.calls(); len(urls) != 1 || urls[0] != publicURL+"/pay/"+p.ID+"/complete" {
				t.Errorf("Adyen got returnUrl %q; want %q", urls, publicURL+"/pay/"+p.ID+"/complete")
			}

			// Not back yet, or back with forged details: nothing changes.
			for _, details := range []map[string]string{nil, {"redirectResult": "forged"}} {
				same, err := e.eng.CompleteAuthentication(e.ctx, p.ID, details)
				if err != nil || same.Status != payloom.PaymentStatusRequiresAction || len(same.Attempts) != 1 {
					t.Fatalf("CompleteAuthentication(%v) = %v, %v; want requires_action, unchanged", details, same, err)
				}
			}

			back := map[string]string{"redirectResult": tt.result, "s": "the-page-secret"}
			done, err := e.eng.CompleteAuthentication(e.ctx, p.ID, back)
			if err != nil || done.Status != tt.status || !slices.Equal(attemptsOf(done), tt.attempts) {
				t.Fatalf("CompleteAuthentication(%s) = %v %+v, %v; want %s with %+v", tt.result, done.Status, attemptsOf(done), err, tt.status, tt.attempts)
			}
			if done.NextAction != nil {
				t.Errorf("NextAction = %+v; want none", done.NextAction)
			}
			if got := eventTypes(e.events(p.ID)); !slices.Equal(got, tt.events) {
				t.Errorf("events = %v; want %v", got, tt.events)
			}
			wantB := 0
			if tt.result == "soft" {
				wantB = 1
			}
			if n := len(b.approvals(p.ID)); n != wantB {
				t.Errorf("simB approvals = %d; want %d", n, wantB)
			}
			if done.Status == payloom.PaymentStatusCaptured {
				last := done.Attempts[len(done.Attempts)-1]
				if done.Processor == nil || done.Processor.Name != last.Processor || done.Processor.TransactionID != last.TransactionID {
					t.Errorf("Processor = %+v; want %s's transaction %s", done.Processor, last.Processor, last.TransactionID)
				}
			}

			// The shopper reloads the landing: nothing more happens.
			_, detailsBefore := fake.calls()
			again, err := e.eng.CompleteAuthentication(e.ctx, p.ID, back)
			if err != nil || again.Status != tt.status || !slices.Equal(attemptsOf(again), tt.attempts) {
				t.Errorf("CompleteAuthentication again = %v %+v, %v; want %s unchanged", again.Status, attemptsOf(again), err, tt.status)
			}
			if _, n := fake.calls(); n != detailsBefore {
				t.Errorf("a reload asked Adyen again (%d -> %d /payments/details)", detailsBefore, n)
			}
		})
	}
}

// A payment's attempts are bounded in all, not only per confirmation: a
// hosted page confirmed card after card (card testing) gets at most
// MaxPaymentAttempts attempts, the last confirmation's fallbacks cut short
// by it, and further confirmations are refused with too_many_attempts.
func TestPaymentAttemptCap(t *testing.T) {
	a, b := startSim(t, "simA", 0), startSim(t, "simB", 0)
	e := newEnv(t, withPublicURL, func(c *engine.Config) {
		c.Router = engine.StaticRouter{Test: []payloom.Processor{a.conn, b.conn}}
		c.MaxAttempts = 2
		c.MaxPaymentAttempts = 5
		c.ProcessorTimeout = 300 * time.Millisecond
	})
	unpaid, _ := e.createUnpaid(unpaidReq(2500, ""))
	// Soft declines everywhere: each confirmation falls back A to B.
	for i, wantTotal := range []int{2, 4, 5} {
		p, err := e.confirm(unpaid.ID, payloom.NewID("op"), simulator.CardDoNotHonor)
		if err != nil {
			t.Fatalf("confirmation %d: %v", i+1, err)
		}
		if p.Status != payloom.PaymentStatusRequiresPaymentMethod || len(p.Attempts) != wantTotal {
			t.Fatalf("confirmation %d = %s with %d attempts in all; want requires_payment_method with %d", i+1, p.Status, len(p.Attempts), wantTotal)
		}
	}
	_, err := e.confirm(unpaid.ID, payloom.NewID("op"), simulator.CardApprove)
	wantCode(t, "ConfirmPayment past the limit", err, payloom.CodeTooManyAttempts)
	if msg := payloom.ErrorMessage(err); !strings.Contains(msg, "5 attempts") {
		t.Errorf("message = %q; want it to say the payment had 5 attempts", msg)
	}
	got := e.payment(unpaid.ID)
	if got.Status != payloom.PaymentStatusRequiresPaymentMethod || len(got.Attempts) != 5 {
		t.Errorf("payment = %s with %d attempts; want requires_payment_method with 5", got.Status, len(got.Attempts))
	}
	if n, m := len(a.server.Ledger().Authorizations), len(b.server.Ledger().Authorizations); n+m != 5 {
		t.Errorf("authorizations sent: simA %d, simB %d; want 5 in all", n, m)
	}
	if !strings.Contains(e.logs.String(), "a confirmation was refused: the payment has had as many attempts") {
		t.Error("log lacks the refused confirmation")
	}
}
