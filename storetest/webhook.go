package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/payloom/payloom"
)

// newWebhookEndpoint returns an enabled endpoint in scope created at
// created; it is not stored.
func newWebhookEndpoint(scope payloom.Scope, created time.Time) *payloom.WebhookEndpoint {
	return &payloom.WebhookEndpoint{
		ID: payloom.NewID(payloom.PrefixWebhookEndpoint), Object: "webhook_endpoint", MerchantID: scope.MerchantID,
		Livemode: scope.Livemode, URL: "https://example.com/hooks", EnabledEvents: []string{"*"}, Enabled: true,
		Secret: "whsec_c2VjcmV0IHNpZ25pbmcga2V5IG9mIDI0IGI=", CreatedAt: created, UpdatedAt: created,
	}
}

// newWebhookDelivery returns a pending delivery of ev to we, due at due.
func newWebhookDelivery(ev *payloom.Event, we *payloom.WebhookEndpoint, due time.Time) *payloom.WebhookDelivery {
	return &payloom.WebhookDelivery{
		ID: payloom.NewID(payloom.PrefixWebhookDelivery), Object: "webhook_delivery", EventID: ev.ID,
		EndpointID: we.ID, MerchantID: ev.MerchantID, Livemode: ev.Livemode, Status: payloom.WebhookDeliveryPending,
		NextAttemptAt: due, CreatedAt: ev.CreatedAt, UpdatedAt: ev.CreatedAt,
	}
}

// createEvent stores an event about a made-up object in scope.
func (h *harness) createEvent(scope payloom.Scope, created time.Time) *payloom.Event {
	h.t.Helper()
	ev := newEvent(scope, payloom.EventPaymentCreated, payloom.NewID(payloom.PrefixPayment), created)
	h.update(func(tx payloom.Tx) error { return tx.CreateEvent(h.ctx, ev) })
	return ev
}

func testWebhookEndpoint(t *testing.T, h *harness) {
	_, scope := h.merchant()
	scope.Livemode = true
	full := newWebhookEndpoint(scope, at(0))
	full.Description = "Orders service — prod"
	full.EnabledEvents = []string{string(payloom.EventPaymentCaptured), string(payloom.EventRefundSucceeded)}
	full.Enabled = false
	full.DisabledReason = "the endpoint answered 410 Gone"
	full.PreviousSecret = "whsec_b2xkIHNpZ25pbmcga2V5IG9mIDI0IGJ5dGVz"
	full.PreviousSecretExpiresAt = ptr(at(60 * 24))
	full.FailingSince = ptr(at(5).Add(3 * time.Microsecond))
	full.UpdatedAt = at(6)
	full.Version = 4
	minimal := newWebhookEndpoint(scope, at(1).In(time.FixedZone("UTC+2", 7200)))
	minimal.EnabledEvents, minimal.UpdatedAt = nil, time.Time{}
	h.update(func(tx payloom.Tx) error {
		if err := tx.CreateWebhookEndpoint(h.ctx, full); err != nil {
			return err
		}
		return tx.CreateWebhookEndpoint(h.ctx, minimal)
	})
	wantMinimal := *minimal
	wantMinimal.EnabledEvents = []string{}
	others := h.otherScopes(scope)
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetWebhookEndpoint(h.ctx, scope, full.ID)
		must(t, "GetWebhookEndpoint", err)
		checkDiff(t, "GetWebhookEndpoint(full)", full, got)
		if got.Secret.Reveal() != full.Secret.Reveal() || got.PreviousSecret.Reveal() != full.PreviousSecret.Reveal() {
			t.Errorf("GetWebhookEndpoint(full) secrets differ from the stored ones")
		}
		got, err = tx.GetWebhookEndpoint(h.ctx, scope, minimal.ID)
		must(t, "GetWebhookEndpoint", err)
		checkDiff(t, "GetWebhookEndpoint(minimal)", &wantMinimal, got)
		for _, o := range others {
			_, err := tx.GetWebhookEndpoint(h.ctx, o, full.ID)
			wantCode(t, fmt.Sprintf("GetWebhookEndpoint(other scope %+v)", o), err, payloom.CodeNotFound)
		}
		_, err = tx.GetWebhookEndpoint(h.ctx, scope, payloom.NewID(payloom.PrefixWebhookEndpoint))
		wantCode(t, "GetWebhookEndpoint(unknown)", err, payloom.CodeNotFound)
		return nil
	})
	same := newWebhookEndpoint(scope, at(2))
	same.ID = full.ID
	err := h.tryUpdate(func(tx payloom.Tx) error { return tx.CreateWebhookEndpoint(h.ctx, same) })
	wantCode(t, "CreateWebhookEndpoint(same ID)", err, payloom.CodeAlreadyExists)
}

