package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/payloom/payloom/internal/pgtest"
)

// multiNodeMasterKey is the PAYLOOM_MASTER_KEY every node of a cluster
// shares: a card tokenized on one node is charged by another.
const multiNodeMasterKey = "5e1f0c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f"

// launch starts payloom serve on the instance like start, but returns at
// once: several nodes launched one after the other start concurrently
// (migrations and the first-start bootstrap race). waitListening waits for
// one to listen.
func (in *instance) launch(env []string, args ...string) *server {
	in.t.Helper()
	t := in.t
	in.noteDatabase(append(append([]string{}, env...), args...))
	outFile, errFile := in.logFiles("serve")
	s := &server{t: t, in: in, stdout: newWatchBuffer(outFile), stderr: newWatchBuffer(errFile), exited: make(chan struct{})}
	all := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", in.DataDir}, args...)
	s.cmd = exec.Command(binPath, all...)
	s.cmd.Env = baseEnv(env...)
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start payloom serve: %v", err)
	}
	go func() {
		_ = s.cmd.Wait()
		s.state = s.cmd.ProcessState
		outFile.Close()
		errFile.Close()
		close(s.exited)
	}()
	t.Cleanup(func() { s.stopQuietly() })
	return s
}

func (s *server) waitListening() {
	s.t.Helper()
	m, err := s.stdout.waitFor(listeningRE, s.exited, startTimeout)
	if err != nil {
		s.t.Fatalf("payloom serve did not start: %v\nstdout:\n%s\nstderr:\n%s", err, s.stdout, s.stderr)
	}
	s.URL = m[1]
}

// startPostgresNodes launches n nodes on the database at once, with the
// shared master key and extra environment, and waits until all listen.
func startPostgresNodes(in *instance, dbURL string, n int, env ...string) []*server {
	in.t.Helper()
	env = append([]string{"PAYLOOM_MASTER_KEY=" + multiNodeMasterKey}, env...)
	nodes := make([]*server, n)
	for i := range nodes {
		nodes[i] = in.launch(env, "--database-url", dbURL)
	}
	for _, s := range nodes {
		s.waitListening()
	}
	return nodes
}

// bootstrapped returns the merchant and key that exactly one of the nodes
// printed on its first start.
func bootstrapped(t *testing.T, nodes []*server) firstStart {
	t.Helper()
	var printed []int
	for i, s := range nodes {
		if strings.Contains(s.Stdout(), "Secret key:") {
			printed = append(printed, i)
		}
	}
	if len(printed) != 1 {
		t.Fatalf("nodes %v printed a first-start merchant and key; want exactly one node", printed)
	}
	return parseFirstStart(t, nodes[printed[0]].Stdout())
}

// pgDB is the test's own connection to the nodes' database, to check what
// they stored.
type pgDB struct {
	t    *testing.T
	pool *pgxpool.Pool
}

func openPGDB(t *testing.T, url string) *pgDB {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return &pgDB{t: t, pool: pool}
}

// int64 runs a query that returns one integer (NULL reads as 0).
func (db *pgDB) int64(t *testing.T, q string, args ...any) int64 {
	t.Helper()
	var n *int64
	if err := db.pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if n == nil {
		return 0
	}
	return *n
}

// leaseOwner returns the owner of a job lease, or "" when nobody holds it.
func leaseOwner(t *testing.T, query func(q string, args ...any) (string, error), name string) string {
	t.Helper()
	owner, err := query(`SELECT owner FROM leases WHERE name = $1`, name)
	if err != nil {
		t.Fatalf("read lease %q: %v", name, err)
	}
	return owner
}

// holderOf returns the index of the node whose pid is in a lease owner
// (hostname-pid-random), or -1.
func holderOf(owner string, nodes []*server) int {
	for i, s := range nodes {
		if strings.Contains(owner, "-"+strconv.Itoa(s.cmd.Process.Pid)+"-") {
			return i
		}
	}
	return -1
}

