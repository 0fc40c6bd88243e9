package engine_test

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/processor/simulator"
)

// TestRandomFaults runs payments over three simulated processors that
// answer at random with 5xx (not processed), hang after committing, or
// drop the connection after committing, then reconciles. It passes only if
// no payment was authorized twice across the three simulators' ledgers,
// and every payment ends in a final state that matches them. The faults
// are seeded (PAYLOOM_FAULT_SEED overrides the seed) and the work is
// bounded: a fixed number of payments, a fixed number of recovery passes.
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
		f := simulator.Faults{Seed: seed + uint64(i), ErrorRate: 0.2, HangRate: 0.02, DropRate: 0.04}
		if err := s.server.SetFaults(f); err != nil {
			t.Fatalf("SetFaults(%+v): %v", f, err)
		}
	}
	e := routedEnv(t, 3, timeout, sims...)
	tok := e.token(simulator.CardApprove)

	ids := make([]string, n)
	var wg sync.WaitGroup
	jobs := make(chan int)
	var errMu sync.Mutex
	var errs []error
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
					errs = append(errs, fmt.Errorf("payment %d: %w", i, err))
					errMu.Unlock()
					continue
				}
				ids[i] = p.ID
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
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
		case payloom.PaymentStatusFailed, payloom.PaymentStatusDeclined:
			if len(got) != 0 {
				t.Errorf("payment %d (%s) is %s but %s approved it", i, id, p.Status, got[0].sim)
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
