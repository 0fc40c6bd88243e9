package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payloom/payloom"
)

func TestServiceEndpoints(t *testing.T) {
	notReady := errors.New("store is migrating")
	var readyErr error
	var mu sync.Mutex
	h := newHarness(t, harnessOptions{ready: func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		return readyErr
	}})

	r := h.do(req{method: "GET", path: "/healthz"})
	if r.status != 200 || string(r.body) != "{\"status\":\"ok\"}\n" {
		t.Errorf("GET /healthz = %d %q; want 200 {\"status\":\"ok\"}", r.status, r.body)
	}
	r = h.do(req{method: "GET", path: "/readyz"})
	wantStatus(t, r, 200)

	mu.Lock()
	readyErr = notReady
	mu.Unlock()
	r = h.do(req{method: "GET", path: "/readyz"})
	wantError(t, r, 503, payloom.CodeUnavailable, "")
	if strings.Contains(string(r.body), "migrating") {
		t.Errorf("GET /readyz shows the readiness error: %s", r.body)
	}

	r = h.do(req{method: "GET", path: "/v1/openapi.json"})
	if r.status != 200 || string(r.body) != string(OpenAPI()) {
		t.Errorf("GET /v1/openapi.json = %d, %d bytes; want 200 and the embedded document", r.status, len(r.body))
	}
}

func TestRoutingErrors(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	key := h.key(h.merchant(nil), false)
	tests := []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"DELETE", "/v1/payments", 405, codeMethodNotAllowed, "POST, GET, HEAD"},
		{"GET", "/v1/tokens", 405, codeMethodNotAllowed, "POST"},
		{"PUT", "/v1/payments/pay_1", 405, codeMethodNotAllowed, "GET, HEAD"},
		{"GET", "/v1/payments/pay_1/capture", 405, codeMethodNotAllowed, "POST"},
		{"POST", "/healthz", 405, codeMethodNotAllowed, "GET, HEAD"},
		{"GET", "/v1/charges", 404, payloom.CodeNotFound, ""},
		{"GET", "/v1/payments/pay_1/refunds", 404, payloom.CodeNotFound, ""},
		{"GET", "/", 404, payloom.CodeNotFound, ""},
		{"GET", "/v1/payments/", 404, payloom.CodeNotFound, ""},
	}
	for _, tt := range tests {
		r := h.do(req{method: tt.method, path: tt.path, key: key})
		wantError(t, r, tt.status, tt.code, "")
		if got := r.header.Get("Allow"); got != tt.allow {
			t.Errorf("%s %s: Allow = %q; want %q", tt.method, tt.path, got, tt.allow)
		}
	}
}

func TestAuthentication(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	mrch := h.merchant(nil)
	good := h.key(mrch, false)
	revoked, revokedID := h.newKey(mrch, false)
	if err := h.eng.RevokeAPIKey(context.Background(), revokedID); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, auth string
		status     int
	}{
		{"valid", "Bearer " + good, 200},
		{"lower-case scheme", "bearer " + good, 200},
		{"missing", "", 401},
		{"basic", "Basic " + good, 401},
		{"no key", "Bearer ", 401},
		{"unknown", "Bearer sk_test_doesnotexist", 401},
		{"tampered", "Bearer " + good[:len(good)-1] + "x", 401},
		{"revoked", "Bearer " + revoked, 401},
	}
	for _, tt := range tests {
		for _, rq := range []req{
			{method: "GET", path: "/v1/payments"},
			{method: "POST", path: "/v1/tokens", body: tokenBody(cardApprove), header: map[string]string{"Idempotency-Key": "auth-" + tt.name}},
		} {
			rq.header = map[string]string{"Authorization": tt.auth, "Idempotency-Key": rq.header["Idempotency-Key"]}
			r := h.do(rq)
			if tt.status == 200 {
				wantStatus(t, r, 200)
				continue
			}
			wantError(t, r, 401, payloom.CodeAuthFailed, "")
			if r.str("error", "type") != typeAuthentication || r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s with %s: %s, WWW-Authenticate %q; want authentication_error and a challenge",
					rq.method, rq.path, tt.name, r.body, r.header.Get("WWW-Authenticate"))
			}
		}
	}
	// The request that failed authentication stored nothing: the same
	// Idempotency-Key with a good key works and is not a replay.
	r := h.do(req{method: "POST", path: "/v1/tokens", key: good, body: tokenBody(cardApprove),
		header: map[string]string{"Idempotency-Key": "auth-revoked"}})
	wantStatus(t, r, 200)
	if r.header.Get("Idempotent-Replayed") != "" {
		t.Errorf("first good request after a 401 was a replay")
	}
}

