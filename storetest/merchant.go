package storetest

import (
	"math"
	"testing"
	"time"

	"github.com/payloom/payloom"
)

func testCreateMerchant(t *testing.T, h *harness) {
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	m := &payloom.Merchant{
		ID: payloom.NewID(payloom.PrefixMerchant), Name: "Ünïcode & Co \"Ltd\"", MinAmount: 50,
		MaxAmount: math.MaxInt64, IdempotencyKeyOptional: true,
		CreatedAt: base.In(zone), // any zone in, UTC out
	}
	h.update(func(tx payloom.Tx) error { return tx.CreateMerchant(h.ctx, m) })
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetMerchant(h.ctx, m.ID)
		must(t, "GetMerchant", err)
		checkDiff(t, "GetMerchant", m, got)
		_, err = tx.GetMerchant(h.ctx, payloom.NewID(payloom.PrefixMerchant))
		wantCode(t, "GetMerchant(unknown)", err, payloom.CodeNotFound)
		return nil
	})
	dup := *m
	dup.Name = "Other"
	err := h.tryUpdate(func(tx payloom.Tx) error { return tx.CreateMerchant(h.ctx, &dup) })
	wantCode(t, "CreateMerchant(same ID)", err, payloom.CodeAlreadyExists)
}

func testUpdateMerchant(t *testing.T, h *harness) {
	m, _ := h.merchant()
	m.Name = "Renamed"
	m.MinAmount = 7
	m.MaxAmount = 700
	m.IdempotencyKeyOptional = true
	h.update(func(tx payloom.Tx) error { return tx.UpdateMerchant(h.ctx, m) })
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetMerchant(h.ctx, m.ID)
		must(t, "GetMerchant", err)
		checkDiff(t, "GetMerchant after UpdateMerchant", m, got)
		return nil
	})
	ghost := *m
	ghost.ID = payloom.NewID(payloom.PrefixMerchant)
	err := h.tryUpdate(func(tx payloom.Tx) error { return tx.UpdateMerchant(h.ctx, &ghost) })
	wantCode(t, "UpdateMerchant(unknown)", err, payloom.CodeNotFound)
}

func testCountMerchants(t *testing.T, h *harness) {
	for want := range 4 {
		h.view(func(tx payloom.Tx) error {
			n, err := tx.CountMerchants(h.ctx)
			must(t, "CountMerchants", err)
			if n != want {
				t.Errorf("CountMerchants() = %d; want %d", n, want)
			}
			return nil
		})
		h.merchant()
	}
}

