package vault

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// MasterKeyEnv is the environment variable that holds the master key: 32
// bytes as 64 hex characters or as base64 (standard or URL alphabet, padded
// or not). When it is set and not empty it wins over the key file.
const MasterKeyEnv = "PAYLOOM_MASTER_KEY"

// KeyFileName is the name of the generated master key file in the data
// directory.
const KeyFileName = "master.key"

// MasterKeySize is the length of a master key in bytes.
const MasterKeySize = 32

// Labels for the HKDF-SHA256 derivations. Each key the vault uses comes from
// the master key under its own label, so knowing one (say, a fingerprint
// key leaked by a bug) tells nothing about the others. Changing a label
// makes every stored card unreadable: they are part of the storage format.
const (
	labelEncryption  = "payloom/vault/v1/card-number-encryption"
	labelFingerprint = "payloom/vault/v1/card-fingerprint"
	labelKeyID       = "payloom/vault/v1/key-id"
)

// Keys are the vault's keys, all derived from one master key: the AES-256
// key that encrypts card numbers, the separate HMAC key that fingerprints
// them, and a KeyID naming the master key in every row it encrypted.
//
// Keys redact themselves in every fmt verb, in JSON and in slog: only the
// KeyID, which is a one-way function of the master key, is ever shown.
type Keys struct {
	id  string
	enc []byte // AES-256-GCM key
	fp  []byte // HMAC-SHA256 key for fingerprints
}

// NewKeys derives the vault's keys from a 32-byte master key.
func NewKeys(master []byte) (*Keys, error) {
	if len(master) != MasterKeySize {
		return nil, fmt.Errorf("vault: master key must be %d bytes, got %d", MasterKeySize, len(master))
	}
	if isZero(master) {
		return nil, errors.New("vault: master key is all zero bytes")
	}
	derive := func(label string, n int) []byte {
		k, err := hkdf.Key(sha256.New, master, nil, label, n)
		if err != nil {
			// Only possible for lengths beyond 255*32 bytes.
			panic("vault: hkdf: " + err.Error())
		}
		return k
	}
	return &Keys{
		id:  "k1_" + hex.EncodeToString(derive(labelKeyID, 4)),
		enc: derive(labelEncryption, 32),
		fp:  derive(labelFingerprint, 32),
	}, nil
}

// LoadKeys loads the master key and derives the vault's keys. The master key
// comes from the environment variable PAYLOOM_MASTER_KEY when it is set and
// not empty; otherwise from <dataDir>/master.key, which is created (with
// 32 random bytes, hex-encoded, mode 0600) when it does not exist. An
// existing key file that group or others may read or write is refused: a
// master key that others can read protects nothing.
//
// Errors never contain key material.
func LoadKeys(dataDir string) (*Keys, error) {
	if v := os.Getenv(MasterKeyEnv); v != "" {
		master, err := parseMasterKey([]byte(v))
		if err != nil {
			return nil, fmt.Errorf("vault: %s: %w", MasterKeyEnv, err)
		}
		return NewKeys(master)
	}
	if dataDir == "" {
		return nil, fmt.Errorf("vault: no data directory for the key file and %s is not set", MasterKeyEnv)
	}
	path := filepath.Join(dataDir, KeyFileName)
	master, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		master, err = createKeyFile(dataDir, path)
	}
	if err != nil {
		return nil, err
	}
	return NewKeys(master)
}

// KeyID names the master key. It is stored with every ciphertext so that a
// row encrypted under another key is recognised as such.
func (k Keys) KeyID() string { return k.id }

// String, GoString, Format, MarshalJSON, MarshalText and LogValue keep the
// key material out of every printout. They have value receivers so that a
// dereferenced Keys is redacted too.
func (k Keys) String() string       { return "vault.Keys{KeyID:" + k.id + ", [REDACTED]}" }
func (k Keys) GoString() string     { return k.String() }
func (k Keys) LogValue() slog.Value { return slog.StringValue(k.String()) }
func (k Keys) MarshalText() ([]byte, error) {
	return []byte(k.String()), nil
}
func (k Keys) MarshalJSON() ([]byte, error) {
	return []byte(`{"key_id":"` + k.id + `","keys":"[REDACTED]"}`), nil
}

// Format makes every verb (%v, %+v, %#v, %x, %s ...) print the redacted
// form; without it %x or %+v on a Keys value would reach the fields.
func (k Keys) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(k.String())) }

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("vault: open key file: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("vault: stat key file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("vault: key file %s is not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("vault: key file %s has mode %04o and is accessible by group or others; "+
			"run chmod 600 on it (and consider the key compromised if others could read it)", path, perm)
	}
	buf := make([]byte, 512)
	n, err := f.Read(buf)
	if err != nil && n == 0 {
		return nil, fmt.Errorf("vault: key file %s is empty or unreadable: %w", path, err)
	}
	master, err := parseMasterKey(buf[:n])
	if err != nil {
		return nil, fmt.Errorf("vault: key file %s: %w", path, err)
	}
	return master, nil
}

// createKeyFile writes a new master key to a temporary file, syncs it, and
// links it into place. The link fails if another process (the CLI and the
// server share a data directory) created the key first; then that key is
// read, so both use the same one and nobody sees a half-written file.
func createKeyFile(dir, path string) ([]byte, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("vault: create data directory: %w", err)
	}
	master := make([]byte, MasterKeySize)
	if _, err := rand.Read(master); err != nil {
		return nil, fmt.Errorf("vault: generate master key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".master.key.tmp-*")
	if err != nil {
		return nil, fmt.Errorf("vault: create key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600 already; Chmod makes that explicit
	// and independent of the umask.
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.WriteString(hex.EncodeToString(master) + "\n")
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("vault: write key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readKeyFile(path)
		}
		return nil, fmt.Errorf("vault: install key file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the new directory entry durable
		d.Close()
	}
	return master, nil
}

// parseMasterKey accepts 32 raw bytes, 64 hex characters or base64 of 32
// bytes, with surrounding white space. Errors do not echo the input.
func parseMasterKey(b []byte) ([]byte, error) {
	if len(b) == MasterKeySize && !isText(b) {
		return bytes.Clone(b), nil
	}
	s := strings.TrimSpace(string(b))
	if len(s) == 2*MasterKeySize {
		if k, err := hex.DecodeString(s); err == nil {
			return k, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == MasterKeySize {
			return k, nil
		}
	}
	return nil, fmt.Errorf("master key must be %d bytes written as 64 hex characters or as base64", MasterKeySize)
}

func isText(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
