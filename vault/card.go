package vault

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/payloom/payloom"
)

// Parameter names of validation errors, in the API's bracket notation.
const (
	paramNumber     = "card[number]"
	paramExpMonth   = "card[exp_month]"
	paramExpYear    = "card[exp_year]"
	paramCVC        = "card[cvc]"
	paramHolderName = "card[holder_name]"
)

// Limits of card fields.
const (
	minNumberLength  = 12
	maxNumberLength  = 19
	maxHolderNameLen = 200 // characters
	// maxExpiryYears is how far in the future an expiry may be. Cards are
	// issued for at most a few years; a far-off year is a typo.
	maxExpiryYears = 50
)

// parseNumber normalises a card number: it removes spaces and dashes, then
// requires 12 to 19 digits that pass the luhn check. It returns the digits.
//
// Its errors are validation errors on "card[number]" whose messages contain
// no digit at all, so they can never echo any part of the number.
func parseNumber(s string) (string, error) {
	if len(s) > 4*maxNumberLength {
		return "", payloom.FieldError(paramNumber, "card number is too long")
	}
	var b strings.Builder
	b.Grow(maxNumberLength)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if b.Len() == maxNumberLength {
				return "", payloom.FieldError(paramNumber, "card number is too long")
			}
			b.WriteByte(c)
		case c == ' ' || c == '-':
		default:
			return "", payloom.FieldError(paramNumber, "card number must contain only digits, spaces and dashes")
		}
	}
	n := b.String()
	switch {
	case n == "":
		return "", payloom.FieldError(paramNumber, "card number is required")
	case len(n) < minNumberLength:
		return "", payloom.FieldError(paramNumber, "card number is too short")
	case !luhn(n):
		return "", payloom.FieldError(paramNumber, "card number is invalid")
	}
	return n, nil
}

