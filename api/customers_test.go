package api

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/payloom/payloom"
)

// keyWith creates a test-mode key of the merchant with exactly perms and
// returns the secret and the key's ID.
func (h *harness) keyWith(merchantID string, perms ...payloom.Permission) (secret, id string) {
	h.t.Helper()
	if len(perms) == 0 {
		h.t.Fatal("keyWith needs permissions")
	}
	k, s, err := h.eng.CreateAPIKey(context.Background(), merchantID, false, perms...)
	if err != nil {
		h.t.Fatalf("CreateAPIKey: %v", err)
	}
	return s.Reveal(), k.ID
}

// customer creates a customer and returns its ID.
func (h *harness) customer(key, body string) string {
	h.t.Helper()
	r := h.do(req{method: "POST", path: "/v1/customers", key: key, body: body})
	wantStatus(h.t, r, 200)
	return r.str("id")
}

func (h *harness) audit(f payloom.AuditFilter) []*payloom.AuditEvent {
	h.t.Helper()
	f.Limit = 100
	l, err := h.eng.ListAuditEvents(context.Background(), f)
	if err != nil {
		h.t.Fatal(err)
	}
	return l.Data
}

func TestCustomersAPI(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	m := h.merchant(nil)
	key := h.key(m, false)

	r := h.do(req{method: "POST", path: "/v1/customers", key: key, body: `{"name": " Ana Souza ", "email": "Ana@Example.com",
		"phone": "+55 (11) 91234-5678", "document": "529.982.247-25", "reference": "user-42", "metadata": {"tier": "gold"}}`})
	wantStatus(t, r, 200)
	id := r.str("id")
	want := map[string]string{"object": "customer", "name": "Ana Souza", "email": "ana@example.com", "phone": "+5511912345678",
		"document": "52998224725", "document_type": "cpf", "reference": "user-42", "merchant_id": m}
	for k, v := range want {
		if got := r.str(k); got != v {
			t.Errorf("customer %s = %q; want %q", k, got, v)
		}
	}
	if !payloom.HasPrefix(id, payloom.PrefixCustomer) {
		t.Fatalf("customer id = %q; want cus_...", id)
	}
	for _, tt := range []struct{ body, param string }{
		{`{"document": "529.982.247-24"}`, "document"},
		{`{"document": "11.222.333/0001-80"}`, "document"},
		{`{"email": "ana"}`, "email"},
		{`{"phone": "12"}`, "phone"},
		{`{"name": 7}`, "name"},
		{`{"nickname": "x"}`, "nickname"},
		{`{"metadata": {"": "x"}}`, "metadata[]"},
	} {
		wantError(t, h.do(req{method: "POST", path: "/v1/customers", key: key, body: tt.body}), 400, payloom.CodeValidation, tt.param)
	}

	r = h.do(req{method: "GET", path: "/v1/customers/" + id, key: key})
	wantStatus(t, r, 200)
	if r.str("document") != "52998224725" {
		t.Errorf("retrieved customer = %s", r.body)
	}
	wantError(t, h.do(req{method: "GET", path: "/v1/customers/cus_missing", key: key}), 404, payloom.CodeNotFound, "")

	other := h.customer(key, `{"email": "bob@example.com", "reference": "user-7"}`)
	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"", []string{other, id}},
		{"?email=ANA%40example.com", []string{id}},
		{"?reference=user-7", []string{other}},
		{"?limit=1", []string{other}},
		{"?starting_after=" + other, []string{id}},
		{"?email=nobody%40example.com", nil},
	} {
		r := h.do(req{method: "GET", path: "/v1/customers" + tt.query, key: key})
		wantStatus(t, r, 200)
		var l struct{ Data []struct{ ID string } }
		_ = json.Unmarshal(r.body, &l)
		var got []string
		for _, c := range l.Data {
			got = append(got, c.ID)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("GET /v1/customers%s = %v; want %v", tt.query, got, tt.want)
		}
	}
	wantError(t, h.do(req{method: "GET", path: "/v1/customers?phone=1", key: key}), 400, payloom.CodeValidation, "phone")
	wantError(t, h.do(req{method: "GET", path: "/v1/customers?starting_after=pay_1", key: key}), 400, payloom.CodeValidation, "starting_after")

	r = h.do(req{method: "PATCH", path: "/v1/customers/" + id, key: key, body: `{"email": "", "document": "11.222.333/0001-81", "metadata": {"tier": "", "x": "y"}}`})
	wantStatus(t, r, 200)
	if r.str("email") != "" || r.str("document") != "11222333000181" || r.str("document_type") != "cnpj" || r.str("name") != "Ana Souza" {
		t.Errorf("PATCH = %s; want email cleared, CNPJ, name kept", r.body)
	}
	if md, _ := r.json["metadata"].(map[string]any); len(md) != 1 || md["x"] != "y" {
		t.Errorf("PATCH metadata = %v; want {x: y}", md)
	}
	wantError(t, h.do(req{method: "PATCH", path: "/v1/customers/" + id, key: key, body: `{"document": "123"}`}), 400, payloom.CodeValidation, "document")
	wantError(t, h.do(req{method: "PATCH", path: "/v1/customers/cus_missing", key: key, body: `{"name": "x"}`}), 404, payloom.CodeNotFound, "")

	r = h.do(req{method: "DELETE", path: "/v1/customers/" + other, key: key})
	wantStatus(t, r, 200)
	if r.str("id") != other || r.json["deleted"] != true || r.str("object") != "customer" {
		t.Errorf("DELETE = %s", r.body)
	}
	wantError(t, h.do(req{method: "DELETE", path: "/v1/customers/" + other, key: key}), 404, payloom.CodeNotFound, "")
	wantError(t, h.do(req{method: "GET", path: "/v1/customers/" + other, key: key}), 404, payloom.CodeNotFound, "")
}

