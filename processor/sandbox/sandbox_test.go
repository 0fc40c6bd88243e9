package sandbox

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/sqlite"
)

var (
	now         = time.Date(2026, time.March, 15, 12, 0, 0, 0, time.UTC)
	fixedClock  = func() time.Time { return now }
	authCodeRE  = regexp.MustCompile(`^[A-Z0-9]{6}$`)
	ntiRE       = regexp.MustCompile(`^[1-9][0-9]{14}$`)
	ctxBg       = context.Background()
	allTestCard = []string{CardVisa, CardMastercard, CardDeclined, CardInsufficientFunds, CardIncorrectCVC,
		CardExpired, CardProcessingError, CardRequires3DS, CardFraudulent}
)

func openStore(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctxBg); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func newProcessor(t *testing.T, opts Options) (*Processor, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "payloom.db")
	if opts.Clock == nil {
		opts.Clock = fixedClock
	}
	return New(openStore(t, path), opts), path
}

func card(number, cvc string) *payloom.CardData {
	return &payloom.CardData{Number: payloom.Secret(number), ExpMonth: 12, ExpYear: 2030,
		CVC: payloom.Secret(cvc), Brand: payloom.CardBrandVisa}
}

func authReq(key, number string, amount int64, capture bool) *payloom.AuthorizeRequest {
	return &payloom.AuthorizeRequest{IdempotencyKey: key, Reference: "pay_x", Amount: amount,
		Currency: "USD", Capture: capture, Card: card(number, "123")}
}

func authorize(t *testing.T, p *Processor, req *payloom.AuthorizeRequest) *payloom.AuthorizeResult {
	t.Helper()
	res, err := p.Authorize(ctxBg, req)
	if err != nil {
		t.Fatalf("Authorize(%s) = %v", req.IdempotencyKey, err)
	}
	return res
}

