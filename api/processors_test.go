package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/payloom/payloom"
)

// plantedKey is a credential no response, log line or database byte may
// ever show.
const plantedKey = "sk_test_PLANTEDc4n4ryK3y9f8e7d6c5b4a3"

func TestProcessorAccountsAPI(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	m := h.merchant(nil)
	key, _ := h.keyWith(m, payloom.BootstrapPermissions()...)
	// A default key may not see or change where payments go.
	wantError(t, h.do(req{method: "GET", path: "/v1/processor_accounts", key: h.key(m, false)}), 403, payloom.CodePermissionDenied, "")

	r := h.do(req{method: "POST", path: "/v1/processor_accounts", key: key,
		body: `{"name": "stripe-us", "connector": "stripe", "credentials": {"api_key": "` + plantedKey + `", "backend_url": "http://127.0.0.1:12111"}}`})
	wantStatus(t, r, 200)
	stripeID := r.str("id")
	if !payloom.HasPrefix(stripeID, payloom.PrefixProcessorAccount) || r.str("name") != "stripe-us" ||
		r.str("connector") != "stripe" || r.json["enabled"] != true || fmt.Sprint(r.json["credential_keys"]) != "[api_key backend_url]" {
		t.Fatalf("create = %s; want an enabled stripe account with credential_keys [api_key backend_url]", r.body)
	}
	r = h.do(req{method: "POST", path: "/v1/processor_accounts", key: key,
		body: `{"name": "sim-a", "connector": "simulator", "credentials": {"base_url": "http://127.0.0.1:7070"}, "enabled": false}`})
	wantStatus(t, r, 200)
	simID := r.str("id")
	if r.json["enabled"] != false {
		t.Errorf("create with enabled false = %s; want disabled", r.body)
	}

	r = h.do(req{method: "GET", path: "/v1/processor_accounts/" + stripeID, key: key})
	wantStatus(t, r, 200)
	if r.str("name") != "stripe-us" {
		t.Errorf("GET = %s; want stripe-us", r.body)
	}
	r = h.do(req{method: "GET", path: "/v1/processor_accounts", key: key})
	wantStatus(t, r, 200)
	if data := r.json["data"].([]any); len(data) != 2 || data[0].(map[string]any)["id"] != stripeID {
		t.Errorf("list = %s; want [stripe-us, sim-a] oldest first", r.body)
	}

	r = h.do(req{method: "PATCH", path: "/v1/processor_accounts/" + simID, key: key,
		body: `{"enabled": true, "credentials": {"base_url": "http://127.0.0.1:7071"}}`})
	wantStatus(t, r, 200)
	if r.json["enabled"] != true {
		t.Errorf("PATCH enabled = %s; want enabled", r.body)
	}
	wantError(t, h.do(req{method: "PATCH", path: "/v1/processor_accounts/" + simID, key: key,
		body: `{"credentials": {"api_key": "x"}}`}), 400, payloom.CodeValidation, "credentials[api_key]")

	r = h.do(req{method: "GET", path: "/v1/processor_accounts/" + simID + "/health", key: key})
	wantStatus(t, r, 200)
	if r.str("state") != "closed" || r.str("processor_account") != simID || r.str("name") != "sim-a" {
		t.Errorf("health = %s; want closed for sim-a", r.body)
	}

	// Routing.
	r = h.do(req{method: "GET", path: "/v1/routing", key: key})
	wantStatus(t, r, 200)
	if fmt.Sprint(r.json["rules"]) != "[]" || r.json["updated_at"] != nil {
		t.Errorf("GET /v1/routing before any PUT = %s; want no rules", r.body)
	}
	r = h.do(req{method: "PUT", path: "/v1/routing", key: key, body: `{"rules": [
		{"conditions": {"currency": "USD", "amount_gte": 100, "amount_lte": 5000, "card_brand": "visa", "payment_method_type": "card", "metadata": {"tier": "gold"}}, "processors": ["` + simID + `", "` + stripeID + `"]},
		{"processors": ["` + stripeID + `"]}]}`})
	wantStatus(t, r, 200)
	got := h.do(req{method: "GET", path: "/v1/routing", key: key})
	wantStatus(t, got, 200)
	if !bytes.Equal(got.body, r.body) || !strings.Contains(string(got.body), `"metadata":{"tier":"gold"}`) {
		t.Errorf("GET /v1/routing = %s; want the PUT's answer %s", got.body, r.body)
	}

	// A routed account cannot be deleted; once unrouted it can.
	wantError(t, h.do(req{method: "DELETE", path: "/v1/processor_accounts/" + simID, key: key}), 400, payloom.CodeValidation, "id")
	wantStatus(t, h.do(req{method: "PUT", path: "/v1/routing", key: key, body: `{"rules": [{"processors": ["` + stripeID + `"]}]}`}), 200)
	r = h.do(req{method: "DELETE", path: "/v1/processor_accounts/" + simID, key: key})
	wantStatus(t, r, 200)
	if r.json["deleted"] != true || r.str("id") != simID {
		t.Errorf("DELETE = %s; want deleted %s", r.body, simID)
	}
	wantError(t, h.do(req{method: "GET", path: "/v1/processor_accounts/" + simID, key: key}), 404, payloom.CodeNotFound, "")
	r = h.do(req{method: "GET", path: "/v1/processor_accounts", key: key})
	if data := r.json["data"].([]any); len(data) != 1 {
		t.Errorf("list after delete = %s; want stripe-us alone", r.body)
	}
	// A deleted account's name stays taken: attempts name it.
	wantError(t, h.do(req{method: "POST", path: "/v1/processor_accounts", key: key,
		body: `{"name": "sim-a", "connector": "simulator", "credentials": {"base_url": "http://127.0.0.1:7070"}}`}),
		409, payloom.CodeAlreadyExists, "name")
	wantError(t, h.do(req{method: "PUT", path: "/v1/routing", key: key, body: `{"rules": [{"processors": ["` + simID + `"]}]}`}),
		400, payloom.CodeValidation, "rules[0][processors][0]")

	// The planted API key is nowhere: not in a response (h.do records
	// every body), the logs, nor the database files.
	for _, r := range []*response{
		h.do(req{method: "GET", path: "/v1/processor_accounts/" + stripeID, key: key}),
		h.do(req{method: "GET", path: "/v1/processor_accounts", key: key}),
	} {
		if strings.Contains(string(r.body), plantedKey) || strings.Contains(string(r.body), `"credentials"`) {
			t.Errorf("response shows credentials: %s", r.body)
		}
	}
	if strings.Contains(h.logs.String(), plantedKey) {
		t.Errorf("the logs show the planted API key")
	}
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(h.store.Path() + suffix)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(plantedKey)) || bytes.Contains(b, []byte("PLANTEDc4n4ry")) {
			t.Errorf("the database file %s holds the planted API key in the clear", h.store.Path()+suffix)
		}
	}
	// The credentials do round-trip through the vault: the router opens
	// them into a connector.
	proc, err := h.processors.ProcessorNamed(payloom.Scope{MerchantID: m}, "stripe-us")
	if err != nil || proc.Name() != "stripe-us" {
		t.Errorf("ProcessorNamed(stripe-us) = %v, %v; want the stripe connector", proc, err)
	}
}

