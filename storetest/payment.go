package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/payloom/payloom"
)

func testCreatePayment(t *testing.T, h *harness) {
	_, scope := h.merchant()
	full := fullPayment(scope, at(0))
	// A minimal payment: nil pointers, nil metadata, zero times.
	minimal := newPayment(scope, at(1).In(time.FixedZone("UTC-3", -3*3600)))
	minimal.Metadata = nil
	minimal.Attempts = nil
	minimal.UpdatedAt = time.Time{}
	minimal.CreationKey = ""
	live := fullPayment(payloom.Scope{MerchantID: scope.MerchantID, Livemode: true}, at(2))
	for _, p := range []*payloom.Payment{full, minimal, live} {
		h.createPayment(p)
	}
	wantMinimal := *minimal
	wantMinimal.Metadata = map[string]string{}
	wantMinimal.Attempts = []*payloom.Attempt{}

	others := h.otherScopes(scope)
	h.view(func(tx payloom.Tx) error {
		for _, tt := range []struct {
			name string
			want *payloom.Payment
		}{{"full", full}, {"minimal", &wantMinimal}, {"livemode", live}} {
			got, err := tx.GetPayment(h.ctx, tt.want.Scope(), tt.want.ID)
			must(t, "GetPayment", err)
			checkDiff(t, "GetPayment("+tt.name+")", tt.want, got)
		}
		for _, o := range others {
			_, err := tx.GetPayment(h.ctx, o, full.ID)
			wantCode(t, fmt.Sprintf("GetPayment(other scope %+v)", o), err, payloom.CodeNotFound)
			o.Livemode = !o.Livemode
			_, err = tx.GetPayment(h.ctx, o, live.ID)
			wantCode(t, fmt.Sprintf("GetPayment(live payment, other scope %+v)", o), err, payloom.CodeNotFound)
		}
		_, err := tx.GetPayment(h.ctx, scope, payloom.NewID(payloom.PrefixPayment))
		wantCode(t, "GetPayment(unknown)", err, payloom.CodeNotFound)
		return nil
	})

	tests := []struct {
		name string
		p    func() *payloom.Payment
		code string
	}{
		{"same ID", func() *payloom.Payment {
			p := newPayment(scope, at(3))
			p.ID = full.ID
			return p
		}, payloom.CodeAlreadyExists},
		{"same CreationKey in scope", func() *payloom.Payment {
			p := newPayment(scope, at(3))
			p.CreationKey = full.CreationKey
			return p
		}, payloom.CodeAlreadyExists},
		{"same CreationKey in another mode", func() *payloom.Payment {
			p := newPayment(payloom.Scope{MerchantID: scope.MerchantID, Livemode: true}, at(3))
			p.CreationKey = full.CreationKey
			return p
		}, ""},
		{"same CreationKey for another merchant", func() *payloom.Payment {
			p := newPayment(others[0], at(3))
			p.CreationKey = full.CreationKey
			return p
		}, ""},
		{"second empty CreationKey", func() *payloom.Payment {
			p := newPayment(scope, at(3))
			p.CreationKey = ""
			return p
		}, ""},
	}
	for _, tt := range tests {
		err := h.tryUpdate(func(tx payloom.Tx) error { return tx.CreatePayment(h.ctx, tt.p()) })
		wantCode(t, "CreatePayment("+tt.name+")", err, tt.code)
	}
}

func testGetPaymentByCreationKey(t *testing.T, h *harness) {
	_, scope := h.merchant()
	p := newPayment(scope, at(0))
	a := newAttempt(p, at(0))
	h.update(func(tx payloom.Tx) error {
		if err := tx.CreatePayment(h.ctx, p); err != nil {
			return err
		}
		return tx.CreateAttempt(h.ctx, a)
	})
	p.Attempts = []*payloom.Attempt{a}
	others := h.otherScopes(scope)
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetPaymentByCreationKey(h.ctx, scope, p.CreationKey)
		must(t, "GetPaymentByCreationKey", err)
		checkDiff(t, "GetPaymentByCreationKey", p, got)
		for _, o := range others {
			_, err := tx.GetPaymentByCreationKey(h.ctx, o, p.CreationKey)
			wantCode(t, fmt.Sprintf("GetPaymentByCreationKey(other scope %+v)", o), err, payloom.CodeNotFound)
		}
		_, err = tx.GetPaymentByCreationKey(h.ctx, scope, "op_unknown")
		wantCode(t, "GetPaymentByCreationKey(unknown)", err, payloom.CodeNotFound)
		return nil
	})
}

