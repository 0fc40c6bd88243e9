package payloom_test

import (
	"strconv"
	"testing"

	"github.com/payloom/payloom"
)

func TestParseCurrency(t *testing.T) {
	tests := []struct {
		in      string
		want    payloom.Currency
		wantErr bool
	}{
		{"USD", "USD", false},
		{"usd", "USD", false},
		{"Brl", "BRL", false},
		{"JPY", "JPY", false},
		{"BHD", "BHD", false},
		{"XAU", "", true}, // no minor unit: not a payment currency
		{"ZZZ", "", true},
		{"US", "", true},
		{"USDD", "", true},
		{"", "", true},
		{"ÜSD", "", true},
	}
	for _, tt := range tests {
		got, err := payloom.ParseCurrency(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseCurrency(%q) = %q, %v; want %q, err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && payloom.ErrorParam(err) != "currency" {
			t.Errorf("ParseCurrency(%q) param = %q; want currency", tt.in, payloom.ErrorParam(err))
		}
	}
}

func TestCurrencyExponent(t *testing.T) {
	tests := []struct {
		c    payloom.Currency
		want int
	}{{"JPY", 0}, {"KRW", 0}, {"USD", 2}, {"EUR", 2}, {"BRL", 2}, {"BHD", 3}, {"KWD", 3}, {"CLF", 4}}
	for _, tt := range tests {
		if got, ok := tt.c.Exponent(); !ok || got != tt.want {
			t.Errorf("Currency(%q).Exponent() = %d, %v; want %d, true", tt.c, got, ok, tt.want)
		}
	}
	if n := payloom.Currencies(); n < 150 {
		t.Errorf("Currencies() = %d; want every active ISO 4217 code (>150)", n)
	}
}

func TestParseAmount(t *testing.T) {
	tests := []struct {
		in      string
		c       payloom.Currency
		want    int64
		wantErr bool
	}{
		{"10.50", "USD", 1050, false},
		{"10.5", "USD", 1050, false},
		{"10", "USD", 1000, false},
		{"0.01", "USD", 1, false},
		{"0", "USD", 0, false},
		{"007.00", "USD", 700, false},
		{"100", "JPY", 100, false},
		{"100.5", "JPY", 0, true},
		{"1.234", "BHD", 1234, false},
		{"1.2345", "BHD", 0, true},
		{"10.501", "USD", 0, true},
		{"92233720368547758.07", "USD", 9223372036854775807, false},
		{"92233720368547758.08", "USD", 0, true},
		{"-1.00", "USD", 0, true},
		{"+1.00", "USD", 0, true},
		{"1e3", "USD", 0, true},
		{"1,00", "USD", 0, true},
		{" 1.00", "USD", 0, true},
		{"1.", "USD", 0, true},
		{".5", "USD", 0, true},
		{"", "USD", 0, true},
		{"1.00", "XXX", 0, true},
	}
	for _, tt := range tests {
		got, err := payloom.ParseAmount(tt.in, tt.c)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseAmount(%q, %s) = %d, %v; want %d, err=%v", tt.in, tt.c, got, err, tt.want, tt.wantErr)
		}
		if err != nil && payloom.ErrorCode(err) != payloom.CodeValidation {
			t.Errorf("ParseAmount(%q, %s) code = %q; want %q", tt.in, tt.c, payloom.ErrorCode(err), payloom.CodeValidation)
		}
	}
}

func TestFormatAmount(t *testing.T) {
	tests := []struct {
		v    int64
		c    payloom.Currency
		want string
	}{
		{1050, "USD", "10.50"}, {1, "USD", "0.01"}, {0, "USD", "0.00"}, {100, "JPY", "100"},
		{1234, "BHD", "1.234"}, {5, "BHD", "0.005"}, {-250, "EUR", "-2.50"},
		{-9223372036854775808, "USD", "-92233720368547758.08"},
	}
	for _, tt := range tests {
		if got := payloom.FormatAmount(tt.v, tt.c); got != tt.want {
			t.Errorf("FormatAmount(%d, %s) = %q; want %q", tt.v, tt.c, got, tt.want)
		}
	}
}

// FuzzParseAmount checks that ParseAmount never panics, that every error is a
// validation error, and that an accepted amount formats back to an
// equivalent decimal that parses to the same value.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"10.50", "0", "1.234", "99999999", "1e5", "-1", "00.10", "9223372036854775807"} {
		f.Add(s, "USD")
		f.Add(s, "JPY")
		f.Add(s, "BHD")
	}
	f.Fuzz(func(t *testing.T, s, cur string) {
		c, err := payloom.ParseCurrency(cur)
		if err != nil {
			return
		}
		v, err := payloom.ParseAmount(s, c)
		if err != nil {
			if payloom.ErrorCode(err) != payloom.CodeValidation {
				t.Fatalf("ParseAmount(%q, %s) error code = %q; want validation_error", s, c, payloom.ErrorCode(err))
			}
			return
		}
		if v < 0 {
			t.Fatalf("ParseAmount(%q, %s) = %d; want >= 0", s, c, v)
		}
		back := payloom.FormatAmount(v, c)
		v2, err := payloom.ParseAmount(back, c)
		if err != nil || v2 != v {
			t.Fatalf("ParseAmount(FormatAmount(%d)) = %d, %v; want %d (format %q, input %q)", v, v2, err, v, back, s)
		}
		if exp, _ := c.Exponent(); exp == 0 && strconv.FormatInt(v, 10) != back {
			t.Fatalf("FormatAmount(%d, %s) = %q; want plain integer", v, c, back)
		}
	})
}
