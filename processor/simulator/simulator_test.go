package simulator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/processor"
	"github.com/payloom/payloom/processor/simulator"
)

func authReq(key, number string, amount int64, capture bool) *payloom.AuthorizeRequest {
	return &payloom.AuthorizeRequest{IdempotencyKey: key, Reference: "pay_" + key, Amount: amount,
		Currency: "EUR", Capture: capture, Card: card(number)}
}

func mustAuthorize(t *testing.T, c *simulator.Connector, req *payloom.AuthorizeRequest) *payloom.AuthorizeResult {
	t.Helper()
	res, err := c.Authorize(bg, req)
	if err != nil {
		t.Fatalf("Authorize(%s) = %v", req.IdempotencyKey, err)
	}
	return res
}

func addRules(t *testing.T, sim *simulator.Server, rules ...simulator.Rule) {
	t.Helper()
	if _, err := sim.AddRules(rules...); err != nil {
		t.Fatalf("AddRules: %v", err)
	}
}

// TestDeclineTable: every ISO code the simulator can answer maps to a
// canonical code that the shared table knows, so every decline has a class.
func TestDeclineTable(t *testing.T) {
	tests := []struct {
		iso, decline string
		class        payloom.DeclineClass
	}{
		{"05", processor.DeclineDoNotHonor, payloom.DeclineSoft},
		{"91", processor.DeclineIssuerNotAvailable, payloom.DeclineSoft},
		{"96", payloom.DeclineProcessingError, payloom.DeclineSoft},
		{"51", payloom.DeclineInsufficientFunds, payloom.DeclineHard},
		{"54", payloom.DeclineExpiredCard, payloom.DeclineHard},
		{"N7", payloom.DeclineIncorrectCVC, payloom.DeclineHard},
		{"59", payloom.DeclineFraudulent, payloom.DeclineHard},
		{"41", processor.DeclineLostCard, payloom.DeclineHard},
		{"43", processor.DeclineStolenCard, payloom.DeclineHard},
		{"14", processor.DeclineInvalidNumber, payloom.DeclineHard},
		{"62", processor.DeclineRestrictedCard, payloom.DeclineHard},
		{"XX", payloom.DeclineGeneric, payloom.DeclineSoft}, // unknown: generic, soft
	}
	for _, tt := range tests {
		got := simulator.DeclineFor(tt.iso)
		d, ok := processor.LookupDecline(got)
		if got != tt.decline || !ok || d.Class != tt.class {
			t.Errorf("DeclineFor(%q) = %q (class %q, known %v); want %q (%s)", tt.iso, got, d.Class, ok, tt.decline, tt.class)
		}
	}
	for _, iso := range []string{"01", "04", "05", "12", "13", "14", "41", "43", "51", "54", "57", "59", "61", "62", "65", "91", "96", "1A", "N7"} {
		if _, ok := processor.LookupDecline(simulator.DeclineFor(iso)); !ok {
			t.Errorf("DeclineFor(%q) = %q, which the canonical table does not know", iso, simulator.DeclineFor(iso))
		}
	}
}

