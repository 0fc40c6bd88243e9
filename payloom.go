// Package payloom holds Payloom's domain: the types a payment server talks
// about (merchants, keys and their permissions, cards, customers and their
// saved payment methods, payments, attempts, refunds, events, idempotency
// records, audit events) and the interfaces that the technology packages
// implement (Store, Processor, Vault) or that the engine provides to the API
// (the *Service interfaces).
//
// This package imports only the standard library. It never performs I/O,
// never holds a card number outside the redacting Secret type, and never
// logs. Wiring of implementations happens only in cmd/payloom.
package payloom

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"strings"
	"sync"
	"time"
)

// Scope is the tenancy boundary every object lives in: one merchant, in test
// or live mode. Objects in one scope are invisible from every other scope.
type Scope struct {
	MerchantID string
	Livemode   bool
}

// Mode returns "live" or "test".
func (s Scope) Mode() string {
	if s.Livemode {
		return "live"
	}
	return "test"
}

// ID prefixes of every object kind.
const (
	PrefixMerchant    = "mrch"
	PrefixAPIKey      = "key"
	PrefixToken       = "tok"
	PrefixPayment     = "pay"
	PrefixAttempt     = "att"
	PrefixRefund      = "re"
	PrefixEvent       = "evt"
	PrefixIdempotency = "idk"
	PrefixRequest     = "req"
	PrefixOperation   = "op"
)

// crockford is Crockford's base32 alphabet in lower case: IDs sort
// lexicographically in the order they were made.
const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

var idState struct {
	sync.Mutex
	lastMS uint64
	rand   [10]byte
}

// NewID returns prefix + "_" + a 26-character, k-sortable identifier: 48 bits
// of milliseconds since the epoch then 80 random bits, encoded in base32.
// Within one process IDs are strictly increasing (the random part is
// incremented when the clock has not moved), so sorting by ID is sorting by
// creation time; across nodes the order is that of their clocks.
func NewID(prefix string) string {
	ms := uint64(time.Now().UnixMilli())
	idState.Lock()
	if ms <= idState.lastMS {
		ms = idState.lastMS
		incr(idState.rand[:])
	} else {
		idState.lastMS = ms
		if _, err := rand.Read(idState.rand[:]); err != nil {
			panic("payloom: crypto/rand failed: " + err.Error())
		}
		idState.rand[0] &= 0x7f // leave room to increment
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[0:8], ms<<16)
	copy(b[6:16], idState.rand[:])
	idState.Unlock()

	// 128 bits -> 26 base32 characters (the first carries 3 bits).
	var out [26]byte
	hi := binary.BigEndian.Uint64(b[0:8])
	lo := binary.BigEndian.Uint64(b[8:16])
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return prefix + "_" + string(out[:])
}

func incr(b []byte) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i]++
		if b[i] != 0 {
			return
		}
	}
}

// HasPrefix reports whether id has the given object prefix, e.g.
// HasPrefix("pay_01h...", PrefixPayment).
func HasPrefix(id, prefix string) bool {
	return strings.HasPrefix(id, prefix+"_") && len(id) > len(prefix)+1
}

// Clock returns the current time. Services take one so that tests can move
// time; production uses time.Now.
type Clock func() time.Time

// Logger is the narrow logging surface the domain packages use. It is
// satisfied by *slog.Logger. Callers never pass card data to it.
type Logger interface {
	InfoContext(ctx context.Context, msg string, args ...any)
	WarnContext(ctx context.Context, msg string, args ...any)
	ErrorContext(ctx context.Context, msg string, args ...any)
}
