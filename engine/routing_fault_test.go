package engine_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/engine"
	"github.com/payloom/payloom/processor/simulator"
)

// TestRandomFaults runs payments over three simulated processors that
// answer at random with 5xx (not processed), 429 (throttled: not
// processed, retries of recorded keys included), hang after committing,
// drop the connection after committing, or commit late (no answer,
// invisible to lookups until the test commits them), then reconciles,
// commits the late ones, and runs the late-check job. It passes only if no payment was
// authorized twice across the three simulators' ledgers, every payment
// ends in a final state that matches them, and every authorization the
// simulators hold for a failed payment was voided (or refunded in full, if
// captured) by Payloom. The faults are seeded (PAYLOOM_FAULT_SEED
// overrides the seed) and the work is bounded: a fixed number of payments,
// a fixed number of recovery and late-check passes.
func TestRandomFaults(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 300
	}
	seed := uint64(20261121)
	if s := os.Getenv("PAYLOOM_FAULT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("PAYLOOM_FAULT_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d, %d payments", seed, n)
	const timeout = 150 * time.Millisecond
	sims := []*sim{startSim(t, "simA", timeout), startSim(t, "simB", timeout), startSim(t, "simC", timeout)}
	for i, s := range sims {
		f := simulator.Faults{Seed: seed + uint64(i), ErrorRate: 0.2, HangRate: 0.02, DropRate: 0.04, LateRate: 0.01, ThrottleRate: 0.05}
		if err := s.server.SetFaults(f); err != nil {
			t.Fatalf("SetFaults(%+v): %v", f, err)
		}
	}
	var route []payloom.Processor
	for _, s := range sims {
		route = append(route, s.conn)
	}
	e := newEnv(t, func(c *engine.Config) {
		c.Router = engine.StaticRouter{Test: route}
		c.MaxAttempts = 3
		c.ProcessorTimeout = timeout
		// Every pass resends held late commits until the grace ends
		// (each resend waits out the timeout): keep it to two passes.
		c.LookupGrace = time.Minute
	})
	tok := e.token(simulator.CardApprove)

	ids := make([]string, n)
	var errMu sync.Mutex
	var errs []error
	// create sends payment i, or resends it (a client's retry with the
	// same key), on 16 workers.
	create := func(retry bool) {
		var wg sync.WaitGroup
		jobs := make(chan int)
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range jobs {
					capture := payloom.CaptureMethodAutomatic
					if i%4 == 0 {
						capture = payloom.CaptureMethodManual
					}
					p, err := e.eng.CreatePayment(e.ctx, e.scope, fmt.Sprintf("op_fault_%d", i), paymentReq(tok, int64(100+i), capture))
					if err != nil {
						errMu.Lock()
						errs = append(errs, fmt.Errorf("payment %d (retry %v): %w", i, retry, err))
						errMu.Unlock()
						continue
					}
					if retry && p.ID != ids[i] {
						errMu.Lock()
						errs = append(errs, fmt.Errorf("payment %d: retry answered %s; want %s", i, p.ID, ids[i]))
						errMu.Unlock()
					}
					ids[i] = p.ID
				}
			}()
		}
		for i := range n {
			if !retry || (ids[i] != "" && e.payment(ids[i]).Status == payloom.PaymentStatusProcessing) {
				jobs <- i
			}
		}
		close(jobs)
		wg.Wait()
	}
	create(false)
	// Clients retry what is still processing: resends of attempts whose
	// first send may have authorized, which the simulators may throttle.
	create(true)
	for _, err := range errs {
		t.Errorf("CreatePayment: %v", err)
	}

	// Reconcile: every pass past the lock timeout settles what it can;
	// resends may meet new faults, so a bounded number of passes.
	e.clock.Advance(31 * time.Second)
	processing := func() int {
		c := 0
		for _, id := range ids {
			if id != "" && e.payment(id).Status == payloom.PaymentStatusProcessing {
				c++
			}
		}
		return c
	}
	left := processing()
	t.Logf("%d payments processing before reconciliation", left)
	for pass := 0; pass < 60 && left > 0; pass++ {
		if _, err := e.eng.RecoverStale(e.ctx); err != nil {
			t.Logf("RecoverStale pass %d: %v", pass, err)
		}
		e.clock.Advance(31 * time.Second)
		left = processing()
	}
	if left > 0 {
		t.Fatalf("%d payments still processing after reconciliation", left)
	}

	// The late commits now show up at the simulators, for attempts the
	// reconciler failed past the lookup grace; the late-check job must
	// reverse every one of them, through the same random faults.
	held := 0
	for _, s := range sims {
		held += s.server.CommitHeld()
	}
	unreversed := func() int {
		c := 0
		for _, s := range sims {
			for _, a := range s.server.Ledger().Approved() {
				reversed := a.Voided || a.AmountCaptured > 0 && a.AmountRefunded == a.AmountCaptured
				if !reversed && e.payment(a.Reference).Status == payloom.PaymentStatusFailed {
					c++
				}
			}
		}
		return c
	}
	// pending counts reversals Payloom has claimed and not recorded yet:
	// the simulator may have made one whose answer was lost.
	pending := func() int {
		c := 0
		for _, id := range ids {
			if id == "" {
				continue
			}
			for _, a := range e.payment(id).Attempts {
				if a.LateCheck == payloom.LateCheckVoidPending || a.LateCheck == payloom.LateCheckRefundPending {
					c++
				}
			}
		}
		return c
	}
	late, claimed := unreversed(), 0
	t.Logf("%d late commits; %d authorizations held for failed payments", held, late)
	reversed := 0
	for pass := 0; pass < 30 && late+claimed > 0; pass++ {
		e.clock.Advance(2 * time.Hour)
		n, err := e.eng.CheckLateAuthorizations(e.ctx)
		if err != nil {
			t.Logf("CheckLateAuthorizations pass %d: %v", pass, err)
		}
		reversed += n
		late, claimed = unreversed(), pending()
	}
	if late+claimed > 0 {
		t.Fatalf("after the late-check passes: %d authorizations of failed payments not reversed, %d reversals not recorded", late, claimed)
	}
	t.Logf("%d late authorizations reversed", reversed)
	if reversed != held {
		t.Errorf("late authorizations reversed = %d; want %d (each late commit once)", reversed, held)
	}
	// Each reversal is one operation at its simulator, under the key
	// derived from the attempt: never a second one.
	lateOps := map[string][]simulator.LedgerOperation{}
	for _, s := range sims {
		for _, o := range s.server.Ledger().Operations {
			if strings.HasPrefix(o.IdempotencyKey, "void_late_") || strings.HasPrefix(o.IdempotencyKey, "refund_late_") {
				lateOps[o.TransactionID] = append(lateOps[o.TransactionID], o)
			}
		}
	}

	// Every simulator's approved authorizations, by payment.
	type approval struct {
		sim string
		a   simulator.LedgerAuthorization
	}
	approved := map[string][]approval{}
	for _, s := range sims {
		for _, a := range s.server.Ledger().Approved() {
			approved[a.Reference] = append(approved[a.Reference], approval{s.name, a})
		}
	}
	counts := map[payloom.PaymentStatus]int{}
	for i, id := range ids {
		if id == "" {
			continue
		}
		p := e.payment(id)
		counts[p.Status]++
		got := approved[id]
		if len(got) > 1 {
			t.Errorf("payment %d (%s) authorized %d times: %+v", i, id, len(got), got)
			continue
		}
		switch p.Status {
		case payloom.PaymentStatusCaptured, payloom.PaymentStatusAuthorized:
			if len(got) != 1 {
				t.Errorf("payment %d (%s) is %s but no simulator approved it", i, id, p.Status)
				continue
			}
			a := got[0]
			if p.Processor == nil || p.Processor.Name != a.sim || p.Processor.TransactionID != a.a.TransactionID {
				t.Errorf("payment %d (%s) processor = %+v; want %s transaction %s", i, id, p.Processor, a.sim, a.a.TransactionID)
			}
			wantCaptured := int64(0)
			if p.Status == payloom.PaymentStatusCaptured {
				wantCaptured = p.Amount
			}
			if a.a.AmountCaptured != wantCaptured || p.AmountCaptured != wantCaptured {
				t.Errorf("payment %d (%s) %s: captured %d, simulator %s captured %d; want %d", i, id, p.Status, p.AmountCaptured, a.sim, a.a.AmountCaptured, wantCaptured)
			}
		case payloom.PaymentStatusDeclined:
			if len(got) != 0 {
				t.Errorf("payment %d (%s) is %s but %s approved it", i, id, p.Status, got[0].sim)
			}
		case payloom.PaymentStatusFailed:
			if len(got) == 0 {
				break
			}
			// Approved late, after Payloom recorded the failure: the
			// simulator must hold it reversed, and the attempt say so.
			a := got[0]
			reversed := a.a.Voided
			wantStatus := payloom.AttemptStatusVoidedLate
			if a.a.Capture {
				reversed = a.a.AmountCaptured == p.Amount && a.a.AmountRefunded == p.Amount
				wantStatus = payloom.AttemptStatusRefundedLate
			}
			if !reversed {
				t.Errorf("payment %d (%s) is failed but %s holds %+v unreversed", i, id, a.sim, a.a)
			}
			if ops := lateOps[a.a.TransactionID]; len(ops) != 1 || ops[0].Status != "succeeded" {
				t.Errorf("payment %d (%s): reversals at %s = %+v; want exactly one, succeeded", i, id, a.sim, ops)
			}
			if at := attemptAt(p, a.sim, a.a.IdempotencyKey); at == nil || at.Status != wantStatus {
				t.Errorf("payment %d (%s): attempt %s at %s = %+v; want %s", i, id, a.a.IdempotencyKey, a.sim, at, wantStatus)
			}
		default:
			t.Errorf("payment %d (%s) ended %s; want a final state", i, id, p.Status)
		}
		for _, at := range p.Attempts {
			if at.Status == payloom.AttemptStatusPending {
				t.Errorf("payment %d (%s) %s has a pending attempt %s", i, id, p.Status, at.ID)
			}
		}
	}
	t.Logf("final statuses: %v", counts)
}

// attemptAt returns p's attempt with that ID at that processor, or nil.
func attemptAt(p *payloom.Payment, processor, id string) *payloom.Attempt {
	for _, a := range p.Attempts {
		if a.ID == id && a.Processor == processor {
			return a
		}
	}
	return nil
}
