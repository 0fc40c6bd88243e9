// Package vault is Payloom's card vault: the only package that ever holds a
// full card number at rest, and the keeper of the keys that protect it. It
// validates cards, encrypts their numbers with AES-256-GCM under their
// merchant's data-encryption key (envelope encryption: data keys are stored
// only wrapped by a key-encryption key from the keyring), fingerprints them
// with a separate HMAC key, keeps CVCs in memory only (never in the store),
// and reveals a card to the engine for exactly one processor call. It also
// rotates key-encryption keys (rewrapping every data key) and retires old
// ones.
//
// The vault must never put a card number, a CVC or key material in an
// error, a log line, a plain database column or anything that is printed;
// its keys redact themselves. Ciphertexts are bound to their data key,
// merchant, mode and token, and wrapped data keys to their KEK, merchant
// and ID, so that a ciphertext or a wrapped key copied into another row
// does not decrypt.
package vault

import (
	"context"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/internal/bin"
)

// DefaultCVCTTL is how long a CVC is held when Options.CVCTTL is zero.
const DefaultCVCTTL = 10 * time.Minute

// fingerprintLen is the length of a fingerprint in base64url characters
// (96 bits of the HMAC).
const fingerprintLen = 16

// nonceSize is the size of the random AES-GCM nonce.
const nonceSize = 12

// createDataKeyTries bounds how often the creation of a merchant's data
// key starts over after losing a race (another node creating the same
// merchant's key, or a rotation promoting a new KEK meanwhile).
const createDataKeyTries = 10

var _ payloom.Vault = (*Vault)(nil)

// Options configure a Vault.
type Options struct {
	// Clock gives the time for expiry checks, CVC lifetimes and CreatedAt.
	// Default time.Now.
	Clock payloom.Clock
	// CVCTTL is how long a CVC is held after tokenization. Default
	// DefaultCVCTTL.
	CVCTTL time.Duration
	// DataKeyCacheSize bounds how many merchants' unwrapped data keys are
	// kept in memory. Default DefaultDataKeyCacheSize.
	DataKeyCacheSize int
	// Logger receives the vault's warnings (never key material or card
	// data). Default: discarded.
	Logger *slog.Logger
}

// Vault implements payloom.Vault on a payloom.Store.
//
// CVCs live only in this process's memory. A payment whose authorization
// runs on another node than the tokenization (or after a restart) goes to
// the processor without a CVC.
type Vault struct {
	store  payloom.Store
	keys   *Keys
	clock  payloom.Clock
	cvcTTL time.Duration
	log    *slog.Logger
	deks   *dataKeyCache

	mu        sync.Mutex
	cvcs      map[cvcKey]heldCVC
	nextSweep time.Time
}

// cvcKey includes the scope so that ForgetCVC from another scope cannot
// touch a token it does not own.
type cvcKey struct {
	merchantID string
	livemode   bool
	token      string
}

type heldCVC struct {
	cvc     payloom.Secret
	expires time.Time
}

