package payloom

import (
	"context"
	"log/slog"
	"time"
)

// Secret holds a value that must never be shown: a card number, a CVC, an
// API key. Every way of printing it (fmt verbs, %#v, JSON, slog) gives
// "[REDACTED]"; only Reveal returns the value. Decoding JSON into a Secret
// works as for a string.
type Secret string

const redacted = "[REDACTED]"

// Reveal returns the secret value. Call it only where the value is used.
func (s Secret) Reveal() string { return string(s) }

func (s Secret) String() string               { return redacted }
func (s Secret) GoString() string             { return `"` + redacted + `"` }
func (s Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// CardBrand is the card network, detected from the number's prefix.
type CardBrand string

const (
	CardBrandVisa       CardBrand = "visa"
	CardBrandMastercard CardBrand = "mastercard"
	CardBrandAmex       CardBrand = "amex"
	CardBrandDiscover   CardBrand = "discover"
	CardBrandDiners     CardBrand = "diners"
	CardBrandJCB        CardBrand = "jcb"
	CardBrandUnionPay   CardBrand = "unionpay"
	CardBrandElo        CardBrand = "elo"
	CardBrandHipercard  CardBrand = "hipercard"
	CardBrandUnknown    CardBrand = "unknown"
)

// CardInput is a card as a client sends it for tokenization. Number and CVC
// are Secrets. HolderName is optional.
type CardInput struct {
	Number     Secret `json:"number"`
	ExpMonth   int    `json:"exp_month"`
	ExpYear    int    `json:"exp_year"`
	CVC        Secret `json:"cvc"`
	HolderName string `json:"holder_name,omitempty"`
}

// CardData is a revealed card handed by the vault to a processor connector
// for one call. It exists only in memory, for the duration of that call.
type CardData struct {
	Number     Secret
	ExpMonth   int
	ExpYear    int
	CVC        Secret // empty when no CVC is held any more
	HolderName string
	Brand      CardBrand
}

// CardSummary is all that responses ever show of a card: never more than
// the first six and last four digits. Country is the issuer's country (ISO
// 3166-1 alpha-2) as the vault found it from the number's leading digits
// when it tokenized the card, empty when unknown; it is kept, not derived
// again, so that a card routes the same way for as long as it exists.
type CardSummary struct {
	Token       string    `json:"token,omitempty"`
	Brand       CardBrand `json:"brand"`
	First6      string    `json:"first6"`
	Last4       string    `json:"last4"`
	ExpMonth    int       `json:"exp_month"`
	ExpYear     int       `json:"exp_year"`
	Fingerprint string    `json:"fingerprint"`
	HolderName  string    `json:"holder_name,omitempty"`
	Country     string    `json:"country,omitempty"`
}

// Card is a tokenized card (tok_...) as the vault stores it: the summary in
// clear, the number only as AES-256-GCM ciphertext. The CVC is never stored.
type Card struct {
	ID         string
	MerchantID string
	Livemode   bool
	Summary    CardSummary
	// Ciphertext is the encrypted card number (nonce included); KeyID names
	// the key that encrypted it. Both are opaque outside the vault.
	Ciphertext []byte
	KeyID      string
	CreatedAt  time.Time
}

// Token is the API representation of a tokenized card.
type Token struct {
	ID        string      `json:"id"`
	Object    string      `json:"object"` // "token"
	Livemode  bool        `json:"livemode"`
	Card      CardSummary `json:"card"`
	CreatedAt time.Time   `json:"created_at"`
}

// Vault is the only place a full card number exists at rest. It tokenizes
// cards, encrypts their numbers, keeps CVCs in memory only (until the first
// authorization or ten minutes, whichever comes first), and reveals a card
// to the engine for exactly one processor call.
type Vault interface {
	// Tokenize validates the card (Luhn, expiry in the future, CVC of 3 or
	// 4 digits) and stores it. Validation errors have code
	// CodeValidation and params "card[number]", "card[exp_month]",
	// "card[exp_year]", "card[cvc]".
	Tokenize(ctx context.Context, scope Scope, card *CardInput) (*Token, error)

	// Card returns the stored card of a token in the scope. CodeNotFound if
	// no such token exists in this scope.
	Card(ctx context.Context, scope Scope, token string) (*Card, error)

	// CardIn is Card inside tx, a transaction the caller holds on the
	// vault's store.
	CardIn(ctx context.Context, tx Tx, scope Scope, token string) (*Card, error)

	// Reveal decrypts a token's card for a processor call, with the CVC if
	// it is still held. CodeNotFound as Card.
	Reveal(ctx context.Context, scope Scope, token string) (*CardData, error)

	// RevealCard is Reveal for a card the caller read with Card moments
	// ago, without reading it again, unless that copy does not decrypt.
	// CodeNotFound if the card is not of the scope.
	RevealCard(ctx context.Context, scope Scope, card *Card) (*CardData, error)

	// ForgetCVC drops the CVC held for a token, if any. The engine calls it
	// after the first authorization attempt with the token.
	ForgetCVC(scope Scope, token string)
}
