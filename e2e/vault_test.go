package e2e

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/payloom/payloom/internal/pgtest"
)

// Cards of the rotation test, one per merchant so that a ciphertext moved
// between merchants would show as another merchant's number.
var vaultCards = []string{"4242424242424242", "5555555555554444", "378282246310005", "6011111111111117"}

// vaultMerchant is a merchant with a test-mode key, its card number and
// the tokens made for it before the first rotation.
type vaultMerchant struct {
	id     string
	c      *client
	number string
	before []string
}

var kekIDRE = regexp.MustCompile(`^k[0-9]+_[0-9a-f]{8}$`)

// newVaultMerchant creates a merchant and a test key with the CLI while the
// server runs.
func newVaultMerchant(t *testing.T, in *instance, url, name, number string) *vaultMerchant {
	t.Helper()
	id, _ := in.runCLI("merchants", "create", "--name", name)
	id = strings.TrimSpace(id)
	key, _ := in.runCLI("keys", "create", "--merchant", id, "--mode", "test")
	return &vaultMerchant{id: id, c: newClient(t, url, strings.TrimSpace(key)), number: number}
}

// pay creates an automatically captured payment with the token; it
// returns an error instead of failing, for the load goroutines.
func (m *vaultMerchant) pay(tok string, amount int64) (*payment, *response, error) {
	r, err := m.c.send("POST", "/v1/payments", paymentBody(tok, amount, "USD", "automatic"),
		idem(fmt.Sprintf("vault-%s-%d-%d", tok, amount, time.Now().UnixNano()))...)
	if err != nil {
		return nil, nil, err
	}
	var p payment
	if r.Status != http.StatusOK {
		return nil, r, fmt.Errorf("POST /v1/payments with %s = %v; want 200", tok, r)
	}
	if err := json.Unmarshal(r.Body, &p); err != nil || p.Status != "captured" {
		return nil, r, fmt.Errorf("POST /v1/payments with %s = %s; want a captured payment", tok, r.Body)
	}
	return &p, r, nil
}

// tokenizeFor makes a token of the merchant's card; an error instead of a
// failure, for the load goroutines.
func (m *vaultMerchant) tokenizeFor() (string, error) {
	r, err := m.c.send("POST", "/v1/tokens", cardBody(m.number, ""))
	if err != nil {
		return "", err
	}
	var tok token
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &tok) != nil || tok.ID == "" {
		return "", fmt.Errorf("POST /v1/tokens = %v; want 200", r)
	}
	return tok.ID, nil
}

// vaultLoad creates payments from a few goroutines until stopped: each
// round tokenizes a card for a merchant and pays with it, and pays with one
// of the merchant's tokens from before the rotation. Merchants may be
// added while it runs.
type vaultLoad struct {
	mu        sync.Mutex
	merchants []*vaultMerchant
	failures  []string
	payments  atomic.Int64
	perMerch  sync.Map // merchant ID -> *atomic.Int64
	stop      chan struct{}
	wg        sync.WaitGroup
}

func startVaultLoad(merchants []*vaultMerchant, workers int) *vaultLoad {
	l := &vaultLoad{merchants: merchants, stop: make(chan struct{})}
	for w := range workers {
		l.wg.Go(func() {
			for i := w; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				l.mu.Lock()
				m := l.merchants[i%len(l.merchants)]
				l.mu.Unlock()
				tok, err := m.tokenizeFor()
				if err == nil {
					_, _, err = m.pay(tok, int64(100+i))
				}
				if err == nil && len(m.before) > 0 {
					_, _, err = m.pay(m.before[i%len(m.before)], int64(200+i))
				}
				if err != nil {
					l.mu.Lock()
					l.failures = append(l.failures, err.Error())
					l.mu.Unlock()
					continue
				}
				l.payments.Add(1)
				n, _ := l.perMerch.LoadOrStore(m.id, new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
			}
		})
	}
	return l
}

func (l *vaultLoad) add(m *vaultMerchant) {
	l.mu.Lock()
	l.merchants = append(l.merchants, m)
	l.mu.Unlock()
}