func testUpdatePayment(t *testing.T, h *harness) {
	_, scope := h.merchant()
	p := newPayment(scope, at(0))
	a := newAttempt(p, at(0))
	h.update(func(tx payloom.Tx) error {
		if err := tx.CreatePayment(h.ctx, p); err != nil {
			return err
		}
		return tx.CreateAttempt(h.ctx, a)
	})

	// Every mutable field changes; attempts are not UpdatePayment's.
	upd := fullPayment(scope, at(0))
	upd.ID, upd.CreationKey, upd.Version = p.ID, p.CreationKey, p.Version
	upd.Attempts = nil
	h.update(func(tx payloom.Tx) error { return tx.UpdatePayment(h.ctx, upd) })
	if upd.Version != p.Version+1 {
		t.Errorf("UpdatePayment: Version = %d; want %d", upd.Version, p.Version+1)
	}
	want := *upd
	want.Attempts = []*payloom.Attempt{a}
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetPayment(h.ctx, scope, p.ID)
		must(t, "GetPayment", err)
		checkDiff(t, "GetPayment after UpdatePayment", &want, got)
		return nil
	})

	// Back to nil pointers, nil metadata and zero times.
	clear := *upd
	clear.PaymentMethod, clear.Processor, clear.NextAction, clear.Failure = nil, nil, nil, nil
	clear.Metadata = nil
	clear.PendingAction, clear.PendingActionKey, clear.PendingAmount, clear.PendingSince = "", "", 0, time.Time{}
	clear.Status = payloom.PaymentStatusCaptured
	h.update(func(tx payloom.Tx) error { return tx.UpdatePayment(h.ctx, &clear) })
	want = clear
	want.Metadata = map[string]string{}
	want.Attempts = []*payloom.Attempt{a}
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetPayment(h.ctx, scope, p.ID)
		must(t, "GetPayment", err)
		checkDiff(t, "GetPayment after clearing UpdatePayment", &want, got)
		return nil
	})

	// A stale Version conflicts and writes nothing.
	stale := *upd // upd.Version is one behind clear.Version
	stale.Status = payloom.PaymentStatusFailed
	err := h.tryUpdate(func(tx payloom.Tx) error { return tx.UpdatePayment(h.ctx, &stale) })
	wantCode(t, "UpdatePayment(stale Version)", err, payloom.CodeConflict)
	if stale.Version != upd.Version {
		t.Errorf("UpdatePayment(stale Version) changed Version to %d; want %d", stale.Version, upd.Version)
	}
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetPayment(h.ctx, scope, p.ID)
		must(t, "GetPayment", err)
		if got.Status != clear.Status || got.Version != clear.Version {
			t.Errorf("GetPayment after a conflict = %q v%d; want %q v%d", got.Status, got.Version, clear.Status, clear.Version)
		}
		return nil
	})

	// Unknown payments, and payments of another scope, are not found.
	for _, o := range h.otherScopes(scope) {
		q := clear
		q.MerchantID, q.Livemode = o.MerchantID, o.Livemode
		err := h.tryUpdate(func(tx payloom.Tx) error { return tx.UpdatePayment(h.ctx, &q) })
		wantCode(t, fmt.Sprintf("UpdatePayment(other scope %+v)", o), err, payloom.CodeNotFound)
	}
	ghost := clear
	ghost.ID = payloom.NewID(payloom.PrefixPayment)
	err = h.tryUpdate(func(tx payloom.Tx) error { return tx.UpdatePayment(h.ctx, &ghost) })
	wantCode(t, "UpdatePayment(unknown)", err, payloom.CodeNotFound)
}

func testCreateAttempt(t *testing.T, h *harness) {
	_, scope := h.merchant()
	p := h.createPayment(newPayment(scope, at(0)))
	completed := at(2).Add(250 * time.Microsecond)
	// IDs in one order, creation in another: attempts come back in
	// creation order (CreatedAt, which is also the insertion order here),
	// not ID order.
	x, y, z := newAttempt(p, at(2)), newAttempt(p, at(0)), newAttempt(p, at(1))
	y.Status, y.Code, y.DeclineCode = payloom.AttemptStatusDeclined, payloom.FailureCardDeclined, payloom.DeclineFraudulent
	y.Message, y.RawCode, y.TransactionID = "Do not honor", "05", "txn_a"
	y.DurationMS, y.CompletedAt = 1234, &completed
	z.Status, z.LateCheck, z.LateCheckAt = payloom.AttemptStatusFailed, payloom.LateCheckWatching, at(5).Add(7*time.Microsecond)
	as := []*payloom.Attempt{y, z, x}
	h.update(func(tx payloom.Tx) error {
		for _, a := range as {
			if err := tx.CreateAttempt(h.ctx, a); err != nil {
				return err
			}
		}
		return nil
	})
	p.Attempts = as
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetPayment(h.ctx, scope, p.ID)
		must(t, "GetPayment", err)
		checkDiff(t, "GetPayment attempts", p, got)
		return nil
	})
	err := h.tryUpdate(func(tx payloom.Tx) error { return tx.CreateAttempt(h.ctx, as[1]) })
	wantCode(t, "CreateAttempt(same ID)", err, payloom.CodeAlreadyExists)
}

