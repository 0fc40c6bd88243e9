package accounts_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/accounts"
	"github.com/payloom/payloom/processor/sandbox"
	"github.com/payloom/payloom/processor/simulator"
	"github.com/payloom/payloom/sqlite"
	"github.com/payloom/payloom/vault"
)

type env struct {
	svc    *accounts.Service
	store  *sqlite.Store
	sealer accounts.Sealer
	scope  payloom.Scope
	sb     payloom.Processor
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	keys, err := vault.NewKeys(bytes.Repeat([]byte{9}, vault.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	m := &payloom.Merchant{ID: payloom.NewID(payloom.PrefixMerchant), Name: "m", MinAmount: 1, MaxAmount: 1 << 40, CreatedAt: time.Now().UTC()}
	if err := st.Update(ctx, func(tx payloom.Tx) error { return tx.CreateMerchant(ctx, m) }); err != nil {
		t.Fatal(err)
	}
	sb := sandbox.New(st, sandbox.Options{})
	v := vault.New(st, keys, vault.Options{})
	return &env{svc: accounts.New(st, v, simulators, accounts.Options{Sandbox: sb}),
		store: st, sealer: v, scope: payloom.Scope{MerchantID: m.ID}, sb: sb}
}

// simulators builds the connector of a simulator account, as cmd/payloom
// does; these tests make no other kind.
func simulators(connector, name string, creds map[string]payloom.Secret) (payloom.Processor, error) {
	if connector != payloom.ConnectorSimulator {
		return nil, fmt.Errorf("no %s connector in this test", connector)
	}
	return simulator.NewConnector(creds["base_url"].Reveal(), simulator.ConnectorOptions{Name: name}), nil
}

func (e *env) account(t *testing.T, scope payloom.Scope, name string) *payloom.ProcessorAccount {
	t.Helper()
	a, err := e.svc.CreateProcessorAccount(context.Background(), scope, &payloom.ProcessorAccountCreate{
		Name: name, Connector: payloom.ConnectorSimulator,
		Credentials: map[string]payloom.Secret{"base_url": payloom.Secret("http://127.0.0.1:1/" + name)}})
	if err != nil {
		t.Fatalf("CreateProcessorAccount(%s): %v", name, err)
	}
	return a
}

func names(ps []payloom.Processor) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name())
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func TestRoute(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pay := func(amount int64, cur payloom.Currency, brand payloom.CardBrand, md map[string]string) *payloom.Payment {
		return &payloom.Payment{Amount: amount, Currency: cur, Metadata: md, PaymentMethod: &payloom.PaymentMethod{
			Type: payloom.PaymentMethodTypeCard, Card: &payloom.CardSummary{Brand: brand}}}
	}
	// No accounts: the sandbox in test mode, nothing in live mode.
	got, err := e.svc.Route(e.scope, pay(100, "USD", "visa", nil))
	if err != nil || !slices.Equal(names(got), []string{"sandbox"}) {
		t.Errorf("Route(no accounts, test) = %v, %v; want [sandbox]", names(got), err)
	}
	live := payloom.Scope{MerchantID: e.scope.MerchantID, Livemode: true}
	if got, err := e.svc.Route(live, pay(100, "USD", "visa", nil)); err == nil {
		t.Errorf("Route(no accounts, live) = %v; want an error", names(got))
	}

	a, b, c := e.account(t, e.scope, "a"), e.account(t, e.scope, "b"), e.account(t, e.scope, "c")
	if _, err := e.svc.PutRouting(ctx, e.scope, []payloom.RoutingRule{
		{Conditions: payloom.RoutingConditions{Currency: "USD", AmountGTE: ptr(int64(1000))}, Processors: []string{c.ID, a.ID}},
		{Conditions: payloom.RoutingConditions{CardBrand: "amex"}, Processors: []string{b.ID}},
		{Conditions: payloom.RoutingConditions{Metadata: map[string]string{"tier": "gold"}, AmountLTE: ptr(int64(50))}, Processors: []string{b.ID, c.ID}},
	}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		p    *payloom.Payment
		want []string
	}{
		{"rule 0", pay(1000, "USD", "visa", nil), []string{"c", "a"}},
		{"rule 0 beats rule 1", pay(5000, "USD", "amex", nil), []string{"c", "a"}},
		{"below rule 0's amount: rule 1", pay(999, "USD", "amex", nil), []string{"b"}},
		{"rule 2", pay(50, "EUR", "visa", map[string]string{"tier": "gold", "x": "y"}), []string{"b", "c"}},
		{"rule 2's amount_lte", pay(51, "EUR", "visa", map[string]string{"tier": "gold"}), []string{"a", "b", "c"}},
		{"metadata value differs", pay(10, "EUR", "visa", map[string]string{"tier": "silver"}), []string{"a", "b", "c"}},
		{"no rule: creation order", pay(10, "EUR", "visa", nil), []string{"a", "b", "c"}},
		{"brand condition without a card", &payloom.Payment{Amount: 10, Currency: "EUR"}, []string{"a", "b", "c"}},
	}
	for _, tt := range tests {
		got, err := e.svc.Route(e.scope, tt.p)
		if err != nil || !slices.Equal(names(got), tt.want) {
			t.Errorf("Route(%s) = %v, %v; want %v", tt.name, names(got), err, tt.want)
		}
	}

	// A disabled account leaves every route; a rule whose accounts are
	// all disabled routes nowhere (only the rule's list is used).
	if _, err := e.svc.UpdateProcessorAccount(ctx, e.scope, b.ID, &payloom.ProcessorAccountUpdate{Enabled: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	if got, err := e.svc.Route(e.scope, pay(10, "EUR", "visa", nil)); err != nil || !slices.Equal(names(got), []string{"a", "c"}) {
		t.Errorf("Route(b disabled) = %v, %v; want [a c]", names(got), err)
	}
	if got, err := e.svc.Route(e.scope, pay(10, "EUR", "amex", nil)); err == nil {
		t.Errorf("Route(rule of disabled b) = %v; want an error", names(got))
	}
	// ProcessorNamed finds disabled accounts (work they took finishes
	// there), and the sandbox.
	for _, n := range []string{"a", "b", "sandbox"} {
		if p, err := e.svc.ProcessorNamed(e.scope, n); err != nil || p.Name() != n {
			t.Errorf("ProcessorNamed(%s) = %v, %v", n, p, err)
		}
	}
	if _, err := e.svc.ProcessorNamed(e.scope, "zz"); err == nil {
		t.Errorf("ProcessorNamed(zz) = nil error; want one")
	}
	if _, err := e.svc.ProcessorNamed(live, "a"); err == nil {
		t.Errorf("ProcessorNamed(live, a) found a test-mode account")
	}
	// Another merchant's rules cannot name these accounts.
	if _, err := e.svc.PutRouting(ctx, live, []payloom.RoutingRule{{Processors: []string{a.ID}}}); !payloom.IsCode(err, payloom.CodeValidation) ||
		!strings.Contains(err.Error(), "rule 0") {
		t.Errorf("PutRouting(live, test account) = %v; want a validation error naming rule 0", err)
	}
}

// Connectors are built once per account version: new credentials make a
// new connector, an unchanged account reuses it.
func TestConnectorCache(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := e.account(t, e.scope, "a")
	p1, err := e.svc.ProcessorNamed(e.scope, "a")
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := e.svc.ProcessorNamed(e.scope, "a")
	if p1 != p2 {
		t.Errorf("ProcessorNamed twice built two connectors; want one cached")
	}
	if _, err := e.svc.UpdateProcessorAccount(ctx, e.scope, a.ID, &payloom.ProcessorAccountUpdate{
		Credentials: map[string]payloom.Secret{"base_url": "http://127.0.0.1:2"}}); err != nil {
		t.Fatal(err)
	}
	p3, _ := e.svc.ProcessorNamed(e.scope, "a")
	if p3 == p1 {
		t.Errorf("ProcessorNamed after new credentials returned the old connector")
	}
}

func TestLiveModeNeedsHTTPS(t *testing.T) {
	e := newEnv(t)
	live := payloom.Scope{MerchantID: e.scope.MerchantID, Livemode: true}
	for _, tt := range []struct {
		scope payloom.Scope
		url   string
		ok    bool
	}{
		{live, "http://acquirer.example.com", false},
		{live, "https://acquirer.example.com", true},
		{e.scope, "http://127.0.0.1:7070", true},
	} {
		_, err := e.svc.CreateProcessorAccount(context.Background(), tt.scope, &payloom.ProcessorAccountCreate{
			Name: payloom.NewID("x")[:20], Connector: payloom.ConnectorSimulator,
			Credentials: map[string]payloom.Secret{"base_url": payloom.Secret(tt.url)}})
		if (err == nil) != tt.ok {
			t.Errorf("CreateProcessorAccount(livemode %v, %s) = %v; want ok %v", tt.scope.Livemode, tt.url, err, tt.ok)
		}
	}
}
