package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/payloom/payloom"
)

// The vault's key management: key-encryption keys (KEKs), the merchants'
// wrapped data keys (DEKs) and the re-encryption of cards.

// newKEK returns a KEK row; it is not stored.
func newKEK(id string, primary bool, n int) *payloom.VaultKEK {
	return &payloom.VaultKEK{ID: id, CheckValue: []byte("check-" + id), Primary: primary, CreatedAt: at(n)}
}

// newDEK returns a data key of the merchant wrapped by kekID; not stored.
func newDEK(merchantID, kekID string, n int) *payloom.VaultDEK {
	return &payloom.VaultDEK{
		ID: payloom.NewID(payloom.PrefixDataKey), MerchantID: merchantID, KEKID: kekID,
		Wrapped: []byte{0x01, 0x00, 0xff, byte(n)}, Version: 1, CreatedAt: at(n), UpdatedAt: at(n),
	}
}

// newVaultCard returns a card in scope encrypted under keyID; not stored.
func newVaultCard(scope payloom.Scope, keyID string) *payloom.Card {
	id := payloom.NewID(payloom.PrefixToken)
	return &payloom.Card{
		ID: id, MerchantID: scope.MerchantID, Livemode: scope.Livemode,
		Summary: payloom.CardSummary{Token: id, Brand: payloom.CardBrandVisa, First6: "424242", Last4: "4242",
			ExpMonth: 12, ExpYear: 2031, Fingerprint: "fp_v", HolderName: "Ada", Country: "US"},
		Ciphertext: []byte{0x00, 0x01, 0x02}, KeyID: keyID, CreatedAt: base,
	}
}

// testVaultKEK walks KEKs through their life: created (one primary at
// most, IDs unique, the transaction usable after a duplicate), listed
// oldest first, promoted, refused retirement while primary, retired, and
// refused promotion once retired.
func testVaultKEK(t *testing.T, h *harness) {
	k1, k2, k3 := newKEK("k1_aaaa", true, 0), newKEK("k2_bbbb", false, 2), newKEK("k3_cccc", false, 1)
	h.update(func(tx payloom.Tx) error {
		must(t, "CreateVaultKEK(k1)", tx.CreateVaultKEK(h.ctx, k1))
		wantCode(t, "CreateVaultKEK(same ID)", tx.CreateVaultKEK(h.ctx, newKEK(k1.ID, false, 5)), payloom.CodeAlreadyExists)
		wantCode(t, "CreateVaultKEK(second primary)", tx.CreateVaultKEK(h.ctx, newKEK("k9_dddd", true, 5)), payloom.CodeAlreadyExists)
		must(t, "CreateVaultKEK(k2)", tx.CreateVaultKEK(h.ctx, k2))
		return tx.CreateVaultKEK(h.ctx, k3)
	})
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetVaultKEK(h.ctx, k1.ID)
		must(t, "GetVaultKEK", err)
		checkDiff(t, "GetVaultKEK", k1, got)
		_, err = tx.GetVaultKEK(h.ctx, "k9_dddd")
		wantCode(t, "GetVaultKEK(refused duplicate primary)", err, payloom.CodeNotFound)
		list, err := tx.ListVaultKEKs(h.ctx)
		must(t, "ListVaultKEKs", err)
		checkDiff(t, "ListVaultKEKs (oldest first)", []*payloom.VaultKEK{k1, k3, k2}, list)
		return nil
	})

	h.update(func(tx payloom.Tx) error { return tx.PromoteVaultKEK(h.ctx, k2.ID) })
	err := h.tryUpdate(func(tx payloom.Tx) error { return tx.PromoteVaultKEK(h.ctx, "k7_none") })
	wantCode(t, "PromoteVaultKEK(unknown)", err, payloom.CodeNotFound)
	err = h.tryUpdate(func(tx payloom.Tx) error { return tx.RetireVaultKEK(h.ctx, k2.ID, at(3)) })
	wantCode(t, "RetireVaultKEK(primary)", err, payloom.CodeConflict)
	err = h.tryUpdate(func(tx payloom.Tx) error { return tx.RetireVaultKEK(h.ctx, "k7_none", at(3)) })
	wantCode(t, "RetireVaultKEK(unknown)", err, payloom.CodeNotFound)
	h.update(func(tx payloom.Tx) error { return tx.RetireVaultKEK(h.ctx, k1.ID, at(3)) })
	// Retiring again keeps the first date.
	h.update(func(tx payloom.Tx) error { return tx.RetireVaultKEK(h.ctx, k1.ID, at(4)) })
	err = h.tryUpdate(func(tx payloom.Tx) error { return tx.PromoteVaultKEK(h.ctx, k1.ID) })
	wantCode(t, "PromoteVaultKEK(retired)", err, payloom.CodeConflict)

	k1.Primary, k1.RetiredAt = false, ptr(at(3))
	k2.Primary = true
	h.view(func(tx payloom.Tx) error {
		list, err := tx.ListVaultKEKs(h.ctx)
		must(t, "ListVaultKEKs", err)
		checkDiff(t, "ListVaultKEKs after promotion and retirement", []*payloom.VaultKEK{k1, k3, k2}, list)
		return nil
	})

	// A refused promotion changes nothing, even within its transaction.
	h.update(func(tx payloom.Tx) error {
		wantCode(t, "PromoteVaultKEK(retired)", tx.PromoteVaultKEK(h.ctx, k1.ID), payloom.CodeConflict)
		return nil
	})
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetVaultKEK(h.ctx, k2.ID)
		must(t, "GetVaultKEK", err)
		if !got.Primary {
			t.Errorf("GetVaultKEK(%q).Primary after a refused promotion of a retired KEK = false; want true", k2.ID)
		}
		return nil
	})
}