func testUpdateWebhookEndpoint(t *testing.T, h *harness) {
	_, scope := h.merchant()
	we := newWebhookEndpoint(scope, at(0))
	h.update(func(tx payloom.Tx) error { return tx.CreateWebhookEndpoint(h.ctx, we) })
	stale := *we

	var updated *payloom.WebhookEndpoint
	h.update(func(tx payloom.Tx) error {
		got, err := tx.GetWebhookEndpoint(h.ctx, scope, we.ID)
		if err != nil {
			return err
		}
		got.URL = "https://example.org/v2/hooks?x=1"
		got.Description = "renamed"
		got.EnabledEvents = []string{string(payloom.EventWebhookEndpointDisabled)}
		got.Enabled = false
		got.DisabledReason = "failing for 3 days"
		got.Secret, got.PreviousSecret = "whsec_bmV3", we.Secret
		got.PreviousSecretExpiresAt = ptr(at(100))
		got.FailingSince = ptr(at(7))
		got.UpdatedAt = at(8)
		if err := tx.UpdateWebhookEndpoint(h.ctx, got); err != nil {
			return err
		}
		updated = got
		return nil
	})
	if updated.Version != we.Version+1 {
		t.Errorf("UpdateWebhookEndpoint: Version = %d; want %d", updated.Version, we.Version+1)
	}
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetWebhookEndpoint(h.ctx, scope, we.ID)
		must(t, "GetWebhookEndpoint", err)
		checkDiff(t, "GetWebhookEndpoint(updated)", updated, got)
		return nil
	})

	// Clearing the optional times reads back nil.
	h.update(func(tx payloom.Tx) error {
		updated.PreviousSecretExpiresAt, updated.FailingSince = nil, nil
		updated.Enabled = true
		return tx.UpdateWebhookEndpoint(h.ctx, updated)
	})
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetWebhookEndpoint(h.ctx, scope, we.ID)
		must(t, "GetWebhookEndpoint", err)
		checkDiff(t, "GetWebhookEndpoint(times cleared)", updated, got)
		return nil
	})

	err := h.tryUpdate(func(tx payloom.Tx) error { return tx.UpdateWebhookEndpoint(h.ctx, &stale) })
	wantCode(t, "UpdateWebhookEndpoint(stale version)", err, payloom.CodeConflict)
	for _, o := range h.otherScopes(scope) {
		other := *updated
		other.MerchantID, other.Livemode = o.MerchantID, o.Livemode
		err := h.tryUpdate(func(tx payloom.Tx) error { return tx.UpdateWebhookEndpoint(h.ctx, &other) })
		wantCode(t, fmt.Sprintf("UpdateWebhookEndpoint(other scope %+v)", o), err, payloom.CodeNotFound)
	}
	missing := newWebhookEndpoint(scope, at(0))
	err = h.tryUpdate(func(tx payloom.Tx) error { return tx.UpdateWebhookEndpoint(h.ctx, missing) })
	wantCode(t, "UpdateWebhookEndpoint(unknown)", err, payloom.CodeNotFound)
}

