package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// crashEnv makes idempotency leases short, so that a retry after a crash
// takes the dead request's key over within seconds. Not shorter: the engine
// bounds a processor call to 2/3 of the lease, and a loaded machine running
// a -race binary must still finish ordinary calls well within it.
var crashEnv = []string{"PAYLOOM_IDEMPOTENCY_LOCK_TIMEOUT=3s"}

// crashRequest is the request a crash test interrupts and then retries.
type crashRequest struct {
	method, path string
	body         any
}

// crashCase is one family of phases: how to set up the objects the
// request needs, and what must hold once the retry succeeded.
type crashCase struct {
	phases []string
	setup  func(t *testing.T, c *client) crashRequest
	check  func(t *testing.T, c *client, r *response, in *instance) (stop func())
}

// TestCrashBetweenPhases kills the server (SIGKILL, from the engine's fault
// hook) right after each phase of a payment, a capture and a refund, then
// restarts it and retries the same request with the same Idempotency-Key:
// the operation completes, with exactly one processor call.
func TestCrashBetweenPhases(t *testing.T) {
	cases := []crashCase{
		{
			phases: []string{"payment_created", "processor_called", "payment_recorded"},
			setup: func(t *testing.T, c *client) crashRequest {
				tok := c.tokenize(cardVisa, cvcA)
				return crashRequest{"POST", "/v1/payments", paymentBody(tok.ID, 2500, "USD", "automatic")}
			},
			check: func(t *testing.T, c *client, r *response, in *instance) func() {
				var p payment
				decode(t, r, &p)
				if p.Status != "captured" || p.AmountCaptured != 2500 || len(p.Attempts) != 1 {
					t.Errorf("payment after crash and retry = %s; want captured 2500 with one attempt", r.Body)
				}
				if n := len(listPayments(t, c)); n != 1 {
					t.Errorf("payments = %d; want 1", n)
				}
				return func() {
					if got := sandboxCount(t, in, "authorize"); got != 1 {
						t.Errorf("sandbox authorizations = %d; want 1", got)
					}
				}
			},
		},
		{
			phases: []string{"action_claimed", "action_called", "action_recorded"},
			setup: func(t *testing.T, c *client) crashRequest {
				tok := c.tokenize(cardVisa, cvcA)
				var p payment
				c.expect(http.StatusOK, &p, "POST", "/v1/payments", paymentBody(tok.ID, 4000, "USD", "manual"), idem("setup-manual")...)
				if p.Status != "authorized" {
					t.Fatalf("manual payment status = %q; want authorized", p.Status)
				}
				return crashRequest{"POST", "/v1/payments/" + p.ID + "/capture", map[string]any{"amount": 1500}}
			},
			check: func(t *testing.T, c *client, r *response, in *instance) func() {
				var p payment
				decode(t, r, &p)
				if p.Status != "captured" || p.AmountCaptured != 1500 || p.AmountCapturable != 0 {
					t.Errorf("payment after crashed capture and retry = %s; want captured 1500, nothing capturable", r.Body)
				}
				return func() {
					for kind, want := range map[string]int{"authorize": 1, "capture": 1} {
						if got := sandboxCount(t, in, kind); got != want {
							t.Errorf("sandbox %s operations = %d; want %d", kind, got, want)
						}
					}
				}
			},
		},
		{
			// Paying a hosted-page payment through the confirm endpoint.
			phases: []string{"payment_confirmed"},
			setup: func(t *testing.T, c *client) crashRequest {
				var p payment
				c.expect(http.StatusOK, &p, "POST", "/v1/payments", map[string]any{"amount": 2200, "currency": "USD"}, idem("setup-unpaid")...)
				tok := c.tokenize(cardVisa, cvcA)
				return crashRequest{"POST", "/v1/payments/" + p.ID + "/confirm",
					map[string]any{"payment_method": map[string]any{"type": "card", "card": map[string]any{"token": tok.ID}}}}
			},
			check: func(t *testing.T, c *client, r *response, in *instance) func() {
				var p payment
				decode(t, r, &p)
				if p.Status != "captured" || p.AmountCaptured != 2200 || len(p.Attempts) != 1 {
					t.Errorf("payment after crashed confirm and retry = %s; want captured 2200 with one attempt", r.Body)
				}
				return func() {
					if got := sandboxCount(t, in, "authorize"); got != 1 {
						t.Errorf("sandbox authorizations = %d; want 1", got)
					}
				}
			},
		},
		{
			phases: []string{"refund_created", "refund_called", "refund_recorded"},
			setup: func(t *testing.T, c *client) crashRequest {
				tok := c.tokenize(cardVisa, cvcA)
				var p payment
				c.expect(http.StatusOK, &p, "POST", "/v1/payments", paymentBody(tok.ID, 3000, "USD", "automatic"), idem("setup-auto")...)
				if p.Status != "captured" {
					t.Fatalf("payment status = %q; want captured", p.Status)
				}
				return crashRequest{"POST", "/v1/refunds", map[string]any{"payment_id": p.ID, "amount": 1200}}
			},
			check: func(t *testing.T, c *client, r *response, in *instance) func() {
				var rf refund
				decode(t, r, &rf)
				if rf.Status != "succeeded" || rf.Amount != 1200 {
					t.Errorf("refund after crash and retry = %s; want succeeded 1200", r.Body)
				}
				var p payment
				c.expect(http.StatusOK, &p, "GET", "/v1/payments/"+rf.PaymentID, nil)
				if p.AmountRefunded != 1200 {
					t.Errorf("amount_refunded = %d; want 1200", p.AmountRefunded)
				}
				var refs list[refund]
				c.expect(http.StatusOK, &refs, "GET", "/v1/refunds?payment_id="+rf.PaymentID, nil)
				if len(refs.Data) != 1 {
					t.Errorf("refunds = %d; want 1", len(refs.Data))
				}
				return func() {
					if got := sandboxCount(t, in, "refund"); got != 1 {
						t.Errorf("sandbox refunds = %d; want 1", got)
					}
				}
			},
		},
	}
	for _, cc := range cases {
		for _, phase := range cc.phases {
			t.Run(phase, func(t *testing.T) {
				in := newInstance(t)
				srv := in.start(append([]string{"PAYLOOM_FAULT_CRASH_AFTER=" + phase}, crashEnv...))
				first := parseFirstStart(t, srv.Stdout())
				c := newClient(t, srv.URL, first.Key)
				req := cc.setup(t, c)
				key := idem("crash-" + phase)

				if r, err := c.send(req.method, req.path, req.body, key...); err == nil {
					t.Fatalf("%s %s = %v; want the server killed after %s", req.method, req.path, r, phase)
				}
				state := srv.WaitExit()
				if ws, ok := state.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
					t.Fatalf("server exit = %v; want killed by SIGKILL after %s", state, phase)
				}

				srv2 := in.start(crashEnv)
				if strings.Contains(srv2.Stdout(), "sk_") {
					t.Errorf("restart printed a new key:\n%s", srv2.Stdout())
				}
				c2 := newClient(t, srv2.URL, first.Key)
				r := c2.retryUntilDone(req.method, req.path, req.body, key...)
				if r.Status != http.StatusOK {
					t.Fatalf("retry of %s %s after crash at %s = %v; want 200", req.method, req.path, phase, r)
				}
				after := cc.check(t, c2, r, in)
				replay := c2.expect(http.StatusOK, nil, req.method, req.path, req.body, key...)
				if !bytes.Equal(replay.Body, r.Body) || replay.Header.Get("Idempotent-Replayed") != "true" {
					t.Errorf("second retry = %s (Idempotent-Replayed %q); want a replay of %s",
						replay.Body, replay.Header.Get("Idempotent-Replayed"), r.Body)
				}
				srv2.Stop()
				after()
				scanForCardData(t, in, []string{cardVisa}, []string{cvcA})
			})
		}
	}
}

