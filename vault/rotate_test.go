package vault

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payloom/payloom"
)

// rotEnv is a vault whose keyring lives in a data directory, as the
// server's does, on a real SQLite file.
type rotEnv struct {
	*env
	dir string
}

func newRotEnv(t *testing.T) *rotEnv {
	t.Helper()
	dir := newDataDir(t)
	e := &rotEnv{env: &env{
		path:  filepath.Join(dir, "payloom.db"),
		clock: &testClock{now: time.Date(2026, time.March, 15, 12, 0, 0, 0, time.UTC)},
		keys:  mustLoadKeyring(t, dir, nil),
	}, dir: dir}
	e.store = openStore(t, e.path)
	e.vault = New(e.store, e.keys, Options{Clock: e.clock.Now})
	return e
}

// freshVault is another process on the same data directory and store: its
// own keyring read from the files, and an empty data key cache.
func (e *rotEnv) freshVault(t *testing.T) *Vault {
	t.Helper()
	return New(e.store, mustLoadKeyring(t, e.dir, nil), Options{Clock: e.clock.Now})
}

// card is a tokenized card and its number.
type card struct {
	scope  payloom.Scope
	token  string
	number string
}

var testNumbers = []string{"4242424242424242", "5555555555554444", "4000056655665556", "6011111111111117"}

// cards tokenizes a card in each of n new merchants.
func (e *rotEnv) cards(t *testing.T, n int) []card {
	t.Helper()
	var out []card
	for i := range n {
		scope := payloom.Scope{MerchantID: e.newMerchant(t), Livemode: i%2 == 1}
		number := testNumbers[i%len(testNumbers)]
		out = append(out, card{scope, e.tokenize(t, scope, number, "").ID, number})
	}
	return out
}

// checkReveal fails unless every card reveals its number through v.
func checkReveal(t *testing.T, v *Vault, cards []card, when string) {
	t.Helper()
	for _, c := range cards {
		d, err := v.Reveal(context.Background(), c.scope, c.token)
		if err != nil || d.Number.Reveal() != c.number {
			t.Errorf("%s: Reveal(%s) = %v; want the card's number", when, c.token, err)
		}
	}
}

