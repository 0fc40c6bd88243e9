package engine

import (
	"slices"
	"sync"
	"time"

	"github.com/payloom/payloom"
)

// Defaults of the circuit breakers (Config.BreakerFailures, BreakerCoolDown).
const (
	DefaultBreakerFailures = 5
	DefaultBreakerCoolDown = 30 * time.Second
)

// Circuit breaker states, as ProcessorHealth shows them.
const (
	BreakerClosed   = "closed"
	BreakerOpen     = "open"
	BreakerHalfOpen = "half_open"
)

// healthWindow is how many recent calls the error rate and latency cover.
const healthWindow = 100

// ProcessorHealth is what this node saw of one processor of one scope.
type ProcessorHealth struct {
	State string `json:"state"`
	// ErrorRate is the share of errors and failures before sending
	// among the last Calls calls (at most 100).
	ErrorRate           float64 `json:"error_rate"`
	Calls               int     `json:"calls"`
	ConsecutiveFailures int     `json:"consecutive_failures"`
	// P50MS is the median duration of those calls.
	P50MS int64 `json:"p50_ms"`
	// OpenUntil is when an open breaker lets a probe through.
	OpenUntil *time.Time `json:"open_until,omitempty"`
}

// breaker is the circuit breaker of one processor of one scope, in memory
// on this node: after Failures consecutive errors (timeouts, unknown
// outcomes, "not processed" failures) it opens, and routing skips the
// processor for the cool-down; then one payment at a time probes it
// (half-open) until a call succeeds, which closes it, or fails, which
// opens it again. Declines are answers, not errors: they count as success.
type breaker struct {
	mu          sync.Mutex
	state       string
	consecutive int
	openedAt    time.Time
	probeAt     time.Time
	probing     bool
	errs        []bool
	latencies   []int64
}

type breakerKey struct {
	scope payloom.Scope
	name  string
}

type breakers struct {
	mu       sync.Mutex
	m        map[breakerKey]*breaker
	failures int
	coolDown time.Duration
}

func (bs *breakers) get(scope payloom.Scope, name string) *breaker {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	k := breakerKey{scope, name}
	b := bs.m[k]
	if b == nil {
		b = &breaker{state: BreakerClosed}
		bs.m[k] = b
	}
	return b
}

// allow reports whether routing may send a new attempt to the processor
// now. In half-open state it lets one probe through, and another only
// after probeTimeout if the first never reported.
func (bs *breakers) allow(b *breaker, now time.Time, probeTimeout time.Duration) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerOpen:
		if now.Before(b.openedAt.Add(bs.coolDown)) {
			return false
		}
		b.state = BreakerHalfOpen
		b.probing = false
		fallthrough
	case BreakerHalfOpen:
		if b.probing && now.Before(b.probeAt.Add(probeTimeout)) {
			return false
		}
		b.probing, b.probeAt = true, now
	}
	return true
}

// record notes the outcome of one call.
func (bs *breakers) record(b *breaker, failed bool, d time.Duration, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errs = append(b.errs, failed)
	b.latencies = append(b.latencies, d.Milliseconds())
	if len(b.errs) > healthWindow {
		b.errs = b.errs[1:]
		b.latencies = b.latencies[1:]
	}
	if !failed {
		b.consecutive = 0
		b.state = BreakerClosed
		b.probing = false
		return
	}
	b.consecutive++
	if b.state == BreakerHalfOpen || b.consecutive >= bs.failures {
		b.state = BreakerOpen
		b.openedAt = now
		b.probing = false
	}
}

func (bs *breakers) health(b *breaker) ProcessorHealth {
	b.mu.Lock()
	defer b.mu.Unlock()
	h := ProcessorHealth{State: b.state, Calls: len(b.errs), ConsecutiveFailures: b.consecutive}
	n := 0
	for _, e := range b.errs {
		if e {
			n++
		}
	}
	if len(b.errs) > 0 {
		h.ErrorRate = float64(n) / float64(len(b.errs))
		l := slices.Clone(b.latencies)
		slices.Sort(l)
		h.P50MS = l[(len(l)-1)/2]
	}
	if b.state == BreakerOpen {
		t := b.openedAt.Add(bs.coolDown)
		h.OpenUntil = &t
	}
	return h
}

// ProcessorHealth returns this node's view of the scope's processor of
// that name: its circuit breaker's state, error rate and median latency.
// A processor never called is closed with no calls.
func (e *Engine) ProcessorHealth(scope payloom.Scope, name string) ProcessorHealth {
	h := e.breakers.health(e.breakers.get(scope, name))
	if h.State == BreakerOpen && !e.now().Before(*h.OpenUntil) {
		// The cool-down is over: the next payment probes it.
		h.State, h.OpenUntil = BreakerHalfOpen, nil
	}
	return h
}

// allowed filters a route by the processors' breakers. When every
// processor is open the route is kept whole: trying a processor that has
// been failing is better than refusing the payment outright.
func (e *Engine) allowed(scope payloom.Scope, route []payloom.Processor) []payloom.Processor {
	now := e.now()
	var out []payloom.Processor
	for _, p := range route {
		if e.breakers.allow(e.breakers.get(scope, p.Name()), now, e.processorTimeout) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return route
	}
	return out
}

// recordCall feeds a processor call's outcome to its breaker. A failure
// before sending and an unknown outcome are errors; any answer is not.
func (e *Engine) recordCall(scope payloom.Scope, name string, res *payloom.AuthorizeResult, callErr error, d time.Duration) {
	failed := callErr != nil || res == nil || res.Status == payloom.AuthorizationFailed
	e.breakers.record(e.breakers.get(scope, name), failed, d, e.now())
}
