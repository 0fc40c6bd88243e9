package sandbox

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/payloom/payloom"
)

func TestChallengeOutcomes(t *testing.T) {
	tests := []struct {
		name     string
		capture  bool
		approve  bool
		status   payloom.AuthorizationStatus
		captured bool
		charges  int
	}{
		{"approved, captured", true, true, payloom.AuthorizationApproved, true, 1},
		{"approved, manual", false, true, payloom.AuthorizationApproved, false, 1},
		{"failed", true, false, payloom.AuthorizationDeclined, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := newProcessor(t, Options{})
			req := authReq("att_3ds", CardRequires3DS, 1500, tt.capture)
			req.ReturnURL = "https://pay.example/pay/pay_x/complete"
			first := authorize(t, p, req)
			txn := first.TransactionID

			c, err := p.Challenge(ctxBg, txn)
			if err != nil || c.Outcome != "" || c.Amount != 1500 || c.Currency != "USD" || c.ReturnURL != req.ReturnURL {
				t.Fatalf("Challenge(%s) = %+v, %v; want an open challenge of 1500 USD returning to %s", txn, c, err, req.ReturnURL)
			}
			lk, err := p.Lookup(ctxBg, &payloom.LookupRequest{IdempotencyKey: "att_3ds"})
			if err != nil || lk.Result.Status != payloom.AuthorizationRequiresAction {
				t.Fatalf("Lookup before the answer = %+v, %v; want requires_action", lk, err)
			}

			c, err = p.CompleteChallenge(ctxBg, txn, tt.approve)
			wantOutcome := ChallengeFailed
			if tt.approve {
				wantOutcome = ChallengeApproved
			}
			if err != nil || c.Outcome != wantOutcome {
				t.Fatalf("CompleteChallenge(%v) = %+v, %v; want outcome %q", tt.approve, c, err, wantOutcome)
			}
			// The first answer stands.
			if c, err := p.CompleteChallenge(ctxBg, txn, !tt.approve); err != nil || c.Outcome != wantOutcome {
				t.Errorf("second CompleteChallenge = %+v, %v; want outcome %q still", c, err, wantOutcome)
			}

			lk, err = p.Lookup(ctxBg, &payloom.LookupRequest{IdempotencyKey: "att_3ds"})
			if err != nil || !lk.Found || lk.Result.Status != tt.status || lk.Captured != tt.captured || lk.Result.TransactionID != txn {
				t.Fatalf("Lookup after the answer = %+v (%+v), %v; want %q, captured %v, transaction %s",
					lk, lk.Result, err, tt.status, tt.captured, txn)
			}
			replay := authorize(t, p, req)
			if replay.Status != tt.status || replay.AuthorizationCode != lk.Result.AuthorizationCode || replay.RedirectURL != "" {
				t.Errorf("Authorize replay = %+v; want the Lookup's answer %+v", replay, lk.Result)
			}
			if tt.approve {
				if !authCodeRE.MatchString(replay.AuthorizationCode) {
					t.Errorf("AuthorizationCode = %q; want six characters", replay.AuthorizationCode)
				}
			} else if replay.DeclineCode != payloom.DeclineAuthenticationFail || replay.FailureCode != payloom.FailureCardDeclined {
				t.Errorf("decline = %s/%s; want card_declined/authentication_failed", replay.FailureCode, replay.DeclineCode)
			}
			if n, _ := p.Charges(ctxBg); n != tt.charges {
				t.Errorf("Charges = %d; want %d", n, tt.charges)
			}
			// A manual approval captures like any other; a failure has
			// nothing to capture.
			if !tt.captured {
				res, err := p.Capture(ctxBg, &payloom.CaptureRequest{IdempotencyKey: "cap_1", TransactionID: txn, Amount: 1500, Currency: "USD"})
				if err != nil || res.Succeeded != tt.approve {
					t.Errorf("Capture = %+v, %v; want succeeded %v", res, err, tt.approve)
				}
			}
		})
	}
}

