package engine_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/engine"
	"github.com/payloom/payloom/processor/simulator"
)

// The lookup grace and late-check settings of the tests below.
const (
	testGrace      = 2 * time.Minute
	testLateWindow = 24 * time.Hour
)

// lateEnv is an env whose test mode routes to procs, in order, with a
// lookup grace of two minutes and a late-check window of a day.
func lateEnv(t *testing.T, procs ...payloom.Processor) *env {
	t.Helper()
	return newEnv(t, func(c *engine.Config) {
		c.Router = engine.StaticRouter{Test: procs}
		c.ProcessorTimeout = 300 * time.Millisecond
		c.LookupGrace = testGrace
		c.LateCheckInterval = time.Minute
		c.LateCheckWindow = testLateWindow
	})
}

// laggyLookup is a connector whose Lookup may miss an authorization for
// an hour, as a search index might.
type laggyLookup struct{ *simulator.Connector }

func (l laggyLookup) Capabilities() payloom.Capabilities {
	c := l.Connector.Capabilities()
	c.LookupLag = time.Hour
	return c
}

// recover makes one recovery pass after moving the clock by d and fails
// unless it finished want payments.
func (e *env) recoverAfter(d time.Duration, want int) {
	e.t.Helper()
	e.clock.Advance(d)
	if n, err := e.eng.RecoverStale(e.ctx); err != nil || n != want {
		e.t.Fatalf("RecoverStale (after %v) = %d, %v; want %d", d, n, err, want)
	}
}

// attemptOf returns the payment's only attempt.
func attemptOf(t *testing.T, p *payloom.Payment) *payloom.Attempt {
	t.Helper()
	if len(p.Attempts) != 1 {
		t.Fatalf("payment %s has %d attempts %+v; want 1", p.ID, len(p.Attempts), attemptsOf(p))
	}
	return p.Attempts[0]
}

// wantNotFoundFailure fails unless p failed as an unanswered attempt its
// processor has no record of, at simA only, and is watched.
func wantNotFoundFailure(t *testing.T, e *env, p *payloom.Payment) {
	t.Helper()
	att := attemptOf(t, p)
	if p.Status != payloom.PaymentStatusFailed || p.Failure == nil || p.Failure.Code != payloom.FailureNotFoundAtProcessor {
		t.Fatalf("payment = %s, failure %+v; want failed with %s", p.Status, p.Failure, payloom.FailureNotFoundAtProcessor)
	}
	if att.Processor != "simA" || att.Status != payloom.AttemptStatusFailed || att.Code != payloom.FailureNotFoundAtProcessor ||
		att.LateCheck != payloom.LateCheckWatching || att.LateCheckAt.IsZero() {
		t.Fatalf("attempt = %s %s code %q, late check %q at %v; want simA failed %s, watching",
			att.Processor, att.Status, att.Code, att.LateCheck, att.LateCheckAt, payloom.FailureNotFoundAtProcessor)
	}
	want := []payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentFailed}
	if got := eventTypes(e.events(p.ID)); !slices.Equal(got, want) {
		t.Errorf("events = %v; want %v", got, want)
	}
}

