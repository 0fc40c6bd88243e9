package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/payloom/payloom"
)

// listTest is one page request and the expected page, as indexes into the
// fixtures (which are created oldest first, fixture i at at(i)).
type listTest[F any] struct {
	name string
	f    F
	want []int
	more bool
}

// pagingTests are the cursor, limit and created-range cases every list
// shares, for seven fixtures 0..6 with IDs and creation times in order.
func pagingTests(ids []string) []listTest[payloom.ListParams] {
	if len(ids) != 7 {
		panic("storetest: pagingTests needs seven fixtures")
	}
	all := []int{6, 5, 4, 3, 2, 1, 0}
	return []listTest[payloom.ListParams]{
		{"default limit", payloom.ListParams{}, all, false},
		{"limit 3", payloom.ListParams{Limit: 3}, []int{6, 5, 4}, true},
		{"limit 1", payloom.ListParams{Limit: 1}, []int{6}, true},
		{"limit equals count", payloom.ListParams{Limit: 7}, all, false},
		{"limit above count", payloom.ListParams{Limit: 100}, all, false},
		{"starting_after", payloom.ListParams{Limit: 2, StartingAfter: ids[4]}, []int{3, 2}, true},
		{"starting_after to the end", payloom.ListParams{Limit: 3, StartingAfter: ids[1]}, []int{0}, false},
		{"starting_after exactly to the end", payloom.ListParams{Limit: 2, StartingAfter: ids[2]}, []int{1, 0}, false},
		{"starting_after the oldest", payloom.ListParams{StartingAfter: ids[0]}, nil, false},
		{"ending_before", payloom.ListParams{Limit: 2, EndingBefore: ids[2]}, []int{4, 3}, true},
		{"ending_before to the start", payloom.ListParams{Limit: 5, EndingBefore: ids[4]}, []int{6, 5}, false},
		{"ending_before exactly to the start", payloom.ListParams{Limit: 2, EndingBefore: ids[4]}, []int{6, 5}, false},
		{"ending_before the newest", payloom.ListParams{EndingBefore: ids[6]}, nil, false},
		{"created gte", payloom.ListParams{CreatedGTE: ptr(at(2))}, []int{6, 5, 4, 3, 2}, false},
		{"created lte", payloom.ListParams{CreatedLTE: ptr(at(2))}, []int{2, 1, 0}, false},
		{"created range", payloom.ListParams{CreatedGTE: ptr(at(1)), CreatedLTE: ptr(at(3))}, []int{3, 2, 1}, false},
		{"created range is by instant", payloom.ListParams{
			CreatedGTE: ptr(at(1).Add(time.Microsecond)), CreatedLTE: ptr(at(3).Add(-time.Microsecond))}, []int{2}, false},
		{"created range with limit", payloom.ListParams{CreatedGTE: ptr(at(1)), CreatedLTE: ptr(at(5)), Limit: 2}, []int{5, 4}, true},
		{"created range with starting_after", payloom.ListParams{CreatedGTE: ptr(at(1)), StartingAfter: ids[3], Limit: 1}, []int{2}, true},
		{"created range with ending_before", payloom.ListParams{CreatedLTE: ptr(at(4)), EndingBefore: ids[1], Limit: 2}, []int{3, 2}, true},
		{"created range empty", payloom.ListParams{CreatedGTE: ptr(at(7))}, nil, false},
	}
}

// runList runs tests against list and compares each page with the
// fixtures, whole objects included.
func runList[T any, F any](t *testing.T, h *harness, method string, fixtures []T, id func(T) string,
	tests []listTest[F], list func(tx payloom.Tx, f F) ([]T, bool, error)) {
	t.Helper()
	h.view(func(tx payloom.Tx) error {
		for _, tt := range tests {
			call := fmt.Sprintf("%s(%s)", method, tt.name)
			got, more, err := list(tx, tt.f)
			if err != nil {
				t.Errorf("%s: %v", call, err)
				continue
			}
			gotIDs := make([]string, len(got))
			for i, v := range got {
				gotIDs[i] = id(v)
			}
			wantIDs := make([]string, len(tt.want))
			for i, n := range tt.want {
				wantIDs[i] = id(fixtures[n])
			}
			if !slices.Equal(gotIDs, wantIDs) {
				t.Errorf("%s = %v; want %v (fixtures oldest first: %v)", call, gotIDs, wantIDs, ids(fixtures, id))
			} else {
				for i, n := range tt.want {
					checkDiff(t, fmt.Sprintf("%s[%d]", call, i), fixtures[n], got[i])
				}
			}
			if more != tt.more {
				t.Errorf("%s has_more = %v; want %v", call, more, tt.more)
			}
		}
		return nil
	})
}