func TestProcessorAccountValidation(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	key, _ := h.keyWith(h.merchant(nil), payloom.BootstrapPermissions()...)
	r := h.do(req{method: "POST", path: "/v1/processor_accounts", key: key,
		body: `{"name": "dup", "connector": "simulator", "credentials": {"base_url": "http://127.0.0.1:7070"}}`})
	wantStatus(t, r, 200)
	acct := r.str("id")
	tests := []struct {
		body, code, param string
		status            int
	}{
		{`{"connector": "simulator", "credentials": {"base_url": "http://x"}}`, payloom.CodeValidation, "name", 400},
		{`{"name": "a", "credentials": {"base_url": "http://x"}}`, payloom.CodeValidation, "connector", 400},
		{`{"name": "a", "connector": "simulator"}`, payloom.CodeValidation, "credentials", 400},
		{`{"name": "A b", "connector": "simulator", "credentials": {"base_url": "http://x"}}`, payloom.CodeValidation, "name", 400},
		{`{"name": "sandbox", "connector": "simulator", "credentials": {"base_url": "http://x"}}`, payloom.CodeValidation, "name", 400},
		{`{"name": "a", "connector": "paypal", "credentials": {"base_url": "http://x"}}`, payloom.CodeValidation, "connector", 400},
		{`{"name": "a", "connector": "simulator", "credentials": {}}`, payloom.CodeValidation, "credentials[base_url]", 400},
		{`{"name": "a", "connector": "simulator", "credentials": {"base_url": "ftp://x"}}`, payloom.CodeValidation, "credentials[base_url]", 400},
		{`{"name": "a", "connector": "simulator", "credentials": {"base_url": "http://x", "api_key": "k"}}`, payloom.CodeValidation, "credentials[api_key]", 400},
		{`{"name": "a", "connector": "stripe", "credentials": {"api_key": ""}}`, payloom.CodeValidation, "credentials[api_key]", 400},
		{`{"name": "a", "connector": "adyen", "credentials": {"api_key": "k", "base_url": "https://x"}}`, payloom.CodeValidation, "credentials[merchant_account]", 400},
		{`{"name": "a", "connector": "simulator", "credentials": {"base_url": 7}}`, payloom.CodeValidation, "credentials[base_url]", 400},
		{`{"name": "a", "connector": "simulator", "credentials": {"base_url": "http://x"}, "secret": 1}`, payloom.CodeValidation, "secret", 400},
		{`{"name": "dup", "connector": "simulator", "credentials": {"base_url": "http://x"}}`, payloom.CodeAlreadyExists, "name", 409},
	}
	for i, tt := range tests {
		r := h.do(req{method: "POST", path: "/v1/processor_accounts", key: key, body: tt.body})
		if r.status != tt.status || r.str("error", "code") != tt.code || r.str("error", "param") != tt.param {
			t.Errorf("%d: POST %s = %d %s; want %d %s param %q", i, tt.body, r.status, r.body, tt.status, tt.code, tt.param)
		}
	}

	rules := []struct{ body, param string }{
		{`{}`, "rules"},
		{`{"rules": [{"processors": []}]}`, "rules[0][processors]"},
		{`{"rules": [{}]}`, "rules[0][processors]"},
		{`{"rules": [{"processors": ["` + acct + `"]}, {"processors": ["` + acct + `", "pa_nope"]}]}`, "rules[1][processors][1]"},
		{`{"rules": [{"processors": ["` + acct + `", "` + acct + `"]}]}`, "rules[0][processors][1]"},
		{`{"rules": [{"conditions": {"currency": "usd"}, "processors": ["` + acct + `"]}]}`, "rules[0][conditions][currency]"},
		{`{"rules": [{"conditions": {"currency": "XYZ"}, "processors": ["` + acct + `"]}]}`, "rules[0][conditions][currency]"},
		{`{"rules": [{"conditions": {"amount_gte": 500, "amount_lte": 100}, "processors": ["` + acct + `"]}]}`, "rules[0][conditions][amount_lte]"},
		{`{"rules": [{"conditions": {"amount_gte": -1}, "processors": ["` + acct + `"]}]}`, "rules[0][conditions][amount_gte]"},
		{`{"rules": [{"conditions": {"card_brand": "visa-ish"}, "processors": ["` + acct + `"]}]}`, "rules[0][conditions][card_brand]"},
		{`{"rules": [{"conditions": {"payment_method_type": "wallet"}, "processors": ["` + acct + `"]}]}`, "rules[0][conditions][payment_method_type]"},
		{`{"rules": [{"conditions": {"country": "US"}, "processors": ["` + acct + `"]}]}`, "rules[0][conditions][country]"},
	}
	for _, tt := range rules {
		wantErrorf(t, h.do(req{method: "PUT", path: "/v1/routing", key: key, body: tt.body}), 400, payloom.CodeValidation, tt.param, "PUT /v1/routing "+tt.body)
	}
	// Nothing was stored by the refused PUTs.
	r = h.do(req{method: "GET", path: "/v1/routing", key: key})
	if fmt.Sprint(r.json["rules"]) != "[]" {
		t.Errorf("GET /v1/routing after refused PUTs = %s; want no rules", r.body)
	}
	wantError(t, h.do(req{method: "GET", path: "/v1/processor_accounts/pa_unknown/health", key: key}), 404, payloom.CodeNotFound, "")
}

