package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/payloom/payloom"
)

// acquire runs AcquireLease in its own Update and returns whether owner
// holds the lease.
func (h *harness) acquire(name, owner string, now, until time.Time) bool {
	h.t.Helper()
	var held bool
	h.update(func(tx payloom.Tx) error {
		var err error
		held, err = tx.AcquireLease(h.ctx, name, owner, now, until)
		return err
	})
	return held
}

// release runs ReleaseLease in its own Update.
func (h *harness) release(name, owner string) {
	h.t.Helper()
	h.update(func(tx payloom.Tx) error { return tx.ReleaseLease(h.ctx, name, owner) })
}

// testLease walks one lease through its life: taken when free, refused to
// another owner while it runs, renewed by its owner (which moves its end),
// taken over once expired (until <= now), untouched by a release from a
// non-owner, and free at once after its owner's release. Leases of
// different names are independent.
func testLease(t *testing.T, h *harness) {
	const job = "recovery"
	steps := []struct {
		do         string // "acquire" or "release"
		owner      string
		now, until time.Time
		name       string // default job
		want       bool   // for "acquire": whether owner holds it after
		what       string
	}{
		{do: "acquire", owner: "a", now: at(0), until: at(1), want: true, what: "a free lease"},
		{do: "acquire", owner: "b", now: at(0).Add(30 * time.Second), until: at(2), want: false, what: "a's running lease"},
		{do: "acquire", owner: "b", name: "purge", now: at(0), until: at(5), want: true, what: "another name"},
		{do: "acquire", owner: "a", now: at(0).Add(30 * time.Second), until: at(2), want: true, what: "a renewing its lease"},
		// Past the first end: only the renewal keeps b out.
		{do: "acquire", owner: "b", now: at(1).Add(30 * time.Second), until: at(3), want: false, what: "a's renewed lease"},
		// Exactly at the end the lease has expired.
		{do: "acquire", owner: "b", now: at(2), until: at(3), want: true, what: "a's expired lease"},
		{do: "acquire", owner: "a", now: at(2).Add(time.Second), until: at(4), want: false, what: "b's lease that took a's over"},
		{do: "release", owner: "a"}, // not a's: nothing happens
		{do: "acquire", owner: "a", now: at(2).Add(2 * time.Second), until: at(4), want: false, what: "b's lease after a's release"},
		{do: "acquire", owner: "b", now: at(2).Add(3 * time.Second), until: at(4), want: true, what: "b renewing after a's release"},
		{do: "release", owner: "b"},
		{do: "acquire", owner: "a", now: at(2).Add(4 * time.Second), until: at(4), want: true, what: "a lease its owner released"},
		{do: "release", owner: "c", name: "never-taken"},
		{do: "acquire", owner: "a", name: "purge", now: at(1), until: at(6), want: false, what: "b's lease of another name"},
	}
	for i, s := range steps {
		name := s.name
		if name == "" {
			name = job
		}
		switch s.do {
		case "release":
			h.release(name, s.owner)
		case "acquire":
			if got := h.acquire(name, s.owner, s.now, s.until); got != s.want {
				t.Errorf("step %d: AcquireLease(%q, %q) on %s = %v; want %v", i, name, s.owner, s.what, got, s.want)
			}
		}
	}
}

// testLeaseTransactions: losing a lease leaves the transaction usable; a
// rolled-back acquisition takes nothing; a View cannot acquire; malformed
// leases are refused.
func testLeaseTransactions(t *testing.T, h *harness) {
	if !h.acquire("job", "a", at(0), at(10)) {
		t.Fatalf("AcquireLease(free) = false; want true")
	}
	m := &payloom.Merchant{ID: payloom.NewID(payloom.PrefixMerchant), Name: "After a lost lease", MinAmount: 1, MaxAmount: 2, CreatedAt: base}
	h.update(func(tx payloom.Tx) error {
		held, err := tx.AcquireLease(h.ctx, "job", "b", at(1), at(11))
		must(t, "AcquireLease(held by another)", err)
		if held {
			t.Errorf("AcquireLease(held by another) = true; want false")
		}
		// The transaction goes on reading and writing.
		return tx.CreateMerchant(h.ctx, m)
	})
	h.view(func(tx payloom.Tx) error {
		_, err := tx.GetMerchant(h.ctx, m.ID)
		must(t, "GetMerchant(created after a lost lease)", err)
		return nil
	})

	err := h.tryUpdate(func(tx payloom.Tx) error {
		held, err := tx.AcquireLease(h.ctx, "rolled-back", "a", at(0), at(10))
		if err != nil || !held {
			return fmt.Errorf("AcquireLease(free) = %v, %v; want true", held, err)
		}
		return errTest
	})
	if !errors.Is(err, errTest) {
		t.Fatalf("Update(acquire, then fail) = %v; want fn's error", err)
	}
	if !h.acquire("rolled-back", "b", at(1), at(10)) {
		t.Errorf("AcquireLease after a rolled-back acquisition by another = false; want true")
	}
	_ = h.s.View(h.ctx, func(tx payloom.Tx) error {
		if _, err := tx.AcquireLease(h.ctx, "in-view", "a", at(0), at(10)); err == nil {
			t.Errorf("AcquireLease in a View = nil error; want one")
		}
		return nil
	})
	if !h.acquire("in-view", "b", at(1), at(10)) {
		t.Errorf("AcquireLease after an acquisition in a View = false; want true")
	}

	bad := []struct {
		name, owner string
		now, until  time.Time
	}{
		{"", "a", at(0), at(1)},
		{"job2", "", at(0), at(1)},
		{"job2", "a", at(1), at(1)},
		{"job2", "a", at(1), at(0)},
		{"job2", "a", time.Time{}, at(1)},
	}
	for _, b := range bad {
		err := h.tryUpdate(func(tx payloom.Tx) error {
			_, err := tx.AcquireLease(h.ctx, b.name, b.owner, b.now, b.until)
			return err
		})
		if err == nil {
			t.Errorf("AcquireLease(%q, %q, %v, %v) = nil error; want one", b.name, b.owner, b.now, b.until)
		}
	}
	for _, b := range bad[:2] {
		if err := h.tryUpdate(func(tx payloom.Tx) error { return tx.ReleaseLease(h.ctx, b.name, b.owner) }); err == nil {
			t.Errorf("ReleaseLease(%q, %q) = nil error; want one", b.name, b.owner)
		}
	}
}

