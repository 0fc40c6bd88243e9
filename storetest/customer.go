package storetest

import (
	"testing"
	"time"

	"github.com/payloom/payloom"
)

// Customers, saved payment methods and the audit log (issue 4).

func newCustomer(scope payloom.Scope, created time.Time) *payloom.Customer {
	return &payloom.Customer{
		ID: payloom.NewID(payloom.PrefixCustomer), Object: "customer", MerchantID: scope.MerchantID,
		Livemode: scope.Livemode, Metadata: map[string]string{}, CreatedAt: created, UpdatedAt: created,
		CreationKey: payloom.NewID(payloom.PrefixOperation),
	}
}

func fullCustomer(scope payloom.Scope, created time.Time) *payloom.Customer {
	c := newCustomer(scope, created)
	c.Name = "Ünïcode \"Shopper\""
	c.Email = "ada@example.com"
	c.Phone = "+5511912345678"
	c.Document = "52998224725"
	c.DocumentType = payloom.DocumentCPF
	c.Reference = "user-42"
	c.Metadata = map[string]string{"tier": "gold", "empty": ""}
	c.UpdatedAt = created.Add(3*time.Second + 7*time.Microsecond)
	return c
}

func (h *harness) createCustomer(c *payloom.Customer) *payloom.Customer {
	h.t.Helper()
	h.update(func(tx payloom.Tx) error { return tx.CreateCustomer(h.ctx, c) })
	return c
}

// card stores a vault card in scope with the fingerprint and returns it.
func (h *harness) card(scope payloom.Scope, fingerprint string) *payloom.Card {
	h.t.Helper()
	id := payloom.NewID(payloom.PrefixToken)
	c := &payloom.Card{
		ID: id, MerchantID: scope.MerchantID, Livemode: scope.Livemode,
		Summary: payloom.CardSummary{Token: id, Brand: payloom.CardBrandVisa, First6: "424242", Last4: "4242",
			ExpMonth: 12, ExpYear: 2031, Fingerprint: fingerprint, HolderName: "Ada", Country: "US"},
		Ciphertext: []byte{1, 2, 3}, KeyID: "k1", CreatedAt: base,
	}
	h.update(func(tx payloom.Tx) error { return tx.CreateCard(h.ctx, c) })
	return c
}

func newPaymentMethod(c *payloom.Customer, card *payloom.Card, created time.Time) *payloom.SavedPaymentMethod {
	summary := card.Summary
	summary.Token = ""
	return &payloom.SavedPaymentMethod{
		ID: payloom.NewID(payloom.PrefixPaymentMethod), Object: "payment_method", MerchantID: c.MerchantID,
		Livemode: c.Livemode, CustomerID: c.ID, Type: payloom.PaymentMethodTypeCard, Card: &summary,
		CardToken: card.ID, CreatedAt: created, UpdatedAt: created,
	}
}