// luhn reports whether a string of ASCII digits passes the luhn (mod 10)
// check. It is false for an empty string or any non-digit.
func luhn(digits string) bool {
	if digits == "" {
		return false
	}
	sum := 0
	double := false
	for i := len(digits) - 1; i >= 0; i-- {
		c := digits[i]
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// binRange maps the numbers whose first len(lo) digits lie within [lo, hi]
// to a brand.
type binRange struct {
	lo, hi string
	brand  payloom.CardBrand
}

// brandRanges is searched in order, so the specific Brazilian ranges (Elo,
// Hipercard) come before the broad Visa, Discover, Diners and UnionPay
// prefixes that contain them. Elo's ranges follow the list the card
// networks publish to wallets (as used by Braintree's credit-card-type).
var brandRanges = []binRange{
	// Elo
	{"401178", "401179", payloom.CardBrandElo},
	{"431274", "431274", payloom.CardBrandElo},
	{"438935", "438935", payloom.CardBrandElo},
	{"451416", "451416", payloom.CardBrandElo},
	{"457393", "457393", payloom.CardBrandElo},
	{"457631", "457632", payloom.CardBrandElo},
	{"504175", "504175", payloom.CardBrandElo},
	{"506699", "506778", payloom.CardBrandElo},
	{"509000", "509999", payloom.CardBrandElo},
	{"627780", "627780", payloom.CardBrandElo},
	{"636297", "636297", payloom.CardBrandElo},
	{"636368", "636368", payloom.CardBrandElo},
	{"650031", "650033", payloom.CardBrandElo},
	{"650035", "650051", payloom.CardBrandElo},
	{"650405", "650439", payloom.CardBrandElo},
	{"650485", "650538", payloom.CardBrandElo},
	{"650541", "650598", payloom.CardBrandElo},
	{"650700", "650718", payloom.CardBrandElo},
	{"650720", "650727", payloom.CardBrandElo},
	{"650901", "650978", payloom.CardBrandElo},
	{"651652", "651679", payloom.CardBrandElo},
	{"655000", "655019", payloom.CardBrandElo},
	{"655021", "655058", payloom.CardBrandElo},
	// Hipercard
	{"606282", "606282", payloom.CardBrandHipercard},
	{"384100", "384100", payloom.CardBrandHipercard},
	{"384140", "384140", payloom.CardBrandHipercard},
	{"384160", "384160", payloom.CardBrandHipercard},
	// The international networks.
	{"34", "34", payloom.CardBrandAmex},
	{"37", "37", payloom.CardBrandAmex},
	{"4", "4", payloom.CardBrandVisa},
	{"51", "55", payloom.CardBrandMastercard},
	{"2221", "2720", payloom.CardBrandMastercard},
	{"6011", "6011", payloom.CardBrandDiscover},
	{"644", "649", payloom.CardBrandDiscover},
	{"65", "65", payloom.CardBrandDiscover},
	{"300", "305", payloom.CardBrandDiners},
	{"3095", "3095", payloom.CardBrandDiners},
	{"36", "36", payloom.CardBrandDiners},
	{"38", "39", payloom.CardBrandDiners},
	{"3528", "3589", payloom.CardBrandJCB},
	{"62", "62", payloom.CardBrandUnionPay},
}

// detectBrand returns the brand of a card number (digits only) from its
// prefix, or CardBrandUnknown.
func detectBrand(digits string) payloom.CardBrand {
	for _, r := range brandRanges {
		if len(digits) < len(r.lo) {
			continue
		}
		// Equal-length digit strings compare like the numbers they hold.
		p := digits[:len(r.lo)]
		if p >= r.lo && p <= r.hi {
			return r.brand
		}
	}
	return payloom.CardBrandUnknown
}

// parseExpiry validates an expiry month and year against now: month 1-12,
// year with four digits (two digits mean 20xx), not in the past (a card is
// valid through the last day of its expiry month, taken in UTC) and at most
// maxExpiryYears ahead. It returns the four-digit year.
func parseExpiry(month, year int, now time.Time) (int, error) {
	if month < 1 || month > 12 {
		return 0, payloom.FieldError(paramExpMonth, "exp_month must be between 1 and 12")
	}
	switch {
	case year >= 0 && year < 100:
		year += 2000
	case year < 1000 || year > 9999:
		return 0, payloom.FieldError(paramExpYear, "exp_year must have four digits")
	}
	now = now.UTC()
	cy, cm := now.Year(), int(now.Month())
	switch {
	case year < cy:
		return 0, payloom.FieldError(paramExpYear, "the card has expired")
	case year == cy && month < cm:
		return 0, payloom.FieldError(paramExpMonth, "the card has expired")
	case year > cy+maxExpiryYears:
		return 0, payloom.FieldError(paramExpYear, "exp_year is too far in the future")
	}
	return year, nil
}

// parseCVC validates a card security code: three digits, or four for
// American Express (whose CID has four). An unknown brand may have either.
// An empty CVC is allowed (the card is then stored without one) and returns
// "". Like parseNumber's, its errors contain no digits.
func parseCVC(cvc string, brand payloom.CardBrand) (string, error) {
	if cvc == "" {
		return "", nil
	}
	for i := 0; i < len(cvc); i++ {
		if cvc[i] < '0' || cvc[i] > '9' {
			return "", payloom.FieldError(paramCVC, "cvc must contain only digits")
		}
	}
	switch {
	case brand == payloom.CardBrandAmex && len(cvc) != 4:
		return "", payloom.FieldError(paramCVC, "cvc of an American Express card must have four digits")
	case brand != payloom.CardBrandAmex && brand != payloom.CardBrandUnknown && len(cvc) != 3:
		return "", payloom.FieldError(paramCVC, "cvc must have three digits")
	case len(cvc) != 3 && len(cvc) != 4:
		return "", payloom.FieldError(paramCVC, "cvc must have three or four digits")
	}
	return cvc, nil
}

// parseHolderName validates an optional card holder name: valid UTF-8, no
// control characters, at most maxHolderNameLen characters. Surrounding
// white space is removed.
func parseHolderName(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		return "", payloom.FieldError(paramHolderName, "holder_name must be valid UTF-8")
	}
	if utf8.RuneCountInString(s) > maxHolderNameLen {
		return "", payloom.FieldError(paramHolderName, "holder_name must be at most %d characters", maxHolderNameLen)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", payloom.FieldError(paramHolderName, "holder_name must not contain control characters")
		}
	}
	return s, nil
}