// An attempt the processor never received (the request was lost) is sent
// again under its key while it is young, and fails once it is older than
// the lookup grace (plus the processor's lookup lag): the payment fails with
// payment.failed, no other processor is asked, and the attempt is watched
// until the window ends without anything being voided.
func TestNotFoundAfterGrace(t *testing.T) {
	tests := []struct {
		name string
		lag  bool
		// still: how long after the first recovery pass the attempt is
		// still sent again; fail: the further wait after which it fails.
		still, fail time.Duration
	}{
		{name: "lookup grace", still: time.Minute, fail: time.Minute},
		// The grace is lengthened by the lag (and the processor
		// timeout): 2 min + 300 ms + 1 h.
		{name: "processor's lookup lag", lag: true, still: 61 * time.Minute, fail: time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := startSim(t, "simA", 0), startSim(t, "simB", 0)
			a.rule(t, simulator.Rule{Action: simulator.ActionLose}) // every request, resends too
			var first payloom.Processor = a.conn
			if tt.lag {
				first = laggyLookup{a.conn}
			}
			e := lateEnv(t, first, b.conn)
			p, err := e.eng.CreatePayment(e.ctx, e.scope, "op_lost", paymentReq(e.token(simulator.CardApprove), 990, ""))
			if err != nil || p.Status != payloom.PaymentStatusProcessing {
				t.Fatalf("CreatePayment = %v, %v; want processing", p, err)
			}
			e.recoverAfter(31*time.Second, 0) // not found, young: sent again
			e.recoverAfter(tt.still, 0)
			if got := e.payment(p.ID); got.Status != payloom.PaymentStatusProcessing || attemptOf(t, got).Status != payloom.AttemptStatusPending {
				t.Fatalf("before the grace: %s with %+v; want processing, pending", got.Status, attemptsOf(got))
			}
			e.recoverAfter(tt.fail, 1)
			got := e.payment(p.ID)
			wantNotFoundFailure(t, e, got)
			if l := a.server.Ledger(); len(l.Authorizations) != 0 || len(l.Held) != 0 {
				t.Errorf("simA ledger = %+v; want nothing (every request lost)", l)
			}
			if n := len(b.server.Ledger().Authorizations); n != 0 {
				t.Errorf("simB authorizations = %d; want 0 (an unknown outcome never goes elsewhere)", n)
			}
			if n, err := e.eng.RecoverStale(e.ctx); err != nil || n != 0 {
				t.Errorf("RecoverStale(after the failure) = %d, %v; want 0", n, err)
			}

			// The watch finds nothing, then ends with the window.
			for _, d := range []time.Duration{time.Minute, 2 * time.Hour, testLateWindow} {
				e.clock.Advance(d)
				if n, err := e.eng.CheckLateAuthorizations(e.ctx); err != nil || n != 0 {
					t.Fatalf("CheckLateAuthorizations(+%v) = %d, %v; want 0", d, n, err)
				}
			}
			att := attemptOf(t, e.payment(p.ID))
			if att.Status != payloom.AttemptStatusFailed || att.LateCheck != payloom.LateCheckDone || !att.LateCheckAt.IsZero() {
				t.Errorf("attempt after the window = %s, late check %q at %v; want failed, done, no next check", att.Status, att.LateCheck, att.LateCheckAt)
			}
			if ops := a.server.Ledger().Operations; len(ops) != 0 {
				t.Errorf("simA operations = %+v; want none", ops)
			}
		})
	}
}

// failLate creates a payment whose authorization simA holds as a late
// commit, lets the reconciler fail it past the lookup grace, then has simA
// commit it: the processor now shows an authorization for an attempt
// Payloom recorded as failed.
func failLate(t *testing.T, e *env, a *sim, capture payloom.CaptureMethod) (*payloom.Payment, *payloom.Attempt) {
	t.Helper()
	a.rule(t, simulator.Rule{Action: simulator.ActionLateCommit, Times: 1})
	p, err := e.eng.CreatePayment(e.ctx, e.scope, "op_late", paymentReq(e.token(simulator.CardApprove), 1500, capture))
	if err != nil || p.Status != payloom.PaymentStatusProcessing {
		t.Fatalf("CreatePayment = %v, %v; want processing", p, err)
	}
	e.recoverAfter(31*time.Second, 0) // held: not found, and the resend hangs
	e.recoverAfter(testGrace, 1)
	got := e.payment(p.ID)
	wantNotFoundFailure(t, e, got)
	if n := a.server.CommitHeld(); n != 1 {
		t.Fatalf("CommitHeld = %d; want 1", n)
	}
	if ap := a.approvals(p.ID); len(ap) != 1 || ap[0].Voided {
		t.Fatalf("simA approvals after the late commit = %+v; want one, not voided", ap)
	}
	return got, got.Attempts[0]
}

type opWant struct {
	kind, key, status string
}

func opsOf(s *sim) []opWant {
	var out []opWant
	for _, o := range s.server.Ledger().Operations {
		out = append(out, opWant{o.Kind, o.IdempotencyKey, o.Status})
	}
	return out
}