func testCustomer(t *testing.T, h *harness) {
	_, scope := h.merchant()
	scope.Livemode = true
	c := h.createCustomer(fullCustomer(scope, at(0)))
	bare := newCustomer(scope, at(1))
	bare.CreationKey = ""
	h.createCustomer(bare)
	others := h.otherScopes(scope)
	h.view(func(tx payloom.Tx) error {
		for _, want := range []*payloom.Customer{c, bare} {
			got, err := tx.GetCustomer(h.ctx, scope, want.ID)
			must(t, "GetCustomer", err)
			checkDiff(t, "GetCustomer("+want.ID+")", want, got)
		}
		got, err := tx.GetCustomerByCreationKey(h.ctx, scope, c.CreationKey)
		must(t, "GetCustomerByCreationKey", err)
		checkDiff(t, "GetCustomerByCreationKey", c, got)
		_, err = tx.GetCustomerByCreationKey(h.ctx, scope, "")
		wantCode(t, `GetCustomerByCreationKey("")`, err, payloom.CodeNotFound)
		for _, o := range others {
			_, err := tx.GetCustomer(h.ctx, o, c.ID)
			wantCode(t, "GetCustomer(other scope "+o.MerchantID+" "+o.Mode()+")", err, payloom.CodeNotFound)
			_, err = tx.GetCustomerByCreationKey(h.ctx, o, c.CreationKey)
			wantCode(t, "GetCustomerByCreationKey(other scope)", err, payloom.CodeNotFound)
		}
		return nil
	})

	// A creation key is unique in its scope, and the transaction stays
	// usable after the refusal; other scopes may reuse it.
	again := newCustomer(scope, at(2))
	again.CreationKey = c.CreationKey
	h.update(func(tx payloom.Tx) error {
		wantCode(t, "CreateCustomer(same creation key)", tx.CreateCustomer(h.ctx, again), payloom.CodeAlreadyExists)
		_, err := tx.GetCustomer(h.ctx, scope, c.ID)
		must(t, "GetCustomer after a refused CreateCustomer", err)
		return nil
	})
	elsewhere := newCustomer(others[0], at(2))
	elsewhere.CreationKey = c.CreationKey
	h.createCustomer(elsewhere)
	// Two customers without a creation key never collide.
	other := newCustomer(scope, at(3))
	other.CreationKey = ""
	h.createCustomer(other)

	// UpdateCustomer writes every mutable field.
	c.Name, c.Email, c.Phone, c.Reference = "Renamed", "", "", "ref-2"
	c.Document, c.DocumentType = "11222333000181", payloom.DocumentCNPJ
	c.Metadata = map[string]string{"k": "v"}
	c.UpdatedAt = at(9)
	h.update(func(tx payloom.Tx) error { return tx.UpdateCustomer(h.ctx, c) })
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetCustomer(h.ctx, scope, c.ID)
		must(t, "GetCustomer after UpdateCustomer", err)
		checkDiff(t, "GetCustomer after UpdateCustomer", c, got)
		return nil
	})
	for _, o := range others {
		ghost := *c
		ghost.MerchantID, ghost.Livemode = o.MerchantID, o.Livemode
		err := h.tryUpdate(func(tx payloom.Tx) error { return tx.UpdateCustomer(h.ctx, &ghost) })
		wantCode(t, "UpdateCustomer(other scope)", err, payloom.CodeNotFound)
		err = h.tryUpdate(func(tx payloom.Tx) error { return tx.DeleteCustomer(h.ctx, o, c.ID) })
		wantCode(t, "DeleteCustomer(other scope)", err, payloom.CodeNotFound)
	}

	// DeleteCustomer takes the customer's payment methods with it, and
	// nobody else's.
	card := h.card(scope, "fp_del")
	pm := newPaymentMethod(c, card, at(4))
	keep := newPaymentMethod(other, card, at(4))
	h.update(func(tx payloom.Tx) error {
		must(t, "CreatePaymentMethod", tx.CreatePaymentMethod(h.ctx, pm))
		return tx.CreatePaymentMethod(h.ctx, keep)
	})
	h.update(func(tx payloom.Tx) error { return tx.DeleteCustomer(h.ctx, scope, c.ID) })
	h.view(func(tx payloom.Tx) error {
		_, err := tx.GetCustomer(h.ctx, scope, c.ID)
		wantCode(t, "GetCustomer(deleted)", err, payloom.CodeNotFound)
		_, err = tx.GetPaymentMethod(h.ctx, scope, pm.ID)
		wantCode(t, "GetPaymentMethod(of a deleted customer)", err, payloom.CodeNotFound)
		_, err = tx.GetPaymentMethod(h.ctx, scope, keep.ID)
		must(t, "GetPaymentMethod(of another customer)", err)
		_, err = tx.GetCustomer(h.ctx, others[0], elsewhere.ID)
		must(t, "GetCustomer(same creation key, other scope)", err)
		return nil
	})
	err := h.tryUpdate(func(tx payloom.Tx) error { return tx.DeleteCustomer(h.ctx, scope, c.ID) })
	wantCode(t, "DeleteCustomer(deleted)", err, payloom.CodeNotFound)
}

