package engine

import (
	"context"
	"errors"
	"slices"

	"github.com/payloom/payloom"
)

// DefaultMaxAttempts bounds the attempts of one payment across processors
// (of one confirmation, for a hosted-page payment).
const DefaultMaxAttempts = 3

// DefaultMaxPaymentAttempts bounds all the attempts of one payment, across
// the confirmations of its hosted page.
const DefaultMaxPaymentAttempts = 10

// Router chooses the processors of a payment. Config.Router, when set,
// replaces Config.Processor for card payments created through the API.
//
// Route is asked when a payment is created and again each time an attempt
// ends in a soft decline or a failure before sending: the next attempt goes
// to the first processor of the route that the payment has not tried yet,
// so the route need not be stable between calls (a circuit breaker may drop
// a processor from it) but a weighted split must draw from the payment's ID,
// not at random, so that it is the same draw each time. The decision is
// committed with the outcome that prompted it, so a crash neither loses nor
// repeats it.
//
// ProcessorNamed returns the scope's processor of that name: work already
// sent to a processor (a pending attempt, a capture, a refund) only ever
// goes back to the same one. Names must be unique within a scope.
type Router interface {
	Route(scope payloom.Scope, p *payloom.Payment) ([]payloom.Processor, error)
	ProcessorNamed(scope payloom.Scope, name string) (payloom.Processor, error)
}

// PreparedRouter is implemented by a Router that can read what it routes by
// in a read transaction the engine holds: a card payment then reads its
// merchant, key, card and route in one transaction instead of three.
type PreparedRouter interface {
	Router
	// RouterIn reads the scope's routing state in tx and returns Route
	// as of that read.
	RouterIn(ctx context.Context, tx payloom.Tx, scope payloom.Scope) (func(*payloom.Payment) ([]payloom.Processor, error), error)
}

// routeFunc is a PreparedRouter's Route as of one read.
type routeFunc = func(*payloom.Payment) ([]payloom.Processor, error)

// RoutableChecker is implemented by a Router whose ProcessorNamed also
// finds processors that must take no new payments (a disabled or deleted
// processor account, kept for the work it already took): a payment's
// `processor` may name only a processor for which Routable is true.
type RoutableChecker interface {
	Routable(scope payloom.Scope, name string) bool
}

// route returns the processors to try for p, in order, dropping those that
// cannot take it (currency, card country, manual capture). Without a Router
// it is the scope's one processor, whatever it declares, as before routing
// existed.
func (e *Engine) route(scope payloom.Scope, p *payloom.Payment) ([]payloom.Processor, error) {
	return e.routeBy(scope, p, nil)
}

// routeBy is route with the router's decision taken by read, if not nil
// (a PreparedRouter's, as of the payment's first read).
func (e *Engine) routeBy(scope payloom.Scope, p *payloom.Payment, read routeFunc) ([]payloom.Processor, error) {
	if e.router == nil {
		proc, err := e.processorFor(scope)
		if err != nil {
			return nil, err
		}
		return []payloom.Processor{proc}, nil
	}
	var procs []payloom.Processor
	var err error
	if read != nil {
		procs, err = read(p)
	} else {
		procs, err = e.router.Route(scope, p)
	}
	var out []payloom.Processor
	for _, proc := range procs {
		if proc != nil && canTake(proc.Capabilities(), p) {
			out = append(out, proc)
		}
	}
	if len(out) > 0 {
		out = e.allowed(scope, out)
	}
	if err != nil || len(out) == 0 {
		return nil, &payloom.Error{
			Code:    payloom.CodeInvalidState,
			Message: "no processor is configured for this payment in " + scope.Mode() + " mode",
			Err:     err,
		}
	}
	return out, nil
}