func TestRules(t *testing.T) {
	sim, url := startSimulator(t, simulator.Options{})
	c := simulator.NewConnector(url, simulator.ConnectorOptions{})

	// A decline rule with a code, used up after one request.
	addRules(t, sim, simulator.Rule{CardNumber: simulator.CardApprove, Action: simulator.ActionDecline, Code: "51", Times: 1})
	if res := mustAuthorize(t, c, authReq("k1", simulator.CardApprove, 100, true)); res.DeclineCode != payloom.DeclineInsufficientFunds {
		t.Errorf("Authorize under a 51 rule = %s %s; want declined insufficient_funds", res.Status, res.DeclineCode)
	}
	if res := mustAuthorize(t, c, authReq("k2", simulator.CardApprove, 100, true)); res.Status != payloom.AuthorizationApproved {
		t.Errorf("Authorize after the rule was used up = %s; want approved", res.Status)
	}
	// An approve rule overrides a declining test card.
	addRules(t, sim, simulator.Rule{CardNumber: simulator.CardStolen, Action: simulator.ActionApprove})
	if res := mustAuthorize(t, c, authReq("k3", simulator.CardStolen, 100, true)); res.Status != payloom.AuthorizationApproved {
		t.Errorf("Authorize under an approve rule = %s; want approved", res.Status)
	}
	// A rule for one request (by key), and the first matching rule wins.
	addRules(t, sim,
		simulator.Rule{IdempotencyKey: "k4", Action: simulator.ActionDecline, Code: "05"},
		simulator.Rule{IdempotencyKey: "k4", Action: simulator.ActionDecline, Code: "59"})
	if res := mustAuthorize(t, c, authReq("k4", simulator.CardApprove, 100, true)); res.DeclineCode != processor.DeclineDoNotHonor {
		t.Errorf("Authorize(k4) = %s; want do_not_honor from the first rule", res.DeclineCode)
	}
	if res := mustAuthorize(t, c, authReq("k5", simulator.CardApprove, 100, true)); res.Status != payloom.AuthorizationApproved {
		t.Errorf("Authorize(k5), matched by no rule = %s; want approved", res.Status)
	}
	if got := len(sim.Rules()); got != 3 {
		t.Errorf("len(Rules()) = %d; want 3 (the used-up rule removed)", got)
	}
	sim.ClearRules()
	if got := len(sim.Rules()); got != 0 {
		t.Errorf("len(Rules()) after ClearRules = %d; want 0", got)
	}

	// Invalid rules are refused.
	for _, r := range []simulator.Rule{{Action: "explode"}, {Action: simulator.ActionDecline, Code: "00"},
		{Operation: "settle", Action: simulator.ActionApprove}, {Action: simulator.ActionHang, Times: -1}} {
		if _, err := sim.AddRules(r); err == nil {
			t.Errorf("AddRules(%+v) = nil; want an error", r)
		}
	}
}

// TestOperationRules: a 503 on a capture is a retryable CodeUnavailable
// error, not a refusal, and the capture succeeds on retry with its key.
func TestOperationRules(t *testing.T) {
	sim, url := startSimulator(t, simulator.Options{})
	c := simulator.NewConnector(url, simulator.ConnectorOptions{})
	res := mustAuthorize(t, c, authReq("auth1", simulator.CardApprove, 1000, false))
	addRules(t, sim, simulator.Rule{Operation: "capture", Action: simulator.ActionError, Times: 1})
	creq := &payloom.CaptureRequest{IdempotencyKey: "cap1", TransactionID: res.TransactionID, Amount: 1000, Currency: "EUR"}
	if _, err := c.Capture(bg, creq); !payloom.IsCode(err, payloom.CodeUnavailable) {
		t.Fatalf("Capture under a 503 rule = %v; want %s", err, payloom.CodeUnavailable)
	}
	op, err := c.Capture(bg, creq)
	if err != nil || !op.Succeeded {
		t.Fatalf("Capture retried with its key = %+v, %v; want succeeded", op, err)
	}
	addRules(t, sim, simulator.Rule{Operation: "refund", Action: simulator.ActionDecline, Code: "57"})
	rr, err := c.Refund(bg, &payloom.RefundRequest{IdempotencyKey: "ref1", TransactionID: res.TransactionID, Amount: 10, Currency: "EUR"})
	if err != nil || rr.Succeeded || rr.RawCode != "57" {
		t.Fatalf("Refund under a decline rule = %+v, %v; want refused with raw code 57", rr, err)
	}
	// A refused refund changed nothing: the whole amount is refundable.
	sim.ClearRules()
	rr, err = c.Refund(bg, &payloom.RefundRequest{IdempotencyKey: "ref2", TransactionID: res.TransactionID, Amount: 1000, Currency: "EUR"})
	if err != nil || !rr.Succeeded {
		t.Fatalf("Refund(full) after a refused refund = %+v, %v; want succeeded", rr, err)
	}
}