// TestPaymentFlow drives every endpoint through success and error cases;
// harness.do validates each response against openapi.json.
func TestPaymentFlow(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	mrch := h.merchant(nil)
	key := h.key(mrch, false)

	// Tokenize: the response shows first6 and last4 only.
	r := h.do(req{method: "POST", path: "/v1/tokens", key: key, body: tokenBody(cardApprove)})
	wantStatus(t, r, 200)
	// The CVC as a value or a field, not as a substring: three digits
	// turn up inside random IDs (tok_01m7z737...), which made this flaky.
	if body := string(r.body); strings.Contains(body, cardApprove) || strings.Contains(body, `"`+testCVC+`"`) ||
		strings.Contains(body, `"cvc"`) {
		t.Fatalf("token response shows the card: %s", r.body)
	}
	if r.str("card", "first6") != "424242" || r.str("card", "last4") != "4242" || r.str("card", "brand") != "visa" {
		t.Errorf("token card = %s; want visa 424242...4242", r.body)
	}
	tok := r.str("id")

	// Automatic capture.
	r = h.do(req{method: "POST", path: "/v1/payments", key: key, body: `{"amount": 1050, "currency": "usd",
		"payment_method": {"type": "card", "card": {"token": "` + tok + `"}}, "reference": "order-1",
		"statement_descriptor": "SHOP", "metadata": {"plan": "pro"}}`})
	wantStatus(t, r, 200)
	if r.str("status") != "captured" || r.num("amount_captured") != 1050 || r.str("currency") != "USD" || r.str("merchant_id") != mrch {
		t.Fatalf("automatic payment = %s; want captured 1050 USD of %s", r.body, mrch)
	}
	captured := r.str("id")
	if got := h.do(req{method: "GET", path: "/v1/payments/" + captured, key: key}); got.str("id") != captured {
		t.Fatalf("GET payment = %s; want %s", got.body, captured)
	}

	// Manual capture, partial.
	r = h.pay(key, cardApprove, 2000, `, "capture_method": "manual"`)
	wantStatus(t, r, 200)
	if r.str("status") != "authorized" || r.num("amount_capturable") != 2000 {
		t.Fatalf("manual payment = %s; want authorized, 2000 capturable", r.body)
	}
	manual := r.str("id")
	r = h.do(req{method: "POST", path: "/v1/payments/" + manual + "/capture", key: key, body: `{"amount": 2001}`})
	wantError(t, r, 400, payloom.CodeValidation, "amount")
	r = h.do(req{method: "POST", path: "/v1/payments/" + manual + "/capture", key: key, body: `{"amount": 1500}`})
	wantStatus(t, r, 200)
	if r.str("status") != "captured" || r.num("amount_captured") != 1500 {
		t.Fatalf("capture = %s; want captured 1500", r.body)
	}
	r = h.do(req{method: "POST", path: "/v1/payments/" + manual + "/capture", key: key})
	wantError(t, r, 409, payloom.CodeInvalidState, "")

	// Cancel, with an empty body.
	r = h.pay(key, cardApprove, 700, `, "capture_method": "manual"`)
	toCancel := r.str("id")
	r = h.do(req{method: "POST", path: "/v1/payments/" + toCancel + "/cancel", key: key})
	wantStatus(t, r, 200)
	if r.str("status") != "canceled" {
		t.Fatalf("cancel = %s; want canceled", r.body)
	}
	r = h.do(req{method: "POST", path: "/v1/payments/" + toCancel + "/cancel", key: key, body: `{}`})
	wantError(t, r, 409, payloom.CodeInvalidState, "")

	// A decline is a 200 with the failure.
	r = h.pay(key, cardDecline, 500, "")
	wantStatus(t, r, 200)
	if r.str("status") != "declined" || r.str("failure", "code") != payloom.FailureCardDeclined {
		t.Fatalf("declined payment = %s; want status declined, failure card_declined", r.body)
	}
	declined := r.str("id")
	r = h.do(req{method: "POST", path: "/v1/payments/" + declined + "/capture", key: key})
	wantError(t, r, 409, payloom.CodeInvalidState, "")

	// 3-D Secure.
	r = h.pay(key, "4000000000003220", 500, "")
	wantStatus(t, r, 200)
	if r.str("status") != "requires_action" || r.str("next_action", "type") != "redirect_to_url" {
		t.Fatalf("3DS payment = %s; want requires_action with a redirect", r.body)
	}

	// Refunds.
	r = h.do(req{method: "POST", path: "/v1/refunds", key: key, body: `{"payment_id": "` + captured + `", "amount": 50, "reason": "requested_by_customer", "metadata": {"ticket": "7"}}`})
	wantStatus(t, r, 200)
	refund := r.str("id")
	if r.str("status") != "succeeded" || r.num("amount") != 50 || r.str("payment_id") != captured {
		t.Fatalf("refund = %s; want succeeded 50 of %s", r.body, captured)
	}
	r = h.do(req{method: "POST", path: "/v1/refunds", key: key, body: `{"payment_id": "` + captured + `", "amount": 1001}`})
	wantError(t, r, 400, payloom.CodeValidation, "amount")
	r = h.do(req{method: "POST", path: "/v1/refunds", key: key, body: `{"payment_id": "` + declined + `"}`})
	wantError(t, r, 409, payloom.CodeInvalidState, "")
	r = h.do(req{method: "POST", path: "/v1/refunds", key: key, body: `{"payment_id": "pay_00000000000000000000000000"}`})
	wantError(t, r, 404, payloom.CodeNotFound, "payment_id")
	r = h.do(req{method: "GET", path: "/v1/refunds/" + refund, key: key})
	if r.str("id") != refund {
		t.Fatalf("GET refund = %s; want %s", r.body, refund)
	}
	r = h.do(req{method: "GET", path: "/v1/refunds?payment_id=" + captured, key: key})
	if data := r.json["data"].([]any); len(data) != 1 {
		t.Fatalf("refunds of %s = %s; want 1", captured, r.body)
	}
	r = h.do(req{method: "GET", path: "/v1/payments/" + captured, key: key})
	if r.num("amount_refunded") != 50 {
		t.Fatalf("payment after refund = %s; want amount_refunded 50", r.body)
	}

	// Events.
	r = h.do(req{method: "GET", path: "/v1/events?limit=100", key: key})
	wantStatus(t, r, 200)
	types := map[string]bool{}
	var firstEvent string
	for _, e := range r.json["data"].([]any) {
		e := e.(map[string]any)
		types[e["type"].(string)] = true
		if firstEvent == "" {
			firstEvent = e["id"].(string)
		}
	}
	for _, typ := range []string{"payment.created", "payment.authorized", "payment.captured", "payment.failed",
		"payment.canceled", "refund.created", "refund.succeeded"} {
		if !types[typ] {
			t.Errorf("events lack %s: %v", typ, types)
		}
	}
	r = h.do(req{method: "GET", path: "/v1/events/" + firstEvent, key: key})
	if r.str("id") != firstEvent {
		t.Fatalf("GET event = %s; want %s", r.body, firstEvent)
	}
	r = h.do(req{method: "GET", path: "/v1/events?type=refund.succeeded", key: key})
	if data := r.json["data"].([]any); len(data) != 1 {
		t.Fatalf("refund.succeeded events = %s; want 1", r.body)
	}
	r = h.do(req{method: "GET", path: "/v1/events?object_id=" + refund, key: key})
	if data := r.json["data"].([]any); len(data) != 2 {
		t.Fatalf("events of %s = %s; want 2", refund, r.body)
	}

	// Missing objects.
	for _, p := range []string{"/v1/payments/pay_00000000000000000000000000", "/v1/refunds/re_0000", "/v1/events/evt_0000", "/v1/payments/nonsense"} {
		wantError(t, h.do(req{method: "GET", path: p, key: key}), 404, payloom.CodeNotFound, "")
	}
	for _, p := range []string{"capture", "cancel"} {
		wantError(t, h.do(req{method: "POST", path: "/v1/payments/pay_00000000000000000000000000/" + p, key: key}), 404, payloom.CodeNotFound, "")
	}
}

