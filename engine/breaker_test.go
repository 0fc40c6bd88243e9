package engine_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/engine"
	"github.com/payloom/payloom/processor/simulator"
)

// newBreakerEnv is an engine routing test payments to simulators simA
// (failing every call until its rules are cleared) then simB, with a
// breaker that opens after 3 consecutive failures for a minute.
func newBreakerEnv(t *testing.T) (e *env, a, b *sim) {
	t.Helper()
	a, b = startSim(t, "simA", 0), startSim(t, "simB", 0)
	a.rule(t, simulator.Rule{Action: simulator.ActionError})
	e = newEnv(t, func(c *engine.Config) {
		c.Router = engine.StaticRouter{Test: []payloom.Processor{a.conn, b.conn}}
		c.BreakerFailures = 3
		c.BreakerCoolDown = time.Minute
	})
	return e, a, b
}

// After BreakerFailures consecutive errors, routing skips the processor
// until the cool-down is over; then a probe that succeeds closes it.
func TestCircuitBreaker(t *testing.T) {
	e, a, _ := newBreakerEnv(t)
	tok := e.token(simulator.CardApprove)
	pay := func(i int) []string {
		t.Helper()
		p, err := e.eng.CreatePayment(e.ctx, e.scope, fmt.Sprintf("op_b%d", i), paymentReq(tok, 1000, ""))
		if err != nil || p.Status != payloom.PaymentStatusCaptured {
			t.Fatalf("CreatePayment #%d = %v, %v; want captured", i, p, err)
		}
		var procs []string
		for _, at := range p.Attempts {
			procs = append(procs, at.Processor)
		}
		return procs
	}
	steps := []struct {
		advance   time.Duration
		clearA    bool
		wantProcs []string
		wantState string // simA's breaker after the payment
	}{
		{0, false, []string{"simA", "simB"}, engine.BreakerClosed},
		{0, false, []string{"simA", "simB"}, engine.BreakerClosed},
		{0, false, []string{"simA", "simB"}, engine.BreakerOpen},
		{0, false, []string{"simB"}, engine.BreakerOpen},
		{30 * time.Second, false, []string{"simB"}, engine.BreakerOpen},
		// Cool-down over: one probe, which fails and opens it again.
		{31 * time.Second, false, []string{"simA", "simB"}, engine.BreakerOpen},
		{0, false, []string{"simB"}, engine.BreakerOpen},
		// simA recovered: the next probe closes the breaker.
		{61 * time.Second, true, []string{"simA"}, engine.BreakerClosed},
		{0, false, []string{"simA"}, engine.BreakerClosed},
	}
	for i, st := range steps {
		e.clock.Advance(st.advance)
		if st.clearA {
			a.server.ClearRules()
		}
		if got := pay(i); !slices.Equal(got, st.wantProcs) {
			t.Errorf("step %d: attempts at %v; want %v", i, got, st.wantProcs)
		}
		if h := e.eng.ProcessorHealth(e.scope, "simA"); h.State != st.wantState {
			t.Errorf("step %d: ProcessorHealth(simA).State = %q; want %q (%+v)", i, h.State, st.wantState, h)
		}
	}
	h := e.eng.ProcessorHealth(e.scope, "simA")
	if h.Calls != 6 || h.ErrorRate != 4.0/6 || h.ConsecutiveFailures != 0 {
		t.Errorf("ProcessorHealth(simA) = %+v; want 6 calls, error rate 4/6, no consecutive failures", h)
	}
	if hb := e.eng.ProcessorHealth(e.scope, "simB"); hb.State != engine.BreakerClosed || hb.ErrorRate != 0 || hb.Calls != 7 {
		t.Errorf("ProcessorHealth(simB) = %+v; want closed, 7 calls, no errors", hb)
	}
	if h := e.eng.ProcessorHealth(payloom.Scope{MerchantID: "mrch_other"}, "simA"); h.Calls != 0 || h.State != engine.BreakerClosed {
		t.Errorf("ProcessorHealth(other merchant, simA) = %+v; want closed with no calls: breakers are per scope", h)
	}
}
