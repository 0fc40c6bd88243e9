package payloom_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"testing"

	"github.com/payloom/payloom"
)

func TestNewIDSortsByCreation(t *testing.T) {
	ids := make([]string, 5000)
	for i := range ids {
		ids[i] = payloom.NewID(payloom.PrefixPayment)
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatal("NewID values are not strictly increasing within a process")
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("NewID returned %q twice", id)
		}
		seen[id] = true
		if !payloom.HasPrefix(id, payloom.PrefixPayment) || len(id) != len("pay_")+26 {
			t.Fatalf("NewID(pay) = %q; want pay_ + 26 chars", id)
		}
	}
}

func TestHasPrefix(t *testing.T) {
	tests := []struct {
		id, prefix string
		want       bool
	}{
		{"pay_01abc", "pay", true}, {"pay_", "pay", false}, {"payx_1", "pay", false},
		{"tok_1", "pay", false}, {"", "pay", false},
	}
	for _, tt := range tests {
		if got := payloom.HasPrefix(tt.id, tt.prefix); got != tt.want {
			t.Errorf("HasPrefix(%q, %q) = %v; want %v", tt.id, tt.prefix, got, tt.want)
		}
	}
}

func TestSecretRedacts(t *testing.T) {
	const pan = "4242424242424242"
	card := payloom.CardInput{Number: pan, CVC: "737", ExpMonth: 12, ExpYear: 2030}
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	logger.Info("card", "card", card, "number", card.Number, "data", payloom.CardData{Number: pan, CVC: "737"})
	js, err := json.Marshal(card)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", card),
		"%+v":  fmt.Sprintf("%+v", card),
		"%#v":  fmt.Sprintf("%#v", card),
		"%s":   fmt.Sprintf("%s", card.Number),
		"json": string(js),
		"slog": logs.String(),
	}
	for name, out := range outputs {
		if strings.Contains(out, pan) || strings.Contains(out, "737") {
			t.Errorf("%s output reveals the secret: %s", name, out)
		}
		if !strings.Contains(out, "REDACTED") {
			t.Errorf("%s output = %s; want [REDACTED]", name, out)
		}
	}
	if card.Number.Reveal() != pan {
		t.Errorf("Reveal() = %q; want the number", card.Number.Reveal())
	}
	var back payloom.CardInput
	if err := json.Unmarshal([]byte(`{"number":"4242424242424242","cvc":"737"}`), &back); err != nil || back.Number.Reveal() != pan || back.CVC.Reveal() != "737" {
		t.Errorf("json.Unmarshal into Secret = %v; want the value decoded", err)
	}
}

func TestErrorHelpers(t *testing.T) {
	fe := payloom.FieldError("amount", "must be at least %d", 1)
	wrapped := fmt.Errorf("context: %w", fe)
	tests := []struct {
		err              error
		code, msg, param string
	}{
		{nil, "", "", ""},
		{fe, payloom.CodeValidation, "must be at least 1", "amount"},
		{wrapped, payloom.CodeValidation, "must be at least 1", "amount"},
		{errors.New("disk on fire"), payloom.CodeInternal, "internal error", ""},
		{payloom.Errorf(payloom.CodeNotFound, "no such payment: %s", "pay_1"), payloom.CodeNotFound, "no such payment: pay_1", ""},
	}
	for _, tt := range tests {
		if got := payloom.ErrorCode(tt.err); got != tt.code {
			t.Errorf("ErrorCode(%v) = %q; want %q", tt.err, got, tt.code)
		}
		if got := payloom.ErrorMessage(tt.err); got != tt.msg {
			t.Errorf("ErrorMessage(%v) = %q; want %q", tt.err, got, tt.msg)
		}
		if got := payloom.ErrorParam(tt.err); got != tt.param {
			t.Errorf("ErrorParam(%v) = %q; want %q", tt.err, got, tt.param)
		}
	}
	inner := errors.New("cause")
	e := &payloom.Error{Code: payloom.CodeInternal, Message: "m", Err: inner}
	if !errors.Is(e, inner) {
		t.Error("errors.Is(Error{Err: cause}, cause) = false; want true")
	}
}

func TestPaymentStatus(t *testing.T) {
	final := map[payloom.PaymentStatus]bool{
		payloom.PaymentStatusCaptured: true, payloom.PaymentStatusDeclined: true, payloom.PaymentStatusFailed: true,
		payloom.PaymentStatusCanceled: true, payloom.PaymentStatusExpired: true,
	}
	for _, s := range payloom.PaymentStatuses {
		if !s.Valid() {
			t.Errorf("%q.Valid() = false", s)
		}
		if s.Final() != final[s] {
			t.Errorf("%q.Final() = %v; want %v", s, s.Final(), final[s])
		}
	}
	if payloom.PaymentStatus("succeeded").Valid() {
		t.Error(`PaymentStatus("succeeded").Valid() = true; want false`)
	}
}

func TestNewEventSnapshots(t *testing.T) {
	p := &payloom.Payment{ID: "pay_1", Object: "payment", Amount: 100, Currency: "USD", Status: payloom.PaymentStatusAuthorized}
	ev, err := payloom.NewEvent(payloom.Scope{MerchantID: "mrch_1"}, payloom.EventPaymentAuthorized, p.ID, p, p.CreatedAt)
	if err != nil {
		t.Fatal(err)
	}
	p.Status = payloom.PaymentStatusCaptured // later changes must not alter the snapshot
	var snap payloom.Payment
	if err := json.Unmarshal(ev.Data.Object, &snap); err != nil {
		t.Fatal(err)
	}
	if snap.Status != payloom.PaymentStatusAuthorized || ev.ObjectID != "pay_1" || !payloom.HasPrefix(ev.ID, payloom.PrefixEvent) {
		t.Errorf("NewEvent snapshot = %+v (event %s, object %s); want authorized snapshot of pay_1", snap, ev.ID, ev.ObjectID)
	}
}