func wantErrorf(t *testing.T, r *response, status int, code, param, what string) {
	t.Helper()
	if r.status != status || r.str("error", "code") != code || r.str("error", "param") != param {
		t.Errorf("%s = %d %s; want %d code %q param %q", what, r.status, r.body, status, code, param)
	}
}

// A rule may split by weight instead of listing processors, and match the
// card's issuing country; both read back as written, and every mistake is
// refused naming the rule and field.
func TestRoutingSplitAndCardCountryAPI(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	key, _ := h.keyWith(h.merchant(nil), payloom.BootstrapPermissions()...)
	var ids []string
	for _, name := range []string{"sim-a", "sim-b"} {
		r := h.do(req{method: "POST", path: "/v1/processor_accounts", key: key,
			body: `{"name": "` + name + `", "connector": "simulator", "credentials": {"base_url": "http://127.0.0.1:7070"}}`})
		wantStatus(t, r, 200)
		ids = append(ids, r.str("id"))
	}
	a, b := ids[0], ids[1]
	body := `{"rules": [{"conditions": {"card_country": "BR"}, "split": [{"processor": "` + a + `", "weight": 70}, {"processor": "` + b + `", "weight": 30}]},
		{"conditions": {"card_country": "US"}, "processors": ["` + b + `"]}]}`
	r := h.do(req{method: "PUT", path: "/v1/routing", key: key, body: body})
	wantStatus(t, r, 200)
	want := `"rules":[{"conditions":{"card_country":"BR"},"split":[{"processor":"` + a + `","weight":70},{"processor":"` + b + `","weight":30}]},` +
		`{"conditions":{"card_country":"US"},"processors":["` + b + `"]}]`
	if !strings.Contains(string(r.body), want) {
		t.Errorf("PUT /v1/routing = %s; want it to contain %s", r.body, want)
	}
	if got := h.do(req{method: "GET", path: "/v1/routing", key: key}); !bytes.Equal(got.body, r.body) {
		t.Errorf("GET /v1/routing = %s; want the PUT's answer %s", got.body, r.body)
	}
	// An account in a split cannot be deleted.
	wantError(t, h.do(req{method: "DELETE", path: "/v1/processor_accounts/" + a, key: key}), 400, payloom.CodeValidation, "id")

	split := func(entries string) string {
		return `{"rules": [{"processors": ["` + a + `"]}, {"split": [` + entries + `]}]}`
	}
	entry := func(id string, weight int) string {
		return fmt.Sprintf(`{"processor": "%s", "weight": %d}`, id, weight)
	}
	tests := []struct{ body, param string }{
		{`{"rules": [{"processors": ["` + a + `"], "split": [` + entry(a, 1) + `, ` + entry(b, 1) + `]}]}`, "rules[0][split]"},
		{`{"rules": [{"conditions": {"currency": "USD"}}]}`, "rules[0][processors]"},
		{split(entry(a, 1)), "rules[1][split]"},
		{split(entry(a, 0) + `, ` + entry(b, 1)), "rules[1][split][0][weight]"},
		{split(entry(a, 1) + `, ` + entry(b, -5)), "rules[1][split][1][weight]"},
		{split(entry(a, 10001) + `, ` + entry(b, 1)), "rules[1][split][0][weight]"},
		{split(entry(a, 1) + `, ` + `{"processor": "` + b + `", "weight": 1e40}`), "rules[1][split][1][weight]"},
		{split(entry(a, 1) + `, ` + `{"processor": "` + b + `", "weight": "30"}`), "rules[1][split][1][weight]"},
		{split(entry(a, 1) + `, ` + `{"processor": "` + b + `"}`), "rules[1][split][1][weight]"},
		{split(entry(a, 1) + `, ` + `{"weight": 1}`), "rules[1][split][1][processor]"},
		{split(entry(a, 1) + `, ` + entry("pa_nope", 1)), "rules[1][split][1][processor]"},
		{split(entry(a, 1) + `, ` + entry(a, 2)), "rules[1][split][1][processor]"},
		{split(entry(a, 1) + `, ` + `{"processor": "` + b + `", "weight": 1, "share": 0.5}`), "rules[1][split][1][share]"},
		{`{"rules": [{"conditions": {"card_country": "br"}, "processors": ["` + a + `"]}]}`, "rules[0][conditions][card_country]"},
		{`{"rules": [{"conditions": {"card_country": "UK"}, "processors": ["` + a + `"]}]}`, "rules[0][conditions][card_country]"},
		{`{"rules": [{"conditions": {"card_country": 76}, "processors": ["` + a + `"]}]}`, "rules[0][conditions][card_country]"},
	}
	for _, tt := range tests {
		wantErrorf(t, h.do(req{method: "PUT", path: "/v1/routing", key: key, body: tt.body}), 400, payloom.CodeValidation, tt.param, "PUT /v1/routing "+tt.body)
	}
}

