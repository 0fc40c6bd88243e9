package payloom

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"math/bits"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// This file holds what the hosted payment page, 3-D Secure and receipts add
// to the domain: a payment created without a payment method is paid by the
// shopper on a page Payloom serves (payment_url), the shopper may have to
// authenticate with the card's issuer (requires_action, next_action), and a
// captured payment has a printable receipt (receipt_url).

// LineItem is one line of what a payment is for, shown on the hosted page
// and the receipt. The line items of a payment, Amount times Quantity
// summed, equal the payment's amount.
type LineItem struct {
	Description string `json:"description"`
	// Amount is the unit price in the currency's minor unit.
	Amount   int64 `json:"amount"`
	Quantity int64 `json:"quantity"`
}

// Limits of a payment's page options.
const (
	MaxLineItems         = 100
	MaxLineItemQuantity  = 1_000_000
	MaxLineItemDescLen   = 200  // characters
	MaxRedirectURLLength = 2048 // bytes, success_url, failure_url and return_url
)

// DefaultPaymentExpiry is how long a payment created without a payment
// method may be paid when the request does not say; MaxPaymentExpiry is the
// longest it may be given.
var (
	DefaultPaymentExpiry = Duration{Days: 30}
	MaxPaymentExpiry     = 31 * 24 * time.Hour
)

