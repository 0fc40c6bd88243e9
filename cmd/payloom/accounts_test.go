package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/payloom/payloom/engine"
	"github.com/payloom/payloom/processor/simulator"
)

// acquirers is a server started in-process on a fresh data directory with
// two processor accounts, acq-a and acq-b, created over its API, each a
// simulator of its own (neither configured on the command line).
type acquirers struct {
	call       func(method, path, body string, wantStatus int) map[string]any
	simA, simB *simulator.Server
	urlA       string // simA's base URL, for its control API
	aID, bID   string
}

func startAcquirers(t *testing.T) *acquirers {
	t.Helper()
	acq := &acquirers{simA: simulator.NewServer(simulator.Options{}), simB: simulator.NewServer(simulator.Options{})}
	hsA, hsB := httptest.NewServer(acq.simA), httptest.NewServer(acq.simB)
	t.Cleanup(hsA.Close)
	t.Cleanup(hsB.Close)
	acq.urlA = hsA.URL
	env := map[string]string{
		"PAYLOOM_DATA": filepath.Join(t.TempDir(), "data"), "PAYLOOM_ADDR": "127.0.0.1:0", "PAYLOOM_LOG_LEVEL": "warn",
	}
	url, out := serveInProcess(t, env)
	acq.call = apiCaller(t, url, keyRE.FindString(out.String()))
	account := func(name, base string) string {
		return acq.call("POST", "/v1/processor_accounts", `{"name": "`+name+`", "connector": "simulator", "credentials": {"base_url": "`+base+`"}}`, 200)["id"].(string)
	}
	acq.aID, acq.bID = account("acq-a", hsA.URL), account("acq-b", hsB.URL)
	return acq
}

// apiCaller returns a function that calls the API at url with key and
// returns the decoded JSON object, failing the test on another status.
func apiCaller(t *testing.T, url, key string) func(method, path, body string, wantStatus int) map[string]any {
	return func(method, path, body string, wantStatus int) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, url+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		b := readBody(t, resp)
		if err := json.Unmarshal(b, &v); err != nil || resp.StatusCode != wantStatus {
			t.Fatalf("%s %s = %d %s; want %d", method, path, resp.StatusCode, b, wantStatus)
		}
		return v
	}
}

// attempts lists a payment's attempts as processor:status.
func attempts(pay map[string]any) []string {
	var got []string
	atts, _ := pay["attempts"].([]any)
	for _, a := range atts {
		m, _ := a.(map[string]any)
		got = append(got, fmt.Sprint(m["processor"], ":", m["status"]))
	}
	return got
}