func testListCustomers(t *testing.T, h *harness) {
	_, scope := h.merchant()
	others := h.otherScopes(scope)
	var fixtures []*payloom.Customer
	for i := range 7 {
		c := newCustomer(scope, at(i))
		c.Email = []string{"a@example.com", "b@example.com"}[i%2]
		c.Reference = []string{"r1", "r2", "r3"}[i%3]
		fixtures = append(fixtures, h.createCustomer(c))
	}
	for _, o := range others {
		c := newCustomer(o, at(3))
		c.Email, c.Reference = "a@example.com", "r1"
		h.createCustomer(c)
	}
	id := func(c *payloom.Customer) string { return c.ID }
	var tests []listTest[payloom.CustomerFilter]
	for _, p := range pagingTests(ids(fixtures, id)) {
		tests = append(tests, listTest[payloom.CustomerFilter]{p.name, payloom.CustomerFilter{ListParams: p.f}, p.want, p.more})
	}
	tests = append(tests,
		listTest[payloom.CustomerFilter]{"email", payloom.CustomerFilter{Email: ptr("a@example.com")}, []int{6, 4, 2, 0}, false},
		listTest[payloom.CustomerFilter]{"reference", payloom.CustomerFilter{Reference: ptr("r1")}, []int{6, 3, 0}, false},
		listTest[payloom.CustomerFilter]{"email and reference", payloom.CustomerFilter{Email: ptr("b@example.com"), Reference: ptr("r2")}, []int{1}, false},
		listTest[payloom.CustomerFilter]{"email with limit", payloom.CustomerFilter{Email: ptr("a@example.com"), ListParams: payloom.ListParams{Limit: 2}}, []int{6, 4}, true},
		listTest[payloom.CustomerFilter]{"unknown email", payloom.CustomerFilter{Email: ptr("z@example.com")}, nil, false},
	)
	runList(t, h, "ListCustomers", fixtures, id, tests, func(tx payloom.Tx, f payloom.CustomerFilter) ([]*payloom.Customer, bool, error) {
		return tx.ListCustomers(h.ctx, scope, f)
	})
}

func testPaymentMethod(t *testing.T, h *harness) {
	_, scope := h.merchant()
	c := h.createCustomer(newCustomer(scope, at(0)))
	card := h.card(scope, "fp_1")
	m := newPaymentMethod(c, card, at(1))
	h.update(func(tx payloom.Tx) error { return tx.CreatePaymentMethod(h.ctx, m) })
	others := h.otherScopes(scope)
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetPaymentMethod(h.ctx, scope, m.ID)
		must(t, "GetPaymentMethod", err)
		checkDiff(t, "GetPaymentMethod", m, got)
		got, err = tx.GetPaymentMethodByFingerprint(h.ctx, scope, c.ID, "fp_1")
		must(t, "GetPaymentMethodByFingerprint", err)
		checkDiff(t, "GetPaymentMethodByFingerprint", m, got)
		_, err = tx.GetPaymentMethodByFingerprint(h.ctx, scope, c.ID, "fp_other")
		wantCode(t, "GetPaymentMethodByFingerprint(unknown)", err, payloom.CodeNotFound)
		for _, o := range others {
			_, err := tx.GetPaymentMethod(h.ctx, o, m.ID)
			wantCode(t, "GetPaymentMethod(other scope)", err, payloom.CodeNotFound)
			_, err = tx.GetPaymentMethodByFingerprint(h.ctx, o, c.ID, "fp_1")
			wantCode(t, "GetPaymentMethodByFingerprint(other scope)", err, payloom.CodeNotFound)
		}
		return nil
	})

	// One method per customer and fingerprint; the transaction stays
	// usable after the refusal. Another customer may save the same card.
	dup := newPaymentMethod(c, card, at(2))
	h.update(func(tx payloom.Tx) error {
		wantCode(t, "CreatePaymentMethod(same fingerprint)", tx.CreatePaymentMethod(h.ctx, dup), payloom.CodeAlreadyExists)
		_, err := tx.GetPaymentMethod(h.ctx, scope, m.ID)
		must(t, "GetPaymentMethod after a refused CreatePaymentMethod", err)
		return nil
	})
	c2 := h.createCustomer(newCustomer(scope, at(0)))
	h.update(func(tx payloom.Tx) error { return tx.CreatePaymentMethod(h.ctx, newPaymentMethod(c2, card, at(2))) })

	// The customer must exist in the method's scope.
	for _, o := range others {
		stray := newPaymentMethod(c, card, at(3))
		stray.MerchantID, stray.Livemode = o.MerchantID, o.Livemode
		stray.Card.Fingerprint = "fp_stray"
		err := h.tryUpdate(func(tx payloom.Tx) error { return tx.CreatePaymentMethod(h.ctx, stray) })
		wantCode(t, "CreatePaymentMethod(customer of another scope)", err, payloom.CodeNotFound)
	}
	ghost := newPaymentMethod(newCustomer(scope, at(0)), card, at(3))
	err := h.tryUpdate(func(tx payloom.Tx) error { return tx.CreatePaymentMethod(h.ctx, ghost) })
	wantCode(t, "CreatePaymentMethod(unknown customer)", err, payloom.CodeNotFound)

	// UpdatePaymentMethod points the method at another card.
	newer := h.card(scope, "fp_1")
	m.CardToken = newer.ID
	m.Card.ExpYear, m.Card.HolderName, m.Card.Country = 2033, "Ada L.", "CA"
	m.UpdatedAt = at(5)
	h.update(func(tx payloom.Tx) error { return tx.UpdatePaymentMethod(h.ctx, m) })
	h.view(func(tx payloom.Tx) error {
		got, err := tx.GetPaymentMethod(h.ctx, scope, m.ID)
		must(t, "GetPaymentMethod after UpdatePaymentMethod", err)
		checkDiff(t, "GetPaymentMethod after UpdatePaymentMethod", m, got)
		return nil
	})
	for _, o := range others {
		g := *m
		g.MerchantID, g.Livemode = o.MerchantID, o.Livemode
		err := h.tryUpdate(func(tx payloom.Tx) error { return tx.UpdatePaymentMethod(h.ctx, &g) })
		wantCode(t, "UpdatePaymentMethod(other scope)", err, payloom.CodeNotFound)
		err = h.tryUpdate(func(tx payloom.Tx) error { return tx.DeletePaymentMethod(h.ctx, o, m.ID) })
		wantCode(t, "DeletePaymentMethod(other scope)", err, payloom.CodeNotFound)
	}

	h.update(func(tx payloom.Tx) error { return tx.DeletePaymentMethod(h.ctx, scope, m.ID) })
	h.view(func(tx payloom.Tx) error {
		_, err := tx.GetPaymentMethod(h.ctx, scope, m.ID)
		wantCode(t, "GetPaymentMethod(deleted)", err, payloom.CodeNotFound)
		_, err = tx.GetCustomer(h.ctx, scope, c.ID)
		must(t, "GetCustomer after DeletePaymentMethod", err)
		return nil
	})
	err = h.tryUpdate(func(tx payloom.Tx) error { return tx.DeletePaymentMethod(h.ctx, scope, m.ID) })
	wantCode(t, "DeletePaymentMethod(deleted)", err, payloom.CodeNotFound)
	// Its fingerprint is free again.
	h.update(func(tx payloom.Tx) error { return tx.CreatePaymentMethod(h.ctx, newPaymentMethod(c, card, at(6))) })
}

