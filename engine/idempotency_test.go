package engine_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/engine"
)

func TestIdempotencyLifecycle(t *testing.T) {
	e := newEnv(t, func(c *engine.Config) { c.LockTimeout = 30 * time.Second })
	const method, path, fp = "POST", "/v1/payments", "fp-1"
	rec, held, err := e.eng.Begin(e.ctx, e.scope, "key-1", method, path, fp)
	if err != nil || !held || rec.Completed() || !payloom.HasPrefix(rec.ID, payloom.PrefixIdempotency) || rec.LockToken == "" {
		t.Fatalf("Begin(new) = %+v, %v, %v; want a held record idk_...", rec, held, err)
	}
	if !rec.LockedUntil.Equal(e.clock.Now().Add(30 * time.Second).Truncate(time.Microsecond)) {
		t.Errorf("LockedUntil = %v; want now + 30s", rec.LockedUntil)
	}

	// While it runs: same request in progress, another request conflicts.
	tests := []struct {
		name, method, path, fp, code string
	}{
		{"same request", method, path, fp, payloom.CodeIdempotencyInProgress},
		{"other body", method, path, "fp-2", payloom.CodeIdempotencyConflict},
		{"other path", method, "/v1/refunds", fp, payloom.CodeIdempotencyConflict},
		{"other method", "PUT", path, fp, payloom.CodeIdempotencyConflict},
	}
	for _, tt := range tests {
		_, _, err := e.eng.Begin(e.ctx, e.scope, "key-1", tt.method, tt.path, tt.fp)
		wantCode(t, "Begin("+tt.name+")", err, tt.code)
	}
	// The same key in another scope is another record.
	other, held, err := e.eng.Begin(e.ctx, payloom.Scope{MerchantID: e.merchant.ID, Livemode: true}, "key-1", method, path, fp)
	if err != nil || !held || other.ID == rec.ID {
		t.Errorf("Begin(live scope) = %+v, %v, %v; want a new held record", other, held, err)
	}

	body := []byte("{\"id\":\"pay_1\",\n  \"amount\": 100 }\x00\xff")
	if err := e.eng.Complete(e.ctx, rec, 201, body); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	body[0] = 'X' // the stored body is a copy
	got, held, err := e.eng.Begin(e.ctx, e.scope, "key-1", method, path, fp)
	if err != nil || held || !got.Completed() || got.ID != rec.ID {
		t.Fatalf("Begin(completed) = %+v, %v, %v; want the completed record, not held", got, held, err)
	}
	want := []byte("{\"id\":\"pay_1\",\n  \"amount\": 100 }\x00\xff")
	if got.ResponseCode != 201 || !bytes.Equal(got.ResponseBody, want) {
		t.Errorf("replay = %d %q; want 201 %q", got.ResponseCode, got.ResponseBody, want)
	}
	// A completed key still conflicts with another request.
	_, _, err = e.eng.Begin(e.ctx, e.scope, "key-1", method, path, "fp-2")
	wantCode(t, "Begin(completed, other body)", err, payloom.CodeIdempotencyConflict)
	// Completing twice is refused: the lease is gone.
	wantCode(t, "Complete(again)", e.eng.Complete(e.ctx, rec, 500, nil), payloom.CodeIdempotencyInProgress)
}

func TestIdempotencyExpiredLeaseTakeover(t *testing.T) {
	e := newEnv(t)
	first, held, err := e.eng.Begin(e.ctx, e.scope, "k", "POST", "/v1/payments", "fp")
	if err != nil || !held {
		t.Fatalf("Begin = %v, %v", held, err)
	}
	e.clock.Advance(29 * time.Second)
	_, _, err = e.eng.Begin(e.ctx, e.scope, "k", "POST", "/v1/payments", "fp")
	wantCode(t, "Begin(lease live)", err, payloom.CodeIdempotencyInProgress)

	e.clock.Advance(2 * time.Second)
	second, held, err := e.eng.Begin(e.ctx, e.scope, "k", "POST", "/v1/payments", "fp")
	if err != nil || !held {
		t.Fatalf("Begin(lease expired) = %v, %v; want held", held, err)
	}
	if second.ID != first.ID || second.LockToken == first.LockToken {
		t.Errorf("takeover = ID %s token %s; want the same ID %s (same operation) and a new token", second.ID, second.LockToken, first.ID)
	}
	// The first holder lost its lease: it can neither complete nor release.
	wantCode(t, "Complete(lost lease)", e.eng.Complete(e.ctx, first, 200, []byte("{}")), payloom.CodeIdempotencyInProgress)
	wantCode(t, "Release(lost lease)", e.eng.Release(e.ctx, first), payloom.CodeIdempotencyInProgress)
	// A different request during the takeover is still a conflict.
	_, _, err = e.eng.Begin(e.ctx, e.scope, "k", "POST", "/v1/payments", "other")
	wantCode(t, "Begin(other body)", err, payloom.CodeIdempotencyConflict)
	if err := e.eng.Complete(e.ctx, second, 200, []byte("{}")); err != nil {
		t.Errorf("Complete(new holder): %v", err)
	}
}

func TestIdempotencyRelease(t *testing.T) {
	e := newEnv(t)
	rec, _, err := e.eng.Begin(e.ctx, e.scope, "k", "POST", "/v1/refunds", "fp")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.eng.Release(e.ctx, rec); err != nil {
		t.Fatalf("Release: %v", err)
	}
	// No waiting for the lease: a retry resumes at once, same operation.
	again, held, err := e.eng.Begin(e.ctx, e.scope, "k", "POST", "/v1/refunds", "fp")
	if err != nil || !held || again.ID != rec.ID || again.Completed() {
		t.Fatalf("Begin(after release) = %+v, %v, %v; want the same record, held", again, held, err)
	}
}

