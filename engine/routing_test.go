package engine_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/engine"
	"github.com/payloom/payloom/processor/simulator"
)

// sim is one simulated processor: a simulator server on 127.0.0.1 and the
// connector to it, under its own name.
type sim struct {
	name   string
	server *simulator.Server
	conn   *simulator.Connector
}

func startSim(t testing.TB, name string, timeout time.Duration) *sim {
	t.Helper()
	s := simulator.NewServer(simulator.Options{})
	hs := httptest.NewServer(s)
	// Close the simulator first so that hung requests end, then the
	// listener (which waits for them).
	t.Cleanup(hs.Close)
	t.Cleanup(s.Close)
	return &sim{name: name, server: s, conn: simulator.NewConnector(hs.URL, simulator.ConnectorOptions{Name: name, Timeout: timeout})}
}

func (s *sim) rule(t testing.TB, r simulator.Rule) {
	t.Helper()
	if _, err := s.server.AddRules(r); err != nil {
		t.Fatalf("%s.AddRules(%+v): %v", s.name, r, err)
	}
}

// approvals returns the simulator's approved authorizations for a payment.
func (s *sim) approvals(paymentID string) []simulator.LedgerAuthorization {
	var out []simulator.LedgerAuthorization
	for _, a := range s.server.Ledger().Approved() {
		if a.Reference == paymentID {
			out = append(out, a)
		}
	}
	return out
}

// routedEnv is an env whose test mode routes to sims, in order.
func routedEnv(t testing.TB, maxAttempts int, timeout time.Duration, sims ...*sim) *env {
	t.Helper()
	var route []payloom.Processor
	for _, s := range sims {
		route = append(route, s.conn)
	}
	return newEnv(t, func(c *engine.Config) {
		c.Router = engine.StaticRouter{Test: route}
		c.MaxAttempts = maxAttempts
		if timeout > 0 {
			c.ProcessorTimeout = timeout
		}
	})
}

type attemptWant struct {
	processor string
	status    payloom.AttemptStatus
	code      string // canonical decline code, if any
}

func attemptsOf(p *payloom.Payment) []attemptWant {
	var out []attemptWant
	for _, a := range p.Attempts {
		out = append(out, attemptWant{a.Processor, a.Status, a.DeclineCode})
	}
	return out
}