func testListPaymentMethods(t *testing.T, h *harness) {
	_, scope := h.merchant()
	c := h.createCustomer(newCustomer(scope, at(0)))
	other := h.createCustomer(newCustomer(scope, at(0)))
	var fixtures []*payloom.SavedPaymentMethod
	for i := range 7 {
		card := h.card(scope, "fp_"+string(rune('a'+i)))
		m := newPaymentMethod(c, card, at(i))
		h.update(func(tx payloom.Tx) error { return tx.CreatePaymentMethod(h.ctx, m) })
		fixtures = append(fixtures, m)
	}
	otherCard := h.card(scope, "fp_x")
	h.update(func(tx payloom.Tx) error {
		return tx.CreatePaymentMethod(h.ctx, newPaymentMethod(other, otherCard, at(3)))
	})
	id := func(m *payloom.SavedPaymentMethod) string { return m.ID }
	runList(t, h, "ListPaymentMethods", fixtures, id, pagingTests(ids(fixtures, id)),
		func(tx payloom.Tx, p payloom.ListParams) ([]*payloom.SavedPaymentMethod, bool, error) {
			return tx.ListPaymentMethods(h.ctx, scope, c.ID, p)
		})
	h.view(func(tx payloom.Tx) error {
		for _, o := range h.otherScopes(scope) {
			got, _, err := tx.ListPaymentMethods(h.ctx, o, c.ID, payloom.ListParams{})
			must(t, "ListPaymentMethods(other scope)", err)
			if len(got) != 0 {
				t.Errorf("ListPaymentMethods(other scope %s %s) = %d methods; want none", o.MerchantID, o.Mode(), len(got))
			}
		}
		return nil
	})
}

func newAuditEvent(scope payloom.Scope, action payloom.AuditAction, created time.Time) *payloom.AuditEvent {
	return &payloom.AuditEvent{
		ID: payloom.NewID(payloom.PrefixAuditEvent), Object: "audit_event", MerchantID: scope.MerchantID,
		Livemode: scope.Livemode, Action: action, Outcome: payloom.AuditSuccess, Actor: "key_1",
		Source: "127.0.0.1", TargetID: "key_2", Details: map[string]string{}, CreatedAt: created,
	}
}