func TestTenancy(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	a, b := h.merchant(&payloom.Merchant{Name: "A"}), h.merchant(&payloom.Merchant{Name: "B"})
	keyA, keyB := h.key(a, false), h.key(b, false)
	liveA := h.key(a, true)
	platform := h.key("", false)

	payA := h.pay(keyA, cardApprove, 1000, `, "capture_method": "manual"`).str("id")
	capA := h.pay(keyA, cardApprove, 1000, "").str("id")
	refA := h.do(req{method: "POST", path: "/v1/refunds", key: keyA, body: `{"payment_id": "` + capA + `", "amount": 1}`}).str("id")
	evA := h.do(req{method: "GET", path: "/v1/events?limit=1", key: keyA}).json["data"].([]any)[0].(map[string]any)["id"].(string)
	tokA := h.token(keyA, cardApprove)

	// The error a missing object gets, with the request ID removed.
	shape := func(r *response) string {
		e := r.json["error"].(map[string]any)
		delete(e, "request_id")
		b, _ := json.Marshal(e)
		return fmt.Sprintf("%d %s", r.status, b)
	}
	mutate := func(id string) string {
		return id[:len(id)-1] + map[bool]string{true: "0", false: "1"}[id[len(id)-1] != '0']
	}
	for _, tt := range []struct{ method, path, missing, body string }{
		{"GET", "/v1/payments/" + payA, "/v1/payments/" + mutate(payA), ""},
		{"GET", "/v1/refunds/" + refA, "/v1/refunds/" + mutate(refA), ""},
		{"GET", "/v1/events/" + evA, "/v1/events/" + mutate(evA), ""},
		{"POST", "/v1/payments/" + payA + "/capture", "/v1/payments/" + mutate(payA) + "/capture", ""},
		{"POST", "/v1/payments/" + payA + "/cancel", "/v1/payments/" + mutate(payA) + "/cancel", ""},
		{"POST", "/v1/refunds", "/v1/refunds", `{"payment_id": "` + capA + `"}`},
	} {
		for _, other := range []struct{ name, key string }{{"merchant B", keyB}, {"live A", liveA}} {
			got := h.do(req{method: tt.method, path: tt.path, key: other.key, body: tt.body})
			body := tt.body
			if body != "" {
				body = strings.Replace(body, capA, mutate(capA), 1)
			}
			want := h.do(req{method: tt.method, path: tt.missing, key: other.key, body: body})
			if got.status != 404 || shape(got) != shape(want) {
				t.Errorf("%s %s by %s = %s; want the same 404 as a missing object: %s", tt.method, tt.path, other.name, shape(got), shape(want))
			}
		}
	}
	// B cannot pay with A's token.
	r := h.do(req{method: "POST", path: "/v1/payments", key: keyB, body: `{"amount": 100, "currency": "eur", "payment_method": {"type": "card", "card": {"token": "` + tokA + `"}}}`})
	wantError(t, r, 400, payloom.CodeValidation, "payment_method[card][token]")
	// A's objects are untouched and B's lists are empty.
	if r := h.do(req{method: "GET", path: "/v1/payments/" + payA, key: keyA}); r.str("status") != "authorized" {
		t.Errorf("A's payment after B's attempts = %s; want authorized", r.body)
	}
	for _, p := range []string{"/v1/payments", "/v1/refunds", "/v1/events"} {
		r := h.do(req{method: "GET", path: p, key: keyB})
		if data := r.json["data"].([]any); len(data) != 0 {
			t.Errorf("GET %s by B = %s; want no objects", p, r.body)
		}
	}

	// merchant_id: required with a platform key, must match a merchant key.
	wantError(t, h.do(req{method: "GET", path: "/v1/payments/" + payA, key: platform}), 400, payloom.CodeValidation, "merchant_id")
	wantError(t, h.do(req{method: "GET", path: "/v1/payments/" + payA + "?merchant_id=mrch_00000000000000000000000000", key: platform}), 400, payloom.CodeValidation, "merchant_id")
	wantError(t, h.do(req{method: "GET", path: "/v1/payments/" + payA + "?merchant_id=" + b, key: keyA}), 400, payloom.CodeValidation, "merchant_id")
	wantError(t, h.do(req{method: "GET", path: "/v1/payments/" + payA + "?merchant_id=acct_1", key: keyA}), 400, payloom.CodeValidation, "merchant_id")
	wantStatus(t, h.do(req{method: "GET", path: "/v1/payments/" + payA + "?merchant_id=" + a, key: keyA}), 200)
	if r := h.do(req{method: "GET", path: "/v1/payments/" + payA + "?merchant_id=" + a, key: platform}); r.str("id") != payA {
		t.Errorf("platform GET for A = %s; want %s", r.body, payA)
	}
	wantError(t, h.do(req{method: "GET", path: "/v1/payments/" + payA + "?merchant_id=" + b, key: platform}), 404, payloom.CodeNotFound, "")
	wantError(t, h.do(req{method: "POST", path: "/v1/payments/" + payA + "/capture", key: platform}), 400, payloom.CodeValidation, "merchant_id")
	wantError(t, h.do(req{method: "POST", path: "/v1/payments/" + payA + "/capture", key: keyA, body: `{"merchant_id": "` + b + `"}`}), 400, payloom.CodeValidation, "merchant_id")
	r = h.do(req{method: "POST", path: "/v1/payments/" + payA + "/capture", key: platform, body: `{"merchant_id": "` + a + `"}`})
	if r.str("status") != "captured" {
		t.Errorf("platform capture for A = %s; want captured", r.body)
	}
	r = h.do(req{method: "POST", path: "/v1/tokens", key: platform, body: `{"merchant_id": "` + b + `", "card": {"number": "5555555555554444", "exp_month": 1, "exp_year": ` + expYear + `}}`})
	wantStatus(t, r, 200)
	if r.str("card", "brand") != "mastercard" {
		t.Errorf("platform token = %s; want a mastercard", r.body)
	}
}

