package vault

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/sqlite"
)

var numberSeeds = []string{
	"4242424242424242", "4242 4242 4242 4242", "4242-4242-4242-4242", "378282246310005",
	"4242424242424241", "", " ", "-", "42", "4242424242", "42424242424242424242", "4242x4242",
	"٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢", "4242424242424242\x00", "6062825624254001", "5066991111111118",
}

// FuzzParseNumber: the parser never panics, accepts only 12-19 digits that
// pass Luhn (the input minus spaces and dashes), and its errors hold no
// digit, so they cannot echo any part of the input.
func FuzzParseNumber(f *testing.F) {
	for _, s := range numberSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := parseNumber(in)
		if err != nil {
			if got != "" || !payloom.IsCode(err, payloom.CodeValidation) || payloom.ErrorParam(err) != paramNumber {
				t.Fatalf("parseNumber = %q, %v; want \"\" and a validation error on %s", got, err, paramNumber)
			}
			if hasDigit(err.Error()) {
				t.Fatalf("parseNumber error %q holds a digit", err)
			}
			return
		}
		want := strings.NewReplacer(" ", "", "-", "").Replace(in)
		if got != want || len(got) < minNumberLength || len(got) > maxNumberLength || !luhn(got) {
			t.Fatalf("parseNumber(%q) = %q; want %q, 12-19 digits passing Luhn", in, got, want)
		}
		_ = detectBrand(got) // must not panic on any accepted number
	})
}

// FuzzTokenizeNumber tokenizes arbitrary numbers and CVCs into a real
// store: no panic, errors are validation errors without a single digit, and
// what is accepted is revealed exactly.
func FuzzTokenizeNumber(f *testing.F) {
	for _, s := range numberSeeds {
		f.Add(s, "123")
		f.Add(s, "1234")
	}
	f.Add("4242424242424242", "")
	f.Add("4242424242424242", "12a")
	f.Add("4242424242424242", "4242424242424242")

	store, err := sqlite.Open(filepath.Join(f.TempDir(), "fuzz.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	ctx := context.Background()
	if err := store.Migrate(ctx); err != nil {
		f.Fatal(err)
	}
	scope := payloom.Scope{MerchantID: payloom.NewID(payloom.PrefixMerchant)}
	if err := store.Update(ctx, func(tx payloom.Tx) error {
		return tx.CreateMerchant(ctx, &payloom.Merchant{ID: scope.MerchantID, Name: "Fuzz", MinAmount: 1, MaxAmount: 100,
			CreatedAt: time.Now()})
	}); err != nil {
		f.Fatal(err)
	}
	clock := func() time.Time { return time.Date(2026, time.March, 15, 0, 0, 0, 0, time.UTC) }
	v := New(store, mustKeys(f, testMaster), Options{Clock: clock})

	f.Fuzz(func(t *testing.T, number, cvc string) {
		tok, err := v.Tokenize(ctx, scope, &payloom.CardInput{
			Number: payloom.Secret(number), ExpMonth: 12, ExpYear: 2030, CVC: payloom.Secret(cvc)})
		if err != nil {
			if tok != nil || !payloom.IsCode(err, payloom.CodeValidation) {
				t.Fatalf("Tokenize = %v, %v; want a validation error", tok, err)
			}
			if hasDigit(err.Error()) {
				t.Fatalf("Tokenize error %q holds a digit", err)
			}
			return
		}
		digits := strings.NewReplacer(" ", "", "-", "").Replace(number)
		d, err := v.Reveal(ctx, scope, tok.ID)
		if err != nil || d.Number.Reveal() != digits || d.CVC.Reveal() != cvc {
			t.Fatalf("Reveal(Tokenize(%q, %q)) = %v; want the number and CVC back", number, cvc, err)
		}
		if tok.Card.First6 != digits[:6] || tok.Card.Last4 != digits[len(digits)-4:] {
			t.Fatalf("summary %+v does not match %q", tok.Card, number)
		}
		v.ForgetCVC(scope, tok.ID)
	})
}