func ids[T any](vs []T, id func(T) string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = id(v)
	}
	return out
}

func testListPayments(t *testing.T, h *harness) {
	_, scope := h.merchant()
	others := h.otherScopes(scope)
	captured, authorized := payloom.PaymentStatusCaptured, payloom.PaymentStatusAuthorized
	var ps []*payloom.Payment
	h.update(func(tx payloom.Tx) error {
		for i := range 7 {
			p := newPayment(scope, at(i))
			p.Status = authorized
			if i%3 == 0 {
				p.Status = captured
			}
			if err := tx.CreatePayment(h.ctx, p); err != nil {
				return err
			}
			if i == 5 || i == 2 { // lists fill attempts, in creation order (not ID order)
				later, first := newAttempt(p, at(i).Add(time.Second)), newAttempt(p, at(i))
				for _, a := range []*payloom.Attempt{first, later} {
					if err := tx.CreateAttempt(h.ctx, a); err != nil {
						return err
					}
					p.Attempts = append(p.Attempts, a)
				}
			}
			ps = append(ps, p)
			// The same minute in other scopes: never listed here.
			for _, o := range others {
				q := newPayment(o, at(i))
				q.Status = p.Status
				if err := tx.CreatePayment(h.ctx, q); err != nil {
					return err
				}
			}
		}
		return nil
	})
	var tests []listTest[payloom.PaymentFilter]
	for _, pt := range pagingTests(ids(ps, paymentID)) {
		tests = append(tests, listTest[payloom.PaymentFilter]{pt.name, payloom.PaymentFilter{ListParams: pt.f}, pt.want, pt.more})
	}
	tests = append(tests, []listTest[payloom.PaymentFilter]{
		{"status", payloom.PaymentFilter{Status: &captured}, []int{6, 3, 0}, false},
		{"status with limit", payloom.PaymentFilter{Status: &captured, ListParams: payloom.ListParams{Limit: 2}}, []int{6, 3}, true},
		{"status with starting_after", payloom.PaymentFilter{Status: &captured,
			ListParams: payloom.ListParams{Limit: 1, StartingAfter: ps[6].ID}}, []int{3}, true},
		{"status with ending_before", payloom.PaymentFilter{Status: &captured,
			ListParams: payloom.ListParams{Limit: 1, EndingBefore: ps[0].ID}}, []int{3}, true},
		{"status with created range", payloom.PaymentFilter{Status: &authorized,
			ListParams: payloom.ListParams{CreatedGTE: ptr(at(2)), CreatedLTE: ptr(at(4))}}, []int{4, 2}, false},
		{"status without payments", payloom.PaymentFilter{Status: ptr(payloom.PaymentStatusDeclined)}, nil, false},
	}...)
	runList(t, h, "ListPayments", ps, paymentID, tests, func(tx payloom.Tx, f payloom.PaymentFilter) ([]*payloom.Payment, bool, error) {
		return tx.ListPayments(h.ctx, scope, f)
	})

	// The default limit is 10.
	_, big := h.merchant()
	var many []*payloom.Payment
	h.update(func(tx payloom.Tx) error {
		for i := range 12 {
			p := newPayment(big, at(i))
			if err := tx.CreatePayment(h.ctx, p); err != nil {
				return err
			}
			many = append(many, p)
		}
		return nil
	})
	runList(t, h, "ListPayments", many, paymentID, []listTest[payloom.PaymentFilter]{
		{"limit 0 means 10", payloom.PaymentFilter{}, []int{11, 10, 9, 8, 7, 6, 5, 4, 3, 2}, true},
	}, func(tx payloom.Tx, f payloom.PaymentFilter) ([]*payloom.Payment, bool, error) {
		return tx.ListPayments(h.ctx, big, f)
	})
}

func paymentID(p *payloom.Payment) string { return p.ID }

