package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/sqlite"
)

// sandboxCount counts the sandbox processor's ledger rows of a kind
// ("authorize", "capture", "void", "refund") in a stopped server's store.
func sandboxCount(t *testing.T, in *instance, kind string) int {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(in.DataDir, "payloom.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var n int
	err = st.View(context.Background(), func(tx payloom.Tx) error {
		var err error
		n, err = tx.CountSandboxOperations(context.Background(), kind, "")
		return err
	})
	if err != nil {
		t.Fatalf("count sandbox %s operations: %v", kind, err)
	}
	return n
}

// parallel runs fn(i) for i in [0, n) at once (released together) and
// returns the results in order.
func parallel[T any](n int, fn func(i int) T) []T {
	out := make([]T, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

type result struct {
	r   *response
	err error
}

// TestConcurrentCreateOneIdempotencyKey sends 100 identical payment
// requests with one Idempotency-Key at once: exactly one payment and one
// processor charge may result, and every answer is that payment or "in
// progress".
func TestConcurrentCreateOneIdempotencyKey(t *testing.T) {
	in := newInstance(t)
	srv := in.start(nil)
	first := parseFirstStart(t, srv.Stdout())
	c := newClient(t, srv.URL, first.Key)
	tok := c.tokenize(cardVisa, cvcA)
	body := paymentBody(tok.ID, 4200, "USD", "automatic")

	const n = 100
	results := parallel(n, func(int) result {
		r, err := c.send("POST", "/v1/payments", body, idem("one-key-for-all")...)
		return result{r, err}
	})

	var bodies [][]byte
	inProgress := 0
	for i, res := range results {
		switch {
		case res.err != nil:
			t.Errorf("request %d: %v", i, res.err)
		case res.r.Status == http.StatusOK:
			bodies = append(bodies, res.r.Body)
		case res.r.Status == http.StatusConflict && res.r.ErrorCode() == "idempotency_in_progress":
			inProgress++
			if res.r.Header.Get("Retry-After") == "" {
				t.Errorf("request %d: 409 idempotency_in_progress without Retry-After", i)
			}
		default:
			t.Errorf("request %d = %v; want 200 or 409 idempotency_in_progress", i, res.r)
		}
	}
	t.Logf("%d answered with the payment, %d in progress", len(bodies), inProgress)
	if len(bodies) == 0 {
		t.Fatal("no request got the payment")
	}
	for i, b := range bodies[1:] {
		if !bytes.Equal(b, bodies[0]) {
			t.Errorf("200 body %d = %s; want the same bytes as %s", i+1, b, bodies[0])
		}
	}
	// Once everything returned, a retry is a replay of the same payment.
	replay := c.expect(http.StatusOK, nil, "POST", "/v1/payments", body, idem("one-key-for-all")...)
	if !bytes.Equal(replay.Body, bodies[0]) || replay.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay = %s (Idempotent-Replayed %q); want %s, replayed", replay.Body, replay.Header.Get("Idempotent-Replayed"), bodies[0])
	}

	var ps list[payment]
	c.expect(http.StatusOK, &ps, "GET", "/v1/payments?limit=100", nil)
	if len(ps.Data) != 1 || ps.Data[0].Status != "captured" {
		t.Fatalf("payments after %d parallel requests = %+v; want exactly one, captured", n, ps.Data)
	}

	srv.Stop()
	if got := sandboxCount(t, in, "authorize"); got != 1 {
		t.Errorf("sandbox authorizations = %d; want 1", got)
	}
	scanForCardData(t, in, []string{cardVisa}, []string{cvcA})
}

// TestConcurrentPartialRefunds sends 50 partial refunds of one captured
// payment at once, each with its own key, for more than was captured in
// total: what succeeds never exceeds the captured amount, and the payment's
// amount_refunded is exactly the sum of the succeeded refunds.
func TestConcurrentPartialRefunds(t *testing.T) {
	in := newInstance(t)
	srv := in.start(nil)
	first := parseFirstStart(t, srv.Stdout())
	c := newClient(t, srv.URL, first.Key)
	tok := c.tokenize(cardVisa, cvcA)
	var p payment
	c.expect(http.StatusOK, &p, "POST", "/v1/payments", paymentBody(tok.ID, 10000, "USD", "automatic"), idem("refund-target")...)
	if p.Status != "captured" {
		t.Fatalf("payment status = %q; want captured", p.Status)
	}

	const n, each = 50, 300 // 15000 asked for, 10000 captured
	results := parallel(n, func(i int) result {
		r, err := c.send("POST", "/v1/refunds", map[string]any{"payment_id": p.ID, "amount": each},
			idem(fmt.Sprintf("refund-%d", i))...)
		return result{r, err}
	})

	succeeded := 0
	for i, res := range results {
		switch {
		case res.err != nil:
			t.Errorf("refund %d: %v", i, res.err)
		case res.r.Status == http.StatusOK:
			succeeded++
		case res.r.Status == http.StatusBadRequest && res.r.ErrorCode() == "validation_error" && res.r.ErrorParam() == "amount":
			// Refused: not enough left to refund.
		default:
			t.Errorf("refund %d = %v; want 200 or 400 validation_error on amount", i, res.r)
		}
	}

	var after payment
	c.expect(http.StatusOK, &after, "GET", "/v1/payments/"+p.ID, nil)
	var refs list[refund]
	c.expect(http.StatusOK, &refs, "GET", "/v1/refunds?limit=100&payment_id="+p.ID, nil)
	var sum int64
	okRefunds := 0
	for _, r := range refs.Data {
		if r.Status == "succeeded" {
			sum += r.Amount
			okRefunds++
		} else {
			t.Errorf("refund %s status = %q; want succeeded (failed requests create no refund)", r.ID, r.Status)
		}
	}
	if sum > after.AmountCaptured {
		t.Errorf("succeeded refunds sum to %d; more than the %d captured", sum, after.AmountCaptured)
	}
	if after.AmountRefunded != sum {
		t.Errorf("amount_refunded = %d; want %d, the sum of succeeded refunds", after.AmountRefunded, sum)
	}
	if okRefunds != succeeded {
		t.Errorf("listed %d succeeded refunds; %d requests answered 200", okRefunds, succeeded)
	}
	// Refunds are serialized per payment, so every one that fits succeeds:
	// a refusal while money was left would be a lost refund.
	if want := int(p.AmountCaptured / each); succeeded != want {
		t.Errorf("%d refunds of %d succeeded; want %d (all that fit in %d)", succeeded, each, want, p.AmountCaptured)
	}

	srv.Stop()
	if got := sandboxCount(t, in, "refund"); got != succeeded {
		t.Errorf("sandbox refunds = %d; want %d", got, succeeded)
	}
}
