package e2e

import (
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// TestGracefulShutdown sends SIGTERM while a payment is inside a slow
// processor call: the request still completes with 200, the process exits
// with status 0, and the payment is stored as the client was told.
func TestGracefulShutdown(t *testing.T) {
	in := newInstance(t)
	srv := in.start([]string{"PAYLOOM_SANDBOX_LATENCY=500ms"})
	first := parseFirstStart(t, srv.Stdout())
	c := newClient(t, srv.URL, first.Key)
	tok := c.tokenize(cardVisa, cvcA)

	type outcome struct {
		r   *response
		err error
	}
	// The payment must be caught inside the processor call (status
	// processing) before the signal goes out. Polling can in principle miss
	// that window, so a missed one is simply tried again.
	var res chan outcome
	caught := false
	for try := 0; try < 5 && !caught; try++ {
		res = make(chan outcome, 1)
		key := fmt.Sprintf("slow-%d", try)
		go func() {
			r, err := c.send("POST", "/v1/payments", paymentBody(tok.ID, 999, "USD", "automatic"), idem(key)...)
			res <- outcome{r, err}
		}()
		deadline := time.Now().Add(requestTimeout)
	poll:
		for time.Now().Before(deadline) {
			var ps list[payment]
			c.expect(http.StatusOK, &ps, "GET", "/v1/payments?status=processing", nil)
			if len(ps.Data) > 0 {
				caught = true
				break
			}
			select {
			case o := <-res:
				if o.err != nil || o.r.Status != http.StatusOK {
					t.Fatalf("slow payment = %v, %v; want 200", o.r, o.err)
				}
				break poll // finished before we saw it: try again
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	if !caught {
		t.Fatal("never saw a payment in processing")
	}

	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	o := <-res
	if o.err != nil {
		t.Fatalf("in-flight payment during shutdown: %v; want it to complete", o.err)
	}
	var p payment
	if o.r.Status != http.StatusOK {
		t.Fatalf("in-flight payment during shutdown = %v; want 200", o.r)
	}
	decode(t, o.r, &p)
	if p.Status != "captured" {
		t.Errorf("in-flight payment status = %q; want captured", p.Status)
	}
	state := srv.WaitExit()
	if state.ExitCode() != 0 {
		t.Fatalf("exit after SIGTERM = %v; want status 0\nstderr:\n%s", state, srv.stderr)
	}

	srv2 := in.start(nil)
	c2 := newClient(t, srv2.URL, first.Key)
	var got payment
	c2.expect(http.StatusOK, &got, "GET", "/v1/payments/"+p.ID, nil)
	if got.Status != "captured" {
		t.Errorf("after restart payment %s status = %q; want captured", p.ID, got.Status)
	}
	srv2.Stop()
}
