package vault

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/sqlite"
)

// testClock is a clock tests move by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// env is a vault on a real SQLite file, with two merchants.
type env struct {
	vault *Vault
	store *sqlite.Store
	path  string
	clock *testClock
	a, b  payloom.Scope // two merchants, test mode
	aLive payloom.Scope // merchant a, live mode
	bLive payloom.Scope
	keys  *Keys
}

func newEnv(t *testing.T) *env {
	t.Helper()
	path := filepath.Join(t.TempDir(), "payloom.db")
	store := openStore(t, path)
	e := &env{
		store: store,
		path:  path,
		clock: &testClock{now: time.Date(2026, time.March, 15, 12, 0, 0, 0, time.UTC)},
		keys:  mustKeys(t, testMaster),
	}
	e.vault = New(store, e.keys, Options{Clock: e.clock.Now})
	e.a = payloom.Scope{MerchantID: e.newMerchant(t)}
	e.b = payloom.Scope{MerchantID: e.newMerchant(t)}
	e.aLive = payloom.Scope{MerchantID: e.a.MerchantID, Livemode: true}
	e.bLive = payloom.Scope{MerchantID: e.b.MerchantID, Livemode: true}
	return e
}

func openStore(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	store, err := sqlite.Open(path)
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return store
}

func (e *env) newMerchant(t *testing.T) string {
	t.Helper()
	m := &payloom.Merchant{
		ID: payloom.NewID(payloom.PrefixMerchant), Name: "Shop",
		MinAmount: payloom.DefaultMinAmount, MaxAmount: payloom.DefaultMaxAmount,
		CreatedAt: time.Now().UTC(),
	}
	if err := e.store.Update(context.Background(), func(tx payloom.Tx) error {
		return tx.CreateMerchant(context.Background(), m)
	}); err != nil {
		t.Fatalf("CreateMerchant: %v", err)
	}
	return m.ID
}

func (e *env) tokenize(t *testing.T, scope payloom.Scope, number, cvc string) *payloom.Token {
	t.Helper()
	tok, err := e.vault.Tokenize(context.Background(), scope, &payloom.CardInput{
		Number: payloom.Secret(number), ExpMonth: 12, ExpYear: 2030, CVC: payloom.Secret(cvc),
	})
	if err != nil {
		t.Fatalf("Tokenize(%s) = %v", scope.MerchantID, err)
	}
	return tok
}

// dekID returns the ID of the merchant's data key.
func (e *env) dekID(t *testing.T, merchantID string) string {
	t.Helper()
	var id string
	if err := e.rawDB(t).QueryRow(`SELECT id FROM vault_deks WHERE merchant_id = ?`, merchantID).Scan(&id); err != nil {
		t.Fatalf("data key of %s: %v", merchantID, err)
	}
	return id
}

