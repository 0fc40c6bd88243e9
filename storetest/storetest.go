// Package storetest is the contract suite for payloom.Store: every
// implementation (sqlite, postgres) runs Run against itself, so the engine
// can rely on one behaviour whatever the store.
//
// The suite tests only what store.go promises: round trips of every field
// (times by instant, in UTC, with microsecond precision; nil maps and
// slices read back empty), scope isolation, the error codes, version
// checks, list paging, the stale-work queries, rollback and serialization
// of concurrent Updates, and the webhook queue: fan-out of every event
// exactly once and exclusive, expiring delivery leases, and the job leases
// of background work (exclusive under concurrent acquirers, renewed,
// expiring, released, and serializing the transactions that take them). It
// never reaches into an implementation's schema.
//
// It creates merchants before the rows that belong to them and payments
// before their attempts and refunds, so stores may enforce foreign keys.
package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/payloom/payloom"
)

// Run runs the contract suite. open must return a new, migrated, empty
// store for each call and close it when the test ends.
func Run(t *testing.T, open func(t *testing.T) payloom.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h *harness)
	}{
		{"Ping", testPing},
		{"Update", testUpdate},
		{"View", testView},
		{"CreateMerchant", testCreateMerchant},
		{"UpdateMerchant", testUpdateMerchant},
		{"CountMerchants", testCountMerchants},
		{"CreateAPIKey", testCreateAPIKey},
		{"UpdateAPIKey", testUpdateAPIKey},
		{"CreateCard", testCreateCard},
		{"CreatePayment", testCreatePayment},
		{"GetPaymentByCreationKey", testGetPaymentByCreationKey},
		{"UpdatePayment", testUpdatePayment},
		{"CreateAttempt", testCreateAttempt},
		{"UpdateAttempt", testUpdateAttempt},
		{"ListPayments", testListPayments},
		{"ListStalePayments", testListStalePayments},
		{"ListLateCheckPayments", testListLateCheckPayments},
		{"CreateRefund", testCreateRefund},
		{"GetRefundByCreationKey", testGetRefundByCreationKey},
		{"UpdateRefund", testUpdateRefund},
		{"ListRefunds", testListRefunds},
		{"ListStaleRefunds", testListStaleRefunds},
		{"CreateEvent", testCreateEvent},
		{"ListEvents", testListEvents},
		{"CreateIdempotencyKey", testCreateIdempotencyKey},
		{"UpdateIdempotencyKey", testUpdateIdempotencyKey},
		{"CompleteIdempotencyKey", testCompleteIdempotencyKey},
		{"DeleteIdempotencyKey", testDeleteIdempotencyKey},
		{"DeleteIdempotencyKeysBefore", testDeleteIdempotencyKeysBefore},
		{"CreateSandboxOperation", testCreateSandboxOperation},
		{"CountSandboxOperations", testCountSandboxOperations},
		{"ConcurrentUpdatePayment", testConcurrentUpdatePayment},
		{"ConcurrentCreateIdempotencyKey", testConcurrentCreateIdempotencyKey},
		{"WebhookEndpoint", testWebhookEndpoint},
		{"UpdateWebhookEndpoint", testUpdateWebhookEndpoint},
		{"DeleteWebhookEndpoint", testDeleteWebhookEndpoint},
		{"ListWebhookEndpoints", testListWebhookEndpoints},
		{"UndispatchedEvents", testUndispatchedEvents},
		{"ConcurrentFanOut", testConcurrentFanOut},
		{"WebhookDelivery", testWebhookDelivery},
		{"ClaimWebhookDeliveries", testClaimWebhookDeliveries},
		{"ConcurrentClaimWebhookDeliveries", testConcurrentClaim},
		{"WebhookAttempts", testWebhookAttempts},
		{"Lease", testLease},
		{"LeaseTransactions", testLeaseTransactions},
		{"ConcurrentAcquireLease", testConcurrentAcquireLease},
		{"LeaseSerializes", testLeaseSerializes},
		{"VaultKEK", testVaultKEK}, {"VaultDEK", testVaultDEK}, {"VaultDEKRotation", testVaultDEKRotation}, {"VaultCards", testVaultCards}, {"ConcurrentVaultPromotion", testConcurrentVaultPromotion},
		// Customers, saved payment methods and the audit log (issue 4).
		{"Customer", testCustomer},
		{"ListCustomers", testListCustomers},
		{"PaymentMethod", testPaymentMethod},
		{"ListPaymentMethods", testListPaymentMethods},
		{"AuditEvents", testAuditEvents},
		{"PaymentPage", testPaymentPage},
		{"FindPayment", testFindPayment},
		{"ListExpiredPayments", testListExpiredPayments},
		// Processor accounts and routing rules (issue 5).
		{"ProcessorAccount", testProcessorAccount},
		{"UpdateProcessorAccount", testUpdateProcessorAccount},
		{"Routing", testRouting},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, &harness{t: t, s: open(t), ctx: context.Background()})
		})
	}
}