// testVaultDEK: data keys round-trip, are one per merchant, are written
// only under the primary KEK, and rewrap with a version check.
func testVaultDEK(t *testing.T, h *harness) {
	k1, k2 := newKEK("k1_aaaa", true, 0), newKEK("k2_bbbb", false, 1)
	h.update(func(tx payloom.Tx) error {
		must(t, "CreateVaultKEK", tx.CreateVaultKEK(h.ctx, k1))
		return tx.CreateVaultKEK(h.ctx, k2)
	})
	m1, _ := h.merchant()
	m2, _ := h.merchant()
	d1 := newDEK(m1.ID, k1.ID, 1)
	h.update(func(tx payloom.Tx) error {
		must(t, "CreateVaultDEK", tx.CreateVaultDEK(h.ctx, d1))
		wantCode(t, "CreateVaultDEK(merchant has one)", tx.CreateVaultDEK(h.ctx, newDEK(m1.ID, k1.ID, 2)), payloom.CodeAlreadyExists)
		wantCode(t, "CreateVaultDEK(same ID)", tx.CreateVaultDEK(h.ctx, &payloom.VaultDEK{ID: d1.ID, MerchantID: m2.ID,
			KEKID: k1.ID, Wrapped: []byte{1}, Version: 1, CreatedAt: base, UpdatedAt: base}), payloom.CodeAlreadyExists)
		wantCode(t, "CreateVaultDEK(non-primary KEK)", tx.CreateVaultDEK(h.ctx, newDEK(m2.ID, k2.ID, 2)), payloom.CodeConflict)
		wantCode(t, "CreateVaultDEK(unknown KEK)", tx.CreateVaultDEK(h.ctx, newDEK(m2.ID, "k7_none", 2)), payloom.CodeConflict)
		return nil // the transaction stays usable after the refusals
	})
	err := h.tryUpdate(func(tx payloom.Tx) error {
		return tx.CreateVaultDEK(h.ctx, newDEK(payloom.NewID(payloom.PrefixMerchant), k1.ID, 2))
	})
	wantCode(t, "CreateVaultDEK(unknown merchant)", err, payloom.CodeNotFound)

	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetVaultDEK(h.ctx, d1.ID)
		must(t, "GetVaultDEK", err)
		checkDiff(t, "GetVaultDEK", d1, got)
		got, err = tx.GetVaultDEKByMerchant(h.ctx, m1.ID)
		must(t, "GetVaultDEKByMerchant", err)
		checkDiff(t, "GetVaultDEKByMerchant", d1, got)
		_, err = tx.GetVaultDEKByMerchant(h.ctx, m2.ID)
		wantCode(t, "GetVaultDEKByMerchant(merchant without one)", err, payloom.CodeNotFound)
		_, err = tx.GetVaultDEK(h.ctx, payloom.NewID(payloom.PrefixDataKey))
		wantCode(t, "GetVaultDEK(unknown)", err, payloom.CodeNotFound)
		return nil
	})

	// Rewrap: refused under a non-primary KEK, accepted under the primary
	// with the current version, refused with a stale one.
	rewrap := &payloom.VaultDEK{ID: d1.ID, MerchantID: m1.ID, KEKID: k2.ID, Wrapped: []byte{9, 9, 9},
		Version: d1.Version, CreatedAt: d1.CreatedAt, UpdatedAt: at(5)}
	err = h.tryUpdate(func(tx payloom.Tx) error { return tx.RewrapVaultDEK(h.ctx, rewrap) })
	wantCode(t, "RewrapVaultDEK(to a non-primary KEK)", err, payloom.CodeConflict)
	h.update(func(tx payloom.Tx) error { return tx.PromoteVaultKEK(h.ctx, k2.ID) })
	err = h.tryUpdate(func(tx payloom.Tx) error {
		return tx.CreateVaultDEK(h.ctx, newDEK(m2.ID, k1.ID, 2))
	})
	wantCode(t, "CreateVaultDEK(under the former primary)", err, payloom.CodeConflict)
	h.update(func(tx payloom.Tx) error { return tx.RewrapVaultDEK(h.ctx, rewrap) })
	if rewrap.Version != d1.Version+1 {
		t.Errorf("RewrapVaultDEK: Version = %d; want %d", rewrap.Version, d1.Version+1)
	}
	stale := *rewrap
	stale.Version = d1.Version
	err = h.tryUpdate(func(tx payloom.Tx) error { return tx.RewrapVaultDEK(h.ctx, &stale) })
	wantCode(t, "RewrapVaultDEK(stale version)", err, payloom.CodeConflict)
	missing := *rewrap
	missing.ID = payloom.NewID(payloom.PrefixDataKey)
	err = h.tryUpdate(func(tx payloom.Tx) error { return tx.RewrapVaultDEK(h.ctx, &missing) })
	wantCode(t, "RewrapVaultDEK(unknown)", err, payloom.CodeNotFound)

	want := *d1
	want.KEKID, want.Wrapped, want.Version, want.UpdatedAt = k2.ID, []byte{9, 9, 9}, d1.Version+1, at(5)
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetVaultDEK(h.ctx, d1.ID)
		must(t, "GetVaultDEK", err)
		checkDiff(t, "GetVaultDEK after rewrap", &want, got)
		return nil
	})
}

