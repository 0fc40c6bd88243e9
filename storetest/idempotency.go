package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/payloom/payloom"
)

func testCreateIdempotencyKey(t *testing.T, h *harness) {
	_, scope := h.merchant()
	others := h.otherScopes(scope)
	completed := at(1).Add(17 * time.Microsecond)
	k := &payloom.IdempotencyKey{
		ID: payloom.NewID(payloom.PrefixIdempotency), MerchantID: scope.MerchantID, Livemode: scope.Livemode,
		Key: "order-42/ünï code", Fingerprint: "sha256:abc", Method: "POST", Path: "/v1/refunds",
		LockedUntil: at(2).Add(3 * time.Microsecond), LockToken: "lt_1", ResponseCode: 201,
		ResponseBody: []byte("{\"id\": \"pay_1\"}\n\x00\xff"), CompletedAt: &completed, CreatedAt: at(0),
	}
	unlocked := newIdempotencyKey(scope, "bare", at(0))
	unlocked.ResponseBody = nil // stored empty

	dup := newIdempotencyKey(scope, k.Key, at(5))
	dup.Fingerprint = "other"
	h.update(func(tx payloom.Tx) error {
		must(t, "CreateIdempotencyKey", tx.CreateIdempotencyKey(h.ctx, k))
		wantCode(t, "CreateIdempotencyKey(same scope and Key)", tx.CreateIdempotencyKey(h.ctx, dup), payloom.CodeAlreadyExists)
		// The transaction is still usable: it goes on reading and writing.
		got, err := tx.GetIdempotencyKey(h.ctx, scope, k.Key)
		must(t, "GetIdempotencyKey after a duplicate", err)
		checkDiff(t, "GetIdempotencyKey after a duplicate", k, got)
		for _, o := range others {
			// The same Key in another scope is another record.
			must(t, "CreateIdempotencyKey(other scope)", tx.CreateIdempotencyKey(h.ctx, newIdempotencyKey(o, k.Key, at(0))))
		}
		return tx.CreateIdempotencyKey(h.ctx, unlocked)
	})
	wantUnlocked := *unlocked
	wantUnlocked.ResponseBody = []byte{}
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetIdempotencyKey(h.ctx, scope, k.Key)
		must(t, "GetIdempotencyKey", err)
		checkDiff(t, "GetIdempotencyKey", k, got)
		got, err = tx.GetIdempotencyKey(h.ctx, scope, unlocked.Key)
		must(t, "GetIdempotencyKey", err)
		checkDiff(t, "GetIdempotencyKey(nil ResponseBody)", &wantUnlocked, got)
		for _, o := range others {
			got, err := tx.GetIdempotencyKey(h.ctx, o, unlocked.Key)
			wantCode(t, fmt.Sprintf("GetIdempotencyKey(other scope %+v)", o), err, payloom.CodeNotFound)
			if got, err = tx.GetIdempotencyKey(h.ctx, o, k.Key); err == nil && got.ID == k.ID {
				t.Errorf("GetIdempotencyKey(other scope %+v) = the first scope's record", o)
			}
		}
		return nil
	})
	// A duplicate ID in another Key is a unique violation too.
	sameID := newIdempotencyKey(scope, "fresh", at(0))
	sameID.ID = k.ID
	err := h.tryUpdate(func(tx payloom.Tx) error { return tx.CreateIdempotencyKey(h.ctx, sameID) })
	wantCode(t, "CreateIdempotencyKey(same ID)", err, payloom.CodeAlreadyExists)
}

func testUpdateIdempotencyKey(t *testing.T, h *harness) {
	_, scope := h.merchant()
	k := newIdempotencyKey(scope, "k1", at(0))
	k.LockedUntil, k.LockToken = at(1), "lt_a"
	h.update(func(tx payloom.Tx) error { return tx.CreateIdempotencyKey(h.ctx, k) })

	// Take over the lease, then complete.
	k.LockedUntil, k.LockToken = at(3).Add(time.Microsecond), "lt_b"
	h.update(func(tx payloom.Tx) error { return tx.UpdateIdempotencyKey(h.ctx, k) })
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetIdempotencyKey(h.ctx, scope, k.Key)
		must(t, "GetIdempotencyKey", err)
		checkDiff(t, "GetIdempotencyKey after taking the lease", k, got)
		if got.Completed() {
			t.Errorf("GetIdempotencyKey().Completed() = true; want false")
		}
		return nil
	})
	completed := at(4)
	k.LockedUntil, k.LockToken, k.ResponseCode = time.Time{}, "", 402
	k.ResponseBody, k.CompletedAt = []byte(`{"error":{"code":"card_declined"}}`), &completed
	h.update(func(tx payloom.Tx) error { return tx.UpdateIdempotencyKey(h.ctx, k) })
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetIdempotencyKey(h.ctx, scope, k.Key)
		must(t, "GetIdempotencyKey", err)
		checkDiff(t, "GetIdempotencyKey after completion", k, got)
		return nil
	})
	ghost := *k
	ghost.ID = payloom.NewID(payloom.PrefixIdempotency)
	err := h.tryUpdate(func(tx payloom.Tx) error { return tx.UpdateIdempotencyKey(h.ctx, &ghost) })
	wantCode(t, "UpdateIdempotencyKey(unknown)", err, payloom.CodeNotFound)
}