// TestThrottle: a throttle rule (429 rate_limited) turns a request away
// unprocessed whether or not its key was processed before, for
// authorizations (a failed result) and operations (CodeUnavailable): the
// outcome recorded under the key is untouched and a retry replays it.
func TestThrottle(t *testing.T) {
	sim, url := startSimulator(t, simulator.Options{})
	c := simulator.NewConnector(url, simulator.ConnectorOptions{})

	// A first send turned away records nothing.
	addRules(t, sim, simulator.Rule{Action: simulator.ActionThrottle, Times: 1})
	req := authReq("thr1", simulator.CardApprove, 700, false)
	if res := mustAuthorize(t, c, req); res.Status != payloom.AuthorizationFailed || res.RawCode != "rate_limited" {
		t.Fatalf("Authorize under a throttle rule = %s %q; want failed rate_limited", res.Status, res.RawCode)
	}
	if n := len(sim.Ledger().Authorizations); n != 0 {
		t.Fatalf("ledger after a throttled first send holds %d authorizations; want 0", n)
	}
	first := mustAuthorize(t, c, req)
	if first.Status != payloom.AuthorizationApproved {
		t.Fatalf("Authorize after the throttle = %s; want approved", first.Status)
	}

	// A retry of a recorded key is throttled too (unlike "error"), and
	// the recorded outcome stays.
	addRules(t, sim, simulator.Rule{IdempotencyKey: "thr1", Action: simulator.ActionThrottle, Times: 1})
	if res := mustAuthorize(t, c, req); res.Status != payloom.AuthorizationFailed {
		t.Fatalf("retry of a recorded key under a throttle rule = %s; want failed (this request not processed)", res.Status)
	}
	if res := mustAuthorize(t, c, req); res.Status != payloom.AuthorizationApproved || res.TransactionID != first.TransactionID {
		t.Fatalf("retry after the throttle = %s %s; want the recorded approval %s", res.Status, res.TransactionID, first.TransactionID)
	}
	if ap := sim.Ledger().Approved(); len(ap) != 1 {
		t.Fatalf("approved authorizations = %d; want 1", len(ap))
	}

	addRules(t, sim, simulator.Rule{Operation: "void", Action: simulator.ActionThrottle, Times: 1})
	vreq := &payloom.VoidRequest{IdempotencyKey: "void1", TransactionID: first.TransactionID}
	if _, err := c.Void(bg, vreq); !payloom.IsCode(err, payloom.CodeUnavailable) {
		t.Fatalf("Void under a throttle rule = %v; want %s", err, payloom.CodeUnavailable)
	}
	if op, err := c.Void(bg, vreq); err != nil || !op.Succeeded {
		t.Fatalf("Void retried with its key = %+v, %v; want succeeded", op, err)
	}
}

func TestIdempotencyConflict(t *testing.T) {
	_, url := startSimulator(t, simulator.Options{})
	c := simulator.NewConnector(url, simulator.ConnectorOptions{})
	res := mustAuthorize(t, c, authReq("same", simulator.CardApprove, 100, false))
	if _, err := c.Authorize(bg, authReq("same", simulator.CardApprove, 200, false)); !payloom.IsCode(err, payloom.CodeIdempotencyConflict) {
		t.Errorf("Authorize(same key, other amount) = %v; want %s", err, payloom.CodeIdempotencyConflict)
	}
	capture := func(amount int64) error {
		_, err := c.Capture(bg, &payloom.CaptureRequest{IdempotencyKey: "cap", TransactionID: res.TransactionID, Amount: amount, Currency: "EUR"})
		return err
	}
	if err := capture(100); err != nil {
		t.Fatal(err)
	}
	if err := capture(50); !payloom.IsCode(err, payloom.CodeIdempotencyConflict) {
		t.Errorf("Capture(same key, other amount) = %v; want %s", err, payloom.CodeIdempotencyConflict)
	}
}

