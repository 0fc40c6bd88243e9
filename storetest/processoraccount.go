package storetest

import (
	"fmt"
	"testing"

	"github.com/payloom/payloom"
)

func newProcessorAccount(scope payloom.Scope, name string, n int) *payloom.ProcessorAccount {
	return &payloom.ProcessorAccount{
		ID: payloom.NewID(payloom.PrefixProcessorAccount), Object: "processor_account", MerchantID: scope.MerchantID,
		Livemode: scope.Livemode, Name: name, Connector: payloom.ConnectorSimulator, Enabled: true,
		CredentialKeys: []string{"base_url"}, Ciphertext: []byte{0, 1, 2, 0xff, byte(n)}, KeyID: "dek_test",
		CreatedAt: at(n), UpdatedAt: at(n),
	}
}

func testProcessorAccount(t *testing.T, h *harness) {
	_, scope := h.merchant()
	scope.Livemode = true
	full := newProcessorAccount(scope, "acquirer-a", 0)
	full.Enabled = false
	full.Connector = payloom.ConnectorAdyen
	full.CredentialKeys = []string{"api_key", "merchant_account", "base_url"}
	full.DeletedAt = ptr(at(3))
	full.UpdatedAt = at(4)
	full.Version = 3
	minimal := newProcessorAccount(scope, "acquirer-b", 1)
	minimal.CredentialKeys, minimal.Ciphertext = nil, nil
	h.update(func(tx payloom.Tx) error {
		if err := tx.CreateProcessorAccount(h.ctx, full); err != nil {
			return err
		}
		return tx.CreateProcessorAccount(h.ctx, minimal)
	})
	wantMinimal := *minimal
	wantMinimal.CredentialKeys, wantMinimal.Ciphertext = []string{}, []byte{}
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetProcessorAccount(h.ctx, scope, full.ID)
		must(t, "GetProcessorAccount", err)
		checkDiff(t, "GetProcessorAccount(full)", full, got)
		got, err = tx.GetProcessorAccount(h.ctx, scope, minimal.ID)
		must(t, "GetProcessorAccount", err)
		checkDiff(t, "GetProcessorAccount(minimal)", &wantMinimal, got)
		for _, o := range h.otherScopes(scope) {
			_, err := tx.GetProcessorAccount(h.ctx, o, full.ID)
			wantCode(t, fmt.Sprintf("GetProcessorAccount(other scope %+v)", o), err, payloom.CodeNotFound)
			list, err := tx.ListProcessorAccounts(h.ctx, o)
			must(t, "ListProcessorAccounts", err)
			if len(list) != 0 {
				t.Errorf("ListProcessorAccounts(other scope %+v) = %d accounts; want 0", o, len(list))
			}
		}
		_, err = tx.GetProcessorAccount(h.ctx, scope, payloom.NewID(payloom.PrefixProcessorAccount))
		wantCode(t, "GetProcessorAccount(unknown)", err, payloom.CodeNotFound)
		list, err := tx.ListProcessorAccounts(h.ctx, scope)
		must(t, "ListProcessorAccounts", err)
		if len(list) != 2 || list[0].ID != full.ID || list[1].ID != minimal.ID {
			t.Errorf("ListProcessorAccounts = %v; want [%s %s] in creation order", accountIDs(list), full.ID, minimal.ID)
		}
		return nil
	})
	sameID := newProcessorAccount(scope, "acquirer-c", 2)
	sameID.ID = full.ID
	sameName := newProcessorAccount(scope, full.Name, 2) // deleted accounts keep their name
	for _, tc := range []struct {
		name string
		a    *payloom.ProcessorAccount
	}{{"same ID", sameID}, {"same name", sameName}} {
		var err error
		// The transaction stays usable after the refusal.
		h.update(func(tx payloom.Tx) error {
			err = tx.CreateProcessorAccount(h.ctx, tc.a)
			_, gerr := tx.GetProcessorAccount(h.ctx, scope, minimal.ID)
			return gerr
		})
		wantCode(t, "CreateProcessorAccount("+tc.name+")", err, payloom.CodeAlreadyExists)
	}
	// The same name in the other mode is another account.
	other := newProcessorAccount(payloom.Scope{MerchantID: scope.MerchantID}, full.Name, 5)
	h.update(func(tx payloom.Tx) error { return tx.CreateProcessorAccount(h.ctx, other) })
}