func TestFallback(t *testing.T) {
	tests := []struct {
		name  string
		card  string
		setup func(t *testing.T, a, b, c *sim)
		max   int
		// want: the payment's status and attempts, and how many approved
		// authorizations each simulator holds for it.
		status    payloom.PaymentStatus
		attempts  []attemptWant
		approvals [3]int
		events    []payloom.EventType
	}{
		{
			name: "A answers 5xx, captured on B",
			card: simulator.CardApprove,
			setup: func(t *testing.T, a, b, c *sim) {
				a.rule(t, simulator.Rule{Action: simulator.ActionError})
			},
			status: payloom.PaymentStatusCaptured,
			attempts: []attemptWant{
				{"simA", payloom.AttemptStatusFailed, "processing_error"},
				{"simB", payloom.AttemptStatusCaptured, ""},
			},
			approvals: [3]int{0, 1, 0},
			events:    []payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentAuthorized, payloom.EventPaymentCaptured},
		},
		{
			name: "A declines soft, B approves",
			card: simulator.CardDoNotHonor,
			setup: func(t *testing.T, a, b, c *sim) {
				b.rule(t, simulator.Rule{Action: simulator.ActionApprove})
			},
			status: payloom.PaymentStatusCaptured,
			attempts: []attemptWant{
				{"simA", payloom.AttemptStatusDeclined, "do_not_honor"},
				{"simB", payloom.AttemptStatusCaptured, ""},
			},
			approvals: [3]int{0, 1, 0},
			events:    []payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentAuthorized, payloom.EventPaymentCaptured},
		},
		{
			name: "A declines hard, no attempt on B",
			card: simulator.CardStolen,
			setup: func(t *testing.T, a, b, c *sim) {
				b.rule(t, simulator.Rule{Action: simulator.ActionApprove})
			},
			status:    payloom.PaymentStatusDeclined,
			attempts:  []attemptWant{{"simA", payloom.AttemptStatusDeclined, "stolen_card"}},
			approvals: [3]int{0, 0, 0},
			events:    []payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentFailed},
		},
		{
			name:   "every processor fails: all three tried, payment failed",
			card:   simulator.CardNotProcessed,
			status: payloom.PaymentStatusFailed,
			attempts: []attemptWant{
				{"simA", payloom.AttemptStatusFailed, "processing_error"},
				{"simB", payloom.AttemptStatusFailed, "processing_error"},
				{"simC", payloom.AttemptStatusFailed, "processing_error"},
			},
			events: []payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentFailed},
		},
		{
			name: "max attempts 2 stops before C",
			card: simulator.CardNotProcessed,
			max:  2,
			setup: func(t *testing.T, a, b, c *sim) {
				c.rule(t, simulator.Rule{Action: simulator.ActionApprove})
			},
			status: payloom.PaymentStatusFailed,
			attempts: []attemptWant{
				{"simA", payloom.AttemptStatusFailed, "processing_error"},
				{"simB", payloom.AttemptStatusFailed, "processing_error"},
			},
			events: []payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentFailed},
		},
		{
			name: "A drops the connection after committing: no attempt on B",
			card: simulator.CardApprove,
			setup: func(t *testing.T, a, b, c *sim) {
				a.rule(t, simulator.Rule{Action: simulator.ActionDrop})
			},
			status:    payloom.PaymentStatusProcessing,
			attempts:  []attemptWant{{"simA", payloom.AttemptStatusPending, ""}},
			approvals: [3]int{1, 0, 0},
			events:    []payloom.EventType{payloom.EventPaymentCreated},
		},
		{
			name: "A hangs after committing: no attempt on B",
			card: simulator.CardApprove,
			setup: func(t *testing.T, a, b, c *sim) {
				a.rule(t, simulator.Rule{Action: simulator.ActionHang})
			},
			status:    payloom.PaymentStatusProcessing,
			attempts:  []attemptWant{{"simA", payloom.AttemptStatusPending, ""}},
			approvals: [3]int{1, 0, 0},
			events:    []payloom.EventType{payloom.EventPaymentCreated},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b, c := startSim(t, "simA", 0), startSim(t, "simB", 0), startSim(t, "simC", 0)
			if tt.setup != nil {
				tt.setup(t, a, b, c)
			}
			e := routedEnv(t, tt.max, 300*time.Millisecond, a, b, c)
			p, err := e.eng.CreatePayment(e.ctx, e.scope, "op_route", paymentReq(e.token(tt.card), 1234, ""))
			if err != nil {
				t.Fatalf("CreatePayment(%s) = %v; want a payment", tt.card, err)
			}
			if p.Status != tt.status || !slices.Equal(attemptsOf(p), tt.attempts) {
				t.Fatalf("CreatePayment(%s) = %s with attempts %+v; want %s with %+v", tt.card, p.Status, attemptsOf(p), tt.status, tt.attempts)
			}
			if got := e.payment(p.ID); got.Status != p.Status || !slices.Equal(attemptsOf(got), tt.attempts) {
				t.Errorf("stored payment = %s with %+v; want what CreatePayment returned", got.Status, attemptsOf(got))
			}
			for i, s := range []*sim{a, b, c} {
				if n := len(s.approvals(p.ID)); n != tt.approvals[i] {
					t.Errorf("%s approvals = %d; want %d", s.name, n, tt.approvals[i])
				}
			}
			if got := eventTypes(e.events(p.ID)); !slices.Equal(got, tt.events) {
				t.Errorf("events = %v; want %v", got, tt.events)
			}
			var sum int64
			for _, at := range p.Attempts {
				sum += at.DurationMS
				if at.Status != payloom.AttemptStatusPending && at.Status != payloom.AttemptStatusCaptured && at.RawCode == "" && at.Status != payloom.AttemptStatusFailed {
					t.Errorf("attempt %s (%s) has no raw code", at.ID, at.Status)
				}
			}
			if p.ProcessorMS != sum || p.ProcessingMS < 0 {
				t.Errorf("processor_ms = %d, processing_ms = %d; want %d and >= 0", p.ProcessorMS, p.ProcessingMS, sum)
			}
			if p.Status == payloom.PaymentStatusCaptured {
				last := p.Attempts[len(p.Attempts)-1]
				if p.Processor == nil || p.Processor.Name != last.Processor || p.Processor.TransactionID != last.TransactionID {
					t.Errorf("processor = %+v; want %s's transaction %s", p.Processor, last.Processor, last.TransactionID)
				}
			}
		})
	}
}

