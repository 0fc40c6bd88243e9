// Package processortest is the contract suite every payloom.Processor
// connector must pass: authorize with and without capture, capture (full
// and partial), void, refund (full and partial), idempotency by key, Lookup
// by our reference, decline classes with canonical codes, the failed and
// unknown kinds of "no", 3-D Secure (requires_action, then the outcome of
// the shopper's authentication) and honest Capabilities.
//
// A connector's test supplies a Harness: the Processor under test and the
// scenarios its backend can be made to produce. A scenario the backend
// cannot produce (a stateless mock cannot decline or replay) is left out
// and its cases are skipped with the reason, never faked. The suite never
// prints a card number: failure messages show results and errors only,
// and every one of them is checked for the card numbers it was sent.
package processortest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payloom/payloom"
)

// Outcome is what a scenario makes the backend answer to an authorization.
type Outcome string

const (
	// Approve: the authorization is approved.
	Approve Outcome = "approve"
	// HardDecline: declined with DeclineClass hard.
	HardDecline Outcome = "hard_decline"
	// SoftDecline: declined with DeclineClass soft.
	SoftDecline Outcome = "soft_decline"
	// Failed: status failed, definitely not processed.
	Failed Outcome = "failed"
	// Unknown: Authorize returns a Go error; the request may have been
	// processed (Scenario.Committed says whether it was).
	Unknown Outcome = "unknown"
	// RequiresAction: status requires_action with a RedirectURL.
	RequiresAction Outcome = "requires_action"
)

// Scenario is one way of making the backend produce an outcome.
type Scenario struct {
	// Name labels the subtest ("insufficient_funds").
	Name string
	Card *payloom.CardData
	// Amount, if not zero, replaces Harness.Amount.
	Amount int64
	// Processor, if not nil, is used instead of Harness.Processor for the
	// authorization: a second handle on the same backend that behaves
	// differently (one pointed at a closed port, one whose answers are
	// dropped). Follow-up calls (Lookup, a replay) use Harness.Processor.
	Processor payloom.Processor
	// FailureCode and DeclineCode are the canonical codes a decline must
	// carry; empty means "any non-empty code".
	FailureCode string
	DeclineCode string
	// Committed, for Unknown: the backend recorded the authorization
	// (approved) before the answer was lost, so Lookup must find it and a
	// retry with the same key must replay it.
	Committed bool
}

// Harness is the connector under test and what its backend can do.
type Harness struct {
	Processor payloom.Processor
	// Currency of every case; default USD.
	Currency payloom.Currency
	// Amount of every authorization; default 10000. Partial captures and
	// refunds take parts of it, so it must be at least 1000.
	Amount int64
	// Scenarios by outcome. Approve is required (at least one); an absent
	// outcome is one the backend cannot be made to produce.
	Scenarios map[Outcome][]Scenario
	// Authorizations, if not nil, counts the approved authorizations the
	// backend holds, to prove that a repeated key never authorizes twice.
	Authorizations func(t *testing.T) int
	// Replays: the backend answers a repeated idempotency key with the
	// first answer (false for a stateless mock).
	Replays bool
	// EnforcesState: the backend refuses, in its synchronous answer, a
	// second capture, a capture after a void and a refund beyond the
	// captured amount (false for a stateless mock or a processor whose
	// modifications are asynchronous).
	EnforcesState bool
	// LookupFinds: Lookup finds what the backend authorized and reflects
	// captures and voids (false for a stateless mock; ignored when the
	// connector's Capabilities().Lookup is false).
	LookupFinds bool
	// Authenticate, if not nil, plays the shopper at the authentication
	// page of a requires_action answer (res, from a RequiresAction
	// scenario): passing it when pass is true, failing it otherwise. It
	// returns what the shopper's browser brings back to the return URL,
	// the Details of the AuthenticationRequest (nil for a processor that
	// learns the outcome on its side). Nil: the backend cannot be made to
	// finish an authentication.
	Authenticate func(t *testing.T, res *payloom.AuthorizeResult, pass bool) map[string]string
	// AnswerTimeout bounds each call of an Unknown scenario, whose answer
	// may never come; default 10s. A scenario that drops the connection
	// returns at once and never waits for it.
	AnswerTimeout time.Duration
}

func (h *Harness) defaults() {
	if h.Currency == "" {
		h.Currency = "USD"
	}
	if h.Amount == 0 {
		h.Amount = 10000
	}
	if h.AnswerTimeout == 0 {
		h.AnswerTimeout = 10 * time.Second
	}
}