func testCreateAPIKey(t *testing.T, h *harness) {
	m, _ := h.merchant()
	revoked := at(5)
	keys := []*payloom.APIKey{
		{ID: payloom.NewID(payloom.PrefixAPIKey), MerchantID: m.ID, Livemode: true, Lookup: "lk_" + payloom.NewID("x"),
			Hash: []byte{0, 1, 2, 0xff}, Last4: "abcd", CreatedAt: base,
			Permissions: []payloom.Permission{payloom.PermissionPaymentsRead, payloom.PermissionRawCardData}},
		// A platform key has no merchant.
		{ID: payloom.NewID(payloom.PrefixAPIKey), Platform: true, Lookup: "lk_" + payloom.NewID("x"),
			Hash: []byte("hash"), Last4: "wxyz", CreatedAt: at(1), RevokedAt: &revoked, Permissions: payloom.Permissions},
		// A key without any permission reads back with an empty list.
		{ID: payloom.NewID(payloom.PrefixAPIKey), MerchantID: m.ID, Lookup: "lk_" + payloom.NewID("x"),
			Hash: []byte("h2"), Last4: "none", CreatedAt: at(2), Permissions: []payloom.Permission{}},
	}
	h.update(func(tx payloom.Tx) error {
		for _, k := range keys {
			if err := tx.CreateAPIKey(h.ctx, k); err != nil {
				return err
			}
		}
		return nil
	})
	h.view(func(tx payloom.Tx) error {
		for _, k := range keys {
			got, err := tx.GetAPIKey(h.ctx, k.ID)
			must(t, "GetAPIKey", err)
			checkDiff(t, "GetAPIKey("+k.ID+")", k, got)
			got, err = tx.GetAPIKeyByLookup(h.ctx, k.Lookup)
			must(t, "GetAPIKeyByLookup", err)
			checkDiff(t, "GetAPIKeyByLookup("+k.Lookup+")", k, got)
		}
		_, err := tx.GetAPIKey(h.ctx, payloom.NewID(payloom.PrefixAPIKey))
		wantCode(t, "GetAPIKey(unknown)", err, payloom.CodeNotFound)
		_, err = tx.GetAPIKeyByLookup(h.ctx, "lk_unknown")
		wantCode(t, "GetAPIKeyByLookup(unknown)", err, payloom.CodeNotFound)
		return nil
	})

	sameID := *keys[0]
	sameID.Lookup = "lk_fresh"
	err := h.tryUpdate(func(tx payloom.Tx) error { return tx.CreateAPIKey(h.ctx, &sameID) })
	wantCode(t, "CreateAPIKey(same ID)", err, payloom.CodeAlreadyExists)
	sameLookup := *keys[0]
	sameLookup.ID = payloom.NewID(payloom.PrefixAPIKey)
	err = h.tryUpdate(func(tx payloom.Tx) error { return tx.CreateAPIKey(h.ctx, &sameLookup) })
	wantCode(t, "CreateAPIKey(same Lookup)", err, payloom.CodeAlreadyExists)
}

func testUpdateAPIKey(t *testing.T, h *harness) {
	m, _ := h.merchant()
	k := &payloom.APIKey{ID: payloom.NewID(payloom.PrefixAPIKey), MerchantID: m.ID, Lookup: "lk_" + payloom.NewID("x"),
		Hash: []byte("h"), Last4: "1234", CreatedAt: base, Permissions: payloom.DefaultPermissions()}
	h.update(func(tx payloom.Tx) error { return tx.CreateAPIKey(h.ctx, k) })
	revoked := at(3).Add(123 * time.Microsecond)
	k.RevokedAt = &revoked
	h.update(func(tx payloom.Tx) error { return tx.UpdateAPIKey(h.ctx, k) })
	h.view(func(tx payloom.Tx) error {
		// A revoked key is still found: the caller decides what revoked means.
		got, err := tx.GetAPIKeyByLookup(h.ctx, k.Lookup)
		must(t, "GetAPIKeyByLookup", err)
		checkDiff(t, "GetAPIKeyByLookup after UpdateAPIKey", k, got)
		return nil
	})
	ghost := *k
	ghost.ID = payloom.NewID(payloom.PrefixAPIKey)
	err := h.tryUpdate(func(tx payloom.Tx) error { return tx.UpdateAPIKey(h.ctx, &ghost) })
	wantCode(t, "UpdateAPIKey(unknown)", err, payloom.CodeNotFound)
}

func testCreateCard(t *testing.T, h *harness) {
	_, scope := h.merchant()
	for _, live := range []bool{false, true} {
		scope.Livemode = live
		testCreateCardIn(t, h, scope)
	}
}

