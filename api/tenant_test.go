package api

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/payloom/payloom"
)

// tenant is one merchant with one object of every kind, made through the
// API with a key that holds every permission.
type tenant struct {
	merchant string
	key      string
	// ids maps the resource name in a path (/v1/<name>/{id}) to an object
	// of that kind.
	ids map[string]string
	// captured is a captured payment (refundable); token a token;
	// email and reference the customer's.
	captured, token, email, reference string
}

func newTenant(h *harness, name string) *tenant {
	h.t.Helper()
	m := h.merchant(&payloom.Merchant{Name: name})
	key, _ := h.keyWith(m, payloom.Permissions...)
	tn := &tenant{merchant: m, key: key, ids: map[string]string{},
		email: strings.ToLower(name) + "@example.com", reference: "ref-" + name}
	cus := h.customer(key, `{"name": "`+name+`", "email": "`+tn.email+`", "reference": "`+tn.reference+`"}`)
	authorized := h.pay(key, cardApprove, 1000, `, "capture_method": "manual", "customer_id": "`+cus+`", "save_payment_method": true`)
	wantStatus(h.t, authorized, 200)
	captured := h.pay(key, cardApprove, 2000, "")
	ref := h.do(req{method: "POST", path: "/v1/refunds", key: key, body: `{"payment_id": "` + captured.str("id") + `", "amount": 100}`})
	wantStatus(h.t, ref, 200)
	ep := h.do(req{method: "POST", path: "/v1/webhook_endpoints", key: key,
		body: `{"url": "http://127.0.0.1:9/hooks", "enabled_events": ["*"]}`})
	wantStatus(h.t, ep, 200)
	pa := h.do(req{method: "POST", path: "/v1/processor_accounts", key: key,
		body: `{"name": "acq-` + strings.ToLower(name) + `", "connector": "simulator", "credentials": {"base_url": "http://127.0.0.1:9"}}`})
	wantStatus(h.t, pa, 200)
	wantStatus(h.t, h.do(req{method: "PUT", path: "/v1/routing", key: key,
		body: `{"rules": [{"conditions": {"currency": "EUR"}, "processors": ["` + pa.str("id") + `"]}]}`}), 200)
	evs := h.do(req{method: "GET", path: "/v1/events?object_id=" + authorized.str("id"), key: key})
	wantStatus(h.t, evs, 200)
	// An audit event of the merchant: a denied request.
	weak, _ := h.keyWith(m, payloom.PermissionPaymentsRead)
	wantStatus(h.t, h.do(req{method: "GET", path: "/v1/customers", key: weak}), 403)

	tn.ids["payments"] = authorized.str("id")
	tn.ids["refunds"] = ref.str("id")
	tn.ids["customers"] = cus
	tn.ids["payment_methods"] = authorized.str("payment_method", "id")
	tn.ids["events"] = evs.json["data"].([]any)[0].(map[string]any)["id"].(string)
	tn.ids["webhook_endpoints"] = ep.str("id")
	tn.ids["processor_accounts"] = pa.str("id")
	tn.captured = captured.str("id")
	tn.token = h.token(key, cardApprove)
	for kind, id := range tn.ids {
		if id == "" {
			h.t.Fatalf("tenant %s has no %s", name, kind)
		}
	}
	return tn
}

// all returns every ID of the tenant's objects.
func (tn *tenant) all() []string {
	out := []string{tn.merchant, tn.captured, tn.token}
	for _, id := range tn.ids {
		out = append(out, id)
	}
	return out
}

// resource returns the resource name of a pattern: "/v1/payments/{id}/capture"
// -> "payments".
func resource(pattern string) string {
	parts := strings.Split(strings.TrimPrefix(pattern, "/v1/"), "/")
	return parts[0]
}

// dump returns every row of every table of the harness's database.
func (h *harness) dump() map[string][]string {
	h.t.Helper()
	db := h.rawDB()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		h.t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			h.t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	out := map[string][]string{}
	for _, table := range tables {
		rs, err := db.Query(`SELECT * FROM "` + table + `" ORDER BY rowid`)
		if err != nil {
			h.t.Fatal(err)
		}
		cols, _ := rs.Columns()
		for rs.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rs.Scan(ptrs...); err != nil {
				h.t.Fatal(err)
			}
			out[table] = append(out[table], fmt.Sprintf("%q", vals))
		}
		rs.Close()
	}
	return out
}