// PaymentPage is the part of a payment that serves the shopper-facing pages.
// It is embedded in Payment, so its JSON fields are the payment's.
//
// PaymentURL and ReceiptURL are not stored: the engine composes them on the
// payments it returns. PaymentURL (which carries the page secret) is shown
// only in the response that created the payment; ReceiptURL on every
// captured payment that has a receipt secret.
type PaymentPage struct {
	PaymentURL string     `json:"payment_url,omitempty"`
	ReceiptURL string     `json:"receipt_url,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	LineItems  []LineItem `json:"line_items,omitempty"`
	SuccessURL string     `json:"success_url,omitempty"`
	FailureURL string     `json:"failure_url,omitempty"`
	ReturnURL  string     `json:"return_url,omitempty"`

	// PageSecretHash is the SHA-256 of the payment page's secret; only
	// payments created without a payment method have one. Such a payment
	// goes back to requires_payment_method after a decline, so that the
	// shopper may try another card.
	PageSecretHash []byte `json:"-"`
	// ReceiptSecret opens the payment's receipt. It is kept as it is
	// (a receipt is shown again and again, and it moves no money).
	ReceiptSecret Secret `json:"-"`
	// ConfirmAttemptID is the first attempt of the payment's latest
	// confirmation. Routing counts only the attempts from it on: each card
	// the shopper tries is routed anew, with the whole route and the
	// attempt limit to itself.
	ConfirmAttemptID string `json:"-"`
}

// HasPage reports whether the payment was created to be paid on the hosted
// page (or confirmed later through the API).
func (pg *PaymentPage) HasPage() bool { return len(pg.PageSecretHash) > 0 }

// AttemptsExhausted reports whether p made max processor attempts or more
// (the engine's MaxPaymentAttempts): it takes no further card, and the
// hosted page says so instead of showing its form.
func AttemptsExhausted(p *Payment, max int) bool { return len(p.Attempts) >= max }

// PageOptions are the hosted-page fields of a PaymentCreate.
type PageOptions struct {
	LineItems  []LineItem
	SuccessURL string
	FailureURL string
	ReturnURL  string
	// At most one of ExpiresAt and ExpiresIn is set; neither means
	// DefaultPaymentExpiry. They apply only to payments created without a
	// payment method.
	ExpiresAt *time.Time
	ExpiresIn *Duration
}

// ValidatePage checks the page options of a payment request, for a payment
// of req.Amount in the mode given, at now, and returns when the payment
// expires: nil for a payment created with a payment method, which never
// expires. The API and the engine both call it. Errors are validation
// errors naming the parameter in the API's bracket notation
// ("line_items[2][quantity]", "expires_in", "success_url").
func ValidatePage(req *PaymentCreate, livemode bool, now time.Time) (*time.Time, error) {
	o := &req.PageOptions
	unpaid := req.CardToken == "" && req.PaymentMethodType == ""
	if err := ValidateLineItems(o.LineItems, req.Amount); err != nil {
		return nil, err
	}
	for _, u := range []struct{ param, value string }{
		{"success_url", o.SuccessURL}, {"failure_url", o.FailureURL}, {"return_url", o.ReturnURL},
	} {
		if u.value == "" {
			continue
		}
		if err := ValidateRedirectURL(u.param, u.value, livemode); err != nil {
			return nil, err
		}
		if !unpaid && u.param != "return_url" {
			return nil, FieldError(u.param, "%s applies only to payments created without payment_method (paid on the hosted page)", u.param)
		}
	}
	switch {
	case o.ExpiresAt != nil && o.ExpiresIn != nil:
		return nil, FieldError("expires_at", "give expires_in or expires_at, not both")
	case !unpaid && o.ExpiresAt != nil:
		return nil, FieldError("expires_at", "expires_at applies only to payments created without payment_method")
	case !unpaid && o.ExpiresIn != nil:
		return nil, FieldError("expires_in", "expires_in applies only to payments created without payment_method")
	case !unpaid:
		return nil, nil
	}
	param, at := "expires_in", DefaultPaymentExpiry.AddTo(now)
	switch {
	case o.ExpiresAt != nil:
		param, at = "expires_at", *o.ExpiresAt
	case o.ExpiresIn != nil:
		at = o.ExpiresIn.AddTo(now)
	}
	// Stores keep microseconds: what is returned is what is read back.
	at = at.UTC().Truncate(time.Microsecond)
	if !at.After(now) {
		return nil, FieldError(param, "%s must be in the future", param)
	}
	if at.Sub(now) > MaxPaymentExpiry {
		return nil, FieldError(param, "%s may be at most 31 days (P31D) away", param)
	}
	return &at, nil
}

// ValidateLineItems checks line items against the payment's amount: at most
// MaxLineItems, each with a description of 1 to MaxLineItemDescLen
// characters without control characters, a unit amount of at least 0 and a
// quantity of 1 to MaxLineItemQuantity, summing exactly to amount. No
// line items at all is valid.
func ValidateLineItems(items []LineItem, amount int64) error {
	if len(items) == 0 {
		return nil
	}
	if len(items) > MaxLineItems {
		return FieldError("line_items", "line_items may have at most %d entries", MaxLineItems)
	}
	var sum uint64
	for i, li := range items {
		param := "line_items[" + strconv.Itoa(i) + "]"
		switch n := utf8.RuneCountInString(li.Description); {
		case n == 0:
			return FieldError(param+"[description]", "%s[description] is required", param)
		case n > MaxLineItemDescLen:
			return FieldError(param+"[description]", "%s[description] must be at most %d characters", param, MaxLineItemDescLen)
		case strings.ContainsFunc(li.Description, isControlRune) || !utf8.ValidString(li.Description):
			return FieldError(param+"[description]", "%s[description] must not contain control characters", param)
		}
		if li.Amount < 0 {
			return FieldError(param+"[amount]", "%s[amount] must be 0 or more, in the currency's minor unit", param)
		}
		if li.Quantity < 1 || li.Quantity > MaxLineItemQuantity {
			return FieldError(param+"[quantity]", "%s[quantity] must be from 1 to %d", param, MaxLineItemQuantity)
		}
		hi, line := bits.Mul64(uint64(li.Amount), uint64(li.Quantity))
		total, carry := bits.Add64(sum, line, 0)
		if hi != 0 || carry != 0 || total > uint64(amount) {
			return FieldError("line_items", "the line items add up to more than the amount")
		}
		sum = total
	}
	if sum != uint64(amount) {
		return FieldError("line_items", "the line items (amount times quantity) must add up to the payment's amount")
	}
	return nil
}

func isControlRune(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// ValidateRedirectURL checks a URL Payloom sends the shopper's browser to:
// absolute http or https (https only in live mode), with a host, without
// credentials, at most MaxRedirectURLLength bytes.
func ValidateRedirectURL(param, s string, livemode bool) error {
	if len(s) > MaxRedirectURLLength {
		return FieldError(param, "%s must be at most %d bytes", param, MaxRedirectURLLength)
	}
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return FieldError(param, "%s must be an absolute http or https URL", param)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return FieldError(param, "%s must be an absolute http or https URL", param)
	case livemode && u.Scheme != "https":
		return FieldError(param, "%s must be an https URL in live mode", param)
	case u.User != nil:
		return FieldError(param, "%s must not contain credentials", param)
	}
	return nil
}

// WithPaymentID returns a redirect URL with payment_id=id added to its
// query, for the merchant's page to look the payment up.
func WithPaymentID(rawURL, id string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL // validated when stored; cannot happen
	}
	q := u.Query()
	q.Set("payment_id", id)
	u.RawQuery = q.Encode()
	return u.String()
}

// PaymentConfirm is a validated request to pay a payment that is in
// requires_payment_method.
type PaymentConfirm struct {
	CardToken string
	// ReturnURL, if set, replaces the payment's return_url: where the
	// shopper lands after authenticating with the issuer.
	ReturnURL string
}

// Shopper-facing paths, relative to the server's public base URL. The
// engine composes URLs with them and the hosted page serves them.
const (
	PaymentPagePathPrefix = "/pay/"
	ReceiptPathPrefix     = "/receipts/"
)

// PaymentPageURL is the link a shopper pays a payment with.
func PaymentPageURL(base, paymentID, secret string) string {
	return base + PaymentPagePathPrefix + paymentID + "?s=" + secret
}

// PaymentCompleteURL is where a shopper comes back to after authenticating
// with the issuer (3-D Secure): Payloom records the outcome there and sends
// the shopper on to the merchant or the payment page.
func PaymentCompleteURL(base, paymentID string) string {
	return base + PaymentPagePathPrefix + paymentID + "/complete"
}

// ReceiptPageURL is the link to a captured payment's receipt.
func ReceiptPageURL(base, paymentID, secret string) string {
	return base + ReceiptPathPrefix + paymentID + "?s=" + secret
}

// NewPageSecret returns a fresh random secret for a payment page or a
// receipt: 256 bits, URL-safe base64 without padding (43 characters).
func NewPageSecret() Secret {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("payloom: crypto/rand failed: " + err.Error())
	}
	return Secret(base64.RawURLEncoding.EncodeToString(b[:]))
}

// HashPageSecret returns what is stored of a page secret. The secret has 256
// random bits, so a plain SHA-256 is enough: there is nothing to guess.
func HashPageSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// PageSecretMatches reports, in constant time, whether secret hashes to
// hash. An empty hash matches nothing.
func PageSecretMatches(hash []byte, secret string) bool {
	if len(hash) != sha256.Size || secret == "" {
		return false
	}
	return subtle.ConstantTimeCompare(hash, HashPageSecret(secret)) == 1
}

// SecretMatches compares two secrets in constant time; an empty want matches
// nothing.
func SecretMatches(want Secret, got string) bool {
	if want == "" || got == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(want.Reveal())), sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// CheckoutService is what the hosted payment page, the receipt page and the
// confirm endpoint of the API call on the engine.
type CheckoutService interface {
	// ConfirmPayment pays a payment that is in requires_payment_method
	// with a card token, like CreatePayment does (same phases, the same
	// opKey semantics: a retry resumes; the same routing and fallback:
	// after a soft decline or a failure before sending, the next processor
	// of the route is tried, a hard decline stops, an unknown outcome stays
	// processing at its processor). A decline is not an error: the payment
	// comes back in requires_payment_method with Failure set, and another
	// card may be tried, routed anew. Codes: CodeNotFound; CodeInvalidState
	// when the payment is not in requires_payment_method (another card is
	// being tried, it is paid, canceled or expired; a payment found past
	// its expiry is expired on the spot) or no processor can take it;
	// CodeValidation (param
	// "payment_method[card][token]" for an unknown token, "return_url").
	ConfirmPayment(ctx context.Context, scope Scope, opKey, id string, req *PaymentConfirm) (*Payment, error)

	// CompleteAuthentication asks the processor what became of the
	// authentication of a payment in requires_action and records the
	// outcome (authorized and perhaps captured, or declined with
	// authentication_failed), with details the parameters the shopper's
	// browser brought back from the issuer (Adyen's redirectResult; the
	// processor reads only what it knows). An outcome that allows a
	// fallback (a soft decline) sends the payment to the next processor
	// of its route, as an authorization's would. A payment in any other
	// status, or whose authentication is not finished, or whose details
	// the processor refuses, is returned as it is; calling it again is
	// harmless. It takes no scope: it is called from the shopper's
	// browser coming back from the issuer, which carries no credential,
	// and it reveals nothing by itself. Callers must not show the payment
	// to the shopper without checking a page secret. CodeNotFound;
	// CodeUnavailable when the processor does not answer.
	CompleteAuthentication(ctx context.Context, id string, details map[string]string) (*Payment, error)

	// PagePayment returns the payment a page secret opens. CodeNotFound
	// when no payment has that ID or the secret is not that payment's:
	// the same answer for both, so that a secret reveals nothing about
	// any other payment.
	PagePayment(ctx context.Context, id, secret string) (*Payment, error)

	// ReceiptPayment returns the payment a receipt secret opens, with its
	// refunds (oldest first) and the time it was captured. CodeNotFound as
	// PagePayment, and also when the payment is not captured.
	ReceiptPayment(ctx context.Context, id, secret string) (*Receipt, error)
}

// Receipt is what a receipt page shows.
type Receipt struct {
	Payment    *Payment
	Merchant   *Merchant
	CapturedAt time.Time
	Refunds    []*Refund
}

// CheckoutTx is the part of Tx the hosted page and the expiry job need.
type CheckoutTx interface {
	// FindPayment returns a payment by ID whatever its scope, with its
	// attempts. Only for requests that authenticate with something other
	// than an API key (a page secret, checked right after). CodeNotFound.
	FindPayment(ctx context.Context, id string) (*Payment, error)
	// ListExpiredPayments returns payments (any scope) in
	// requires_payment_method whose ExpiresAt is at or before now, earliest
	// expiry first, at most limit, with their attempts.
	ListExpiredPayments(ctx context.Context, now time.Time, limit int) ([]*Payment, error)
}