func testUpdateAttempt(t *testing.T, h *harness) {
	_, scope := h.merchant()
	p := h.createPayment(newPayment(scope, at(0)))
	a := newAttempt(p, at(0))
	h.update(func(tx payloom.Tx) error { return tx.CreateAttempt(h.ctx, a) })
	completed := at(1).Add(999 * time.Microsecond)
	a.Status, a.Code, a.DeclineCode, a.Message = payloom.AttemptStatusAuthorized, "c", "d", "approved"
	a.RawCode, a.TransactionID, a.DurationMS, a.CompletedAt = "00", "txn_9", 87, &completed
	a.LateCheck, a.LateCheckAt = payloom.LateCheckVoidPending, at(3).Add(time.Microsecond)
	h.update(func(tx payloom.Tx) error { return tx.UpdateAttempt(h.ctx, a) })
	p.Attempts = []*payloom.Attempt{a}
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetPayment(h.ctx, scope, p.ID)
		must(t, "GetPayment", err)
		checkDiff(t, "GetPayment after UpdateAttempt", p, got)
		return nil
	})
	// The watch ends: LateCheckAt back to zero.
	a.Status, a.LateCheck, a.LateCheckAt = payloom.AttemptStatusVoidedLate, payloom.LateCheckDone, time.Time{}
	h.update(func(tx payloom.Tx) error { return tx.UpdateAttempt(h.ctx, a) })
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetPayment(h.ctx, scope, p.ID)
		must(t, "GetPayment", err)
		checkDiff(t, "GetPayment after ending the late check", p, got)
		return nil
	})
	ghost := *a
	ghost.ID = payloom.NewID(payloom.PrefixAttempt)
	err := h.tryUpdate(func(tx payloom.Tx) error { return tx.UpdateAttempt(h.ctx, &ghost) })
	wantCode(t, "UpdateAttempt(unknown)", err, payloom.CodeNotFound)
}

func testListStalePayments(t *testing.T, h *harness) {
	_, scope := h.merchant()
	other := h.otherScopes(scope)[0]
	cutoff := at(10)

	type fixture struct {
		name    string
		scope   payloom.Scope
		attempt *payloom.AttemptStatus // an attempt created at created
		pending string                 // pending action claimed at created
		recent  bool                   // created after the cutoff
		stale   bool
	}
	pending, authorized := payloom.AttemptStatusPending, payloom.AttemptStatusAuthorized
	fixtures := []fixture{
		{name: "pending attempt", scope: scope, attempt: &pending, stale: true},
		{name: "completed attempt", scope: scope, attempt: &authorized},
		{name: "pending capture", scope: scope, pending: payloom.PendingActionCapture, stale: true},
		{name: "other scope", scope: other, attempt: &pending, stale: true},
		{name: "both", scope: scope, attempt: &pending, pending: payloom.PendingActionCancel, stale: true},
		{name: "no work", scope: scope},
		{name: "recent pending attempt", scope: scope, attempt: &pending, recent: true},
		{name: "recent pending cancel", scope: scope, pending: payloom.PendingActionCancel, recent: true},
	}
	var stale []*payloom.Payment
	h.update(func(tx payloom.Tx) error {
		for i, f := range fixtures {
			created := at(i)
			if f.recent {
				created = cutoff.Add(time.Duration(i) * time.Second)
			}
			p := newPayment(f.scope, created)
			if f.pending != "" {
				p.PendingAction, p.PendingActionKey, p.PendingSince = f.pending, payloom.NewID("op"), created
			}
			if err := tx.CreatePayment(h.ctx, p); err != nil {
				return err
			}
			if f.attempt != nil {
				a := newAttempt(p, created)
				a.Status = *f.attempt
				if err := tx.CreateAttempt(h.ctx, a); err != nil {
					return err
				}
				p.Attempts = append(p.Attempts, a)
			}
			if f.stale {
				stale = append(stale, p)
			}
		}
		return nil
	})

	tests := []struct {
		before time.Time
		limit  int
		want   []*payloom.Payment
	}{
		{cutoff, 100, stale},
		{cutoff, 2, stale[:2]},
		{at(0), 100, nil}, // strictly before
		{at(0).Add(time.Microsecond), 100, stale[:1]},
	}
	h.view(func(tx payloom.Tx) error {
		for _, tt := range tests {
			got, err := tx.ListStalePayments(h.ctx, tt.before, tt.limit)
			must(t, "ListStalePayments", err)
			call := fmt.Sprintf("ListStalePayments(%s, %d)", tt.before.Format(time.RFC3339Nano), tt.limit)
			if len(got) != len(tt.want) {
				t.Errorf("%s returned %d payments %v; want %d %v", call, len(got), paymentIDs(got), len(tt.want), paymentIDs(tt.want))
				continue
			}
			for i := range got {
				checkDiff(t, fmt.Sprintf("%s[%d]", call, i), tt.want[i], got[i])
			}
		}
		return nil
	})
}

