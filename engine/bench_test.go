package engine_test

import (
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/processor/sandbox"
)

// BenchmarkCreatePayment measures a whole automatic-capture payment: three
// SQLite transactions for the engine and one for the sandbox's ledger.
func BenchmarkCreatePayment(b *testing.B) {
	e := newEnv(b)
	req := paymentReq(e.token(sandbox.CardVisa), 1000, payloom.CaptureMethodAutomatic)
	b.ReportAllocs()
	for b.Loop() {
		p, err := e.eng.CreatePayment(e.ctx, e.scope, payloom.NewID("op"), req)
		if err != nil || p.Status != payloom.PaymentStatusCaptured {
			b.Fatalf("CreatePayment = %v, %v", p, err)
		}
	}
}

// BenchmarkCreatePaymentClaimed measures the server's hot path without
// HTTP: card payments under new Idempotency-Keys from 32 goroutines at once
// (concurrency 32, as bench/run), sharing commits through the store's
// group commit.
func BenchmarkCreatePaymentClaimed(b *testing.B) {
	e := newEnv(b)
	req := paymentReq(e.token(sandbox.CardVisa), 1000, payloom.CaptureMethodAutomatic)
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism((32 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			claim := newClaim(e.scope, "k"+strconv.FormatInt(n.Add(1), 10))
			p, err := e.eng.CreatePaymentClaimed(e.ctx, claim, req)
			if err != nil || p.Status != payloom.PaymentStatusCaptured || !claim.Completed {
				b.Fatalf("CreatePaymentClaimed = %v, %v (completed %v)", p, err, claim.Completed)
			}
		}
	})
}

// BenchmarkIdempotencyBegin measures claiming a new key (one transaction
// with an insert) and replaying a completed one (an insert that fails on
// the unique key, then a read).
func BenchmarkIdempotencyBegin(b *testing.B) {
	b.Run("new", func(b *testing.B) {
		e := newEnv(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, held, err := e.eng.Begin(e.ctx, e.scope, "k"+strconv.Itoa(i), "POST", "/v1/payments", "fp"); err != nil || !held {
				b.Fatalf("Begin = %v, %v", held, err)
			}
		}
	})
	b.Run("replay", func(b *testing.B) {
		e := newEnv(b)
		rec, _, err := e.eng.Begin(e.ctx, e.scope, "k", "POST", "/v1/payments", "fp")
		if err != nil {
			b.Fatal(err)
		}
		if err := e.eng.Complete(e.ctx, rec, 200, []byte(`{"id":"pay_1"}`)); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, held, err := e.eng.Begin(e.ctx, e.scope, "k", "POST", "/v1/payments", "fp"); err != nil || held {
				b.Fatalf("Begin = %v, %v", held, err)
			}
		}
	})
}