// The reconciler settles an unknown outcome from the same processor's
// Lookup, without sending the authorization anywhere again.
func TestReconcileFromLookup(t *testing.T) {
	for _, action := range []string{simulator.ActionDrop, simulator.ActionHang} {
		t.Run(action, func(t *testing.T) {
			a, b := startSim(t, "simA", 0), startSim(t, "simB", 0)
			a.rule(t, simulator.Rule{Action: action, Times: 1})
			e := routedEnv(t, 0, 300*time.Millisecond, a, b)
			p, err := e.eng.CreatePayment(e.ctx, e.scope, "op_rec", paymentReq(e.token(simulator.CardApprove), 777, ""))
			if err != nil || p.Status != payloom.PaymentStatusProcessing {
				t.Fatalf("CreatePayment = %v, %v; want processing", p, err)
			}
			authsBefore := len(a.server.Ledger().Authorizations)
			e.recoverAll(e.eng, 1)
			got := e.payment(p.ID)
			want := []attemptWant{{"simA", payloom.AttemptStatusCaptured, ""}}
			if got.Status != payloom.PaymentStatusCaptured || !slices.Equal(attemptsOf(got), want) || got.AmountCaptured != 777 {
				t.Errorf("reconciled = %s captured %d with %+v; want captured 777 with %+v", got.Status, got.AmountCaptured, attemptsOf(got), want)
			}
			if n := len(a.server.Ledger().Authorizations); n != authsBefore {
				t.Errorf("simA authorizations after reconciliation = %d; want %d (lookup, no resend)", n, authsBefore)
			}
			if n := len(b.server.Ledger().Authorizations); n != 0 {
				t.Errorf("simB authorizations = %d; want 0", n)
			}
			wantEv := []payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentAuthorized, payloom.EventPaymentCaptured}
			if ev := eventTypes(e.events(p.ID)); !slices.Equal(ev, wantEv) {
				t.Errorf("events = %v; want %v", ev, wantEv)
			}
		})
	}
}

// A payment whose attempt never reached the processor (not found by
// Lookup) is sent again to the same processor under the same key, never
// to another.
func TestReconcileNotFoundResendsToSameProcessor(t *testing.T) {
	a, b := startSim(t, "simA", 0), startSim(t, "simB", 0)
	e := routedEnv(t, 0, 300*time.Millisecond, a, b)
	e.crashAt(engine.PhasePaymentCreated)
	mustCrash(t, engine.PhasePaymentCreated, func() {
		e.eng.CreatePayment(e.ctx, e.scope, "op_nf", paymentReq(e.token(simulator.CardApprove), 500, ""))
	})
	l, err := e.eng.ListPayments(e.ctx, e.scope, payloom.PaymentFilter{})
	if err != nil || len(l.Data) != 1 {
		t.Fatalf("ListPayments = %v, %v; want one payment", l, err)
	}
	e.recoverAll(e.eng, 1)
	got := e.payment(l.Data[0].ID)
	want := []attemptWant{{"simA", payloom.AttemptStatusCaptured, ""}}
	if got.Status != payloom.PaymentStatusCaptured || !slices.Equal(attemptsOf(got), want) {
		t.Errorf("recovered = %s with %+v; want captured with %+v", got.Status, attemptsOf(got), want)
	}
	if n := len(a.approvals(got.ID)); n != 1 {
		t.Errorf("simA approvals = %d; want 1", n)
	}
	if n := len(b.server.Ledger().Authorizations); n != 0 {
		t.Errorf("simB authorizations = %d; want 0", n)
	}
}

// A payment naming a processor tries it first; the route supplies the
// fallbacks after it.
func TestFirstTryProcessor(t *testing.T) {
	tests := []struct {
		name     string
		first    string
		bErrors  bool
		attempts []attemptWant
		code     string // want an error with this code instead
	}{
		{"first in the route", "simA", false, []attemptWant{{"simA", payloom.AttemptStatusCaptured, ""}}, ""},
		{"second in the route", "simB", false, []attemptWant{{"simB", payloom.AttemptStatusCaptured, ""}}, ""},
		{"falls back to the route", "simB", true, []attemptWant{
			{"simB", payloom.AttemptStatusFailed, "processing_error"},
			{"simA", payloom.AttemptStatusCaptured, ""},
		}, ""},
		{"unknown", "simZ", false, nil, payloom.CodeValidation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := startSim(t, "simA", 0), startSim(t, "simB", 0)
			if tt.bErrors {
				b.rule(t, simulator.Rule{Action: simulator.ActionError})
			}
			e := routedEnv(t, 0, 0, a, b)
			req := paymentReq(e.token(simulator.CardApprove), 321, "")
			req.Processor = tt.first
			p, err := e.eng.CreatePayment(e.ctx, e.scope, "op_first", req)
			if tt.code != "" {
				wantCode(t, "CreatePayment(processor "+tt.first+")", err, tt.code)
				if perr, ok := err.(*payloom.Error); !ok || perr.Param != "processor" {
					t.Errorf("CreatePayment(processor %s) error = %v; want param processor", tt.first, err)
				}
				return
			}
			if err != nil || p.Status != payloom.PaymentStatusCaptured || !slices.Equal(attemptsOf(p), tt.attempts) {
				t.Fatalf("CreatePayment(processor %s) = %v %+v, %v; want captured with %+v", tt.first, p.Status, attemptsOf(p), err, tt.attempts)
			}
		})
	}
}