// TestHang: a hung authorization is recorded; the caller who gives up gets
// an error (unknown), Lookup finds the approval and a retry replays it.
// The test waits for the ledger, not for a duration.
func TestHang(t *testing.T) {
	sim, url := startSimulator(t, simulator.Options{})
	c := simulator.NewConnector(url, simulator.ConnectorOptions{})
	addRules(t, sim, simulator.Rule{IdempotencyKey: "hung", Action: simulator.ActionHang, Times: 1})
	ctx, cancel := context.WithCancel(bg)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Authorize(ctx, authReq("hung", simulator.CardApprove, 700, true))
		errc <- err
	}()
	waitFor(t, func() bool { return len(sim.Ledger().Authorizations) == 1 })
	cancel()
	err := <-errc
	if err == nil || payloom.ErrorCode(err) != payloom.CodeInternal || !errors.Is(err, context.Canceled) {
		t.Fatalf("Authorize(hung, cancelled) = %v; want a plain error wrapping context.Canceled (outcome unknown)", err)
	}
	look, err := c.Lookup(bg, &payloom.LookupRequest{IdempotencyKey: "hung"})
	if err != nil || !look.Found || look.Result.Status != payloom.AuthorizationApproved || look.AmountCaptured != 700 {
		t.Fatalf("Lookup(hung) = %+v, %v; want found, approved, captured 700", look, err)
	}
	again := mustAuthorize(t, c, authReq("hung", simulator.CardApprove, 700, true))
	if again.TransactionID != look.Result.TransactionID {
		t.Errorf("retry TransactionID = %q; want %q", again.TransactionID, look.Result.TransactionID)
	}
	if n := len(sim.Ledger().Approved()); n != 1 {
		t.Errorf("approved authorizations = %d; want 1", n)
	}
}

// TestCloseEndsHangs: stopping the simulator answers hung requests by
// closing their connections.
func TestCloseEndsHangs(t *testing.T) {
	sim, url := startSimulator(t, simulator.Options{})
	c := simulator.NewConnector(url, simulator.ConnectorOptions{})
	addRules(t, sim, simulator.Rule{Action: simulator.ActionHang})
	errc := make(chan error, 1)
	go func() {
		_, err := c.Authorize(bg, authReq("h", simulator.CardApprove, 1, true))
		errc <- err
	}()
	waitFor(t, func() bool { return len(sim.Ledger().Authorizations) == 1 })
	sim.Close()
	if err := <-errc; err == nil {
		t.Fatal("Authorize hung on a closed simulator = nil; want an error")
	}
}

func TestLatency(t *testing.T) {
	sim, url := startSimulator(t, simulator.Options{})
	c := simulator.NewConnector(url, simulator.ConnectorOptions{})
	addRules(t, sim, simulator.Rule{Action: simulator.ActionApprove, LatencyMS: 40})
	start := time.Now()
	mustAuthorize(t, c, authReq("slow", simulator.CardApprove, 1, true))
	if d := time.Since(start); d < 40*time.Millisecond { // a lower bound: timers never fire early
		t.Errorf("Authorize with 40ms latency returned after %v", d)
	}
}

// outcomes runs n authorizations with fixed keys and returns each one's
// kind: approved, failed or unknown. Hangs are not in play (they would
// need a timeout to tell apart).
func outcomes(t *testing.T, c *simulator.Connector, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range n {
		res, err := c.Authorize(bg, authReq(fmt.Sprintf("key%d", i), simulator.CardApprove, 100, true))
		switch {
		case err != nil:
			out[i] = "unknown"
		default:
			out[i] = string(res.Status)
		}
	}
	return out
}

// TestFaultsReproducible: the same seed gives the same faults for the
// same keys; another seed gives others; a key already processed never
// draws "not processed".
func TestFaultsReproducible(t *testing.T) {
	f := simulator.Faults{Seed: 42, ErrorRate: 0.3, DropRate: 0.3}
	run := func(f simulator.Faults) ([]string, simulator.Ledger) {
		sim, url := startSimulator(t, simulator.Options{Faults: f})
		return outcomes(t, simulator.NewConnector(url, simulator.ConnectorOptions{}), 200), sim.Ledger()
	}
	a, la := run(f)
	b, lb := run(f)
	if strings.Join(a, ",") != strings.Join(b, ",") {
		t.Fatalf("two runs with seed 42 differ:\n%v\n%v", a, b)
	}
	count := map[string]int{}
	for _, o := range a {
		count[o]++
	}
	for _, kind := range []string{"approved", "failed", "unknown"} {
		if count[kind] == 0 {
			t.Errorf("200 authorizations at 30%% errors and 30%% drops had no %s outcome: %v", kind, count)
		}
	}
	// Failed ones were not recorded; dropped ones were.
	if got, want := len(la.Authorizations), count["approved"]+count["unknown"]; got != want || len(lb.Authorizations) != want {
		t.Errorf("ledger holds %d (and %d) authorizations; want %d (approved + dropped)", got, len(lb.Authorizations), want)
	}
	other, _ := run(simulator.Faults{Seed: 43, ErrorRate: 0.3, DropRate: 0.3})
	if strings.Join(a, ",") == strings.Join(other, ",") {
		t.Error("seeds 42 and 43 gave the same 200 outcomes")
	}

	// Retrying every key until it is answered: nothing is authorized twice,
	// and no key that was recorded is ever answered "not processed".
	sim, url := startSimulator(t, simulator.Options{Faults: f})
	c := simulator.NewConnector(url, simulator.ConnectorOptions{})
	for i := range 100 {
		req := authReq(fmt.Sprintf("retry%d", i), simulator.CardApprove, 100, true)
		recorded := false
		for try := 0; ; try++ {
			if try == 100 {
				t.Fatalf("key %s never answered in 100 tries", req.IdempotencyKey)
			}
			res, err := c.Authorize(bg, req)
			if err != nil {
				recorded = true // dropped after recording
				continue
			}
			if res.Status == payloom.AuthorizationFailed {
				if recorded {
					t.Fatalf("key %s: answered not processed after it was recorded", req.IdempotencyKey)
				}
				continue
			}
			break
		}
	}
	if got := len(sim.Ledger().Approved()); got != 100 {
		t.Errorf("approved authorizations after retries = %d; want 100", got)
	}
}

