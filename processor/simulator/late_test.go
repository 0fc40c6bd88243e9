package simulator_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/processor/simulator"
)

// manualClock is a simulator clock the test moves.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// unanswered sends an authorization the simulator will not answer and
// gives up once cond holds: the caller's error (outcome unknown) is
// returned. It waits for the simulator's state, never for a duration.
func unanswered(t *testing.T, c *simulator.Connector, req *payloom.AuthorizeRequest, cond func() bool) error {
	t.Helper()
	ctx, cancel := context.WithCancel(bg)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Authorize(ctx, req)
		errc <- err
	}()
	waitFor(t, cond)
	cancel()
	err := <-errc
	if err == nil {
		t.Fatalf("Authorize(%s) answered; want no answer", req.IdempotencyKey)
	}
	return err
}

func lookup(t *testing.T, c *simulator.Connector, key string) *payloom.LookupResult {
	t.Helper()
	res, err := c.Lookup(bg, &payloom.LookupRequest{IdempotencyKey: key})
	if err != nil {
		t.Fatalf("Lookup(%s) = %v", key, err)
	}
	return res
}

// TestLateCommit: a late commit is invisible (no answer, Lookup misses it,
// a retry hangs too) until it commits, by the control API or after its
// delay; then Lookup finds it and a retry replays it.
func TestLateCommit(t *testing.T) {
	tests := []struct {
		name   string
		rule   simulator.Rule
		commit func(t *testing.T, sim *simulator.Server, ctl *simulator.Control, clock *manualClock)
	}{
		{
			name: "control API",
			rule: simulator.Rule{Action: simulator.ActionLateCommit, Times: 1},
			commit: func(t *testing.T, sim *simulator.Server, ctl *simulator.Control, clock *manualClock) {
				if n, err := ctl.CommitHeld(bg); err != nil || n != 1 {
					t.Fatalf("CommitHeld = %d, %v; want 1", n, err)
				}
			},
		},
		{
			name: "after a delay",
			rule: simulator.Rule{Action: simulator.ActionLateCommit, Times: 1, CommitAfterMS: 60_000},
			commit: func(t *testing.T, sim *simulator.Server, ctl *simulator.Control, clock *manualClock) {
				clock.Advance(59 * time.Second)
				if n := len(sim.Ledger().Held); n != 1 {
					t.Fatalf("held before the delay = %d; want 1", n)
				}
				clock.Advance(time.Second)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &manualClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
			sim, url := startSimulator(t, simulator.Options{Clock: clock.Now})
			ctl := &simulator.Control{BaseURL: url}
			c := simulator.NewConnector(url, simulator.ConnectorOptions{})
			addRules(t, sim, tt.rule)
			req := authReq("late", simulator.CardApprove, 4200, false)
			held := func() bool { return len(sim.Ledger().Held) == 1 }
			unanswered(t, c, req, held)
			if got := lookup(t, c, "late"); got.Found {
				t.Fatalf("Lookup(held) = %+v; want not found", got)
			}
			// A retry under the same key is not answered either, and
			// does not make a second authorization.
			var retried sync.WaitGroup
			retried.Add(1)
			go func() {
				defer retried.Done()
				ctx, cancel := context.WithTimeout(bg, 50*time.Millisecond)
				defer cancel()
				if _, err := c.Authorize(ctx, req); err == nil {
					t.Errorf("Authorize(retry of a held key) answered; want no answer")
				}
			}()
			retried.Wait()
			if l := sim.Ledger(); len(l.Held) != 1 || len(l.Authorizations) != 0 || l.Held[0].Status != "approved" {
				t.Fatalf("ledger while held = %+v; want one approved held, none recorded", l)
			}

			tt.commit(t, sim, ctl, clock)
			got := lookup(t, c, "late")
			if !got.Found || got.Result.Status != payloom.AuthorizationApproved || got.Captured || got.Voided {
				t.Fatalf("Lookup(committed) = %+v; want found, approved, not captured", got)
			}
			again := mustAuthorize(t, c, req)
			if again.Status != payloom.AuthorizationApproved || again.TransactionID != got.Result.TransactionID {
				t.Errorf("retry after the commit = %s %s; want approved %s", again.Status, again.TransactionID, got.Result.TransactionID)
			}
			l := sim.Ledger()
			if len(l.Held) != 0 || len(l.Approved()) != 1 || !l.Approved()[0].CreatedAt.Equal(clock.Now()) {
				t.Errorf("ledger after the commit = %+v; want one approval recorded at %s, none held", l, clock.Now())
			}
			// What commits late can be voided like any authorization.
			v, err := c.Void(bg, &payloom.VoidRequest{IdempotencyKey: "void_late", TransactionID: got.Result.TransactionID})
			if err != nil || !v.Succeeded {
				t.Errorf("Void(late authorization) = %+v, %v; want succeeded", v, err)
			}
		})
	}
}