func TestChallengeConcurrentAnswers(t *testing.T) {
	p, _ := newProcessor(t, Options{})
	txn := authorize(t, p, authReq("att_3ds", CardRequires3DS, 1000, true)).TransactionID
	var wg sync.WaitGroup
	outcomes := make([]string, 8)
	for i := range outcomes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := p.CompleteChallenge(ctxBg, txn, i%2 == 0)
			if err != nil {
				t.Errorf("CompleteChallenge: %v", err)
				return
			}
			outcomes[i] = c.Outcome
		}()
	}
	wg.Wait()
	for _, o := range outcomes {
		if o != outcomes[0] {
			t.Fatalf("concurrent answers saw outcomes %v; want one outcome for all", outcomes)
		}
	}
	if n, _ := p.Charges(ctxBg); (outcomes[0] == ChallengeApproved) != (n == 1) || n > 1 {
		t.Errorf("Charges = %d with outcome %q", n, outcomes[0])
	}
}

func TestChallengeUnknown(t *testing.T) {
	p, _ := newProcessor(t, Options{})
	visa := authorize(t, p, authReq("att_visa", CardVisa, 1000, true)).TransactionID
	for _, txn := range []string{"sbx_nope", visa} {
		if _, err := p.Challenge(ctxBg, txn); !payloom.IsCode(err, payloom.CodeNotFound) {
			t.Errorf("Challenge(%s) = %v; want not_found", txn, err)
		}
		if _, err := p.CompleteChallenge(ctxBg, txn, true); !payloom.IsCode(err, payloom.CodeNotFound) {
			t.Errorf("CompleteChallenge(%s) = %v; want not_found", txn, err)
		}
	}
}

func TestChallengeHandler(t *testing.T) {
	p, _ := newProcessor(t, Options{})
	withReturn := authReq("att_a", CardRequires3DS, 1234, true)
	withReturn.ReturnURL = "https://pay.example/pay/pay_a/complete"
	txnA := authorize(t, p, withReturn).TransactionID
	txnB := authorize(t, p, authReq("att_b", CardRequires3DS, 1234, true)).TransactionID
	srv := httptest.NewServer(p.ChallengeHandler(nil))
	t.Cleanup(srv.Close)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	post := func(path, outcome string, headers ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(url.Values{"outcome": {outcome}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	resp, body := get(RedirectPathPrefix + txnA)
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != 200 || !strings.Contains(body, "12.34 USD") || !strings.Contains(body, `value="approved"`) {
		t.Fatalf("GET challenge = %d %s; want 200 with the amount and an Approve button", resp.StatusCode, body)
	}
	for _, want := range []string{"frame-ancestors 'none'", "default-src 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy = %q; want it to contain %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Errorf("Content-Security-Policy = %q allows unsafe-inline", csp)
	}

	if r := post(RedirectPathPrefix+txnA, ChallengeApproved, "Sec-Fetch-Site", "cross-site"); r.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST = %d; want 403", r.StatusCode)
	}
	if r := post(RedirectPathPrefix+txnA, "maybe"); r.StatusCode != http.StatusBadRequest {
		t.Errorf("POST outcome=maybe = %d; want 400", r.StatusCode)
	}
	if c, _ := p.Challenge(ctxBg, txnA); c.Outcome != "" {
		t.Fatalf("refused POSTs answered the challenge: %q", c.Outcome)
	}
	r := post(RedirectPathPrefix+txnA, ChallengeApproved, "Sec-Fetch-Site", "same-origin")
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != withReturn.ReturnURL {
		t.Errorf("POST approved = %d to %q; want 303 to %s", r.StatusCode, r.Header.Get("Location"), withReturn.ReturnURL)
	}
	if r := post(RedirectPathPrefix+txnB, ChallengeFailed); r.StatusCode != http.StatusOK {
		t.Errorf("POST failed without a return URL = %d; want 200 (the outcome page)", r.StatusCode)
	}
	if _, body := get(RedirectPathPrefix + txnB); !strings.Contains(body, "Authentication failed.") {
		t.Errorf("GET answered challenge = %s; want the outcome", body)
	}
	for _, path := range []string{RedirectPathPrefix + "sbx_nope", "/sandbox/other"} {
		if resp, _ := get(path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d; want 404", path, resp.StatusCode)
		}
	}
}