// Run runs the contract suite. newConn is called once per case and must
// return a harness on a backend whose state the case may change freely.
func Run(t *testing.T, newConn func(t *testing.T) Harness) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newConn(t)
			h.defaults()
			if h.Processor == nil {
				t.Fatal("Harness.Processor is nil")
			}
			if len(h.Scenarios[Approve]) == 0 {
				t.Fatal("Harness.Scenarios[Approve] is empty: every backend must approve something")
			}
			if h.Amount < 1000 {
				t.Fatalf("Harness.Amount = %d; want at least 1000", h.Amount)
			}
			s := &suite{Harness: h, caps: h.Processor.Capabilities()}
			for _, scs := range h.Scenarios {
				for _, sc := range scs {
					if sc.Card != nil && sc.Card.Number.Reveal() != "" {
						s.secrets = append(s.secrets, sc.Card.Number.Reveal())
					}
				}
			}
			c.run(t, s)
		})
	}
}

type suite struct {
	Harness
	caps    payloom.Capabilities
	secrets []string
}

var cases = []struct {
	name string
	run  func(t *testing.T, s *suite)
}{
	{"Capabilities", testCapabilities},
	{"AuthorizeAndCapture", testAuthorizeAndCapture},
	{"ManualThenCapture", testManualThenCapture},
	{"PartialCapture", testPartialCapture},
	{"Void", testVoid},
	{"Refund", testRefund},
	{"PartialRefund", testPartialRefund},
	{"IdempotentAuthorize", testIdempotentAuthorize},
	{"IdempotentAuthorizeConcurrent", testIdempotentAuthorizeConcurrent},
	{"IdempotentOperations", testIdempotentOperations},
	{"LookupNeverSent", testLookupNeverSent},
	{"LookupApproved", testLookupApproved},
	{"LookupDeclined", testLookupDeclined},
	{"HardDecline", func(t *testing.T, s *suite) { testDeclines(t, s, HardDecline, payloom.DeclineHard) }},
	{"SoftDecline", func(t *testing.T, s *suite) { testDeclines(t, s, SoftDecline, payloom.DeclineSoft) }},
	{"Failed", testFailed},
	{"Unknown", testUnknown},
	{"RequiresAction", testRequiresAction},
	{"CompleteAuthentication", testCompleteAuthentication},
}

var bg = context.Background()

// --- helpers ---

func (s *suite) approve() Scenario { return s.Scenarios[Approve][0] }

func (s *suite) amountOf(sc Scenario) int64 {
	if sc.Amount != 0 {
		return sc.Amount
	}
	return s.Amount
}

func (s *suite) authReq(sc Scenario, capture bool) *payloom.AuthorizeRequest {
	return &payloom.AuthorizeRequest{
		IdempotencyKey: payloom.NewID("att"),
		Reference:      payloom.NewID("pay"),
		Amount:         s.amountOf(sc),
		Currency:       s.Currency,
		Capture:        capture,
		Card:           sc.Card,
		Description:    "processortest",
	}
}

// clean fails the test if v (a result or an error) shows a card number.
func (s *suite) clean(t *testing.T, what string, v any) {
	t.Helper()
	var text string
	switch x := v.(type) {
	case nil:
		return
	case error:
		text = x.Error()
	default:
		text = fmt.Sprintf("%+v", x)
	}
	for _, n := range s.secrets {
		if strings.Contains(text, n) {
			t.Errorf("%s shows a full card number", what)
		}
	}
}

func (s *suite) authorize(t *testing.T, p payloom.Processor, req *payloom.AuthorizeRequest) *payloom.AuthorizeResult {
	t.Helper()
	res, err := p.Authorize(bg, req)
	s.clean(t, "Authorize", err)
	s.clean(t, "Authorize result", res)
	if err != nil {
		t.Fatalf("Authorize(%s) = %v", req.IdempotencyKey, err)
	}
	if res == nil {
		t.Fatalf("Authorize(%s) = nil, nil", req.IdempotencyKey)
	}
	return res
}

// approved authorizes with the approve scenario and checks the answer.
func (s *suite) approved(t *testing.T, capture bool) (*payloom.AuthorizeRequest, *payloom.AuthorizeResult) {
	t.Helper()
	if !capture && !s.caps.ManualCapture {
		t.Skip("the connector does not declare ManualCapture")
	}
	req := s.authReq(s.approve(), capture)
	res := s.authorize(t, s.Processor, req)
	if res.Status != payloom.AuthorizationApproved {
		t.Fatalf("Authorize(approve scenario, capture %v).Status = %q (%s %s: %s); want approved",
			capture, res.Status, res.FailureCode, res.DeclineCode, res.Message)
	}
	if res.TransactionID == "" {
		t.Fatal("approved Authorize gave no TransactionID")
	}
	if res.DeclineClass != "" || res.FailureCode != "" {
		t.Errorf("approved Authorize has DeclineClass %q FailureCode %q; want none", res.DeclineClass, res.FailureCode)
	}
	return req, res
}