// testListLateCheckPayments: payments with an attempt whose late check is
// due, in any scope, oldest payment first, each once, with its attempts.
func testListLateCheckPayments(t *testing.T, h *harness) {
	_, scope := h.merchant()
	other := h.otherScopes(scope)[0]
	due := at(10)

	type fixture struct {
		name   string
		scope  payloom.Scope
		checks []time.Time // one failed attempt per entry, with that LateCheckAt
		listed bool
	}
	fixtures := []fixture{
		{name: "due", scope: scope, checks: []time.Time{at(9)}, listed: true},
		{name: "due exactly", scope: scope, checks: []time.Time{due}, listed: true},
		{name: "not yet due", scope: scope, checks: []time.Time{due.Add(time.Microsecond)}},
		{name: "watch ended", scope: scope, checks: []time.Time{{}}},
		{name: "other scope", scope: other, checks: []time.Time{at(1)}, listed: true},
		{name: "two due attempts", scope: scope, checks: []time.Time{at(2), at(3)}, listed: true},
		{name: "one due of two", scope: scope, checks: []time.Time{{}, at(4)}, listed: true},
		{name: "no attempt", scope: scope},
	}
	var listed []*payloom.Payment
	h.update(func(tx payloom.Tx) error {
		for i, f := range fixtures {
			p := newPayment(f.scope, at(i))
			p.Status = payloom.PaymentStatusFailed
			if err := tx.CreatePayment(h.ctx, p); err != nil {
				return err
			}
			for j, c := range f.checks {
				a := newAttempt(p, at(i).Add(time.Duration(j)*time.Second))
				a.Status, a.LateCheck, a.LateCheckAt = payloom.AttemptStatusFailed, payloom.LateCheckWatching, c
				if c.IsZero() {
					a.LateCheck = payloom.LateCheckDone
				}
				if err := tx.CreateAttempt(h.ctx, a); err != nil {
					return err
				}
				p.Attempts = append(p.Attempts, a)
			}
			if f.listed {
				listed = append(listed, p)
			}
		}
		return nil
	})

	tests := []struct {
		due   time.Time
		limit int
		want  []*payloom.Payment
	}{
		{due, 100, listed},
		{due, 2, listed[:2]},
		{at(0), 100, nil},
		{at(1), 100, []*payloom.Payment{listed[2]}},
		{due, 0, nil},
	}
	for _, tt := range tests {
		call := fmt.Sprintf("ListLateCheckPayments(%s, %d)", tt.due.Format(time.RFC3339Nano), tt.limit)
		check := func(tx payloom.Tx) error {
			got, err := tx.ListLateCheckPayments(h.ctx, tt.due, tt.limit)
			must(t, call, err)
			if len(got) != len(tt.want) {
				t.Errorf("%s returned %d payments %v; want %d %v", call, len(got), paymentIDs(got), len(tt.want), paymentIDs(tt.want))
				return nil
			}
			for i := range got {
				checkDiff(t, fmt.Sprintf("%s[%d]", call, i), tt.want[i], got[i])
			}
			return nil
		}
		// The job reads in a View; an Update must answer the same.
		h.view(check)
		h.update(check)
	}
}

func paymentIDs(ps []*payloom.Payment) []string {
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	return ids
}