func TestRequestBodyErrors(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	key := h.key(h.merchant(nil), false)
	tok := h.token(key, cardApprove)
	valid := `{"amount": 100, "currency": "usd", "payment_method": {"type": "card", "card": {"token": "` + tok + `"}}}`
	big := `{"amount": 100, "description": "` + strings.Repeat("x", 1<<20) + `"}`
	tests := []struct {
		name, path, body, ctype string
		status                  int
		code, param             string
	}{
		{"too large", "/v1/payments", big, "application/json", 413, payloom.CodeRequestTooLarge, ""},
		{"text/plain", "/v1/payments", valid, "text/plain", 415, payloom.CodeUnsupportedMediaType, ""},
		{"form", "/v1/payments", "amount=100", "application/x-www-form-urlencoded", 415, payloom.CodeUnsupportedMediaType, ""},
		{"latin-1", "/v1/payments", valid, "application/json; charset=iso-8859-1", 415, payloom.CodeUnsupportedMediaType, ""},
		{"no content type", "/v1/payments", valid, "-", 415, payloom.CodeUnsupportedMediaType, ""},
		{"utf-8 charset", "/v1/payments", valid, "application/json; charset=UTF-8", 200, "", ""},
		{"malformed", "/v1/payments", `{"amount": 100,}`, "application/json", 400, payloom.CodeInvalidJSON, ""},
		{"array", "/v1/payments", `[1]`, "application/json", 400, payloom.CodeInvalidJSON, ""},
		{"duplicate key", "/v1/payments", `{"amount": 1, "amount": 100}`, "application/json", 400, payloom.CodeInvalidJSON, "amount"},
		{"unknown field", "/v1/payments", strings.Replace(valid, `"token"`, `"foo": 1, "token"`, 1), "application/json", 400, payloom.CodeValidation, "payment_method[card][foo]"},
		{"unknown top field", "/v1/refunds", `{"payment_id": "pay_1", "charge": "ch_1"}`, "application/json", 400, payloom.CodeValidation, "charge"},
		{"wrong type", "/v1/payments", strings.Replace(valid, "100", `"100"`, 1), "application/json", 400, payloom.CodeValidation, "amount"},
		{"null", "/v1/payments", strings.Replace(valid, "100", `null`, 1), "application/json", 400, payloom.CodeValidation, "amount"},
		{"empty body", "/v1/payments", "", "-", 400, payloom.CodeValidation, "amount"},
		{"capture unknown", "/v1/payments/pay_1/capture", `{"amount_to_capture": 1}`, "application/json", 400, payloom.CodeValidation, "amount_to_capture"},
		{"token unknown card field", "/v1/tokens", `{"card": {"number": "4242424242424242", "pin": "1234"}}`, "application/json", 400, payloom.CodeValidation, "card[pin]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string{"Content-Type": tt.ctype}
			if tt.ctype == "-" {
				hdr["Content-Type"] = ""
			}
			r := h.do(req{method: "POST", path: tt.path, key: key, body: tt.body, header: hdr})
			if tt.status == 200 {
				wantStatus(t, r, 200)
				return
			}
			wantError(t, r, tt.status, tt.code, tt.param)
		})
	}

	// Parameters of a POST go in the body.
	r := h.do(req{method: "POST", path: "/v1/payments?amount=100", key: key, body: valid})
	wantError(t, r, 400, payloom.CodeValidation, "amount")
}

func TestIdempotentReplay(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	key := h.key(h.merchant(nil), false)
	tok := h.token(key, cardApprove)
	body := `{"amount": 1200, "currency": "usd", "payment_method": {"type": "card", "card": {"token": "` + tok + `"}}, "metadata": {"a": "1", "b": "2"}}`
	reordered := `{"metadata": {"b": "2", "a": "1"},
		"payment_method": {"card": {"token": "` + tok + `"}, "type": "card"}, "currency": "usd", "amount": 1200}`
	idem := map[string]string{"Idempotency-Key": "order-77"}

	first := h.do(req{method: "POST", path: "/v1/payments", key: key, body: body, header: idem})
	wantStatus(t, first, 200)
	if first.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first response has Idempotent-Replayed")
	}
	for _, b := range []string{body, reordered} {
		again := h.do(req{method: "POST", path: "/v1/payments", key: key, body: b, header: idem})
		if again.status != first.status || string(again.body) != string(first.body) {
			t.Fatalf("replay = %d %s; want %d %s", again.status, again.body, first.status, first.body)
		}
		if again.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replay: Idempotent-Replayed = %q; want true", again.header.Get("Idempotent-Replayed"))
		}
		if again.header.Get("Request-Id") == first.header.Get("Request-Id") {
			t.Errorf("replay reuses the Request-Id %s", first.header.Get("Request-Id"))
		}
	}

	// Same key, another request: conflict, and nothing changes.
	for _, rq := range []req{
		{method: "POST", path: "/v1/payments", body: strings.Replace(body, "1200", "1201", 1)},
		{method: "POST", path: "/v1/refunds", body: `{"payment_id": "` + first.str("id") + `"}`},
	} {
		rq.key, rq.header = key, idem
		wantError(t, h.do(rq), 409, payloom.CodeIdempotencyConflict, "")
	}
	list := h.do(req{method: "GET", path: "/v1/payments", key: key})
	if n := len(list.json["data"].([]any)); n != 1 {
		t.Fatalf("payments after replays and conflicts = %d; want 1", n)
	}
	if r := h.do(req{method: "GET", path: "/v1/refunds", key: key}); len(r.json["data"].([]any)) != 0 {
		t.Fatalf("refunds after a conflicting refund = %s; want none", r.body)
	}

	// An error answered after the key was claimed is replayed too,
	// status included.
	manual := h.pay(key, cardDecline, 300, "").str("id")
	cap1 := h.do(req{method: "POST", path: "/v1/payments/" + manual + "/capture", key: key, header: map[string]string{"Idempotency-Key": "cap-1"}})
	wantError(t, cap1, 409, payloom.CodeInvalidState, "")
	cap2 := h.do(req{method: "POST", path: "/v1/payments/" + manual + "/capture", key: key, body: "{}", header: map[string]string{"Idempotency-Key": "cap-1"}})
	if cap2.status != 409 || string(cap2.body) != string(cap1.body) || cap2.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replayed error = %d %s (replayed %q); want %d %s", cap2.status, cap2.body, cap2.header.Get("Idempotent-Replayed"), cap1.status, cap1.body)
	}

	// Keys are per merchant: another merchant may use the same key.
	key2 := h.key(h.merchant(nil), false)
	other := h.pay(key2, cardApprove, 1200, "")
	wantStatus(t, other, 200)
	tok2 := h.token(key2, cardApprove)
	r := h.do(req{method: "POST", path: "/v1/payments", key: key2, header: idem,
		body: `{"amount": 1200, "currency": "usd", "payment_method": {"type": "card", "card": {"token": "` + tok2 + `"}}}`})
	wantStatus(t, r, 200)
	if r.header.Get("Idempotent-Replayed") != "" || r.str("id") == first.str("id") {
		t.Fatalf("another merchant's request with the same key = %s (replayed %q); want a new payment", r.body, r.header.Get("Idempotent-Replayed"))
	}
}

