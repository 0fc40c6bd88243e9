package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/engine"
	"github.com/payloom/payloom/internal/pgtest"
	"github.com/payloom/payloom/postgres"
	"github.com/payloom/payloom/processor/sandbox"
	"github.com/payloom/payloom/sqlite"
	"github.com/payloom/payloom/vault"
)

// secondNode returns another engine on e's store, clock and processor, as
// a second process would run, under the given node ID.
func (e *env) secondNode(id string) *engine.Engine {
	cfg := e.cfg
	cfg.NodeID = id
	return engine.New(cfg)
}

// wantPass fails unless a pass ran (or not) and did n things.
func wantPass[N int | int64](t *testing.T, call string, ran bool, n N, err error, wantRan bool, wantN N) {
	t.Helper()
	if err != nil || ran != wantRan || n != wantN {
		t.Fatalf("%s = ran %v, %d, %v; want ran %v, %d", call, ran, n, err, wantRan, wantN)
	}
}

// TestRecoveryRunsOnOneNode: two engines on one store make recovery passes
// in turn; only the holder of the recovery lease recovers, the other
// leaves a stale payment alone, and takes the job over once the holder
// stops renewing and its lease (three intervals and a few processor
// timeouts) expires.
func TestRecoveryRunsOnOneNode(t *testing.T) {
	e := newEnv(t, func(c *engine.Config) {
		c.NodeID = "node-a"
		c.RecoveryInterval = time.Minute // lease: 3 minutes + 4 processor timeouts
		// The payments left behind are still resent after the lease
		// moved (the grace would otherwise settle them as not found).
		c.LookupGrace = time.Hour
	})
	a, b := e.eng, e.secondNode("node-b")
	if a.NodeID() != "node-a" || b.NodeID() != "node-b" {
		t.Fatalf("NodeID() = %q, %q; want node-a, node-b", a.NodeID(), b.NodeID())
	}
	// stale leaves a payment processing, as a crashed request does, and
	// moves the clock past the lock timeout.
	stale := func(opKey string) string {
		t.Helper()
		req := paymentReq(e.token(sandbox.CardVisa), 500, payloom.CaptureMethodAutomatic)
		e.crashAt(engine.PhasePaymentCreated)
		mustCrash(t, engine.PhasePaymentCreated, func() { e.eng.CreatePayment(e.ctx, e.scope, opKey, req) })
		p, err := e.eng.ListPayments(e.ctx, e.scope, payloom.PaymentFilter{})
		if err != nil || len(p.Data) == 0 || p.Data[0].Status != payloom.PaymentStatusProcessing {
			t.Fatalf("after the crash: %v; want a processing payment", err)
		}
		e.clock.Advance(31 * time.Second)
		return p.Data[0].ID
	}
	status := func(id string) payloom.PaymentStatus { return e.payment(id).Status }

	p1 := stale("op_1")
	ran, n, err := a.RecoveryPass(e.ctx)
	wantPass(t, "A.RecoveryPass(free lease)", ran, n, err, true, 1)

	p2 := stale("op_2")
	ran, n, err = b.RecoveryPass(e.ctx)
	wantPass(t, "B.RecoveryPass(A holds the lease)", ran, n, err, false, 0)
	if got := status(p2); got != payloom.PaymentStatusProcessing {
		t.Fatalf("stale payment after B's pass without the lease: %s; want processing (untouched)", got)
	}
	ran, n, err = a.RecoveryPass(e.ctx)
	wantPass(t, "A.RecoveryPass(renewal)", ran, n, err, true, 1)

	// A stops (as if killed): its lease, renewed at its last pass, runs
	// out three intervals plus a few processor timeouts later.
	p3 := stale("op_3")
	e.clock.Advance(10 * time.Minute)
	ran, n, err = b.RecoveryPass(e.ctx)
	wantPass(t, "B.RecoveryPass(A's lease expired)", ran, n, err, true, 1)
	ran, n, err = a.RecoveryPass(e.ctx)
	wantPass(t, "A.RecoveryPass(B took over)", ran, n, err, false, 0)

	for _, id := range []string{p1, p2, p3} {
		if got := status(id); got != payloom.PaymentStatusCaptured {
			t.Errorf("payment %s: %s; want captured", id, got)
		}
	}
	if c := e.charges(); c != 3 {
		t.Errorf("sandbox charges = %d; want 3 (one per payment)", c)
	}
}

// onAuthorize is the sandbox with a hook that runs before each
// authorization.
type onAuthorize struct {
	*sandbox.Processor
	hook func()
}

func (p *onAuthorize) Authorize(ctx context.Context, req *payloom.AuthorizeRequest) (*payloom.AuthorizeResult, error) {
	p.hook()
	return p.Processor.Authorize(ctx, req)
}