// A card's issuing country, from its BIN at tokenization, shows on the
// token and on the payments made with it; a card the table does not know
// has none.
func TestCardCountryAPI(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	key := h.key(h.merchant(nil), false)
	tests := []struct{ number, country string }{
		{"4000000760000002", "BR"},
		{"4000001240000000", "CA"},
		{cardApprove, "US"},
		{"4111111111111111", ""},
	}
	for _, tt := range tests {
		r := h.do(req{method: "POST", path: "/v1/tokens", key: key, body: tokenBody(tt.number)})
		wantStatus(t, r, 200)
		if got, _ := r.json["card"].(map[string]any)["country"].(string); got != tt.country {
			t.Errorf("POST /v1/tokens %s: card.country = %q; want %q (%s)", tt.number[:6], got, tt.country, r.body)
		}
		p := h.do(req{method: "POST", path: "/v1/payments", key: key, body: `{"amount": 1000, "currency": "USD",
			"payment_method": {"type": "card", "card": {"token": "` + r.str("id") + `"}}}`})
		wantStatus(t, p, 200)
		if got := p.str("payment_method", "card", "country"); got != tt.country {
			t.Errorf("payment with %s: payment_method.card.country = %q; want %q", tt.number[:6], got, tt.country)
		}
	}
}

// A rule is rendered with exactly one of processors and split, as the
// RoutingRule schema says: a split rule without processors, any other
// with processors as an array (even empty: never null or absent), so a
// client can always tell the kinds apart. Rendering leaves the service's
// rules as they were.
func TestRenderRoutingRules(t *testing.T) {
	rules := []payloom.RoutingRule{
		{Conditions: payloom.RoutingConditions{CardCountry: "BR"},
			Split: []payloom.RoutingSplit{{Processor: "pa_a", Weight: 70}, {Processor: "pa_b", Weight: 30}}},
		{Conditions: payloom.RoutingConditions{Currency: "USD"}, Processors: []string{"pa_b", "pa_a"}},
		{}, // neither: the service never stores one, but it must still render as a rule
	}
	want := []string{
		`{"conditions":{"card_country":"BR"},"split":[{"processor":"pa_a","weight":70},{"processor":"pa_b","weight":30}]}`,
		`{"conditions":{"currency":"USD"},"processors":["pa_b","pa_a"]}`,
		`{"conditions":{},"processors":[]}`,
	}
	out := renderRouting(&payloom.Routing{MerchantID: "mrch_1", Rules: rules})
	for i, w := range want {
		got, err := json.Marshal(out.Rules[i])
		if err != nil || string(got) != w {
			t.Errorf("renderRouting rule %d = %s, %v; want %s", i, got, err, w)
		}
	}
	if rules[2].Processors != nil {
		t.Errorf("renderRouting changed the service's rule to %+v; want it untouched", rules[2])
	}
	// The split and processors rules are what the response schema takes.
	body, err := json.Marshal(renderRouting(&payloom.Routing{MerchantID: "mrch_1", Rules: rules[:2]}))
	if err != nil {
		t.Fatal(err)
	}
	if err := loadSpec(t).validateAt("/components/schemas/Routing", body); err != nil {
		t.Errorf("renderRouting = %s; the Routing schema refuses it: %v", body, err)
	}
}