func (s *suite) count(t *testing.T) int {
	t.Helper()
	if s.Authorizations == nil {
		return -1
	}
	return s.Authorizations(t)
}

func (s *suite) wantCount(t *testing.T, before, delta int, what string) {
	t.Helper()
	if s.Authorizations == nil {
		return
	}
	if got := s.Authorizations(t); got != before+delta {
		t.Errorf("after %s the backend holds %d authorizations; want %d", what, got, before+delta)
	}
}

func (s *suite) capture(t *testing.T, txn string, amount int64) (*payloom.CaptureRequest, *payloom.OperationResult) {
	t.Helper()
	req := &payloom.CaptureRequest{IdempotencyKey: payloom.NewID("op"), TransactionID: txn, Amount: amount, Currency: s.Currency}
	res, err := s.Processor.Capture(bg, req)
	s.clean(t, "Capture", err)
	if err != nil {
		t.Fatalf("Capture(%s, %d) = %v", txn, amount, err)
	}
	return req, res
}

func (s *suite) void(t *testing.T, txn string) *payloom.OperationResult {
	t.Helper()
	res, err := s.Processor.Void(bg, &payloom.VoidRequest{IdempotencyKey: payloom.NewID("op"), TransactionID: txn})
	s.clean(t, "Void", err)
	if err != nil {
		t.Fatalf("Void(%s) = %v", txn, err)
	}
	return res
}

func (s *suite) refund(t *testing.T, txn string, amount int64) (*payloom.RefundRequest, *payloom.OperationResult) {
	t.Helper()
	req := &payloom.RefundRequest{IdempotencyKey: payloom.NewID("op"), TransactionID: txn, Amount: amount, Currency: s.Currency}
	res, err := s.Processor.Refund(bg, req)
	s.clean(t, "Refund", err)
	if err != nil {
		t.Fatalf("Refund(%s, %d) = %v", txn, amount, err)
	}
	return req, res
}

func wantSucceeded(t *testing.T, what string, res *payloom.OperationResult) {
	t.Helper()
	if res == nil || !res.Succeeded {
		t.Fatalf("%s = %+v; want Succeeded", what, res)
	}
}

func (s *suite) wantRefused(t *testing.T, what string, res *payloom.OperationResult) {
	t.Helper()
	if !s.EnforcesState {
		return
	}
	if res == nil || res.Succeeded {
		t.Fatalf("%s = %+v; want refused (Succeeded false)", what, res)
	}
	if res.FailureCode == "" {
		t.Errorf("%s refused without a FailureCode: %+v", what, res)
	}
}

// lookup returns nil when the backend's Lookup cannot find things.
func (s *suite) lookup(t *testing.T, key, ref string) *payloom.LookupResult {
	t.Helper()
	if !s.caps.Lookup || !s.LookupFinds {
		return nil
	}
	res, err := s.Processor.Lookup(bg, &payloom.LookupRequest{IdempotencyKey: key, Reference: ref})
	s.clean(t, "Lookup", err)
	s.clean(t, "Lookup result", res)
	if err != nil {
		t.Fatalf("Lookup(%s) = %v", key, err)
	}
	if res == nil {
		t.Fatalf("Lookup(%s) = nil, nil", key)
	}
	return res
}

func (s *suite) wantLookup(t *testing.T, req *payloom.AuthorizeRequest, txn string, captured int64, voided bool) {
	t.Helper()
	res := s.lookup(t, req.IdempotencyKey, req.Reference)
	if res == nil {
		return
	}
	if !res.Found || res.Result == nil {
		t.Fatalf("Lookup(%s) = %+v; want Found with a Result", req.IdempotencyKey, res)
	}
	if res.Result.Status != payloom.AuthorizationApproved || res.Result.TransactionID != txn {
		t.Errorf("Lookup(%s).Result = %s %q; want approved %q", req.IdempotencyKey, res.Result.Status, res.Result.TransactionID, txn)
	}
	if res.Captured != (captured > 0) || res.AmountCaptured != captured || res.Voided != voided {
		t.Errorf("Lookup(%s) = Captured %v AmountCaptured %d Voided %v; want %v %d %v",
			req.IdempotencyKey, res.Captured, res.AmountCaptured, res.Voided, captured > 0, captured, voided)
	}
}

func wantNotSupported(t *testing.T, what string, err error) {
	t.Helper()
	if !payloom.IsCode(err, payloom.CodeNotSupported) {
		t.Errorf("%s = %v; want an *payloom.Error with code %s", what, err, payloom.CodeNotSupported)
	}
}

// --- cases ---