func TestIdempotencyInProgress(t *testing.T) {
	h := newHarness(t, harnessOptions{gate: true})
	key := h.key(h.merchant(nil), false)
	// Tokenizing does not authorize, so the gate does not hold it.
	tok := h.token(key, cardApprove)
	body := `{"amount": 900, "currency": "usd", "payment_method": {"type": "card", "card": {"token": "` + tok + `"}}}`
	idem := map[string]string{"Idempotency-Key": "slow-1"}

	done := make(chan *response)
	go func() {
		done <- h.do(req{method: "POST", path: "/v1/payments", key: key, body: body, header: idem})
	}()
	<-h.gate.entered // the first request holds the key and is at the processor

	second := h.do(req{method: "POST", path: "/v1/payments", key: key, body: body, header: idem})
	wantError(t, second, 409, payloom.CodeIdempotencyInProgress, "")
	if second.header.Get("Retry-After") != "1" {
		t.Errorf("in-progress Retry-After = %q; want 1", second.header.Get("Retry-After"))
	}
	if second.str("error", "type") != typeIdempotency {
		t.Errorf("in-progress type = %q; want %s", second.str("error", "type"), typeIdempotency)
	}
	// A different request under the key still conflicts.
	wantError(t, h.do(req{method: "POST", path: "/v1/payments", key: key, header: idem,
		body: strings.Replace(body, "900", "901", 1)}), 409, payloom.CodeIdempotencyConflict, "")

	close(h.gate.release)
	first := <-done
	wantStatus(t, first, 200)
	third := h.do(req{method: "POST", path: "/v1/payments", key: key, body: body, header: idem})
	if string(third.body) != string(first.body) || third.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("after completion = %s; want the replay of %s", third.body, first.body)
	}
	if n := len(h.gate.entered); n != 0 {
		t.Fatalf("%d more authorizations after the first; want none", n)
	}
}

// Requests rejected by validation or authentication store nothing under
// their Idempotency-Key: the same key then works with a valid request.
func TestRejectedRequestsStoreNothing(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	mrch := h.merchant(&payloom.Merchant{MaxAmount: 5000})
	key := h.key(mrch, false)
	tok := h.token(key, cardApprove)
	pay := func(amount, token string) string {
		return `{"amount": ` + amount + `, "currency": "usd", "payment_method": {"type": "card", "card": {"token": "` + token + `"}}}`
	}
	tests := []struct {
		name  string
		bad   req
		code  string
		param string
		good  req
	}{
		{"decoder", req{method: "POST", path: "/v1/payments", body: pay("0", tok)}, payloom.CodeValidation, "amount",
			req{method: "POST", path: "/v1/payments", body: pay("100", tok)}},
		{"unknown field", req{method: "POST", path: "/v1/payments", body: strings.Replace(pay("100", tok), "}}}", `}}, "x": 1}`, 1)}, payloom.CodeValidation, "x",
			req{method: "POST", path: "/v1/payments", body: pay("101", tok)}},
		{"merchant limit", req{method: "POST", path: "/v1/payments", body: pay("5001", tok)}, payloom.CodeValidation, "amount",
			req{method: "POST", path: "/v1/payments", body: pay("102", tok)}},
		{"unknown token", req{method: "POST", path: "/v1/payments", body: pay("100", "tok_00000000000000000000000000")}, payloom.CodeValidation, "payment_method[card][token]",
			req{method: "POST", path: "/v1/payments", body: pay("103", tok)}},
		{"card luhn", req{method: "POST", path: "/v1/tokens", body: tokenBody("4242424242424241")}, payloom.CodeValidation, "card[number]",
			req{method: "POST", path: "/v1/tokens", body: tokenBody(cardApprove)}},
		{"card expired", req{method: "POST", path: "/v1/tokens", body: `{"card": {"number": "4242424242424242", "exp_month": 1, "exp_year": 2020}}`}, payloom.CodeValidation, "card[exp_year]",
			req{method: "POST", path: "/v1/tokens", body: tokenBody(cardApprove)}},
		{"refund of a missing payment", req{method: "POST", path: "/v1/refunds", body: `{"payment_id": "pay_00000000000000000000000000"}`}, payloom.CodeNotFound, "payment_id",
			req{method: "POST", path: "/v1/tokens", body: tokenBody(cardApprove)}},
		{"415", req{method: "POST", path: "/v1/tokens", body: tokenBody(cardApprove), header: map[string]string{"Content-Type": "text/plain"}}, payloom.CodeUnsupportedMediaType, "",
			req{method: "POST", path: "/v1/tokens", body: tokenBody(cardApprove)}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := fmt.Sprintf("reject-%d", i)
			tt.bad.key, tt.good.key = key, key
			ct := tt.bad.header["Content-Type"]
			tt.bad.header = map[string]string{"Idempotency-Key": k}
			if ct != "" {
				tt.bad.header["Content-Type"] = ct
			}
			tt.good.header = map[string]string{"Idempotency-Key": k}
			r := h.do(tt.bad)
			wantError(t, r, r.status, tt.code, tt.param)
			again := h.do(tt.bad)
			if again.header.Get("Idempotent-Replayed") != "" {
				t.Fatalf("a rejected request was replayed: %s", again.body)
			}
			g := h.do(tt.good)
			wantStatus(t, g, 200)
			if g.header.Get("Idempotent-Replayed") != "" {
				t.Fatalf("the valid request after a rejected one was a replay: %s", g.body)
			}
		})
	}
}

