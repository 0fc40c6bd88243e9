package api

import (
	"context"
	"sync"
	"testing"

	"github.com/payloom/payloom"
)

// claimSpy is the engine, seen through a PaymentService that records what
// each CreatePaymentClaimed left in its Claim.
type claimSpy struct {
	payloom.PaymentService
	mu     sync.Mutex
	claims []payloom.Claim
}

func (s *claimSpy) CreatePaymentClaimed(ctx context.Context, c *payloom.Claim, req *payloom.PaymentCreate) (*payloom.Payment, error) {
	p, err := s.PaymentService.(payloom.ClaimingPaymentService).CreatePaymentClaimed(ctx, c, req)
	s.mu.Lock()
	s.claims = append(s.claims, *c)
	s.mu.Unlock()
	return p, err
}

func (s *claimSpy) seen() []payloom.Claim {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]payloom.Claim(nil), s.claims...)
}

// TestCreateClaimsItsKey: a card payment with a new Idempotency-Key is
// created on the claimed path, and the API sends exactly the response the
// engine stored with the outcome; a retry with the key claims nothing and
// replays it; without a key, nothing is claimed.
func TestCreateClaimsItsKey(t *testing.T) {
	spy := &claimSpy{}
	h := newHarness(t, harnessOptions{payments: func(p payloom.PaymentService) payloom.PaymentService {
		spy.PaymentService = p
		return spy
	}})
	key := h.key(h.merchant(nil), false)
	tok := h.token(key, cardApprove)
	body := `{"amount": 1500, "currency": "usd", "payment_method": {"type": "card", "card": {"token": "` + tok + `"}}}`
	idem := map[string]string{"Idempotency-Key": "claim-1"}

	first := h.do(req{method: "POST", path: "/v1/payments", key: key, body: body, header: idem})
	wantStatus(t, first, 200)
	claims := spy.seen()
	if len(claims) != 1 || !claims[0].Completed || claims[0].Record == nil {
		t.Fatalf("claims after the first request = %+v; want one, completed", claims)
	}
	if string(claims[0].Body) != string(first.body) || claims[0].Code != first.status {
		t.Errorf("sent %d %s; want the stored %d %s", first.status, first.body, claims[0].Code, claims[0].Body)
	}

	again := h.do(req{method: "POST", path: "/v1/payments", key: key, body: body, header: idem})
	if again.status != 200 || string(again.body) != string(first.body) || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry = %d %s (replayed %q); want a replay of %s", again.status, again.body, again.header.Get("Idempotent-Replayed"), first.body)
	}
	claims = spy.seen()
	if len(claims) != 2 || claims[1].Record != nil {
		t.Errorf("the retry's claim = %+v; want nothing claimed", claims[len(claims)-1])
	}

	wantStatus(t, h.do(req{method: "POST", path: "/v1/payments", key: key, body: body}), 200)
	if n := len(spy.seen()); n != 2 {
		t.Errorf("claims after a request without a key = %d; want still 2", n)
	}
}