func testCapabilities(t *testing.T, s *suite) {
	card := false
	for _, m := range s.caps.PaymentMethods {
		card = card || m == payloom.PaymentMethodTypeCard
	}
	if !card {
		t.Errorf("Capabilities().PaymentMethods = %v; want card among them", s.caps.PaymentMethods)
	}
	if s.caps.PartialCapture && !s.caps.ManualCapture {
		t.Error("Capabilities declares PartialCapture without ManualCapture")
	}
	if s.Processor.Name() == "" {
		t.Error("Name() is empty")
	}
	// What the connector lacks, it must say so, before sending anything.
	if !s.caps.Lookup {
		_, err := s.Processor.Lookup(bg, &payloom.LookupRequest{IdempotencyKey: payloom.NewID("att"), Reference: payloom.NewID("pay")})
		wantNotSupported(t, "Lookup without the Lookup capability", err)
	}
	if !s.caps.ThreeDS {
		_, err := s.Processor.CompleteAuthentication(bg, &payloom.AuthenticationRequest{IdempotencyKey: payloom.NewID("att"),
			Reference: payloom.NewID("pay"), Details: map[string]string{"redirectResult": "x"}})
		wantNotSupported(t, "CompleteAuthentication without the ThreeDS capability", err)
	}
	if s.caps.ThreeDS && !s.caps.Lookup {
		// Without Lookup the engine can learn an authentication's outcome
		// only from CompleteAuthentication: it must not answer
		// not_supported (it answers requires_action without details).
		_, err := s.Processor.CompleteAuthentication(bg, &payloom.AuthenticationRequest{IdempotencyKey: payloom.NewID("att"),
			Reference: payloom.NewID("pay")})
		if payloom.IsCode(err, payloom.CodeNotSupported) {
			t.Error("Capabilities declares ThreeDS without Lookup, and CompleteAuthentication answers not_supported: no outcome of an authentication could ever be learnt")
		}
	}
	if !s.caps.ManualCapture {
		before := s.count(t)
		_, err := s.Processor.Authorize(bg, s.authReq(s.approve(), false))
		wantNotSupported(t, "Authorize(Capture false) without ManualCapture", err)
		s.wantCount(t, before, 0, "an unsupported manual authorization")
	}
	if s.caps.ManualCapture && !s.caps.PartialCapture {
		req, res := s.approved(t, false)
		_, err := s.Processor.Capture(bg, &payloom.CaptureRequest{IdempotencyKey: payloom.NewID("op"),
			TransactionID: res.TransactionID, Amount: req.Amount - 1, Currency: s.Currency})
		wantNotSupported(t, "a partial Capture without PartialCapture", err)
	}
	if !s.caps.PartialRefund {
		req, res := s.approved(t, true)
		_, err := s.Processor.Refund(bg, &payloom.RefundRequest{IdempotencyKey: payloom.NewID("op"),
			TransactionID: res.TransactionID, Amount: req.Amount - 1, Currency: s.Currency})
		wantNotSupported(t, "a partial Refund without PartialRefund", err)
	}
}

func testAuthorizeAndCapture(t *testing.T, s *suite) {
	before := s.count(t)
	req, res := s.approved(t, true)
	s.wantCount(t, before, 1, "one approved authorization")
	s.wantLookup(t, req, res.TransactionID, req.Amount, false)
	if s.caps.ManualCapture {
		// Already captured: a capture is refused, not a second charge.
		_, c := s.capture(t, res.TransactionID, req.Amount)
		s.wantRefused(t, "Capture of an authorization captured at once", c)
	}
}

func testManualThenCapture(t *testing.T, s *suite) {
	req, res := s.approved(t, false)
	s.wantLookup(t, req, res.TransactionID, 0, false)
	_, c := s.capture(t, res.TransactionID, req.Amount)
	wantSucceeded(t, "Capture(full)", c)
	s.wantLookup(t, req, res.TransactionID, req.Amount, false)
	_, again := s.capture(t, res.TransactionID, req.Amount)
	s.wantRefused(t, "a second Capture with a new key", again)
	s.wantRefused(t, "Void after Capture", s.void(t, res.TransactionID))
}

func testPartialCapture(t *testing.T, s *suite) {
	if !s.caps.PartialCapture {
		t.Skip("the connector does not declare PartialCapture")
	}
	req, res := s.approved(t, false)
	part := req.Amount - 300
	_, c := s.capture(t, res.TransactionID, part)
	wantSucceeded(t, "Capture(partial)", c)
	s.wantLookup(t, req, res.TransactionID, part, false)
	// The rest is released: refunding more than was captured is refused.
	_, r := s.refund(t, res.TransactionID, req.Amount)
	s.wantRefused(t, "Refund of more than the partial capture", r)
}