// harness holds one store and the helpers the tests share.
type harness struct {
	t   *testing.T
	s   payloom.Store
	ctx context.Context
}

// base is the suite's reference time: UTC, with microseconds, the
// precision every store must keep.
var base = time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)

// at returns base plus n minutes.
func at(n int) time.Time { return base.Add(time.Duration(n) * time.Minute) }

func ptr[T any](v T) *T { return &v }

// update runs fn in an Update and fails the test on an error.
func (h *harness) update(fn func(tx payloom.Tx) error) {
	h.t.Helper()
	if err := h.s.Update(h.ctx, fn); err != nil {
		h.t.Fatalf("Update: %v", err)
	}
}

// view runs fn in a View and fails the test on an error.
func (h *harness) view(fn func(tx payloom.Tx) error) {
	h.t.Helper()
	if err := h.s.View(h.ctx, fn); err != nil {
		h.t.Fatalf("View: %v", err)
	}
}

// tryUpdate runs fn in an Update and returns its error.
func (h *harness) tryUpdate(fn func(tx payloom.Tx) error) error {
	return h.s.Update(h.ctx, fn)
}

// wantCode fails unless err has the payloom error code.
func wantCode(t *testing.T, call string, err error, code string) {
	t.Helper()
	if got := payloom.ErrorCode(err); got != code {
		t.Errorf("%s: error code %q (err %v); want %q", call, got, err, code)
	}
}

// mustNot fails the test if err is not nil.
func must(t *testing.T, call string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", call, err)
	}
}

// checkDiff reports every difference between want and got.
func checkDiff(t *testing.T, call string, want, got any) {
	t.Helper()
	for _, d := range diff(want, got) {
		t.Errorf("%s: %s", call, d)
	}
}

// merchant creates a merchant and returns it with a test-mode scope.
func (h *harness) merchant() (*payloom.Merchant, payloom.Scope) {
	h.t.Helper()
	m := &payloom.Merchant{
		ID: payloom.NewID(payloom.PrefixMerchant), Name: "Acme Ltd", MinAmount: payloom.DefaultMinAmount,
		MaxAmount: payloom.DefaultMaxAmount, CreatedAt: base,
	}
	h.update(func(tx payloom.Tx) error { return tx.CreateMerchant(h.ctx, m) })
	return m, payloom.Scope{MerchantID: m.ID}
}

// otherScopes returns scopes that must not see scope's objects: another
// merchant in the same mode, and the same merchant in the other mode.
func (h *harness) otherScopes(scope payloom.Scope) []payloom.Scope {
	h.t.Helper()
	_, other := h.merchant()
	other.Livemode = scope.Livemode
	return []payloom.Scope{other, {MerchantID: scope.MerchantID, Livemode: !scope.Livemode}}
}

// newPayment returns a minimal payment in scope created at created; it is
// not stored.
func newPayment(scope payloom.Scope, created time.Time) *payloom.Payment {
	return &payloom.Payment{
		ID: payloom.NewID(payloom.PrefixPayment), Object: "payment", MerchantID: scope.MerchantID,
		Livemode: scope.Livemode, Amount: 1000, Currency: "USD", Status: payloom.PaymentStatusProcessing,
		CaptureMethod: payloom.CaptureMethodAutomatic, Attempts: []*payloom.Attempt{},
		Metadata: map[string]string{}, CreatedAt: created, UpdatedAt: created,
		CreationKey: payloom.NewID(payloom.PrefixOperation),
	}
}