func diffDumps(before, after map[string][]string) []string {
	var out []string
	for table, rows := range after {
		if !slices.Equal(before[table], rows) {
			out = append(out, fmt.Sprintf("table %s: %d rows before, %d after", table, len(before[table]), len(rows)))
		}
	}
	for table := range before {
		if _, ok := after[table]; !ok {
			out = append(out, "table "+table+" vanished")
		}
	}
	return out
}

// tenantWriteBodies are the bodies of B's writes on A's objects: valid
// requests, so that the only reason to refuse them is whose the object is.
var tenantWriteBodies = map[string]string{
	"POST /v1/payments/{id}/capture":                `{"amount": 500}`,
	"POST /v1/payments/{id}/cancel":                 `{}`,
	"POST /v1/payments/{id}/confirm":                `{"payment_method": {"type": "card", "card": {"token": "{own_token}"}}}`,
	"PATCH /v1/customers/{id}":                      `{"name": "hijacked", "metadata": {"owner": "B"}}`,
	"DELETE /v1/customers/{id}":                     ``,
	"DELETE /v1/payment_methods/{id}":               ``,
	"POST /v1/events/{id}/resend":                   ``,
	"PATCH /v1/webhook_endpoints/{id}":              `{"url": "http://127.0.0.1:9/stolen", "enabled": false}`,
	"DELETE /v1/webhook_endpoints/{id}":             ``,
	"POST /v1/webhook_endpoints/{id}/rotate_secret": ``,
	"PATCH /v1/processor_accounts/{id}":             `{"enabled": false, "credentials": {"base_url": "http://127.0.0.1:9/stolen"}}`,
	"DELETE /v1/processor_accounts/{id}":            ``,
}