// TestAcknowledgedPaymentsSurviveKill kills the server with SIGKILL while a
// client creates payments one after another: every payment the client got a
// 200 for exists after the restart, and the request cut off by the kill
// completes on retry with its key, without a second charge.
func TestAcknowledgedPaymentsSurviveKill(t *testing.T) {
	in := newInstance(t)
	srv := in.start(crashEnv)
	first := parseFirstStart(t, srv.Stdout())
	c := newClient(t, srv.URL, first.Key)
	tok := c.tokenize(cardVisa, cvcA)
	body := paymentBody(tok.ID, 1234, "USD", "automatic")

	const killAfter = 20
	var (
		mu       sync.Mutex
		acked    []string
		cutKey   string // the key of the request the kill interrupted
		problems []string
	)
	reached := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 100000 {
			key := fmt.Sprintf("load-%d", i)
			r, err := c.send("POST", "/v1/payments", body, idem(key)...)
			mu.Lock()
			switch {
			case err != nil:
				cutKey = key
				mu.Unlock()
				return
			case r.Status != http.StatusOK:
				problems = append(problems, fmt.Sprintf("%s: %v", key, r))
				mu.Unlock()
				return
			}
			var p payment
			if err := decodeBytes(r.Body, &p); err != nil || p.Status != "captured" {
				problems = append(problems, fmt.Sprintf("%s: %s", key, r.Body))
			}
			acked = append(acked, p.ID)
			if len(acked) == killAfter {
				close(reached)
			}
			mu.Unlock()
		}
	}()
	select {
	case <-reached:
	case <-done:
		t.Fatalf("load stopped before %d payments: %v", killAfter, problems)
	}
	srv.Kill()
	<-done
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("%d payments acknowledged before the kill", len(acked))

	srv2 := in.start(crashEnv)
	c2 := newClient(t, srv2.URL, first.Key)
	for _, id := range acked {
		var p payment
		c2.expect(http.StatusOK, &p, "GET", "/v1/payments/"+id, nil)
		if p.Status != "captured" {
			t.Errorf("acknowledged payment %s after kill: status %q; want captured", id, p.Status)
		}
	}
	r := c2.retryUntilDone("POST", "/v1/payments", body, idem(cutKey)...)
	if r.Status != http.StatusOK {
		t.Fatalf("retry of the interrupted request %s = %v; want 200", cutKey, r)
	}
	all := listPayments(t, c2)
	if len(all) != len(acked)+1 {
		t.Errorf("payments after the kill = %d; want %d acknowledged + 1 retried", len(all), len(acked))
	}
	srv2.Stop()
	if got := sandboxCount(t, in, "authorize"); got != len(acked)+1 {
		t.Errorf("sandbox authorizations = %d; want %d (one per payment)", got, len(acked)+1)
	}
}

// listPayments pages through every payment of the client's scope.
func listPayments(t *testing.T, c *client) []payment {
	t.Helper()
	var all []payment
	path := "/v1/payments?limit=100"
	for range 1000 {
		var page list[payment]
		c.expect(http.StatusOK, &page, "GET", path, nil)
		all = append(all, page.Data...)
		if !page.HasMore || len(page.Data) == 0 {
			return all
		}
		path = "/v1/payments?limit=100&starting_after=" + page.Data[len(page.Data)-1].ID
	}
	t.Fatal("listPayments: too many pages")
	return nil
}
