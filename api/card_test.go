package api

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/sqlite"
	"github.com/payloom/payloom/vault"
)

// precheckCard copies the vault's card rules so that a card the vault would
// refuse is refused before the Idempotency-Key is claimed. This checks the
// copy against the real vault: same verdict, same param.
func TestPrecheckCardAgrees(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "v.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	keys, err := vault.NewKeys(bytes.Repeat([]byte{9}, vault.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 6, 15, 12, 0, 0, 0, time.UTC)
	v := vault.New(st, keys, vault.Options{Clock: func() time.Time { return now }})
	m := &payloom.Merchant{ID: payloom.NewID(payloom.PrefixMerchant), Name: "M", MinAmount: 1, MaxAmount: 100, CreatedAt: now}
	if err := st.Update(ctx, func(tx payloom.Tx) error { return tx.CreateMerchant(ctx, m) }); err != nil {
		t.Fatal(err)
	}
	scope := payloom.Scope{MerchantID: m.ID}

	tests := []struct {
		name string
		in   payloom.CardInput
		// gap: the vault refuses what precheckCard lets through (a brand
		// rule precheckCard does not copy); the vault's answer is then
		// stored under the key. See precheckCVC.
		gap bool
	}{
		{"visa", payloom.CardInput{Number: "4242424242424242", ExpMonth: 12, ExpYear: 2030, CVC: "123"}, false},
		{"spaces and dashes", payloom.CardInput{Number: "4242 4242-4242 4242", ExpMonth: 6, ExpYear: 2025}, false},
		{"two-digit year", payloom.CardInput{Number: "5555555555554444", ExpMonth: 1, ExpYear: 30}, false},
		{"amex", payloom.CardInput{Number: "378282246310005", ExpMonth: 1, ExpYear: 2030, CVC: "1234"}, false},
		{"amex three", payloom.CardInput{Number: "378282246310005", ExpMonth: 1, ExpYear: 2030, CVC: "123"}, false},
		{"unknown brand four", payloom.CardInput{Number: "9999999999999995", ExpMonth: 1, ExpYear: 2030, CVC: "1234"}, false},
		{"empty number", payloom.CardInput{ExpMonth: 1, ExpYear: 2030}, false},
		{"letters", payloom.CardInput{Number: "4242x42424242424", ExpMonth: 1, ExpYear: 2030}, false},
		{"short", payloom.CardInput{Number: "42424242424", ExpMonth: 1, ExpYear: 2030}, false},
		{"long", payloom.CardInput{Number: "42424242424242424242", ExpMonth: 1, ExpYear: 2030}, false},
		{"very long", payloom.CardInput{Number: payloom.Secret(strings.Repeat(" ", 80) + "4242424242424242"), ExpMonth: 1, ExpYear: 2030}, false},
		{"luhn", payloom.CardInput{Number: "4242424242424241", ExpMonth: 1, ExpYear: 2030}, false},
		{"month 0", payloom.CardInput{Number: "4242424242424242", ExpMonth: 0, ExpYear: 2030}, false},
		{"month 13", payloom.CardInput{Number: "4242424242424242", ExpMonth: 13, ExpYear: 2030}, false},
		{"year 3 digits", payloom.CardInput{Number: "4242424242424242", ExpMonth: 1, ExpYear: 203}, false},
		{"last year", payloom.CardInput{Number: "4242424242424242", ExpMonth: 12, ExpYear: 2024}, false},
		{"last month", payloom.CardInput{Number: "4242424242424242", ExpMonth: 5, ExpYear: 2025}, false},
		{"this month", payloom.CardInput{Number: "4242424242424242", ExpMonth: 6, ExpYear: 2025}, false},
		{"far future", payloom.CardInput{Number: "4242424242424242", ExpMonth: 1, ExpYear: 2076}, false},
		{"cvc letters", payloom.CardInput{Number: "4242424242424242", ExpMonth: 1, ExpYear: 2030, CVC: "12a"}, false},
		{"cvc five", payloom.CardInput{Number: "4242424242424242", ExpMonth: 1, ExpYear: 2030, CVC: "12345"}, false},
		{"cvc two", payloom.CardInput{Number: "4242424242424242", ExpMonth: 1, ExpYear: 2030, CVC: "12"}, false},
		{"visa cvc four", payloom.CardInput{Number: "4242424242424242", ExpMonth: 1, ExpYear: 2030, CVC: "1234"}, true},
		{"holder", payloom.CardInput{Number: "4242424242424242", ExpMonth: 1, ExpYear: 2030, HolderName: "  Ada Lovelace  "}, false},
		{"holder long", payloom.CardInput{Number: "4242424242424242", ExpMonth: 1, ExpYear: 2030, HolderName: strings.Repeat("é", 201)}, false},
		{"holder 200 padded", payloom.CardInput{Number: "4242424242424242", ExpMonth: 1, ExpYear: 2030, HolderName: " " + strings.Repeat("é", 200) + " "}, false},
		{"holder control", payloom.CardInput{Number: "4242424242424242", ExpMonth: 1, ExpYear: 2030, HolderName: "a\u0085b"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			pre := precheckCard(&in, now)
			_, got := v.Tokenize(ctx, scope, &in)
			if pre != nil && payloom.ErrorCode(pre) != payloom.CodeValidation {
				t.Fatalf("precheckCard = %v; want a validation error", pre)
			}
			if tt.gap {
				if pre != nil || got == nil {
					t.Fatalf("precheckCard = %v, vault = %v; want the known gap (nil, an error)", pre, got)
				}
				return
			}
			if (pre == nil) != (got == nil) || payloom.ErrorParam(pre) != payloom.ErrorParam(got) {
				t.Fatalf("precheckCard = %v; the vault says %v", pre, got)
			}
		})
	}
}