// rawDB opens the SQLite file directly, as an attacker with the file would.
func (e *env) rawDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", e.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestTokenizeRevealRoundTrip(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		in     payloom.CardInput
		scope  payloom.Scope
		number string
		brand  payloom.CardBrand
		year   int
		// country is the issuer's, from the BIN table: test ranges
		// in test mode only.
		country string
	}{
		{"visa", payloom.CardInput{Number: "4242424242424242", ExpMonth: 12, ExpYear: 2030, CVC: "123", HolderName: "Jane Doe"},
			e.a, "4242424242424242", payloom.CardBrandVisa, 2030, "US"},
		{"spaces and 2-digit year", payloom.CardInput{Number: "5555 5555 5555 4444", ExpMonth: 3, ExpYear: 26, CVC: "999"},
			e.a, "5555555555554444", payloom.CardBrandMastercard, 2026, "US"},
		{"amex live", payloom.CardInput{Number: "3782-822463-10005", ExpMonth: 1, ExpYear: 2031, CVC: "1234"},
			e.aLive, "378282246310005", payloom.CardBrandAmex, 2031, ""},
		{"no cvc", payloom.CardInput{Number: "6011111111111117", ExpMonth: 7, ExpYear: 2029},
			e.b, "6011111111111117", payloom.CardBrandDiscover, 2029, "US"},
		{"elo", payloom.CardInput{Number: "5066991111111118", ExpMonth: 7, ExpYear: 2029, CVC: "321"},
			e.b, "5066991111111118", payloom.CardBrandElo, 2029, "BR"},
		{"elo live", payloom.CardInput{Number: "5066991111111118", ExpMonth: 7, ExpYear: 2029, CVC: "321"},
			e.aLive, "5066991111111118", payloom.CardBrandElo, 2029, "BR"},
		{"brazilian visa", payloom.CardInput{Number: "4000 0007 6000 0002", ExpMonth: 7, ExpYear: 2029, CVC: "321"},
			e.a, "4000000760000002", payloom.CardBrandVisa, 2029, "BR"},
		{"brazilian visa live", payloom.CardInput{Number: "4000 0007 6000 0002", ExpMonth: 7, ExpYear: 2029, CVC: "321"},
			e.aLive, "4000000760000002", payloom.CardBrandVisa, 2029, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := e.vault.Tokenize(ctx, tc.scope, &tc.in)
			if err != nil {
				t.Fatalf("Tokenize = %v", err)
			}
			want := payloom.CardSummary{
				Brand: tc.brand, First6: tc.number[:6], Last4: tc.number[len(tc.number)-4:],
				ExpMonth: tc.in.ExpMonth, ExpYear: tc.year, Fingerprint: tok.Card.Fingerprint,
				HolderName: tc.in.HolderName, Country: tc.country,
			}
			if !payloom.HasPrefix(tok.ID, payloom.PrefixToken) || tok.Object != "token" || tok.Livemode != tc.scope.Livemode ||
				tok.Card != want || len(tok.Card.Fingerprint) != fingerprintLen || !tok.CreatedAt.Equal(e.clock.Now()) {
				t.Fatalf("Tokenize = %+v; want a %s token with card %+v", tok, tc.scope.Mode(), want)
			}

			card, err := e.vault.Card(ctx, tc.scope, tok.ID)
			if err != nil {
				t.Fatalf("Card = %v", err)
			}
			want.Token = tok.ID
			if card.ID != tok.ID || card.MerchantID != tc.scope.MerchantID || card.Livemode != tc.scope.Livemode ||
				card.Summary != want || card.KeyID != e.dekID(t, tc.scope.MerchantID) || !card.CreatedAt.Equal(tok.CreatedAt) {
				t.Fatalf("Card = %+v; want summary %+v, key %s", card, want, e.dekID(t, tc.scope.MerchantID))
			}
			if bytes.Contains(card.Ciphertext, []byte(tc.number)) {
				t.Fatal("ciphertext contains the card number")
			}

			data, err := e.vault.Reveal(ctx, tc.scope, tok.ID)
			if err != nil {
				t.Fatalf("Reveal = %v", err)
			}
			wantData := payloom.CardData{
				Number: payloom.Secret(tc.number), ExpMonth: tc.in.ExpMonth, ExpYear: tc.year,
				CVC: tc.in.CVC, HolderName: tc.in.HolderName, Brand: tc.brand,
			}
			if *data != wantData {
				t.Fatalf("Reveal = %+v (number %q, cvc %q); want number %q, cvc %q",
					data, data.Number.Reveal(), data.CVC.Reveal(), tc.number, tc.in.CVC.Reveal())
			}
			// RevealCard reveals the copy Card returned, the same way.
			if data, err = e.vault.RevealCard(ctx, tc.scope, card); err != nil || *data != wantData {
				t.Fatalf("RevealCard = %+v, %v; want number %q, cvc %q", data, err, tc.number, tc.in.CVC.Reveal())
			}
			// A copy that no longer decrypts is read again.
			stale := *card
			stale.Ciphertext = bytes.Repeat([]byte{1}, len(card.Ciphertext))
			if data, err = e.vault.RevealCard(ctx, tc.scope, &stale); err != nil || *data != wantData {
				t.Fatalf("RevealCard(copy that does not decrypt) = %+v, %v; want the stored card", data, err)
			}
			other := tc.scope
			other.Livemode = !other.Livemode
			if data, err = e.vault.RevealCard(ctx, other, card); !payloom.IsCode(err, payloom.CodeNotFound) || data != nil {
				t.Fatalf("RevealCard(card of another scope) = %+v, %v; want CodeNotFound", data, err)
			}
		})
	}
}