func count(t *testing.T, p *Processor, kind, txn string) int {
	t.Helper()
	var n int
	if err := p.store.View(ctxBg, func(tx payloom.Tx) error {
		var err error
		n, err = tx.CountSandboxOperations(ctxBg, kind, txn)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func charges(t *testing.T, p *Processor) int {
	t.Helper()
	n, err := p.Charges(ctxBg)
	if err != nil {
		t.Fatalf("Charges = %v", err)
	}
	return n
}

func TestName(t *testing.T) {
	if got := New(nil, Options{}).Name(); got != "sandbox" {
		t.Fatalf("Name() = %q; want %q", got, "sandbox")
	}
}

func TestAuthorizeTestCards(t *testing.T) {
	p, _ := newProcessor(t, Options{})
	approved := 0
	for _, tc := range []struct {
		number                    string
		status                    payloom.AuthorizationStatus
		failure, decline, rawCode string
	}{
		{CardVisa, payloom.AuthorizationApproved, "", "", "00"},
		{CardMastercard, payloom.AuthorizationApproved, "", "", "00"},
		{"378282246310005", payloom.AuthorizationApproved, "", "", "00"},
		{"6011111111111117", payloom.AuthorizationApproved, "", "", "00"},
		{CardDeclined, payloom.AuthorizationDeclined, "card_declined", "generic_decline", "05"},
		{CardInsufficientFunds, payloom.AuthorizationDeclined, "card_declined", "insufficient_funds", "51"},
		{CardIncorrectCVC, payloom.AuthorizationDeclined, "incorrect_cvc", "incorrect_cvc", "N7"},
		{CardExpired, payloom.AuthorizationDeclined, "expired_card", "expired_card", "54"},
		{CardFraudulent, payloom.AuthorizationDeclined, "card_declined", "fraudulent", "59"},
		{CardProcessingError, payloom.AuthorizationFailed, "processing_error", "processing_error", "96"},
		{CardRequires3DS, payloom.AuthorizationRequiresAction, "authentication_required", "", "1A"},
		{"4242424242424241", payloom.AuthorizationDeclined, "card_declined", "generic_decline", "14"},
	} {
		for _, capture := range []bool{false, true} {
			res := authorize(t, p, authReq(payloom.NewID("att"), tc.number, 1000, capture))
			if res.Status != tc.status || res.FailureCode != tc.failure || res.DeclineCode != tc.decline ||
				res.RawCode != tc.rawCode || !payloom.HasPrefix(res.TransactionID, "sbx") || res.Message == "" {
				t.Errorf("Authorize(%s, capture %v) = %+v; want status %s, failure %q/%q, raw %q, a sbx_ ID and a message",
					tc.number, capture, res, tc.status, tc.failure, tc.decline, tc.rawCode)
			}
			wantRedirect := ""
			if tc.status == payloom.AuthorizationRequiresAction {
				wantRedirect = "/sandbox/3ds/" + res.TransactionID
			}
			if res.RedirectURL != wantRedirect {
				t.Errorf("Authorize(%s).RedirectURL = %q; want %q", tc.number, res.RedirectURL, wantRedirect)
			}
			if tc.status != payloom.AuthorizationApproved {
				if res.AuthorizationCode != "" || res.NetworkTransactionID != "" {
					t.Errorf("Authorize(%s) = %+v; want no authorization code or network ID", tc.number, res)
				}
				continue
			}
			approved++
			if !authCodeRE.MatchString(res.AuthorizationCode) || res.AVSResult != "Y" || res.CVVResult != "M" ||
				!ntiRE.MatchString(res.NetworkTransactionID) {
				t.Errorf("Authorize(%s) = %+v; want a 6-character code, AVS Y, CVV M, a 15-digit network ID",
					tc.number, res)
			}
		}
	}
	if got := charges(t, p); got != approved {
		t.Fatalf("Charges() = %d; want %d", got, approved)
	}
	if got := count(t, p, KindAuthorize, ""); got != 24 {
		t.Fatalf("authorize operations = %d; want 24", got)
	}
}

func TestAuthorizeDetails(t *testing.T) {
	p, _ := newProcessor(t, Options{})
	noCVC := authReq("att_nocvc", CardVisa, 100, false)
	noCVC.Card.CVC = ""
	if res := authorize(t, p, noCVC); res.Status != payloom.AuthorizationApproved || res.CVVResult != "P" {
		t.Errorf("Authorize(no CVC) = %+v; want approved with CVV P", res)
	}
	if res := authorize(t, p, authReq("att_cvc", CardIncorrectCVC, 100, false)); res.CVVResult != "N" {
		t.Errorf("Authorize(%s).CVVResult = %q; want N", CardIncorrectCVC, res.CVVResult)
	}
	// A card that expired after it was tokenized is declined by the clock.
	expired := authReq("att_exp", CardVisa, 100, false)
	expired.Card.ExpMonth, expired.Card.ExpYear = 2, 2026
	if res := authorize(t, p, expired); res.Status != payloom.AuthorizationDeclined || res.FailureCode != "expired_card" {
		t.Errorf("Authorize(expired 02/2026 in 03/2026) = %+v; want declined expired_card", res)
	}
	thisMonth := authReq("att_month", CardVisa, 100, false)
	thisMonth.Card.ExpMonth, thisMonth.Card.ExpYear = 3, 2026
	if res := authorize(t, p, thisMonth); res.Status != payloom.AuthorizationApproved {
		t.Errorf("Authorize(expiring 03/2026 in 03/2026) = %+v; want approved", res)
	}
	// Two approvals never share identifiers.
	a := authorize(t, p, authReq("att_a", CardVisa, 100, false))
	b := authorize(t, p, authReq("att_b", CardVisa, 100, false))
	if a.TransactionID == b.TransactionID || a.NetworkTransactionID == b.NetworkTransactionID {
		t.Errorf("two approvals share IDs: %+v and %+v", a, b)
	}
}

func TestAuthorizeRefusals(t *testing.T) {
	p, _ := newProcessor(t, Options{})
	live := authReq("att_live", CardVisa, 100, false)
	live.Livemode = true
	noCard := authReq("att_nocard", CardVisa, 100, false)
	noCard.Card = nil
	badCurrency := authReq("att_cur", CardVisa, 100, false)
	badCurrency.Currency = "XXX"
	for name, req := range map[string]*payloom.AuthorizeRequest{
		"live mode":    live,
		"no card":      noCard,
		"zero amount":  authReq("att_zero", CardVisa, 0, false),
		"negative":     authReq("att_neg", CardVisa, -5, false),
		"bad currency": badCurrency,
	} {
		res := authorize(t, p, req)
		if res.Status != payloom.AuthorizationFailed || res.FailureCode != "processing_error" {
			t.Errorf("Authorize(%s) = %+v; want failed processing_error", name, res)
		}
	}
	if got := charges(t, p); got != 0 {
		t.Fatalf("Charges() after refusals = %d; want 0", got)
	}

	for name, req := range map[string]*payloom.AuthorizeRequest{"nil": nil, "no key": authReq("", CardVisa, 100, false)} {
		if res, err := p.Authorize(ctxBg, req); res != nil || !payloom.IsCode(err, payloom.CodeValidation) {
			t.Errorf("Authorize(%s) = %v, %v; want %s", name, res, err, payloom.CodeValidation)
		}
	}
	if got := count(t, p, KindAuthorize, ""); got != 5 {
		t.Fatalf("authorize operations = %d; want 5 (requests without a key record nothing)", got)
	}

	allowed := New(p.store, Options{AllowLivemode: true, Clock: fixedClock})
	live.IdempotencyKey = "att_live_allowed"
	if res := authorize(t, allowed, live); res.Status != payloom.AuthorizationApproved {
		t.Fatalf("Authorize(live, AllowLivemode) = %+v; want approved", res)
	}
}

func TestAuthorizeIdempotentUnderConcurrency(t *testing.T) {
	p, _ := newProcessor(t, Options{})
	const n = 100
	results := make([]*payloom.AuthorizeResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = p.Authorize(ctxBg, authReq("att_same", CardVisa, 5000, false))
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || !reflect.DeepEqual(results[i], results[0]) {
			t.Fatalf("Authorize #%d = %+v, %v; want %+v like #0", i, results[i], errs[i], results[0])
		}
	}
	if results[0].Status != payloom.AuthorizationApproved {
		t.Fatalf("Authorize = %+v; want approved", results[0])
	}
	if got := count(t, p, KindAuthorize, ""); got != 1 {
		t.Fatalf("authorize operations = %d; want 1", got)
	}
	if got := charges(t, p); got != 1 {
		t.Fatalf("Charges() = %d; want 1", got)
	}
}

func TestIdempotencyAcrossRestartAndKeyReuse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "payloom.db")
	store := openStore(t, path)
	first := authorize(t, New(store, Options{}), authReq("att_restart", CardVisa, 700, false))
	declined := authorize(t, New(store, Options{}), authReq("att_declined", CardDeclined, 700, false))
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	p := New(openStore(t, path), Options{})
	if again := authorize(t, p, authReq("att_restart", CardVisa, 700, false)); !reflect.DeepEqual(again, first) {
		t.Fatalf("Authorize after restart = %+v; want the recorded %+v", again, first)
	}
	// The replay does not depend on the card sent the second time.
	if again := authorize(t, p, authReq("att_declined", CardVisa, 700, false)); !reflect.DeepEqual(again, declined) {
		t.Fatalf("Authorize(declined key, other card) = %+v; want the recorded %+v", again, declined)
	}
	if got := charges(t, p); got != 1 {
		t.Fatalf("Charges() = %d; want 1", got)
	}
	if res, err := p.Authorize(ctxBg, authReq("att_restart", CardVisa, 701, false)); res != nil ||
		!payloom.IsCode(err, payloom.CodeIdempotencyConflict) {
		t.Fatalf("Authorize(same key, other amount) = %v, %v; want %s", res, err, payloom.CodeIdempotencyConflict)
	}
	if res, err := p.Refund(ctxBg, &payloom.RefundRequest{IdempotencyKey: "att_restart", TransactionID: first.TransactionID,
		Amount: 700, Currency: "USD"}); res != nil || !payloom.IsCode(err, payloom.CodeIdempotencyConflict) {
		t.Fatalf("Refund(an authorization's key) = %v, %v; want %s", res, err, payloom.CodeIdempotencyConflict)
	}
	// The authorization recorded before the restart can be captured.
	res, err := p.Capture(ctxBg, &payloom.CaptureRequest{IdempotencyKey: "cap_restart", TransactionID: first.TransactionID,
		Amount: 700, Currency: "USD"})
	if err != nil || !res.Succeeded {
		t.Fatalf("Capture after restart = %+v, %v; want success", res, err)
	}
}

// op runs one follow-up operation and returns whether it succeeded.
type op struct {
	kind   string
	key    string
	txn    string
	amount int64
	cur    payloom.Currency
	want   bool
}

func (o op) run(t *testing.T, p *Processor) *payloom.OperationResult {
	t.Helper()
	var res *payloom.OperationResult
	var err error
	switch o.kind {
	case KindCapture:
		res, err = p.Capture(ctxBg, &payloom.CaptureRequest{IdempotencyKey: o.key, TransactionID: o.txn, Amount: o.amount, Currency: o.cur})
	case KindVoid:
		res, err = p.Void(ctxBg, &payloom.VoidRequest{IdempotencyKey: o.key, TransactionID: o.txn})
	case KindRefund:
		res, err = p.Refund(ctxBg, &payloom.RefundRequest{IdempotencyKey: o.key, TransactionID: o.txn, Amount: o.amount, Currency: o.cur})
	}
	if err != nil {
		t.Fatalf("%s(%s, %d %s) = %v", o.kind, o.key, o.amount, o.cur, err)
	}
	if res.Succeeded != o.want {
		t.Fatalf("%s(%s, %d %s) = %+v; want succeeded %v", o.kind, o.key, o.amount, o.cur, res, o.want)
	}
	if !o.want && (res.FailureCode != "processing_error" || res.Message == "") {
		t.Fatalf("%s(%s) = %+v; want failure code processing_error and a message", o.kind, o.key, res)
	}
	if o.want && (!payloom.HasPrefix(res.TransactionID, "sbx") || res.RawCode != "00") {
		t.Fatalf("%s(%s) = %+v; want a sbx_ transaction ID and raw code 00", o.kind, o.key, res)
	}
	return res
}

func TestCaptureVoidRefundRules(t *testing.T) {
	p, _ := newProcessor(t, Options{})
	manual := authorize(t, p, authReq("att_manual", CardVisa, 1000, false)).TransactionID
	auto := authorize(t, p, authReq("att_auto", CardVisa, 1000, true)).TransactionID
	voided := authorize(t, p, authReq("att_void", CardVisa, 1000, false)).TransactionID
	declined := authorize(t, p, authReq("att_decl", CardDeclined, 1000, false)).TransactionID
	challenge := authorize(t, p, authReq("att_3ds", CardRequires3DS, 1000, false)).TransactionID

	steps := []op{
		// Unknown, declined and unauthenticated transactions.
		{KindCapture, "c_unknown", "sbx_nope", 100, "USD", false},
		{KindVoid, "v_unknown", "sbx_nope", 0, "", false},
		{KindRefund, "r_unknown", "sbx_nope", 100, "USD", false},
		{KindCapture, "c_declined", declined, 100, "USD", false},
		{KindCapture, "c_3ds", challenge, 100, "USD", false},
		// A manual authorization: refunds need a capture first; the
		// capture is bounded by the authorization, in its currency.
		{KindRefund, "r_early", manual, 100, "USD", false},
		{KindCapture, "c_over", manual, 1001, "USD", false},
		{KindCapture, "c_zero", manual, 0, "USD", false},
		{KindCapture, "c_eur", manual, 500, "EUR", false},
		{KindCapture, "c_ok", manual, 600, "USD", true},
		{KindCapture, "c_twice", manual, 100, "USD", false},
		{KindVoid, "v_captured", manual, 0, "", false},
		{KindRefund, "r_eur", manual, 100, "EUR", false},
		{KindRefund, "r_zero", manual, 0, "USD", false},
		{KindRefund, "r1", manual, 400, "USD", true},
		{KindRefund, "r_over", manual, 201, "USD", false},
		{KindRefund, "r2", manual, 200, "USD", true},
		{KindRefund, "r3", manual, 1, "USD", false},
		// Captured at authorization: no capture, no void, refunds to 1000.
		{KindCapture, "c_auto", auto, 1000, "USD", false},
		{KindVoid, "v_auto", auto, 0, "", false},
		{KindRefund, "ra1", auto, 999, "USD", true},
		{KindRefund, "ra2", auto, 2, "USD", false},
		{KindRefund, "ra3", auto, 1, "USD", true},
		// A void ends the authorization.
		{KindVoid, "v_ok", voided, 0, "", true},
		{KindVoid, "v_again", voided, 0, "", false},
		{KindCapture, "c_after_void", voided, 100, "USD", false},
		{KindRefund, "r_after_void", voided, 100, "USD", false},
	}
	results := map[string]*payloom.OperationResult{}
	for _, s := range steps {
		results[s.key] = s.run(t, p)
	}
	// Every key replays its first answer, whatever happened since.
	for _, s := range steps {
		if got := s.run(t, p); !reflect.DeepEqual(got, results[s.key]) {
			t.Errorf("replay of %s = %+v; want %+v", s.key, got, results[s.key])
		}
	}
	if results["c_ok"].TransactionID != manual || results["v_ok"].TransactionID != voided {
		t.Errorf("capture and void IDs = %q, %q; want the authorizations' %q, %q",
			results["c_ok"].TransactionID, results["v_ok"].TransactionID, manual, voided)
	}
	if r1, r2 := results["r1"].TransactionID, results["r2"].TransactionID; r1 == r2 || r1 == manual {
		t.Errorf("refund IDs %q, %q; want distinct IDs of their own", r1, r2)
	}
	if got := count(t, p, KindRefund, manual); got != 7 {
		t.Errorf("refund operations on %s = %d; want 7", manual, got)
	}
	if res, err := p.Capture(ctxBg, &payloom.CaptureRequest{IdempotencyKey: "c_ok", TransactionID: manual, Amount: 601,
		Currency: "USD"}); res != nil || !payloom.IsCode(err, payloom.CodeIdempotencyConflict) {
		t.Errorf("Capture(reused key, other amount) = %v, %v; want %s", res, err, payloom.CodeIdempotencyConflict)
	}
	for name, f := range map[string]func() error{
		"Capture": func() error { _, err := p.Capture(ctxBg, &payloom.CaptureRequest{TransactionID: manual}); return err },
		"Void":    func() error { _, err := p.Void(ctxBg, &payloom.VoidRequest{TransactionID: manual}); return err },
		"Refund":  func() error { _, err := p.Refund(ctxBg, &payloom.RefundRequest{TransactionID: manual}); return err },
	} {
		if err := f(); !payloom.IsCode(err, payloom.CodeValidation) {
			t.Errorf("%s without a key = %v; want %s", name, err, payloom.CodeValidation)
		}
	}
}

func TestConcurrentRefundsNeverExceedCapture(t *testing.T) {
	p, _ := newProcessor(t, Options{})
	txn := authorize(t, p, authReq("att_c", CardVisa, 1000, true)).TransactionID
	const n = 25
	var wg sync.WaitGroup
	var mu sync.Mutex
	succeeded := 0
	for i := range n {
		wg.Go(func() {
			res, err := p.Refund(ctxBg, &payloom.RefundRequest{IdempotencyKey: "re_" + string(rune('a'+i)), TransactionID: txn,
				Amount: 100, Currency: "USD"})
			if err != nil {
				t.Errorf("Refund #%d = %v", i, err)
				return
			}
			if res.Succeeded {
				mu.Lock()
				succeeded++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if succeeded != 10 {
		t.Fatalf("successful concurrent refunds of 100 on 1000 = %d; want 10", succeeded)
	}
}

func TestConcurrentCaptureAndVoid(t *testing.T) {
	p, _ := newProcessor(t, Options{})
	txn := authorize(t, p, authReq("att_cv", CardVisa, 1000, false)).TransactionID
	var wg sync.WaitGroup
	oks := make([]bool, 20)
	for i := range oks {
		wg.Go(func() {
			var res *payloom.OperationResult
			var err error
			if i%2 == 0 {
				res, err = p.Capture(ctxBg, &payloom.CaptureRequest{IdempotencyKey: "cap_" + string(rune('a'+i)),
					TransactionID: txn, Amount: 1000, Currency: "USD"})
			} else {
				res, err = p.Void(ctxBg, &payloom.VoidRequest{IdempotencyKey: "void_" + string(rune('a'+i)), TransactionID: txn})
			}
			if err != nil {
				t.Errorf("operation #%d = %v", i, err)
				return
			}
			oks[i] = res.Succeeded
		})
	}
	wg.Wait()
	won := 0
	for _, ok := range oks {
		if ok {
			won++
		}
	}
	if won != 1 {
		t.Fatalf("successful captures and voids of one authorization = %d; want 1", won)
	}
}

func TestLatency(t *testing.T) {
	p, _ := newProcessor(t, Options{Latency: time.Hour})
	// The context ends once the charge is recorded, that is while the
	// sandbox spends its latency: without honouring ctx this would block
	// for an hour (and the test binary's timeout would fail it).
	ctx, cancel := context.WithCancel(ctxBg)
	defer cancel()
	type answer struct {
		res *payloom.AuthorizeResult
		err error
	}
	done := make(chan answer, 1)
	go func() {
		res, err := p.Authorize(ctx, authReq("att_slow", CardVisa, 100, false))
		done <- answer{res, err}
	}()
	for charges(t, p) == 0 {
		select {
		case a := <-done:
			t.Fatalf("Authorize returned %v, %v before its latency; want it waiting", a.res, a.err)
		case <-time.After(2 * time.Millisecond):
		}
	}
	cancel()
	if a := <-done; a.res != nil || !errors.Is(a.err, context.Canceled) {
		t.Fatalf("Authorize(ctx ending during latency) = %v, %v; want %v", a.res, a.err, context.Canceled)
	}
	// The charge happened before the answer was lost: a retry with the
	// key gets it, and nothing is charged twice.
	fast := New(p.store, Options{Clock: fixedClock})
	if res := authorize(t, fast, authReq("att_slow", CardVisa, 100, false)); res.Status != payloom.AuthorizationApproved {
		t.Fatalf("retry after a lost answer = %+v; want approved", res)
	}
	if got := charges(t, fast); got != 1 {
		t.Fatalf("Charges() = %d; want 1", got)
	}
	ctx2, cancel2 := context.WithTimeout(ctxBg, 50*time.Millisecond)
	defer cancel2()
	if _, err := p.Capture(ctx2, &payloom.CaptureRequest{IdempotencyKey: "cap_slow", TransactionID: "sbx_x", Amount: 1,
		Currency: "USD"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Capture(ctx ending during latency) = %v; want %v", err, context.DeadlineExceeded)
	}

	// The latency is really spent (a lower bound: timers never fire early).
	slow := New(p.store, Options{Latency: 30 * time.Millisecond, Clock: fixedClock})
	start := time.Now()
	authorize(t, slow, authReq("att_measured", CardVisa, 100, false))
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("Authorize with 30ms latency returned after %v", d)
	}
}

// TestLedgerHoldsNoCardData: the ledger rows and the database files never
// hold a card number or a CVC.
func TestLedgerHoldsNoCardData(t *testing.T) {
	p, path := newProcessor(t, Options{})
	const cvc = "8613"
	for _, number := range allTestCard {
		req := authReq(payloom.NewID("att"), number, 1000, false)
		req.Card.CVC = cvc
		res := authorize(t, p, req)
		if res.Status == payloom.AuthorizationApproved {
			(op{KindCapture, payloom.NewID("op"), res.TransactionID, 1000, "USD", true}).run(t, p)
			(op{KindRefund, payloom.NewID("op"), res.TransactionID, 10, "USD", true}).run(t, p)
		}
	}
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT key, kind, transaction_id, currency, CAST(result AS TEXT) FROM sandbox_operations`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
		var key, kind, txn, cur, result string
		if err := rows.Scan(&key, &kind, &txn, &cur, &result); err != nil {
			t.Fatal(err)
		}
		all := strings.Join([]string{key, kind, txn, cur, result}, "|")
		for _, number := range allTestCard {
			if strings.Contains(all, number) || strings.Contains(all, number[6:]) {
				t.Errorf("ledger row %s holds a card number: %s", key, all)
			}
		}
		if strings.Contains(strings.ToLower(result), `"cvc":`) || strings.Contains(result, `"`+cvc+`"`) {
			t.Errorf("ledger row %s holds a CVC: %s", key, result)
		}
	}
	if n == 0 {
		t.Fatal("no ledger rows read")
	}
	files, _ := filepath.Glob(path + "*")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, number := range allTestCard {
			if strings.Contains(string(data), number) {
				t.Errorf("%s contains card number %s...%s", filepath.Base(f), number[:6], number[12:])
			}
		}
	}
}