// TestThrottleFaults: random throttling turns away retries of recorded
// keys as well as new ones, and never changes what a key recorded.
func TestThrottleFaults(t *testing.T) {
	sim, url := startSimulator(t, simulator.Options{Faults: simulator.Faults{Seed: 7, DropRate: 0.3, ThrottleRate: 0.3}})
	c := simulator.NewConnector(url, simulator.ConnectorOptions{})
	throttledAfterRecord := 0
	for i := range 100 {
		req := authReq(fmt.Sprintf("thr%d", i), simulator.CardApprove, 100, true)
		recorded := false
		for try := 0; ; try++ {
			if try == 100 {
				t.Fatalf("key %s never answered in 100 tries", req.IdempotencyKey)
			}
			res, err := c.Authorize(bg, req)
			if err != nil {
				recorded = true // dropped after recording
				continue
			}
			if res.Status == payloom.AuthorizationFailed {
				if res.RawCode != "rate_limited" {
					t.Fatalf("key %s: failed with %q; want rate_limited (no error faults)", req.IdempotencyKey, res.RawCode)
				}
				if recorded {
					throttledAfterRecord++
				}
				continue
			}
			break
		}
	}
	if throttledAfterRecord == 0 {
		t.Error("no retry of a recorded key was throttled at 30% throttling and 30% drops")
	}
	if got := len(sim.Ledger().Approved()); got != 100 {
		t.Errorf("approved authorizations after retries = %d; want 100", got)
	}
}