// testConcurrentAcquireLease: 20 nodes acquiring one lease at once, first
// while it does not exist yet, then once it has expired: each time exactly
// one gets it.
func testConcurrentAcquireLease(t *testing.T, h *harness) {
	const workers = 20
	rounds := []struct {
		name       string
		now, until time.Time
	}{
		{"new lease", at(0), at(1)},
		{"expired lease", at(1), at(2)},
	}
	for _, r := range rounds {
		winners := concurrently(t, workers, func(i int) (bool, error) {
			var held bool
			err := h.s.Update(h.ctx, func(tx payloom.Tx) error {
				var err error
				held, err = tx.AcquireLease(h.ctx, "job", fmt.Sprintf("node-%d", i), r.now, r.until)
				return err
			})
			return held, err
		})
		if len(winners) != 1 {
			t.Fatalf("%s: %d concurrent AcquireLease calls got it (%v); want exactly 1", r.name, len(winners), winners)
		}
		winner := fmt.Sprintf("node-%d", winners[0])
		for i := range workers {
			owner := fmt.Sprintf("node-%d", i)
			if got := h.acquire("job", owner, r.now.Add(time.Second), r.until); got != (owner == winner) {
				t.Errorf("%s: AcquireLease(%q) after the race = %v; want %v (winner %s)", r.name, owner, got, owner == winner, winner)
			}
		}
	}
}

// testLeaseSerializes is the property Bootstrap relies on: transactions
// that begin with AcquireLease of one name run one after the other, whether
// or not they get the lease, so a check-then-create after it is safe on any
// isolation level. 20 transactions each count merchants and create one when
// there is none: exactly one merchant results.
func testLeaseSerializes(t *testing.T, h *harness) {
	const workers = 20
	created := concurrently(t, workers, func(i int) (bool, error) {
		var made bool
		err := h.s.Update(h.ctx, func(tx payloom.Tx) error {
			made = false
			if _, err := tx.AcquireLease(h.ctx, "bootstrap", fmt.Sprintf("node-%d", i), at(0), at(1)); err != nil {
				return err
			}
			n, err := tx.CountMerchants(h.ctx)
			if err != nil || n > 0 {
				return err
			}
			m := &payloom.Merchant{ID: payloom.NewID(payloom.PrefixMerchant), Name: "First", MinAmount: 1, MaxAmount: 2, CreatedAt: base}
			made = true
			return tx.CreateMerchant(h.ctx, m)
		})
		return made, err
	})
	if len(created) != 1 {
		t.Errorf("%d concurrent check-then-create transactions created a merchant; want exactly 1", len(created))
	}
	h.view(func(tx payloom.Tx) error {
		n, err := tx.CountMerchants(h.ctx)
		must(t, "CountMerchants", err)
		if n != 1 {
			t.Errorf("CountMerchants() after concurrent check-then-create = %d; want 1", n)
		}
		return nil
	})
}

// concurrently runs fn(i) for i in [0, n), released at once, fails the test
// on any error and returns the i for which fn reported true, in order.
func concurrently(t *testing.T, n int, fn func(i int) (bool, error)) []int {
	t.Helper()
	start := make(chan struct{})
	ok := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ok[i], errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	var out []int
	for i := range n {
		if errs[i] != nil {
			t.Errorf("worker %d: %v", i, errs[i])
		}
		if ok[i] {
			out = append(out, i)
		}
	}
	return out
}
