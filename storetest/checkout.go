package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/payloom/payloom"
)

// fullPage returns a payment page with every stored field set.
func fullPage(created time.Time) payloom.PaymentPage {
	return payloom.PaymentPage{
		ExpiresAt: ptr(created.Add(30*24*time.Hour + 7*time.Microsecond)),
		LineItems: []payloom.LineItem{
			{Description: "Ticket, \"front row\" — ünïcode", Amount: 6000, Quantity: 2},
			{Description: "Booking fee", Amount: 345, Quantity: 1},
		},
		SuccessURL:     "https://shop.example/paid?order=42",
		FailureURL:     "https://shop.example/failed",
		ReturnURL:      "https://shop.example/back",
		PageSecretHash: payloom.HashPageSecret("page-secret"),
		ReceiptSecret:  "receipt-secret",
		// Any ID: the store keeps it, it does not check it.
		ConfirmAttemptID: "att_01JCONFIRMED0000000000000",
	}
}

// The page fields round-trip; the composed URLs are never stored; nil and
// empty line items read back as written; a payment without a page reads
// back without one.
func testPaymentPage(t *testing.T, h *harness) {
	_, scope := h.merchant()
	full := newPayment(scope, at(0))
	full.PaymentPage = fullPage(at(0))
	empty := newPayment(scope, at(1))
	empty.LineItems = []payloom.LineItem{}
	withURLs := newPayment(scope, at(2))
	withURLs.PaymentURL = "https://pay.example/pay/x?s=secret"
	withURLs.ReceiptURL = "https://pay.example/receipts/x?s=secret"
	none := newPayment(scope, at(3))
	for _, p := range []*payloom.Payment{full, empty, withURLs, none} {
		h.createPayment(p)
	}
	wantURLs := *withURLs
	wantURLs.PaymentURL, wantURLs.ReceiptURL = "", ""
	h.view(func(tx payloom.Tx) error {
		for _, tt := range []struct {
			name string
			want *payloom.Payment
		}{{"full", full}, {"empty line items", empty}, {"composed URLs", &wantURLs}, {"no page", none}} {
			got, err := tx.GetPayment(h.ctx, scope, tt.want.ID)
			must(t, "GetPayment", err)
			checkDiff(t, "GetPayment("+tt.name+")", tt.want, got)
		}
		return nil
	})

	// UpdatePayment writes the page: changed, then removed.
	upd := *full
	upd.ExpiresAt = ptr(at(60))
	upd.LineItems = []payloom.LineItem{{Description: "One", Amount: 12345, Quantity: 1}}
	upd.PageSecretHash = payloom.HashPageSecret("rotated")
	upd.SuccessURL = ""
	upd.ConfirmAttemptID = "att_01JCONFIRMEDAGAIN000000000"
	h.update(func(tx payloom.Tx) error { return tx.UpdatePayment(h.ctx, &upd) })
	cleared := upd
	cleared.PaymentPage = payloom.PaymentPage{}
	for _, tt := range []struct {
		name string
		p    *payloom.Payment
	}{{"changed", &upd}, {"cleared", &cleared}} {
		if tt.name == "cleared" {
			h.update(func(tx payloom.Tx) error { return tx.UpdatePayment(h.ctx, &cleared) })
		}
		h.view(func(tx payloom.Tx) error {
			got, err := tx.GetPayment(h.ctx, scope, full.ID)
			must(t, "GetPayment", err)
			checkDiff(t, "GetPayment after UpdatePayment("+tt.name+")", tt.p, got)
			return nil
		})
	}
}