func testDeleteWebhookEndpoint(t *testing.T, h *harness) {
	_, scope := h.merchant()
	we := newWebhookEndpoint(scope, at(0))
	keep := newWebhookEndpoint(scope, at(1))
	ev := newEvent(scope, payloom.EventPaymentCreated, "pay_1", at(2))
	d := newWebhookDelivery(ev, we, at(2))
	a := &payloom.WebhookAttempt{ID: payloom.NewID(payloom.PrefixWebhookAttempt), DeliveryID: d.ID, EventID: ev.ID,
		EndpointID: we.ID, MerchantID: scope.MerchantID, URL: we.URL, At: at(3), StatusCode: 500}
	h.update(func(tx payloom.Tx) error {
		for _, e := range []*payloom.WebhookEndpoint{we, keep} {
			if err := tx.CreateWebhookEndpoint(h.ctx, e); err != nil {
				return err
			}
		}
		if err := tx.CreateEvent(h.ctx, ev); err != nil {
			return err
		}
		if err := tx.CreateWebhookDelivery(h.ctx, d); err != nil {
			return err
		}
		return tx.CreateWebhookAttempt(h.ctx, a)
	})
	for _, o := range h.otherScopes(scope) {
		err := h.tryUpdate(func(tx payloom.Tx) error { return tx.DeleteWebhookEndpoint(h.ctx, o, we.ID) })
		wantCode(t, fmt.Sprintf("DeleteWebhookEndpoint(other scope %+v)", o), err, payloom.CodeNotFound)
	}
	h.update(func(tx payloom.Tx) error { return tx.DeleteWebhookEndpoint(h.ctx, scope, we.ID) })
	err := h.tryUpdate(func(tx payloom.Tx) error { return tx.DeleteWebhookEndpoint(h.ctx, scope, we.ID) })
	wantCode(t, "DeleteWebhookEndpoint(deleted)", err, payloom.CodeNotFound)
	h.view(func(tx payloom.Tx) error {
		_, err := tx.GetWebhookEndpoint(h.ctx, scope, we.ID)
		wantCode(t, "GetWebhookEndpoint(deleted)", err, payloom.CodeNotFound)
		_, err = tx.GetWebhookEndpoint(h.ctx, scope, keep.ID)
		must(t, "GetWebhookEndpoint(the other endpoint)", err)
		// The history of what was sent to a deleted endpoint stays.
		ds, err := tx.ListWebhookDeliveries(h.ctx, scope, ev.ID)
		must(t, "ListWebhookDeliveries", err)
		if len(ds) != 1 || ds[0].ID != d.ID {
			t.Errorf("ListWebhookDeliveries after deleting the endpoint = %d deliveries; want %s", len(ds), d.ID)
		}
		as, err := tx.ListWebhookAttempts(h.ctx, scope, ev.ID)
		must(t, "ListWebhookAttempts", err)
		if len(as) != 1 || as[0].ID != a.ID {
			t.Errorf("ListWebhookAttempts after deleting the endpoint = %d attempts; want %s", len(as), a.ID)
		}
		return nil
	})
}

func testListWebhookEndpoints(t *testing.T, h *harness) {
	_, scope := h.merchant()
	others := h.otherScopes(scope)
	var wes []*payloom.WebhookEndpoint
	h.update(func(tx payloom.Tx) error {
		for i := range 7 {
			we := newWebhookEndpoint(scope, at(i))
			we.Enabled = i%3 != 0
			if err := tx.CreateWebhookEndpoint(h.ctx, we); err != nil {
				return err
			}
			wes = append(wes, we)
			for _, o := range others {
				if err := tx.CreateWebhookEndpoint(h.ctx, newWebhookEndpoint(o, at(i))); err != nil {
					return err
				}
			}
		}
		return nil
	})
	id := func(we *payloom.WebhookEndpoint) string { return we.ID }
	_, empty := h.merchant()
	runList(t, h, "ListWebhookEndpoints", wes, id, pagingTests(ids(wes, id)),
		func(tx payloom.Tx, p payloom.ListParams) ([]*payloom.WebhookEndpoint, bool, error) {
			return tx.ListWebhookEndpoints(h.ctx, scope, p)
		})

	h.view(func(tx payloom.Tx) error {
		got, err := tx.ListEnabledWebhookEndpoints(h.ctx, scope)
		must(t, "ListEnabledWebhookEndpoints", err)
		var want []string
		for _, we := range wes {
			if we.Enabled {
				want = append(want, we.ID)
			}
		}
		if gotIDs := ids(got, id); !slices.Equal(gotIDs, want) {
			t.Errorf("ListEnabledWebhookEndpoints = %v; want %v (enabled ones, oldest first)", gotIDs, want)
		} else {
			checkDiff(t, "ListEnabledWebhookEndpoints[0]", wes[1], got[0])
		}
		got, err = tx.ListEnabledWebhookEndpoints(h.ctx, empty)
		must(t, "ListEnabledWebhookEndpoints(no endpoints)", err)
		if got == nil || len(got) != 0 {
			t.Errorf("ListEnabledWebhookEndpoints(no endpoints) = %v; want empty, non-nil", got)
		}
		return nil
	})
}