// dekCounts returns how many data keys each KEK wraps.
func (e *rotEnv) dekCounts(t *testing.T) map[string]int {
	t.Helper()
	var counts map[string]int
	if err := e.store.View(context.Background(), func(tx payloom.Tx) error {
		var err error
		counts, err = tx.CountVaultDEKs(context.Background())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return counts
}

// wrappedDEKs returns every stored data key.
func (e *rotEnv) wrappedDEKs(t *testing.T) []*payloom.VaultDEK {
	t.Helper()
	rows, err := e.rawDB(t).Query(`SELECT id, merchant_id, kek_id, wrapped FROM vault_deks`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []*payloom.VaultDEK
	for rows.Next() {
		var d payloom.VaultDEK
		if err := rows.Scan(&d.ID, &d.MerchantID, &d.KEKID, &d.Wrapped); err != nil {
			t.Fatal(err)
		}
		out = append(out, &d)
	}
	if len(out) == 0 {
		t.Fatal("no data keys stored")
	}
	return out
}

// auditEvents returns the audit events of an action, newest first.
func (e *rotEnv) auditEvents(t *testing.T, action payloom.AuditAction) []*payloom.AuditEvent {
	t.Helper()
	var evs []*payloom.AuditEvent
	if err := e.store.View(context.Background(), func(tx payloom.Tx) error {
		var err error
		evs, _, err = tx.ListAuditEvents(context.Background(), payloom.AuditFilter{
			ListParams: payloom.ListParams{Limit: 100}, Action: &action})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return evs
}

func (e *rotEnv) rotate(t *testing.T, v *Vault, kekID string) *RotateResult {
	t.Helper()
	res, err := v.Rotate(cliCtx(), kekID, 2)
	if err != nil {
		t.Fatalf("Rotate(%s) = %v", kekID, err)
	}
	return res
}

func cliCtx() context.Context {
	return payloom.WithActor(context.Background(), payloom.Actor{ID: payloom.AuditActorCLI, Source: payloom.AuditSourceCLI})
}

// TestEnvelopeEncryption: the first card of a merchant makes its data key,
// wrapped by the master key (KEK number one, registered as primary); every
// card of the merchant uses that key; merchants get distinct keys.
func TestEnvelopeEncryption(t *testing.T) {
	e := newRotEnv(t)
	cards := e.cards(t, 3)
	more := e.tokenize(t, cards[0].scope, "5555555555554444", "")
	if got := e.dekCounts(t); fmt.Sprint(got) != fmt.Sprint(map[string]int{e.keys.KeyID(): 3}) {
		t.Fatalf("data keys per KEK = %v; want 3 under the master key %s", got, e.keys.KeyID())
	}
	keyIDs := map[string]string{}
	for _, c := range append(cards, card{cards[0].scope, more.ID, ""}) {
		got, err := e.vault.Card(context.Background(), c.scope, c.token)
		if err != nil {
			t.Fatal(err)
		}
		if want := e.dekID(t, c.scope.MerchantID); got.KeyID != want {
			t.Errorf("Card(%s).KeyID = %q; want the merchant's data key %q", c.token, got.KeyID, want)
		}
		keyIDs[c.scope.MerchantID] = got.KeyID
	}
	if len(keyIDs) != 3 || keyIDs[cards[0].scope.MerchantID] == keyIDs[cards[1].scope.MerchantID] {
		t.Errorf("data keys by merchant = %v; want one distinct key per merchant", keyIDs)
	}
	st, err := e.vault.Status(context.Background())
	if err != nil || len(st) != 1 || !st[0].Primary || st[0].ID != e.keys.KeyID() || st[0].DataKeys != 3 || st[0].Local != LocalPresent {
		t.Fatalf("Status() = %v, %v; want the master key, primary, wrapping 3 data keys", st, err)
	}
	checkReveal(t, e.freshVault(t), cards, "another process")
}

// legacyCard is a card encrypted by Payloom before envelope encryption
// (directly under the master key's derived card key), produced by that
// release's code with testMaster: it must still decrypt after the upgrade.
var legacyCard = struct {
	keyID, merchant, token, number, ciphertext, fingerprint string
}{
	keyID:       "k1_26cea7df",
	merchant:    "mrch_01legacy0000000000000000",
	token:       "tok_01legacy0000000000000000",
	number:      "4000056655665556",
	ciphertext:  "d13ff79b83e675cf3e6102f8f076b6e5f6f49ac9b4876cafb22c6039e82098f028b6b94b254e6bd42e672a70",
	fingerprint: "hI-UzMxJduwhiVlB",
}

// storeLegacyCard writes the pre-envelope card's row as the old release
// stored it.
func (e *rotEnv) storeLegacyCard(t *testing.T) card {
	t.Helper()
	ctx := context.Background()
	ct, _ := hex.DecodeString(legacyCard.ciphertext)
	l := legacyCard
	err := e.store.Update(ctx, func(tx payloom.Tx) error {
		if err := tx.CreateMerchant(ctx, &payloom.Merchant{ID: l.merchant, Name: "Old shop", MinAmount: 1, MaxAmount: 100,
			CreatedAt: e.clock.Now()}); err != nil {
			return err
		}
		return tx.CreateCard(ctx, &payloom.Card{
			ID: l.token, MerchantID: l.merchant,
			Summary: payloom.CardSummary{Token: l.token, Brand: payloom.CardBrandVisa, First6: l.number[:6], Last4: l.number[12:],
				ExpMonth: 12, ExpYear: 2030, Fingerprint: l.fingerprint},
			Ciphertext: ct, KeyID: l.keyID, CreatedAt: e.clock.Now(),
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return card{payloom.Scope{MerchantID: l.merchant}, l.token, l.number}
}

// TestUpgradeOfPreEnvelopeCard: a card the previous release stored under
// the master key decrypts after the upgrade, keeps its fingerprint, is
// moved to its merchant's data key by the first rotation, and then the
// master key can be retired.
func TestUpgradeOfPreEnvelopeCard(t *testing.T) {
	e := newRotEnv(t)
	if e.keys.KeyID() != legacyCard.keyID {
		t.Fatalf("master key ID = %q; want %q as the previous release derived it", e.keys.KeyID(), legacyCard.keyID)
	}
	old := e.storeLegacyCard(t)
	checkReveal(t, e.vault, []card{old}, "after the upgrade, before any rotation")
	// The same number tokenized now for that merchant has the old
	// fingerprint: saved cards still deduplicate.
	again := e.tokenize(t, old.scope, old.number, "")
	if again.Card.Fingerprint != legacyCard.fingerprint {
		t.Errorf("fingerprint after the upgrade = %q; want %q as before", again.Card.Fingerprint, legacyCard.fingerprint)
	}
	_, err := e.vault.Retire(cliCtx(), e.keys.KeyID())
	if !errors.Is(err, ErrKEKInUse) {
		t.Fatalf("Retire(master key, primary, encrypting an old card) = %v; want ErrKEKInUse", err)
	}

	// A copy read before the rotation still reveals after it.
	stale, err := e.vault.Card(context.Background(), old.scope, old.token)
	if err != nil {
		t.Fatal(err)
	}

	k2, err := e.keys.GenerateKEK(nil)
	if err != nil {
		t.Fatal(err)
	}
	res := e.rotate(t, e.vault, k2)
	if res.Reencrypted != 1 || res.PreviousID != e.keys.KeyID() {
		t.Errorf("Rotate = %+v; want 1 card re-encrypted, previous %s", res, e.keys.KeyID())
	}
	c, err := e.vault.Card(context.Background(), old.scope, old.token)
	if err != nil || c.KeyID != e.dekID(t, old.scope.MerchantID) || c.Summary.Fingerprint != legacyCard.fingerprint {
		t.Fatalf("Card after rotation = %+v, %v; want it under the merchant's data key, fingerprint kept", c, err)
	}
	checkReveal(t, e.freshVault(t), []card{old}, "after the rotation")
	if _, err := e.vault.Retire(cliCtx(), e.keys.KeyID()); err != nil {
		t.Fatalf("Retire(master key) after the rotation = %v", err)
	}
	checkReveal(t, e.freshVault(t), []card{old}, "after retiring the master key")
	data, err := e.freshVault(t).RevealCard(context.Background(), old.scope, stale)
	if err != nil || data.Number.Reveal() != old.number {
		t.Fatalf("RevealCard(copy read before the rotation) after retiring its key = %v; want the card", err)
	}
}

// TestRotateRewrapsEveryDataKey: after a rotation every data key is wrapped
// by the new KEK, in as many batches as it takes, every card decrypts in a
// new process, and the rotation is in the audit log.
func TestRotateRewrapsEveryDataKey(t *testing.T) {
	e := newRotEnv(t)
	cards := e.cards(t, 5)
	master := e.keys.KeyID()
	k2, err := e.keys.GenerateKEK(nil)
	if err != nil {
		t.Fatal(err)
	}
	res := e.rotate(t, e.vault, k2)
	want := RotateResult{KEKID: k2, PreviousID: master, Rewrapped: 5}
	if *res != want {
		t.Errorf("Rotate = %+v; want %+v", *res, want)
	}
	if got := e.dekCounts(t); fmt.Sprint(got) != fmt.Sprint(map[string]int{k2: 5}) {
		t.Errorf("data keys per KEK after rotation = %v; want all 5 under %s", got, k2)
	}
	checkReveal(t, e.freshVault(t), cards, "after rotation")
	checkReveal(t, e.vault, cards, "after rotation, same process")
	// New merchants get data keys under the new primary.
	newer := e.cards(t, 1)
	if got := e.dekCounts(t); got[k2] != 6 {
		t.Errorf("data keys under %s after a new merchant's first card = %d; want 6", k2, got[k2])
	}
	checkReveal(t, e.freshVault(t), newer, "new merchant")

	evs := e.auditEvents(t, payloom.AuditVaultRotate)
	if len(evs) != 1 || evs[0].Outcome != payloom.AuditSuccess || evs[0].Actor != payloom.AuditActorCLI ||
		evs[0].TargetID != k2 || evs[0].Details["previous_kek"] != master {
		t.Errorf("vault.rotate audit events = %+v; want one success by the CLI on %s from %s", evs, k2, master)
	}
	// Rotating to the primary again finishes an interrupted rotation:
	// here nothing is left.
	if res := e.rotate(t, e.vault, k2); res.Rewrapped != 0 || res.PreviousID != "" {
		t.Errorf("Rotate(current primary) = %+v; want nothing to do", res)
	}
}

// TestRetire: retiring is refused while the key is primary or wraps a
// data key, and for unknown keys; once allowed, the key file is deleted,
// the key's bytes unwrap nothing stored, and every card still decrypts.
func TestRetire(t *testing.T) {
	e := newRotEnv(t)
	cards := e.cards(t, 4)
	master := e.keys.KeyID()
	k2, err := e.keys.GenerateKEK(nil)
	if err != nil {
		t.Fatal(err)
	}
	k2Path := filepath.Join(e.dir, KeysDirName, "kek-"+k2+".key")
	k2Bytes, err := readKeyFile(k2Path)
	if err != nil {
		t.Fatal(err)
	}

	// Promoted but not yet rewrapped (an interrupted rotation): the
	// master key still wraps the four data keys.
	if err := e.vault.promote(cliCtx(), e.keys.lookup(k2), &RotateResult{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   string
		want error
		msg  string
	}{
		{master, ErrKEKInUse, "still wraps 4 data keys"},
		{k2, ErrKEKInUse, "primary"},
		{"k9_nosuchkey", ErrUnknownKEK, "k9_nosuchkey"},
	} {
		if _, err := e.vault.Retire(cliCtx(), tc.id); !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Retire(%s) = %v; want %v mentioning %q", tc.id, err, tc.want, tc.msg)
		}
	}
	e.rotate(t, e.vault, k2) // finishes the rewrap
	if res, err := e.vault.Retire(cliCtx(), master); err != nil || res.DeletedFile != "" || res.Source != SourceMasterFile {
		t.Fatalf("Retire(master) = %+v, %v; want it retired, master.key kept", res, err)
	}

	// Rotate again and retire k2, whose file goes.
	k3, err := e.keys.GenerateKEK(nil)
	if err != nil {
		t.Fatal(err)
	}
	e.rotate(t, e.vault, k3)
	res, err := e.vault.Retire(cliCtx(), k2)
	if err != nil || res.DeletedFile != k2Path {
		t.Fatalf("Retire(%s) = %+v, %v; want its file %s deleted", k2, res, err, k2Path)
	}
	if _, err := os.Stat(k2Path); !os.IsNotExist(err) {
		t.Fatalf("key file of the retired %s: stat = %v; want it gone", k2, err)
	}
	if e.keys.lookup(k2) != nil || mustLoadKeyring(t, e.dir, nil).lookup(k2) != nil {
		t.Fatalf("a keyring still holds the retired %s", k2)
	}

	// The retired keys' bytes unwrap nothing that is stored.
	retired := map[string][]byte{master: testMaster, k2: k2Bytes}
	for id, b := range retired {
		for _, d := range e.wrappedDEKs(t) {
			for _, asID := range []string{id, d.KEKID} { // under its own ID, and relabelled as the current KEK
				if _, err := newKEK(asID, SourceFile, b).unwrap(d.MerchantID, d.ID, d.Wrapped); err == nil {
					t.Errorf("the retired %s (as %s) unwraps data key %s", id, asID, d.ID)
				}
			}
		}
	}
	checkReveal(t, e.freshVault(t), cards, "after retiring two keys")

	st, err := e.vault.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, s := range st {
		lines = append(lines, fmt.Sprintf("%s primary=%v retired=%v deks=%d local=%s", s.ID, s.Primary, s.RetiredAt != nil, s.DataKeys, s.Local))
	}
	wantLines := []string{
		master + " primary=false retired=true deks=0 local=present", // master.key stays for the fingerprints
		k2 + " primary=false retired=true deks=0 local=missing",
		k3 + " primary=true retired=false deks=4 local=present",
	}
	if strings.Join(lines, "\n") != strings.Join(wantLines, "\n") {
		t.Errorf("Status() =\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(wantLines, "\n"))
	}
	evs := e.auditEvents(t, payloom.AuditVaultRetire)
	outcomes := map[payloom.AuditOutcome]int{}
	for _, ev := range evs {
		outcomes[ev.Outcome]++
		if ev.Actor != payloom.AuditActorCLI || ev.Source != payloom.AuditSourceCLI {
			t.Errorf("vault.retire audit event %+v; want actor and source cli", ev)
		}
	}
	if outcomes[payloom.AuditSuccess] != 2 || outcomes[payloom.AuditFailure] != 3 {
		t.Errorf("vault.retire audit outcomes = %v; want 2 successes, 3 failures", outcomes)
	}
}

// TestMovedWrappedDataKey: a wrapped data key copied or moved to another
// merchant's row does not unwrap, so that merchant's cards fail to
// decrypt (and nothing is encrypted under a key taken from another
// merchant).
func TestMovedWrappedDataKey(t *testing.T) {
	e := newRotEnv(t)
	cards := e.cards(t, 2)
	a, b := cards[0], cards[1]
	db := e.rawDB(t)
	// b's row gets a's wrapped key (and a's key ID, so the ID check passes).
	if _, err := db.Exec(`UPDATE vault_deks SET wrapped = (SELECT wrapped FROM vault_deks WHERE merchant_id = ?) WHERE merchant_id = ?`,
		a.scope.MerchantID, b.scope.MerchantID); err != nil {
		t.Fatal(err)
	}
	v := e.freshVault(t)
	if d, err := v.Reveal(context.Background(), b.scope, b.token); d != nil || !payloom.IsCode(err, payloom.CodeInternal) {
		t.Errorf("Reveal with another merchant's wrapped key = %v, %v; want %s", d, err, payloom.CodeInternal)
	}
	// a's whole row moved to a merchant that has none.
	c := payloom.Scope{MerchantID: e.newMerchant(t)}
	if _, err := db.Exec(`UPDATE vault_deks SET merchant_id = ? WHERE merchant_id = ?`, c.MerchantID, a.scope.MerchantID); err != nil {
		t.Fatal(err)
	}
	v = e.freshVault(t)
	if d, err := v.Reveal(context.Background(), a.scope, a.token); d != nil || !payloom.IsCode(err, payloom.CodeInternal) {
		t.Errorf("Reveal after the merchant's key moved away = %v, %v; want %s", d, err, payloom.CodeInternal)
	}
	if tok, err := v.Tokenize(context.Background(), c, &payloom.CardInput{Number: "4242424242424242", ExpMonth: 1, ExpYear: 2031}); tok != nil || err == nil {
		t.Errorf("Tokenize under a key moved in from another merchant = %v, %v; want an error", tok, err)
	}
}

// TestCiphertextMovedWithKeyID: a ciphertext copied into another
// merchant's row together with its key ID does not decrypt either: the
// key is not that merchant's.
func TestCiphertextMovedWithKeyID(t *testing.T) {
	e := newRotEnv(t)
	cards := e.cards(t, 2)
	a, b := cards[0], cards[1]
	if _, err := e.rawDB(t).Exec(`UPDATE cards SET (ciphertext, key_id, first6, last4) =
		(SELECT ciphertext, key_id, first6, last4 FROM cards WHERE id = ?) WHERE id = ?`, a.token, b.token); err != nil {
		t.Fatal(err)
	}
	for _, v := range []*Vault{e.vault, e.freshVault(t)} {
		d, err := v.Reveal(context.Background(), b.scope, b.token)
		if d != nil || !payloom.IsCode(err, payloom.CodeInternal) || payloom.ErrorMessage(err) != "card data cannot be decrypted" {
			t.Errorf("Reveal(ciphertext and key ID moved in) = %v, %v; want %s", d, err, payloom.CodeInternal)
		}
		if err != nil && strings.Contains(err.Error(), a.number[6:12]) {
			t.Errorf("Reveal error %q contains card digits", err)
		}
	}
	checkReveal(t, e.vault, []card{a}, "the source row")
}

// TestDataKeyCache: unwrapped data keys are cached (a payment does not
// unwrap every time) and the cache is bounded.
func TestDataKeyCache(t *testing.T) {
	e := newRotEnv(t)
	e.vault = New(e.store, e.keys, Options{Clock: e.clock.Now, DataKeyCacheSize: 2})
	cards := e.cards(t, 3)
	if n := e.vault.deks.len(); n != 2 {
		t.Fatalf("cached data keys after 3 merchants = %d; want the bound, 2", n)
	}
	checkReveal(t, e.vault, cards, "through a small cache")
	// Break the stored key of the most recent merchant: the cached one
	// still serves it, a new process cannot.
	last := cards[2]
	if _, err := e.rawDB(t).Exec(`UPDATE vault_deks SET wrapped = x'00' WHERE merchant_id = ?`, last.scope.MerchantID); err != nil {
		t.Fatal(err)
	}
	checkReveal(t, e.vault, []card{last}, "cached key")
	if _, err := e.freshVault(t).Reveal(context.Background(), last.scope, last.token); err == nil {
		t.Fatal("Reveal in a new process with a broken stored key = nil error; want an error")
	}
}

// TestNodeWithWrongKEK: a node whose key file holds other bytes under the
// primary's ID refuses to wrap new data keys with it (other nodes could not
// unwrap them), and Status shows the mismatch.
func TestNodeWithWrongKEK(t *testing.T) {
	e := newRotEnv(t)
	e.cards(t, 1)
	k2, err := e.keys.GenerateKEK(nil)
	if err != nil {
		t.Fatal(err)
	}
	e.rotate(t, e.vault, k2)

	other := newDataDir(t)
	writeKEKFile(t, other, k2, []byte(base64.StdEncoding.EncodeToString(material(42))), 0o600)
	v := New(e.store, mustLoadKeyring(t, other, nil), Options{Clock: e.clock.Now})
	scope := payloom.Scope{MerchantID: e.newMerchant(t)}
	tok, err := v.Tokenize(context.Background(), scope, &payloom.CardInput{Number: "4242424242424242", ExpMonth: 1, ExpYear: 2031})
	if tok != nil || !payloom.IsCode(err, payloom.CodeInternal) || !strings.Contains(err.Error(), "not the one the store knows") {
		t.Fatalf("Tokenize on a node with the wrong %s = %v, %v; want an internal error naming the mismatch", k2, tok, err)
	}
	st, err := v.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.ID == k2 && s.Local != LocalMismatch {
			t.Errorf("Status(%s).Local = %q; want %q", k2, s.Local, LocalMismatch)
		}
	}
	if res, err := v.Rotate(cliCtx(), k2, 0); !errors.Is(err, ErrKEKMismatch) {
		t.Errorf("Rotate(%s) on the node with the wrong key = %+v, %v; want ErrKEKMismatch", k2, res, err)
	}
}

// TestRotateWithEnvKeys: keys from PAYLOOM_MASTER_KEYS rotate like files,
// and retiring one deletes nothing.
func TestRotateWithEnvKeys(t *testing.T) {
	e := newRotEnv(t)
	cards := e.cards(t, 2)
	env := envMap{
		MasterKeyEnv:  hex.EncodeToString(testMaster),
		MasterKeysEnv: "k2:" + base64.StdEncoding.EncodeToString(material(2)),
	}
	dir := t.TempDir() // no master.key: the master comes from the environment
	keys := mustLoadKeyring(t, dir, env)
	v := New(e.store, keys, Options{Clock: e.clock.Now})
	if res := e.rotate(t, v, "k2"); res.Rewrapped != 2 {
		t.Errorf("Rotate(k2 from env) = %+v; want 2 data keys rewrapped", res)
	}
	res, err := v.Retire(cliCtx(), keys.KeyID())
	if err != nil || res.DeletedFile != "" || res.Source != SourceMasterEnv {
		t.Fatalf("Retire(master from env) = %+v, %v; want it retired, nothing deleted", res, err)
	}
	checkReveal(t, New(e.store, mustLoadKeyring(t, t.TempDir(), env), Options{}), cards, "another node with the same environment")
}

// TestRotateWhileServing: one process tokenizes and reveals cards of
// several merchants (new and known) from several goroutines while another
// process rotates to a new KEK and retires the old one. Nothing fails,
// the server picks up the new KEK from its file for merchants it meets
// after the promotion, and afterwards everything is under the new KEK.
func TestRotateWhileServing(t *testing.T) {
	e := newRotEnv(t)
	server := New(e.store, mustLoadKeyring(t, e.dir, nil), Options{Clock: e.clock.Now})
	before := e.cards(t, 4)
	master := e.keys.KeyID()

	const workers, rounds = 4, 12
	merchants := make([][]payloom.Scope, workers)
	for w := range merchants {
		for range rounds {
			merchants[w] = append(merchants[w], payloom.Scope{MerchantID: e.newMerchant(t)})
		}
	}
	errs := make(chan error, workers*rounds*2)
	var made sync.Map // token -> card
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			<-start
			for i, scope := range merchants[w] {
				number := testNumbers[i%len(testNumbers)]
				tok, err := server.Tokenize(context.Background(), scope, &payloom.CardInput{
					Number: payloom.Secret(number), ExpMonth: 12, ExpYear: 2030})
				if err != nil {
					errs <- fmt.Errorf("Tokenize: %w", err)
					continue
				}
				made.Store(tok.ID, card{scope, tok.ID, number})
				old := before[(w+i)%len(before)]
				if d, err := server.Reveal(context.Background(), old.scope, old.token); err != nil || d.Number.Reveal() != old.number {
					errs <- fmt.Errorf("Reveal(%s): %v", old.token, err)
				}
			}
		})
	}

	cli := e.freshVault(t)
	k2, err := cli.keys.GenerateKEK(nil)
	if err != nil {
		t.Fatal(err)
	}
	close(start)
	if _, err := cli.Rotate(cliCtx(), k2, 3); err != nil {
		t.Fatalf("Rotate while serving = %v", err)
	}
	// A data key the server created under the old primary just before the
	// promotion may commit after the rewrap passed it; rotating again
	// picks it up, and retiring is refused until then.
	retired := false
	for try := 0; try < 20 && !retired; try++ {
		_, err := cli.Retire(cliCtx(), master)
		switch {
		case err == nil:
			retired = true
		case errors.Is(err, ErrKEKInUse):
			if _, err := cli.Rotate(cliCtx(), k2, 3); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("Retire(%s) = %v", master, err)
		}
	}
	if !retired {
		t.Fatalf("Retire(%s) refused 20 times", master)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The server met merchants after the promotion, so it wrapped their
	// keys under k2, which it found in its files.
	if got := e.dekCounts(t); len(got) != 1 || got[k2] != 4+workers*rounds {
		t.Errorf("data keys per KEK after the rotation = %v; want all %d under %s", got, 4+workers*rounds, k2)
	}
	all := before
	made.Range(func(_, v any) bool { all = append(all, v.(card)); return true })
	checkReveal(t, e.freshVault(t), all, "after rotation under load")
	checkReveal(t, server, all, "the server after rotation under load")
}
