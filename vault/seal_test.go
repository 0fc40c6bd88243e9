package vault

import (
	"bytes"
	"context"
	"testing"
)

func TestSealOpen(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	secret := []byte(`{"api_key":"sk_test_sealme"}`)
	ct, keyID, err := e.vault.Seal(ctx, e.a, "processor_account/pa_1", secret)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if bytes.Contains(ct, []byte("sk_test_sealme")) {
		t.Fatalf("Seal output holds the plaintext")
	}
	got, err := e.vault.Open(ctx, e.a, "processor_account/pa_1", keyID, ct)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v; want %q", got, err, secret)
	}
	tok := e.tokenize(t, e.a, "4242424242424242", "")
	card, err := e.vault.Card(ctx, e.a, tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		open func() ([]byte, error)
	}{
		{"other aad", func() ([]byte, error) { return e.vault.Open(ctx, e.a, "processor_account/pa_2", keyID, ct) }},
		{"other merchant", func() ([]byte, error) { return e.vault.Open(ctx, e.b, "processor_account/pa_1", keyID, ct) }},
		{"other mode", func() ([]byte, error) { return e.vault.Open(ctx, e.aLive, "processor_account/pa_1", keyID, ct) }},
		{"wrong key id", func() ([]byte, error) { return e.vault.Open(ctx, e.a, "processor_account/pa_1", "dek_other", ct) }},
		{"tampered", func() ([]byte, error) {
			bad := bytes.Clone(ct)
			bad[len(bad)-1] ^= 1
			return e.vault.Open(ctx, e.a, "processor_account/pa_1", keyID, bad)
		}},
		{"a card ciphertext", func() ([]byte, error) { return e.vault.Open(ctx, e.a, tok.ID, card.KeyID, card.Ciphertext) }},
	}
	for _, tt := range tests {
		got, err := tt.open()
		if err == nil {
			t.Errorf("Open(%s) = %q, nil; want an error", tt.name, got)
		} else if bytes.Contains([]byte(err.Error()), []byte("sk_test_sealme")) {
			t.Errorf("Open(%s) error %q quotes the plaintext", tt.name, err)
		}
	}
}