func testVoid(t *testing.T, s *suite) {
	req, res := s.approved(t, false)
	v := s.void(t, res.TransactionID)
	wantSucceeded(t, "Void", v)
	s.wantLookup(t, req, res.TransactionID, 0, true)
	_, c := s.capture(t, res.TransactionID, req.Amount)
	s.wantRefused(t, "Capture after Void", c)
}

func testRefund(t *testing.T, s *suite) {
	req, res := s.approved(t, true)
	_, r := s.refund(t, res.TransactionID, req.Amount)
	wantSucceeded(t, "Refund(full)", r)
	if r.TransactionID == "" {
		t.Error("Refund gave no TransactionID (the refund's own ID)")
	}
	_, more := s.refund(t, res.TransactionID, 1)
	s.wantRefused(t, "Refund beyond the captured amount", more)
}

func testPartialRefund(t *testing.T, s *suite) {
	if !s.caps.PartialRefund {
		t.Skip("the connector does not declare PartialRefund")
	}
	req, res := s.approved(t, true)
	_, r1 := s.refund(t, res.TransactionID, 300)
	wantSucceeded(t, "Refund(300)", r1)
	_, r2 := s.refund(t, res.TransactionID, req.Amount-300)
	wantSucceeded(t, "Refund(rest)", r2)
	if r1.TransactionID != "" && r1.TransactionID == r2.TransactionID {
		t.Errorf("two refunds share the TransactionID %q", r1.TransactionID)
	}
	_, r3 := s.refund(t, res.TransactionID, 1)
	s.wantRefused(t, "Refund beyond the captured amount", r3)
}

func testIdempotentAuthorize(t *testing.T, s *suite) {
	if !s.Replays {
		t.Skip("the backend does not replay answers by idempotency key")
	}
	before := s.count(t)
	req, first := s.approved(t, true)
	second := s.authorize(t, s.Processor, req)
	if second.Status != first.Status || second.TransactionID != first.TransactionID {
		t.Errorf("Authorize(same key) = %s %q; want the first answer %s %q",
			second.Status, second.TransactionID, first.Status, first.TransactionID)
	}
	s.wantCount(t, before, 1, "the same authorization sent twice")

	// Declines replay too: a retried decline must not become a new attempt.
	for _, o := range []Outcome{HardDecline, SoftDecline} {
		for _, sc := range s.Scenarios[o] {
			if sc.Processor != nil {
				continue
			}
			dreq := s.authReq(sc, true)
			d1 := s.authorize(t, s.Processor, dreq)
			d2 := s.authorize(t, s.Processor, dreq)
			if d1.Status != d2.Status || d1.DeclineCode != d2.DeclineCode || d1.TransactionID != d2.TransactionID {
				t.Errorf("%s: Authorize(same key) = %s %s %q; want the first answer %s %s %q",
					sc.Name, d2.Status, d2.DeclineCode, d2.TransactionID, d1.Status, d1.DeclineCode, d1.TransactionID)
			}
			return
		}
	}
}

func testIdempotentAuthorizeConcurrent(t *testing.T, s *suite) {
	if !s.Replays {
		t.Skip("the backend does not replay answers by idempotency key")
	}
	before := s.count(t)
	req := s.authReq(s.approve(), false)
	if !s.caps.ManualCapture {
		req.Capture = true
	}
	const n = 8
	var wg sync.WaitGroup
	results := make([]*payloom.AuthorizeResult, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := *req
			results[i], errs[i] = s.Processor.Authorize(bg, &r)
		}()
	}
	wg.Wait()
	txn := ""
	for i := range n {
		s.clean(t, "Authorize", errs[i])
		// A backend may refuse a concurrent duplicate while the first is in
		// flight (Stripe answers 409); it must never authorize it again.
		if errs[i] != nil {
			continue
		}
		if results[i].Status != payloom.AuthorizationApproved {
			t.Fatalf("concurrent Authorize #%d = %s; want approved", i, results[i].Status)
		}
		if txn == "" {
			txn = results[i].TransactionID
		} else if results[i].TransactionID != txn {
			t.Errorf("concurrent Authorize #%d TransactionID %q; want %q (one authorization)", i, results[i].TransactionID, txn)
		}
	}
	if txn == "" {
		t.Fatal("every concurrent Authorize with one key failed")
	}
	s.wantCount(t, before, 1, fmt.Sprintf("%d concurrent calls with one key", n))
}