// canTake reports whether a processor declaring c can authorize p. A card
// whose issuing country is unknown is not held to a processor's Countries:
// the processor, not a guess, decides.
func canTake(c payloom.Capabilities, p *payloom.Payment) bool {
	if c.Currencies != nil && !slices.Contains(c.Currencies, p.Currency) {
		return false
	}
	if pm := p.PaymentMethod; c.Countries != nil && pm != nil && pm.Card != nil && pm.Card.Country != "" &&
		!slices.Contains(c.Countries, pm.Card.Country) {
		return false
	}
	if c.PaymentMethods != nil && !slices.Contains(c.PaymentMethods, payloom.PaymentMethodTypeCard) {
		return false
	}
	return p.CaptureMethod != payloom.CaptureMethodManual || c.ManualCapture
}

// mayFallBack reports whether an answer proves that no authorization exists
// and that another processor may approve: a soft decline, or a failure
// before processing. A hard decline, a requested authentication and (not
// reaching here) an unknown outcome never move the payment elsewhere.
func mayFallBack(res *payloom.AuthorizeResult) bool {
	switch res.Status {
	case payloom.AuthorizationDeclined:
		return res.DeclineClass == payloom.DeclineSoft
	case payloom.AuthorizationFailed:
		return true
	}
	return false
}

// routedAttempts returns the attempts of p's current routing, the ones the
// attempt limit counts and whose processors are not tried again: for a
// payment paid on the hosted page (or confirmed through the API), those of
// its latest confirmation, because each card the shopper tries is routed
// anew; for any other payment, all of them. The payment's total limit
// (attemptsLeft) counts every attempt.
func routedAttempts(p *payloom.Payment) []*payloom.Attempt {
	if p.ConfirmAttemptID != "" {
		if i := slices.IndexFunc(p.Attempts, func(a *payloom.Attempt) bool { return a.ID == p.ConfirmAttemptID }); i >= 0 {
			return p.Attempts[i:]
		}
	}
	return p.Attempts
}

// attemptsLeft reports whether p may have another attempt: fewer than
// MaxAttempts in its current routing and fewer than MaxPaymentAttempts in
// all.
func (e *Engine) attemptsLeft(p *payloom.Payment) bool {
	return len(routedAttempts(p)) < e.maxAttempts && !payloom.AttemptsExhausted(p, e.maxPayAttempts)
}

// nextProcessor returns the processor of p's next attempt after the
// current one ended with res, or nil when the payment ends here.
func (e *Engine) nextProcessor(p *payloom.Payment, res *payloom.AuthorizeResult, route []payloom.Processor) payloom.Processor {
	if !mayFallBack(res) || !e.attemptsLeft(p) {
		return nil
	}
	atts := routedAttempts(p)
	for _, proc := range route {
		tried := slices.ContainsFunc(atts, func(a *payloom.Attempt) bool { return a.Processor == proc.Name() })
		if !tried {
			return proc
		}
	}
	return nil
}

// fallbackRoute computes, before the transaction that records an answer,
// the route its fallback decision may use: nil when no fallback can follow.
// Errors of the router are logged and end the payment where it is rather
// than leave it pending.
func (e *Engine) fallbackRoute(p *payloom.Payment, res *payloom.AuthorizeResult) []payloom.Processor {
	if e.router == nil || res == nil || !mayFallBack(res) || !e.attemptsLeft(p) {
		return nil
	}
	route, err := e.route(p.Scope(), p)
	if err != nil {
		return nil
	}
	return route
}

// errNoRouter marks a name lookup without a router.
var errNoRouter = errors.New("engine: no router")

func (e *Engine) routerNamed(scope payloom.Scope, name string) (payloom.Processor, error) {
	if e.router == nil {
		return nil, errNoRouter
	}
	proc, err := e.router.ProcessorNamed(scope, name)
	if err != nil || proc == nil {
		// Work the mode's default processor took (before the hosted
		// page's confirm was routed, it went there) resumes there.
		if def, derr := e.processor(scope); derr == nil && def != nil && def.Name() == name {
			return def, nil
		}
	}
	if err != nil || proc == nil {
		return nil, &payloom.Error{
			Code:    payloom.CodeUnavailable,
			Message: "the processor this operation was sent to is not configured",
			Err:     errors.Join(err, errors.New("engine: no processor named "+name)),
		}
	}
	return proc, nil
}

