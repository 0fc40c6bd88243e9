package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// savedPayment is the part of a payment this file reads.
type savedPayment struct {
	ID            string `json:"id"`
	Status        string `json:"status"`
	CustomerID    string `json:"customer_id"`
	PaymentMethod struct {
		ID   string      `json:"id"`
		Card cardSummary `json:"card"`
	} `json:"payment_method"`
	Processor struct {
		CVVResult string `json:"cvv_result"`
	} `json:"processor"`
}

// TestSavedPaymentMethod is the story through the real binary: a
// customer is created, pays with save_payment_method, then — after a
// restart, so that no CVC can be left in memory — pays again with the saved
// pm_ alone: same fingerprint, and the processor got no CVC. A third
// payment saves the same card through a new token and the customer still
// has one saved method.
func TestSavedPaymentMethod(t *testing.T) {
	in := newInstance(t)
	srv := in.start(nil)
	first := parseFirstStart(t, srv.Stdout())
	c := newClient(t, srv.URL, first.Key)

	var cus struct {
		ID           string `json:"id"`
		Document     string `json:"document"`
		DocumentType string `json:"document_type"`
	}
	c.expect(http.StatusOK, &cus, "POST", "/v1/customers",
		map[string]any{"name": "Ana Souza", "email": "ana@example.com", "document": "529.982.247-25"}, idem("cus-1")...)
	if !strings.HasPrefix(cus.ID, "cus_") || cus.Document != "52998224725" || cus.DocumentType != "cpf" {
		t.Fatalf("POST /v1/customers = %+v; want cus_ with the CPF's digits", cus)
	}

	tok := c.tokenize(cardVisa, cvcA)
	body := paymentBody(tok.ID, 1500, "BRL", "automatic")
	body["customer_id"], body["save_payment_method"] = cus.ID, true
	var p1 savedPayment
	c.expect(http.StatusOK, &p1, "POST", "/v1/payments", body, idem("pay-1")...)
	pm := p1.PaymentMethod.ID
	if p1.Status != "captured" || !strings.HasPrefix(pm, "pm_") || p1.Processor.CVVResult != "M" {
		t.Fatalf("first payment = %+v; want captured, saved as pm_, with the CVC checked", p1)
	}

	// A restart empties the vault's memory of CVCs.
	srv.Stop()
	srv = in.start(nil)
	c = newClient(t, srv.URL, first.Key)

	var p2 savedPayment
	c.expect(http.StatusOK, &p2, "POST", "/v1/payments", map[string]any{
		"amount": 900, "currency": "BRL", "customer_id": cus.ID,
		"payment_method": map[string]any{"type": "card", "card": map[string]any{"payment_method": pm}},
	}, idem("pay-2")...)
	if p2.Status != "captured" || p2.PaymentMethod.Card.Fingerprint != p1.PaymentMethod.Card.Fingerprint ||
		p2.PaymentMethod.ID != pm || p2.CustomerID != cus.ID {
		t.Fatalf("payment with %s = %+v; want captured with fingerprint %s", pm, p2, p1.PaymentMethod.Card.Fingerprint)
	}
	if p2.Processor.CVVResult != "P" {
		t.Errorf("payment with the saved method: cvv_result %q; want P (no CVC sent)", p2.Processor.CVVResult)
	}

	// The same card through a new token, saved again: no duplicate.
	tok3 := c.tokenize(cardVisa, cvcB)
	body = paymentBody(tok3.ID, 700, "BRL", "automatic")
	body["customer_id"], body["save_payment_method"] = cus.ID, true
	var p3 savedPayment
	c.expect(http.StatusOK, &p3, "POST", "/v1/payments", body, idem("pay-3")...)
	if p3.PaymentMethod.ID != pm {
		t.Errorf("third payment saved %q; want the existing %s", p3.PaymentMethod.ID, pm)
	}
	var methods list[json.RawMessage]
	c.expect(http.StatusOK, &methods, "GET", "/v1/customers/"+cus.ID+"/payment_methods", nil)
	if len(methods.Data) != 1 || !strings.Contains(string(methods.Data[0]), pm) || strings.Contains(string(methods.Data[0]), "tok_") {
		t.Errorf("payment methods = %s; want only %s, without a token", methods.Data, pm)
	}

	// Deleting the customer deletes its saved method.
	c.expect(http.StatusOK, nil, "DELETE", "/v1/customers/"+cus.ID, nil)
	c.expectError(http.StatusNotFound, "not_found", "GET", "/v1/payment_methods/"+pm, nil)
	srv.Stop()
	scanForCardData(t, in, []string{cardVisa}, []string{cvcA, cvcB})
}

// TestRawCardDataAndAudit: a key made with --permissions all may send the
// card itself; the default key may not; both the use and the refusal show
// in `payloom audit list`, with the client's address.
func TestRawCardDataAndAudit(t *testing.T) {
	in := newInstance(t)
	srv := in.start(nil)
	first := parseFirstStart(t, srv.Stdout())
	out, _ := in.runCLI("keys", "create", "--merchant", first.MerchantID, "--mode", "test", "--permissions", "all")
	rawKey := strings.TrimSpace(out)

	rawBody := map[string]any{"amount": 1200, "currency": "USD", "payment_method": map[string]any{"type": "card",
		"card": map[string]any{"number": cardMastercard, "exp_month": 12, "exp_year": testExpYear, "cvc": cvcB}}}
	r := newClient(t, srv.URL, first.Key).expectError(http.StatusForbidden, "permission_denied", "POST", "/v1/payments", rawBody)
	if !strings.Contains(string(r.Body), "POST /v1/tokens") {
		t.Errorf("403 = %s; want it to point to POST /v1/tokens", r.Body)
	}
	var p savedPayment
	newClient(t, srv.URL, rawKey).expect(http.StatusOK, &p, "POST", "/v1/payments", rawBody, idem("raw-1")...)
	if p.Status != "captured" || !strings.HasPrefix(p.PaymentMethod.Card.Token, "tok_") || p.PaymentMethod.Card.Last4 != "4444" {
		t.Fatalf("raw card payment = %+v; want captured with a token", p)
	}
	srv.Stop()

	out, _ = in.runCLI("audit", "list", "--merchant", first.MerchantID)
	type auditEvent struct {
		Action   string `json:"action"`
		Outcome  string `json:"outcome"`
		Actor    string `json:"actor"`
		Source   string `json:"source"`
		TargetID string `json:"target_id"`
	}
	seen := map[string]auditEvent{} // action -> newest event
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev auditEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("audit list line %q: %v", line, err)
		}
		if _, ok := seen[ev.Action]; !ok {
			seen[ev.Action] = ev
		}
	}
	for _, want := range []auditEvent{
		{Action: "permission.denied", Outcome: "denied", Source: "127.0.0.1"},
		{Action: "raw_card_data.used", Outcome: "success", Source: "127.0.0.1", TargetID: p.PaymentMethod.Card.Token},
		{Action: "api_key.created", Outcome: "success", Actor: "cli", Source: "cli"},
	} {
		got := seen[want.Action]
		if got.Outcome != want.Outcome || got.Source != want.Source || (want.TargetID != "" && got.TargetID != want.TargetID) ||
			(want.Actor != "" && got.Actor != want.Actor) || !strings.HasPrefix(got.Actor, map[bool]string{true: "cli", false: "key_"}[want.Actor == "cli"]) {
			t.Errorf("audit list: newest %s = %+v; want %+v", want.Action, got, want)
		}
	}
	scanForCardData(t, in, []string{cardMastercard}, []string{cvcB})
}