func testIdempotentOperations(t *testing.T, s *suite) {
	if !s.Replays {
		t.Skip("the backend does not replay answers by idempotency key")
	}
	if !s.caps.ManualCapture {
		t.Skip("the connector does not declare ManualCapture")
	}
	req, res := s.approved(t, false)
	creq, c1 := s.capture(t, res.TransactionID, req.Amount)
	wantSucceeded(t, "Capture", c1)
	c2, err := s.Processor.Capture(bg, creq)
	if err != nil {
		t.Fatalf("Capture(same key) = %v", err)
	}
	if !c2.Succeeded || c2.TransactionID != c1.TransactionID {
		t.Errorf("Capture(same key) = %+v; want the first answer %+v", c2, c1)
	}
	if !s.caps.PartialRefund {
		return
	}
	rreq, r1 := s.refund(t, res.TransactionID, 400)
	wantSucceeded(t, "Refund(400)", r1)
	r2, err := s.Processor.Refund(bg, rreq)
	if err != nil {
		t.Fatalf("Refund(same key) = %v", err)
	}
	if !r2.Succeeded || r2.TransactionID != r1.TransactionID {
		t.Errorf("Refund(same key) = %+v; want the first answer %+v", r2, r1)
	}
	// The replayed refund counted once: the rest can still be refunded.
	_, rest := s.refund(t, res.TransactionID, req.Amount-400)
	wantSucceeded(t, "Refund(rest) after a replayed refund", rest)
	_, over := s.refund(t, res.TransactionID, 1)
	s.wantRefused(t, "Refund beyond the captured amount", over)
}

func testLookupNeverSent(t *testing.T, s *suite) {
	if !s.caps.Lookup {
		t.Skip("the connector does not declare Lookup (the Capabilities case checks it says so)")
	}
	key := payloom.NewID("att")
	res, err := s.Processor.Lookup(bg, &payloom.LookupRequest{IdempotencyKey: key, Reference: payloom.NewID("pay")})
	if err != nil {
		t.Fatalf("Lookup(never sent) = %v", err)
	}
	if res == nil || res.Found {
		t.Fatalf("Lookup(never sent) = %+v; want Found false", res)
	}
}

func testLookupApproved(t *testing.T, s *suite) {
	if !s.caps.Lookup || !s.LookupFinds {
		t.Skip("Lookup cannot find what this backend authorized")
	}
	req, res := s.approved(t, true)
	got := s.lookup(t, req.IdempotencyKey, req.Reference)
	if !got.Found || got.Result == nil {
		t.Fatalf("Lookup(approved) = %+v; want Found", got)
	}
	r := got.Result
	if r.Status != res.Status || r.TransactionID != res.TransactionID || r.AuthorizationCode != res.AuthorizationCode {
		t.Errorf("Lookup(approved).Result = %s %q %q; want as Authorize answered: %s %q %q",
			r.Status, r.TransactionID, r.AuthorizationCode, res.Status, res.TransactionID, res.AuthorizationCode)
	}
}

func testLookupDeclined(t *testing.T, s *suite) {
	if !s.caps.Lookup || !s.LookupFinds {
		t.Skip("Lookup cannot find what this backend answered")
	}
	for _, o := range []Outcome{HardDecline, SoftDecline} {
		for _, sc := range s.Scenarios[o] {
			if sc.Processor != nil {
				continue
			}
			req := s.authReq(sc, true)
			res := s.authorize(t, s.Processor, req)
			got := s.lookup(t, req.IdempotencyKey, req.Reference)
			if !got.Found || got.Result == nil || got.Result.Status != payloom.AuthorizationDeclined {
				t.Fatalf("Lookup(declined) = %+v; want Found with a declined Result", got)
			}
			if got.Result.DeclineCode != res.DeclineCode || got.Result.DeclineClass != res.DeclineClass || got.Captured {
				t.Errorf("Lookup(declined).Result = %s %s captured %v; want %s %s not captured",
					got.Result.DeclineCode, got.Result.DeclineClass, got.Captured, res.DeclineCode, res.DeclineClass)
			}
			return
		}
	}
	t.Skip("the backend cannot be made to decline")
}

// eachScenario runs fn as a subtest for each scenario of outcome o, with
// the scenario's processor (the suite's unless it names its own); without
// any, the test is skipped with why.
func (s *suite) eachScenario(t *testing.T, o Outcome, why string, fn func(t *testing.T, sc Scenario, p payloom.Processor)) {
	t.Helper()
	scs := s.Scenarios[o]
	if len(scs) == 0 {
		t.Skip(why)
	}
	for _, sc := range scs {
		t.Run(sc.Name, func(t *testing.T) {
			p := sc.Processor
			if p == nil {
				p = s.Processor
			}
			fn(t, sc, p)
		})
	}
}