func testListRefunds(t *testing.T, h *harness) {
	_, scope := h.merchant()
	others := h.otherScopes(scope)
	var rs []*payloom.Refund
	var pa, pb *payloom.Payment
	h.update(func(tx payloom.Tx) error {
		pa, pb = newPayment(scope, at(0)), newPayment(scope, at(0))
		for _, p := range []*payloom.Payment{pa, pb} {
			p.Status, p.AmountCaptured = payloom.PaymentStatusCaptured, p.Amount
			if err := tx.CreatePayment(h.ctx, p); err != nil {
				return err
			}
		}
		for i := range 7 {
			p := pa
			if i == 2 || i == 5 {
				p = pb
			}
			r := newRefund(p, at(i))
			if err := tx.CreateRefund(h.ctx, r); err != nil {
				return err
			}
			rs = append(rs, r)
			for _, o := range others {
				q := newPayment(o, at(i))
				q.Status, q.AmountCaptured = payloom.PaymentStatusCaptured, q.Amount
				if err := tx.CreatePayment(h.ctx, q); err != nil {
					return err
				}
				if err := tx.CreateRefund(h.ctx, newRefund(q, at(i))); err != nil {
					return err
				}
			}
		}
		return nil
	})
	var tests []listTest[payloom.RefundFilter]
	for _, pt := range pagingTests(ids(rs, refundID)) {
		tests = append(tests, listTest[payloom.RefundFilter]{pt.name, payloom.RefundFilter{ListParams: pt.f}, pt.want, pt.more})
	}
	tests = append(tests, []listTest[payloom.RefundFilter]{
		{"payment_id", payloom.RefundFilter{PaymentID: &pa.ID}, []int{6, 4, 3, 1, 0}, false},
		{"other payment_id", payloom.RefundFilter{PaymentID: &pb.ID}, []int{5, 2}, false},
		{"payment_id with limit", payloom.RefundFilter{PaymentID: &pa.ID, ListParams: payloom.ListParams{Limit: 2}}, []int{6, 4}, true},
		{"payment_id with starting_after", payloom.RefundFilter{PaymentID: &pa.ID,
			ListParams: payloom.ListParams{Limit: 2, StartingAfter: rs[4].ID}}, []int{3, 1}, true},
		{"payment_id with ending_before", payloom.RefundFilter{PaymentID: &pb.ID,
			ListParams: payloom.ListParams{EndingBefore: rs[2].ID}}, []int{5}, false},
		{"unknown payment_id", payloom.RefundFilter{PaymentID: ptr("pay_unknown")}, nil, false},
	}...)
	runList(t, h, "ListRefunds", rs, refundID, tests, func(tx payloom.Tx, f payloom.RefundFilter) ([]*payloom.Refund, bool, error) {
		return tx.ListRefunds(h.ctx, scope, f)
	})
}

func refundID(r *payloom.Refund) string { return r.ID }

func testListEvents(t *testing.T, h *harness) {
	_, scope := h.merchant()
	others := h.otherScopes(scope)
	types := []payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentAuthorized}
	objects := []string{"pay_a", "pay_b", "re_c"}
	var evs []*payloom.Event
	h.update(func(tx payloom.Tx) error {
		for i := range 7 {
			// types alternate 0 1 0 1 ...; objects cycle a b c a b c a.
			ev := newEvent(scope, types[i%2], objects[i%3], at(i))
			if err := tx.CreateEvent(h.ctx, ev); err != nil {
				return err
			}
			evs = append(evs, ev)
			for _, o := range others {
				if err := tx.CreateEvent(h.ctx, newEvent(o, types[i%2], objects[i%3], at(i))); err != nil {
					return err
				}
			}
		}
		return nil
	})
	var tests []listTest[payloom.EventFilter]
	for _, pt := range pagingTests(ids(evs, eventID)) {
		tests = append(tests, listTest[payloom.EventFilter]{pt.name, payloom.EventFilter{ListParams: pt.f}, pt.want, pt.more})
	}
	tests = append(tests, []listTest[payloom.EventFilter]{
		{"type", payloom.EventFilter{Type: &types[1]}, []int{5, 3, 1}, false},
		{"type with limit", payloom.EventFilter{Type: &types[0], ListParams: payloom.ListParams{Limit: 3}}, []int{6, 4, 2}, true},
		{"object_id", payloom.EventFilter{ObjectID: &objects[0]}, []int{6, 3, 0}, false},
		{"type and object_id", payloom.EventFilter{Type: &types[0], ObjectID: &objects[0]}, []int{6, 0}, false},
		{"object_id with starting_after", payloom.EventFilter{ObjectID: &objects[1],
			ListParams: payloom.ListParams{StartingAfter: evs[4].ID}}, []int{1}, false},
		{"object_id with ending_before", payloom.EventFilter{ObjectID: &objects[0],
			ListParams: payloom.ListParams{EndingBefore: evs[0].ID, Limit: 1}}, []int{3}, true},
		{"type without events", payloom.EventFilter{Type: ptr(payloom.EventRefundFailed)}, nil, false},
	}...)
	runList(t, h, "ListEvents", evs, eventID, tests, func(tx payloom.Tx, f payloom.EventFilter) ([]*payloom.Event, bool, error) {
		got, more, err := tx.ListEvents(h.ctx, scope, f)
		// Stores may normalize JSON (jsonb): compare Data by meaning.
		for _, ev := range got {
			normalizeEventData(t, ev)
		}
		return got, more, err
	})
}

func eventID(e *payloom.Event) string { return e.ID }