func TestTokenizeValidation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	card := func(number string, month, year int, cvc, holder string) *payloom.CardInput {
		return &payloom.CardInput{Number: payloom.Secret(number), ExpMonth: month, ExpYear: year,
			CVC: payloom.Secret(cvc), HolderName: holder}
	}
	for _, tc := range []struct {
		in    *payloom.CardInput
		param string
	}{
		{nil, "card"},
		{card("", 12, 2030, "123", ""), paramNumber},
		{card("4242424242424241", 12, 2030, "123", ""), paramNumber},
		{card("4242 4242 42", 12, 2030, "123", ""), paramNumber},
		{card("4242x4242x4242x4242", 12, 2030, "123", ""), paramNumber},
		{card("42424242424242424242", 12, 2030, "123", ""), paramNumber},
		{card("4242424242424242", 0, 2030, "123", ""), paramExpMonth},
		{card("4242424242424242", 13, 2030, "123", ""), paramExpMonth},
		{card("4242424242424242", 2, 2026, "123", ""), paramExpMonth},
		{card("4242424242424242", 12, 2025, "123", ""), paramExpYear},
		{card("4242424242424242", 12, 202, "123", ""), paramExpYear},
		{card("4242424242424242", 12, 2030, "12", ""), paramCVC},
		{card("4242424242424242", 12, 2030, "4321", ""), paramCVC},
		{card("378282246310005", 12, 2030, "765", ""), paramCVC},
		{card("4242424242424242", 12, 2030, "12x", ""), paramCVC},
		{card("4242424242424242", 12, 2030, "123", strings.Repeat("n", 201)), paramHolderName},
	} {
		tok, err := e.vault.Tokenize(ctx, e.a, tc.in)
		if tok != nil || !payloom.IsCode(err, payloom.CodeValidation) || payloom.ErrorParam(err) != tc.param {
			t.Errorf("Tokenize(%+v) = %v, %v; want validation error on %s", tc.in, tok, err, tc.param)
			continue
		}
		if tc.in == nil {
			continue
		}
		num, cvc := tc.in.Number.Reveal(), tc.in.CVC.Reveal()
		for _, s := range []string{err.Error(), payloom.ErrorMessage(err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
			if len(num) >= 4 && strings.Contains(s, strings.NewReplacer(" ", "", "-", "").Replace(num)[:4]) ||
				len(num) >= 4 && strings.Contains(s, num) || len(cvc) >= 2 && strings.Contains(s, cvc) {
				t.Errorf("Tokenize error %q contains the card number or CVC", s)
			}
		}
	}
	var n int
	if err := e.rawDB(t).QueryRow(`SELECT count(*) FROM cards`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("cards stored after validation errors = %d, %v; want 0", n, err)
	}
}

func TestCardScopes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tok := e.tokenize(t, e.a, "4242424242424242", "123")
	for _, tc := range []struct {
		scope payloom.Scope
		token string
	}{
		{e.b, tok.ID},
		{e.aLive, tok.ID},
		{payloom.Scope{MerchantID: "mrch_nope"}, tok.ID},
		{e.a, "tok_01nosuchtoken0000000000000"},
		{e.a, "pay_" + strings.TrimPrefix(tok.ID, "tok_")},
		{e.a, ""},
	} {
		if c, err := e.vault.Card(ctx, tc.scope, tc.token); c != nil || !payloom.IsCode(err, payloom.CodeNotFound) {
			t.Errorf("Card(%+v, %q) = %v, %v; want %s", tc.scope, tc.token, c, err, payloom.CodeNotFound)
		}
		if d, err := e.vault.Reveal(ctx, tc.scope, tc.token); d != nil || !payloom.IsCode(err, payloom.CodeNotFound) {
			t.Errorf("Reveal(%+v, %q) = %v, %v; want %s", tc.scope, tc.token, d, err, payloom.CodeNotFound)
		}
	}
}

