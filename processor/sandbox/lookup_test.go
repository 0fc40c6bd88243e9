package sandbox

import (
	"testing"

	"github.com/payloom/payloom"
)

// TestLookup covers what the contract suite does not: the refusals of
// Lookup, and an authorization that was partially captured, voided or
// declined, read back from a restarted processor on the same store.
func TestLookup(t *testing.T) {
	p, _ := newProcessor(t, Options{})
	if _, err := p.Lookup(ctxBg, &payloom.LookupRequest{}); !payloom.IsCode(err, payloom.CodeValidation) {
		t.Errorf("Lookup(no key) = %v; want %s", err, payloom.CodeValidation)
	}
	auth := authorize(t, p, authReq("att_l1", CardVisa, 1000, false))
	if _, err := p.Capture(ctxBg, &payloom.CaptureRequest{IdempotencyKey: "cap_l1", TransactionID: auth.TransactionID,
		Amount: 600, Currency: "USD"}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Lookup(ctxBg, &payloom.LookupRequest{IdempotencyKey: "cap_l1"}); !payloom.IsCode(err, payloom.CodeValidation) {
		t.Errorf("Lookup(a capture's key) = %v; want %s", err, payloom.CodeValidation)
	}
	voided := authorize(t, p, authReq("att_l2", CardVisa, 1000, false))
	if _, err := p.Void(ctxBg, &payloom.VoidRequest{IdempotencyKey: "void_l2", TransactionID: voided.TransactionID}); err != nil {
		t.Fatal(err)
	}
	authorize(t, p, authReq("att_l3", CardInsufficientFunds, 1000, true))

	restarted := New(p.store, Options{Clock: fixedClock})
	tests := []struct {
		key            string
		status         payloom.AuthorizationStatus
		captured       int64
		voided         bool
		class, decline string
	}{
		{"att_l1", payloom.AuthorizationApproved, 600, false, "", ""},
		{"att_l2", payloom.AuthorizationApproved, 0, true, "", ""},
		{"att_l3", payloom.AuthorizationDeclined, 0, false, string(payloom.DeclineHard), payloom.DeclineInsufficientFunds},
	}
	for _, tt := range tests {
		res, err := restarted.Lookup(ctxBg, &payloom.LookupRequest{IdempotencyKey: tt.key})
		if err != nil || !res.Found {
			t.Fatalf("Lookup(%s) = %+v, %v; want found", tt.key, res, err)
		}
		if res.Result.Status != tt.status || res.AmountCaptured != tt.captured || res.Captured != (tt.captured > 0) ||
			res.Voided != tt.voided || string(res.Result.DeclineClass) != tt.class || res.Result.DeclineCode != tt.decline {
			t.Errorf("Lookup(%s) = %s captured %v/%d voided %v %s/%s; want %s %d %v %s/%s", tt.key, res.Result.Status,
				res.Captured, res.AmountCaptured, res.Voided, res.Result.DeclineClass, res.Result.DeclineCode,
				tt.status, tt.captured, tt.voided, tt.class, tt.decline)
		}
	}
	caps := p.Capabilities()
	if !caps.Lookup || !caps.ManualCapture || !caps.PartialCapture || !caps.PartialRefund || !caps.ThreeDS {
		t.Errorf("Capabilities() = %+v; want manual and partial capture, partial refund, 3-D Secure and Lookup", caps)
	}
}
