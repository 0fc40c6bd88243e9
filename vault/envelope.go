package vault

import (
	"container/list"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"log/slog"
	"sync"
)

// Envelope encryption: each merchant's card numbers are encrypted under
// the merchant's data-encryption key (DEK, 32 random bytes), which the
// store holds only wrapped (AES-256-GCM) by a key-encryption key (KEK).
// Rotating a KEK rewraps the data keys (a few bytes per merchant) instead
// of re-encrypting every card.

// dekSize is the size of a data-encryption key.
const dekSize = 32

// DefaultDataKeyCacheSize is how many unwrapped data keys a vault keeps in
// memory when Options.DataKeyCacheSize is zero.
const DefaultDataKeyCacheSize = 10000

// wrapAD binds a wrapped data key to its row: the KEK that wraps it, its
// merchant and its ID. A wrapped key copied to another merchant's row, or
// relabelled as wrapped by another KEK, does not unwrap.
func wrapAD(kekID, merchantID, dekID string) []byte {
	ad := make([]byte, 0, 96)
	ad = append(ad, "payloom/dek/v1\x00"...)
	ad = append(ad, kekID...)
	ad = append(ad, 0)
	ad = append(ad, merchantID...)
	ad = append(ad, 0)
	ad = append(ad, dekID...)
	return ad
}

// seal encrypts plain under aead with a fresh random nonce and returns
// nonce||ciphertext||tag.
func seal(aead cipher.AEAD, plain, ad []byte) []byte {
	out := make([]byte, nonceSize, nonceSize+len(plain)+aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		panic("vault: crypto/rand failed: " + err.Error())
	}
	return aead.Seal(out, out, plain, ad)
}

// open reverses seal. Its errors carry no data.
func open(aead cipher.AEAD, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < nonceSize+aead.Overhead() {
		return nil, fmt.Errorf("ciphertext too short")
	}
	return aead.Open(nil, sealed[:nonceSize], sealed[nonceSize:], ad)
}

// wrap encrypts a data key under the KEK for its merchant and ID.
func (k *kek) wrap(merchantID, dekID string, dek []byte) []byte {
	return seal(k.aead, dek, wrapAD(k.id, merchantID, dekID))
}

// unwrap decrypts a wrapped data key of the merchant and ID.
func (k *kek) unwrap(merchantID, dekID string, wrapped []byte) ([]byte, error) {
	dek, err := open(k.aead, wrapped, wrapAD(k.id, merchantID, dekID))
	if err != nil {
		return nil, err
	}
	if len(dek) != dekSize {
		clear(dek)
		return nil, fmt.Errorf("unwrapped data key has %d bytes", len(dek))
	}
	return dek, nil
}

// dataKey is a merchant's unwrapped data key, ready to encrypt and decrypt
// that merchant's card numbers. Only the cipher is kept, not the raw key,
// and every printout is redacted: a %+v of the cipher would show its key
// schedule.
type dataKey struct {
	id         string
	merchantID string
	aead       cipher.AEAD
}

func newDataKey(id, merchantID string, raw []byte) *dataKey {
	return &dataKey{id: id, merchantID: merchantID, aead: newAEAD(raw)}
}

func (d *dataKey) String() string {
	return "vault.dataKey{ID:" + d.id + ", Merchant:" + d.merchantID + ", [REDACTED]}"
}
func (d *dataKey) GoString() string              { return d.String() }
func (d *dataKey) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(d.String())) }
func (d *dataKey) LogValue() slog.Value          { return slog.StringValue(d.String()) }
func (d *dataKey) MarshalJSON() ([]byte, error) {
	return []byte(`{"id":"` + d.id + `","key":"[REDACTED]"}`), nil
}

// dataKeyCache keeps the most recently used unwrapped data keys, by
// merchant, so that a payment does not unwrap its merchant's key every
// time. It is bounded: the least recently used key leaves first.
type dataKeyCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *dataKey, most recent first
	byID  map[string]*list.Element
}

func newDataKeyCache(max int) *dataKeyCache {
	return &dataKeyCache{max: max, order: list.New(), byID: make(map[string]*list.Element)}
}

// get returns the cached data key of the merchant, or nil.
func (c *dataKeyCache) get(merchantID string) *dataKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byID[merchantID]
	if !ok {
		return nil
	}
	c.order.MoveToFront(e)
	return e.Value.(*dataKey)
}

// put caches a data key, evicting the least recently used beyond max.
func (c *dataKeyCache) put(d *dataKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byID[d.merchantID]; ok {
		e.Value = d
		c.order.MoveToFront(e)
		return
	}
	c.byID[d.merchantID] = c.order.PushFront(d)
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byID, last.Value.(*dataKey).merchantID)
	}
}

// len returns how many keys are cached, for tests.
func (c *dataKeyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
