package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Test cards and CVCs of the flow. The CVCs are unusual on purpose: the
// card-data scan searches for them.
const (
	cardVisa       = "4242424242424242"
	cardMastercard = "5555555555554444"
	cardDeclined   = "4000000000000002"
	cardAmex       = "378282246310005"
	cvcA           = "737"
	cvcB           = "918"
	cvcAmex        = "9183"
)

var keyIDRE = regexp.MustCompile(`\bkey_[0-9a-z]{26}\b`)

// TestEndToEnd drives the README's story through the real binary: first
// start, tokenize, pay, capture, refund, events, declines, cancels, keys
// managed through the CLI while the server runs, and a restart. At the end
// it scans every log line and the database files for card data.
func TestEndToEnd(t *testing.T) {
	in := newInstance(t)
	srv := in.start(nil, "--log-level", "debug")
	first := parseFirstStart(t, srv.Stdout())
	if !strings.HasPrefix(first.MerchantID, "mrch_") {
		t.Fatalf("first start merchant = %q; want mrch_...", first.MerchantID)
	}
	c := newClient(t, srv.URL, first.Key)

	t.Run("authentication", func(t *testing.T) {
		c := newClient(t, srv.URL, "")
		c.expectError(http.StatusUnauthorized, "auth_failed", "GET", "/v1/payments", nil)
		c.withKey("sk_test_notarealkey").expectError(http.StatusUnauthorized, "auth_failed", "GET", "/v1/payments", nil)
	})

	t.Run("public endpoints", func(t *testing.T) {
		c := newClient(t, srv.URL, "")
		for _, path := range []string{"/healthz", "/readyz"} {
			c.expect(http.StatusOK, nil, "GET", path, nil)
		}
		var spec struct {
			OpenAPI string         `json:"openapi"`
			Paths   map[string]any `json:"paths"`
		}
		c.expect(http.StatusOK, &spec, "GET", "/v1/openapi.json", nil)
		if !strings.HasPrefix(spec.OpenAPI, "3.1") || spec.Paths["/v1/payments"] == nil {
			t.Errorf("GET /v1/openapi.json: openapi %q with %d paths; want 3.1 describing /v1/payments", spec.OpenAPI, len(spec.Paths))
		}
	})

	var autoPay payment
	t.Run("automatic payment", func(t *testing.T) {
		c := c.on(t)
		tok := c.tokenize(cardVisa, cvcA)
		if tok.Card.Brand != "visa" || tok.Livemode {
			t.Errorf("token card = %+v livemode %v; want visa in test mode", tok.Card, tok.Livemode)
		}
		body := paymentBody(tok.ID, 2000, "USD", "automatic")
		body["metadata"] = map[string]string{"order": "1001"}
		r := c.expect(http.StatusOK, &autoPay, "POST", "/v1/payments", body, idem("e2e-auto-1")...)
		if autoPay.Status != "captured" || autoPay.AmountCaptured != 2000 || autoPay.AmountCapturable != 0 {
			t.Fatalf("automatic payment = %s; want captured with amount_captured 2000", r.Body)
		}
		if autoPay.MerchantID != first.MerchantID || autoPay.Livemode || autoPay.Metadata["order"] != "1001" {
			t.Errorf("payment merchant/livemode/metadata = %q/%v/%v; want %q/false/order=1001",
				autoPay.MerchantID, autoPay.Livemode, autoPay.Metadata, first.MerchantID)
		}
		if autoPay.Processor == nil || autoPay.Processor.Name != "sandbox" || autoPay.Processor.AuthorizationCode == "" {
			t.Errorf("payment processor = %+v; want sandbox with an authorization code", autoPay.Processor)
		}
		if len(autoPay.Attempts) != 1 {
			t.Errorf("payment attempts = %d; want 1", len(autoPay.Attempts))
		}

		replay := c.expect(http.StatusOK, nil, "POST", "/v1/payments", body, idem("e2e-auto-1")...)
		if !bytes.Equal(replay.Body, r.Body) || replay.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replay = %s (Idempotent-Replayed %q); want the first body byte for byte, replayed",
				replay.Body, replay.Header.Get("Idempotent-Replayed"))
		}
		other := paymentBody(tok.ID, 2001, "USD", "automatic")
		c.expectError(http.StatusConflict, "idempotency_conflict", "POST", "/v1/payments", other, idem("e2e-auto-1")...)

		var got payment
		c.expect(http.StatusOK, &got, "GET", "/v1/payments/"+autoPay.ID, nil)
		if got.Status != "captured" {
			t.Errorf("GET payment status = %q; want captured", got.Status)
		}
	})

	var manual payment
	var ref refund
	t.Run("manual capture and refund", func(t *testing.T) {
		c := c.on(t)
		tok := c.tokenize(cardMastercard, cvcB)
		c.expect(http.StatusOK, &manual, "POST", "/v1/payments", paymentBody(tok.ID, 5000, "EUR", "manual"), idem("e2e-manual-1")...)
		if manual.Status != "authorized" || manual.AmountCapturable != 5000 || manual.AmountCaptured != 0 {
			t.Fatalf("manual payment = %+v; want authorized with 5000 capturable", manual)
		}
		// A refund before the capture is an illegal transition.
		c.expectError(http.StatusConflict, "invalid_state", "POST", "/v1/refunds",
			map[string]any{"payment_id": manual.ID, "amount": 100})

		var captured payment
		c.expect(http.StatusOK, &captured, "POST", "/v1/payments/"+manual.ID+"/capture", map[string]any{"amount": 3000}, idem("e2e-capture-1")...)
		if captured.Status != "captured" || captured.AmountCaptured != 3000 || captured.AmountCapturable != 0 {
			t.Fatalf("capture 3000 = %+v; want captured 3000, capturable 0", captured)
		}

		c.expect(http.StatusOK, &ref, "POST", "/v1/refunds",
			map[string]any{"payment_id": manual.ID, "amount": 1000, "reason": "requested_by_customer"}, idem("e2e-refund-1")...)
		if ref.Status != "succeeded" || ref.Amount != 1000 || ref.PaymentID != manual.ID || ref.Currency != "EUR" {
			t.Fatalf("refund = %+v; want succeeded 1000 EUR of %s", ref, manual.ID)
		}
		var after payment
		c.expect(http.StatusOK, &after, "GET", "/v1/payments/"+manual.ID, nil)
		if after.AmountRefunded != 1000 || after.AmountCaptured != 3000 {
			t.Errorf("payment after refund: refunded %d captured %d; want 1000 and 3000", after.AmountRefunded, after.AmountCaptured)
		}
		// More than what is left is refused and changes nothing.
		c.expectError(http.StatusBadRequest, "validation_error", "POST", "/v1/refunds",
			map[string]any{"payment_id": manual.ID, "amount": 2001})

		var gotRef refund
		c.expect(http.StatusOK, &gotRef, "GET", "/v1/refunds/"+ref.ID, nil)
		if gotRef.ID != ref.ID || gotRef.Status != "succeeded" {
			t.Errorf("GET refund = %+v; want %s succeeded", gotRef, ref.ID)
		}
		var refs list[refund]
		c.expect(http.StatusOK, &refs, "GET", "/v1/refunds?payment_id="+manual.ID, nil)
		if len(refs.Data) != 1 || refs.Data[0].ID != ref.ID {
			t.Errorf("GET /v1/refunds?payment_id = %+v; want exactly %s", refs.Data, ref.ID)
		}
	})

	t.Run("events", func(t *testing.T) {
		c := c.on(t)
		if manual.ID == "" {
			t.Skip("the manual payment was not created")
		}
		var evs list[event]
		c.expect(http.StatusOK, &evs, "GET", "/v1/events?limit=100", nil)
		// Newest first; the story is told oldest first.
		var story []event
		for _, ev := range slices.Backward(evs.Data) {
			var obj struct {
				ID        string `json:"id"`
				PaymentID string `json:"payment_id"`
			}
			if err := json.Unmarshal(ev.Data.Object, &obj); err != nil {
				t.Fatalf("event %s data.object: %v", ev.ID, err)
			}
			if obj.ID == manual.ID || obj.PaymentID == manual.ID {
				story = append(story, ev)
			}
		}
		var types []string
		for _, ev := range story {
			types = append(types, ev.Type)
		}
		want := []string{"payment.created", "payment.authorized", "payment.captured", "refund.created", "refund.succeeded"}
		if !slices.Equal(types, want) {
			t.Fatalf("events of %s = %v; want %v", manual.ID, types, want)
		}
		// Each event holds the object as it was then.
		snapshots := []struct {
			status   string
			captured int64
		}{{"", 0}, {"authorized", 0}, {"captured", 3000}, {"", 0}, {"succeeded", 0}}
		for i, ev := range story {
			var obj struct {
				Status         string `json:"status"`
				AmountCaptured int64  `json:"amount_captured"`
			}
			_ = json.Unmarshal(ev.Data.Object, &obj)
			if s := snapshots[i]; s.status != "" && (obj.Status != s.status || obj.AmountCaptured != s.captured) {
				t.Errorf("event %s snapshot status %q captured %d; want %q and %d", ev.Type, obj.Status, obj.AmountCaptured, s.status, s.captured)
			}
		}
		var one event
		c.expect(http.StatusOK, &one, "GET", "/v1/events/"+story[2].ID, nil)
		if one.ID != story[2].ID || one.Type != "payment.captured" {
			t.Errorf("GET /v1/events/%s = %+v; want the payment.captured event", story[2].ID, one)
		}
	})

	t.Run("decline", func(t *testing.T) {
		c := c.on(t)
		tok := c.tokenize(cardDeclined, cvcA)
		var p payment
		r := c.expect(http.StatusOK, &p, "POST", "/v1/payments", paymentBody(tok.ID, 1500, "USD", "automatic"), idem("e2e-decline-1")...)
		if p.Status != "declined" || p.Failure == nil || p.Failure.Code != "card_declined" {
			t.Fatalf("declined payment = %s; want status declined with failure card_declined", r.Body)
		}
		c.expectError(http.StatusConflict, "invalid_state", "POST", "/v1/payments/"+p.ID+"/capture", map[string]any{})
	})

	t.Run("cancel", func(t *testing.T) {
		c := c.on(t)
		tok := c.tokenize(cardVisa, cvcA)
		var p payment
		c.expect(http.StatusOK, &p, "POST", "/v1/payments", paymentBody(tok.ID, 700, "JPY", "manual"), idem("e2e-cancel-1")...)
		if p.Status != "authorized" {
			t.Fatalf("manual payment status = %q; want authorized", p.Status)
		}
		var canceled payment
		c.expect(http.StatusOK, &canceled, "POST", "/v1/payments/"+p.ID+"/cancel", map[string]any{}, idem("e2e-cancel-2")...)
		if canceled.Status != "canceled" || canceled.AmountCapturable != 0 {
			t.Fatalf("cancel = %+v; want canceled with nothing capturable", canceled)
		}
		c.expectError(http.StatusConflict, "invalid_state", "POST", "/v1/payments/"+p.ID+"/capture", map[string]any{})
	})

	t.Run("card number with separators", func(t *testing.T) {
		c := c.on(t)
		// Whatever the API makes of it, the number must not come back.
		for _, n := range []string{"4242 4242 4242 4242", "4242-4242-4242-4242"} {
			r := c.do("POST", "/v1/tokens", cardBody(n, cvcA))
			if bytes.Contains(r.Body, []byte(n)) || bytes.Contains(r.Body, []byte(cardVisa)) {
				t.Errorf("POST /v1/tokens(%q) = %s; the number is echoed", n, r.Body)
			}
		}
		amex := c.tokenize(cardAmex, cvcAmex)
		if amex.Card.Brand != "amex" {
			t.Errorf("amex token brand = %q; want amex", amex.Card.Brand)
		}
		// A bad number is refused naming the parameter, not the value.
		r := c.expectError(http.StatusBadRequest, "validation_error", "POST", "/v1/tokens", cardBody("4242424242424241", cvcA))
		if r.ErrorParam() != "card[number]" || bytes.Contains(r.Body, []byte("4242424242424241")) {
			t.Errorf("bad number = %s; want param card[number] and no number", r.Body)
		}
	})

	t.Run("keys through the CLI while serving", func(t *testing.T) {
		c := c.on(t)
		out, _ := in.runCLI("merchants", "create", "--name", "Second shop")
		other := strings.TrimSpace(out)
		if !regexp.MustCompile(`^mrch_[0-9a-z]{26}$`).MatchString(other) {
			t.Fatalf("merchants create stdout = %q; want only a merchant id", out)
		}
		out, errOut := in.runCLI("keys", "create", "--merchant", other, "--mode", "test")
		otherKey := strings.TrimSpace(out)
		if !strings.HasPrefix(otherKey, "sk_test_") || strings.Contains(otherKey, "\n") {
			t.Fatalf("keys create stdout = %q; want only an sk_test_ key", out)
		}
		otherKeyID := keyIDRE.FindString(errOut)
		if otherKeyID == "" {
			t.Fatalf("keys create stderr = %q; want the key id", errOut)
		}
		oc := c.withKey(otherKey)
		var ps list[payment]
		oc.expect(http.StatusOK, &ps, "GET", "/v1/payments", nil)
		if len(ps.Data) != 0 {
			t.Errorf("another merchant lists %d payments; want 0", len(ps.Data))
		}
		// Another merchant's object answers exactly like a missing one.
		oc.expectError(http.StatusNotFound, "not_found", "GET", "/v1/payments/"+autoPay.ID, nil)

		out, _ = in.runCLI("keys", "create", "--merchant", first.MerchantID, "--mode", "live")
		liveKey := strings.TrimSpace(out)
		if !strings.HasPrefix(liveKey, "sk_live_") {
			t.Fatalf("keys create --mode live stdout = %q; want an sk_live_ key", out)
		}
		lc := c.withKey(liveKey)
		lc.expectError(http.StatusNotFound, "not_found", "GET", "/v1/payments/"+autoPay.ID, nil)
		liveTok := lc.tokenize(cardVisa, cvcA)
		if !liveTok.Livemode {
			t.Errorf("token made with a live key: livemode false; want true")
		}
		lc.expectError(http.StatusBadRequest, "idempotency_key_required", "POST", "/v1/payments",
			paymentBody(liveTok.ID, 100, "USD", "automatic"))

		out, _ = in.runCLI("keys", "create", "--platform", "--mode", "test")
		platformKey := strings.TrimSpace(out)
		if !strings.HasPrefix(platformKey, "sk_test_") {
			t.Fatalf("keys create --platform stdout = %q; want an sk_test_ key", out)
		}
		pc := c.withKey(platformKey)
		var viaPlatform payment
		pc.expect(http.StatusOK, &viaPlatform, "GET", "/v1/payments/"+autoPay.ID+"?merchant_id="+first.MerchantID, nil)
		if viaPlatform.ID != autoPay.ID {
			t.Errorf("platform GET = %+v; want %s", viaPlatform, autoPay.ID)
		}
		pc.expectError(http.StatusNotFound, "not_found", "GET", "/v1/payments/"+autoPay.ID+"?merchant_id="+other, nil)
		pc.expectError(http.StatusBadRequest, "validation_error", "GET", "/v1/payments/"+autoPay.ID, nil)

		in.runCLI("keys", "revoke", otherKeyID)
		oc.expectError(http.StatusUnauthorized, "auth_failed", "GET", "/v1/payments", nil)
		// The first key is untouched.
		c.expect(http.StatusOK, nil, "GET", "/v1/payments", nil)

		if _, _, err := in.tryCLI(nil, "keys", "create", "--merchant", other, "--mode", "staging"); err == nil {
			t.Errorf("keys create --mode staging succeeded; want an error")
		}
		if _, _, err := in.tryCLI(nil, "keys", "revoke", "key_00000000000000000000000000"); err == nil {
			t.Errorf("keys revoke of an unknown key succeeded; want an error")
		}
	})

	// Scanned twice: now, while the WAL and shared-memory files exist, and
	// after the last shutdown has checkpointed them into the main file.
	pans := []string{cardVisa, cardMastercard, cardDeclined, cardAmex}
	cvcs := []string{cvcA, cvcB, cvcAmex}
	t.Run("no card data while running", func(t *testing.T) {
		for _, f := range []string{"payloom.db", "payloom.db-wal", "payloom.db-shm"} {
			if _, err := os.Stat(filepath.Join(in.DataDir, f)); err != nil {
				t.Errorf("%s: %v; want it scanned", f, err)
			}
		}
		scanForCardData(t, in, pans, cvcs)
	})

	t.Run("restart", func(t *testing.T) {
		srv.Stop()
		srv2 := in.start(nil, "--log-level", "debug")
		if out := srv2.Stdout(); strings.Contains(out, "sk_") || strings.Contains(out, "Merchant ID") {
			t.Errorf("second start printed a key again:\n%s", out)
		}
		c := newClient(t, srv2.URL, first.Key)
		var p payment
		c.expect(http.StatusOK, &p, "GET", "/v1/payments/"+autoPay.ID, nil)
		if p.Status != "captured" || p.AmountCaptured != 2000 {
			t.Errorf("after restart payment = %+v; want captured 2000", p)
		}
		srv2.Stop()
	})

	t.Run("no card data at rest or in logs", func(t *testing.T) {
		scanForCardData(t, in, pans, cvcs)
	})

	out, _ := in.runCLI("version")
	if strings.TrimSpace(out) != "payloom e2e-test" {
		t.Errorf("payloom version = %q; want %q", out, "payloom e2e-test")
	}
}
