package accounts_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/accounts"
	"github.com/payloom/payloom/processor/simulator"
)

func cardPayment(id string, cur payloom.Currency, country string) *payloom.Payment {
	return &payloom.Payment{ID: id, Amount: 1000, Currency: cur, PaymentMethod: &payloom.PaymentMethod{
		Type: payloom.PaymentMethodTypeCard, Card: &payloom.CardSummary{Brand: payloom.CardBrandVisa, Country: country}}}
}

// A 70/30 split sends some payments to each account first, each payment
// always to the same one, with the other as its fallback. (The shares are
// checked by TestSplitShares, on fixed account IDs: these accounts get
// new IDs on every run.)
func TestSplitRoute(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, b := e.account(t, e.scope, "a"), e.account(t, e.scope, "b")
	if _, err := e.svc.PutRouting(ctx, e.scope, []payloom.RoutingRule{{
		Conditions: payloom.RoutingConditions{Currency: "USD"},
		Split:      []payloom.RoutingSplit{{Processor: a.ID, Weight: 70}, {Processor: b.ID, Weight: 30}},
	}}); err != nil {
		t.Fatal(err)
	}
	const n = 10000
	first := map[string]int{}
	for i := range n {
		id := fmt.Sprintf("pay_split%05d", i)
		got, err := e.svc.Route(e.scope, cardPayment(id, "USD", ""))
		if err != nil {
			t.Fatalf("Route(%s) = %v", id, err)
		}
		if r := names(got); !slices.Equal(r, []string{"a", "b"}) && !slices.Equal(r, []string{"b", "a"}) {
			t.Fatalf("Route(%s) = %v; want both accounts, one the other's fallback", id, r)
		}
		first[got[0].Name()]++
		if i%100 == 0 {
			again, err := e.svc.Route(e.scope, cardPayment(id, "USD", ""))
			if err != nil || !slices.Equal(names(again), names(got)) {
				t.Errorf("Route(%s) again = %v, %v; want the same route %v", id, names(again), err, names(got))
			}
		}
	}
	if first["a"] == 0 || first["b"] == 0 || first["a"]+first["b"] != n {
		t.Errorf("first processor of %d payments: %v; want both accounts first for some", n, first)
	}
	// The split applies to its rule's payments only.
	if got, err := e.svc.Route(e.scope, cardPayment("pay_eur", "EUR", "")); err != nil || !slices.Equal(names(got), []string{"a", "b"}) {
		t.Errorf("Route(EUR) = %v, %v; want every account in creation order", names(got), err)
	}
}

// The order of a split is stable: disabling one of its accounts moves only
// the payments that account came first for (each to its own second), and
// every payment keeps the others in the same order; reordering the split
// in the rule changes nothing; enabling the account again restores every
// route.
func TestSplitStable(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, b, c := e.account(t, e.scope, "a"), e.account(t, e.scope, "b"), e.account(t, e.scope, "c")
	split := []payloom.RoutingSplit{{Processor: a.ID, Weight: 50}, {Processor: b.ID, Weight: 30}, {Processor: c.ID, Weight: 20}}
	put := func(split []payloom.RoutingSplit) {
		t.Helper()
		if _, err := e.svc.PutRouting(ctx, e.scope, []payloom.RoutingRule{{Split: split}}); err != nil {
			t.Fatal(err)
		}
	}
	enable := func(on bool) {
		t.Helper()
		if _, err := e.svc.UpdateProcessorAccount(ctx, e.scope, b.ID, &payloom.ProcessorAccountUpdate{Enabled: ptr(on)}); err != nil {
			t.Fatal(err)
		}
	}
	const n = 1000
	routes := func() [][]string {
		t.Helper()
		out := make([][]string, n)
		for i := range out {
			got, err := e.svc.Route(e.scope, cardPayment(fmt.Sprintf("pay_stable%04d", i), "USD", ""))
			if err != nil {
				t.Fatal(err)
			}
			out[i] = names(got)
		}
		return out
	}
	put(split)
	before := routes()

	enable(false)
	moved := 0
	for i, got := range routes() {
		want := slices.DeleteFunc(slices.Clone(before[i]), func(s string) bool { return s == "b" })
		if !slices.Equal(got, want) {
			t.Errorf("Route(pay_stable%04d) with b disabled = %v; want %v (the route %v without b)", i, got, want, before[i])
		}
		if before[i][0] == "b" {
			moved++
		}
	}
	if moved == 0 {
		t.Errorf("b came first for none of %d payments; the test proves nothing", n)
	}

	enable(true)
	put([]payloom.RoutingSplit{split[2], split[0], split[1]})
	for i, got := range routes() {
		if !slices.Equal(got, before[i]) {
			t.Errorf("Route(pay_stable%04d) with the split reordered = %v; want %v", i, got, before[i])
		}
	}
}

