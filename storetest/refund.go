package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/payloom/payloom"
)

// capturedPayment stores a captured payment in scope for refunds to hang on.
func (h *harness) capturedPayment(scope payloom.Scope, created time.Time) *payloom.Payment {
	h.t.Helper()
	p := newPayment(scope, created)
	p.Status, p.AmountCaptured = payloom.PaymentStatusCaptured, p.Amount
	return h.createPayment(p)
}

func testCreateRefund(t *testing.T, h *harness) {
	_, scope := h.merchant()
	p := h.capturedPayment(scope, at(0))
	full := newRefund(p, at(1))
	full.Amount, full.Status, full.Reason = 250, payloom.RefundStatusFailed, payloom.RefundReasonRequestedByCustomer
	full.TransactionID = "txn_re"
	full.Failure = &payloom.Failure{Code: payloom.FailureProcessingError, Message: "processor down"}
	full.Metadata = map[string]string{"ticket": "T-1"}
	full.UpdatedAt = at(2).Add(time.Microsecond)
	full.Version = 2
	minimal := newRefund(p, at(3).In(time.FixedZone("UTC+1", 3600)))
	minimal.Metadata, minimal.UpdatedAt, minimal.CreationKey = nil, time.Time{}, ""
	h.update(func(tx payloom.Tx) error {
		if err := tx.CreateRefund(h.ctx, full); err != nil {
			return err
		}
		return tx.CreateRefund(h.ctx, minimal)
	})
	wantMinimal := *minimal
	wantMinimal.Metadata = map[string]string{}
	others := h.otherScopes(scope)
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetRefund(h.ctx, scope, full.ID)
		must(t, "GetRefund", err)
		checkDiff(t, "GetRefund(full)", full, got)
		got, err = tx.GetRefund(h.ctx, scope, minimal.ID)
		must(t, "GetRefund", err)
		checkDiff(t, "GetRefund(minimal)", &wantMinimal, got)
		for _, o := range others {
			_, err := tx.GetRefund(h.ctx, o, full.ID)
			wantCode(t, fmt.Sprintf("GetRefund(other scope %+v)", o), err, payloom.CodeNotFound)
		}
		_, err = tx.GetRefund(h.ctx, scope, payloom.NewID(payloom.PrefixRefund))
		wantCode(t, "GetRefund(unknown)", err, payloom.CodeNotFound)
		return nil
	})

	sameID := newRefund(p, at(4))
	sameID.ID = full.ID
	err := h.tryUpdate(func(tx payloom.Tx) error { return tx.CreateRefund(h.ctx, sameID) })
	wantCode(t, "CreateRefund(same ID)", err, payloom.CodeAlreadyExists)
	sameKey := newRefund(p, at(4))
	sameKey.CreationKey = full.CreationKey
	err = h.tryUpdate(func(tx payloom.Tx) error { return tx.CreateRefund(h.ctx, sameKey) })
	wantCode(t, "CreateRefund(same CreationKey)", err, payloom.CodeAlreadyExists)
	noKey := newRefund(p, at(4))
	noKey.CreationKey = ""
	err = h.tryUpdate(func(tx payloom.Tx) error { return tx.CreateRefund(h.ctx, noKey) })
	wantCode(t, "CreateRefund(second empty CreationKey)", err, "")
}

func testGetRefundByCreationKey(t *testing.T, h *harness) {
	_, scope := h.merchant()
	p := h.capturedPayment(scope, at(0))
	r := newRefund(p, at(1))
	h.update(func(tx payloom.Tx) error { return tx.CreateRefund(h.ctx, r) })
	others := h.otherScopes(scope)
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetRefundByCreationKey(h.ctx, scope, r.CreationKey)
		must(t, "GetRefundByCreationKey", err)
		checkDiff(t, "GetRefundByCreationKey", r, got)
		for _, o := range others {
			_, err := tx.GetRefundByCreationKey(h.ctx, o, r.CreationKey)
			wantCode(t, fmt.Sprintf("GetRefundByCreationKey(other scope %+v)", o), err, payloom.CodeNotFound)
		}
		_, err = tx.GetRefundByCreationKey(h.ctx, scope, "op_unknown")
		wantCode(t, "GetRefundByCreationKey(unknown)", err, payloom.CodeNotFound)
		return nil
	})
}