// TestRecoveryStopsWhenLeaseLost: a pass that outlasts its lease renews it
// as it goes, and stops as soon as it finds that another node has taken the
// job over (here while its first processor call ran, with the clock moved
// past the lease): the rest of the stale work is left to the new holder.
func TestRecoveryStopsWhenLeaseLost(t *testing.T) {
	e := newEnv(t, func(c *engine.Config) {
		c.NodeID = "node-a"
		c.RecoveryInterval = time.Minute // lease: 3 minutes
	})
	var ids []string
	for _, key := range []string{"op_1", "op_2"} {
		req := paymentReq(e.token(sandbox.CardVisa), 500, payloom.CaptureMethodAutomatic)
		e.crashAt(engine.PhasePaymentCreated)
		mustCrash(t, engine.PhasePaymentCreated, func() { e.eng.CreatePayment(e.ctx, e.scope, key, req) })
	}
	l, err := e.eng.ListPayments(e.ctx, e.scope, payloom.PaymentFilter{})
	if err != nil || len(l.Data) != 2 {
		t.Fatalf("after the crashes: %d payments, %v; want 2", len(l.Data), err)
	}
	for _, p := range l.Data {
		ids = append(ids, p.ID)
	}
	e.clock.Advance(31 * time.Second)

	calls := 0
	e.setProcessor(&onAuthorize{Processor: e.sandbox, hook: func() {
		calls++
		if calls > 1 {
			return
		}
		// During the first call: the lease runs out and node B takes it.
		e.clock.Advance(10 * time.Minute)
		err := e.store.Update(e.ctx, func(tx payloom.Tx) error {
			now := e.clock.Now()
			held, err := tx.AcquireLease(e.ctx, engine.LeaseRecovery, "node-b", now, now.Add(3*time.Minute))
			if err == nil && !held {
				err = fmt.Errorf("node B could not take the expired lease")
			}
			return err
		})
		if err != nil {
			t.Errorf("node B takes the lease: %v", err)
		}
	}})
	ran, n, err := e.eng.RecoveryPass(e.ctx)
	wantPass(t, "A.RecoveryPass(lease lost during the pass)", ran, n, err, true, 1)
	processing := 0
	for _, id := range ids {
		if e.payment(id).Status == payloom.PaymentStatusProcessing {
			processing++
		}
	}
	if processing != 1 || calls != 1 {
		t.Errorf("after the pass: %d payments processing, %d processor calls; want 1 and 1 (the pass stopped)", processing, calls)
	}

	// Without a takeover, a long pass renews its lease as it goes: B
	// cannot take it at the time the first lease would have ended.
	e.clock.Advance(3 * time.Minute) // B's lease expired: A takes the job back
	e.setProcessor(&onAuthorize{Processor: e.sandbox, hook: func() { e.clock.Advance(2 * time.Minute) }})
	third := paymentReq(e.token(sandbox.CardVisa), 500, payloom.CaptureMethodAutomatic)
	e.crashAt(engine.PhasePaymentCreated)
	mustCrash(t, engine.PhasePaymentCreated, func() { e.eng.CreatePayment(e.ctx, e.scope, "op_3", third) })
	e.clock.Advance(31 * time.Second)
	ran, n, err = e.eng.RecoveryPass(e.ctx) // two calls, 2 minutes each
	wantPass(t, "A.RecoveryPass(long pass)", ran, n, err, true, 2)
	b := e.secondNode("node-b")
	// 4.5 minutes after the pass began: past the lease taken at its start
	// (3 minutes), within the one renewed before its second call.
	e.clock.Advance(30 * time.Second)
	if ran, _, err := b.RecoveryPass(e.ctx); ran || err != nil {
		t.Errorf("B.RecoveryPass 4.5 minutes after A's long pass began = %v, %v; want not ran (A renewed its lease during the pass)", ran, err)
	}
}