// TestTenantIsolation walks the router's own table: for every route with
// an {id}, merchant B's key on merchant A's object answers 404 and changes
// nothing in the database; every list B reads holds B's objects and none
// of A's; every write B makes that names A's objects in its body is
// refused and changes nothing. A route this test does not know fails it,
// so a new route cannot skip the check.
func TestTenantIsolation(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	a := newTenant(h, "Alpha")
	b := newTenant(h, "Bravo")

	// The IDs are real: A reads every one of them.
	for kind, id := range a.ids {
		wantStatus(t, h.do(req{method: "GET", path: "/v1/" + kind + "/" + id, key: a.key}), 200)
	}

	for _, rt := range Routes() {
		name := rt.Method + " " + rt.Pattern
		if !rt.Auth || !strings.Contains(rt.Pattern, "{id}") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			id, ok := a.ids[resource(rt.Pattern)]
			if !ok {
				t.Fatalf("no object of kind %q for %s: extend newTenant", resource(rt.Pattern), name)
			}
			r := req{method: rt.Method, path: strings.ReplaceAll(rt.Pattern, "{id}", id), key: b.key}
			if rt.Write {
				body, ok := tenantWriteBodies[name]
				if !ok {
					t.Fatalf("no body for %s: extend tenantWriteBodies", name)
				}
				// B pays with its own card: only the payment is A's.
				r.body = strings.ReplaceAll(body, "{own_token}", b.token)
				r.header = map[string]string{"Idempotency-Key": "tenant-" + name}
			}
			before := h.dump()
			resp := h.do(r)
			wantError(t, resp, 404, payloom.CodeNotFound, "")
			if d := diffDumps(before, h.dump()); len(d) > 0 {
				t.Errorf("%s by B on A's %s changed the database: %v", name, id, d)
			}
			// B's own object of the kind is reachable the same way:
			// the 404 is about ownership, not the request.
			if !rt.Write {
				own := strings.ReplaceAll(rt.Pattern, "{id}", b.ids[resource(rt.Pattern)])
				wantStatus(t, h.do(req{method: "GET", path: own, key: b.key}), 200)
			}
		})
	}

	// Lists: B sees its own objects and none of A's, also when a filter
	// names A's objects.
	lists := map[string][]string{ // pattern -> queries; "" lists everything
		"/v1/payments":           {"", "?status=authorized"},
		"/v1/refunds":            {"", "?payment_id=" + a.captured},
		"/v1/customers":          {"", "?email=" + url.QueryEscape(a.email), "?reference=" + a.reference},
		"/v1/events":             {"", "?object_id=" + a.ids["payments"]},
		"/v1/webhook_endpoints":  {""},
		"/v1/audit_events":       {""},
		"/v1/processor_accounts": {""},
		"/v1/routing":            {""},
	}
	for _, rt := range Routes() {
		if !rt.Auth || rt.Write || strings.Contains(rt.Pattern, "{id}") {
			continue
		}
		queries, ok := lists[rt.Pattern]
		if !ok {
			t.Errorf("list %s is not covered: extend the lists table", rt.Pattern)
			continue
		}
		for _, q := range queries {
			r := h.do(req{method: "GET", path: rt.Pattern + q, key: b.key})
			wantStatus(t, r, 200)
			for _, id := range a.all() {
				if strings.Contains(string(r.body), id) {
					t.Errorf("GET %s%s with B's key shows A's %s", rt.Pattern, q, id)
				}
			}
			if rt.Pattern == "/v1/routing" {
				// Not a list: B's own rules, naming B's account.
				if !strings.Contains(string(r.body), b.ids["processor_accounts"]) {
					t.Errorf("GET /v1/routing with B's key = %s; want B's rules", r.body)
				}
				continue
			}
			if q == "" && len(r.json["data"].([]any)) == 0 {
				t.Errorf("GET %s with B's key is empty; want B's own objects", rt.Pattern)
			}
		}
	}
	// The lists under an {id} were covered above with A's IDs (404); with
	// B's own they hold nothing of A's either.
	for _, p := range []string{"/v1/customers/" + b.ids["customers"] + "/payment_methods", "/v1/events/" + b.ids["events"] + "/deliveries"} {
		r := h.do(req{method: "GET", path: p, key: b.key})
		wantStatus(t, r, 200)
		for _, id := range a.all() {
			if strings.Contains(string(r.body), id) {
				t.Errorf("GET %s shows A's %s", p, id)
			}
		}
	}

	// Writes without an {id} that name A's objects in the body.
	refs := map[string][]string{
		"/v1/payments": {
			`{"amount": 100, "currency": "usd", "payment_method": {"type": "card", "card": {"payment_method": "` + a.ids["payment_methods"] + `"}}}`,
			`{"amount": 100, "currency": "usd", "customer_id": "` + a.ids["customers"] + `", "payment_method": {"type": "card", "card": {"token": "` + b.token + `"}}}`,
			`{"amount": 100, "currency": "usd", "payment_method": {"type": "card", "card": {"token": "` + a.token + `"}}}`,
			`{"merchant_id": "` + a.merchant + `", "amount": 100, "currency": "usd", "payment_method": {"type": "card", "card": {"token": "` + b.token + `"}}}`,
		},
		"/v1/refunds":            {`{"payment_id": "` + a.captured + `"}`},
		"/v1/tokens":             {`{"merchant_id": "` + a.merchant + `", "card": {"number": "` + cardApprove + `", "exp_month": 12, "exp_year": ` + expYear + `}}`},
		"/v1/customers":          {`{"merchant_id": "` + a.merchant + `", "name": "x"}`},
		"/v1/webhook_endpoints":  {`{"merchant_id": "` + a.merchant + `", "url": "http://127.0.0.1:9/x", "enabled_events": ["*"]}`},
		"/v1/processor_accounts": {`{"merchant_id": "` + a.merchant + `", "name": "x", "connector": "simulator", "credentials": {"base_url": "http://127.0.0.1:9"}}`},
		"/v1/routing": {
			`{"rules": [{"processors": ["` + a.ids["processor_accounts"] + `"]}]}`,
			`{"rules": [{"processors": ["` + b.ids["processor_accounts"] + `", "` + a.ids["processor_accounts"] + `"]}]}`,
			`{"merchant_id": "` + a.merchant + `", "rules": []}`,
		},
	}
	for _, rt := range Routes() {
		if !rt.Auth || !rt.Write || strings.Contains(rt.Pattern, "{id}") {
			continue
		}
		bodies, ok := refs[rt.Pattern]
		if !ok {
			t.Errorf("write %s %s is not covered: extend the refs table", rt.Method, rt.Pattern)
			continue
		}
		for i, body := range bodies {
			before := h.dump()
			r := h.do(req{method: rt.Method, path: rt.Pattern, key: b.key, body: body,
				header: map[string]string{"Idempotency-Key": fmt.Sprintf("tenant-ref-%s-%d", rt.Pattern, i)}})
			if r.status != 404 && r.status != 400 {
				t.Errorf("%s %s naming A's objects (%d) = %d %s; want 404 (or 400 for a token or merchant_id)",
					rt.Method, rt.Pattern, i, r.status, r.body)
			}
			if d := diffDumps(before, h.dump()); len(d) > 0 {
				t.Errorf("%s %s naming A's objects (%d) changed the database: %v", rt.Method, rt.Pattern, i, d)
			}
		}
	}
}
