package api

import (
	"strings"
	"testing"

	"github.com/payloom/payloom"
)

const cardThreeDS = "4000000000003220"

func TestHostedPagePayment(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	mrch := h.merchant(nil)
	key := h.key(mrch, false)

	body := `{"amount": 2500, "currency": "usd", "reference": "order-9",
		"line_items": [{"description": "Mug", "amount": 1000, "quantity": 2}, {"description": "Shipping", "amount": 500}],
		"success_url": "https://shop.example/ok", "failure_url": "https://shop.example/ko", "expires_in": "PT2H"}`
	idem := map[string]string{"Idempotency-Key": "hosted-1"}
	r := h.do(req{method: "POST", path: "/v1/payments", key: key, body: body, header: idem})
	wantStatus(t, r, 200)
	id := r.str("id")
	if r.str("status") != "requires_payment_method" || !strings.HasPrefix(r.str("payment_url"), harnessPublicURL+"/pay/"+id+"?s=") ||
		r.str("expires_at") == "" || r.str("success_url") != "https://shop.example/ok" {
		t.Fatalf("POST /v1/payments without payment_method = %s; want requires_payment_method with payment_url and expires_at", r.body)
	}
	items, _ := r.json["line_items"].([]any)
	if len(items) != 2 || items[1].(map[string]any)["quantity"] != float64(1) {
		t.Errorf("line_items = %v; want two, the second with quantity 1", r.json["line_items"])
	}
	// The replay carries the same payment_url; a read does not show it.
	again := h.do(req{method: "POST", path: "/v1/payments", key: key, body: body, header: idem})
	if string(again.body) != string(r.body) || again.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay = %s; want the first response", again.body)
	}
	if got := h.do(req{method: "GET", path: "/v1/payments/" + id, key: key}); got.str("payment_url") != "" || got.str("status") != "requires_payment_method" {
		t.Errorf("GET payment = %s; want no payment_url", got.body)
	}

	// Confirm through the API: a decline first, then a card that pays.
	confirm := func(number, extra string) *response {
		tok := h.token(key, number)
		return h.do(req{method: "POST", path: "/v1/payments/" + id + "/confirm", key: key,
			body: `{"payment_method": {"type": "card", "card": {"token": "` + tok + `"}}` + extra + `}`})
	}
	r = confirm(cardDecline, "")
	wantStatus(t, r, 200)
	if r.str("status") != "requires_payment_method" || r.str("failure", "decline_code") != "generic_decline" {
		t.Fatalf("confirm with a declined card = %s; want requires_payment_method with a failure", r.body)
	}
	r = confirm(cardApprove, "")
	wantStatus(t, r, 200)
	if r.str("status") != "captured" || !strings.HasPrefix(r.str("receipt_url"), harnessPublicURL+"/receipts/"+id+"?s=") {
		t.Fatalf("confirm = %s; want captured with a receipt_url", r.body)
	}
	wantError(t, confirm(cardApprove, ""), 409, payloom.CodeInvalidState, "")

	// Requests that fail validation.
	for _, tt := range []struct {
		body, param string
	}{
		{`{}`, "payment_method"},
		{`{"payment_method": {"type": "card", "card": {}}}`, "payment_method[card][token]"},
		{`{"payment_method": {"type": "card", "card": {"token": "tok_x"}}, "return_url": "nope"}`, "return_url"},
		{`{"payment_method": {"type": "card", "card": {"token": "tok_unknown"}}}`, "payment_method[card][token]"},
		{`{"payment_method": {"type": "card", "card": {"token": "tok_x"}}, "amount": 1}`, "amount"},
	} {
		r := h.do(req{method: "POST", path: "/v1/payments/" + id + "/confirm", key: key, body: tt.body})
		wantError(t, r, 400, payloom.CodeValidation, tt.param)
	}
	r = h.do(req{method: "POST", path: "/v1/payments/pay_unknown/confirm", key: key,
		body: `{"payment_method": {"type": "card", "card": {"token": "` + h.token(key, cardApprove) + `"}}}`})
	wantError(t, r, 404, payloom.CodeNotFound, "")

	// Page options that do not fit the request.
	for _, tt := range []struct {
		body, param string
	}{
		{`{"amount": 100, "currency": "usd", "expires_in": "P32D"}`, "expires_in"},
		{`{"amount": 100, "currency": "usd", "expires_at": "2001-01-01T00:00:00Z"}`, "expires_at"},
		{`{"amount": 100, "currency": "usd", "line_items": [{"description": "x", "amount": 99}]}`, "line_items"},
		{`{"amount": 100, "currency": "usd", "success_url": "https://s.example", "payment_method": {"type": "card", "card": {"token": "` + h.token(key, cardApprove) + `"}}}`, "success_url"},
	} {
		r := h.do(req{method: "POST", path: "/v1/payments", key: key, body: tt.body})
		wantError(t, r, 400, payloom.CodeValidation, tt.param)
	}

	// An unpaid payment can be canceled.
	r = h.do(req{method: "POST", path: "/v1/payments", key: key, body: `{"amount": 100, "currency": "usd"}`})
	r = h.do(req{method: "POST", path: "/v1/payments/" + r.str("id") + "/cancel", key: key})
	wantStatus(t, r, 200)
	if r.str("status") != "canceled" {
		t.Errorf("cancel of an unpaid payment = %s; want canceled", r.body)
	}
}

func TestThreeDSecureAPIFlow(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	key := h.key(h.merchant(nil), false)
	r := h.pay(key, cardThreeDS, 1200, `, "return_url": "https://shop.example/back"`)
	wantStatus(t, r, 200)
	if r.str("status") != "requires_action" || r.str("next_action", "type") != "redirect_to_url" ||
		!strings.HasPrefix(r.str("next_action", "redirect_url"), harnessPublicURL+"/sandbox/3ds/sbx_") ||
		r.str("return_url") != "https://shop.example/back" {
		t.Fatalf("payment with the 3-D Secure card = %s; want requires_action with an absolute redirect_url", r.body)
	}
}
