package sqlite_test

import (
	"context"
	"testing"
	"time"

	"github.com/payloom/payloom"
)

func benchPayment(m *payloom.Merchant, now time.Time) *payloom.Payment {
	return &payloom.Payment{
		ID: payloom.NewID(payloom.PrefixPayment), Object: "payment", MerchantID: m.ID, Amount: 1000, Currency: "USD",
		Status: payloom.PaymentStatusProcessing, CaptureMethod: payloom.CaptureMethodAutomatic,
		Metadata: map[string]string{"order": "42"}, CreatedAt: now, UpdatedAt: now,
		CreationKey: payloom.NewID(payloom.PrefixOperation),
		PaymentMethod: &payloom.PaymentMethod{Type: payloom.PaymentMethodTypeCard, Card: &payloom.CardSummary{
			Token: "tok_x", Brand: payloom.CardBrandVisa, First6: "424242", Last4: "4242", ExpMonth: 12, ExpYear: 2030}},
	}
}

// BenchmarkCreatePayment measures one payment insert in its own Update:
// BEGIN IMMEDIATE, INSERT, and a durable (fsynced) COMMIT.
func BenchmarkCreatePayment(b *testing.B) {
	ctx := context.Background()
	s := mustOpen(b, tempPath(b))
	now := time.Now().UTC()
	m := &payloom.Merchant{ID: payloom.NewID(payloom.PrefixMerchant), Name: "Bench", MinAmount: 1, MaxAmount: 1e9, CreatedAt: now}
	if err := s.Update(ctx, func(tx payloom.Tx) error { return tx.CreateMerchant(ctx, m) }); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p := benchPayment(m, now)
		if err := s.Update(ctx, func(tx payloom.Tx) error { return tx.CreatePayment(ctx, p) }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreatePaymentParallel is BenchmarkCreatePayment from many
// goroutines: writers queue for the one write connection.
func BenchmarkCreatePaymentParallel(b *testing.B) {
	ctx := context.Background()
	s := mustOpen(b, tempPath(b))
	now := time.Now().UTC()
	m := &payloom.Merchant{ID: payloom.NewID(payloom.PrefixMerchant), Name: "Bench", MinAmount: 1, MaxAmount: 1e9, CreatedAt: now}
	if err := s.Update(ctx, func(tx payloom.Tx) error { return tx.CreateMerchant(ctx, m) }); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p := benchPayment(m, now)
			if err := s.Update(ctx, func(tx payloom.Tx) error { return tx.CreatePayment(ctx, p) }); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkGetPayment measures a read of a payment with its attempt.
func BenchmarkGetPayment(b *testing.B) {
	ctx := context.Background()
	s := mustOpen(b, tempPath(b))
	now := time.Now().UTC()
	m := &payloom.Merchant{ID: payloom.NewID(payloom.PrefixMerchant), Name: "Bench", MinAmount: 1, MaxAmount: 1e9, CreatedAt: now}
	p := benchPayment(m, now)
	err := s.Update(ctx, func(tx payloom.Tx) error {
		if err := tx.CreateMerchant(ctx, m); err != nil {
			return err
		}
		if err := tx.CreatePayment(ctx, p); err != nil {
			return err
		}
		return tx.CreateAttempt(ctx, &payloom.Attempt{ID: payloom.NewID(payloom.PrefixAttempt), PaymentID: p.ID,
			Processor: "sandbox", Status: payloom.AttemptStatusPending, CreatedAt: now})
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := s.View(ctx, func(tx payloom.Tx) error { _, err := tx.GetPayment(ctx, p.Scope(), p.ID); return err }); err != nil {
			b.Fatal(err)
		}
	}
}