// fullPayment returns a payment with every field set to a non-zero value.
func fullPayment(scope payloom.Scope, created time.Time) *payloom.Payment {
	p := newPayment(scope, created)
	p.Amount = 12345
	p.AmountCapturable = 100
	p.AmountCaptured = 12000
	p.AmountRefunded = 500
	p.Currency = "BHD"
	p.Status = payloom.PaymentStatusAuthorized
	p.CaptureMethod = payloom.CaptureMethodManual
	p.CustomerID = "cus_42"
	p.Reference = "order-42"
	p.Description = "Two tickets, \"front row\" — ünïcode"
	p.StatementDescriptor = "ACME TICKETS"
	p.SavePaymentMethod = true
	p.PaymentMethod = &payloom.PaymentMethod{ID: payloom.NewID(payloom.PrefixPaymentMethod), Type: payloom.PaymentMethodTypeCard, Card: &payloom.CardSummary{
		Token: payloom.NewID(payloom.PrefixToken), Brand: payloom.CardBrandVisa, First6: "424242", Last4: "4242",
		ExpMonth: 12, ExpYear: 2030, Fingerprint: "fp_abc", HolderName: "Ada Lovelace", Country: "BR",
	}}
	p.Processor = &payloom.ProcessorDetails{
		Name: "sandbox", TransactionID: "txn_1", AuthorizationCode: "123456", AVSResult: "Y", CVVResult: "M",
		NetworkTransactionID: "ntid_1",
	}
	p.NextAction = &payloom.NextAction{Type: "redirect_to_url", RedirectURL: "https://example.com/3ds?x=1&y=2"}
	p.Failure = &payloom.Failure{Code: payloom.FailureCardDeclined, DeclineCode: payloom.DeclineInsufficientFunds, Message: "declined"}
	p.Metadata = map[string]string{"plan": "gold", "empty": "", "quote": `"'<>`}
	p.UpdatedAt = created.Add(90*time.Second + 7*time.Microsecond)
	p.PendingAction = payloom.PendingActionCapture
	p.PendingActionKey = payloom.NewID(payloom.PrefixOperation)
	p.PendingAmount = 100
	p.PendingSince = created.Add(time.Second + 3*time.Microsecond)
	p.Version = 3
	p.PaymentPage = fullPage(created)
	return p
}

// createPayment stores p.
func (h *harness) createPayment(p *payloom.Payment) *payloom.Payment {
	h.t.Helper()
	h.update(func(tx payloom.Tx) error { return tx.CreatePayment(h.ctx, p) })
	return p
}

// newAttempt returns a pending attempt of p created at created.
func newAttempt(p *payloom.Payment, created time.Time) *payloom.Attempt {
	return &payloom.Attempt{
		ID: payloom.NewID(payloom.PrefixAttempt), PaymentID: p.ID, Processor: "sandbox",
		Status: payloom.AttemptStatusPending, CreatedAt: created,
	}
}

// newRefund returns a pending refund of p created at created.
func newRefund(p *payloom.Payment, created time.Time) *payloom.Refund {
	return &payloom.Refund{
		ID: payloom.NewID(payloom.PrefixRefund), Object: "refund", MerchantID: p.MerchantID, Livemode: p.Livemode,
		PaymentID: p.ID, Amount: 100, Currency: p.Currency, Status: payloom.RefundStatusPending,
		Metadata: map[string]string{}, CreatedAt: created, UpdatedAt: created,
		CreationKey: payloom.NewID(payloom.PrefixOperation),
	}
}

// newEvent returns an event about objectID in scope.
func newEvent(scope payloom.Scope, typ payloom.EventType, objectID string, created time.Time) *payloom.Event {
	return &payloom.Event{
		ID: payloom.NewID(payloom.PrefixEvent), Object: "event", MerchantID: scope.MerchantID, Livemode: scope.Livemode,
		Type: typ, ObjectID: objectID, CreatedAt: created,
		// Canonical JSON (sorted keys, no spaces), see normalizeEventData.
		Data: payloom.EventData{Object: []byte(`{"amount":1000,"id":"` + objectID + `","nested":{"a":[1,2],"s":"é"}}`)},
	}
}

