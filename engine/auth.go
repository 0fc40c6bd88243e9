package engine

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/payloom/payloom"
)

// Secret keys are "sk_test_" or "sk_live_", then 16 lookup characters (stored
// in clear to find the row) and 32 secret characters, all base62 from
// crypto/rand: 190 bits of secret. Only the SHA-256 of the whole key is
// stored; a plain hash is enough because the key is random, not a password.
const (
	keyPrefixTest = "sk_test_"
	keyPrefixLive = "sk_live_"
	keyLookupLen  = 16
	keySecretLen  = 32
	keyLen        = len(keyPrefixTest) + keyLookupLen + keySecretLen
	maxNameLen    = 200
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// errAuth is the one answer to every bad key, so that a caller cannot tell
// an unknown key from a revoked or malformed one.
func errAuth() error { return payloom.Errorf(payloom.CodeAuthFailed, "invalid API key") }

// randomBase62 returns n base62 characters from crypto/rand, without modulo
// bias (bytes >= 248 are rejected).
func randomBase62(n int) string {
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/4+8)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			panic("engine: crypto/rand failed: " + err.Error())
		}
		for _, b := range buf {
			if b < 248 && len(out) < n {
				out = append(out, base62[b%62])
			}
		}
	}
	return string(out)
}

func isBase62(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

func hashKey(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// Authenticate implements payloom.AuthService.
func (e *Engine) Authenticate(ctx context.Context, secret string) (*payloom.APIKey, error) {
	// Hash first so that malformed, unknown and known keys cost about the
	// same.
	hash := hashKey(secret)
	var live bool
	switch {
	case len(secret) != keyLen:
		return nil, errAuth()
	case strings.HasPrefix(secret, keyPrefixTest):
	case strings.HasPrefix(secret, keyPrefixLive):
		live = true
	default:
		return nil, errAuth()
	}
	body := secret[len(keyPrefixTest):]
	if !isBase62(body) {
		return nil, errAuth()
	}
	var key *payloom.APIKey
	err := e.view(ctx, "authenticate", func(tx payloom.Tx) error {
		var err error
		key, err = tx.GetAPIKeyByLookup(ctx, body[:keyLookupLen])
		return err
	})
	if payloom.IsCode(err, payloom.CodeNotFound) {
		return nil, errAuth()
	}
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(hash, key.Hash) != 1 || key.Livemode != live || key.RevokedAt != nil {
		return nil, errAuth()
	}
	return key, nil
}

// CreateMerchant implements payloom.AuthService. It sets m.ID, m.CreatedAt
// and the default limits, and trims the name.
func (e *Engine) CreateMerchant(ctx context.Context, m *payloom.Merchant) error {
	nm, err := e.newMerchant(m)
	if err != nil {
		return err
	}
	if err := e.update(ctx, "create_merchant", func(tx payloom.Tx) error {
		return tx.CreateMerchant(ctx, nm)
	}); err != nil {
		return err
	}
	*m = *nm
	e.log.InfoContext(ctx, "merchant created", "merchant_id", m.ID)
	return nil
}

// newMerchant validates m and returns the merchant to store: a new ID, the
// trimmed name, default limits where m sets none.
func (e *Engine) newMerchant(m *payloom.Merchant) (*payloom.Merchant, error) {
	name := strings.TrimSpace(m.Name)
	switch n := utf8.RuneCountInString(name); {
	case !utf8.ValidString(name):
		return nil, payloom.FieldError("name", "name must be valid UTF-8")
	case n == 0:
		return nil, payloom.FieldError("name", "name is required")
	case n > maxNameLen:
		return nil, payloom.FieldError("name", "name must be at most %d characters", maxNameLen)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return nil, payloom.FieldError("name", "name must not contain control characters")
	}
	minAmt, maxAmt := m.MinAmount, m.MaxAmount
	if minAmt == 0 {
		minAmt = payloom.DefaultMinAmount
	}
	if maxAmt == 0 {
		maxAmt = payloom.DefaultMaxAmount
	}
	if minAmt < 1 {
		return nil, payloom.FieldError("min_amount", "min_amount must be at least 1")
	}
	if maxAmt < minAmt || maxAmt > payloom.MaxAmountLimit {
		return nil, payloom.FieldError("max_amount", "max_amount must be at least min_amount (%d)", minAmt)
	}
	nm := *m
	nm.ID = payloom.NewID(payloom.PrefixMerchant)
	nm.Name = name
	nm.MinAmount, nm.MaxAmount = minAmt, maxAmt
	nm.CreatedAt = e.now()
	return &nm, nil
}

// Bootstrap implements payloom.AuthService: on a store without merchants it
// creates m and a test-mode key for it in one transaction, so a crash can
// never leave the first merchant without its key, and only one of several
// nodes starting at once on an empty store creates them.
func (e *Engine) Bootstrap(ctx context.Context, m *payloom.Merchant) (*payloom.APIKey, payloom.Secret, bool, error) {
	nm, err := e.newMerchant(m)
	if err != nil {
		return nil, "", false, err
	}
	var key *payloom.APIKey
	var secret string
	created := false
	err = e.update(ctx, "bootstrap", func(tx payloom.Tx) error {
		created = false
		// Nodes starting at once on an empty PostgreSQL database would
		// all count zero merchants under READ COMMITTED. The lease row
		// is locked until commit whether this node gets the lease or
		// not, so the transactions run one after the other and each
		// counts what the previous one committed.
		now := e.now()
		if _, err := tx.AcquireLease(ctx, LeaseBootstrap, e.node, now, now.Add(bootstrapLease)); err != nil {
			return err
		}
		n, err := tx.CountMerchants(ctx)
		if err != nil || n > 0 {
			return err
		}
		if err := tx.CreateMerchant(ctx, nm); err != nil {
			return err
		}
		key, secret, err = e.createKey(ctx, tx, nm.ID, false, payloom.BootstrapPermissions())
		created = err == nil
		return err
	})
	if err != nil || !created {
		return nil, "", false, err
	}
	*m = *nm
	e.log.InfoContext(ctx, "default merchant and test-mode key created", "merchant_id", m.ID, "key_id", key.ID)
	return key, payloom.Secret(secret), true, nil
}

// Merchant implements payloom.AuthService.
func (e *Engine) Merchant(ctx context.Context, id string) (*payloom.Merchant, error) {
	var m *payloom.Merchant
	err := e.view(ctx, "get_merchant", func(tx payloom.Tx) error {
		var err error
		m, err = tx.GetMerchant(ctx, id)
		return err
	})
	return m, err
}

// CountMerchants implements payloom.AuthService.
func (e *Engine) CountMerchants(ctx context.Context) (int, error) {
	var n int
	err := e.view(ctx, "count_merchants", func(tx payloom.Tx) error {
		var err error
		n, err = tx.CountMerchants(ctx)
		return err
	})
	return n, err
}

// CreateAPIKey implements payloom.AuthService. The key and its
// api_key.created audit event commit together.
func (e *Engine) CreateAPIKey(ctx context.Context, merchantID string, livemode bool, permissions ...payloom.Permission) (*payloom.APIKey, payloom.Secret, error) {
	perms, err := keyPermissions(permissions)
	if err != nil {
		return nil, "", err
	}
	var key *payloom.APIKey
	var secret string
	err = e.update(ctx, "create_api_key", func(tx payloom.Tx) error {
		if merchantID != "" {
			if _, err := tx.GetMerchant(ctx, merchantID); err != nil {
				return err
			}
		}
		var err error
		key, secret, err = e.createKey(ctx, tx, merchantID, livemode, perms)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	e.log.InfoContext(ctx, "api key created", "key_id", key.ID, "merchant_id", merchantID,
		"platform", key.Platform, "livemode", livemode, "permissions", payloom.JoinPermissions(key.Permissions))
	return key, payloom.Secret(secret), nil
}

// keyPermissions validates requested permissions; none means the default
// set.
func keyPermissions(ps []payloom.Permission) ([]payloom.Permission, error) {
	if len(ps) == 0 {
		return payloom.DefaultPermissions(), nil
	}
	for _, p := range ps {
		if !p.Valid() {
			return nil, payloom.FieldError("permissions", "unknown permission %q", string(p))
		}
	}
	return payloom.NormalizePermissions(ps), nil
}

// createKey stores a new key in tx, with its audit event, and returns it
// with its secret.
func (e *Engine) createKey(ctx context.Context, tx payloom.Tx, merchantID string, livemode bool, perms []payloom.Permission) (*payloom.APIKey, string, error) {
	prefix := keyPrefixTest
	if livemode {
		prefix = keyPrefixLive
	}
	// A lookup collision (62^16 space) is retried with a fresh key.
	for range 3 {
		lookup := randomBase62(keyLookupLen)
		secret := prefix + lookup + randomBase62(keySecretLen)
		key := &payloom.APIKey{
			ID:          payloom.NewID(payloom.PrefixAPIKey),
			MerchantID:  merchantID,
			Platform:    merchantID == "",
			Livemode:    livemode,
			Lookup:      lookup,
			Hash:        hashKey(secret),
			Last4:       secret[len(secret)-4:],
			Permissions: perms,
			CreatedAt:   e.now(),
		}
		err := tx.CreateAPIKey(ctx, key)
		if err == nil {
			ev := payloom.NewAuditEvent(ctx, payloom.Scope{MerchantID: merchantID, Livemode: livemode},
				payloom.AuditAPIKeyCreated, payloom.AuditSuccess, key.ID, key.CreatedAt)
			ev.Details["permissions"] = payloom.JoinPermissions(perms)
			if key.Platform {
				ev.Details["platform"] = "true"
			}
			if err := tx.CreateAuditEvent(ctx, ev); err != nil {
				return nil, "", err
			}
			return key, secret, nil
		}
		if !payloom.IsCode(err, payloom.CodeAlreadyExists) {
			return nil, "", err
		}
	}
	return nil, "", payloom.Errorf(payloom.CodeInternal, "could not make a unique API key")
}

// RevokeAPIKey implements payloom.AuthService. Revoking a revoked key is a
// no-op that keeps the first revocation time and writes no audit event.
func (e *Engine) RevokeAPIKey(ctx context.Context, id string) error {
	revoked := false
	err := e.update(ctx, "revoke_api_key", func(tx payloom.Tx) error {
		revoked = false
		k, err := tx.GetAPIKey(ctx, id)
		if err != nil {
			return err
		}
		if k.RevokedAt != nil {
			return nil
		}
		k.RevokedAt = ptr(e.now())
		if err := tx.UpdateAPIKey(ctx, k); err != nil {
			return err
		}
		ev := payloom.NewAuditEvent(ctx, payloom.Scope{MerchantID: k.MerchantID, Livemode: k.Livemode},
			payloom.AuditAPIKeyRevoked, payloom.AuditSuccess, k.ID, *k.RevokedAt)
		revoked = true
		return tx.CreateAuditEvent(ctx, ev)
	})
	if err == nil && revoked {
		e.log.InfoContext(ctx, "api key revoked", "key_id", id)
	}
	return err
}