func testAuditEvents(t *testing.T, h *harness) {
	_, scope := h.merchant()
	_, scopeB := h.merchant()
	// Seven events of scope, with every field set on one; then events of
	// another merchant, of the other mode and of no merchant at all.
	var fixtures []*payloom.AuditEvent
	for i := range 7 {
		action := []payloom.AuditAction{payloom.AuditAPIKeyCreated, payloom.AuditPermissionDenied}[i%2]
		ev := newAuditEvent(scope, action, at(i))
		if i == 3 {
			ev.Outcome, ev.Actor, ev.Source, ev.TargetID = payloom.AuditDenied, "cli", "cli", ""
			ev.Details = map[string]string{"permission": "raw_card_data", "route": "POST /v1/payments", "q": `"<>`}
		}
		fixtures = append(fixtures, ev)
	}
	b := newAuditEvent(scopeB, payloom.AuditAPIKeyCreated, at(3))
	live := newAuditEvent(payloom.Scope{MerchantID: scope.MerchantID, Livemode: true}, payloom.AuditAPIKeyCreated, at(3))
	system := newAuditEvent(payloom.Scope{}, payloom.AuditVaultRotate, at(3))
	system.Actor, system.Source, system.TargetID = "cli", "cli", "kek_2"
	h.update(func(tx payloom.Tx) error {
		for _, ev := range append(append([]*payloom.AuditEvent{}, fixtures...), b, live, system) {
			if err := tx.CreateAuditEvent(h.ctx, ev); err != nil {
				return err
			}
		}
		return nil
	})
	err := h.tryUpdate(func(tx payloom.Tx) error { return tx.CreateAuditEvent(h.ctx, fixtures[0]) })
	wantCode(t, "CreateAuditEvent(same ID)", err, payloom.CodeAlreadyExists)

	id := func(e *payloom.AuditEvent) string { return e.ID }
	inScope := func(f payloom.AuditFilter) payloom.AuditFilter {
		f.MerchantID, f.Livemode = &scope.MerchantID, &scope.Livemode
		return f
	}
	var tests []listTest[payloom.AuditFilter]
	for _, p := range pagingTests(ids(fixtures, id)) {
		tests = append(tests, listTest[payloom.AuditFilter]{p.name, inScope(payloom.AuditFilter{ListParams: p.f}), p.want, p.more})
	}
	tests = append(tests, listTest[payloom.AuditFilter]{"action",
		inScope(payloom.AuditFilter{Action: ptr(payloom.AuditPermissionDenied)}), []int{5, 3, 1}, false})
	runList(t, h, "ListAuditEvents", fixtures, id, tests, func(tx payloom.Tx, f payloom.AuditFilter) ([]*payloom.AuditEvent, bool, error) {
		return tx.ListAuditEvents(h.ctx, f)
	})

	// Filters that are not a scope: every merchant, no merchant, one mode.
	all := append(append([]*payloom.AuditEvent{}, fixtures...), b, live, system)
	byID := map[string]*payloom.AuditEvent{}
	for _, ev := range all {
		byID[ev.ID] = ev
	}
	for _, tt := range []struct {
		name string
		f    payloom.AuditFilter
		want []*payloom.AuditEvent
	}{
		{"no merchant", payloom.AuditFilter{MerchantID: ptr("")}, []*payloom.AuditEvent{system}},
		{"merchant B", payloom.AuditFilter{MerchantID: &scopeB.MerchantID}, []*payloom.AuditEvent{b}},
		{"live mode", payloom.AuditFilter{Livemode: ptr(true)}, []*payloom.AuditEvent{live}},
		{"vault.rotate", payloom.AuditFilter{Action: ptr(payloom.AuditVaultRotate)}, []*payloom.AuditEvent{system}},
	} {
		h.view(func(tx payloom.Tx) error {
			got, more, err := tx.ListAuditEvents(h.ctx, tt.f)
			must(t, "ListAuditEvents("+tt.name+")", err)
			if len(got) != len(tt.want) || more {
				t.Errorf("ListAuditEvents(%s) = %v (more %v); want %v", tt.name, ids(got, id), more, ids(tt.want, id))
				return nil
			}
			for i := range got {
				checkDiff(t, "ListAuditEvents("+tt.name+")", tt.want[i], got[i])
			}
			return nil
		})
	}
	h.view(func(tx payloom.Tx) error {
		got, _, err := tx.ListAuditEvents(h.ctx, payloom.AuditFilter{ListParams: payloom.ListParams{Limit: 100}})
		must(t, "ListAuditEvents(everything)", err)
		if len(got) != len(all) {
			t.Errorf("ListAuditEvents(everything) = %d events; want %d", len(got), len(all))
		}
		for _, ev := range got {
			if want, ok := byID[ev.ID]; ok {
				checkDiff(t, "ListAuditEvents(everything)", want, ev)
			}
		}
		return nil
	})
}