// newIdempotencyKey returns an unlocked, incomplete record for key.
func newIdempotencyKey(scope payloom.Scope, key string, created time.Time) *payloom.IdempotencyKey {
	return &payloom.IdempotencyKey{
		ID: payloom.NewID(payloom.PrefixIdempotency), MerchantID: scope.MerchantID, Livemode: scope.Livemode,
		Key: key, Fingerprint: "fp", Method: "POST", Path: "/v1/payments",
		ResponseBody: []byte{}, CreatedAt: created,
	}
}

func testPing(t *testing.T, h *harness) {
	if err := h.s.Ping(h.ctx); err != nil {
		t.Errorf("Ping() = %v; want nil", err)
	}
}

var errTest = errors.New("storetest: fn failed on purpose")

// testUpdate: fn's error rolls back everything the transaction wrote and
// comes back from Update.
func testUpdate(t *testing.T, h *harness) {
	m, scope := h.merchant()
	p := h.createPayment(newPayment(scope, at(0)))
	m2 := &payloom.Merchant{ID: payloom.NewID(payloom.PrefixMerchant), Name: "Ghost", MinAmount: 1, MaxAmount: 2, CreatedAt: base}
	p2 := newPayment(scope, at(1))

	err := h.tryUpdate(func(tx payloom.Tx) error {
		if err := tx.CreateMerchant(h.ctx, m2); err != nil {
			return err
		}
		if err := tx.CreatePayment(h.ctx, p2); err != nil {
			return err
		}
		got, err := tx.GetPayment(h.ctx, scope, p.ID)
		if err != nil {
			return err
		}
		got.Status = payloom.PaymentStatusFailed
		if err := tx.UpdatePayment(h.ctx, got); err != nil {
			return err
		}
		m.Name = "Renamed"
		if err := tx.UpdateMerchant(h.ctx, m); err != nil {
			return err
		}
		return errTest
	})
	if !errors.Is(err, errTest) {
		t.Fatalf("Update(fn failing) = %v; want fn's error", err)
	}
	h.view(func(tx payloom.Tx) error {
		_, err := tx.GetMerchant(h.ctx, m2.ID)
		wantCode(t, "GetMerchant(rolled back)", err, payloom.CodeNotFound)
		_, err = tx.GetPayment(h.ctx, scope, p2.ID)
		wantCode(t, "GetPayment(rolled back)", err, payloom.CodeNotFound)
		got, err := tx.GetPayment(h.ctx, scope, p.ID)
		must(t, "GetPayment", err)
		if got.Status != p.Status || got.Version != p.Version {
			t.Errorf("GetPayment after rollback = status %q version %d; want %q %d", got.Status, got.Version, p.Status, p.Version)
		}
		gm, err := tx.GetMerchant(h.ctx, m.ID)
		must(t, "GetMerchant", err)
		if gm.Name != "Acme Ltd" {
			t.Errorf("GetMerchant(%q).Name after rollback = %q; want %q", m.ID, gm.Name, "Acme Ltd")
		}
		n, err := tx.CountMerchants(h.ctx)
		must(t, "CountMerchants", err)
		if n != 1 {
			t.Errorf("CountMerchants() after rollback = %d; want 1", n)
		}
		return nil
	})

	// A committed Update is visible to the next View.
	h.update(func(tx payloom.Tx) error { return tx.CreatePayment(h.ctx, p2) })
	h.view(func(tx payloom.Tx) error {
		_, err := tx.GetPayment(h.ctx, scope, p2.ID)
		must(t, "GetPayment(committed)", err)
		return nil
	})
}

// testView: a View's error comes back, and a View cannot write.
func testView(t *testing.T, h *harness) {
	if err := h.s.View(h.ctx, func(payloom.Tx) error { return errTest }); !errors.Is(err, errTest) {
		t.Errorf("View(fn failing) = %v; want fn's error", err)
	}
	m := &payloom.Merchant{ID: payloom.NewID(payloom.PrefixMerchant), Name: "RO", MinAmount: 1, MaxAmount: 2, CreatedAt: base}
	_ = h.s.View(h.ctx, func(tx payloom.Tx) error {
		if err := tx.CreateMerchant(h.ctx, m); err == nil {
			t.Errorf("CreateMerchant in a View = nil; want an error")
		}
		return nil
	})
	h.view(func(tx payloom.Tx) error {
		_, err := tx.GetMerchant(h.ctx, m.ID)
		wantCode(t, "GetMerchant(written in a View)", err, payloom.CodeNotFound)
		return nil
	})
}