// TestLose: a lost request leaves no trace; a retry is a new request.
func TestLose(t *testing.T) {
	sim, url := startSimulator(t, simulator.Options{})
	c := simulator.NewConnector(url, simulator.ConnectorOptions{})
	addRules(t, sim, simulator.Rule{Action: simulator.ActionLose, Times: 1})
	req := authReq("lost", simulator.CardApprove, 10, true)
	unanswered(t, c, req, func() bool { return len(sim.Rules()) == 0 })
	if got := lookup(t, c, "lost"); got.Found {
		t.Fatalf("Lookup(lost) = %+v; want not found", got)
	}
	if l := sim.Ledger(); len(l.Authorizations) != 0 || len(l.Held) != 0 {
		t.Fatalf("ledger after a lost request = %+v; want empty", l)
	}
	if res := mustAuthorize(t, c, req); res.Status != payloom.AuthorizationApproved {
		t.Errorf("retry of a lost request = %s; want approved", res.Status)
	}
}

// TestLateFaults: with LateRate 1 every new authorization is held until
// the control API commits them; keys already recorded are never late.
func TestLateFaults(t *testing.T) {
	sim, url := startSimulator(t, simulator.Options{})
	c := simulator.NewConnector(url, simulator.ConnectorOptions{})
	mustAuthorize(t, c, authReq("before", simulator.CardApprove, 10, true))
	if err := sim.SetFaults(simulator.Faults{Seed: 3, LateRate: 1}); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"a", "b"} {
		n := len(sim.Ledger().Held) + 1
		unanswered(t, c, authReq(key, simulator.CardApprove, 10, true), func() bool { return len(sim.Ledger().Held) == n })
	}
	if res := mustAuthorize(t, c, authReq("before", simulator.CardApprove, 10, true)); res.Status != payloom.AuthorizationApproved {
		t.Errorf("replay of a recorded key under LateRate 1 = %s; want approved", res.Status)
	}
	if n := sim.CommitHeld(); n != 2 {
		t.Errorf("CommitHeld = %d; want 2", n)
	}
	if n := len(sim.Ledger().Approved()); n != 3 {
		t.Errorf("approved after the commit = %d; want 3", n)
	}
}

func TestLateRulesValidated(t *testing.T) {
	sim, _ := startSimulator(t, simulator.Options{})
	for _, r := range []simulator.Rule{
		{Operation: "capture", Action: simulator.ActionLateCommit},
		{Action: simulator.ActionApprove, CommitAfterMS: 10},
		{Action: simulator.ActionLateCommit, CommitAfterMS: -1},
	} {
		if _, err := sim.AddRules(r); err == nil {
			t.Errorf("AddRules(%+v) = nil; want an error", r)
		}
	}
	for _, f := range []simulator.Faults{{LateRate: 1.5}, {ErrorRate: 0.5, LateRate: 0.6}, {LateCommitAfterMS: -1}} {
		if err := sim.SetFaults(f); err == nil {
			t.Errorf("SetFaults(%+v) = nil; want an error", f)
		}
	}
}