// The request's rules and the response's RoutingRule take exactly one of
// processors and split.
func TestSpecRoutingRuleOneOf(t *testing.T) {
	v := loadSpec(t)
	rule := map[string]string{
		"processors": `{"conditions": {}, "processors": ["pa_a"]}`,
		"split":      `{"conditions": {}, "split": [{"processor": "pa_a", "weight": 1}, {"processor": "pa_b", "weight": 2}]}`,
		"both":       `{"conditions": {}, "processors": ["pa_a"], "split": [{"processor": "pa_a", "weight": 1}, {"processor": "pa_b", "weight": 2}]}`,
		"neither":    `{"conditions": {}}`,
	}
	for _, tt := range []struct {
		kind  string
		valid bool
	}{{"processors", true}, {"split", true}, {"both", false}, {"neither", false}} {
		for _, s := range []struct{ ptr, doc string }{
			{"/components/schemas/RoutingUpdateRequest", `{"rules": [` + rule[tt.kind] + `]}`},
			{"/components/schemas/RoutingRule", rule[tt.kind]},
		} {
			if err := v.validateAt(s.ptr, []byte(s.doc)); (err == nil) != tt.valid {
				t.Errorf("%s validates a rule with %s: %v; want valid %v", s.ptr, tt.kind, err, tt.valid)
			}
		}
	}
}