// New returns a vault that stores cards in store, encrypted under data keys
// wrapped by the keyring's keys.
func New(store payloom.Store, keys *Keys, opts Options) *Vault {
	if keys == nil {
		panic("vault: New with nil keys")
	}
	v := &Vault{
		store:  store,
		keys:   keys,
		clock:  opts.Clock,
		cvcTTL: opts.CVCTTL,
		log:    opts.Logger,
		cvcs:   make(map[cvcKey]heldCVC),
	}
	if v.clock == nil {
		v.clock = time.Now
	}
	if v.cvcTTL <= 0 {
		v.cvcTTL = DefaultCVCTTL
	}
	if v.log == nil {
		v.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	size := opts.DataKeyCacheSize
	if size <= 0 {
		size = DefaultDataKeyCacheSize
	}
	v.deks = newDataKeyCache(size)
	return v
}

// Tokenize validates a card, stores it encrypted under its merchant's data
// key (created on the merchant's first card) and holds its CVC in memory
// for the CVC TTL. Validation errors have code CodeValidation and one of
// the params card[number], card[exp_month], card[exp_year], card[cvc],
// card[holder_name]; their messages never contain the number or the CVC. A
// CVC is optional: without one the card is stored and revealed without a
// CVC.
func (v *Vault) Tokenize(ctx context.Context, scope payloom.Scope, in *payloom.CardInput) (*payloom.Token, error) {
	if in == nil {
		return nil, payloom.FieldError("card", "card is required")
	}
	if scope.MerchantID == "" {
		return nil, errors.New("vault: tokenize without a merchant")
	}
	now := v.clock().UTC()
	number, err := parseNumber(in.Number.Reveal())
	if err != nil {
		return nil, err
	}
	brand := detectBrand(number)
	year, err := parseExpiry(in.ExpMonth, in.ExpYear, now)
	if err != nil {
		return nil, err
	}
	cvc, err := parseCVC(in.CVC.Reveal(), brand)
	if err != nil {
		return nil, err
	}
	holder, err := parseHolderName(in.HolderName)
	if err != nil {
		return nil, err
	}
	dk, err := v.dataKeyFor(ctx, scope.MerchantID, true)
	if err != nil {
		return nil, &payloom.Error{Code: payloom.CodeInternal, Message: "the card cannot be encrypted", Err: err}
	}

	id := payloom.NewID(payloom.PrefixToken)
	card := &payloom.Card{
		ID:         id,
		MerchantID: scope.MerchantID,
		Livemode:   scope.Livemode,
		Summary: payloom.CardSummary{
			Token:       id,
			Brand:       brand,
			First6:      number[:6],
			Last4:       number[len(number)-4:],
			ExpMonth:    in.ExpMonth,
			ExpYear:     year,
			Fingerprint: v.fingerprint(scope.MerchantID, number),
			HolderName:  holder,
			// Only the leading digits are looked up, and only the
			// country is kept.
			Country: bin.Country(number[:min(len(number), bin.PrefixLen)], brand, scope.Livemode),
		},
		Ciphertext: sealCard(dk.aead, dk.id, scope, id, number),
		KeyID:      dk.id,
		// Milliseconds: what every store keeps, so the returned token
		// equals the stored one.
		CreatedAt: now.Truncate(time.Millisecond),
	}
	if err := v.store.Update(ctx, func(tx payloom.Tx) error {
		return tx.CreateCard(ctx, card)
	}); err != nil {
		return nil, fmt.Errorf("vault: store card: %w", err)
	}
	if cvc != "" {
		v.holdCVC(scope, id, payloom.Secret(cvc), now)
	}
	summary := card.Summary
	summary.Token = "" // the token's own id says it
	return &payloom.Token{
		ID:        id,
		Object:    "token",
		Livemode:  scope.Livemode,
		Card:      summary,
		CreatedAt: card.CreatedAt,
	}, nil
}

// Card returns the stored card of a token. CodeNotFound when the token does
// not exist in the scope.
func (v *Vault) Card(ctx context.Context, scope payloom.Scope, token string) (*payloom.Card, error) {
	var card *payloom.Card
	var cardErr error
	err := v.store.View(ctx, func(tx payloom.Tx) error {
		card, cardErr = v.CardIn(ctx, tx, scope, token)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("vault: get card: %w", err)
	}
	return card, cardErr
}

// CardIn is Card inside tx, a transaction on the vault's store that the
// caller holds: the engine reads a payment's card with its merchant.
func (v *Vault) CardIn(ctx context.Context, tx payloom.Tx, scope payloom.Scope, token string) (*payloom.Card, error) {
	if !payloom.HasPrefix(token, payloom.PrefixToken) {
		return nil, payloom.Errorf(payloom.CodeNotFound, "no such token")
	}
	card, err := tx.GetCard(ctx, scope, token)
	if payloom.IsCode(err, payloom.CodeNotFound) {
		return nil, payloom.Errorf(payloom.CodeNotFound, "no such token")
	}
	if err != nil {
		return nil, fmt.Errorf("vault: get card: %w", err)
	}
	return card, nil
}

// Reveal decrypts a token's card for one processor call, with its CVC if
// the CVC is still held. CodeNotFound as Card; CodeInternal ("card data
// cannot be decrypted") when the row does not decrypt under its merchant's
// data key for this scope and token (a ciphertext moved from another row,
// a data key this node cannot unwrap).
func (v *Vault) Reveal(ctx context.Context, scope payloom.Scope, token string) (*payloom.CardData, error) {
	card, err := v.Card(ctx, scope, token)
	if err != nil {
		return nil, err
	}
	number, err := v.decrypt(ctx, scope, card)
	if err != nil {
		return nil, &payloom.Error{Code: payloom.CodeInternal, Message: "card data cannot be decrypted", Err: err}
	}
	return v.cardData(scope, card, number), nil
}

// RevealCard is Reveal for a card read with Card: the payment path reads a
// token's card once, to check it, and reveals that copy. A copy that does
// not decrypt is read again: the row may have been re-encrypted since.
func (v *Vault) RevealCard(ctx context.Context, scope payloom.Scope, card *payloom.Card) (*payloom.CardData, error) {
	if card == nil || card.MerchantID != scope.MerchantID || card.Livemode != scope.Livemode {
		return nil, payloom.Errorf(payloom.CodeNotFound, "no such token")
	}
	number, err := v.decrypt(ctx, scope, card)
	if err != nil {
		return v.Reveal(ctx, scope, card.ID)
	}
	return v.cardData(scope, card, number), nil
}

func (v *Vault) cardData(scope payloom.Scope, card *payloom.Card, number string) *payloom.CardData {
	return &payloom.CardData{
		Number:     payloom.Secret(number),
		ExpMonth:   card.Summary.ExpMonth,
		ExpYear:    card.Summary.ExpYear,
		CVC:        v.heldCVC(scope, card.ID),
		HolderName: card.Summary.HolderName,
		Brand:      card.Summary.Brand,
	}
}

// decrypt opens a card row for the scope: under the merchant's data key, or
// for a card stored before envelope encryption, under the master key's
// derived card key.
func (v *Vault) decrypt(ctx context.Context, scope payloom.Scope, card *payloom.Card) (string, error) {
	switch {
	case payloom.HasPrefix(card.KeyID, payloom.PrefixDataKey):
		dk, err := v.dataKeyFor(ctx, scope.MerchantID, false)
		if err != nil {
			return "", fmt.Errorf("vault: card %s: %w", card.ID, err)
		}
		if dk.id != card.KeyID {
			return "", fmt.Errorf("vault: card %s is encrypted under data key %s, not under its merchant's %s",
				card.ID, card.KeyID, dk.id)
		}
		return openCard(dk.aead, dk.id, scope, card.ID, card)
	case card.KeyID == v.keys.master.id:
		return openCard(v.keys.master.legacy, card.KeyID, scope, card.ID, card)
	default:
		return "", fmt.Errorf("vault: card %s was encrypted under key %q, which is neither a data key nor this node's master key",
			card.ID, card.KeyID)
	}
}

// ForgetCVC drops the CVC held for a token, if any.
func (v *Vault) ForgetCVC(scope payloom.Scope, token string) {
	v.mu.Lock()
	delete(v.cvcs, cvcKey{scope.MerchantID, scope.Livemode, token})
	v.mu.Unlock()
}

func (v *Vault) holdCVC(scope payloom.Scope, token string, cvc payloom.Secret, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.sweepLocked(now)
	v.cvcs[cvcKey{scope.MerchantID, scope.Livemode, token}] = heldCVC{cvc: cvc, expires: now.Add(v.cvcTTL)}
}

func (v *Vault) heldCVC(scope payloom.Scope, token string) payloom.Secret {
	now := v.clock()
	v.mu.Lock()
	defer v.mu.Unlock()
	v.sweepLocked(now)
	k := cvcKey{scope.MerchantID, scope.Livemode, token}
	h, ok := v.cvcs[k]
	if !ok {
		return ""
	}
	if !now.Before(h.expires) {
		delete(v.cvcs, k)
		return ""
	}
	return h.cvc
}

// sweepLocked drops expired CVCs, at most once per tenth of the TTL so that
// the cost stays proportional to the tokenization rate. Lookups check the
// expiry themselves, so sweeping late never hands out a stale CVC.
func (v *Vault) sweepLocked(now time.Time) {
	if now.Before(v.nextSweep) {
		return
	}
	for k, h := range v.cvcs {
		if !now.Before(h.expires) {
			delete(v.cvcs, k)
		}
	}
	v.nextSweep = now.Add(v.cvcTTL / 10)
}

// heldCVCs returns how many CVCs are in memory (expired or not), for tests.
func (v *Vault) heldCVCs() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.cvcs)
}