func TestCiphertextBoundToRow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const number = "4242424242424242"
	src := e.tokenize(t, e.a, number, "123")
	// Destinations with the same first6/last4, so only the binding can
	// tell the rows apart.
	otherMerchant := e.tokenize(t, e.b, number, "123")
	otherToken := e.tokenize(t, e.a, number, "123")
	otherMode := e.tokenize(t, e.aLive, number, "123")
	db := e.rawDB(t)
	for _, tc := range []struct {
		name  string
		scope payloom.Scope
		token string
	}{
		{"another merchant's row", e.b, otherMerchant.ID},
		{"another token of the merchant", e.a, otherToken.ID},
		{"the merchant's live row", e.aLive, otherMode.ID},
	} {
		if _, err := db.Exec(`UPDATE cards SET ciphertext = (SELECT ciphertext FROM cards WHERE id = ?) WHERE id = ?`,
			src.ID, tc.token); err != nil {
			t.Fatal(err)
		}
		d, err := e.vault.Reveal(ctx, tc.scope, tc.token)
		if d != nil || !payloom.IsCode(err, payloom.CodeInternal) || payloom.ErrorMessage(err) != "card data cannot be decrypted" {
			t.Errorf("Reveal(ciphertext moved to %s) = %v, %v; want %s \"card data cannot be decrypted\"",
				tc.name, d, err, payloom.CodeInternal)
		}
		if err != nil && strings.Contains(err.Error(), number[6:12]) {
			t.Errorf("Reveal error %q contains card digits", err)
		}
	}
	if d, err := e.vault.Reveal(ctx, e.a, src.ID); err != nil || d.Number.Reveal() != number {
		t.Fatalf("Reveal(source row) = %v, %v; want it still readable", d, err)
	}
}