func TestInvalidRequests(t *testing.T) {
	_, url := startSimulator(t, simulator.Options{})
	c := simulator.NewConnector(url, simulator.ConnectorOptions{})
	for _, req := range []*payloom.AuthorizeRequest{
		authReq("a1", simulator.CardApprove, 0, true),
		{IdempotencyKey: "a2", Amount: 100, Currency: "eur", Card: card(simulator.CardApprove)},
		{IdempotencyKey: "a3", Amount: 100, Currency: "EUR", Card: &payloom.CardData{Number: "42", ExpMonth: 1, ExpYear: 2030}},
		{IdempotencyKey: "a4", Amount: 100, Currency: "EUR", Card: &payloom.CardData{Number: simulator.CardApprove, ExpMonth: 13, ExpYear: 2030}},
	} {
		res, err := c.Authorize(bg, req)
		if err != nil || res.Status != payloom.AuthorizationFailed || res.RawCode != "invalid_request" {
			t.Errorf("Authorize(invalid %s) = %+v, %v; want failed invalid_request", req.IdempotencyKey, res, err)
		}
	}
	if _, err := c.Authorize(bg, &payloom.AuthorizeRequest{Card: card(simulator.CardApprove)}); !payloom.IsCode(err, payloom.CodeValidation) {
		t.Errorf("Authorize(no key) = %v; want %s", err, payloom.CodeValidation)
	}
	// A body that is not JSON: the answer does not quote it.
	body := `{"card":{"number":"` + simulator.CardApprove + `"` // cut short
	res, err := http.Post(url+"/authorize", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest || strings.Contains(string(b), simulator.CardApprove) {
		t.Errorf("POST /authorize(broken JSON) = %d %s; want 400 without the card number", res.StatusCode, b)
	}
	for _, path := range []string{"/nowhere", "/lookup"} {
		res, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode/100 != 4 {
			t.Errorf("GET %s = %d; want 4xx", path, res.StatusCode)
		}
	}
}

// TestControlAPI drives the control endpoints over HTTP, as a test in
// another process would, and checks that no card number ever shows.
func TestControlAPI(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	sim, url := startSimulator(t, simulator.Options{Logger: slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logs}, nil))})
	ctl := &simulator.Control{BaseURL: url}
	c := simulator.NewConnector(url, simulator.ConnectorOptions{})

	rules, err := ctl.AddRules(bg, simulator.Rule{CardNumber: simulator.CardLost, Action: simulator.ActionApprove})
	if err != nil || len(rules) != 1 || rules[0].ID == "" {
		t.Fatalf("AddRules = %+v, %v; want one rule with an ID", rules, err)
	}
	if rules[0].CardNumber != "400000******9987" {
		t.Errorf("AddRules answered card_number %q; want it masked as 400000******9987", rules[0].CardNumber)
	}
	mustAuthorize(t, c, authReq("c1", simulator.CardLost, 500, true))
	if err := ctl.SetFaults(bg, simulator.Faults{ErrorRate: 2}); err == nil {
		t.Error("SetFaults(error rate 2) = nil; want an error")
	}
	if err := ctl.SetFaults(bg, simulator.Faults{Seed: 1, ErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	// A rule beats the fault mode; without one, every request fails.
	if res := mustAuthorize(t, c, authReq("c2", simulator.CardLost, 1, true)); res.Status != payloom.AuthorizationApproved {
		t.Errorf("Authorize under a rule with error rate 1 = %s; want approved", res.Status)
	}
	if res := mustAuthorize(t, c, authReq("c3", simulator.CardApprove, 1, true)); res.Status != payloom.AuthorizationFailed {
		t.Errorf("Authorize with error rate 1 = %s; want failed", res.Status)
	}
	l, err := ctl.Ledger(bg)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Authorizations) != 2 || l.Authorizations[0].IdempotencyKey != "c1" || l.Authorizations[0].CardLast4 != "9987" ||
		l.Authorizations[0].AmountCaptured != 500 {
		t.Errorf("Ledger = %+v; want c1 (last4 9987, captured 500) and c2", l.Authorizations)
	}
	if err := ctl.ClearRules(bg); err != nil {
		t.Fatal(err)
	}
	if len(sim.Rules()) != 0 {
		t.Error("rules remain after ClearRules")
	}
	if err := ctl.Reset(bg); err != nil {
		t.Fatal(err)
	}
	if l, _ := ctl.Ledger(bg); len(l.Authorizations) != 0 {
		t.Errorf("Ledger after Reset has %d authorizations; want 0", len(l.Authorizations))
	}
	if res := mustAuthorize(t, c, authReq("c4", simulator.CardApprove, 1, true)); res.Status != payloom.AuthorizationApproved {
		t.Errorf("Authorize after Reset (faults off) = %s; want approved", res.Status)
	}

	// Nothing the simulator said or logged shows a full card number.
	for _, path := range []string{"/_control/rules", "/_control/ledger", "/_control/faults"} {
		res, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if strings.Contains(string(b), simulator.CardLost) || strings.Contains(string(b), simulator.CardApprove) {
			t.Errorf("GET %s shows a full card number", path)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if logs.Len() == 0 {
		t.Error("the logger got nothing")
	}
	if strings.Contains(logs.String(), simulator.CardLost) || strings.Contains(logs.String(), simulator.CardApprove) {
		t.Error("the simulator's log shows a full card number")
	}
	var line map[string]any
	if err := json.Unmarshal(bytes.SplitN(logs.Bytes(), []byte("\n"), 2)[0], &line); err != nil || line["card_last4"] != "9987" {
		t.Errorf("first log line = %v (%v); want card_last4 9987", line, err)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// waitFor polls cond until it holds; the test binary's deadline bounds it.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for !cond() {
		time.Sleep(2 * time.Millisecond)
	}
}