// testVaultDEKRotation: ListVaultDEKsNotWrappedBy pages through the data
// keys a rotation must rewrap, CountVaultDEKs counts them per KEK, and a
// KEK is retired only once nothing uses it.
func testVaultDEKRotation(t *testing.T, h *harness) {
	k1, k2 := newKEK("k1_aaaa", true, 0), newKEK("k2_bbbb", false, 1)
	h.update(func(tx payloom.Tx) error {
		must(t, "CreateVaultKEK", tx.CreateVaultKEK(h.ctx, k1))
		return tx.CreateVaultKEK(h.ctx, k2)
	})
	var deks []*payloom.VaultDEK
	for i := range 5 {
		m, _ := h.merchant()
		d := newDEK(m.ID, k1.ID, i)
		h.update(func(tx payloom.Tx) error { return tx.CreateVaultDEK(h.ctx, d) })
		deks = append(deks, d)
	}
	h.update(func(tx payloom.Tx) error { return tx.PromoteVaultKEK(h.ctx, k2.ID) })
	// A data key created under the new primary is not listed.
	m, _ := h.merchant()
	h.update(func(tx payloom.Tx) error { return tx.CreateVaultDEK(h.ctx, newDEK(m.ID, k2.ID, 9)) })

	h.view(func(tx payloom.Tx) error {
		got, err := tx.ListVaultDEKsNotWrappedBy(h.ctx, k2.ID, 3)
		must(t, "ListVaultDEKsNotWrappedBy", err)
		checkDiff(t, "ListVaultDEKsNotWrappedBy(limit 3)", deks[:3], got)
		counts, err := tx.CountVaultDEKs(h.ctx)
		must(t, "CountVaultDEKs", err)
		checkDiff(t, "CountVaultDEKs", map[string]int{k1.ID: 5, k2.ID: 1}, counts)
		return nil
	})
	err := h.tryUpdate(func(tx payloom.Tx) error { return tx.RetireVaultKEK(h.ctx, k1.ID, at(10)) })
	wantCode(t, "RetireVaultKEK(wraps data keys)", err, payloom.CodeConflict)

	// Rewrap in batches until nothing is left, as a rotation does.
	for batch := 0; ; batch++ {
		if batch > len(deks) {
			t.Fatalf("ListVaultDEKsNotWrappedBy still returns data keys after %d batches", batch)
		}
		var n int
		h.update(func(tx payloom.Tx) error {
			list, err := tx.ListVaultDEKsNotWrappedBy(h.ctx, k2.ID, 2)
			if err != nil {
				return err
			}
			n = len(list)
			for _, d := range list {
				d.KEKID, d.UpdatedAt = k2.ID, at(11)
				if err := tx.RewrapVaultDEK(h.ctx, d); err != nil {
					return err
				}
			}
			return nil
		})
		if n == 0 {
			break
		}
	}
	h.view(func(tx payloom.Tx) error {
		counts, err := tx.CountVaultDEKs(h.ctx)
		must(t, "CountVaultDEKs", err)
		checkDiff(t, "CountVaultDEKs after rewrapping", map[string]int{k2.ID: 6}, counts)
		return nil
	})

	// A card still encrypted under the KEK itself (before envelope
	// encryption) also keeps it in use.
	_, scope := h.merchant()
	c := newVaultCard(scope, k1.ID)
	h.update(func(tx payloom.Tx) error { return tx.CreateCard(h.ctx, c) })
	err = h.tryUpdate(func(tx payloom.Tx) error { return tx.RetireVaultKEK(h.ctx, k1.ID, at(12)) })
	wantCode(t, "RetireVaultKEK(a card's KeyID)", err, payloom.CodeConflict)
	c.KeyID = "dek_x"
	h.update(func(tx payloom.Tx) error { return tx.ReencryptCard(h.ctx, c, k1.ID) })
	h.update(func(tx payloom.Tx) error { return tx.RetireVaultKEK(h.ctx, k1.ID, at(12)) })
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetVaultKEK(h.ctx, k1.ID)
		must(t, "GetVaultKEK", err)
		if got.RetiredAt == nil || !got.RetiredAt.Equal(at(12)) {
			t.Errorf("GetVaultKEK(%q).RetiredAt = %v; want %v", k1.ID, got.RetiredAt, at(12))
		}
		return nil
	})
}

