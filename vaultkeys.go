package payloom

import "time"

// PrefixDataKey is the ID prefix of the vault's data-encryption keys. A
// Card whose KeyID has it was encrypted under that data key; any other
// KeyID names the key-encryption key whose derived key encrypted the card
// before envelope encryption existed.
const PrefixDataKey = "dek"

// VaultKEK is one of the vault's key-encryption keys as the store knows it:
// its ID and state, never its material, which lives only in key files or
// the environment of the nodes.
//
// CheckValue is a one-way function of the material (it reveals nothing of
// it): a node compares it with its own key of that ID before wrapping
// anything, so that a node given the wrong key file cannot wrap data keys
// no other node can unwrap. At most one KEK is Primary: the one that wraps
// new data keys and that a rotation rewraps every data key under. A retired
// KEK wraps nothing and encrypts nothing, and its material is destroyed.
type VaultKEK struct {
	ID         string
	CheckValue []byte
	Primary    bool
	CreatedAt  time.Time
	RetiredAt  *time.Time
}

// VaultDEK is a merchant's data-encryption key as stored: only wrapped
// (AES-256-GCM under the key-encryption key KEKID, bound to MerchantID and
// ID), never in clear. Version counts rewraps, so that two rotations never
// overwrite each other's work.
type VaultDEK struct {
	ID         string
	MerchantID string
	KEKID      string
	Wrapped    []byte
	Version    int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
}