// A crash after the phase that records A's failure and commits the attempt
// on B neither loses nor repeats the decision: the retry and the recovery
// both send the committed attempt to B, and A is never asked again.
func TestFallbackCrashResume(t *testing.T) {
	for _, mode := range resumeModes {
		t.Run(mode, func(t *testing.T) {
			a, b := startSim(t, "simA", 0), startSim(t, "simB", 0)
			a.rule(t, simulator.Rule{Action: simulator.ActionError, Times: 1})
			e := routedEnv(t, 0, 0, a, b)
			req := paymentReq(e.token(simulator.CardApprove), 4200, "")
			e.crashAt(engine.PhasePaymentRecorded)
			mustCrash(t, engine.PhasePaymentRecorded, func() { e.eng.CreatePayment(e.ctx, e.scope, "op_fb_crash", req) })
			l, err := e.eng.ListPayments(e.ctx, e.scope, payloom.PaymentFilter{})
			if err != nil || len(l.Data) != 1 {
				t.Fatalf("ListPayments = %v; want one payment", err)
			}
			id := l.Data[0].ID
			pending := []attemptWant{{"simA", payloom.AttemptStatusFailed, "processing_error"}, {"simB", payloom.AttemptStatusPending, ""}}
			if p := e.payment(id); p.Status != payloom.PaymentStatusProcessing || !slices.Equal(attemptsOf(p), pending) {
				t.Fatalf("after the crash: %s with %+v; want processing with %+v", p.Status, attemptsOf(p), pending)
			}
			restarted := engine.New(e.cfg)
			var p *payloom.Payment
			switch mode {
			case "retry":
				if p, err = restarted.CreatePayment(e.ctx, e.scope, "op_fb_crash", req); err != nil {
					t.Fatalf("CreatePayment(retry): %v", err)
				}
			case "recovery":
				e.recoverAll(restarted, 1)
				p = e.payment(id)
			}
			want := []attemptWant{{"simA", payloom.AttemptStatusFailed, "processing_error"}, {"simB", payloom.AttemptStatusCaptured, ""}}
			if p.Status != payloom.PaymentStatusCaptured || !slices.Equal(attemptsOf(p), want) {
				t.Errorf("resumed = %s with %+v; want captured with %+v", p.Status, attemptsOf(p), want)
			}
			if n := len(a.server.Ledger().Authorizations); n != 0 {
				t.Errorf("simA authorizations = %d; want 0", n)
			}
			if n := len(b.approvals(id)); n != 1 {
				t.Errorf("simB approvals = %d; want 1", n)
			}
		})
	}
}

// uncapturedSim authorizes without capture whatever it is asked, then
// loses the answer: a processor holding an authorization that a payment
// with automatic capture wanted captured.
type uncapturedSim struct{ *simulator.Connector }

func (u uncapturedSim) Authorize(ctx context.Context, req *payloom.AuthorizeRequest) (*payloom.AuthorizeResult, error) {
	r := *req
	r.Capture = false
	if _, err := u.Connector.Authorize(ctx, &r); err != nil {
		return nil, err
	}
	return nil, errors.New("uncapturedSim: the answer was lost")
}

// A reconciled authorization that the processor holds uncaptured is
// captured when the payment asked for automatic capture.
func TestReconcileCapturesAutomatic(t *testing.T) {
	a := startSim(t, "simA", 0)
	e := newEnv(t, func(c *engine.Config) {
		c.Router = engine.StaticRouter{Test: []payloom.Processor{uncapturedSim{a.conn}}}
	})
	p, err := e.eng.CreatePayment(e.ctx, e.scope, "op_unc", paymentReq(e.token(simulator.CardApprove), 650, payloom.CaptureMethodAutomatic))
	if err != nil || p.Status != payloom.PaymentStatusProcessing {
		t.Fatalf("CreatePayment = %v, %v; want processing", p, err)
	}
	e.recoverAll(e.eng, 1)
	got := e.payment(p.ID)
	if got.Status != payloom.PaymentStatusCaptured || got.AmountCaptured != 650 || len(got.Attempts) != 1 {
		t.Errorf("reconciled = %s captured %d with %d attempts; want captured 650 with 1", got.Status, got.AmountCaptured, len(got.Attempts))
	}
	if ap := a.approvals(p.ID); len(ap) != 1 || ap[0].AmountCaptured != 650 {
		t.Errorf("simA approvals = %+v; want one, captured 650", ap)
	}
	want := []payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentAuthorized, payloom.EventPaymentCaptured}
	if ev := eventTypes(e.events(p.ID)); !slices.Equal(ev, want) {
		t.Errorf("events = %v; want %v", ev, want)
	}
}