func testDeclines(t *testing.T, s *suite, o Outcome, class payloom.DeclineClass) {
	s.eachScenario(t, o, fmt.Sprintf("the backend cannot be made to produce %s", o), func(t *testing.T, sc Scenario, p payloom.Processor) {
		before := s.count(t)
		req := s.authReq(sc, true)
		res := s.authorize(t, p, req)
		if res.Status != payloom.AuthorizationDeclined || res.DeclineClass != class {
			t.Fatalf("Authorize(%s) = %s/%q (%s); want declined/%s", sc.Name, res.Status, res.DeclineClass, res.DeclineCode, class)
		}
		if res.FailureCode == "" || res.DeclineCode == "" || res.RawCode == "" || res.Message == "" {
			t.Errorf("Authorize(%s) = %+v; want FailureCode, DeclineCode, RawCode and Message set", sc.Name, res)
		}
		if sc.FailureCode != "" && res.FailureCode != sc.FailureCode {
			t.Errorf("Authorize(%s).FailureCode = %q; want %q", sc.Name, res.FailureCode, sc.FailureCode)
		}
		if sc.DeclineCode != "" && res.DeclineCode != sc.DeclineCode {
			t.Errorf("Authorize(%s).DeclineCode = %q; want %q", sc.Name, res.DeclineCode, sc.DeclineCode)
		}
		s.wantCount(t, before, 0, "a decline")
	})
}

func testFailed(t *testing.T, s *suite) {
	s.eachScenario(t, Failed, "the backend cannot be made to fail before processing", func(t *testing.T, sc Scenario, p payloom.Processor) {
		before := s.count(t)
		req := s.authReq(sc, true)
		res := s.authorize(t, p, req)
		if res.Status != payloom.AuthorizationFailed {
			t.Fatalf("Authorize(%s) = %s (%s); want failed", sc.Name, res.Status, res.Message)
		}
		if res.FailureCode == "" || res.DeclineClass != "" {
			t.Errorf("Authorize(%s) = FailureCode %q DeclineClass %q; want a FailureCode and no class", sc.Name, res.FailureCode, res.DeclineClass)
		}
		s.wantCount(t, before, 0, "a failure before processing")
		// Not processed: the backend has no authorization under the key.
		if got := s.lookup(t, req.IdempotencyKey, req.Reference); got != nil && got.Found &&
			(got.Result == nil || got.Result.Status != payloom.AuthorizationFailed) {
			t.Errorf("Lookup after a failure = %+v; want not found (or found failed)", got)
		}
	})
}

func testUnknown(t *testing.T, s *suite) {
	s.eachScenario(t, Unknown, "the backend cannot be made to lose an answer", func(t *testing.T, sc Scenario, p payloom.Processor) {
		before := s.count(t)
		req := s.authReq(sc, true)
		ctx, cancel := context.WithTimeout(bg, s.AnswerTimeout)
		res, err := p.Authorize(ctx, req)
		cancel()
		s.clean(t, "Authorize", err)
		if err == nil {
			t.Fatalf("Authorize(%s) = %+v, nil; want an error (outcome unknown)", sc.Name, res)
		}
		var pe *payloom.Error
		if errors.As(err, &pe) && (pe.Code == payloom.CodeNotSupported || pe.Code == payloom.CodeValidation) {
			t.Fatalf("Authorize(%s) = %v; want an unknown-outcome error, not %s", sc.Name, err, pe.Code)
		}
		if !sc.Committed {
			s.wantCount(t, before, 0, "a request that was lost before processing")
			return
		}
		s.wantCount(t, before, 1, "a committed authorization whose answer was lost")
		txn := ""
		if got := s.lookup(t, req.IdempotencyKey, req.Reference); got != nil {
			if !got.Found || got.Result == nil || got.Result.Status != payloom.AuthorizationApproved {
				t.Fatalf("Lookup after a lost answer = %+v; want Found approved", got)
			}
			txn = got.Result.TransactionID
		}
		if s.Replays {
			again := s.authorize(t, s.Processor, req)
			if again.Status != payloom.AuthorizationApproved || (txn != "" && again.TransactionID != txn) {
				t.Errorf("Authorize(same key) after a lost answer = %s %q; want approved %q", again.Status, again.TransactionID, txn)
			}
			s.wantCount(t, before, 1, "retrying a lost answer with the same key")
		}
	})
}

func testRequiresAction(t *testing.T, s *suite) {
	s.eachScenario(t, RequiresAction, "the backend cannot be made to ask for authentication", func(t *testing.T, sc Scenario, p payloom.Processor) {
		before := s.count(t)
		res := s.authorize(t, p, s.authReq(sc, true))
		if res.Status != payloom.AuthorizationRequiresAction || res.RedirectURL == "" {
			t.Fatalf("Authorize(%s) = %s %q; want requires_action with a RedirectURL", sc.Name, res.Status, res.RedirectURL)
		}
		s.wantCount(t, before, 0, "an authorization waiting for the shopper")
	})
}