// testCompleteIdempotencyKey: the response is stored only by the holder of
// the lease, once.
func testCompleteIdempotencyKey(t *testing.T, h *harness) {
	_, scope := h.merchant()
	k := newIdempotencyKey(scope, "k1", at(0))
	k.LockedUntil, k.LockToken = at(1), "lt_a"
	h.update(func(tx payloom.Tx) error { return tx.CreateIdempotencyKey(h.ctx, k) })

	done := *k
	completed := at(2)
	done.ResponseCode, done.ResponseBody, done.CompletedAt = 200, []byte(`{"id":"pay_1"}`), &completed
	err := h.tryUpdate(func(tx payloom.Tx) error { return tx.CompleteIdempotencyKey(h.ctx, &done, "lt_other") })
	wantCode(t, "CompleteIdempotencyKey(another holder's token)", err, payloom.CodeNotFound)
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetIdempotencyKey(h.ctx, scope, k.Key)
		must(t, "GetIdempotencyKey", err)
		checkDiff(t, "GetIdempotencyKey after a refused completion", k, got)
		return nil
	})

	h.update(func(tx payloom.Tx) error { return tx.CompleteIdempotencyKey(h.ctx, &done, "lt_a") })
	want := done
	want.LockedUntil, want.LockToken = time.Time{}, ""
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetIdempotencyKey(h.ctx, scope, k.Key)
		must(t, "GetIdempotencyKey", err)
		checkDiff(t, "GetIdempotencyKey after completion", &want, got)
		return nil
	})
	again := done
	again.ResponseBody = []byte(`{"id":"pay_2"}`)
	for _, token := range []string{"lt_a", ""} {
		err := h.tryUpdate(func(tx payloom.Tx) error { return tx.CompleteIdempotencyKey(h.ctx, &again, token) })
		wantCode(t, fmt.Sprintf("CompleteIdempotencyKey(completed, token %q)", token), err, payloom.CodeNotFound)
	}
	ghost := done
	ghost.ID = payloom.NewID(payloom.PrefixIdempotency)
	err = h.tryUpdate(func(tx payloom.Tx) error { return tx.CompleteIdempotencyKey(h.ctx, &ghost, "lt_a") })
	wantCode(t, "CompleteIdempotencyKey(unknown)", err, payloom.CodeNotFound)
}

func testDeleteIdempotencyKey(t *testing.T, h *harness) {
	_, scope := h.merchant()
	k := newIdempotencyKey(scope, "k1", at(0))
	h.update(func(tx payloom.Tx) error { return tx.CreateIdempotencyKey(h.ctx, k) })

	// Another scope cannot delete it.
	for _, other := range h.otherScopes(scope) {
		ghost := *k
		ghost.MerchantID, ghost.Livemode = other.MerchantID, other.Livemode
		err := h.tryUpdate(func(tx payloom.Tx) error { return tx.DeleteIdempotencyKey(h.ctx, &ghost) })
		wantCode(t, "DeleteIdempotencyKey(other scope)", err, payloom.CodeNotFound)
	}
	h.update(func(tx payloom.Tx) error { return tx.DeleteIdempotencyKey(h.ctx, k) })
	err := h.s.View(h.ctx, func(tx payloom.Tx) error {
		_, err := tx.GetIdempotencyKey(h.ctx, scope, k.Key)
		return err
	})
	wantCode(t, "GetIdempotencyKey(deleted)", err, payloom.CodeNotFound)
	err = h.tryUpdate(func(tx payloom.Tx) error { return tx.DeleteIdempotencyKey(h.ctx, k) })
	wantCode(t, "DeleteIdempotencyKey(deleted)", err, payloom.CodeNotFound)

	// The key is free again.
	again := newIdempotencyKey(scope, "k1", at(1))
	h.update(func(tx payloom.Tx) error { return tx.CreateIdempotencyKey(h.ctx, again) })
}