func TestCardCountryRoute(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, b := e.account(t, e.scope, "a"), e.account(t, e.scope, "b")
	if _, err := e.svc.PutRouting(ctx, e.scope, []payloom.RoutingRule{
		{Conditions: payloom.RoutingConditions{CardCountry: "BR"}, Processors: []string{b.ID}},
		{Conditions: payloom.RoutingConditions{CardCountry: "US", Currency: "EUR"}, Processors: []string{b.ID, a.ID}},
	}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		p    *payloom.Payment
		want []string
	}{
		{"BR card", cardPayment("pay_1", "USD", "BR"), []string{"b"}},
		{"US card in EUR", cardPayment("pay_2", "EUR", "US"), []string{"b", "a"}},
		{"US card in USD: no rule", cardPayment("pay_3", "USD", "US"), []string{"a", "b"}},
		{"country unknown", cardPayment("pay_4", "USD", ""), []string{"a", "b"}},
		{"no card", &payloom.Payment{ID: "pay_5", Amount: 10, Currency: "USD"}, []string{"a", "b"}},
	}
	for _, tt := range tests {
		got, err := e.svc.Route(e.scope, tt.p)
		if err != nil || !slices.Equal(names(got), tt.want) {
			t.Errorf("Route(%s) = %v, %v; want %v", tt.name, names(got), err, tt.want)
		}
	}
}

