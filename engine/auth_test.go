package engine_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/engine"
	"github.com/payloom/payloom/sqlite"
	"github.com/payloom/payloom/vault"
)

var keyPattern = regexp.MustCompile(`^sk_(test|live)_[0-9A-Za-z]{48}$`)

func TestCreateAPIKeyAndAuthenticate(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name       string
		merchantID string
		live       bool
		prefix     string
	}{
		{"test key", e.merchant.ID, false, "sk_test_"},
		{"live key", e.merchant.ID, true, "sk_live_"},
		{"platform test key", "", false, "sk_test_"},
		{"platform live key", "", true, "sk_live_"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, secret, err := e.eng.CreateAPIKey(e.ctx, tt.merchantID, tt.live)
			if err != nil {
				t.Fatalf("CreateAPIKey: %v", err)
			}
			s := secret.Reveal()
			if !keyPattern.MatchString(s) || !strings.HasPrefix(s, tt.prefix) {
				t.Fatalf("secret %q does not look like %s + 48 base62 characters", s, tt.prefix)
			}
			if fmt.Sprint(secret) != "[REDACTED]" {
				t.Errorf("fmt.Sprint(secret) = %q; want it redacted", fmt.Sprint(secret))
			}
			sum := sha256.Sum256([]byte(s))
			if !payloom.HasPrefix(key.ID, payloom.PrefixAPIKey) || key.MerchantID != tt.merchantID || key.Platform != (tt.merchantID == "") ||
				key.Livemode != tt.live || key.Lookup != s[8:24] || string(key.Hash) != string(sum[:]) || key.Last4 != s[len(s)-4:] {
				t.Errorf("key = %+v; want lookup %q, SHA-256 hash, last4 %q", key, s[8:24], s[len(s)-4:])
			}
			b, _ := json.Marshal(key)
			if strings.Contains(string(b), s[8:]) || strings.Contains(string(b), s[8:24]) {
				t.Errorf("key JSON %s shows the secret or its lookup", b)
			}
			got, err := e.eng.Authenticate(e.ctx, s)
			if err != nil || got.ID != key.ID || got.MerchantID != tt.merchantID || got.Platform != (tt.merchantID == "") || got.Livemode != tt.live {
				t.Errorf("Authenticate = %+v, %v; want key %s", got, err, key.ID)
			}
		})
	}
	_, _, err := e.eng.CreateAPIKey(e.ctx, "mrch_missing", false)
	wantCode(t, "CreateAPIKey(unknown merchant)", err, payloom.CodeNotFound)
}