func TestIdempotencyKeyHeader(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	mrch := h.merchant(nil)
	test, live := h.key(mrch, false), h.key(mrch, true)
	optional := h.merchant(&payloom.Merchant{IdempotencyKeyOptional: true})
	liveOptional := h.key(optional, true)

	for _, k := range []string{strings.Repeat("k", 256), "caf\u00e9", "tab\there"} {
		r := h.do(req{method: "POST", path: "/v1/tokens", key: test, body: tokenBody(cardApprove), header: map[string]string{"Idempotency-Key": k}})
		wantError(t, r, 400, payloom.CodeValidation, "Idempotency-Key")
	}
	r := h.do(req{method: "POST", path: "/v1/tokens", key: test, body: tokenBody(cardApprove), header: map[string]string{"Idempotency-Key": strings.Repeat("k", 255)}})
	wantStatus(t, r, 200)

	// Live payments need a key, unless the merchant turned that off.
	tok := h.token(live, cardApprove)
	body := `{"amount": 100, "currency": "usd", "payment_method": {"type": "card", "card": {"token": "` + tok + `"}}}`
	r = h.do(req{method: "POST", path: "/v1/payments", key: live, body: body})
	wantError(t, r, 400, payloom.CodeIdempotencyKeyRequired, "Idempotency-Key")
	if list := h.do(req{method: "GET", path: "/v1/payments", key: live}); len(list.json["data"].([]any)) != 0 {
		t.Fatalf("a refused live payment was made: %s", list.body)
	}
	r = h.do(req{method: "POST", path: "/v1/payments", key: live, body: body, header: map[string]string{"Idempotency-Key": "live-1"}})
	wantStatus(t, r, 200)
	if r.json["livemode"] != true {
		t.Errorf("live payment = %s; want livemode true", r.body)
	}
	tokO := h.token(liveOptional, cardApprove)
	r = h.do(req{method: "POST", path: "/v1/payments", key: liveOptional,
		body: `{"amount": 100, "currency": "usd", "payment_method": {"type": "card", "card": {"token": "` + tokO + `"}}}`})
	wantStatus(t, r, 200)
	// Test mode never requires one.
	wantStatus(t, h.pay(test, cardApprove, 100, ""), 200)
}

func TestPagination(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	key := h.key(h.merchant(nil), false)
	before := time.Now().Add(-time.Second).UTC()
	var ids []string // oldest first
	for i := range 5 {
		number := cardApprove
		if i == 2 {
			number = cardDecline
		}
		ids = append(ids, h.pay(key, number, int64(100+i), "").str("id"))
	}
	page := func(query string) ([]string, bool) {
		t.Helper()
		r := h.do(req{method: "GET", path: "/v1/payments" + query, key: key})
		wantStatus(t, r, 200)
		var got []string
		for _, p := range r.json["data"].([]any) {
			got = append(got, p.(map[string]any)["id"].(string))
		}
		return got, r.json["has_more"].(bool)
	}
	eq := func(query string, want []string, wantMore bool) {
		t.Helper()
		got, more := page(query)
		if strings.Join(got, ",") != strings.Join(want, ",") || more != wantMore {
			t.Errorf("GET /v1/payments%s = %v has_more %v; want %v has_more %v", query, got, more, want, wantMore)
		}
	}
	eq("", []string{ids[4], ids[3], ids[2], ids[1], ids[0]}, false)
	eq("?limit=2", []string{ids[4], ids[3]}, true)
	eq("?limit=2&starting_after="+ids[3], []string{ids[2], ids[1]}, true)
	eq("?limit=2&starting_after="+ids[1], []string{ids[0]}, false)
	eq("?limit=2&ending_before="+ids[0], []string{ids[2], ids[1]}, true)
	eq("?status=declined", []string{ids[2]}, false)
	eq("?created[gte]="+before.Format(time.RFC3339), []string{ids[4], ids[3], ids[2], ids[1], ids[0]}, false)
	eq(fmt.Sprintf("?created%%5Bgte%%5D=%d", time.Now().Add(time.Hour).Unix()), nil, false)
	eq(fmt.Sprintf("?created[lte]=%d", before.Unix()), nil, false)

	for _, tt := range []struct{ query, param string }{
		{"?limit=0", "limit"},
		{"?limit=101", "limit"},
		{"?limit=ten", "limit"},
		{"?limit=+5", "limit"},
		{"?limit=1&limit=2", "limit"},
		{"?starting_after=re_1", "starting_after"},
		{"?starting_after=" + ids[1] + "&ending_before=" + ids[3], "ending_before"},
		{"?status=paid", "status"},
		{"?created[gte]=yesterday", "created[gte]"},
		{"?created[gte]=2030-01-01T00:00:00Z&created[lte]=2029-01-01T00:00:00Z", "created[lte]"},
		{"?sort=asc", "sort"},
		{"?type=payment.created", "type"},
	} {
		wantError(t, h.do(req{method: "GET", path: "/v1/payments" + tt.query, key: key}), 400, payloom.CodeValidation, tt.param)
	}
	wantError(t, h.do(req{method: "GET", path: "/v1/events?type=payment.paid", key: key}), 400, payloom.CodeValidation, "type")
	wantError(t, h.do(req{method: "GET", path: "/v1/refunds?payment_id=re_1", key: key}), 400, payloom.CodeValidation, "payment_id")
	wantError(t, h.do(req{method: "GET", path: "/v1/events?starting_after=pay_1", key: key}), 400, payloom.CodeValidation, "starting_after")
}