func TestRoutingValidation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, b := e.account(t, e.scope, "a"), e.account(t, e.scope, "b")
	gone := e.account(t, e.scope, "gone")
	if err := e.svc.DeleteProcessorAccount(ctx, e.scope, gone.ID); err != nil {
		t.Fatal(err)
	}
	live, err := e.svc.CreateProcessorAccount(ctx, payloom.Scope{MerchantID: e.scope.MerchantID, Livemode: true},
		&payloom.ProcessorAccountCreate{Name: "live", Connector: payloom.ConnectorSimulator,
			Credentials: map[string]payloom.Secret{"base_url": "https://acquirer.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	ok := payloom.RoutingRule{Processors: []string{a.ID}}
	split := func(entries ...any) []payloom.RoutingSplit {
		var out []payloom.RoutingSplit
		for i := 0; i < len(entries); i += 2 {
			out = append(out, payloom.RoutingSplit{Processor: entries[i].(string), Weight: entries[i+1].(int)})
		}
		return out
	}
	eleven := make([]payloom.RoutingSplit, 11)
	for i := range eleven {
		eleven[i] = payloom.RoutingSplit{Processor: fmt.Sprintf("pa_%d", i), Weight: 1}
	}
	tests := []struct {
		name  string
		rules []payloom.RoutingRule
		param string // "" for valid
	}{
		{"split", []payloom.RoutingRule{{Split: split(a.ID, 70, b.ID, 30)}}, ""},
		{"split and country", []payloom.RoutingRule{{Conditions: payloom.RoutingConditions{CardCountry: "BR"},
			Split: split(a.ID, 1, b.ID, accounts.MaxSplitWeight)}}, ""},
		{"both", []payloom.RoutingRule{ok, {Processors: []string{a.ID}, Split: split(a.ID, 1, b.ID, 1)}}, "rules[1][split]"},
		{"neither", []payloom.RoutingRule{{Conditions: payloom.RoutingConditions{Currency: "USD"}}}, "rules[0][processors]"},
		{"split of one", []payloom.RoutingRule{{Split: split(a.ID, 1)}}, "rules[0][split]"},
		{"split of eleven", []payloom.RoutingRule{{Split: eleven}}, "rules[0][split]"},
		{"weight 0", []payloom.RoutingRule{ok, {Split: split(a.ID, 0, b.ID, 30)}}, "rules[1][split][0][weight]"},
		{"negative weight", []payloom.RoutingRule{{Split: split(a.ID, 70, b.ID, -30)}}, "rules[0][split][1][weight]"},
		{"weight too big", []payloom.RoutingRule{{Split: split(a.ID, accounts.MaxSplitWeight+1, b.ID, 1)}}, "rules[0][split][0][weight]"},
		{"unknown account", []payloom.RoutingRule{ok, {Split: split(a.ID, 1, "pa_nope", 1)}}, "rules[1][split][1][processor]"},
		{"deleted account", []payloom.RoutingRule{{Split: split(gone.ID, 1, a.ID, 1)}}, "rules[0][split][0][processor]"},
		{"other mode's account", []payloom.RoutingRule{{Split: split(a.ID, 1, live.ID, 1)}}, "rules[0][split][1][processor]"},
		{"account twice", []payloom.RoutingRule{{Split: split(a.ID, 1, b.ID, 1, a.ID, 2)}}, "rules[0][split][2][processor]"},
		{"lower-case country", []payloom.RoutingRule{{Conditions: payloom.RoutingConditions{CardCountry: "br"}, Processors: []string{a.ID}}}, "rules[0][conditions][card_country]"},
		{"UK is not a code", []payloom.RoutingRule{ok, {Conditions: payloom.RoutingConditions{CardCountry: "UK"}, Processors: []string{a.ID}}}, "rules[1][conditions][card_country]"},
		{"alpha-3", []payloom.RoutingRule{{Conditions: payloom.RoutingConditions{CardCountry: "USA"}, Processors: []string{a.ID}}}, "rules[0][conditions][card_country]"},
	}
	for _, tt := range tests {
		_, err := e.svc.PutRouting(ctx, e.scope, tt.rules)
		if tt.param == "" {
			if err != nil {
				t.Errorf("PutRouting(%s) = %v; want it accepted", tt.name, err)
			}
			continue
		}
		var pe *payloom.Error
		if !errors.As(err, &pe) || pe.Code != payloom.CodeValidation || pe.Param != tt.param {
			t.Errorf("PutRouting(%s) = %v; want a validation error on %s", tt.name, err, tt.param)
			continue
		}
		if rule := tt.param[len("rules[") : len("rules[")+1]; !strings.Contains(pe.Message, "rule "+rule) {
			t.Errorf("PutRouting(%s) message %q does not name rule %s", tt.name, pe.Message, rule)
		}
	}
	// What was accepted reads back as it was put.
	rules := []payloom.RoutingRule{{Conditions: payloom.RoutingConditions{CardCountry: "BR"}, Split: split(a.ID, 70, b.ID, 30)}}
	if _, err := e.svc.PutRouting(ctx, e.scope, rules); err != nil {
		t.Fatal(err)
	}
	got, err := e.svc.Routing(ctx, e.scope)
	if err != nil || len(got.Rules) != 1 || got.Rules[0].Conditions.CardCountry != "BR" || !slices.Equal(got.Rules[0].Split, rules[0].Split) ||
		got.Rules[0].Processors != nil {
		t.Errorf("Routing = %+v, %v; want %+v", got, err, rules)
	}
	// An account in a split cannot be deleted.
	if err := e.svc.DeleteProcessorAccount(ctx, e.scope, b.ID); !payloom.IsCode(err, payloom.CodeValidation) {
		t.Errorf("DeleteProcessorAccount(in a split) = %v; want a validation error", err)
	}
}

// The ConnectorFunc builds each account's connector from its opened
// credentials; one that names its connector otherwise is refused, since
// work is found again by the name.
func TestConnectorFunc(t *testing.T) {
	e := newEnv(t)
	e.account(t, e.scope, "good")
	e.account(t, e.scope, "misnamed")
	got := map[string]string{}
	svc := accounts.New(e.store, e.sealer, func(connector, name string, creds map[string]payloom.Secret) (payloom.Processor, error) {
		got[name] = connector + " " + creds["base_url"].Reveal()
		if name == "misnamed" {
			name = "other"
		}
		return simulator.NewConnector(creds["base_url"].Reveal(), simulator.ConnectorOptions{Name: name}), nil
	}, accounts.Options{})
	p, err := svc.ProcessorNamed(e.scope, "good")
	if err != nil || p.Name() != "good" {
		t.Fatalf("ProcessorNamed(good) = %v, %v; want the good account's connector", p, err)
	}
	if want := "simulator http://127.0.0.1:1/good"; got["good"] != want {
		t.Errorf("the ConnectorFunc was called with %q; want %q", got["good"], want)
	}
	if p, err := svc.ProcessorNamed(e.scope, "misnamed"); err == nil {
		t.Errorf("ProcessorNamed(misnamed) = %s; want an error for a connector under another name", p.Name())
	}
	// The route leaves the unusable account out and keeps the other.
	route, err := svc.Route(e.scope, cardPayment("pay_1", "USD", ""))
	if err != nil || !slices.Equal(names(route), []string{"good"}) {
		t.Errorf("Route = %v, %v; want [good]", names(route), err)
	}
}
