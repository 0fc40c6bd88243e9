package api

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/payloom/payloom"
)

// precheckCard applies the vault's card rules (vault/card.go) before the
// Idempotency-Key is claimed, because a request rejected by validation must
// store nothing under its key, and Vault.Tokenize validates and stores in
// one call, after the claim. The rules are a copy; TestPrecheckCardAgrees
// checks them against the real vault on a table of cards. The root package
// should own one ValidateCard that both use (requested from the lead).
//
// Messages contain no run of three or more digits, so they can never echo a
// card number or CVC.
func precheckCard(in *payloom.CardInput, now time.Time) error {
	digits, err := precheckNumber(in.Number.Reveal())
	if err != nil {
		return err
	}
	if err := precheckExpiry(in.ExpMonth, in.ExpYear, now); err != nil {
		return err
	}
	if err := precheckCVC(in.CVC.Reveal(), digits); err != nil {
		return err
	}
	return precheckHolderName(in.HolderName)
}

func precheckNumber(s string) (string, error) {
	const param = "card[number]"
	if len(s) > 4*19 {
		return "", payloom.FieldError(param, "card number is too long")
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			if b.Len() == 19 {
				return "", payloom.FieldError(param, "card number is too long")
			}
			b.WriteByte(c)
		case c == ' ' || c == '-':
		default:
			return "", payloom.FieldError(param, "card number must contain only digits, spaces and dashes")
		}
	}
	n := b.String()
	switch {
	case n == "":
		return "", payloom.FieldError(param, "card number is required")
	case len(n) < 12:
		return "", payloom.FieldError(param, "card number is too short")
	case !luhn(n):
		return "", payloom.FieldError(param, "card number is invalid")
	}
	return n, nil
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
	return digits != "" && sum%10 == 0
}

func precheckExpiry(month, year int, now time.Time) error {
	if month < 1 || month > 12 {
		return payloom.FieldError("card[exp_month]", "exp_month must be between 1 and 12")
	}
	switch {
	case year >= 0 && year < 100:
		year += 2000
	case year < 1000 || year > 9999:
		return payloom.FieldError("card[exp_year]", "exp_year must have four digits")
	}
	now = now.UTC()
	cy, cm := now.Year(), int(now.Month())
	switch {
	case year < cy:
		return payloom.FieldError("card[exp_year]", "the card has expired")
	case year == cy && month < cm:
		return payloom.FieldError("card[exp_month]", "the card has expired")
	case year > cy+50:
		return payloom.FieldError("card[exp_year]", "exp_year is too far in the future")
	}
	return nil
}

// precheckCVC: three digits, four for American Express (34, 37), either
// for a number whose brand the vault does not know. The brand test is a
// superset check: only Amex takes four, and only numbers of no known brand
// take both, so a CVC the vault accepts is accepted here; a four-digit CVC
// on an unknown-brand number is left to the vault.
func precheckCVC(cvc, digits string) error {
	const param = "card[cvc]"
	if cvc == "" {
		return nil
	}
	for i := 0; i < len(cvc); i++ {
		if cvc[i] < '0' || cvc[i] > '9' {
			return payloom.FieldError(param, "cvc must contain only digits")
		}
	}
	if len(cvc) != 3 && len(cvc) != 4 {
		return payloom.FieldError(param, "cvc must have three or four digits")
	}
	amex := strings.HasPrefix(digits, "34") || strings.HasPrefix(digits, "37")
	if amex && len(cvc) != 4 {
		return payloom.FieldError(param, "cvc of an American Express card must have four digits")
	}
	return nil
}

func precheckHolderName(s string) error {
	const param = "card[holder_name]"
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > maxHolderNameLen {
		return payloom.FieldError(param, "holder_name is too long")
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return payloom.FieldError(param, "holder_name must not contain control characters")
	}
	return nil
}