// setTimings fills in the payment's processor_ms (the sum of its attempts'
// processor calls) and processing_ms (the time from creation to the last
// answer, less the processor's time: Payloom's own).
func setTimings(p *payloom.Payment) {
	if p == nil {
		return
	}
	var proc int64
	var last int64 = -1
	for _, a := range p.Attempts {
		proc += a.DurationMS
		if a.CompletedAt != nil {
			if d := a.CompletedAt.Sub(p.CreatedAt).Milliseconds(); d > last {
				last = d
			}
		}
	}
	p.ProcessorMS = proc
	p.ProcessingMS = 0
	if last > proc {
		p.ProcessingMS = last - proc
	}
}

// StaticRouter routes every payment of a mode to the same processors, in
// order: Test in test mode, Live in live mode. It stands for a merchant's
// routing rules where there are none (one route per mode for every
// merchant) and in tests.
type StaticRouter struct {
	Test, Live []payloom.Processor
}

var _ Router = StaticRouter{}

func (r StaticRouter) list(scope payloom.Scope) []payloom.Processor {
	if scope.Livemode {
		return r.Live
	}
	return r.Test
}

// Route implements Router.
func (r StaticRouter) Route(scope payloom.Scope, _ *payloom.Payment) ([]payloom.Processor, error) {
	l := r.list(scope)
	if len(l) == 0 {
		return nil, errors.New("engine: no processor in the " + scope.Mode() + " route")
	}
	return l, nil
}

// ProcessorNamed implements Router.
func (r StaticRouter) ProcessorNamed(scope payloom.Scope, name string) (payloom.Processor, error) {
	for _, p := range r.list(scope) {
		if p.Name() == name {
			return p, nil
		}
	}
	return nil, errors.New("engine: no processor named " + name + " in the " + scope.Mode() + " route")
}

// firstProcessor chooses the processor of the first attempt of p's
// routing: the route for p (as routing sees the payment, card included),
// with requested, if named, put first. CreatePayment and ConfirmPayment
// both start here, and the fallbacks after it come from the same route.
//
// read, if not nil, is the router's decision as of the payment's first read
// (validatePayment).
func (e *Engine) firstProcessor(scope payloom.Scope, p *payloom.Payment, requested string, read routeFunc) (payloom.Processor, error) {
	route, err := e.routeBy(scope, p, read)
	if err != nil {
		return nil, err
	}
	if route, err = e.firstTry(scope, route, requested); err != nil {
		return nil, err
	}
	return route[0], nil
}

// firstTry puts the processor the request named first in the route (the
// rest keep their order), or refuses an unknown name. A named processor
// outside the route is still tried first; its breaker is not consulted:
// the merchant asked for it.
func (e *Engine) firstTry(scope payloom.Scope, route []payloom.Processor, name string) ([]payloom.Processor, error) {
	if name == "" {
		return route, nil
	}
	var first payloom.Processor
	if i := slices.IndexFunc(route, func(p payloom.Processor) bool { return p.Name() == name }); i >= 0 {
		first = route[i]
	} else if e.router != nil {
		// Not in the route (its breaker is open, or it cannot take
		// the payment): the caller's choice still goes first, if the
		// router lets new payments go there at all.
		if rc, ok := e.router.(RoutableChecker); !ok || rc.Routable(scope, name) {
			first, _ = e.routerNamed(scope, name)
		}
	}
	if first == nil {
		return nil, &payloom.Error{Code: payloom.CodeValidation, Param: "processor", Message: "no processor named " + name + " is configured for " + scope.Mode() + " mode"}
	}
	out := []payloom.Processor{first}
	for _, p := range route {
		if p.Name() != name {
			out = append(out, p)
		}
	}
	return out, nil
}
