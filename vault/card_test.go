package vault

import (
	"strings"
	"testing"
	"time"

	"github.com/payloom/payloom"
)

// withCheckDigit appends the Luhn check digit to a string of digits.
func withCheckDigit(t *testing.T, body string) string {
	t.Helper()
	for d := byte('0'); d <= '9'; d++ {
		if s := body + string(d); luhn(s) {
			return s
		}
	}
	t.Fatalf("no check digit for %q", body)
	return ""
}

func hasDigit(s string) bool { return strings.ContainsAny(s, "0123456789") }

func TestLuhn(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"4242424242424242", true},
		{"5555555555554444", true},
		{"378282246310005", true},
		{"79927398713", true},
		{"0", true},
		{"79927398710", false},
		{"4242424242424241", false},
		{"1234567812345678", false},
		{"", false},
		{"42a2", false},
		{"4242 4242", false},
	} {
		if got := luhn(tc.in); got != tc.want {
			t.Errorf("luhn(%q) = %v; want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseNumber(t *testing.T) {
	valid19 := withCheckDigit(t, "400000000000000000")
	valid12 := withCheckDigit(t, "42424242424")
	valid20 := withCheckDigit(t, "4000000000000000000")
	valid11 := withCheckDigit(t, "4242424242")
	for _, tc := range []struct {
		in, want string
		wantErr  bool
	}{
		{"4242424242424242", "4242424242424242", false},
		{"4242 4242 4242 4242", "4242424242424242", false},
		{"4242-4242-4242-4242", "4242424242424242", false},
		{" 4242424242424242 ", "4242424242424242", false},
		{"3782 822463 10005", "378282246310005", false},
		{valid19, valid19, false},
		{valid12, valid12, false},
		{"", "", true},
		{"   ", "", true},
		{"4242424242424241", "", true},
		{"4242.4242.4242.4242", "", true},
		{"4242424242424242\n", "", true},
		{"４２４２４２４２４２４２４２４２", "", true}, // full-width digits
		{"+4242424242424242", "", true},
		{valid11, "", true},
		{valid20, "", true},
		{strings.Repeat("4", 1000), "", true},
		{strings.Repeat(" ", 1000), "", true},
	} {
		got, err := parseNumber(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseNumber(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
			continue
		}
		if err == nil {
			continue
		}
		if !payloom.IsCode(err, payloom.CodeValidation) || payloom.ErrorParam(err) != paramNumber {
			t.Errorf("parseNumber(%q) error = %v; want %s on %s", tc.in, err, payloom.CodeValidation, paramNumber)
		}
		if hasDigit(err.Error()) {
			t.Errorf("parseNumber(%q) error %q contains a digit; want none", tc.in, err)
		}
	}
}

func TestDetectBrand(t *testing.T) {
	for _, tc := range []struct {
		number string
		want   payloom.CardBrand
	}{
		{"4242424242424242", payloom.CardBrandVisa},
		{"4000056655665556", payloom.CardBrandVisa},
		{"4011770000000000", payloom.CardBrandVisa}, // next to Elo's 401178
		{"5555555555554444", payloom.CardBrandMastercard},
		{"5105105105105100", payloom.CardBrandMastercard},
		{"2221000000000009", payloom.CardBrandMastercard},
		{"2720990000000000", payloom.CardBrandMastercard},
		{"2220990000000000", payloom.CardBrandUnknown},
		{"2721000000000000", payloom.CardBrandUnknown},
		{"5600000000000000", payloom.CardBrandUnknown},
		{"378282246310005", payloom.CardBrandAmex},
		{"340000000000009", payloom.CardBrandAmex},
		{"6011111111111117", payloom.CardBrandDiscover},
		{"6445644564456445", payloom.CardBrandDiscover},
		{"6500000000000002", payloom.CardBrandDiscover},
		{"6500340000000000", payloom.CardBrandDiscover}, // between Elo ranges
		{"6550200000000000", payloom.CardBrandDiscover},
		{"6430000000000000", payloom.CardBrandUnknown},
		{"3056930009020004", payloom.CardBrandDiners},
		{"36227206271667", payloom.CardBrandDiners},
		{"38520000023237", payloom.CardBrandDiners},
		{"3095000000000000", payloom.CardBrandDiners},
		{"3841200000000000", payloom.CardBrandDiners},
		{"3060000000000000", payloom.CardBrandUnknown},
		{"3566002020360505", payloom.CardBrandJCB},
		{"3528000000000000", payloom.CardBrandJCB},
		{"3589000000000000", payloom.CardBrandJCB},
		{"3590000000000000", payloom.CardBrandUnknown},
		{"6200000000000005", payloom.CardBrandUnionPay},
		{"6250941006528599", payloom.CardBrandUnionPay},
		// Elo before Visa, Discover and UnionPay.
		{"4011780000000000", payloom.CardBrandElo},
		{"4011790000000000", payloom.CardBrandElo},
		{"4312740000000000", payloom.CardBrandElo},
		{"4389350000000000", payloom.CardBrandElo},
		{"4514160000000000", payloom.CardBrandElo},
		{"4573930000000000", payloom.CardBrandElo},
		{"5041750000000000", payloom.CardBrandElo},
		{"5066990000000000", payloom.CardBrandElo},
		{"5067780000000000", payloom.CardBrandElo},
		{"5067790000000000", payloom.CardBrandUnknown},
		{"5090000000000000", payloom.CardBrandElo},
		{"5099990000000000", payloom.CardBrandElo},
		{"6277800000000000", payloom.CardBrandElo},
		{"6362970000000000", payloom.CardBrandElo},
		{"6363680000000000", payloom.CardBrandElo},
		{"6500310000000000", payloom.CardBrandElo},
		{"6500330000000000", payloom.CardBrandElo},
		{"6505410000000000", payloom.CardBrandElo},
		{"6550210000000000", payloom.CardBrandElo},
		// Hipercard before Diners.
		{"6062825624254001", payloom.CardBrandHipercard},
		{"3841000000000000", payloom.CardBrandHipercard},
		{"3841400000000000", payloom.CardBrandHipercard},
		{"3841600000000000", payloom.CardBrandHipercard},
		{"1234567890123", payloom.CardBrandUnknown},
		{"9999999999999995", payloom.CardBrandUnknown},
		{"", payloom.CardBrandUnknown},
		{"3", payloom.CardBrandUnknown},
	} {
		if got := detectBrand(tc.number); got != tc.want {
			t.Errorf("detectBrand(%q) = %q; want %q", tc.number, got, tc.want)
		}
	}
}

func TestParseExpiry(t *testing.T) {
	now := time.Date(2026, time.March, 15, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		month, year int
		want        int
		wantParam   string
	}{
		{3, 2026, 2026, ""},
		{4, 2026, 2026, ""},
		{1, 2027, 2027, ""},
		{3, 26, 2026, ""},
		{1, 27, 2027, ""},
		{5, 2076, 2076, ""},
		{2, 2026, 0, paramExpMonth},
		{12, 2025, 0, paramExpYear},
		{5, 25, 0, paramExpYear},
		{0, 2027, 0, paramExpMonth},
		{13, 2027, 0, paramExpMonth},
		{-1, 2027, 0, paramExpMonth},
		{5, 2077, 0, paramExpYear},
		{5, 100, 0, paramExpYear},
		{5, 999, 0, paramExpYear},
		{5, 10000, 0, paramExpYear},
		{5, -1, 0, paramExpYear},
	} {
		got, err := parseExpiry(tc.month, tc.year, now)
		if got != tc.want || payloom.ErrorParam(err) != tc.wantParam || (err != nil) != (tc.wantParam != "") {
			t.Errorf("parseExpiry(%d, %d) = %d, %v; want %d, param %q", tc.month, tc.year, got, err, tc.want, tc.wantParam)
		}
	}
	// The expiry month is judged in UTC, whatever the clock's zone: at
	// 01:00 on 1 April in UTC+3 it is still March in UTC.
	local := time.Date(2026, time.April, 1, 1, 0, 0, 0, time.FixedZone("UTC+3", 3*3600))
	if _, err := parseExpiry(3, 2026, local); err != nil {
		t.Errorf("parseExpiry(3, 2026) at %v = %v; want valid", local, err)
	}
}

func TestParseCVC(t *testing.T) {
	for _, tc := range []struct {
		cvc     string
		brand   payloom.CardBrand
		want    string
		wantErr bool
	}{
		{"123", payloom.CardBrandVisa, "123", false},
		{"000", payloom.CardBrandMastercard, "000", false},
		{"1234", payloom.CardBrandAmex, "1234", false},
		{"1234", payloom.CardBrandUnknown, "1234", false},
		{"123", payloom.CardBrandUnknown, "123", false},
		{"", payloom.CardBrandVisa, "", false},
		{"123", payloom.CardBrandAmex, "", true},
		{"1234", payloom.CardBrandVisa, "", true},
		{"12", payloom.CardBrandUnknown, "", true},
		{"12345", payloom.CardBrandUnknown, "", true},
		{"12a", payloom.CardBrandVisa, "", true},
		{" 123", payloom.CardBrandVisa, "", true},
	} {
		got, err := parseCVC(tc.cvc, tc.brand)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("parseCVC(%q, %s) = %q, %v; want %q, error %v", tc.cvc, tc.brand, got, err, tc.want, tc.wantErr)
			continue
		}
		if err != nil && (payloom.ErrorParam(err) != paramCVC || hasDigit(err.Error())) {
			t.Errorf("parseCVC(%q, %s) error = %v; want param %s and no digits", tc.cvc, tc.brand, err, paramCVC)
		}
	}
}

func TestParseHolderName(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		wantErr  bool
	}{
		{"", "", false},
		{"  Jane Doe ", "Jane Doe", false},
		{"José Ñandú", "José Ñandú", false},
		{strings.Repeat("é", maxHolderNameLen), strings.Repeat("é", maxHolderNameLen), false},
		{strings.Repeat("a", maxHolderNameLen+1), "", true},
		{"Jane\nDoe", "", true},
		{"Jane\x00Doe", "", true},
		{"\xff", "", true},
	} {
		got, err := parseHolderName(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("parseHolderName(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
		if err != nil && payloom.ErrorParam(err) != paramHolderName {
			t.Errorf("parseHolderName(%q) param = %q; want %q", tc.in, payloom.ErrorParam(err), paramHolderName)
		}
	}
}