// A shopper pays with save_payment_method, then with the saved method
// alone; the same card through a new token is not saved twice; deleting
// the method or the customer removes it.
func TestSavedPaymentMethodsAPI(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	m := h.merchant(nil)
	key := h.key(m, false)
	cus := h.customer(key, `{"name": "Ana"}`)

	first := h.pay(key, cardApprove, 1000, `, "customer_id": "`+cus+`", "save_payment_method": true`)
	wantStatus(t, first, 200)
	pm := first.str("payment_method", "id")
	if first.str("status") != "captured" || !payloom.HasPrefix(pm, payloom.PrefixPaymentMethod) {
		t.Fatalf("first payment = %s; want captured with payment_method.id pm_...", first.body)
	}
	fp := first.str("payment_method", "card", "fingerprint")

	r := h.do(req{method: "GET", path: "/v1/customers/" + cus + "/payment_methods", key: key})
	wantStatus(t, r, 200)
	if strings.Contains(string(r.body), "tok_") || !strings.Contains(string(r.body), pm) || !strings.Contains(string(r.body), fp) {
		t.Errorf("payment methods = %s; want %s with fingerprint %s and no token", r.body, pm, fp)
	}
	r = h.do(req{method: "GET", path: "/v1/payment_methods/" + pm, key: key})
	wantStatus(t, r, 200)
	if r.str("customer_id") != cus || r.str("card", "last4") != "4242" || r.str("card", "token") != "" {
		t.Errorf("payment method = %s", r.body)
	}

	// Pay with the saved method only: no token, no CVC.
	second := h.do(req{method: "POST", path: "/v1/payments", key: key,
		body: `{"amount": 500, "currency": "usd", "payment_method": {"type": "card", "card": {"payment_method": "` + pm + `"}}}`})
	wantStatus(t, second, 200)
	if second.str("status") != "captured" || second.str("payment_method", "card", "fingerprint") != fp ||
		second.str("customer_id") != cus || second.str("payment_method", "id") != pm {
		t.Errorf("payment with the saved method = %s; want captured, fingerprint %s, customer %s", second.body, fp, cus)
	}

	// The same card through a new token, saved again: still one method.
	third := h.pay(key, cardApprove, 700, `, "customer_id": "`+cus+`", "save_payment_method": true`)
	if third.str("payment_method", "id") != pm {
		t.Errorf("third payment saved %q; want the existing %s", third.str("payment_method", "id"), pm)
	}
	r = h.do(req{method: "GET", path: "/v1/customers/" + cus + "/payment_methods", key: key})
	if n := len(r.json["data"].([]any)); n != 1 {
		t.Errorf("payment methods after the third payment = %d; want 1", n)
	}

	// A decline saves nothing.
	other := h.customer(key, `{}`)
	declined := h.pay(key, cardDecline, 700, `, "customer_id": "`+other+`", "save_payment_method": true`)
	if declined.str("status") != "declined" || declined.str("payment_method", "id") != "" {
		t.Errorf("declined payment = %s; want nothing saved", declined.body)
	}

	// Errors name their parameter.
	tok := h.token(key, cardApprove)
	for _, tt := range []struct {
		body        string
		status      int
		code, param string
	}{
		{`{"amount": 100, "currency": "usd", "customer_id": "cus_missing", "payment_method": {"type": "card", "card": {"token": "` + tok + `"}}}`,
			404, payloom.CodeNotFound, "customer_id"},
		{`{"amount": 100, "currency": "usd", "save_payment_method": true, "payment_method": {"type": "card", "card": {"token": "` + tok + `"}}}`,
			400, payloom.CodeValidation, "customer_id"},
		{`{"amount": 100, "currency": "usd", "payment_method": {"type": "card", "card": {"payment_method": "pm_missing"}}}`,
			404, payloom.CodeNotFound, "payment_method[card][payment_method]"},
		{`{"amount": 100, "currency": "usd", "customer_id": "` + other + `", "payment_method": {"type": "card", "card": {"payment_method": "` + pm + `"}}}`,
			400, payloom.CodeValidation, "payment_method[card][payment_method]"},
		{`{"amount": 100, "currency": "usd", "payment_method": {"type": "card", "card": {"payment_method": "` + pm + `", "token": "` + tok + `"}}}`,
			400, payloom.CodeValidation, "payment_method[card]"},
		{`{"amount": 100, "currency": "usd", "payment_method": {"type": "card", "card": {"payment_method": "tok_1"}}}`,
			400, payloom.CodeValidation, "payment_method[card][payment_method]"},
		{`{"amount": 100, "currency": "usd", "payment_method": {"type": "card", "card": {}}}`,
			400, payloom.CodeValidation, "payment_method[card][token]"},
	} {
		r := h.do(req{method: "POST", path: "/v1/payments", key: key, body: tt.body, header: map[string]string{"Idempotency-Key": "k-" + tt.param}})
		wantError(t, r, tt.status, tt.code, tt.param)
	}
	// A 404 on a referenced object stores nothing under the key: the
	// corrected request goes through with the same key.
	r = h.do(req{method: "POST", path: "/v1/payments", key: key, header: map[string]string{"Idempotency-Key": "k-customer_id"},
		body: `{"amount": 100, "currency": "usd", "customer_id": "` + cus + `", "payment_method": {"type": "card", "card": {"token": "` + tok + `"}}}`})
	wantStatus(t, r, 200)

	wantError(t, h.do(req{method: "GET", path: "/v1/customers/cus_missing/payment_methods", key: key}), 404, payloom.CodeNotFound, "")
	wantError(t, h.do(req{method: "GET", path: "/v1/payment_methods/pm_missing", key: key}), 404, payloom.CodeNotFound, "")
	r = h.do(req{method: "DELETE", path: "/v1/payment_methods/" + pm, key: key})
	wantStatus(t, r, 200)
	if r.str("object") != "payment_method" || r.json["deleted"] != true {
		t.Errorf("DELETE payment method = %s", r.body)
	}
	wantError(t, h.do(req{method: "DELETE", path: "/v1/payment_methods/" + pm, key: key}), 404, payloom.CodeNotFound, "")
	r = h.do(req{method: "POST", path: "/v1/payments", key: key,
		body: `{"amount": 500, "currency": "usd", "payment_method": {"type": "card", "card": {"payment_method": "` + pm + `"}}}`})
	wantError(t, r, 404, payloom.CodeNotFound, "payment_method[card][payment_method]")
}