// A real server routes by a merchant's processor accounts and rules: two
// simulator accounts created over the API, a rule sending USD to [A, B];
// A, told over its control API to answer 5xx, fails and the payment is
// captured on B with 2 attempts; A's health shows the error. A EUR payment
// matches no rule and goes to the accounts in creation order. Neither
// simulator is configured on the command line.
func TestServeRoutesByProcessorAccounts(t *testing.T) {
	acq := startAcquirers(t)
	call, simB, aID, bID := acq.call, acq.simB, acq.aID, acq.bID
	call("PUT", "/v1/routing", `{"rules": [{"conditions": {"currency": "USD"}, "processors": ["`+bID+`", "`+aID+`"]}]}`, 200)
	tok := call("POST", "/v1/tokens", fmt.Sprintf(`{"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": %d}}`, time.Now().Year()+2), 200)
	payBody := func(currency, extra string) string {
		return `{"amount": 990, "currency": "` + currency + `", "payment_method": {"type": "card", "card": {"token": "` + tok["id"].(string) + `"}}` + extra + `}`
	}

	// The rule decides the order: USD goes to B first.
	pay := call("POST", "/v1/payments", payBody("USD", ""), 200)
	if got, want := attempts(pay), []string{"acq-b:captured"}; pay["status"] != "captured" || !slices.Equal(got, want) {
		t.Fatalf("USD payment = %v with attempts %v; want captured with %v", pay["status"], got, want)
	}
	// No rule matches EUR: every enabled account in creation order.
	pay = call("POST", "/v1/payments", payBody("EUR", ""), 200)
	if got, want := attempts(pay), []string{"acq-a:captured"}; pay["status"] != "captured" || !slices.Equal(got, want) {
		t.Fatalf("EUR payment = %v with attempts %v; want captured with %v", pay["status"], got, want)
	}

	// A answers 5xx, told so over its control API; the rule now says [A, B].
	resp, err := http.Post(acq.urlA+"/_control/rules", "application/json", strings.NewReader(`{"rules": [{"action": "error"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if b := readBody(t, resp); resp.StatusCode != 200 {
		t.Fatalf("simulator control = %d %s", resp.StatusCode, b)
	}
	call("PUT", "/v1/routing", `{"rules": [{"conditions": {"currency": "USD"}, "processors": ["`+aID+`", "`+bID+`"]}]}`, 200)
	approvedB := len(simB.Ledger().Approved())
	pay = call("POST", "/v1/payments", payBody("USD", ""), 200)
	if got, want := attempts(pay), []string{"acq-a:failed", "acq-b:captured"}; pay["status"] != "captured" || !slices.Equal(got, want) {
		t.Errorf("USD payment with A failing = %v with attempts %v; want captured with %v", pay["status"], got, want)
	}
	if n := len(simB.Ledger().Approved()); n != approvedB+1 {
		t.Errorf("B approvals = %d; want %d", n, approvedB+1)
	}
	h := call("GET", "/v1/processor_accounts/"+aID+"/health", "", 200)
	if h["calls"].(float64) < 2 || h["error_rate"].(float64) <= 0 || h["consecutive_failures"].(float64) < 1 {
		t.Errorf("A's health = %v; want its error counted", h)
	}
	h = call("GET", "/v1/processor_accounts/"+bID+"/health", "", 200)
	if h["state"] != "closed" || h["error_rate"].(float64) != 0 {
		t.Errorf("B's health = %v; want closed without errors", h)
	}

	// `processor` must name an account the merchant has; B first.
	pay = call("POST", "/v1/payments", payBody("USD", `, "processor": "acq-b"`), 200)
	if got, want := attempts(pay), []string{"acq-b:captured"}; !slices.Equal(got, want) {
		t.Errorf("payment with processor acq-b: attempts %v; want %v", got, want)
	}
	call("POST", "/v1/payments", payBody("USD", `, "processor": "acq-z"`), 400)

	// A disabled account leaves the route; the sandbox is not used while
	// an account is enabled.
	call("PATCH", "/v1/processor_accounts/"+aID, `{"enabled": false}`, 200)
	pay = call("POST", "/v1/payments", payBody("USD", ""), 200)
	if got, want := attempts(pay), []string{"acq-b:captured"}; !slices.Equal(got, want) {
		t.Errorf("payment with A disabled: attempts %v; want %v", got, want)
	}
	// Nor may a payment name it.
	call("POST", "/v1/payments", payBody("USD", `, "processor": "acq-a"`), 400)
	// A payment captured on B is refunded through B.
	re := call("POST", "/v1/refunds", `{"payment_id": "`+pay["id"].(string)+`", "amount": 100}`, 200)
	if re["status"] != "succeeded" {
		t.Errorf("refund = %v; want succeeded", re)
	}
}

// splitEntry is one account of a split, for splitDraw.
type splitEntry struct {
	name, id string
	weight   float64
}

// splitDraw is the account a split draws first for a payment, as
// docs/routing.md documents it (weighted rendezvous hashing): the one with
// the lowest -ln(u)/weight, u = (k + 0.5) / 2^52 with k the first 52 bits
// of SHA-256("<payment ID>|<account ID>").
func splitDraw(paymentID string, split ...splitEntry) string {
	best, bestScore := "", math.Inf(1)
	for _, e := range split {
		sum := sha256.Sum256([]byte(paymentID + "|" + e.id))
		u := (float64(binary.BigEndian.Uint64(sum[:8])>>12) + 0.5) / (1 << 52)
		if score := -math.Log(u) / e.weight; score < bestScore {
			best, bestScore = e.name, score
		}
	}
	return best
}

// Over real HTTP, a card_country rule and a weighted split route as
// configured: a Brazilian card (by its BIN) goes where the country rule
// says whatever the split; other cards go where their payment ID draws,
// and when the drawn simulator answers 5xx the payment falls back to the
// split's other account, never elsewhere.
func TestServeRoutesBySplitAndCardCountry(t *testing.T) {
	acq := startAcquirers(t)
	call, simA, aID, bID := acq.call, acq.simA, acq.aID, acq.bID
	split := []splitEntry{{"acq-a", aID, 70}, {"acq-b", bID, 30}}
	call("PUT", "/v1/routing", `{"rules": [
		{"conditions": {"card_country": "BR"}, "processors": ["`+bID+`"]},
		{"conditions": {"currency": "USD"}, "split": [{"processor": "`+aID+`", "weight": 70}, {"processor": "`+bID+`", "weight": 30}]}]}`, 200)
	token := func(number, wantCountry string) string {
		t.Helper()
		tok := call("POST", "/v1/tokens", fmt.Sprintf(`{"card": {"number": "%s", "exp_month": 12, "exp_year": %d}}`, number, time.Now().Year()+2), 200)
		if got, _ := tok["card"].(map[string]any)["country"].(string); got != wantCountry {
			t.Fatalf("token of %s...: card.country = %q; want %q", number[:6], got, wantCountry)
		}
		return tok["id"].(string)
	}
	pay := func(tok string) map[string]any {
		t.Helper()
		return call("POST", "/v1/payments", `{"amount": 990, "currency": "USD", "payment_method": {"type": "card", "card": {"token": "`+tok+`"}}}`, 200)
	}

	// A Brazilian card matches the country rule before the split.
	br := token("4000000760000002", "BR")
	for range 5 {
		p := pay(br)
		card, _ := p["payment_method"].(map[string]any)["card"].(map[string]any)
		if got, want := attempts(p), []string{"acq-b:captured"}; !slices.Equal(got, want) || card["country"] != "BR" {
			t.Fatalf("BR card payment: attempts %v, card %v; want %v with country BR", got, card, want)
		}
	}

	// A US card goes where its payment ID draws.
	us := token("4242424242424242", "US")
	drawn := map[string]int{}
	for range 30 {
		p := pay(us)
		want := splitDraw(p["id"].(string), split...)
		drawn[want]++
		if got := attempts(p); !slices.Equal(got, []string{want + ":captured"}) {
			t.Errorf("US card payment %s: attempts %v; want [%s:captured] (its draw)", p["id"], got, want)
		}
	}
	if n := len(simA.Ledger().Approved()); n != drawn["acq-a"] {
		t.Errorf("A approved %d payments; want the %d drawn to it", n, drawn["acq-a"])
	}

	// A answers 5xx: payments drawn to A fall back to B, the split's
	// other account; those drawn to B never touch A. Fewer A failures
	// than open A's circuit breaker (which would take A out of the
	// route): this is about the split's order.
	resp, err := http.Post(acq.urlA+"/_control/rules", "application/json", strings.NewReader(`{"rules": [{"action": "error"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if b := readBody(t, resp); resp.StatusCode != 200 {
		t.Fatalf("simulator control = %d %s", resp.StatusCode, b)
	}
	for i, failedA := 0, 0; i < 40 && failedA < engine.DefaultBreakerFailures-1; i++ {
		p := pay(us)
		want := []string{"acq-b:captured"}
		if splitDraw(p["id"].(string), split...) == "acq-a" {
			want = []string{"acq-a:failed", "acq-b:captured"}
			failedA++
		}
		if got := attempts(p); p["status"] != "captured" || !slices.Equal(got, want) {
			t.Errorf("payment %s with A failing = %v, attempts %v; want captured with %v", p["id"], p["status"], got, want)
		}
	}
}