// A late authorization is reversed once, under a key derived from the
// attempt: voided, or refunded when the processor captured it, with an
// event; a reversal that gets no answer is sent again under the same key;
// one the processor refuses is left to an operator, logged.
func TestLateAuthorizationReversed(t *testing.T) {
	tests := []struct {
		name    string
		capture payloom.CaptureMethod
		rules   []simulator.Rule // on simA, after the late commit
		// passes: what each late-check pass (two hours apart) reverses.
		passes    []int
		status    payloom.AttemptStatus
		lateCheck payloom.LateCheck
		op        func(att string) opWant
		voided    bool
		refunded  int64
		event     payloom.EventType // "" for none
		log       string
	}{
		{
			name: "manual capture: voided", capture: payloom.CaptureMethodManual, passes: []int{1, 0},
			status: payloom.AttemptStatusVoidedLate, lateCheck: payloom.LateCheckDone,
			op:     func(att string) opWant { return opWant{"void", "void_late_" + att, "succeeded"} },
			voided: true, event: payloom.EventPaymentAttemptVoided,
		},
		{
			name: "automatic capture: captured at the processor, refunded", capture: payloom.CaptureMethodAutomatic, passes: []int{1, 0},
			status: payloom.AttemptStatusRefundedLate, lateCheck: payloom.LateCheckDone,
			op:       func(att string) opWant { return opWant{"refund", "refund_late_" + att, "succeeded"} },
			refunded: 1500, event: payloom.EventPaymentAttemptRefunded,
		},
		{
			name: "the void gets no answer once: sent again under its key", capture: payloom.CaptureMethodManual,
			rules:  []simulator.Rule{{Operation: "void", Action: simulator.ActionHang, Times: 1}},
			passes: []int{0, 1, 0},
			status: payloom.AttemptStatusVoidedLate, lateCheck: payloom.LateCheckDone,
			op:     func(att string) opWant { return opWant{"void", "void_late_" + att, "succeeded"} },
			voided: true, event: payloom.EventPaymentAttemptVoided,
		},
		{
			name: "the void is refused: left to an operator", capture: payloom.CaptureMethodManual,
			rules:  []simulator.Rule{{Operation: "void", Action: simulator.ActionDecline, Code: "12"}},
			passes: []int{0, 0},
			status: payloom.AttemptStatusFailed, lateCheck: payloom.LateCheckFailed,
			op:  func(att string) opWant { return opWant{"void", "void_late_" + att, "refused"} },
			log: "reverse it at the processor by hand",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := startSim(t, "simA", 0), startSim(t, "simB", 0)
			e := lateEnv(t, a.conn, b.conn)
			p, att := failLate(t, e, a, tt.capture)
			for _, r := range tt.rules {
				a.rule(t, r)
			}
			other := e.secondNode("other")
			for i, want := range tt.passes {
				e.clock.Advance(2 * time.Hour)
				ran, n, err := e.eng.LateCheckPass(e.ctx)
				if err != nil || !ran || n != want {
					t.Fatalf("LateCheckPass #%d = ran %v, %d, %v; want ran, %d", i, ran, n, err, want)
				}
				if ran, _, err := other.LateCheckPass(e.ctx); ran || err != nil {
					t.Fatalf("LateCheckPass(second node) #%d = ran %v, %v; want it not to run while the first holds the lease", i, ran, err)
				}
			}

			got := e.payment(p.ID)
			ga := attemptOf(t, got)
			if got.Status != payloom.PaymentStatusFailed || ga.Status != tt.status || ga.LateCheck != tt.lateCheck || !ga.LateCheckAt.IsZero() {
				t.Errorf("after the late check: payment %s, attempt %s, late check %q at %v; want failed, %s, %s, no next check",
					got.Status, ga.Status, ga.LateCheck, ga.LateCheckAt, tt.status, tt.lateCheck)
			}
			if got.AmountCaptured != 0 || got.AmountRefunded != 0 {
				t.Errorf("payment amounts captured %d, refunded %d; want 0, 0 (the payment never had the funds)", got.AmountCaptured, got.AmountRefunded)
			}
			if ops, want := opsOf(a), []opWant{tt.op(att.ID)}; !slices.Equal(ops, want) {
				t.Errorf("simA operations = %+v; want exactly %+v", ops, want)
			}
			ap := a.approvals(p.ID)
			if len(ap) != 1 || ap[0].Voided != tt.voided || ap[0].AmountRefunded != tt.refunded || ap[0].TransactionID != ga.TransactionID {
				t.Errorf("simA approvals = %+v; want one, transaction %s, voided %v, refunded %d", ap, ga.TransactionID, tt.voided, tt.refunded)
			}
			if n := len(b.server.Ledger().Authorizations); n != 0 {
				t.Errorf("simB authorizations = %d; want 0", n)
			}
			wantEv := []payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentFailed}
			if tt.event != "" {
				wantEv = append(wantEv, tt.event)
			}
			evs := e.events(p.ID)
			if gotEv := eventTypes(evs); !slices.Equal(gotEv, wantEv) {
				t.Fatalf("events = %v; want %v", gotEv, wantEv)
			}
			if tt.event != "" {
				var snap payloom.Payment
				if err := json.Unmarshal(evs[len(evs)-1].Data.Object, &snap); err != nil {
					t.Fatal(err)
				}
				if snap.Status != payloom.PaymentStatusFailed || len(snap.Attempts) != 1 || snap.Attempts[0].Status != tt.status {
					t.Errorf("%s snapshot = %s with %+v; want failed with the attempt %s", tt.event, snap.Status, attemptsOf(&snap), tt.status)
				}
			}
			if tt.log != "" && !strings.Contains(e.logs.String(), tt.log) {
				t.Errorf("log lacks %q", tt.log)
			}
		})
	}
}