// fingerprint identifies a card number within one merchant: the same number
// gives the same fingerprint for that merchant and an unrelated one for
// any other, so fingerprints cannot be joined across merchants. The key
// comes from the master key and never rotates with the key-encryption
// keys: a fingerprint must stay the same for as long as saved cards are
// recognised by it.
func (v *Vault) fingerprint(merchantID, number string) string {
	m := hmac.New(sha256.New, v.keys.fp)
	m.Write([]byte(merchantID))
	m.Write([]byte{0}) // merchant IDs never contain NUL: no ambiguity
	m.Write([]byte(number))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))[:fingerprintLen]
}

// cardAD binds a ciphertext to its row: key, merchant, mode and token.
// Decrypting with any other row's values fails authentication. The key is
// the data key's ID (or, for cards stored before envelope encryption, the
// master key's).
func cardAD(keyID string, scope payloom.Scope, token string) []byte {
	ad := make([]byte, 0, 96)
	ad = append(ad, "payloom/card/v1\x00"...)
	ad = append(ad, keyID...)
	ad = append(ad, 0)
	ad = append(ad, scope.MerchantID...)
	ad = append(ad, 0)
	ad = append(ad, scope.Mode()...)
	ad = append(ad, 0)
	ad = append(ad, token...)
	return ad
}

// sealCard encrypts a card number for its row.
func sealCard(aead cipher.AEAD, keyID string, scope payloom.Scope, token, number string) []byte {
	return seal(aead, []byte(number), cardAD(keyID, scope, token))
}

// openCard decrypts a card row for the given scope and token. Its errors
// say why without any card data.
func openCard(aead cipher.AEAD, keyID string, scope payloom.Scope, token string, card *payloom.Card) (string, error) {
	plain, err := open(aead, card.Ciphertext, cardAD(keyID, scope, token))
	if err != nil {
		return "", fmt.Errorf("vault: card %s: %w", token, err)
	}
	number := string(plain)
	clear(plain)
	// A row whose summary does not belong to its number is corrupt; refuse
	// it rather than charge a card the merchant does not see.
	if len(number) < minNumberLength || !luhn(number) ||
		number[:6] != card.Summary.First6 || number[len(number)-4:] != card.Summary.Last4 {
		return "", fmt.Errorf("vault: card %s: decrypted number does not match the stored summary", token)
	}
	return number, nil
}
