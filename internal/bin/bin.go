// Package bin tells where a card was issued from the leading digits of its
// number (the BIN, bank identification number): a small embedded table of
// BIN ranges and their issuing country (ISO 3166-1 alpha-2), and the list
// of country codes.
//
// The vault calls it once, when it tokenizes a card, with at most the
// first PrefixLen digits; the country it answers is stored with the card
// and is what routing rules match on. This package must never keep, log or
// return any digit it is given.
//
// The table is small on purpose. It knows the test cards of the processors
// Payloom speaks to (Stripe's documented country test cards, the sandbox's
// cards) and the domestic card schemes whose country is certain (Elo and
// Hipercard are issued only in Brazil). It is no commercial BIN database:
// in live mode only the scheme rules apply, since the test ranges overlap
// real issuers' ranges, and any other card's country is unknown ("").
package bin

import (
	"cmp"
	"slices"

	"github.com/payloom/payloom"
)

// PrefixLen is how many leading digits of a card number Country reads (the
// longest range in the table). Callers pass no more.
const PrefixLen = 9

// span maps the numbers whose first len(lo) digits lie within [lo, hi] to
// the country that issued them. test marks ranges known only from
// processors' test cards, which live mode does not consult.
type span struct {
	lo, hi  string
	country string
	test    bool
}

// spans is searched longest prefix first (sorted at init), so a specific
// range (555555826, a British Mastercard) wins over the broader one it is
// in (555555, American).
var spans = sortSpans([]span{
	// Stripe's test cards of its test mode (and the sandbox's, which
	// reuse them): US unless documented otherwise.
	{"424242", "424242", "US", true},       // Visa 4242 4242 4242 4242
	{"400000000", "400000000", "US", true}, // 4000 0000 0000 xxxx: declines, 3-D Secure
	{"400005665", "400005665", "US", true}, // Visa debit
	{"555555", "555555", "US", true},       // Mastercard 5555 5555 5555 4444
	{"222300", "222300", "US", true},       // Mastercard 2-series
	{"520082", "520082", "US", true},       // Mastercard debit
	{"510510", "510510", "US", true},       // Mastercard prepaid
	{"378282", "378282", "US", true},       // American Express
	{"371449", "371449", "US", true},       // American Express
	{"601111", "601111", "US", true},       // Discover
	{"601100", "601100", "US", true},       // Discover
	{"305693", "305693", "US", true},       // Diners Club
	{"362272", "362272", "US", true},       // Diners Club (14 digits)
	{"356600", "356600", "JP", true},       // JCB
	{"353011", "353011", "JP", true},       // JCB
	// Stripe's country test cards: 400000 then the country's ISO 3166
	// numeric code (4000 0007 6000 0002 is Brazilian: 076).
	{"400000032", "400000032", "AR", true},
	{"400000076", "400000076", "BR", true},
	{"400000124", "400000124", "CA", true},
	{"400000152", "400000152", "CL", true},
	{"400000170", "400000170", "CO", true},
	{"400000188", "400000188", "CR", true},
	{"400000218", "400000218", "EC", true},
	{"400000484", "400000484", "MX", true},
	{"400000591", "400000591", "PA", true},
	{"400000600", "400000600", "PY", true},
	{"400000604", "400000604", "PE", true},
	{"400000858", "400000858", "UY", true},
	{"400000784", "400000784", "AE", true},
	{"400000040", "400000040", "AT", true},
	{"400000056", "400000056", "BE", true},
	{"400000100", "400000100", "BG", true},
	{"400000112", "400000112", "BY", true},
	{"400000191", "400000191", "HR", true},
	{"400000196", "400000196", "CY", true},
	{"400000203", "400000203", "CZ", true},
	{"400000208", "400000208", "DK", true},
	{"400000233", "400000233", "EE", true},
	{"400000246", "400000246", "FI", true},
	{"400000250", "400000250", "FR", true},
	{"400000276", "400000276", "DE", true},
	{"400000292", "400000292", "GI", true},
	{"400000300", "400000300", "GR", true},
	{"400000348", "400000348", "HU", true},
	{"400000372", "400000372", "IE", true},
	{"400000380", "400000380", "IT", true},
	{"400000428", "400000428", "LV", true},
	{"400000438", "400000438", "LI", true},
	{"400000440", "400000440", "LT", true},
	{"400000442", "400000442", "LU", true},
	{"400000470", "400000470", "MT", true},
	{"400000528", "400000528", "NL", true},
	{"400000578", "400000578", "NO", true},
	{"400000616", "400000616", "PL", true},
	{"400000620", "400000620", "PT", true},
	{"400000642", "400000642", "RO", true},
	{"400000682", "400000682", "SA", true},
	{"400000703", "400000703", "SK", true},
	{"400000705", "400000705", "SI", true},
	{"400000724", "400000724", "ES", true},
	{"400000752", "400000752", "SE", true},
	{"400000756", "400000756", "CH", true},
	{"400000826", "400000826", "GB", true},
	{"400000036", "400000036", "AU", true},
	{"400000156", "400000156", "CN", true},
	{"400000158", "400000158", "TW", true},
	{"400000344", "400000344", "HK", true},
	{"400000356", "400000356", "IN", true},
	{"400000392", "400000392", "JP", true},
	{"400000458", "400000458", "MY", true},
	{"400000554", "400000554", "NZ", true},
	{"400000702", "400000702", "SG", true},
	{"400000764", "400000764", "TH", true},
	// The same scheme for debit cards (400005) and other networks.
	{"400005826", "400005826", "GB", true}, // Visa debit
	{"400005764", "400005764", "TH", true}, // Visa debit
	{"555555826", "555555826", "GB", true}, // Mastercard
	{"520000784", "520000784", "AE", true}, // Mastercard
	{"506221", "506221", "MX", true},       // Mastercard
})

func sortSpans(s []span) []span {
	slices.SortStableFunc(s, func(a, b span) int { return cmp.Compare(len(b.lo), len(a.lo)) })
	return s
}

// schemeCountries are the card schemes issued in one country only.
var schemeCountries = map[payloom.CardBrand]string{
	payloom.CardBrandElo:       "BR",
	payloom.CardBrandHipercard: "BR",
}

// Country returns the ISO 3166-1 alpha-2 code of the country that issued
// the card whose number starts with prefix (digits only, at most PrefixLen
// of them; more are ignored) and whose brand the vault detected, or "" when
// it is not known. In live mode the test ranges are skipped.
func Country(prefix string, brand payloom.CardBrand, livemode bool) string {
	if len(prefix) > PrefixLen {
		prefix = prefix[:PrefixLen]
	}
	for _, s := range spans {
		if s.test && livemode || len(prefix) < len(s.lo) {
			continue
		}
		// Equal-length digit strings compare like the numbers they hold.
		if p := prefix[:len(s.lo)]; p >= s.lo && p <= s.hi {
			return s.country
		}
	}
	return schemeCountries[brand]
}