// waitLease waits until some node holds the named lease (each takes its
// jobs' leases at start, in the background) and returns the owner.
func waitLease(t *testing.T, query func(q string, args ...any) (string, error), name string) string {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		if owner := leaseOwner(t, query, name); owner != "" {
			return owner
		}
		if time.Now().After(deadline) {
			t.Fatalf("no node took the %q lease within %v", name, startTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// query runs a query returning one text value; no row is "".
func (db *pgDB) query(q string, args ...any) (string, error) {
	var s string
	err := db.pool.QueryRow(context.Background(), q, args...).Scan(&s)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return s, err
}

// TestMultiNode is the production topology: three `payloom serve`
// processes started at once on one PostgreSQL database. Exactly one
// creates the first merchant; all are ready; the background jobs run under
// leases held by one node and released on shutdown. The subtests send
// 200 concurrent requests with one Idempotency-Key across the nodes, kill a
// node in the middle of a processor call, and run a mixed load whose money
// must add up to the cent.
func TestMultiNode(t *testing.T) {
	cluster := pgtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cluster.CreateDatabase(ctx, "payloom"); err != nil {
		t.Fatal(err)
	}
	dbURL := cluster.URL("payloom")
	db := openPGDB(t, dbURL)

	in := newInstance(t)
	nodes := startPostgresNodes(in, dbURL, 3)
	first := bootstrapped(t, nodes)
	if n := db.int64(t, `SELECT count(*) FROM merchants`); n != 1 {
		t.Fatalf("merchants after 3 nodes started at once = %d; want 1", n)
	}
	clients := make([]*client, len(nodes))
	for i, s := range nodes {
		clients[i] = newClient(t, s.URL, first.Key)
	}

	// Ready means reachable and migrated: a missing migration makes every
	// node unready until it is back.
	wantReady := func(want int) {
		t.Helper()
		for i, c := range clients {
			if r := c.do("GET", "/readyz", nil); r.Status != want {
				t.Errorf("node %d: GET /readyz = %v; want %d", i, r, want)
			}
		}
	}
	wantReady(http.StatusOK)
	if _, err := db.pool.Exec(ctx, `UPDATE schema_migrations SET version = -version WHERE version = 1`); err != nil {
		t.Fatal(err)
	}
	wantReady(http.StatusServiceUnavailable)
	if _, err := db.pool.Exec(ctx, `UPDATE schema_migrations SET version = -version WHERE version = -1`); err != nil {
		t.Fatal(err)
	}
	wantReady(http.StatusOK)

	t.Run("SameIdempotencyKey", func(t *testing.T) { testMultiNodeSameKey(t, db, clients) })
	t.Run("KillDuringProcessorCall", func(t *testing.T) { testMultiNodeKill(t, db, dbURL, first, clients) })
	t.Run("MixedLoad", func(t *testing.T) { testMultiNodeMixedLoad(t, db, dbURL, nodes) })

	// One node runs each background job; a node that shuts down gives its
	// leases back at once.
	owners := map[string]string{}
	for _, job := range []string{"recovery", "purge"} {
		owners[job] = waitLease(t, db.query, job)
		if holderOf(owners[job], nodes) < 0 {
			t.Fatalf("lease %q is held by %q; want one of the nodes (pid in the owner)", job, owners[job])
		}
	}
	for i, s := range nodes {
		s.Stop()
		for job, owner := range owners {
			if holderOf(owner, nodes) != i {
				continue
			}
			if got := leaseOwner(t, db.query, job); got == owner {
				t.Errorf("lease %q still held by %q after that node shut down; want it released", job, owner)
			}
		}
	}
	scanForCardData(t, in, []string{cardVisa, cardMastercard}, []string{cvcA, cvcB})
}

// testMultiNodeSameKey: 200 concurrent POST /v1/payments with one key,
// round-robin over the nodes: one payment, one charge, and every answer
// the identical payment or 409 idempotency_in_progress.
func testMultiNodeSameKey(t *testing.T, db *pgDB, clients []*client) {
	const n, amount = 200, 4200
	tok := clients[0].on(t).tokenize(cardVisa, cvcA)
	body := paymentBody(tok.ID, amount, "USD", "automatic")
	results := parallel(n, func(i int) result {
		r, err := clients[i%len(clients)].send("POST", "/v1/payments", body, idem("multi-node-one-key")...)
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
		default:
			t.Errorf("request %d (node %d) = %v; want 200 or 409 idempotency_in_progress", i, i%len(clients), res.r)
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
	var p payment
	if err := decodeBytes(bodies[0], &p); err != nil || p.Status != "captured" || p.Processor == nil {
		t.Fatalf("payment = %s (%v); want captured by a processor", bodies[0], err)
	}
	for i, c := range clients {
		r := c.on(t).expect(http.StatusOK, nil, "POST", "/v1/payments", body, idem("multi-node-one-key")...)
		if !bytes.Equal(r.Body, bodies[0]) || r.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("node %d: replay = %s (Idempotent-Replayed %q); want %s, replayed", i, r.Body, r.Header.Get("Idempotent-Replayed"), bodies[0])
		}
	}
	if got := db.int64(t, `SELECT count(*) FROM payments WHERE amount = $1`, amount); got != 1 {
		t.Errorf("payments of %d = %d; want exactly 1", amount, got)
	}
	if got := db.int64(t, `SELECT count(*) FROM sandbox_operations WHERE kind = 'authorize' AND amount = $1`, amount); got != 1 {
		t.Errorf("sandbox authorizations of %d = %d; want exactly 1", amount, got)
	}
	if got := db.int64(t, `SELECT count(*) FROM sandbox_operations WHERE kind = 'sandbox_approval' AND transaction_id = $1`,
		p.Processor.TransactionID); got != 1 {
		t.Errorf("sandbox charges of the payment = %d; want exactly 1", got)
	}
}

// testMultiNodeKill: node A (whose sandbox takes 30s to answer, after it
// has recorded the charge) is SIGKILLed in the middle of a payment's
// processor call; the client retries on node B, which answers 409 in
// progress until A's idempotency lease runs out, then completes the payment
// with the charge A's call made: one charge.
func testMultiNodeKill(t *testing.T, db *pgDB, dbURL string, first firstStart, clients []*client) {
	const amount = 4321
	kin := newInstance(t)
	// A's lock timeout of 15s bounds its processor call to 10s (2/3): the
	// test must see the charge and kill A within those 10s, or A answers
	// "processing" by itself. The margin is wide on purpose (a loaded
	// machine running -race); B's retry waits out the rest of the lease.
	a := startPostgresNodes(kin, dbURL, 1, "PAYLOOM_SANDBOX_LATENCY=60s", "PAYLOOM_IDEMPOTENCY_LOCK_TIMEOUT=15s")[0]
	ca, cb := newClient(t, a.URL, first.Key), clients[1].on(t)
	tok := ca.tokenize(cardMastercard, cvcB)
	body := paymentBody(tok.ID, amount, "USD", "automatic")

	answered := make(chan result, 1)
	go func() {
		r, err := ca.send("POST", "/v1/payments", body, idem("killed-mid-call")...)
		answered <- result{r, err}
	}()
	deadline := time.After(requestTimeout)
	for db.int64(t, `SELECT count(*) FROM sandbox_operations WHERE kind = 'authorize' AND amount = $1`, amount) == 0 {
		select {
		case res := <-answered:
			t.Fatalf("node A answered %v, %v before its processor call was seen; want it in the call", res.r, res.err)
		case <-deadline:
			t.Fatalf("node A's processor call not seen within %v", requestTimeout)
		case <-time.After(5 * time.Millisecond):
		}
	}
	a.Kill()
	if res := <-answered; res.err == nil {
		t.Fatalf("node A answered %v; want the connection cut by SIGKILL during the processor call", res.r)
	}
	if got := db.int64(t, `SELECT count(*) FROM payments WHERE amount = $1 AND status = 'processing'`, amount); got != 1 {
		t.Fatalf("processing payments of %d after the kill = %d; want 1 (charged, not recorded)", amount, got)
	}

	r := cb.retryUntilDone("POST", "/v1/payments", body, idem("killed-mid-call")...)
	if r.Status != http.StatusOK {
		t.Fatalf("retry on node B = %v; want 200", r)
	}
	var p payment
	decode(t, r, &p)
	if p.Status != "captured" || p.AmountCaptured != amount || len(p.Attempts) != 1 || p.Processor == nil {
		t.Fatalf("payment after the retry = %s; want captured %d with one attempt", r.Body, amount)
	}
	replay := clients[2].on(t).expect(http.StatusOK, nil, "POST", "/v1/payments", body, idem("killed-mid-call")...)
	if !bytes.Equal(replay.Body, r.Body) {
		t.Errorf("replay on node C = %s; want %s", replay.Body, r.Body)
	}
	if got := db.int64(t, `SELECT count(*) FROM sandbox_operations WHERE kind = 'authorize' AND amount = $1`, amount); got != 1 {
		t.Errorf("sandbox authorizations of %d = %d; want exactly 1", amount, got)
	}
	if got := db.int64(t, `SELECT count(*) FROM sandbox_operations WHERE kind = 'sandbox_approval' AND transaction_id = $1`,
		p.Processor.TransactionID); got != 1 {
		t.Errorf("sandbox charges of the payment = %d; want exactly 1", got)
	}
	scanForCardData(t, kin, []string{cardMastercard}, []string{cvcB})
}

// merchantTotals is what the clients of one merchant were told in 200
// responses.
type merchantTotals struct {
	mu sync.Mutex

	captured, refunded int64
	creates            int
	// captures, refunds: 200s; lostCaptures, refusedRefunds: the requests
	// that lost a race (already captured, not enough left to refund).
	captures, lostCaptures, refunds, refusedRefunds int

	authorized       []payment // manual payments not captured yet
	capturedPayments []payment // captured payments (AmountCaptured set)
}

// testMultiNodeMixedLoad: 12 clients of two merchants create (automatic
// and manual), capture (full and partial) and refund (partial) across the
// nodes, racing on shared payments; afterwards every merchant's captured
// and refunded sums, from the API and from the database, are exactly what
// the clients were told.
func testMultiNodeMixedLoad(t *testing.T, db *pgDB, dbURL string, nodes []*server) {
	const workers, opsPerWorker = 12, 25
	cli := newInstance(t)
	dbEnv := []string{"PAYLOOM_DATABASE_URL=" + dbURL}
	type merchant struct {
		id      string
		clients []*client
		tokens  []string // one per node, tokenized there
		totals  *merchantTotals
	}
	merchants := make([]*merchant, 2)
	for i := range merchants {
		out, errOut, err := cli.tryCLI(dbEnv, "merchants", "create", "--name", fmt.Sprintf("Merchant %d", i))
		if err != nil {
			t.Fatalf("merchants create: %v\n%s", err, errOut)
		}
		m := &merchant{id: strings.TrimSpace(out), totals: &merchantTotals{}}
		out, errOut, err = cli.tryCLI(dbEnv, "keys", "create", "--merchant", m.id, "--mode", "test")
		if err != nil {
			t.Fatalf("keys create: %v\n%s", err, errOut)
		}
		for _, s := range nodes {
			c := newClient(t, s.URL, strings.TrimSpace(out))
			m.clients = append(m.clients, c)
			m.tokens = append(m.tokens, c.tokenize(cardVisa, cvcA).ID)
		}
		merchants[i] = m
	}

	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			m := merchants[w%len(merchants)]
			tt := m.totals
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for op := range opsPerWorker {
				node := (w + op) % len(nodes)
				c := m.clients[node]
				key := idem(fmt.Sprintf("mixed-%d-%d", w, op))
				// pick returns a random element of a pool, if any.
				pick := func(pool *[]payment) (payment, bool) {
					tt.mu.Lock()
					defer tt.mu.Unlock()
					if len(*pool) == 0 {
						return payment{}, false
					}
					return (*pool)[rng.IntN(len(*pool))], true
				}
				kind := rng.IntN(100)
				var target payment
				var ok bool
				switch {
				case kind >= 75:
					if target, ok = pick(&tt.capturedPayments); !ok {
						kind = 0
					}
				case kind >= 55:
					if target, ok = pick(&tt.authorized); !ok {
						kind = 30
					}
				}
				switch {
				case kind < 55: // create, automatic or manual
					capture := "automatic"
					if kind >= 30 {
						capture = "manual"
					}
					amount := int64(100 + rng.IntN(9900))
					r, err := c.send("POST", "/v1/payments", paymentBody(m.tokens[rng.IntN(len(m.tokens))], amount, "USD", capture), key...)
					var p payment
					if !okResponse(t, "create", node, r, err, &p) {
						continue
					}
					tt.mu.Lock()
					tt.creates++
					switch {
					case capture == "automatic" && p.Status == "captured" && p.AmountCaptured == amount:
						tt.captured += p.AmountCaptured
						tt.capturedPayments = append(tt.capturedPayments, p)
					case capture == "manual" && p.Status == "authorized" && p.AmountCaptured == 0:
						tt.authorized = append(tt.authorized, p)
					default:
						t.Errorf("create %s %d = %+v; want captured or authorized", capture, amount, p)
					}
					tt.mu.Unlock()
				case kind < 75: // capture, full or partial, racing with other captures
					req := map[string]any{}
					want := target.Amount
					if rng.IntN(2) == 0 {
						want = 1 + rng.Int64N(target.Amount)
						req["amount"] = want
					}
					r, err := c.send("POST", "/v1/payments/"+target.ID+"/capture", req, key...)
					if err == nil && r.Status == http.StatusConflict && r.ErrorCode() == "invalid_state" {
						tt.mu.Lock()
						tt.lostCaptures++ // another client captured it first
						tt.mu.Unlock()
						continue
					}
					var p payment
					if !okResponse(t, "capture", node, r, err, &p) {
						continue
					}
					if p.Status != "captured" || p.AmountCaptured != want {
						t.Errorf("capture %d of %s = %+v; want captured %d", want, target.ID, p, want)
						continue
					}
					tt.mu.Lock()
					tt.captures++
					tt.captured += p.AmountCaptured
					tt.capturedPayments = append(tt.capturedPayments, p)
					tt.authorized = slices.DeleteFunc(tt.authorized, func(a payment) bool { return a.ID == p.ID })
					tt.mu.Unlock()
				default: // partial refund, racing with other refunds
					amount := 1 + rng.Int64N(max(target.AmountCaptured/2, 1))
					r, err := c.send("POST", "/v1/refunds", map[string]any{"payment_id": target.ID, "amount": amount}, key...)
					if err == nil && r.Status == http.StatusBadRequest && r.ErrorCode() == "validation_error" && r.ErrorParam() == "amount" {
						tt.mu.Lock()
						tt.refusedRefunds++ // less than that is left to refund
						tt.mu.Unlock()
						continue
					}
					var rf refund
					if !okResponse(t, "refund", node, r, err, &rf) {
						continue
					}
					if rf.Status != "succeeded" || rf.Amount != amount {
						t.Errorf("refund %d of %s = %+v; want succeeded", amount, target.ID, rf)
						continue
					}
					tt.mu.Lock()
					tt.refunds++
					tt.refunded += rf.Amount
					tt.mu.Unlock()
				}
			}
		})
	}
	wg.Wait()

	for i, m := range merchants {
		tt := m.totals
		t.Logf("merchant %d: %d payments, %d captures (%d lost a race), %d refunds (%d refused); told captured %d, refunded %d",
			i, tt.creates, tt.captures, tt.lostCaptures, tt.refunds, tt.refusedRefunds, tt.captured, tt.refunded)
		if tt.captures == 0 || tt.refunds == 0 {
			t.Errorf("merchant %d: %d captures, %d refunds; want both (the load must exercise both)", i, tt.captures, tt.refunds)
		}
		// The API, through every node.
		for node, c := range m.clients {
			ps := listAllPayments(c.on(t))
			var captured, refunded int64
			for _, p := range ps {
				captured += p.AmountCaptured
				refunded += p.AmountRefunded
				if p.Status == "processing" {
					t.Errorf("payment %s still processing after the load", p.ID)
				}
			}
			if len(ps) != tt.creates || captured != tt.captured || refunded != tt.refunded {
				t.Errorf("merchant %d via node %d: %d payments, captured %d, refunded %d; want %d, %d, %d (what the clients were told)",
					i, node, len(ps), captured, refunded, tt.creates, tt.captured, tt.refunded)
			}
		}
		// The database.
		captured := db.int64(t, `SELECT sum(amount_captured) FROM payments WHERE merchant_id = $1`, m.id)
		refunded := db.int64(t, `SELECT sum(amount_refunded) FROM payments WHERE merchant_id = $1`, m.id)
		refunds := db.int64(t, `SELECT sum(amount) FROM refunds WHERE merchant_id = $1 AND status = 'succeeded'`, m.id)
		if captured != tt.captured || refunded != tt.refunded || refunds != tt.refunded {
			t.Errorf("merchant %d in the database: captured %d, refunded %d, refunds %d; want %d, %d, %d",
				i, captured, refunded, refunds, tt.captured, tt.refunded, tt.refunded)
		}
	}
	scanForCardData(t, cli, []string{cardVisa}, []string{cvcA})
}

// okResponse reports whether a request succeeded with 200 and decodes it;
// anything else (a transport error, a 5xx, an unexpected 4xx) fails the
// test. Safe to call from the load's goroutines.
func okResponse(t *testing.T, what string, node int, r *response, err error, out any) bool {
	t.Helper()
	switch {
	case err != nil:
		t.Errorf("%s on node %d: %v", what, node, err)
		return false
	case r.Status != http.StatusOK:
		t.Errorf("%s on node %d = %v; want 200", what, node, r)
		return false
	}
	if err := decodeBytes(r.Body, out); err != nil {
		t.Errorf("%s on node %d: decode %s: %v", what, node, r.Body, err)
		return false
	}
	return true
}

// listAllPayments pages through every payment of the client's merchant.
func listAllPayments(c *client) []payment {
	c.t.Helper()
	var all []payment
	path := "/v1/payments?limit=100"
	for {
		var page list[payment]
		c.expect(http.StatusOK, &page, "GET", path, nil)
		all = append(all, page.Data...)
		if !page.HasMore || len(page.Data) == 0 {
			return all
		}
		path = "/v1/payments?limit=100&starting_after=" + page.Data[len(page.Data)-1].ID
	}
}

// TestSQLiteTwoProcesses runs two `payloom serve` processes on one data
// directory, started at once. They are safe together: SQLite's file locks
// serialize their writes (WAL, busy timeout), exactly one creates the first
// merchant, one runs the background jobs under their leases, and payments
// and racing refunds through both add up.
func TestSQLiteTwoProcesses(t *testing.T) {
	in := newInstance(t)
	nodes := []*server{in.launch(nil), in.launch(nil)}
	for _, s := range nodes {
		s.waitListening()
	}
	first := bootstrapped(t, nodes)
	clients := []*client{newClient(t, nodes[0].URL, first.Key), newClient(t, nodes[1].URL, first.Key)}
	tokens := []string{clients[0].tokenize(cardVisa, cvcA).ID, clients[1].tokenize(cardMastercard, cvcB).ID}

	// Payments through both processes at once.
	const n = 40
	results := parallel(n, func(i int) result {
		r, err := clients[i%2].send("POST", "/v1/payments", paymentBody(tokens[(i/2)%2], int64(100+i), "USD", "automatic"),
			idem(fmt.Sprintf("two-%d", i))...)
		return result{r, err}
	})
	var told int64
	for i, res := range results {
		var p payment
		if okResponse(t, "payment", i%2, res.r, res.err, &p) {
			if p.Status != "captured" || p.AmountCaptured != int64(100+i) {
				t.Errorf("payment %d = %+v; want captured %d", i, p, 100+i)
			}
			told += p.AmountCaptured
		}
	}

	// Refunds of one payment through both processes at once, for more than
	// was captured: the reservations of the two processes never overlap.
	var target payment
	clients[0].expect(http.StatusOK, &target, "POST", "/v1/payments", paymentBody(tokens[0], 5000, "USD", "automatic"), idem("two-target")...)
	told += target.AmountCaptured
	const refunds, each = 30, 250 // 7500 asked for, 5000 captured
	results = parallel(refunds, func(i int) result {
		r, err := clients[i%2].send("POST", "/v1/refunds", map[string]any{"payment_id": target.ID, "amount": each},
			idem(fmt.Sprintf("two-refund-%d", i))...)
		return result{r, err}
	})
	var refunded int64
	for i, res := range results {
		if res.err == nil && res.r.Status == http.StatusBadRequest && res.r.ErrorParam() == "amount" {
			continue
		}
		var rf refund
		if okResponse(t, "refund", i%2, res.r, res.err, &rf) {
			refunded += rf.Amount
		}
	}
	if refunded != target.AmountCaptured {
		t.Errorf("succeeded refunds = %d; want %d (every refund that fits, and no more)", refunded, target.AmountCaptured)
	}

	for i, c := range clients {
		var captured, refundedSum int64
		ps := listAllPayments(c.on(t))
		for _, p := range ps {
			captured += p.AmountCaptured
			refundedSum += p.AmountRefunded
		}
		if len(ps) != n+1 || captured != told || refundedSum != refunded {
			t.Errorf("via process %d: %d payments, captured %d, refunded %d; want %d, %d, %d",
				i, len(ps), captured, refundedSum, n+1, told, refunded)
		}
	}

	// The file, read by a third process while both run.
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(in.DataDir, "payloom.db")+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	query := func(q string, args ...any) (string, error) {
		var s sql.NullString
		err := db.QueryRow(strings.ReplaceAll(q, "$1", "?"), args...).Scan(&s)
		if err == sql.ErrNoRows {
			return "", nil
		}
		return s.String, err
	}
	if got, err := query(`SELECT count(*) FROM sandbox_operations WHERE kind = 'authorize'`); err != nil || got != strconv.Itoa(n+1) {
		t.Errorf("sandbox authorizations = %s, %v; want %d", got, err, n+1)
	}
	for _, job := range []string{"recovery", "purge"} {
		owner := waitLease(t, query, job)
		if holderOf(owner, nodes) < 0 {
			t.Errorf("lease %q is held by %q; want one of the two processes", job, owner)
		}
	}
	for _, s := range nodes {
		s.Stop()
	}
	scanForCardData(t, in, []string{cardVisa, cardMastercard}, []string{cvcA, cvcB})
}