// testUndispatchedEvents: events of every scope are listed oldest first
// until marked, and a mark that rolled back leaves the event listed.
func testUndispatchedEvents(t *testing.T, h *harness) {
	_, a := h.merchant()
	_, b := h.merchant()
	b.Livemode = true
	// Events of scopes without an enabled endpoint are never listed: c has
	// none, d a disabled one (see Tx.CreateEvent).
	_, c := h.merchant()
	_, d := h.merchant()
	off := newWebhookEndpoint(d, at(0))
	off.Enabled = false
	h.update(func(tx payloom.Tx) error {
		for _, e := range []*payloom.WebhookEndpoint{newWebhookEndpoint(a, at(0)), newWebhookEndpoint(b, at(0)), off} {
			if err := tx.CreateWebhookEndpoint(h.ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
	var evs []*payloom.Event
	for i := range 5 {
		scope := a
		if i%2 == 1 {
			scope = b
		}
		h.createEvent(c, at(i))
		h.createEvent(d, at(i))
		evs = append(evs, h.createEvent(scope, at(i)))
	}
	list := func(limit int) []string {
		t.Helper()
		var got []*payloom.Event
		h.view(func(tx payloom.Tx) error {
			var err error
			got, err = tx.ListUndispatchedEvents(h.ctx, limit)
			return err
		})
		return ids(got, eventID)
	}
	if got, want := list(10), ids(evs, eventID); !slices.Equal(got, want) {
		t.Errorf("ListUndispatchedEvents(10) = %v; want %v", got, want)
	}
	if got, want := list(2), ids(evs[:2], eventID); !slices.Equal(got, want) {
		t.Errorf("ListUndispatchedEvents(2) = %v; want %v", got, want)
	}
	h.view(func(tx payloom.Tx) error {
		got, err := tx.ListUndispatchedEvents(h.ctx, 1)
		must(t, "ListUndispatchedEvents", err)
		normalizeEventData(t, got[0])
		checkDiff(t, "ListUndispatchedEvents(1)[0]", evs[0], got[0])
		return nil
	})

	h.update(func(tx payloom.Tx) error {
		if err := tx.MarkEventDispatched(h.ctx, evs[0].ID, at(10)); err != nil {
			return err
		}
		return tx.MarkEventDispatched(h.ctx, evs[3].ID, at(10))
	})
	err := h.tryUpdate(func(tx payloom.Tx) error {
		if err := tx.MarkEventDispatched(h.ctx, evs[1].ID, at(10)); err != nil {
			return err
		}
		return errTest
	})
	if err == nil {
		t.Fatalf("Update(mark, then fail) = nil; want an error")
	}
	want := []string{evs[1].ID, evs[2].ID, evs[4].ID}
	if got := list(10); !slices.Equal(got, want) {
		t.Errorf("ListUndispatchedEvents after marking 0 and 3 (1 rolled back) = %v; want %v", got, want)
	}
	err = h.tryUpdate(func(tx payloom.Tx) error {
		return tx.MarkEventDispatched(h.ctx, payloom.NewID(payloom.PrefixEvent), at(10))
	})
	wantCode(t, "MarkEventDispatched(unknown)", err, payloom.CodeNotFound)
	if got := list(0); len(got) != 0 {
		t.Errorf("ListUndispatchedEvents(0) = %v; want none", got)
	}
}

// testConcurrentFanOut: workers fanning out at once, each listing,
// creating a delivery and marking in one Update, fan every event out
// exactly once.
func testConcurrentFanOut(t *testing.T, h *harness) {
	const events, workers = 40, 6
	_, scope := h.merchant()
	we := newWebhookEndpoint(scope, at(0))
	h.update(func(tx payloom.Tx) error { return tx.CreateWebhookEndpoint(h.ctx, we) })
	var evs []*payloom.Event
	h.update(func(tx payloom.Tx) error {
		evs = evs[:0]
		for i := range events {
			ev := newEvent(scope, payloom.EventPaymentCreated, fmt.Sprintf("pay_%d", i), at(i))
			if err := tx.CreateEvent(h.ctx, ev); err != nil {
				return err
			}
			evs = append(evs, ev)
		}
		return nil
	})

	var mu sync.Mutex
	taken := map[string]int{}
	errs := make(chan error, workers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for {
				var mine []string
				err := h.s.Update(h.ctx, func(tx payloom.Tx) error {
					mine = mine[:0] // fn may run again
					list, err := tx.ListUndispatchedEvents(h.ctx, 3)
					if err != nil {
						return err
					}
					for _, ev := range list {
						if err := tx.CreateWebhookDelivery(h.ctx, newWebhookDelivery(ev, we, at(0))); err != nil {
							return err
						}
						if err := tx.MarkEventDispatched(h.ctx, ev.ID, at(0)); err != nil {
							return err
						}
						mine = append(mine, ev.ID)
					}
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for _, id := range mine {
					taken[id]++
				}
				done := len(taken) == events
				mu.Unlock()
				if done {
					errs <- nil
					return
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("fan-out Update = %v; want nil", err)
		}
	}
	for _, ev := range evs {
		if n := taken[ev.ID]; n != 1 {
			t.Errorf("event %s was fanned out %d times; want 1", ev.ID, n)
		}
	}
	h.view(func(tx payloom.Tx) error {
		for _, ev := range evs {
			ds, err := tx.ListWebhookDeliveries(h.ctx, scope, ev.ID)
			must(t, "ListWebhookDeliveries", err)
			if len(ds) != 1 {
				t.Errorf("ListWebhookDeliveries(%s) = %d deliveries; want 1", ev.ID, len(ds))
			}
		}
		left, err := tx.ListUndispatchedEvents(h.ctx, 10)
		must(t, "ListUndispatchedEvents", err)
		if len(left) != 0 {
			t.Errorf("ListUndispatchedEvents after fan-out = %v; want none", ids(left, eventID))
		}
		return nil
	})
}

func testWebhookDelivery(t *testing.T, h *harness) {
	_, scope := h.merchant()
	we := newWebhookEndpoint(scope, at(0))
	ev := newEvent(scope, payloom.EventPaymentCaptured, "pay_1", at(1))
	full := newWebhookDelivery(ev, we, at(2).Add(7*time.Microsecond))
	full.Status = payloom.WebhookDeliveryFailed
	full.Attempts = 3
	full.LeaseOwner = "node-a/42"
	full.LeaseUntil = at(3)
	full.LastStatusCode = 503
	full.LastError = "HTTP 503: \"service unavailable\""
	full.UpdatedAt = at(4)
	full.Version = 9
	minimal := newWebhookDelivery(ev, we, at(5).In(time.FixedZone("UTC-3", -3*3600)))
	minimal.UpdatedAt = time.Time{}
	h.update(func(tx payloom.Tx) error {
		if err := tx.CreateWebhookEndpoint(h.ctx, we); err != nil {
			return err
		}
		if err := tx.CreateEvent(h.ctx, ev); err != nil {
			return err
		}
		if err := tx.CreateWebhookDelivery(h.ctx, full); err != nil {
			return err
		}
		return tx.CreateWebhookDelivery(h.ctx, minimal)
	})
	others := h.otherScopes(scope)
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetWebhookDelivery(h.ctx, scope, full.ID)
		must(t, "GetWebhookDelivery", err)
		checkDiff(t, "GetWebhookDelivery(full)", full, got)
		got, err = tx.GetWebhookDelivery(h.ctx, scope, minimal.ID)
		must(t, "GetWebhookDelivery", err)
		checkDiff(t, "GetWebhookDelivery(minimal)", minimal, got)
		list, err := tx.ListWebhookDeliveries(h.ctx, scope, ev.ID)
		must(t, "ListWebhookDeliveries", err)
		if gotIDs := ids(list, deliveryID); !slices.Equal(gotIDs, []string{full.ID, minimal.ID}) {
			t.Errorf("ListWebhookDeliveries = %v; want %v", gotIDs, []string{full.ID, minimal.ID})
		}
		for _, o := range others {
			_, err := tx.GetWebhookDelivery(h.ctx, o, full.ID)
			wantCode(t, fmt.Sprintf("GetWebhookDelivery(other scope %+v)", o), err, payloom.CodeNotFound)
			list, err := tx.ListWebhookDeliveries(h.ctx, o, ev.ID)
			must(t, "ListWebhookDeliveries(other scope)", err)
			if len(list) != 0 {
				t.Errorf("ListWebhookDeliveries(other scope %+v) = %v; want none", o, ids(list, deliveryID))
			}
		}
		list, err = tx.ListWebhookDeliveries(h.ctx, scope, payloom.NewID(payloom.PrefixEvent))
		must(t, "ListWebhookDeliveries(unknown event)", err)
		if list == nil || len(list) != 0 {
			t.Errorf("ListWebhookDeliveries(unknown event) = %v; want empty, non-nil", list)
		}
		return nil
	})
	err := h.tryUpdate(func(tx payloom.Tx) error { return tx.CreateWebhookDelivery(h.ctx, full) })
	wantCode(t, "CreateWebhookDelivery(same ID)", err, payloom.CodeAlreadyExists)

	// Update writes every mutable field and increments Version.
	stale := *minimal
	upd := *minimal
	upd.Status = payloom.WebhookDeliverySucceeded
	upd.Attempts = 1
	upd.NextAttemptAt = at(6)
	upd.LeaseOwner, upd.LeaseUntil = "", time.Time{}
	upd.LastStatusCode, upd.LastError = 204, ""
	upd.UpdatedAt = at(6).Add(time.Microsecond)
	h.update(func(tx payloom.Tx) error { return tx.UpdateWebhookDelivery(h.ctx, &upd) })
	if upd.Version != minimal.Version+1 {
		t.Errorf("UpdateWebhookDelivery: Version = %d; want %d", upd.Version, minimal.Version+1)
	}
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetWebhookDelivery(h.ctx, scope, minimal.ID)
		must(t, "GetWebhookDelivery", err)
		checkDiff(t, "GetWebhookDelivery(updated)", &upd, got)
		return nil
	})
	err = h.tryUpdate(func(tx payloom.Tx) error { return tx.UpdateWebhookDelivery(h.ctx, &stale) })
	wantCode(t, "UpdateWebhookDelivery(stale version)", err, payloom.CodeConflict)
	for _, o := range others {
		other := upd
		other.MerchantID, other.Livemode = o.MerchantID, o.Livemode
		err := h.tryUpdate(func(tx payloom.Tx) error { return tx.UpdateWebhookDelivery(h.ctx, &other) })
		wantCode(t, fmt.Sprintf("UpdateWebhookDelivery(other scope %+v)", o), err, payloom.CodeNotFound)
	}
}

func deliveryID(d *payloom.WebhookDelivery) string { return d.ID }

// testClaimWebhookDeliveries: a claim leases pending, due, unleased
// deliveries of every scope, earliest due first; a running lease keeps
// them from the next claim, an expired one does not, and the old holder can
// no longer write.
func testClaimWebhookDeliveries(t *testing.T, h *harness) {
	_, a := h.merchant()
	_, b := h.merchant()
	b.Livemode = true
	now := at(100)
	wa, wb := newWebhookEndpoint(a, at(0)), newWebhookEndpoint(b, at(0))
	ea, eb := newEvent(a, payloom.EventPaymentCreated, "pay_a", at(1)), newEvent(b, payloom.EventPaymentCreated, "pay_b", at(1))
	due1 := newWebhookDelivery(ea, wa, now.Add(-time.Hour))
	due2 := newWebhookDelivery(eb, wb, now) // due exactly now
	expired := newWebhookDelivery(ea, wa, now.Add(-time.Minute))
	expired.LeaseOwner, expired.LeaseUntil = "dead-node", now.Add(-time.Second)
	leased := newWebhookDelivery(eb, wb, now.Add(-2*time.Hour))
	leased.LeaseOwner, leased.LeaseUntil = "busy-node", now.Add(time.Minute)
	later := newWebhookDelivery(ea, wa, now.Add(time.Microsecond))
	succeeded := newWebhookDelivery(ea, wa, now.Add(-time.Hour))
	succeeded.Status = payloom.WebhookDeliverySucceeded
	failed := newWebhookDelivery(eb, wb, now.Add(-time.Hour))
	failed.Status = payloom.WebhookDeliveryFailed
	h.update(func(tx payloom.Tx) error {
		for _, we := range []*payloom.WebhookEndpoint{wa, wb} {
			if err := tx.CreateWebhookEndpoint(h.ctx, we); err != nil {
				return err
			}
		}
		for _, ev := range []*payloom.Event{ea, eb} {
			if err := tx.CreateEvent(h.ctx, ev); err != nil {
				return err
			}
		}
		for _, d := range []*payloom.WebhookDelivery{due1, due2, expired, leased, later, succeeded, failed} {
			if err := tx.CreateWebhookDelivery(h.ctx, d); err != nil {
				return err
			}
		}
		return nil
	})

	claim := func(now time.Time, owner string, until time.Time, limit int) []*payloom.WebhookDelivery {
		t.Helper()
		var got []*payloom.WebhookDelivery
		h.update(func(tx payloom.Tx) error {
			var err error
			got, err = tx.ClaimWebhookDeliveries(h.ctx, now, owner, until, limit)
			return err
		})
		return got
	}
	until := now.Add(time.Minute)
	got := claim(now, "node-1", until, 2)
	if want := []string{due1.ID, expired.ID}; !slices.Equal(ids(got, deliveryID), want) {
		t.Fatalf("ClaimWebhookDeliveries(limit 2) = %v; want %v (earliest due first)", ids(got, deliveryID), want)
	}
	wantClaimed := *due1
	wantClaimed.LeaseOwner, wantClaimed.LeaseUntil, wantClaimed.Version, wantClaimed.UpdatedAt = "node-1", until, due1.Version+1, now
	checkDiff(t, "ClaimWebhookDeliveries[0]", &wantClaimed, got[0])

	got = claim(now, "node-2", until, 10)
	if want := []string{due2.ID}; !slices.Equal(ids(got, deliveryID), want) {
		t.Errorf("second ClaimWebhookDeliveries = %v; want %v (the rest of what is due)", ids(got, deliveryID), want)
	}
	if got := claim(now, "node-3", until, 10); len(got) != 0 {
		t.Errorf("ClaimWebhookDeliveries while every due delivery is leased = %v; want none", ids(got, deliveryID))
	}
	if got := claim(now, "node-3", until, 0); len(got) != 0 {
		t.Errorf("ClaimWebhookDeliveries(limit 0) = %v; want none", ids(got, deliveryID))
	}

	// Once the leases run out, another node takes the work over, and the
	// first holder's write is refused.
	after := until.Add(time.Microsecond)
	got = claim(after, "node-4", after.Add(time.Minute), 10)
	want := []string{leased.ID, due1.ID, expired.ID, due2.ID, later.ID}
	if !slices.Equal(ids(got, deliveryID), want) {
		t.Errorf("ClaimWebhookDeliveries after the leases expired = %v; want %v", ids(got, deliveryID), want)
	}
	first := wantClaimed
	first.Status, first.Attempts = payloom.WebhookDeliverySucceeded, 1
	err := h.tryUpdate(func(tx payloom.Tx) error { return tx.UpdateWebhookDelivery(h.ctx, &first) })
	wantCode(t, "UpdateWebhookDelivery(by the holder of an expired lease)", err, payloom.CodeConflict)
}

// testConcurrentClaim: many claims at once never hand out one delivery
// twice, and together take every due delivery.
func testConcurrentClaim(t *testing.T, h *harness) {
	const deliveries, workers = 40, 8
	_, scope := h.merchant()
	we := newWebhookEndpoint(scope, at(0))
	ev := newEvent(scope, payloom.EventPaymentCreated, "pay_1", at(0))
	h.update(func(tx payloom.Tx) error {
		if err := tx.CreateWebhookEndpoint(h.ctx, we); err != nil {
			return err
		}
		if err := tx.CreateEvent(h.ctx, ev); err != nil {
			return err
		}
		for i := range deliveries {
			if err := tx.CreateWebhookDelivery(h.ctx, newWebhookDelivery(ev, we, at(i%5))); err != nil {
				return err
			}
		}
		return nil
	})
	now, until := at(10), at(70)
	var mu sync.Mutex
	owners := map[string][]string{}
	total := 0
	errs := make(chan error, workers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			owner := fmt.Sprintf("node-%d", w)
			for {
				var got []*payloom.WebhookDelivery
				err := h.s.Update(h.ctx, func(tx payloom.Tx) error {
					var err error
					got, err = tx.ClaimWebhookDeliveries(h.ctx, now, owner, until, 3)
					return err
				})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for _, d := range got {
					owners[d.ID] = append(owners[d.ID], owner)
					total++
				}
				done := total >= deliveries
				mu.Unlock()
				if done {
					errs <- nil
					return
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent ClaimWebhookDeliveries = %v; want nil", err)
		}
	}
	if len(owners) != deliveries {
		t.Errorf("concurrent claims took %d distinct deliveries; want %d", len(owners), deliveries)
	}
	for id, by := range owners {
		if len(by) != 1 {
			t.Errorf("delivery %s was claimed by %v; want one owner", id, by)
		}
	}
	h.view(func(tx payloom.Tx) error {
		ds, err := tx.ListWebhookDeliveries(h.ctx, scope, ev.ID)
		must(t, "ListWebhookDeliveries", err)
		for _, d := range ds {
			if got := owners[d.ID]; len(got) != 1 || d.LeaseOwner != got[0] || !d.LeaseUntil.Equal(until) {
				t.Errorf("delivery %s: lease %q until %v; want %v until %v", d.ID, d.LeaseOwner, d.LeaseUntil, got, until)
			}
		}
		return nil
	})
}

func testWebhookAttempts(t *testing.T, h *harness) {
	_, scope := h.merchant()
	scope.Livemode = true
	we := newWebhookEndpoint(scope, at(0))
	ev := newEvent(scope, payloom.EventRefundSucceeded, "re_1", at(0))
	other := newEvent(scope, payloom.EventRefundSucceeded, "re_2", at(0))
	d := newWebhookDelivery(ev, we, at(0))
	d2 := newWebhookDelivery(other, we, at(0))
	newAttempt := func(d *payloom.WebhookDelivery, when time.Time, code int, msg string) *payloom.WebhookAttempt {
		return &payloom.WebhookAttempt{
			ID: payloom.NewID(payloom.PrefixWebhookAttempt), Object: "webhook_attempt", DeliveryID: d.ID,
			EventID: d.EventID, EndpointID: d.EndpointID, MerchantID: d.MerchantID, Livemode: d.Livemode,
			URL: we.URL, At: when, StatusCode: code, DurationMS: 1234, Error: msg,
		}
	}
	// Created out of time order: the list is by attempt time.
	second := newAttempt(d, at(2).Add(time.Microsecond), 200, "")
	first := newAttempt(d, at(1).In(time.FixedZone("UTC+9", 9*3600)), 0, "dial tcp: connection refused")
	unrelated := newAttempt(d2, at(1), 500, "HTTP 500")
	h.update(func(tx payloom.Tx) error {
		if err := tx.CreateWebhookEndpoint(h.ctx, we); err != nil {
			return err
		}
		for _, e := range []*payloom.Event{ev, other} {
			if err := tx.CreateEvent(h.ctx, e); err != nil {
				return err
			}
		}
		for _, x := range []*payloom.WebhookDelivery{d, d2} {
			if err := tx.CreateWebhookDelivery(h.ctx, x); err != nil {
				return err
			}
		}
		for _, a := range []*payloom.WebhookAttempt{second, first, unrelated} {
			if err := tx.CreateWebhookAttempt(h.ctx, a); err != nil {
				return err
			}
		}
		return nil
	})
	others := h.otherScopes(scope)
	h.view(func(tx payloom.Tx) error {
		got, err := tx.ListWebhookAttempts(h.ctx, scope, ev.ID)
		must(t, "ListWebhookAttempts", err)
		if len(got) != 2 {
			t.Fatalf("ListWebhookAttempts = %d attempts; want 2", len(got))
		}
		checkDiff(t, "ListWebhookAttempts[0]", first, got[0])
		checkDiff(t, "ListWebhookAttempts[1]", second, got[1])
		for _, o := range others {
			got, err := tx.ListWebhookAttempts(h.ctx, o, ev.ID)
			must(t, "ListWebhookAttempts(other scope)", err)
			if len(got) != 0 {
				t.Errorf("ListWebhookAttempts(other scope %+v) = %d attempts; want none", o, len(got))
			}
		}
		got, err = tx.ListWebhookAttempts(h.ctx, scope, payloom.NewID(payloom.PrefixEvent))
		must(t, "ListWebhookAttempts(unknown event)", err)
		if got == nil || len(got) != 0 {
			t.Errorf("ListWebhookAttempts(unknown event) = %v; want empty, non-nil", got)
		}
		return nil
	})
	err := h.tryUpdate(func(tx payloom.Tx) error { return tx.CreateWebhookAttempt(h.ctx, first) })
	wantCode(t, "CreateWebhookAttempt(same ID)", err, payloom.CodeAlreadyExists)
}
