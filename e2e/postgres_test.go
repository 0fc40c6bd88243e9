package e2e

import (
	"context"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/internal/pgtest"
	"github.com/payloom/payloom/postgres"
)

// TestPostgresStore runs the binary on PostgreSQL (PAYLOOM_DATABASE_URL):
// the first start, a payment with capture and refund, keys through the CLI
// on the same database, and a crash between phases with one charge.
func TestPostgresStore(t *testing.T) {
	cluster := pgtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cluster.CreateDatabase(ctx, "payloom"); err != nil {
		t.Fatal(err)
	}
	dbEnv := []string{"PAYLOOM_DATABASE_URL=" + cluster.URL("payloom")}

	in := newInstance(t)
	srv := in.start(append(dbEnv, crashEnv...))
	first := parseFirstStart(t, srv.Stdout())
	c := newClient(t, srv.URL, first.Key)

	tok := c.tokenize(cardMastercard, cvcB)
	var p payment
	c.expect(http.StatusOK, &p, "POST", "/v1/payments", paymentBody(tok.ID, 900, "BHD", "manual"), idem("pg-1")...)
	if p.Status != "authorized" {
		t.Fatalf("payment status = %q; want authorized", p.Status)
	}
	c.expect(http.StatusOK, &p, "POST", "/v1/payments/"+p.ID+"/capture", map[string]any{}, idem("pg-2")...)
	var rf refund
	c.expect(http.StatusOK, &rf, "POST", "/v1/refunds", map[string]any{"payment_id": p.ID, "amount": 400}, idem("pg-3")...)
	if p.Status != "captured" || p.AmountCaptured != 900 || rf.Status != "succeeded" {
		t.Fatalf("capture %+v, refund %+v; want captured 900 and a succeeded refund", p, rf)
	}

	// The CLI finds the database through the same variable.
	out, errOut, err := in.tryCLI(dbEnv, "keys", "create", "--merchant", first.MerchantID, "--mode", "test")
	if err != nil {
		t.Fatalf("keys create on postgres: %v\n%s", err, errOut)
	}
	key2 := strings.TrimSpace(out)
	c.withKey(key2).expect(http.StatusOK, nil, "GET", "/v1/payments/"+p.ID, nil)
	if _, errOut, err := in.tryCLI(dbEnv, "keys", "revoke", keyIDRE.FindString(errOut)); err != nil {
		t.Fatalf("keys revoke on postgres: %v\n%s", err, errOut)
	}
	c.withKey(key2).expectError(http.StatusUnauthorized, "auth_failed", "GET", "/v1/payments", nil)
	srv.Stop()

	// A crash after the processor answered, then a retry: one charge.
	crashing := in.start(append(append([]string{"PAYLOOM_FAULT_CRASH_AFTER=processor_called"}, dbEnv...), crashEnv...))
	if strings.Contains(crashing.Stdout(), "sk_") {
		t.Errorf("restart on postgres printed a new key:\n%s", crashing.Stdout())
	}
	body := paymentBody(tok.ID, 1100, "BHD", "automatic")
	if r, err := newClient(t, crashing.URL, first.Key).send("POST", "/v1/payments", body, idem("pg-crash")...); err == nil {
		t.Fatalf("payment = %v; want the server killed after processor_called", r)
	}
	if ws, ok := crashing.WaitExit().Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("server exit = %v; want SIGKILL", ws)
	}
	srv2 := in.start(append(dbEnv, crashEnv...))
	c2 := newClient(t, srv2.URL, first.Key)
	r := c2.retryUntilDone("POST", "/v1/payments", body, idem("pg-crash")...)
	var crashed payment
	if r.Status != http.StatusOK {
		t.Fatalf("retry after crash = %v; want 200", r)
	}
	decode(t, r, &crashed)
	if crashed.Status != "captured" {
		t.Errorf("payment after crash and retry: status %q; want captured", crashed.Status)
	}
	srv2.Stop()

	st, err := postgres.Open(ctx, cluster.URL("payloom"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var n int
	err = st.View(ctx, func(tx payloom.Tx) error {
		var err error
		n, err = tx.CountSandboxOperations(ctx, "authorize", "")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("sandbox authorizations = %d; want 2 (one per payment)", n)
	}
	scanForCardData(t, in, []string{cardMastercard}, []string{cvcB})
}