// waitFor waits until cond holds, failing after a generous deadline (a
// hang, not a timing result).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(requestTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", requestTimeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitMore waits until the load has made n more rounds than it had made
// when called, overall or (with a merchant) for that merchant.
func (l *vaultLoad) waitMore(t *testing.T, n int64, merchantID string) {
	t.Helper()
	count := func() int64 {
		if merchantID == "" {
			return l.payments.Load()
		}
		v, ok := l.perMerch.Load(merchantID)
		if !ok {
			return 0
		}
		return v.(*atomic.Int64).Load()
	}
	start := count()
	waitFor(t, fmt.Sprintf("%d more payment rounds", n), func() bool {
		l.mu.Lock()
		failed := len(l.failures) > 0
		l.mu.Unlock()
		return failed || count() >= start+n
	})
}

func (l *vaultLoad) finish(t *testing.T) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	for _, f := range l.failures {
		t.Error("payment under load:", f)
	}
	if l.payments.Load() == 0 {
		t.Fatal("the load made no payment")
	}
}

// TestVaultRotationUnderLoad rotates the vault's key-encryption key twice
// with `payloom vault rotate` while payments are being created for several
// merchants, retiring each old key with `payloom vault retire`: no request
// fails, a merchant created after a rotation gets its data key under the
// new key (the server finds the key file by itself), every card tokenized
// before the rotations still charges (on the running server and after a
// restart, with the old key files gone), and a ciphertext copied into
// another merchant's row fails to decrypt without leaking anything.
func TestVaultRotationUnderLoad(t *testing.T) {
	in := newInstance(t)
	srv := in.start(nil)
	first := parseFirstStart(t, srv.Stdout())
	merchants := []*vaultMerchant{{id: first.MerchantID, c: newClient(t, srv.URL, first.Key), number: vaultCards[0]}}
	for i := 1; i < 3; i++ {
		merchants = append(merchants, newVaultMerchant(t, in, srv.URL, fmt.Sprintf("Shop %d", i), vaultCards[i]))
	}
	for _, m := range merchants {
		for range 3 {
			m.before = append(m.before, m.c.tokenize(m.number, "").ID)
		}
	}
	status0, _ := in.runCLI("vault", "status")
	master := strings.Fields(strings.Split(status0, "\n")[1])[0]
	if !kekIDRE.MatchString(master) {
		t.Fatalf("payloom vault status =\n%s\nwant the master key k1_... on its second line", status0)
	}

	load := startVaultLoad(merchants, 3)
	load.waitMore(t, 10, "")

	// Rotate to a new key while the load runs, and add a merchant whose
	// first card needs a data key under it.
	out, errOut := in.runCLI("vault", "rotate", "--batch-size", "2")
	k2 := strings.TrimSpace(out)
	if !kekIDRE.MatchString(k2) || !strings.Contains(errOut, "(was "+master+")") {
		t.Fatalf("payloom vault rotate = %q, stderr %q; want the new key's ID, rotated from %s", out, errOut, master)
	}
	late := newVaultMerchant(t, in, srv.URL, "Late shop", vaultCards[3])
	load.add(late)
	load.waitMore(t, 5, late.id)
	in.runCLI("vault", "retire", master)
	load.waitMore(t, 10, "")

	// A second rotation retires a key that lives in a file: the file goes.
	out, _ = in.runCLI("vault", "rotate")
	k3 := strings.TrimSpace(out)
	if !kekIDRE.MatchString(k3) || k3 == k2 {
		t.Fatalf("second payloom vault rotate = %q; want a new key ID", out)
	}
	load.waitMore(t, 10, "")
	_, errOut = in.runCLI("vault", "retire", k2)
	k2File := filepath.Join(in.DataDir, "keys", "kek-"+k2+".key")
	if !strings.Contains(errOut, "Deleted its key file") {
		t.Errorf("payloom vault retire %s stderr = %q; want the key file deleted", k2, errOut)
	}
	if _, err := os.Stat(k2File); !os.IsNotExist(err) {
		t.Errorf("key file of the retired %s: stat = %v; want it gone", k2, err)
	}
	load.waitMore(t, 10, "")
	load.finish(t)
	t.Logf("%d payment rounds under load across two rotations", load.payments.Load())

	// Retiring the primary, or an unknown key, is refused.
	for _, id := range []string{k3, "k9_00000000"} {
		if _, stderr, err := in.tryCLI(nil, "vault", "retire", id); err == nil {
			t.Errorf("payloom vault retire %s succeeded; want it refused (stderr %q)", id, stderr)
		}
	}

	status, _ := in.runCLI("vault", "status")
	t.Logf("payloom vault status:\n%s", status)
	rows := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(status), "\n")[1:] {
		f := strings.Fields(line)
		rows[f[0]] = f
	}
	// KEK CREATED PRIMARY RETIRED DATA-KEYS CARDS THIS-NODE...
	for id, want := range map[string][2]string{master: {"no", "0"}, k2: {"no", "0"}, k3: {"yes", "4"}} {
		f := rows[id]
		if len(f) < 6 || f[2] != want[0] || f[4] != want[1] || f[5] != "0" || (id != k3) != (f[3] != "-") {
			t.Errorf("payloom vault status row of %s = %v; want primary %s, %s data keys, retired %v\n%s",
				id, f, want[0], want[1], id != k3, status)
		}
	}
	if len(rows) != 3 {
		t.Errorf("payloom vault status lists %d keys; want 3\n%s", len(rows), status)
	}
	for _, action := range []string{"vault.rotate", "vault.retire"} {
		out, _ := in.runCLI("audit", "list", "--action", action)
		if n := strings.Count(out, `"outcome":"success"`); n != 2 || strings.Count(out, `"actor":"cli"`) != strings.Count(out, "\n") {
			t.Errorf("payloom audit list --action %s =\n%s\nwant 2 successes, all by the cli", action, out)
		}
	}

	// Every card tokenized before the rotations still charges, on the
	// running server and after a restart (empty data key cache, keyring
	// without the retired key file).
	charge := func(srv *server, when string) {
		t.Helper()
		for _, m := range merchants {
			m.c.base = srv.URL
			for _, tok := range m.before {
				if _, _, err := m.pay(tok, 4321); err != nil {
					t.Errorf("%s: %v", when, err)
				}
			}
		}
	}
	charge(srv, "after the rotations")
	srv.Stop()
	srv = in.start(nil)
	charge(srv, "after a restart")
	late.c.base = srv.URL
	if tok, err := late.tokenizeFor(); err != nil {
		t.Error(err)
	} else if _, _, err := late.pay(tok, 777); err != nil {
		t.Errorf("after a restart, the late merchant: %v", err)
	}

	// A ciphertext copied into another merchant's row does not decrypt:
	// the payment fails with an internal error that shows nothing.
	a, b := merchants[1], merchants[2]
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(in.DataDir, "payloom.db")+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i, q := range []string{
		`UPDATE cards SET ciphertext = (SELECT ciphertext FROM cards WHERE id = ?1) WHERE id = ?2`,
		`UPDATE cards SET (ciphertext, key_id) = (SELECT ciphertext, key_id FROM cards WHERE id = ?1) WHERE id = ?2`,
	} {
		victim := b.before[i]
		if _, err := db.Exec(q, a.before[0], victim); err != nil {
			t.Fatal(err)
		}
		_, r, err := b.pay(victim, 999)
		if r == nil || r.Status != http.StatusInternalServerError || r.ErrorCode() != "internal_error" {
			t.Errorf("payment with a ciphertext moved in from another merchant (%d) = %v, %v; want 500 internal_error", i, r, err)
		}
		if r != nil && (strings.Contains(string(r.Body), a.number) || strings.Contains(string(r.Body), a.number[6:12])) {
			t.Errorf("the failed payment's response %s shows the other merchant's card", r.Body)
		}
	}
	if !strings.Contains(srv.stderr.String(), "card data cannot be decrypted") {
		t.Errorf("server log lacks the decryption failure; stderr:\n%s", srv.stderr)
	}
	// The source row still charges for its own merchant.
	if _, _, err := a.pay(a.before[0], 555); err != nil {
		t.Errorf("the source card after the copy: %v", err)
	}
	srv.Stop()
	scanForCardData(t, in, vaultCards, nil)
}