func TestRevealTamperedOrForeignKey(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tok := e.tokenize(t, e.a, "4242424242424242", "123")

	other := New(e.store, mustKeys(t, bytes.Repeat([]byte{0x99}, MasterKeySize)), Options{Clock: e.clock.Now})
	if _, err := other.Reveal(ctx, e.a, tok.ID); !payloom.IsCode(err, payloom.CodeInternal) {
		t.Errorf("Reveal under another master key = %v; want %s", err, payloom.CodeInternal)
	}
	// Same key ID, wrong key: a forged key_id column must not help.
	db := e.rawDB(t)
	if _, err := db.Exec(`UPDATE cards SET key_id = ? WHERE id = ?`, other.keys.KeyID(), tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Reveal(ctx, e.a, tok.ID); !payloom.IsCode(err, payloom.CodeInternal) {
		t.Errorf("Reveal with forged key_id = %v; want %s", err, payloom.CodeInternal)
	}
	var ct []byte
	if err := db.QueryRow(`SELECT ciphertext FROM cards WHERE id = ?`, tok.ID).Scan(&ct); err != nil {
		t.Fatal(err)
	}
	ct[nonceSize+2] ^= 0x01
	if _, err := db.Exec(`UPDATE cards SET key_id = ?, ciphertext = ? WHERE id = ?`, e.dekID(t, e.a.MerchantID), ct, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.vault.Reveal(ctx, e.a, tok.ID); !payloom.IsCode(err, payloom.CodeInternal) {
		t.Errorf("Reveal of a flipped ciphertext byte = %v; want %s", err, payloom.CodeInternal)
	}
	// A row whose summary was changed to another card's digits.
	tok2 := e.tokenize(t, e.a, "4242424242424242", "123")
	if _, err := db.Exec(`UPDATE cards SET last4 = '4444' WHERE id = ?`, tok2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.vault.Reveal(ctx, e.a, tok2.ID); !payloom.IsCode(err, payloom.CodeInternal) {
		t.Errorf("Reveal of a row with a forged last4 = %v; want %s", err, payloom.CodeInternal)
	}
}

func TestCVCHeldOnlyInMemory(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cvcOf := func(v *Vault, scope payloom.Scope, token string) string {
		t.Helper()
		d, err := v.Reveal(ctx, scope, token)
		if err != nil {
			t.Fatalf("Reveal = %v", err)
		}
		return d.CVC.Reveal()
	}

	forgotten := e.tokenize(t, e.a, "4242424242424242", "123")
	e.vault.ForgetCVC(e.b, forgotten.ID) // another scope: no effect
	if got := cvcOf(e.vault, e.a, forgotten.ID); got != "123" {
		t.Fatalf("CVC after ForgetCVC from another scope = %q; want %q", got, "123")
	}
	e.vault.ForgetCVC(e.a, forgotten.ID)
	if got := cvcOf(e.vault, e.a, forgotten.ID); got != "" {
		t.Fatalf("CVC after ForgetCVC = %q; want none", got)
	}
	e.vault.ForgetCVC(e.a, forgotten.ID) // twice is fine

	expiring := e.tokenize(t, e.a, "5555555555554444", "456")
	e.clock.Add(DefaultCVCTTL - time.Millisecond)
	if got := cvcOf(e.vault, e.a, expiring.ID); got != "456" {
		t.Fatalf("CVC just before the TTL = %q; want %q", got, "456")
	}
	e.clock.Add(time.Millisecond)
	if got := cvcOf(e.vault, e.a, expiring.ID); got != "" {
		t.Fatalf("CVC at the TTL = %q; want none", got)
	}

	// Expired CVCs are swept from memory, not only hidden.
	for range 5 {
		e.tokenize(t, e.a, "4242424242424242", "789")
	}
	e.clock.Add(DefaultCVCTTL)
	e.tokenize(t, e.a, "4242424242424242", "789")
	if n := e.vault.heldCVCs(); n != 1 {
		t.Fatalf("CVCs held after the others expired = %d; want 1", n)
	}

	// A custom TTL, and a restart (a new Vault) forgets every CVC.
	short := New(e.store, e.keys, Options{Clock: e.clock.Now, CVCTTL: time.Minute})
	tok, err := short.Tokenize(ctx, e.a, &payloom.CardInput{Number: "4242424242424242", ExpMonth: 1, ExpYear: 2031, CVC: "321"})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Add(time.Minute)
	if got := cvcOf(short, e.a, tok.ID); got != "" {
		t.Fatalf("CVC after a one-minute TTL = %q; want none", got)
	}
	restarted := New(e.store, e.keys, Options{Clock: e.clock.Now})
	fresh := e.tokenize(t, e.a, "4242424242424242", "111")
	if got := cvcOf(restarted, e.a, fresh.ID); got != "" {
		t.Fatalf("CVC seen by another Vault = %q; want none (memory only)", got)
	}
}

func TestFingerprint(t *testing.T) {
	e := newEnv(t)
	a1 := e.tokenize(t, e.a, "4242424242424242", "123").Card.Fingerprint
	a2, err := e.vault.Tokenize(context.Background(), e.a, &payloom.CardInput{
		Number: "4242 4242 4242 4242", ExpMonth: 1, ExpYear: 2033, CVC: "999"})
	if err != nil {
		t.Fatal(err)
	}
	aLive := e.tokenize(t, e.aLive, "4242424242424242", "123").Card.Fingerprint
	b := e.tokenize(t, e.b, "4242424242424242", "123").Card.Fingerprint
	aOther := e.tokenize(t, e.a, "5555555555554444", "123").Card.Fingerprint
	if a1 != a2.Card.Fingerprint || a1 != aLive {
		t.Errorf("fingerprints of one card at one merchant = %q, %q, %q; want equal", a1, a2.Card.Fingerprint, aLive)
	}
	if a1 == b {
		t.Errorf("fingerprint at two merchants = %q both; want different", a1)
	}
	if a1 == aOther {
		t.Errorf("fingerprint of two cards = %q both; want different", a1)
	}
	// Another master key gives other fingerprints.
	other := New(e.store, mustKeys(t, bytes.Repeat([]byte{0x99}, MasterKeySize)), Options{Clock: e.clock.Now})
	if fp := other.fingerprint(e.a.MerchantID, "4242424242424242"); fp == a1 {
		t.Errorf("fingerprint under another key = %q; want different", fp)
	}
}

// TestStoredRowsHoldNoPAN reads the SQLite file the way someone who stole
// it would: no column and no byte of the database files may hold the digits
// of a card number beyond its first six and last four. Every window of
// seven consecutive digits of a number spans a digit outside first6 and
// last4, so the test looks for those (eight in the raw files, where random
// IDs are more numerous); the numbers are chosen without long runs of one
// digit that timestamps could match.
func TestStoredRowsHoldNoPAN(t *testing.T) {
	e := newEnv(t)
	var numbers []string
	for _, body := range []string{"413857291607483", "531274609381527", "37149618294753", "601139472816509", "457182930561738492"} {
		numbers = append(numbers, withCheckDigit(t, body))
	}
	for _, n := range numbers {
		e.tokenize(t, e.a, n, "")
		e.tokenize(t, e.bLive, n, "")
	}
	windows := func(n string, size int) []string {
		var w []string
		for i := 0; i+size <= len(n); i++ {
			w = append(w, n[i:i+size])
		}
		return w
	}

	rows, err := e.rawDB(t).Query(`SELECT * FROM cards`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	count := 0
	for rows.Next() {
		count++
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			s := fmt.Sprint(v)
			if b, ok := v.([]byte); ok {
				s = string(b)
			}
			for _, n := range numbers {
				for _, w := range windows(n, 7) {
					if strings.Contains(s, w) {
						t.Errorf("cards.%s = %q holds %q, digits of a card number beyond first6/last4", cols[i], s, w)
					}
				}
			}
		}
	}
	if err := rows.Err(); err != nil || count != 2*len(numbers) {
		t.Fatalf("read %d card rows (%v); want %d", count, err, 2*len(numbers))
	}

	files, _ := filepath.Glob(e.path + "*") // the database, -wal and -shm
	if len(files) == 0 {
		t.Fatalf("no database files at %s", e.path)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range numbers {
			for _, w := range windows(n, 8) {
				if bytes.Contains(data, []byte(w)) {
					t.Errorf("%s contains %q, digits of %s...%s beyond first6/last4", filepath.Base(f), w, n[:6], n[len(n)-4:])
				}
			}
		}
	}
}

func TestConcurrentTokenizeReveal(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 20 {
		wg.Go(func() {
			scope := e.a
			if i%2 == 1 {
				scope = e.b
			}
			cvc := fmt.Sprintf("%03d", i)
			tok, err := e.vault.Tokenize(ctx, scope, &payloom.CardInput{
				Number: "4242424242424242", ExpMonth: 5, ExpYear: 2030, CVC: payloom.Secret(cvc)})
			if err != nil {
				errs <- err
				return
			}
			d, err := e.vault.Reveal(ctx, scope, tok.ID)
			switch {
			case err != nil:
				errs <- err
			case d.CVC.Reveal() != cvc || d.Number.Reveal() != "4242424242424242":
				errs <- fmt.Errorf("Reveal(%s) gave CVC %q; want %q", tok.ID, d.CVC.Reveal(), cvc)
			}
			e.vault.ForgetCVC(scope, tok.ID)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := e.vault.heldCVCs(); n != 0 {
		t.Fatalf("CVCs held after every ForgetCVC = %d; want 0", n)
	}
}