// FindPayment finds a payment in any scope, by ID alone.
func testFindPayment(t *testing.T, h *harness) {
	_, scope := h.merchant()
	test := newPayment(scope, at(0))
	test.PaymentPage = fullPage(at(0))
	live := newPayment(payloom.Scope{MerchantID: scope.MerchantID, Livemode: true}, at(1))
	other := newPayment(h.otherScopes(scope)[0], at(2))
	a := newAttempt(test, at(0))
	h.update(func(tx payloom.Tx) error {
		for _, p := range []*payloom.Payment{test, live, other} {
			if err := tx.CreatePayment(h.ctx, p); err != nil {
				return err
			}
		}
		return tx.CreateAttempt(h.ctx, a)
	})
	test.Attempts = []*payloom.Attempt{a}
	h.view(func(tx payloom.Tx) error {
		for _, want := range []*payloom.Payment{test, live, other} {
			got, err := tx.FindPayment(h.ctx, want.ID)
			must(t, "FindPayment", err)
			checkDiff(t, "FindPayment("+want.ID+")", want, got)
		}
		_, err := tx.FindPayment(h.ctx, payloom.NewID(payloom.PrefixPayment))
		wantCode(t, "FindPayment(unknown)", err, payloom.CodeNotFound)
		_, err = tx.FindPayment(h.ctx, "")
		wantCode(t, "FindPayment(empty)", err, payloom.CodeNotFound)
		return nil
	})
	// Inside an Update it locks the row like GetPayment: the payment it
	// returns can be updated in the same transaction.
	h.update(func(tx payloom.Tx) error {
		p, err := tx.FindPayment(h.ctx, live.ID)
		if err != nil {
			return err
		}
		p.Status = payloom.PaymentStatusExpired
		return tx.UpdatePayment(h.ctx, p)
	})
}

// ListExpiredPayments returns the unpaid payments of every scope whose
// expiry has come, earliest expiry first, and nothing else.
func testListExpiredPayments(t *testing.T, h *harness) {
	_, scope := h.merchant()
	other := h.otherScopes(scope)
	unpaid := func(s payloom.Scope, expires *time.Time) *payloom.Payment {
		p := newPayment(s, at(0))
		p.Status = payloom.PaymentStatusRequiresPaymentMethod
		p.ExpiresAt = expires
		return p
	}
	late := unpaid(scope, ptr(at(3)))
	first := unpaid(other[0], ptr(at(1)))
	exact := unpaid(other[1], ptr(at(5)))
	future := unpaid(scope, ptr(at(5).Add(time.Microsecond)))
	never := unpaid(scope, nil)
	paid := unpaid(scope, ptr(at(2)))
	paid.Status = payloom.PaymentStatusProcessing
	expired := unpaid(scope, ptr(at(2)))
	expired.Status = payloom.PaymentStatusExpired
	a := newAttempt(late, at(0))
	a.Status = payloom.AttemptStatusDeclined
	h.update(func(tx payloom.Tx) error {
		for _, p := range []*payloom.Payment{late, first, exact, future, never, paid, expired} {
			if err := tx.CreatePayment(h.ctx, p); err != nil {
				return err
			}
		}
		return tx.CreateAttempt(h.ctx, a)
	})
	late.Attempts = []*payloom.Attempt{a}

	tests := []struct {
		now   time.Time
		limit int
		want  []*payloom.Payment
	}{
		{at(5), 10, []*payloom.Payment{first, late, exact}},
		{at(5), 2, []*payloom.Payment{first, late}},
		{at(2), 10, []*payloom.Payment{first}},
		{at(0), 10, nil},
		{at(5), 0, nil},
	}
	for _, tt := range tests {
		h.view(func(tx payloom.Tx) error {
			got, err := tx.ListExpiredPayments(h.ctx, tt.now, tt.limit)
			must(t, "ListExpiredPayments", err)
			call := fmt.Sprintf("ListExpiredPayments(%s, %d)", tt.now.Format(time.TimeOnly), tt.limit)
			if got == nil {
				t.Errorf("%s = nil; want a non-nil slice", call)
			}
			if ids, want := paymentIDs(got), paymentIDs(tt.want); fmt.Sprint(ids) != fmt.Sprint(want) {
				t.Errorf("%s = %v; want %v", call, ids, want)
				return nil
			}
			for i := range got {
				checkDiff(t, call, tt.want[i], got[i])
			}
			return nil
		})
	}
}