func accountIDs(list []*payloom.ProcessorAccount) []string {
	var ids []string
	for _, a := range list {
		ids = append(ids, a.ID)
	}
	return ids
}

func testUpdateProcessorAccount(t *testing.T, h *harness) {
	_, scope := h.merchant()
	a := newProcessorAccount(scope, "a", 0)
	h.update(func(tx payloom.Tx) error { return tx.CreateProcessorAccount(h.ctx, a) })
	stale := *a
	want := *a
	want.Enabled = false
	want.CredentialKeys = []string{"api_key"}
	want.Ciphertext = []byte("sealed-2")
	want.KeyID = "dek_other"
	want.DeletedAt = ptr(at(9))
	want.UpdatedAt = at(9)
	h.update(func(tx payloom.Tx) error { return tx.UpdateProcessorAccount(h.ctx, &want) })
	if want.Version != a.Version+1 {
		t.Errorf("UpdateProcessorAccount: Version = %d; want %d", want.Version, a.Version+1)
	}
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetProcessorAccount(h.ctx, scope, a.ID)
		must(t, "GetProcessorAccount", err)
		checkDiff(t, "GetProcessorAccount(updated)", &want, got)
		return nil
	})
	err := h.tryUpdate(func(tx payloom.Tx) error { return tx.UpdateProcessorAccount(h.ctx, &stale) })
	wantCode(t, "UpdateProcessorAccount(stale)", err, payloom.CodeConflict)
	for _, o := range h.otherScopes(scope) {
		moved := want
		moved.MerchantID, moved.Livemode = o.MerchantID, o.Livemode
		err := h.tryUpdate(func(tx payloom.Tx) error { return tx.UpdateProcessorAccount(h.ctx, &moved) })
		wantCode(t, fmt.Sprintf("UpdateProcessorAccount(other scope %+v)", o), err, payloom.CodeNotFound)
	}
}

func testRouting(t *testing.T, h *harness) {
	_, scope := h.merchant()
	h.view(func(tx payloom.Tx) error {
		_, err := tx.GetRouting(h.ctx, scope)
		wantCode(t, "GetRouting(never set)", err, payloom.CodeNotFound)
		return nil
	})
	r := &payloom.Routing{MerchantID: scope.MerchantID, Livemode: scope.Livemode, UpdatedAt: at(1), Rules: []payloom.RoutingRule{{
		Conditions: payloom.RoutingConditions{PaymentMethodType: "card", Currency: "USD", AmountGTE: ptr(int64(0)),
			AmountLTE: ptr(int64(5000)), CardBrand: "visa", Metadata: map[string]string{"tier": "gold"}},
		Processors: []string{"pa_1", "pa_2"},
	}, {Processors: []string{"pa_3"}}}}
	h.update(func(tx payloom.Tx) error { return tx.PutRouting(h.ctx, r) })
	if r.Version != 1 {
		t.Errorf("PutRouting(new): Version = %d; want 1", r.Version)
	}
	stale := *r
	stale.Version = 0
	err := h.tryUpdate(func(tx payloom.Tx) error { return tx.PutRouting(h.ctx, &stale) })
	wantCode(t, "PutRouting(second create)", err, payloom.CodeConflict)
	r2 := *r
	r2.Rules, r2.UpdatedAt = nil, at(2)
	h.update(func(tx payloom.Tx) error { return tx.PutRouting(h.ctx, &r2) })
	stale.Version = 1
	err = h.tryUpdate(func(tx payloom.Tx) error { return tx.PutRouting(h.ctx, &stale) })
	wantCode(t, "PutRouting(stale)", err, payloom.CodeConflict)
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetRouting(h.ctx, scope)
		must(t, "GetRouting", err)
		want := r2
		want.Rules = []payloom.RoutingRule{}
		checkDiff(t, "GetRouting", &want, got)
		for _, o := range h.otherScopes(scope) {
			_, err := tx.GetRouting(h.ctx, o)
			wantCode(t, fmt.Sprintf("GetRouting(other scope %+v)", o), err, payloom.CodeNotFound)
		}
		return nil
	})
	// Check the first version's rules round-tripped too.
	r3 := r2
	r3.Rules = r.Rules
	h.update(func(tx payloom.Tx) error { return tx.PutRouting(h.ctx, &r3) })
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetRouting(h.ctx, scope)
		must(t, "GetRouting", err)
		checkDiff(t, "GetRouting(rules)", &r3, got)
		return nil
	})
}
