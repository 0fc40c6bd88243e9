package vault

import (
	"context"
	"errors"
	"fmt"

	"github.com/payloom/payloom"
)

// Seal encrypts arbitrary secret bytes (a processor account's credentials)
// under the merchant's data key, the same envelope that protects its cards.
// The ciphertext is bound to the key, merchant, mode and aad (the caller's
// row identity, e.g. "processor_account/pa_..."): a ciphertext copied to
// another row or merchant does not open. It returns the ciphertext and the
// data key's ID, which the caller stores beside it.
func (v *Vault) Seal(ctx context.Context, scope payloom.Scope, aad string, plaintext []byte) ([]byte, string, error) {
	if scope.MerchantID == "" {
		return nil, "", errors.New("vault: seal without a merchant")
	}
	dk, err := v.dataKeyFor(ctx, scope.MerchantID, true)
	if err != nil {
		return nil, "", fmt.Errorf("vault: seal: %w", err)
	}
	return seal(dk.aead, plaintext, sealAD(dk.id, scope, aad)), dk.id, nil
}

// Open decrypts what Seal returned for the same scope, aad and key ID. Its
// errors never contain the plaintext.
func (v *Vault) Open(ctx context.Context, scope payloom.Scope, aad string, keyID string, ciphertext []byte) ([]byte, error) {
	dk, err := v.dataKeyFor(ctx, scope.MerchantID, false)
	if err != nil {
		return nil, fmt.Errorf("vault: open: %w", err)
	}
	if dk.id != keyID {
		return nil, fmt.Errorf("vault: open: sealed under data key %s, not under its merchant's %s", keyID, dk.id)
	}
	plain, err := open(dk.aead, ciphertext, sealAD(keyID, scope, aad))
	if err != nil {
		return nil, fmt.Errorf("vault: open %s: %w", aad, err)
	}
	return plain, nil
}

// sealAD differs from cardAD by its label, so a card ciphertext never opens
// as a sealed secret nor the reverse.
func sealAD(keyID string, scope payloom.Scope, aad string) []byte {
	ad := make([]byte, 0, 96)
	ad = append(ad, "payloom/sealed/v1\x00"...)
	ad = append(ad, keyID...)
	ad = append(ad, 0)
	ad = append(ad, scope.MerchantID...)
	ad = append(ad, 0)
	ad = append(ad, scope.Mode()...)
	ad = append(ad, 0)
	ad = append(ad, aad...)
	return ad
}