func testDeleteIdempotencyKeysBefore(t *testing.T, h *harness) {
	_, scope := h.merchant()
	other := h.otherScopes(scope)[0]
	var keys []*payloom.IdempotencyKey
	h.update(func(tx payloom.Tx) error {
		for i, s := range []payloom.Scope{scope, other, scope, scope, other} {
			k := newIdempotencyKey(s, fmt.Sprintf("k%d", i), at(i*60))
			if err := tx.CreateIdempotencyKey(h.ctx, k); err != nil {
				return err
			}
			keys = append(keys, k)
		}
		return nil
	})
	tests := []struct {
		before time.Time
		want   int64
		left   int // keys[left:] remain
		limit  int
	}{
		{at(0), 0, 0, 10}, // strictly before
		{at(60).Add(time.Microsecond), 2, 2, 10},
		{at(60).Add(time.Microsecond), 0, 2, 10},
		{at(100000), 1, 3, 1}, // at most limit, oldest first
		{at(100000), 0, 3, 0},
		{at(100000), 2, 5, 10},
	}
	for _, tt := range tests {
		var n int64
		h.update(func(tx payloom.Tx) error {
			var err error
			n, err = tx.DeleteIdempotencyKeysBefore(h.ctx, tt.before, tt.limit)
			return err
		})
		call := fmt.Sprintf("DeleteIdempotencyKeysBefore(%s, %d)", tt.before.Format(time.RFC3339Nano), tt.limit)
		if n != tt.want {
			t.Errorf("%s = %d; want %d", call, n, tt.want)
		}
		h.view(func(tx payloom.Tx) error {
			for i, k := range keys {
				_, err := tx.GetIdempotencyKey(h.ctx, k.Scope(), k.Key)
				if i < tt.left {
					wantCode(t, call+": GetIdempotencyKey("+k.Key+")", err, payloom.CodeNotFound)
				} else if err != nil {
					t.Errorf("%s: GetIdempotencyKey(%q) = %v; want it kept", call, k.Key, err)
				}
			}
			return nil
		})
	}
}

// testConcurrentUpdatePayment: read-modify-write Updates from many
// goroutines serialize; none is lost. A CodeConflict (a store that lets
// two run at once and catches it by Version) is retried as the engine does.
func testConcurrentUpdatePayment(t *testing.T, h *harness) {
	const workers = 20
	_, scope := h.merchant()
	p := newPayment(scope, at(0))
	p.Status, p.AmountCaptured = payloom.PaymentStatusCaptured, p.Amount
	h.createPayment(p)

	start := make(chan struct{})
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for try := 0; ; try++ {
				err := h.s.Update(h.ctx, func(tx payloom.Tx) error {
					got, err := tx.GetPayment(h.ctx, scope, p.ID)
					if err != nil {
						return err
					}
					got.AmountRefunded++
					return tx.UpdatePayment(h.ctx, got)
				})
				if payloom.IsCode(err, payloom.CodeConflict) && try < 1000 {
					continue
				}
				errs <- err
				return
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Update(read, UpdatePayment) = %v; want nil", err)
		}
	}
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetPayment(h.ctx, scope, p.ID)
		must(t, "GetPayment", err)
		if got.AmountRefunded != workers || got.Version != p.Version+workers {
			t.Errorf("after %d concurrent increments: AmountRefunded = %d, Version = %d; want %d, %d",
				workers, got.AmountRefunded, got.Version, workers, p.Version+workers)
		}
		return nil
	})
}

// testConcurrentCreateIdempotencyKey: of many requests claiming one key at
// once, exactly one wins; the others see CodeAlreadyExists.
func testConcurrentCreateIdempotencyKey(t *testing.T, h *harness) {
	const workers = 20
	_, scope := h.merchant()
	start := make(chan struct{})
	type result struct {
		id  string
		err error
	}
	results := make(chan result, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := newIdempotencyKey(scope, "same-key", at(0))
			<-start
			err := h.s.Update(h.ctx, func(tx payloom.Tx) error { return tx.CreateIdempotencyKey(h.ctx, k) })
			results <- result{k.ID, err}
		}()
	}
	close(start)
	wg.Wait()
	close(results)
	var winners []string
	for r := range results {
		switch {
		case r.err == nil:
			winners = append(winners, r.id)
		case !payloom.IsCode(r.err, payloom.CodeAlreadyExists):
			t.Errorf("CreateIdempotencyKey(concurrent) = %v; want nil or %s", r.err, payloom.CodeAlreadyExists)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("concurrent CreateIdempotencyKey: %d succeeded; want exactly 1", len(winners))
	}
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetIdempotencyKey(h.ctx, scope, "same-key")
		must(t, "GetIdempotencyKey", err)
		if got.ID != winners[0] {
			t.Errorf("GetIdempotencyKey().ID = %q; want the winner %q", got.ID, winners[0])
		}
		return nil
	})
}
