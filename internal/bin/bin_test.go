package bin

import (
	"slices"
	"strings"
	"testing"

	"github.com/payloom/payloom"
)

// testCards are processors' documented test card numbers and the country
// each is documented to have (Stripe's "international cards" list, and the
// cards of Payloom's own sandbox and tests).
var testCards = []struct {
	number  string
	brand   payloom.CardBrand
	country string
}{
	{"4242424242424242", payloom.CardBrandVisa, "US"},
	{"4000056655665556", payloom.CardBrandVisa, "US"},
	{"5555555555554444", payloom.CardBrandMastercard, "US"},
	{"2223003122003222", payloom.CardBrandMastercard, "US"},
	{"5200828282828210", payloom.CardBrandMastercard, "US"},
	{"5105105105105100", payloom.CardBrandMastercard, "US"},
	{"378282246310005", payloom.CardBrandAmex, "US"},
	{"371449635398431", payloom.CardBrandAmex, "US"},
	{"6011111111111117", payloom.CardBrandDiscover, "US"},
	{"6011000990139424", payloom.CardBrandDiscover, "US"},
	{"3056930009020004", payloom.CardBrandDiners, "US"},
	{"36227206271667", payloom.CardBrandDiners, "US"},
	{"3566002020360505", payloom.CardBrandJCB, "JP"},
	// The sandbox's cards that decline, fail or ask for 3-D Secure.
	{"4000000000000002", payloom.CardBrandVisa, "US"},
	{"4000000000009995", payloom.CardBrandVisa, "US"},
	{"4000000000003220", payloom.CardBrandVisa, "US"},
	// Stripe's country test cards.
	{"4000000320000021", payloom.CardBrandVisa, "AR"},
	{"4000000760000002", payloom.CardBrandVisa, "BR"},
	{"4000001240000000", payloom.CardBrandVisa, "CA"},
	{"4000001520000001", payloom.CardBrandVisa, "CL"},
	{"4000001700000003", payloom.CardBrandVisa, "CO"},
	{"4000001880000005", payloom.CardBrandVisa, "CR"},
	{"4000002180000000", payloom.CardBrandVisa, "EC"},
	{"4000004840008001", payloom.CardBrandVisa, "MX"},
	{"5062210000000009", payloom.CardBrandMastercard, "MX"},
	{"4000005910000000", payloom.CardBrandVisa, "PA"},
	{"4000006000000066", payloom.CardBrandVisa, "PY"},
	{"4000006040000068", payloom.CardBrandVisa, "PE"},
	{"4000008580000003", payloom.CardBrandVisa, "UY"},
	{"4000007840000001", payloom.CardBrandVisa, "AE"},
	{"5200007840000022", payloom.CardBrandMastercard, "AE"},
	{"4000000400000008", payloom.CardBrandVisa, "AT"},
	{"4000000560000004", payloom.CardBrandVisa, "BE"},
	{"4000001000000000", payloom.CardBrandVisa, "BG"},
	{"4000001120000005", payloom.CardBrandVisa, "BY"},
	{"4000001910000009", payloom.CardBrandVisa, "HR"},
	{"4000001960000008", payloom.CardBrandVisa, "CY"},
	{"4000002030000002", payloom.CardBrandVisa, "CZ"},
	{"4000002080000001", payloom.CardBrandVisa, "DK"},
	{"4000002330000009", payloom.CardBrandVisa, "EE"},
	{"4000002460000001", payloom.CardBrandVisa, "FI"},
	{"4000002500000003", payloom.CardBrandVisa, "FR"},
	{"4000002760000016", payloom.CardBrandVisa, "DE"},
	{"4000002920000005", payloom.CardBrandVisa, "GI"},
	{"4000003000000030", payloom.CardBrandVisa, "GR"},
	{"4000003480000005", payloom.CardBrandVisa, "HU"},
	{"4000003720000005", payloom.CardBrandVisa, "IE"},
	{"4000003800000008", payloom.CardBrandVisa, "IT"},
	{"4000004280000005", payloom.CardBrandVisa, "LV"},
	{"4000004380000004", payloom.CardBrandVisa, "LI"},
	{"4000004400000000", payloom.CardBrandVisa, "LT"},
	{"4000004420000006", payloom.CardBrandVisa, "LU"},
	{"4000004700000007", payloom.CardBrandVisa, "MT"},
	{"4000005280000002", payloom.CardBrandVisa, "NL"},
	{"4000005780000007", payloom.CardBrandVisa, "NO"},
	{"4000006160000005", payloom.CardBrandVisa, "PL"},
	{"4000006200000007", payloom.CardBrandVisa, "PT"},
	{"4000006420000001", payloom.CardBrandVisa, "RO"},
	{"4000006820000007", payloom.CardBrandVisa, "SA"},
	{"4000007050000006", payloom.CardBrandVisa, "SI"},
	{"4000007030000001", payloom.CardBrandVisa, "SK"},
	{"4000007240000007", payloom.CardBrandVisa, "ES"},
	{"4000007520000008", payloom.CardBrandVisa, "SE"},
	{"4000007560000009", payloom.CardBrandVisa, "CH"},
	{"4000008260000000", payloom.CardBrandVisa, "GB"},
	{"4000058260000005", payloom.CardBrandVisa, "GB"},
	{"5555558265554449", payloom.CardBrandMastercard, "GB"},
	{"4000000360000006", payloom.CardBrandVisa, "AU"},
	{"4000001560000002", payloom.CardBrandVisa, "CN"},
	{"4000003440000004", payloom.CardBrandVisa, "HK"},
	{"4000003560000008", payloom.CardBrandVisa, "IN"},
	{"4000003920000003", payloom.CardBrandVisa, "JP"},
	{"3530111333300000", payloom.CardBrandJCB, "JP"},
	{"4000004580000002", payloom.CardBrandVisa, "MY"},
	{"4000005540000008", payloom.CardBrandVisa, "NZ"},
	{"4000007020000003", payloom.CardBrandVisa, "SG"},
	{"4000007640000003", payloom.CardBrandVisa, "TH"},
	{"4000057640000008", payloom.CardBrandVisa, "TH"},
	{"4000001580000008", payloom.CardBrandVisa, "TW"},
	// Brazil's domestic schemes, by brand.
	{"5066991111111118", payloom.CardBrandElo, "BR"},
	{"6062825624254001", payloom.CardBrandHipercard, "BR"},
	// Unknown: a range not in the table.
	{"4111111111111111", payloom.CardBrandVisa, ""},
	{"4000009990000005", payloom.CardBrandVisa, ""},
}