func TestIdempotencyAbandon(t *testing.T) {
	e := newEnv(t)
	rec, _, err := e.eng.Begin(e.ctx, e.scope, "k", "POST", "/v1/payments", "bad body")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.eng.Abandon(e.ctx, rec); err != nil {
		t.Fatalf("Abandon: %v", err)
	}
	// The key is free: a corrected request (another fingerprint) is a new
	// operation, not a conflict.
	fixed, held, err := e.eng.Begin(e.ctx, e.scope, "k", "POST", "/v1/payments", "good body")
	if err != nil || !held || fixed.ID == rec.ID {
		t.Fatalf("Begin(after abandon) = %+v, %v, %v; want a new held record", fixed, held, err)
	}
	// Only the holder may abandon: the old holder's lease is gone, and a
	// completed record cannot be abandoned.
	wantCode(t, "Abandon(again)", e.eng.Abandon(e.ctx, rec), payloom.CodeIdempotencyInProgress)
	if err := e.eng.Complete(e.ctx, fixed, 200, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "Abandon(completed)", e.eng.Abandon(e.ctx, fixed), payloom.CodeIdempotencyInProgress)
	got, held, err := e.eng.Begin(e.ctx, e.scope, "k", "POST", "/v1/payments", "good body")
	if err != nil || held || !got.Completed() {
		t.Errorf("Begin(completed) = %+v, %v, %v; want the stored response", got, held, err)
	}
}

func TestIdempotencyPurge(t *testing.T) {
	e := newEnv(t, func(c *engine.Config) { c.IdempotencyTTL = time.Hour })
	old, _, err := e.eng.Begin(e.ctx, e.scope, "old", "POST", "/v1/payments", "fp")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.eng.Complete(e.ctx, old, 200, []byte("old")); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(50 * time.Minute)
	kept, _, err := e.eng.Begin(e.ctx, e.scope, "new", "POST", "/v1/payments", "fp")
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(20 * time.Minute)
	n, err := e.eng.Purge(e.ctx, e.clock.Now().Add(-time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("Purge = %d, %v; want 1", n, err)
	}
	// "old" is gone: the key starts a new operation.
	rec, held, err := e.eng.Begin(e.ctx, e.scope, "old", "POST", "/v1/payments", "other fingerprint")
	if err != nil || !held || rec.ID == old.ID {
		t.Errorf("Begin(purged key) = %+v, %v, %v; want a new held record", rec, held, err)
	}
	// "new" is kept: its (expired) lease is taken over, same operation.
	rec, _, err = e.eng.Begin(e.ctx, e.scope, "new", "POST", "/v1/payments", "fp")
	if err != nil || rec.ID != kept.ID {
		t.Errorf("Begin(kept key) = %+v, %v; want record %s", rec, err, kept.ID)
	}
}

// TestIdempotencyExpiredNotPurged: a record past its TTL counts as gone even
// before the purge loop ran.
func TestIdempotencyExpiredNotPurged(t *testing.T) {
	e := newEnv(t, func(c *engine.Config) { c.IdempotencyTTL = time.Hour })
	old, _, err := e.eng.Begin(e.ctx, e.scope, "k", "POST", "/v1/payments", "fp")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.eng.Complete(e.ctx, old, 200, []byte("old")); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(61 * time.Minute)
	rec, held, err := e.eng.Begin(e.ctx, e.scope, "k", "POST", "/v1/payments", "fp2")
	if err != nil || !held || rec.ID == old.ID || rec.Completed() {
		t.Errorf("Begin(expired) = %+v, %v, %v; want a new held record", rec, held, err)
	}
}

func TestIdempotencyKeyLength(t *testing.T) {
	e := newEnv(t)
	for _, k := range []string{"", string(bytes.Repeat([]byte("a"), 256))} {
		_, _, err := e.eng.Begin(e.ctx, e.scope, k, "POST", "/v1/payments", "fp")
		wantCode(t, "Begin(bad key)", err, payloom.CodeValidation)
	}
	if _, held, err := e.eng.Begin(e.ctx, e.scope, string(bytes.Repeat([]byte("a"), 255)), "POST", "/v1/payments", "fp"); err != nil || !held {
		t.Errorf("Begin(255 chars) = %v, %v; want held", held, err)
	}
}

// TestRunBackgroundPurges runs the background loop with an expired record
// and waits (without a deadline) until the loop has purged it.
func TestRunBackgroundPurges(t *testing.T) {
	e := newEnv(t, func(c *engine.Config) {
		c.IdempotencyTTL = time.Hour
		c.PurgeInterval = time.Millisecond
		c.RecoveryInterval = time.Millisecond
	})
	if _, _, err := e.eng.Begin(e.ctx, e.scope, "k", "POST", "/v1/payments", "fp"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Hour)
	done := make(chan struct{})
	bg, stop := context.WithCancel(e.ctx)
	go func() { e.eng.RunBackground(bg); close(done) }()
	for {
		err := e.store.View(e.ctx, func(tx payloom.Tx) error {
			_, err := tx.GetIdempotencyKey(e.ctx, e.scope, "k")
			return err
		})
		if payloom.IsCode(err, payloom.CodeNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	stop()
	<-done // RunBackground returns once its context is done
}