func TestAuthenticateRefusals(t *testing.T) {
	e := newEnv(t)
	key, secret, err := e.eng.CreateAPIKey(e.ctx, e.merchant.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	s := secret.Reveal()
	revokedKey, revokedSecret, err := e.eng.CreateAPIKey(e.ctx, e.merchant.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.eng.RevokeAPIKey(e.ctx, revokedKey.ID); err != nil {
		t.Fatalf("RevokeAPIKey: %v", err)
	}
	if err := e.eng.RevokeAPIKey(e.ctx, revokedKey.ID); err != nil {
		t.Errorf("RevokeAPIKey(again) = %v; want nil", err)
	}
	wantCode(t, "RevokeAPIKey(missing)", e.eng.RevokeAPIKey(e.ctx, "key_missing"), payloom.CodeNotFound)
	flip := func(c byte) byte {
		if c == 'a' {
			return 'b'
		}
		return 'a'
	}
	tests := []struct{ name, secret string }{
		{"empty", ""},
		{"revoked", revokedSecret.Reveal()},
		{"wrong secret part", s[:len(s)-1] + string(flip(s[len(s)-1]))},
		{"unknown lookup", s[:8] + string(flip(s[8])) + s[9:]},
		{"live prefix on a test key", "sk_live_" + s[8:]},
		{"truncated", s[:len(s)-1]},
		{"too long", s + "a"},
		{"bad prefix", "pk_test_" + s[8:]},
		{"not base62", s[:len(s)-1] + "-"},
		{"bearer prefix included", "Bearer " + s},
	}
	for _, tt := range tests {
		got, err := e.eng.Authenticate(e.ctx, tt.secret)
		wantCode(t, "Authenticate("+tt.name+")", err, payloom.CodeAuthFailed)
		if got != nil {
			t.Errorf("Authenticate(%s) key = %+v; want nil", tt.name, got)
		}
		if msg := payloom.ErrorMessage(err); msg != "invalid API key" {
			t.Errorf("Authenticate(%s) message = %q; want %q", tt.name, msg, "invalid API key")
		}
	}
	if got, err := e.eng.Authenticate(e.ctx, s); err != nil || got.ID != key.ID {
		t.Errorf("Authenticate(valid) = %v, %v; want %s", got, err, key.ID)
	}
}

func TestCreateMerchant(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("é", 200)
	tests := []struct {
		name          string
		in            payloom.Merchant
		param         string
		wantName      string
		wantMin, wMax int64
	}{
		{"defaults", payloom.Merchant{Name: "  Shop  "}, "", "Shop", payloom.DefaultMinAmount, payloom.DefaultMaxAmount},
		{"custom limits", payloom.Merchant{Name: "Shop", MinAmount: 50, MaxAmount: 500}, "", "Shop", 50, 500},
		{"min equals max", payloom.Merchant{Name: "Shop", MinAmount: 7, MaxAmount: 7}, "", "Shop", 7, 7},
		{"200 characters", payloom.Merchant{Name: long}, "", long, payloom.DefaultMinAmount, payloom.DefaultMaxAmount},
		{"empty name", payloom.Merchant{Name: "   "}, "name", "", 0, 0},
		{"201 characters", payloom.Merchant{Name: long + "x"}, "name", "", 0, 0},
		{"control character", payloom.Merchant{Name: "a\x00b"}, "name", "", 0, 0},
		{"negative min", payloom.Merchant{Name: "Shop", MinAmount: -1}, "min_amount", "", 0, 0},
		{"min above max", payloom.Merchant{Name: "Shop", MinAmount: 10, MaxAmount: 9}, "max_amount", "", 0, 0},
		{"min above default max", payloom.Merchant{Name: "Shop", MinAmount: payloom.DefaultMaxAmount + 1}, "max_amount", "", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.in
			err := e.eng.CreateMerchant(e.ctx, &m)
			if tt.param != "" {
				wantCode(t, "CreateMerchant", err, payloom.CodeValidation)
				if got := payloom.ErrorParam(err); got != tt.param {
					t.Errorf("CreateMerchant(%s) param = %q; want %q", tt.name, got, tt.param)
				}
				return
			}
			if err != nil {
				t.Fatalf("CreateMerchant(%s): %v", tt.name, err)
			}
			if !payloom.HasPrefix(m.ID, payloom.PrefixMerchant) || m.Name != tt.wantName || m.MinAmount != tt.wantMin || m.MaxAmount != tt.wMax || m.CreatedAt.IsZero() {
				t.Errorf("CreateMerchant(%s) = %+v; want name %q limits %d..%d", tt.name, m, tt.wantName, tt.wantMin, tt.wMax)
			}
			got, err := e.eng.Merchant(e.ctx, m.ID)
			if err != nil || got.Name != m.Name || got.MinAmount != m.MinAmount || got.MaxAmount != m.MaxAmount {
				t.Errorf("Merchant(%q) = %+v, %v; want %+v", m.ID, got, err, m)
			}
		})
	}
	n, err := e.eng.CountMerchants(e.ctx)
	if err != nil || n != 5 { // the env's merchant and four valid ones
		t.Errorf("CountMerchants = %d, %v; want 5", n, err)
	}
	_, err = e.eng.Merchant(e.ctx, "mrch_missing")
	wantCode(t, "Merchant(missing)", err, payloom.CodeNotFound)
}

func TestBootstrap(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	keys, err := vault.NewKeys(bytes.Repeat([]byte{9}, vault.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	eng := engine.New(engine.Config{Store: st, Vault: vault.New(st, keys, vault.Options{})})

	if _, _, _, err := eng.Bootstrap(ctx, &payloom.Merchant{}); payloom.ErrorParam(err) != "name" {
		t.Fatalf("Bootstrap(no name) = %v; want a validation error on name", err)
	}
	m := &payloom.Merchant{Name: "Default merchant"}
	key, secret, created, err := eng.Bootstrap(ctx, m)
	if err != nil || !created {
		t.Fatalf("Bootstrap(empty store) = %v, %v; want created", created, err)
	}
	got, err := eng.Authenticate(ctx, secret.Reveal())
	if err != nil || got.ID != key.ID || got.MerchantID != m.ID || got.Livemode {
		t.Fatalf("Authenticate(bootstrap key) = %+v, %v; want test key %s of %s", got, err, key.ID, m.ID)
	}
	// Once a merchant exists, Bootstrap does nothing.
	again := &payloom.Merchant{Name: "Default merchant"}
	if _, _, created, err := eng.Bootstrap(ctx, again); err != nil || created || again.ID != "" {
		t.Fatalf("Bootstrap(second) = created %v, %v, merchant %q; want nothing created", created, err, again.ID)
	}
	if n, err := eng.CountMerchants(ctx); err != nil || n != 1 {
		t.Fatalf("CountMerchants = %d, %v; want 1", n, err)
	}
}