// testVaultCards: cards are listed and counted by key in every scope, and
// re-encrypted only while they still have the expected key.
func testVaultCards(t *testing.T, h *harness) {
	_, a := h.merchant()
	_, b := h.merchant()
	b.Livemode = true
	var old []*payloom.Card
	for i := range 4 {
		scope := a
		if i%2 == 1 {
			scope = b
		}
		c := newVaultCard(scope, "k1_aaaa")
		h.update(func(tx payloom.Tx) error { return tx.CreateCard(h.ctx, c) })
		old = append(old, c)
	}
	other := newVaultCard(a, "dek_other")
	h.update(func(tx payloom.Tx) error { return tx.CreateCard(h.ctx, other) })

	h.view(func(tx payloom.Tx) error {
		got, err := tx.ListCardsByKeyID(h.ctx, "k1_aaaa", 3)
		must(t, "ListCardsByKeyID", err)
		checkDiff(t, "ListCardsByKeyID(limit 3)", old[:3], got)
		for key, want := range map[string]int{"k1_aaaa": 4, "dek_other": 1, "k9_none": 0} {
			n, err := tx.CountCardsByKeyID(h.ctx, key)
			must(t, "CountCardsByKeyID", err)
			if n != want {
				t.Errorf("CountCardsByKeyID(%q) = %d; want %d", key, n, want)
			}
		}
		return nil
	})

	re := *old[1]
	re.Ciphertext, re.KeyID = []byte{7, 7}, "dek_new"
	h.update(func(tx payloom.Tx) error { return tx.ReencryptCard(h.ctx, &re, "k1_aaaa") })
	stale := re
	stale.Ciphertext, stale.KeyID = []byte{8}, "dek_newer"
	err := h.tryUpdate(func(tx payloom.Tx) error { return tx.ReencryptCard(h.ctx, &stale, "k1_aaaa") })
	wantCode(t, "ReencryptCard(key changed meanwhile)", err, payloom.CodeConflict)
	missing := re
	missing.ID = payloom.NewID(payloom.PrefixToken)
	err = h.tryUpdate(func(tx payloom.Tx) error { return tx.ReencryptCard(h.ctx, &missing, "dek_new") })
	wantCode(t, "ReencryptCard(unknown)", err, payloom.CodeNotFound)

	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetCard(h.ctx, b, re.ID)
		must(t, "GetCard", err)
		checkDiff(t, "GetCard after ReencryptCard", &re, got)
		list, err := tx.ListCardsByKeyID(h.ctx, "k1_aaaa", 10)
		must(t, "ListCardsByKeyID", err)
		checkDiff(t, "ListCardsByKeyID after ReencryptCard", []*payloom.Card{old[0], old[2], old[3]}, list)
		return nil
	})
}