// rawCardPayment is a payment body with the card itself.
func rawCardPayment(number string) string {
	return `{"amount": 1000, "currency": "usd", "payment_method": {"type": "card", "card": {"number": "` + number +
		`", "exp_month": 12, "exp_year": ` + expYear + `, "cvc": "` + testCVC + `", "holder_name": "Ana"}}}`
}

func TestRawCardData(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	m := h.merchant(nil)
	plain, plainID := h.keyWith(m, payloom.DefaultPermissions()...)
	raw, rawID := h.keyWith(m, append(payloom.DefaultPermissions(), payloom.PermissionRawCardData)...)

	// Without the permission: 403 pointing to tokens and the hosted page,
	// nothing stored under the key, nothing tokenized, the refusal audited.
	r := h.do(req{method: "POST", path: "/v1/payments", key: plain, body: rawCardPayment(cardApprove),
		header: map[string]string{"Idempotency-Key": "raw-1"}})
	wantError(t, r, 403, payloom.CodePermissionDenied, "")
	msg := r.str("error", "message")
	for _, s := range []string{"raw_card_data", "POST /v1/tokens", "hosted payment page"} {
		if !strings.Contains(msg, s) {
			t.Errorf("403 message %q does not mention %q", msg, s)
		}
	}
	denied := h.audit(payloom.AuditFilter{Action: ptr(payloom.AuditPermissionDenied)})
	if len(denied) != 1 || denied[0].Actor != plainID || denied[0].Source != "127.0.0.1" ||
		denied[0].Details["permission"] != "raw_card_data" || denied[0].Outcome != payloom.AuditDenied || denied[0].MerchantID != m {
		t.Errorf("audit after the refusal = %+v; want one permission.denied by %s from 127.0.0.1", denied, plainID)
	}
	if n := h.count("cards"); n != 0 {
		t.Errorf("cards after the refusal = %d; want 0", n)
	}

	// With it: the card is tokenized at the edge and the payment goes
	// through with the token.
	r = h.do(req{method: "POST", path: "/v1/payments", key: raw, body: rawCardPayment(cardApprove),
		header: map[string]string{"Idempotency-Key": "raw-1"}})
	wantStatus(t, r, 200)
	tok := r.str("payment_method", "card", "token")
	if r.str("status") != "captured" || !payloom.HasPrefix(tok, payloom.PrefixToken) || r.str("payment_method", "card", "last4") != "4242" {
		t.Fatalf("raw card payment = %s; want captured with a token", r.body)
	}
	used := h.audit(payloom.AuditFilter{Action: ptr(payloom.AuditRawCardDataUsed)})
	if len(used) != 1 || used[0].Actor != rawID || used[0].TargetID != tok || used[0].Outcome != payloom.AuditSuccess {
		t.Errorf("audit = %+v; want one raw_card_data.used by %s on %s", used, rawID, tok)
	}

	// A retry with the same key and card (any CVC) replays; another card
	// under the same key conflicts.
	again := h.do(req{method: "POST", path: "/v1/payments", key: raw,
		body: strings.Replace(rawCardPayment(cardApprove), testCVC, "999", 1), header: map[string]string{"Idempotency-Key": "raw-1"}})
	wantStatus(t, again, 200)
	if again.header.Get("Idempotent-Replayed") != "true" || string(again.body) != string(r.body) {
		t.Errorf("retry = %s (replayed %q); want the first response replayed", again.body, again.header.Get("Idempotent-Replayed"))
	}
	wantError(t, h.do(req{method: "POST", path: "/v1/payments", key: raw, body: rawCardPayment("5555555555554444"),
		header: map[string]string{"Idempotency-Key": "raw-1"}}), 409, payloom.CodeIdempotencyConflict, "")
	// Every receipt of card data is audited, replays included.
	if n := len(h.audit(payloom.AuditFilter{Action: ptr(payloom.AuditRawCardDataUsed)})); n != 3 {
		t.Errorf("raw_card_data.used events = %d; want 3", n)
	}

	// The stored fingerprint is not a hash of the body with the number.
	tree, _ := parseJSON([]byte(rawCardPayment(cardApprove)))
	withPAN := fingerprint("POST", "/v1/payments", canonicalJSON(tree))
	var stored string
	if err := h.store.View(context.Background(), func(tx payloom.Tx) error {
		k, err := tx.GetIdempotencyKey(context.Background(), payloom.Scope{MerchantID: m}, "raw-1")
		if err == nil {
			stored = k.Fingerprint
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if stored == "" || stored == withPAN {
		t.Errorf("stored fingerprint %q; want one that does not hash the card number", stored)
	}

	// An invalid card: 400 on the payment's own parameter, audited as a
	// failure, nothing stored under the key.
	r = h.do(req{method: "POST", path: "/v1/payments", key: raw, body: rawCardPayment("4242424242424241"),
		header: map[string]string{"Idempotency-Key": "raw-2"}})
	wantError(t, r, 400, payloom.CodeValidation, "payment_method[card][number]")
	failed := h.audit(payloom.AuditFilter{Action: ptr(payloom.AuditRawCardDataUsed)})
	if failed[0].Outcome != payloom.AuditFailure || failed[0].Details["error"] != payloom.CodeValidation {
		t.Errorf("newest raw_card_data.used = %+v; want a failure", failed[0])
	}
	for _, tt := range []struct{ body, param string }{
		{`{"amount": 1000, "currency": "usd", "payment_method": {"type": "card", "card": {"exp_month": 12}}}`, "payment_method[card][number]"},
		{`{"amount": 1000, "currency": "usd", "payment_method": {"type": "card", "card": {"number": "4242424242424242"}}}`, "payment_method[card][exp_month]"},
		{`{"amount": 1000, "currency": "usd", "payment_method": {"type": "card", "card": {"number": "4242424242424242", "exp_month": 1}}}`, "payment_method[card][exp_year]"},
	} {
		wantError(t, h.do(req{method: "POST", path: "/v1/payments", key: raw, body: tt.body}), 400, payloom.CodeValidation, tt.param)
	}
	// Card data a key may not send is refused before it is even checked.
	wantError(t, h.do(req{method: "POST", path: "/v1/payments", key: plain, body: rawCardPayment("4242424242424241")}),
		403, payloom.CodePermissionDenied, "")
}

// count returns the number of rows of a table.
func (h *harness) count(table string) int {
	h.t.Helper()
	db := h.rawDB()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

func TestPermissionsOnEveryRoute(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	m := h.merchant(nil)
	for _, rt := range Routes() {
		if !rt.Auth {
			continue
		}
		t.Run(rt.Method+" "+rt.Pattern, func(t *testing.T) {
			var others []payloom.Permission
			for _, p := range payloom.Permissions {
				if p != rt.Permission {
					others = append(others, p)
				}
			}
			key, id := h.keyWith(m, others...)
			path := strings.ReplaceAll(rt.Pattern, "{id}", "x_1")
			body := ""
			if rt.Write {
				body = "{}"
			}
			r := h.do(req{method: rt.Method, path: path, key: key, body: body})
			wantError(t, r, 403, payloom.CodePermissionDenied, "")
			if msg := r.str("error", "message"); !strings.Contains(msg, `"`+string(rt.Permission)+`"`) ||
				!strings.Contains(msg, rt.Method+" "+rt.Pattern) {
				t.Errorf("403 message %q; want it to name %q and the route", msg, rt.Permission)
			}
			evs := h.audit(payloom.AuditFilter{Action: ptr(payloom.AuditPermissionDenied)})
			if len(evs) == 0 || evs[0].Actor != id || evs[0].Details["permission"] != string(rt.Permission) ||
				evs[0].Details["route"] != rt.Method+" "+rt.Pattern {
				t.Errorf("newest permission.denied = %+v; want it by %s for %s", evs[0], id, rt.Permission)
			}
		})
	}
}

func TestAuditEventsAPI(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	m := h.merchant(nil)
	other := h.merchant(nil)
	auditor, _ := h.keyWith(m, payloom.PermissionAuditRead)
	plain, plainID := h.keyWith(m, payloom.PermissionPaymentsRead)
	h.keyWith(other, payloom.PermissionPaymentsRead)
	// A refusal to record.
	wantError(t, h.do(req{method: "GET", path: "/v1/audit_events", key: plain}), 403, payloom.CodePermissionDenied, "")

	r := h.do(req{method: "GET", path: "/v1/audit_events", key: auditor})
	wantStatus(t, r, 200)
	var l struct {
		Data []payloom.AuditEvent
	}
	if err := json.Unmarshal(r.body, &l); err != nil {
		t.Fatal(err)
	}
	// Three key creations and one denial of merchant m; none of other's.
	var actions []string
	for _, ev := range l.Data {
		actions = append(actions, string(ev.Action))
		if ev.MerchantID != m {
			t.Errorf("audit event of merchant %q listed for %s", ev.MerchantID, m)
		}
	}
	want := []string{"permission.denied", "api_key.created", "api_key.created"}
	if !slices.Equal(actions, want) {
		t.Errorf("audit events = %v; want %v", actions, want)
	}
	if l.Data[0].Actor != plainID {
		t.Errorf("denial actor = %q; want %s", l.Data[0].Actor, plainID)
	}
	r = h.do(req{method: "GET", path: "/v1/audit_events?action=api_key.created&limit=1", key: auditor})
	wantStatus(t, r, 200)
	if n := len(r.json["data"].([]any)); n != 1 || r.json["has_more"] != true {
		t.Errorf("filtered audit events = %s; want one with more", r.body)
	}
	wantError(t, h.do(req{method: "GET", path: "/v1/audit_events?action=key.lost", key: auditor}), 400, payloom.CodeValidation, "action")
}

func ptr[T any](v T) *T { return &v }