func testUpdateRefund(t *testing.T, h *harness) {
	_, scope := h.merchant()
	p := h.capturedPayment(scope, at(0))
	r := newRefund(p, at(1))
	h.update(func(tx payloom.Tx) error { return tx.CreateRefund(h.ctx, r) })

	upd := *r
	upd.Status, upd.TransactionID = payloom.RefundStatusFailed, "txn_r"
	upd.Failure = &payloom.Failure{Code: payloom.FailureProcessingError, DeclineCode: "x", Message: "boom"}
	upd.Metadata = map[string]string{"k": "v"}
	upd.UpdatedAt = at(2).Add(5 * time.Microsecond)
	h.update(func(tx payloom.Tx) error { return tx.UpdateRefund(h.ctx, &upd) })
	if upd.Version != r.Version+1 {
		t.Errorf("UpdateRefund: Version = %d; want %d", upd.Version, r.Version+1)
	}
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetRefund(h.ctx, scope, r.ID)
		must(t, "GetRefund", err)
		checkDiff(t, "GetRefund after UpdateRefund", &upd, got)
		return nil
	})

	clear := upd
	clear.Status, clear.Failure, clear.Metadata = payloom.RefundStatusSucceeded, nil, nil
	h.update(func(tx payloom.Tx) error { return tx.UpdateRefund(h.ctx, &clear) })
	want := clear
	want.Metadata = map[string]string{}
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetRefund(h.ctx, scope, r.ID)
		must(t, "GetRefund", err)
		checkDiff(t, "GetRefund after clearing UpdateRefund", &want, got)
		return nil
	})

	stale := upd
	stale.Status = payloom.RefundStatusPending
	err := h.tryUpdate(func(tx payloom.Tx) error { return tx.UpdateRefund(h.ctx, &stale) })
	wantCode(t, "UpdateRefund(stale Version)", err, payloom.CodeConflict)
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetRefund(h.ctx, scope, r.ID)
		must(t, "GetRefund", err)
		if got.Status != clear.Status || got.Version != clear.Version {
			t.Errorf("GetRefund after a conflict = %q v%d; want %q v%d", got.Status, got.Version, clear.Status, clear.Version)
		}
		return nil
	})
	for _, o := range h.otherScopes(scope) {
		q := clear
		q.MerchantID, q.Livemode = o.MerchantID, o.Livemode
		err := h.tryUpdate(func(tx payloom.Tx) error { return tx.UpdateRefund(h.ctx, &q) })
		wantCode(t, fmt.Sprintf("UpdateRefund(other scope %+v)", o), err, payloom.CodeNotFound)
	}
	ghost := clear
	ghost.ID = payloom.NewID(payloom.PrefixRefund)
	err = h.tryUpdate(func(tx payloom.Tx) error { return tx.UpdateRefund(h.ctx, &ghost) })
	wantCode(t, "UpdateRefund(unknown)", err, payloom.CodeNotFound)
}

func testListStaleRefunds(t *testing.T, h *harness) {
	_, scope := h.merchant()
	other := h.otherScopes(scope)[0]
	cutoff := at(10)
	p := h.capturedPayment(scope, at(0))
	q := h.capturedPayment(other, at(0))
	var stale []*payloom.Refund
	h.update(func(tx payloom.Tx) error {
		for _, f := range []struct {
			p       *payloom.Payment
			status  payloom.RefundStatus
			created time.Time
			stale   bool
		}{
			{p, payloom.RefundStatusPending, at(1), true},
			{p, payloom.RefundStatusSucceeded, at(2), false},
			{q, payloom.RefundStatusPending, at(3), true}, // any scope
			{p, payloom.RefundStatusFailed, at(4), false},
			{p, payloom.RefundStatusPending, at(5), true},
			{p, payloom.RefundStatusPending, cutoff, false}, // strictly before
			{p, payloom.RefundStatusPending, at(12), false},
		} {
			r := newRefund(f.p, f.created)
			r.Status = f.status
			if err := tx.CreateRefund(h.ctx, r); err != nil {
				return err
			}
			if f.stale {
				stale = append(stale, r)
			}
		}
		return nil
	})
	tests := []struct {
		before time.Time
		limit  int
		want   []*payloom.Refund
	}{
		{cutoff, 100, stale},
		{cutoff, 2, stale[:2]},
		{at(1), 100, nil},
		{at(3).Add(time.Microsecond), 100, stale[:2]},
	}
	h.view(func(tx payloom.Tx) error {
		for _, tt := range tests {
			got, err := tx.ListStaleRefunds(h.ctx, tt.before, tt.limit)
			must(t, "ListStaleRefunds", err)
			call := fmt.Sprintf("ListStaleRefunds(%s, %d)", tt.before.Format(time.RFC3339Nano), tt.limit)
			if len(got) != len(tt.want) {
				t.Errorf("%s returned %v; want %v", call, ids(got, refundID), ids(tt.want, refundID))
				continue
			}
			for i := range got {
				checkDiff(t, fmt.Sprintf("%s[%d]", call, i), tt.want[i], got[i])
			}
		}
		return nil
	})
}

func testCreateEvent(t *testing.T, h *harness) {
	_, scope := h.merchant()
	ev := newEvent(scope, payloom.EventRefundSucceeded, "re_1", at(0).In(time.FixedZone("UTC-7", -7*3600)))
	h.update(func(tx payloom.Tx) error { return tx.CreateEvent(h.ctx, ev) })
	others := h.otherScopes(scope)
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetEvent(h.ctx, scope, ev.ID)
		must(t, "GetEvent", err)
		normalizeEventData(t, got)
		checkDiff(t, "GetEvent", ev, got)
		for _, o := range others {
			_, err := tx.GetEvent(h.ctx, o, ev.ID)
			wantCode(t, fmt.Sprintf("GetEvent(other scope %+v)", o), err, payloom.CodeNotFound)
		}
		_, err = tx.GetEvent(h.ctx, scope, payloom.NewID(payloom.PrefixEvent))
		wantCode(t, "GetEvent(unknown)", err, payloom.CodeNotFound)
		return nil
	})
	err := h.tryUpdate(func(tx payloom.Tx) error { return tx.CreateEvent(h.ctx, ev) })
	wantCode(t, "CreateEvent(same ID)", err, payloom.CodeAlreadyExists)
}

// normalizeEventData rewrites ev.Data.Object in canonical JSON form (the
// form newEvent writes), since a store may keep JSON as a parsed value.
func normalizeEventData(t *testing.T, ev *payloom.Event) {
	t.Helper()
	var v any
	if err := json.Unmarshal(ev.Data.Object, &v); err != nil {
		t.Errorf("event %s: Data.Object %q is not JSON: %v", ev.ID, ev.Data.Object, err)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	ev.Data.Object = b
}