// TestPurgeRunsOnOneNode is TestRecoveryRunsOnOneNode for the idempotency
// purge.
func TestPurgeRunsOnOneNode(t *testing.T) {
	e := newEnv(t, func(c *engine.Config) {
		c.NodeID = "node-a"
		c.IdempotencyTTL = time.Hour
		c.PurgeInterval = time.Hour // lease: 3 hours
	})
	a, b := e.eng, e.secondNode("node-b")
	// expired makes a record and moves the clock past its TTL.
	expired := func(key string) {
		t.Helper()
		if _, _, err := e.eng.Begin(e.ctx, e.scope, key, "POST", "/v1/payments", "fp"); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(2 * time.Hour)
	}
	exists := func(key string) bool {
		t.Helper()
		err := e.store.View(e.ctx, func(tx payloom.Tx) error {
			_, err := tx.GetIdempotencyKey(e.ctx, e.scope, key)
			return err
		})
		if err != nil && !payloom.IsCode(err, payloom.CodeNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}

	expired("k1")
	ran, n, err := a.PurgePass(e.ctx)
	wantPass(t, "A.PurgePass(free lease)", ran, n, err, true, int64(1))

	expired("k2")
	ran, n, err = b.PurgePass(e.ctx)
	wantPass(t, "B.PurgePass(A holds the lease)", ran, n, err, false, int64(0))
	if !exists("k2") {
		t.Fatalf("B purged without the lease")
	}
	ran, n, err = a.PurgePass(e.ctx)
	wantPass(t, "A.PurgePass(renewal)", ran, n, err, true, int64(1))

	expired("k3")
	e.clock.Advance(time.Hour) // A's renewed lease ends 3h after its last pass
	ran, n, err = b.PurgePass(e.ctx)
	wantPass(t, "B.PurgePass(A's lease expired)", ran, n, err, true, int64(1))
	ran, n, err = a.PurgePass(e.ctx)
	wantPass(t, "A.PurgePass(B took over)", ran, n, err, false, int64(0))
}

// TestRunBackgroundReleasesLeases: a node that shuts down gives its jobs
// back, so another node runs them at its next pass instead of after the
// leases expire (the clock does not move here).
func TestRunBackgroundReleasesLeases(t *testing.T) {
	e := newEnv(t, func(c *engine.Config) {
		c.NodeID = "node-a"
		c.RecoveryInterval = time.Hour
		c.PurgeInterval = time.Hour
	})
	a, b := e.eng, e.secondNode("node-b")
	if ran, _, err := a.RecoveryPass(e.ctx); !ran || err != nil {
		t.Fatalf("A.RecoveryPass = %v, %v; want ran", ran, err)
	}
	if ran, _, err := a.PurgePass(e.ctx); !ran || err != nil {
		t.Fatalf("A.PurgePass = %v, %v; want ran", ran, err)
	}
	if ran, _, err := b.RecoveryPass(e.ctx); ran || err != nil {
		t.Fatalf("B.RecoveryPass while A runs = %v, %v; want not ran", ran, err)
	}

	ctx, stop := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() { a.RunBackground(ctx); close(done) }()
	stop()
	<-done

	if ran, _, err := b.RecoveryPass(e.ctx); !ran || err != nil {
		t.Errorf("B.RecoveryPass after A shut down = %v, %v; want ran", ran, err)
	}
	if ran, _, err := b.PurgePass(e.ctx); !ran || err != nil {
		t.Errorf("B.PurgePass after A shut down = %v, %v; want ran", ran, err)
	}
	if ran, _, err := a.RecoveryPass(e.ctx); ran || err != nil {
		t.Errorf("A.RecoveryPass after B took over = %v, %v; want not ran", ran, err)
	}
}

// TestBootstrapConcurrentNodes starts 5 nodes at once on one empty store
// (5 connection pools on one PostgreSQL database, or 5 handles on one
// SQLite file, as 5 processes have): exactly one creates the first merchant
// and its key.
func TestBootstrapConcurrentNodes(t *testing.T) {
	const nodes = 5
	type node interface {
		payloom.Store
		Migrate(context.Context) error
	}
	// Each setup prepares an empty store and returns how a node opens it.
	setups := []struct {
		name  string
		setup func(t *testing.T) func() (node, error)
	}{
		{"sqlite", func(t *testing.T) func() (node, error) {
			path := filepath.Join(t.TempDir(), "payloom.db")
			return func() (node, error) { return sqlite.Open(path) }
		}},
		{"postgres", func(t *testing.T) func() (node, error) {
			c := pgtest.Start(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := c.CreateDatabase(ctx, "payloom"); err != nil {
				t.Fatal(err)
			}
			return func() (node, error) { return postgres.Open(context.Background(), c.URL("payloom")) }
		}},
	}
	for _, su := range setups {
		t.Run(su.name, func(t *testing.T) {
			ctx := context.Background()
			open := su.setup(t)
			keys, err := vault.NewKeys(bytes.Repeat([]byte{7}, 32))
			if err != nil {
				t.Fatal(err)
			}
			engines := make([]*engine.Engine, nodes)
			for i := range engines {
				s, err := open()
				if err != nil {
					t.Fatalf("open node %d: %v", i, err)
				}
				t.Cleanup(func() { s.Close() })
				if err := s.Migrate(ctx); err != nil {
					t.Fatalf("Migrate: %v", err)
				}
				engines[i] = engine.New(engine.Config{Store: s, Vault: vault.New(s, keys, vault.Options{})})
			}

			type result struct {
				secret  payloom.Secret
				created bool
				err     error
			}
			results := make([]result, nodes)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i, eng := range engines {
				wg.Go(func() {
					<-start
					_, secret, created, err := eng.Bootstrap(ctx, &payloom.Merchant{Name: "Default merchant"})
					results[i] = result{secret, created, err}
				})
			}
			close(start)
			wg.Wait()

			var secrets []payloom.Secret
			for i, r := range results {
				if r.err != nil {
					t.Errorf("node %d: Bootstrap = %v", i, r.err)
				}
				if r.created {
					secrets = append(secrets, r.secret)
				}
			}
			if len(secrets) != 1 {
				t.Fatalf("%d of %d concurrent Bootstrap calls created a merchant; want exactly 1", len(secrets), nodes)
			}
			for i, eng := range engines {
				if n, err := eng.CountMerchants(ctx); n != 1 || err != nil {
					t.Errorf("node %d: CountMerchants() = %d, %v; want 1", i, n, err)
				}
				if _, err := eng.Authenticate(ctx, secrets[0].Reveal()); err != nil {
					t.Errorf("node %d: Authenticate(the bootstrap key) = %v; want the key", i, err)
				}
			}
		})
	}
}
