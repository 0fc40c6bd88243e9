package main

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/payloom/payloom/processor/simulator"
)

// A payment created without a payment method (the hosted page's) and
// confirmed over POST /v1/payments/{id}/confirm is routed by the
// merchant's rules and falls back like one created with a card: A, told
// to answer 5xx for the card, fails and B captures it (2 attempts); a hard
// decline at A stops with nothing sent to B, and the payment takes another
// card, routed anew.
func TestServeConfirmRoutesAndFallsBack(t *testing.T) {
	acq := startAcquirers(t)
	call, simA, simB, aID, bID := acq.call, acq.simA, acq.simB, acq.aID, acq.bID
	call("PUT", "/v1/routing", `{"rules": [{"conditions": {"currency": "USD"}, "processors": ["`+aID+`", "`+bID+`"]}]}`, 200)
	if _, err := simA.AddRules(simulator.Rule{CardNumber: simulator.CardApprove, Action: simulator.ActionError}); err != nil {
		t.Fatal(err)
	}
	token := func(number string) string {
		tok := call("POST", "/v1/tokens", fmt.Sprintf(`{"card": {"number": "%s", "exp_month": 12, "exp_year": %d}}`, number, time.Now().Year()+2), 200)
		return tok["id"].(string)
	}
	unpaid := func() string {
		p := call("POST", "/v1/payments", `{"amount": 990, "currency": "USD"}`, 200)
		if p["status"] != "requires_payment_method" || p["payment_url"] == nil {
			t.Fatalf("payment without a payment method = %v; want requires_payment_method with a payment_url", p)
		}
		return p["id"].(string)
	}
	confirm := func(id, number string) map[string]any {
		t.Helper()
		return call("POST", "/v1/payments/"+id+"/confirm", `{"payment_method": {"type": "card", "card": {"token": "`+token(number)+`"}}}`, 200)
	}

	id := unpaid()
	pay := confirm(id, simulator.CardApprove)
	if got, want := attempts(pay), []string{"acq-a:failed", "acq-b:captured"}; pay["status"] != "captured" || !slices.Equal(got, want) {
		t.Errorf("confirm with A failing = %v with attempts %v; want captured with %v", pay["status"], got, want)
	}
	if n := len(simB.Ledger().Approved()); n != 1 {
		t.Errorf("B approvals = %d; want 1", n)
	}

	id = unpaid()
	pay = confirm(id, simulator.CardStolen)
	failure, _ := pay["failure"].(map[string]any)
	if got, want := attempts(pay), []string{"acq-a:declined"}; pay["status"] != "requires_payment_method" || !slices.Equal(got, want) ||
		failure["decline_code"] != "stolen_card" {
		t.Errorf("confirm with a stolen card = %v with attempts %v, failure %v; want requires_payment_method with %v, stolen_card", pay["status"], got, failure, want)
	}
	if n := len(simB.Ledger().Authorizations); n != 1 {
		t.Errorf("B authorizations = %d; want 1 (nothing sent after the hard decline)", n)
	}
	pay = confirm(id, simulator.CardApprove)
	if got, want := attempts(pay), []string{"acq-a:declined", "acq-a:failed", "acq-b:captured"}; pay["status"] != "captured" || !slices.Equal(got, want) {
		t.Errorf("another card after the decline = %v with attempts %v; want captured with %v", pay["status"], got, want)
	}
	got := call("GET", "/v1/payments/"+id, "", 200)
	if proc, _ := got["processor"].(map[string]any); got["status"] != "captured" || proc["name"] != "acq-b" {
		t.Errorf("GET payment = %v, processor %v; want captured at acq-b", got["status"], got["processor"])
	}
}