// testConcurrentVaultPromotion: while workers keep creating data keys
// under whatever KEK is primary, the KEK is rotated (promotion, rewrap of
// everything not under the new primary, retirement of the old one, retried
// while a late data key keeps it in use). Afterwards the old KEK is retired
// and wraps nothing: no data key was written under it once it stopped
// being primary.
func testConcurrentVaultPromotion(t *testing.T, h *harness) {
	k1, k2 := newKEK("k1_aaaa", true, 0), newKEK("k2_bbbb", false, 1)
	h.update(func(tx payloom.Tx) error {
		must(t, "CreateVaultKEK", tx.CreateVaultKEK(h.ctx, k1))
		return tx.CreateVaultKEK(h.ctx, k2)
	})
	const workers, perWorker = 4, 10
	merchants := make([][]string, workers)
	for w := range merchants {
		for range perWorker {
			m, _ := h.merchant()
			merchants[w] = append(merchants[w], m.ID)
		}
	}
	// createUnderPrimary reads the primary and writes a data key under it,
	// again when it lost a race with the promotion.
	createUnderPrimary := func(merchantID string) error {
		for try := 0; try < 100; try++ {
			err := h.s.Update(h.ctx, func(tx payloom.Tx) error {
				keks, err := tx.ListVaultKEKs(h.ctx)
				if err != nil {
					return err
				}
				primary := ""
				for _, k := range keks {
					if k.Primary {
						primary = k.ID
					}
				}
				return tx.CreateVaultDEK(h.ctx, newDEK(merchantID, primary, 1))
			})
			if !payloom.IsCode(err, payloom.CodeConflict) {
				return err
			}
		}
		return fmt.Errorf("CreateVaultDEK for %s lost 100 races", merchantID)
	}

	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, id := range merchants[w] {
				errs <- createUnderPrimary(id)
			}
		}()
	}

	h.update(func(tx payloom.Tx) error { return tx.PromoteVaultKEK(h.ctx, k2.ID) })
	retired := false
	for round := 0; !retired; round++ {
		if round > workers*perWorker+1 {
			t.Fatal("the old KEK could not be retired")
		}
		h.update(func(tx payloom.Tx) error {
			list, err := tx.ListVaultDEKsNotWrappedBy(h.ctx, k2.ID, 100)
			if err != nil {
				return err
			}
			for _, d := range list {
				d.KEKID, d.UpdatedAt = k2.ID, at(2)
				if err := tx.RewrapVaultDEK(h.ctx, d); err != nil {
					return err
				}
			}
			return nil
		})
		err := h.tryUpdate(func(tx payloom.Tx) error { return tx.RetireVaultKEK(h.ctx, k1.ID, at(3)) })
		switch {
		case err == nil:
			retired = true
		case !payloom.IsCode(err, payloom.CodeConflict):
			t.Fatalf("RetireVaultKEK: %v", err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("create data key: %v", err)
		}
	}
	h.view(func(tx payloom.Tx) error {
		counts, err := tx.CountVaultDEKs(h.ctx)
		must(t, "CountVaultDEKs", err)
		checkDiff(t, "CountVaultDEKs after the rotation", map[string]int{k2.ID: workers * perWorker}, counts)
		return nil
	})
}