// TestVaultRotationMultiNode is the rotation of a cluster whose keys come
// from the environment: two nodes on one PostgreSQL database share
// PAYLOOM_MASTER_KEY and PAYLOOM_MASTER_KEYS (with a key no data key uses
// yet); under load spread over both nodes, `payloom vault rotate` makes
// that key primary without writing any file, and the master key is
// retired. No request fails, and every card tokenized before charges on
// either node afterwards.
func TestVaultRotationMultiNode(t *testing.T) {
	cluster := pgtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cluster.CreateDatabase(ctx, "payloom"); err != nil {
		t.Fatal(err)
	}
	dbURL := cluster.URL("payloom")
	keyring := "PAYLOOM_MASTER_KEYS=k2:" + base64.StdEncoding.EncodeToString([]byte("an example key, 32 bytes long!!!"))
	env := []string{"PAYLOOM_MASTER_KEY=" + multiNodeMasterKey, keyring}
	in := newInstance(t)
	nodes := startPostgresNodes(in, dbURL, 2, keyring)
	first := bootstrapped(t, nodes)
	cli := func(args ...string) (string, string) {
		t.Helper()
		out, errOut, err := in.tryCLI(env, append(args, "--database-url", dbURL)...)
		if err != nil {
			t.Fatalf("payloom %s: %v\nstderr:\n%s", strings.Join(args, " "), err, errOut)
		}
		return out, errOut
	}

	merchants := []*vaultMerchant{{id: first.MerchantID, c: newClient(t, nodes[0].URL, first.Key), number: vaultCards[0]}}
	for i := 1; i < 4; i++ {
		id, _ := cli("merchants", "create", "--name", fmt.Sprintf("Shop %d", i))
		key, _ := cli("keys", "create", "--merchant", strings.TrimSpace(id), "--mode", "test")
		merchants = append(merchants, &vaultMerchant{id: strings.TrimSpace(id),
			c: newClient(t, nodes[i%2].URL, strings.TrimSpace(key)), number: vaultCards[i]})
	}
	for _, m := range merchants {
		for range 2 {
			m.before = append(m.before, m.c.tokenize(m.number, "").ID)
		}
	}
	status, _ := cli("vault", "status")
	master := strings.Fields(strings.Split(status, "\n")[1])[0]

	load := startVaultLoad(merchants, 4)
	load.waitMore(t, 10, "")
	out, _ := cli("vault", "rotate")
	if strings.TrimSpace(out) != "k2" {
		t.Fatalf("payloom vault rotate = %q; want k2, the key of PAYLOOM_MASTER_KEYS", out)
	}
	load.waitMore(t, 10, "")
	cli("vault", "retire", master)
	load.waitMore(t, 10, "")
	load.finish(t)
	if _, err := os.Stat(filepath.Join(in.DataDir, "keys")); !os.IsNotExist(err) {
		t.Errorf("a rotation with keys from the environment wrote %s (stat %v); want no key file", filepath.Join(in.DataDir, "keys"), err)
	}

	db := openPGDB(t, dbURL)
	if n := db.int64(t, `SELECT count(*) FROM vault_deks WHERE kek_id <> 'k2'`); n != 0 {
		t.Errorf("data keys not wrapped by k2 after the rotation = %d; want 0", n)
	}
	if n := db.int64(t, `SELECT count(*) FROM vault_keks WHERE id = $1 AND retired_at IS NOT NULL`, master); n != 1 {
		t.Errorf("%s retired = %d; want 1", master, n)
	}
	for _, m := range merchants {
		for i, tok := range m.before {
			m.c.base = nodes[i%2].URL
			if _, _, err := m.pay(tok, 4321); err != nil {
				t.Errorf("after the rotation: %v", err)
			}
		}
	}
	for _, s := range nodes {
		s.Stop()
	}
	scanForCardData(t, in, vaultCards, nil)
}