// A crash after the reversal was committed pending (before or after the
// processor call) is finished by the next pass of a restarted engine, under
// the same key: one void at the processor, one event.
func TestLateReversalCrash(t *testing.T) {
	for _, phase := range []string{engine.PhaseLateReversalClaimed, engine.PhaseLateReversalCalled} {
		t.Run(phase, func(t *testing.T) {
			a := startSim(t, "simA", 0)
			e := lateEnv(t, a.conn)
			p, att := failLate(t, e, a, payloom.CaptureMethodManual)
			e.clock.Advance(2 * time.Hour)
			e.crashAt(phase)
			mustCrash(t, phase, func() { e.eng.CheckLateAuthorizations(e.ctx) })
			if got := attemptOf(t, e.payment(p.ID)); got.LateCheck != payloom.LateCheckVoidPending || got.Status != payloom.AttemptStatusFailed {
				t.Fatalf("after the crash: attempt %s, late check %q; want failed, void_pending", got.Status, got.LateCheck)
			}
			restarted := engine.New(e.cfg)
			if n, err := restarted.CheckLateAuthorizations(e.ctx); err != nil || n != 1 {
				t.Fatalf("CheckLateAuthorizations(restarted) = %d, %v; want 1", n, err)
			}
			e.clock.Advance(2 * time.Hour)
			if n, err := restarted.CheckLateAuthorizations(e.ctx); err != nil || n != 0 {
				t.Fatalf("CheckLateAuthorizations(again) = %d, %v; want 0", n, err)
			}
			if got := attemptOf(t, e.payment(p.ID)); got.Status != payloom.AttemptStatusVoidedLate || got.LateCheck != payloom.LateCheckDone {
				t.Errorf("attempt = %s, late check %q; want voided_late, done", got.Status, got.LateCheck)
			}
			if ops, want := opsOf(a), []opWant{{"void", "void_late_" + att.ID, "succeeded"}}; !slices.Equal(ops, want) {
				t.Errorf("simA operations = %+v; want exactly %+v", ops, want)
			}
			if ap := a.approvals(p.ID); len(ap) != 1 || !ap[0].Voided {
				t.Errorf("simA approvals = %+v; want one, voided", ap)
			}
			want := []payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentFailed, payloom.EventPaymentAttemptVoided}
			if got := eventTypes(e.events(p.ID)); !slices.Equal(got, want) {
				t.Errorf("events = %v; want %v", got, want)
			}
		})
	}
}

// An authorization the processor commits before the grace ends is found
// by the reconciler and recorded as the attempt's answer: nothing fails,
// nothing is voided.
func TestLateCommitWithinGrace(t *testing.T) {
	a := startSim(t, "simA", 0)
	e := lateEnv(t, a.conn)
	a.rule(t, simulator.Rule{Action: simulator.ActionLateCommit, Times: 1})
	p, err := e.eng.CreatePayment(e.ctx, e.scope, "op_early", paymentReq(e.token(simulator.CardApprove), 700, payloom.CaptureMethodManual))
	if err != nil || p.Status != payloom.PaymentStatusProcessing {
		t.Fatalf("CreatePayment = %v, %v; want processing", p, err)
	}
	e.recoverAfter(31*time.Second, 0)
	a.server.CommitHeld()
	e.recoverAfter(31*time.Second, 1)
	got := e.payment(p.ID)
	if att := attemptOf(t, got); got.Status != payloom.PaymentStatusAuthorized || att.Status != payloom.AttemptStatusAuthorized || att.LateCheck != payloom.LateCheckNone {
		t.Errorf("reconciled = %s, attempt %s, late check %q; want authorized, authorized, none", got.Status, att.Status, att.LateCheck)
	}
	e.clock.Advance(2 * time.Hour)
	if n, err := e.eng.CheckLateAuthorizations(e.ctx); err != nil || n != 0 {
		t.Errorf("CheckLateAuthorizations = %d, %v; want 0", n, err)
	}
	if ops := opsOf(a); len(ops) != 0 {
		t.Errorf("simA operations = %+v; want none", ops)
	}
}
