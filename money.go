package payloom

import (
	"math"
	"strconv"
	"strings"
)

// Currency is an upper-case ISO 4217 alphabetic code, e.g. "USD".
type Currency string

// currencyExponents lists the active ISO 4217 currencies with the number of
// digits after the decimal separator (the minor unit). Codes whose minor unit
// ISO gives as "N.A." (precious metals, XDR, XTS, XXX ...) are not currencies
// one can take a payment in and are absent on purpose.
var currencyExponents = map[Currency]int{
	// zero-decimal
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
	"PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
	"XPF": 0,
	// three-decimal
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	// four-decimal
	"CLF": 4, "UYW": 4,
	// two-decimal
	"AED": 2, "AFN": 2, "ALL": 2, "AMD": 2, "ANG": 2, "AOA": 2, "ARS": 2, "AUD": 2,
	"AWG": 2, "AZN": 2, "BAM": 2, "BBD": 2, "BDT": 2, "BGN": 2, "BMD": 2, "BND": 2,
	"BOB": 2, "BOV": 2, "BRL": 2, "BSD": 2, "BTN": 2, "BWP": 2, "BYN": 2, "BZD": 2,
	"CAD": 2, "CDF": 2, "CHE": 2, "CHF": 2, "CHW": 2, "CNY": 2, "COP": 2, "COU": 2,
	"CRC": 2, "CUP": 2, "CVE": 2, "CZK": 2, "DKK": 2, "DOP": 2, "DZD": 2, "EGP": 2,
	"ERN": 2, "ETB": 2, "EUR": 2, "FJD": 2, "FKP": 2, "GBP": 2, "GEL": 2, "GHS": 2,
	"GIP": 2, "GMD": 2, "GTQ": 2, "GYD": 2, "HKD": 2, "HNL": 2, "HTG": 2, "HUF": 2,
	"IDR": 2, "ILS": 2, "INR": 2, "IRR": 2, "JMD": 2, "KES": 2, "KGS": 2, "KHR": 2,
	"KPW": 2, "KYD": 2, "KZT": 2, "LAK": 2, "LBP": 2, "LKR": 2, "LRD": 2, "LSL": 2,
	"MAD": 2, "MDL": 2, "MGA": 2, "MKD": 2, "MMK": 2, "MNT": 2, "MOP": 2, "MRU": 2,
	"MUR": 2, "MVR": 2, "MWK": 2, "MXN": 2, "MXV": 2, "MYR": 2, "MZN": 2, "NAD": 2,
	"NGN": 2, "NIO": 2, "NOK": 2, "NPR": 2, "NZD": 2, "PAB": 2, "PEN": 2, "PGK": 2,
	"PHP": 2, "PKR": 2, "PLN": 2, "QAR": 2, "RON": 2, "RSD": 2, "RUB": 2, "SAR": 2,
	"SBD": 2, "SCR": 2, "SDG": 2, "SEK": 2, "SGD": 2, "SHP": 2, "SLE": 2, "SOS": 2,
	"SRD": 2, "SSP": 2, "STN": 2, "SVC": 2, "SYP": 2, "SZL": 2, "THB": 2, "TJS": 2,
	"TMT": 2, "TOP": 2, "TRY": 2, "TTD": 2, "TWD": 2, "TZS": 2, "UAH": 2, "USD": 2,
	"USN": 2, "UYU": 2, "UZS": 2, "VED": 2, "VES": 2, "WST": 2, "XCD": 2, "XCG": 2,
	"YER": 2, "ZAR": 2, "ZMW": 2, "ZWG": 2,
}

// ParseCurrency accepts a three-letter ISO 4217 code in any case and returns
// it in upper case. It fails with a validation error on param "currency" for
// anything that is not an active currency.
func ParseCurrency(s string) (Currency, error) {
	c := Currency(strings.ToUpper(s))
	if len(s) != 3 {
		return "", FieldError("currency", "currency must be a three-letter ISO 4217 code")
	}
	if _, ok := currencyExponents[c]; !ok {
		return "", FieldError("currency", "%q is not a supported ISO 4217 currency", s)
	}
	return c, nil
}

// Exponent returns the number of minor-unit digits of the currency (JPY 0,
// USD 2, BHD 3) and whether the currency is known.
func (c Currency) Exponent() (int, bool) {
	e, ok := currencyExponents[c]
	return e, ok
}

// Currencies returns the number of currencies Payloom accepts.
func Currencies() int { return len(currencyExponents) }

// ParseAmount converts a decimal string in major units ("10.50") into int64
// minor units for the currency (1050 for USD, 10 for "10" JPY, 10500 for
// "10.5" BHD). It accepts only plain non-negative decimals: digits with an
// optional fractional part of at most the currency's exponent. Signs,
// exponents, spaces, separators other than "." and values that overflow int64
// are refused with a validation error on param "amount".
func ParseAmount(s string, c Currency) (int64, error) {
	exp, ok := c.Exponent()
	if !ok {
		return 0, FieldError("currency", "%q is not a supported ISO 4217 currency", string(c))
	}
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" || (hasDot && frac == "") || !allDigits(intPart) || !allDigits(frac) {
		return 0, FieldError("amount", "amount must be a decimal number such as \"10.50\"")
	}
	if len(frac) > exp {
		return 0, FieldError("amount", "%s allows at most %d decimal places", c, exp)
	}
	frac += strings.Repeat("0", exp-len(frac))
	digits := strings.TrimLeft(intPart+frac, "0")
	if digits == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return 0, FieldError("amount", "amount is too large")
	}
	return v, nil
}

// FormatAmount renders minor units as a plain decimal string in major units
// ("10.50" for 1050 USD, "1050" for 1050 JPY). Negative amounts get a
// leading "-". Unknown currencies are rendered with two decimals.
func FormatAmount(v int64, c Currency) string {
	exp, ok := c.Exponent()
	if !ok {
		exp = 2
	}
	neg := v < 0
	var u uint64
	if neg {
		u = uint64(-(v + 1)) + 1 // safe for math.MinInt64
	} else {
		u = uint64(v)
	}
	s := strconv.FormatUint(u, 10)
	if exp > 0 {
		if len(s) <= exp {
			s = strings.Repeat("0", exp-len(s)+1) + s
		}
		s = s[:len(s)-exp] + "." + s[len(s)-exp:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Default amount limits of a merchant, in minor units.
const (
	DefaultMinAmount int64 = 1
	DefaultMaxAmount int64 = 99_999_999
	// MaxAmountLimit is the largest limit a merchant can be configured with.
	MaxAmountLimit int64 = math.MaxInt64
)