// complete asks for the outcome of an authentication as the engine does:
// CompleteAuthentication, or Lookup for a connector that answers it
// not_supported. A Lookup that finds nothing is "not finished".
func (s *suite) complete(t *testing.T, req *payloom.AuthorizeRequest, res *payloom.AuthorizeResult, details map[string]string) *payloom.AuthorizeResult {
	t.Helper()
	out, err := s.Processor.CompleteAuthentication(bg, &payloom.AuthenticationRequest{
		IdempotencyKey: req.IdempotencyKey, Reference: req.Reference, TransactionID: res.TransactionID, Details: details,
	})
	s.clean(t, "CompleteAuthentication", err)
	s.clean(t, "CompleteAuthentication result", out)
	if payloom.IsCode(err, payloom.CodeNotSupported) {
		if !s.caps.Lookup {
			t.Fatalf("CompleteAuthentication = %v without Lookup; want an answer", err)
		}
		lr, lerr := s.Processor.Lookup(bg, &payloom.LookupRequest{IdempotencyKey: req.IdempotencyKey,
			Reference: req.Reference, TransactionID: res.TransactionID})
		s.clean(t, "Lookup", lerr)
		s.clean(t, "Lookup result", lr)
		if lerr != nil {
			t.Fatalf("Lookup(%s) after an authentication = %v", req.IdempotencyKey, lerr)
		}
		if lr == nil || !lr.Found || lr.Result == nil {
			return &payloom.AuthorizeResult{Status: payloom.AuthorizationRequiresAction}
		}
		return lr.Result
	}
	if err != nil {
		t.Fatalf("CompleteAuthentication(%s) = %v", req.IdempotencyKey, err)
	}
	if out == nil {
		t.Fatalf("CompleteAuthentication(%s) = nil, nil", req.IdempotencyKey)
	}
	return out
}

// testCompleteAuthentication: an authorization that asked for 3-D Secure
// is not finished until the shopper is back; a passed authentication is an
// approval (one authorization, however often the outcome is asked), a
// failed one a hard decline with authentication_failed.
func testCompleteAuthentication(t *testing.T, s *suite) {
	scs := s.Scenarios[RequiresAction]
	switch {
	case !s.caps.ThreeDS:
		t.Skip("the connector does not declare ThreeDS")
	case len(scs) == 0:
		t.Skip("the backend cannot be made to ask for authentication")
	case s.Authenticate == nil:
		t.Skip("the backend cannot be made to finish an authentication")
	}
	for _, sc := range scs {
		for _, pass := range []bool{true, false} {
			name := sc.Name + "/failed"
			if pass {
				name = sc.Name + "/passed"
			}
			t.Run(name, func(t *testing.T) {
				before := s.count(t)
				req := s.authReq(sc, true)
				res := s.authorize(t, s.Processor, req)
				if res.Status != payloom.AuthorizationRequiresAction || res.RedirectURL == "" {
					t.Fatalf("Authorize(%s) = %s %q; want requires_action with a RedirectURL", sc.Name, res.Status, res.RedirectURL)
				}
				// The shopper is not back yet: nothing is decided.
				if got := s.complete(t, req, res, nil); got.Status != payloom.AuthorizationRequiresAction {
					t.Fatalf("outcome before the shopper answered = %s (%s); want requires_action", got.Status, got.DeclineCode)
				}
				details := s.Authenticate(t, res, pass)
				got := s.complete(t, req, res, details)
				if pass {
					if got.Status != payloom.AuthorizationApproved || got.TransactionID == "" || got.DeclineClass != "" {
						t.Fatalf("outcome of a passed authentication = %s %q (%s); want approved with a TransactionID", got.Status, got.TransactionID, got.DeclineCode)
					}
					s.wantCount(t, before, 1, "a passed authentication")
				} else {
					if got.Status != payloom.AuthorizationDeclined || got.DeclineClass != payloom.DeclineHard ||
						got.DeclineCode != payloom.DeclineAuthenticationFail || got.FailureCode == "" || got.RawCode == "" {
						t.Fatalf("outcome of a failed authentication = %s/%q %q %q; want declined/hard %s with codes",
							got.Status, got.DeclineClass, got.DeclineCode, got.RawCode, payloom.DeclineAuthenticationFail)
					}
					s.wantCount(t, before, 0, "a failed authentication")
				}
				// Asked again (the shopper reloads the page): the same answer,
				// no second authorization.
				again := s.complete(t, req, res, details)
				if again.Status != got.Status || again.TransactionID != got.TransactionID {
					t.Errorf("outcome asked again = %s %q; want %s %q", again.Status, again.TransactionID, got.Status, got.TransactionID)
				}
				if pass {
					s.wantCount(t, before, 1, "asking for a passed authentication's outcome twice")
				}
			})
		}
	}
}