// failingPayments makes the engine's CreatePayment fail or panic on demand.
type failingPayments struct {
	payloom.PaymentService
	mu   sync.Mutex
	mode string // "", "error" or "panic"
}

func (f *failingPayments) set(mode string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mode = mode
}

func (f *failingPayments) CreatePayment(ctx context.Context, s payloom.Scope, opKey string, r *payloom.PaymentCreate) (*payloom.Payment, error) {
	f.mu.Lock()
	mode := f.mode
	f.mu.Unlock()
	switch mode {
	case "error":
		return nil, errors.New("disk on fire at /var/lib/secret")
	case "panic":
		panic("handler exploded")
	}
	return f.PaymentService.CreatePayment(ctx, s, opKey, r)
}

func TestInternalErrors(t *testing.T) {
	fp := &failingPayments{}
	h := newHarness(t, harnessOptions{payments: func(p payloom.PaymentService) payloom.PaymentService {
		fp.PaymentService = p
		return fp
	}})
	key := h.key(h.merchant(nil), false)
	tok := h.token(key, cardApprove)
	body := `{"amount": 100, "currency": "usd", "payment_method": {"type": "card", "card": {"token": "` + tok + `"}}}`
	idem := map[string]string{"Idempotency-Key": "fails-once"}

	for _, mode := range []string{"error", "panic"} {
		fp.set(mode)
		r := h.do(req{method: "POST", path: "/v1/payments", key: key, body: body, header: idem})
		wantError(t, r, 500, payloom.CodeInternal, "")
		if r.str("error", "message") != "internal error" || r.str("error", "type") != typeAPI {
			t.Errorf("%s: 500 body = %s; want api_error \"internal error\"", mode, r.body)
		}
		if strings.Contains(string(r.body), "secret") || strings.Contains(string(r.body), "exploded") {
			t.Errorf("%s: 500 body shows the cause: %s", mode, r.body)
		}
		reqID := r.header.Get("Request-Id")
		logs := h.logs.String()
		if !strings.Contains(logs, reqID) || (!strings.Contains(logs, "disk on fire") && mode == "error") ||
			(!strings.Contains(logs, "handler exploded") && mode == "panic") {
			t.Errorf("%s: the log does not record the cause under %s:\n%s", mode, reqID, logs)
		}
	}
	// A 5xx stores nothing: the retry with the same key runs again.
	fp.set("")
	r := h.do(req{method: "POST", path: "/v1/payments", key: key, body: body, header: idem})
	wantStatus(t, r, 200)
	if r.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("retry after a 500 was a replay: %s", r.body)
	}
}

// No card number or CVC reaches a response or a log line, whatever the
// client sends.
func TestCardDataNeverEchoed(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	key := h.key(h.merchant(nil), false)
	const number, cvc = "4000000000000069", "9731"
	bodies := []string{
		`{"card": {"number": "` + number + `", "exp_month": 12, "exp_year": ` + expYear + `, "cvc": "` + cvc[:3] + `"}}`,
		`{"card": {"number": "` + number + `", "exp_month": 12, "exp_year": ` + expYear + `, "cvc": "` + cvc + `x"}}`,
		`{"card": {"number": ` + number + `, "exp_month": 12, "exp_year": ` + expYear + `, "cvc": ` + cvc + `}}`,
		`{"card": {"number": "` + number + `", "cvc": "` + cvc + `" "exp_month": 12}}`,
		`{"card": {"number": "` + number + `x", "exp_month": 12, "exp_year": ` + expYear + `}}`,
		`{"card": {"` + number + `": "` + cvc + `"}}`,
		`{"card": {"number": "` + number + `", "number": "` + number + `"}}`,
		`{"card": {"number": "` + number + `", "exp_month": 12, "exp_year": 2020, "cvc": "` + cvc + `"}}`,
		`{"card": {"number": "` + number + `", "exp_month": 12, "exp_year": ` + expYear + `, "cvc": "` + cvc + `"}, "` + number + `": 1}`,
	}
	var responses []string
	for _, b := range bodies {
		r := h.do(req{method: "POST", path: "/v1/tokens", key: key, body: b})
		responses = append(responses, string(r.body))
	}
	r := h.do(req{method: "GET", path: "/v1/payments/" + number, key: key})
	responses = append(responses, string(r.body))
	r = h.do(req{method: "GET", path: "/v1/payments?" + number + "=" + cvc, key: key})
	responses = append(responses, string(r.body))

	logs := h.logs.String()
	if !strings.Contains(logs, `"msg":"request"`) {
		t.Fatalf("no access log lines: %q", logs)
	}
	// The CVC as a token of its own: not inside an ID or a fraction.
	cvcRE := regexp.MustCompile(`(^|[^0-9A-Za-z.])(` + cvc[:3] + `|` + cvc + `)([^0-9A-Za-z]|$)|` + cvc + `x`)
	for _, s := range append(responses, logs) {
		if strings.Contains(s, number[:12]) || cvcRE.MatchString(s) {
			t.Errorf("card data in %q", s)
		}
	}
}