func luhn(digits string) bool {
	sum, double := 0, false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

func TestCountryOfTestCards(t *testing.T) {
	for _, tc := range testCards {
		if !luhn(tc.number) {
			t.Errorf("test card %s fails the luhn check: a typo in this table", tc.number)
		}
		if got := Country(tc.number[:PrefixLen], tc.brand, false); got != tc.country {
			t.Errorf("Country(%q, %s, test) = %q; want %q", tc.number[:PrefixLen], tc.brand, got, tc.country)
		}
		// Given the whole number, only the prefix counts.
		if got := Country(tc.number, tc.brand, false); got != tc.country {
			t.Errorf("Country(%q, %s, test) = %q; want %q", tc.number, tc.brand, got, tc.country)
		}
	}
}

// Live mode consults no test range: only the single-country schemes.
func TestCountryLiveMode(t *testing.T) {
	tests := []struct {
		number string
		brand  payloom.CardBrand
		want   string
	}{
		{"4242424242424242", payloom.CardBrandVisa, ""},
		{"4000000760000002", payloom.CardBrandVisa, ""},
		{"5066991111111118", payloom.CardBrandElo, "BR"},
		{"6062825624254001", payloom.CardBrandHipercard, "BR"},
	}
	for _, tt := range tests {
		if got := Country(tt.number[:PrefixLen], tt.brand, true); got != tt.want {
			t.Errorf("Country(%q, %s, live) = %q; want %q", tt.number[:PrefixLen], tt.brand, got, tt.want)
		}
	}
}

func TestCountryShortPrefix(t *testing.T) {
	tests := []struct {
		prefix string
		want   string
	}{
		{"", ""},
		{"4", ""},
		{"42424", ""},
		{"424242", "US"},
		{"40000007", ""}, // one digit short of the Brazilian range
		{"555555", "US"},
		{"55555582", "US"},
		{"555555826", "GB"},
	}
	for _, tt := range tests {
		if got := Country(tt.prefix, payloom.CardBrandUnknown, false); got != tt.want {
			t.Errorf("Country(%q) = %q; want %q", tt.prefix, got, tt.want)
		}
	}
}

// isoNumeric is the ISO 3166-1 numeric code of each country of Stripe's
// 400000NNN test ranges, typed independently of the table to check it.
var isoNumeric = map[string]string{
	"AR": "032", "BR": "076", "CA": "124", "CL": "152", "CO": "170", "CR": "188", "EC": "218", "MX": "484",
	"PA": "591", "PY": "600", "PE": "604", "UY": "858", "AE": "784", "AT": "040", "BE": "056", "BG": "100",
	"BY": "112", "HR": "191", "CY": "196", "CZ": "203", "DK": "208", "EE": "233", "FI": "246", "FR": "250",
	"DE": "276", "GI": "292", "GR": "300", "HU": "348", "IE": "372", "IT": "380", "LV": "428", "LI": "438",
	"LT": "440", "LU": "442", "MT": "470", "NL": "528", "NO": "578", "PL": "616", "PT": "620", "RO": "642",
	"SA": "682", "SI": "705", "SK": "703", "ES": "724", "SE": "752", "CH": "756", "GB": "826", "AU": "036",
	"CN": "156", "HK": "344", "IN": "356", "JP": "392", "MY": "458", "NZ": "554", "SG": "702", "TH": "764",
	"TW": "158",
}

func TestTable(t *testing.T) {
	for i, s := range spans {
		if len(s.lo) != len(s.hi) || s.lo > s.hi || len(s.lo) > PrefixLen || len(s.lo) < 6 {
			t.Errorf("span %d [%s, %s]: want lo <= hi, of equal length, 6 to %d digits", i, s.lo, s.hi, PrefixLen)
		}
		if strings.Trim(s.lo+s.hi, "0123456789") != "" {
			t.Errorf("span %d [%s, %s] has a non-digit", i, s.lo, s.hi)
		}
		if !IsCountry(s.country) {
			t.Errorf("span %d [%s, %s]: %q is not an ISO 3166-1 alpha-2 code", i, s.lo, s.hi, s.country)
		}
		if i > 0 && len(spans[i-1].lo) < len(s.lo) {
			t.Errorf("span %d [%s, %s] comes after a shorter one: the longest prefix must win", i, s.lo, s.hi)
		}
		// Two ranges of one length must not overlap: which one wins
		// would depend on the order.
		for j, o := range spans[:i] {
			if len(o.lo) == len(s.lo) && o.lo <= s.hi && s.lo <= o.hi {
				t.Errorf("spans %d [%s, %s] and %d [%s, %s] overlap", j, o.lo, o.hi, i, s.lo, s.hi)
			}
		}
		if (strings.HasPrefix(s.lo, "400000") || strings.HasPrefix(s.lo, "400005")) && len(s.lo) == 9 &&
			s.lo != "400000000" && s.lo != "400005665" {
			if want := isoNumeric[s.country]; s.lo[6:] != want {
				t.Errorf("span %s is %s, whose ISO numeric code is %q, not %q", s.lo, s.country, want, s.lo[6:])
			}
		}
	}
}

func TestIsCountry(t *testing.T) {
	if len(countries) != 249 {
		t.Errorf("len(countries) = %d; want the 249 assigned codes", len(countries))
	}
	if !slices.IsSorted(countries) || len(slices.Compact(slices.Clone(countries))) != len(countries) {
		t.Errorf("countries are not sorted and unique (IsCountry searches them)")
	}
	tests := []struct {
		code string
		want bool
	}{
		{"US", true}, {"BR", true}, {"GB", true}, {"ZW", true}, {"AD", true},
		{"us", false}, {"UK", false}, {"XK", false}, {"", false}, {"USA", false}, {"U", false},
	}
	for _, tt := range tests {
		if got := IsCountry(tt.code); got != tt.want {
			t.Errorf("IsCountry(%q) = %v; want %v", tt.code, got, tt.want)
		}
	}
}