func testCreateCardIn(t *testing.T, h *harness, scope payloom.Scope) {
	id := payloom.NewID(payloom.PrefixToken)
	c := &payloom.Card{
		ID: id, MerchantID: scope.MerchantID, Livemode: scope.Livemode,
		Summary: payloom.CardSummary{Token: id, Brand: payloom.CardBrandMastercard, First6: "555555", Last4: "4444",
			ExpMonth: 1, ExpYear: 2031, Fingerprint: "fp_1", HolderName: "Grace Hopper", Country: "GB"},
		Ciphertext: []byte{0x00, 0x9f, 0xfe, 0x00, 0x42}, KeyID: "k1", CreatedAt: base,
	}
	h.update(func(tx payloom.Tx) error { return tx.CreateCard(h.ctx, c) })
	others := h.otherScopes(scope)
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetCard(h.ctx, scope, c.ID)
		must(t, "GetCard", err)
		checkDiff(t, "GetCard", c, got)
		for _, o := range others {
			_, err := tx.GetCard(h.ctx, o, c.ID)
			wantCode(t, "GetCard(other scope "+o.MerchantID+" "+o.Mode()+")", err, payloom.CodeNotFound)
		}
		_, err = tx.GetCard(h.ctx, scope, payloom.NewID(payloom.PrefixToken))
		wantCode(t, "GetCard(unknown)", err, payloom.CodeNotFound)
		return nil
	})
	err := h.tryUpdate(func(tx payloom.Tx) error { return tx.CreateCard(h.ctx, c) })
	wantCode(t, "CreateCard(same ID)", err, payloom.CodeAlreadyExists)
}

func testCreateSandboxOperation(t *testing.T, h *harness) {
	op := &payloom.SandboxOperation{Key: "att_" + payloom.NewID("k"), Kind: "authorize", TransactionID: "txn_1",
		Amount: 4200, Currency: "JPY", Result: []byte(`{"status":"approved"}`), CreatedAt: base}
	noResult := &payloom.SandboxOperation{Key: payloom.NewID("k"), Kind: "void", CreatedAt: at(1)} // nil Result
	dup := *op
	dup.Amount = 1
	dup.Result = []byte(`{"status":"declined"}`)
	h.update(func(tx payloom.Tx) error {
		must(t, "CreateSandboxOperation", tx.CreateSandboxOperation(h.ctx, op))
		wantCode(t, "CreateSandboxOperation(same Key)", tx.CreateSandboxOperation(h.ctx, &dup), payloom.CodeAlreadyExists)
		// The transaction is still usable after the duplicate.
		return tx.CreateSandboxOperation(h.ctx, noResult)
	})
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetSandboxOperation(h.ctx, op.Key)
		must(t, "GetSandboxOperation", err)
		checkDiff(t, "GetSandboxOperation (duplicate must not overwrite)", op, got)
		got, err = tx.GetSandboxOperation(h.ctx, noResult.Key)
		must(t, "GetSandboxOperation", err)
		want := *noResult
		want.Result = []byte{}
		checkDiff(t, "GetSandboxOperation(nil Result)", &want, got)
		_, err = tx.GetSandboxOperation(h.ctx, "att_unknown")
		wantCode(t, "GetSandboxOperation(unknown)", err, payloom.CodeNotFound)
		return nil
	})
}

func testCountSandboxOperations(t *testing.T, h *harness) {
	ops := []struct{ kind, txn string }{
		{"authorize", "txn_1"}, {"capture", "txn_1"}, {"capture", "txn_1"}, {"capture", "txn_2"},
		{"refund", "txn_1"}, {"authorize", ""},
	}
	h.update(func(tx payloom.Tx) error {
		for i, o := range ops {
			op := &payloom.SandboxOperation{Key: payloom.NewID("k"), Kind: o.kind, TransactionID: o.txn,
				Amount: 1, Currency: "USD", Result: []byte("{}"), CreatedAt: at(i)}
			if err := tx.CreateSandboxOperation(h.ctx, op); err != nil {
				return err
			}
		}
		return nil
	})
	tests := []struct {
		kind, txn string
		want      int
	}{
		{"capture", "", 3},
		{"capture", "txn_1", 2},
		{"capture", "txn_2", 1},
		{"authorize", "", 2},
		{"authorize", "txn_1", 1},
		{"refund", "txn_2", 0},
		{"void", "", 0},
	}
	h.view(func(tx payloom.Tx) error {
		for _, tt := range tests {
			n, err := tx.CountSandboxOperations(h.ctx, tt.kind, tt.txn)
			must(t, "CountSandboxOperations", err)
			if n != tt.want {
				t.Errorf("CountSandboxOperations(%q, %q) = %d; want %d", tt.kind, tt.txn, n, tt.want)
			}
		}
		return nil
	})
}