func TestAccessLog(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	mrch := h.merchant(nil)
	key := h.key(mrch, false)
	r := h.do(req{method: "GET", path: "/v1/payments?limit=3&status=captured", key: key})
	wantStatus(t, r, 200)
	reqID := r.header.Get("Request-Id")

	var line map[string]any
	for _, l := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(l, reqID) && strings.Contains(l, `"msg":"request"`) {
			if line != nil {
				t.Fatalf("two access lines for %s", reqID)
			}
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := map[string]any{"method": "GET", "path": "/v1/payments", "status": float64(200), "request_id": reqID,
		"merchant_id": mrch, "livemode": false, "route": "GET /v1/payments", "query": "limit,status"}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("access line %s = %v; want %v (line %v)", k, line[k], v, line)
		}
	}
	if _, ok := line["duration_ms"]; !ok {
		t.Errorf("access line has no duration_ms: %v", line)
	}
	if strings.Contains(fmt.Sprint(line), "captured") {
		t.Errorf("access line shows a query value: %v", line)
	}
}

// Concurrent requests with one key execute once.
func TestConcurrentSameKey(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	key := h.key(h.merchant(nil), false)
	tok := h.token(key, cardApprove)
	body := `{"amount": 4200, "currency": "usd", "payment_method": {"type": "card", "card": {"token": "` + tok + `"}}}`
	const n = 20
	var wg sync.WaitGroup
	results := make(chan *response, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- h.do(req{method: "POST", path: "/v1/payments", key: key, body: body, header: map[string]string{"Idempotency-Key": "same"}})
		}()
	}
	wg.Wait()
	close(results)
	ids := map[string]bool{}
	for r := range results {
		switch {
		case r.status == 200:
			ids[r.str("id")] = true
		case r.status == 409 && r.str("error", "code") == payloom.CodeIdempotencyInProgress:
		default:
			t.Errorf("concurrent request = %d %s; want 200 or 409 in progress", r.status, r.body)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("payments made = %v; want exactly one", ids)
	}
	if list := h.do(req{method: "GET", path: "/v1/payments", key: key}); len(list.json["data"].([]any)) != 1 {
		t.Fatalf("payments listed = %s; want one", list.body)
	}
}

// TestTokenCardRules sends cards the vault refuses through POST /v1/tokens:
// the API has no copy of the card rules, so each answer is the vault's,
// with its param, and the Idempotency-Key stays free for a corrected card.
func TestTokenCardRules(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	key := h.key(h.merchant(nil), false)
	now := time.Now().UTC()
	lastMonth := now.AddDate(0, -1, 0)
	tests := []struct {
		name, body, param string
	}{
		{"luhn", `{"card": {"number": "4242424242424241", "exp_month": 12, "exp_year": 2030}}`, "card[number]"},
		{"letters", `{"card": {"number": "4242x42424242424", "exp_month": 12, "exp_year": 2030}}`, "card[number]"},
		{"short", `{"card": {"number": "42424242", "exp_month": 12, "exp_year": 2030}}`, "card[number]"},
		{"month 13", `{"card": {"number": "4242424242424242", "exp_month": 13, "exp_year": 2030}}`, "card[exp_month]"},
		{"expired year", `{"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2024}}`, "card[exp_year]"},
		{"cvc letters", `{"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "12a"}}`, "card[cvc]"},
		{"amex short cvc", `{"card": {"number": "378282246310005", "exp_month": 1, "exp_year": 2030, "cvc": "123"}}`, "card[cvc]"},
		{"visa long cvc", `{"card": {"number": "4242424242424242", "exp_month": 1, "exp_year": 2030, "cvc": "1234"}}`, "card[cvc]"},
		{"holder control", `{"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "holder_name": "a\u0007"}}`, "card[holder_name]"},
	}
	if lastMonth.Year() == now.Year() {
		tests = append(tests, struct{ name, body, param string }{"expired month",
			fmt.Sprintf(`{"card": {"number": "4242424242424242", "exp_month": %d, "exp_year": %d}}`, lastMonth.Month(), lastMonth.Year()),
			"card[exp_month]"})
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idem := map[string]string{"Idempotency-Key": fmt.Sprintf("card-rule-%d", i)}
			r := h.do(req{method: "POST", path: "/v1/tokens", key: key, body: tt.body, header: idem})
			wantError(t, r, 400, payloom.CodeValidation, tt.param)
			g := h.do(req{method: "POST", path: "/v1/tokens", key: key, body: tokenBody(cardApprove), header: idem})
			wantStatus(t, g, 200)
			if g.header.Get("Idempotent-Replayed") != "" {
				t.Fatalf("the corrected card after a refused one was a replay: %s", g.body)
			}
		})
	}
}

// TestReplayAfterMerchantChange: the stored response of a completed request
// is replayed even when the same request would now be refused (the
// merchant's limit was lowered after it), because the key is claimed before
// anything that depends on stored state is checked.
func TestReplayAfterMerchantChange(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	mrch := h.merchant(nil)
	key := h.key(mrch, false)
	tok := h.token(key, cardApprove)
	body := `{"amount": 5000, "currency": "usd", "payment_method": {"type": "card", "card": {"token": "` + tok + `"}}}`
	idem := map[string]string{"Idempotency-Key": "limit-change"}
	first := h.do(req{method: "POST", path: "/v1/payments", key: key, body: body, header: idem})
	wantStatus(t, first, 200)

	err := h.store.Update(context.Background(), func(tx payloom.Tx) error {
		m, err := tx.GetMerchant(context.Background(), mrch)
		if err != nil {
			return err
		}
		m.MaxAmount = 1000
		return tx.UpdateMerchant(context.Background(), m)
	})
	if err != nil {
		t.Fatal(err)
	}
	again := h.do(req{method: "POST", path: "/v1/payments", key: key, body: body, header: idem})
	if again.status != 200 || again.header.Get("Idempotent-Replayed") != "true" || string(again.body) != string(first.body) {
		t.Fatalf("retry after the limit was lowered = %d replayed=%q %s; want the first response replayed",
			again.status, again.header.Get("Idempotent-Replayed"), again.body)
	}
	fresh := h.do(req{method: "POST", path: "/v1/payments", key: key, body: body, header: map[string]string{"Idempotency-Key": "limit-change-2"}})
	wantError(t, fresh, 400, payloom.CodeValidation, "amount")
}
