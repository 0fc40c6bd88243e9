package vault

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
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
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MasterKeyEnv is the environment variable that holds the master key: 32
// bytes as 64 hex characters or as base64 (standard or URL alphabet, padded
// or not). When it is set and not empty it wins over the key file.
const MasterKeyEnv = "PAYLOOM_MASTER_KEY"

// MasterKeysEnv is the environment variable that holds additional
// key-encryption keys: comma-separated ID:KEY pairs, each KEY written like
// the master key ("k2:3q2+7w...=,k3:..."). Every node of a cluster needs
// the same list.
const MasterKeysEnv = "PAYLOOM_MASTER_KEYS"

// KeyFileName is the name of the generated master key file in the data
// directory.
const KeyFileName = "master.key"

// KeysDirName is the directory, inside the data directory, of the
// key-encryption key files kek-<ID>.key that `payloom vault rotate`
// creates.
const KeysDirName = "keys"

// MasterKeySize is the length of a master key, and of every
// key-encryption key, in bytes.
const MasterKeySize = 32

// Labels for the HKDF-SHA256 derivations. Each key the vault uses comes from
// a key's material under its own label, so knowing one (say, a fingerprint
// key leaked by a bug) tells nothing about the others. Changing a label
// makes every stored card unreadable: they are part of the storage format.
const (
	// From the master key only: the key that encrypted card numbers before
	// envelope encryption, and the fingerprint key, which never rotates so
	// that fingerprints stay stable.
	labelEncryption  = "payloom/vault/v1/card-number-encryption"
	labelFingerprint = "payloom/vault/v1/card-fingerprint"
	// From every key-encryption key, the master key included.
	labelKeyID    = "payloom/vault/v1/key-id"
	labelKEKWrap  = "payloom/vault/v2/kek-wrap"
	labelKEKCheck = "payloom/vault/v2/kek-check"
)

// checkValueSize is the length of a KEK's check value.
const checkValueSize = 16

// keyringRefresh is how often a keyring with a data directory re-reads its
// key files: the next lookup after this long reads them again, so that a
// running server drops the key of a retired KEK whose file was deleted.
// A lookup of an ID the keyring lacks re-reads them at once, so that a
// server picks up a KEK that `payloom vault rotate` has just written.
const keyringRefresh = time.Minute

// kekIDPattern is what a key-encryption key's ID looks like: it appears in
// file names, in PAYLOOM_MASTER_KEYS and in the store.
var kekIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// kekFilePattern matches the name of a key-encryption key file.
var kekFilePattern = regexp.MustCompile(`^kek-(.+)\.key$`)

// KeySource says where a key-encryption key comes from.
type KeySource string

const (
	SourceMasterEnv  KeySource = "env " + MasterKeyEnv
	SourceMasterFile KeySource = "file " + KeyFileName
	SourceFile       KeySource = "file"
	SourceEnv        KeySource = "env " + MasterKeysEnv
)

// kek is a key-encryption key: the AES-256-GCM key that wraps data keys,
// derived from the key's material, and the check value the store keeps.
// The material itself is not kept.
type kek struct {
	id     string
	source KeySource
	path   string // the key file, for SourceFile
	aead   cipher.AEAD
	check  []byte
	// legacy is, for the master key only, the key that encrypted card
	// numbers before envelope encryption.
	legacy cipher.AEAD
}

func (k *kek) String() string                { return "vault.kek{ID:" + k.id + ", [REDACTED]}" }
func (k *kek) GoString() string              { return k.String() }
func (k *kek) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(k.String())) }
func (k *kek) LogValue() slog.Value          { return slog.StringValue(k.String()) }

func derive(material []byte, label string, n int) []byte {
	k, err := hkdf.Key(sha256.New, material, nil, label, n)
	if err != nil {
		// Only possible for lengths beyond 255*32 bytes.
		panic("vault: hkdf: " + err.Error())
	}
	return k
}

func newAEAD(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic("vault: " + err.Error()) // keys are always 32 bytes
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		panic("vault: " + err.Error())
	}
	return gcm
}

// checkMaterial refuses key material of the wrong size or all zeros.
func checkMaterial(material []byte) error {
	if len(material) != MasterKeySize {
		return fmt.Errorf("key must be %d bytes, got %d", MasterKeySize, len(material))
	}
	if isZero(material) {
		return errors.New("key is all zero bytes")
	}
	return nil
}

// newKEK derives a key-encryption key from its material.
func newKEK(id string, source KeySource, material []byte) *kek {
	wrapKey := derive(material, labelKEKWrap, 32)
	defer clear(wrapKey)
	return &kek{id: id, source: source, aead: newAEAD(wrapKey), check: derive(material, labelKEKCheck, checkValueSize)}
}

// derivedID is the ID a generated key gets: its sequence number and a
// one-way function of its material, so that two keys never share an ID by
// chance.
func derivedID(seq int, material []byte) string {
	return "k" + strconv.Itoa(seq) + "_" + hex.EncodeToString(derive(material, labelKeyID, 4))
}

// Keys is the vault's keyring: the master key (PAYLOOM_MASTER_KEY or
// <data>/master.key), which is key-encryption key number one and the root
// of the fingerprint key, and the further key-encryption keys from
// <data>/keys/kek-<ID>.key files and PAYLOOM_MASTER_KEYS.
//
// Keys redact themselves in every fmt verb, in JSON and in slog: only key
// IDs, which are one-way functions of the keys or names chosen by the
// operator, are ever shown.
type Keys struct {
	dataDir string
	getenv  func(string) string
	fp      []byte // HMAC-SHA256 key for fingerprints
	master  *kek
	state   *keyringState
}

// keyringState is the part of the keyring that re-reading the key files
// changes. It is behind a pointer so that Keys values can be copied (and
// printed) without copying the lock.
type keyringState struct {
	mu       sync.Mutex
	keks     map[string]*kek
	loadedAt time.Time
	// gen counts reloads. reloading serializes them: lookups that miss at
	// once share one reload instead of each reading the files.
	gen       uint64
	reloading sync.Mutex
}

// NewKeys returns a keyring of one master key and nothing else: no key
// files, no environment. For tests and embedding.
func NewKeys(master []byte) (*Keys, error) {
	if err := checkMaterial(master); err != nil {
		return nil, fmt.Errorf("vault: master key: %w", err)
	}
	return newKeys(master, SourceMasterEnv), nil
}

func newKeys(master []byte, source KeySource) *Keys {
	m := newKEK("k1_"+hex.EncodeToString(derive(master, labelKeyID, 4)), source, master)
	legacy := derive(master, labelEncryption, 32)
	defer clear(legacy)
	m.legacy = newAEAD(legacy)
	k := &Keys{
		fp:     derive(master, labelFingerprint, 32),
		master: m,
		state:  &keyringState{keks: map[string]*kek{m.id: m}, loadedAt: time.Now()},
	}
	return k
}

// LoadKeys loads the keyring with the process's environment; see
// LoadKeyring.
func LoadKeys(dataDir string) (*Keys, error) {
	return LoadKeyring(dataDir, os.Getenv)
}

// LoadKeyring loads the master key and every further key-encryption key.
//
// The master key comes from PAYLOOM_MASTER_KEY when it is set and not
// empty; otherwise from <dataDir>/master.key, which is created (with 32
// random bytes, hex-encoded, mode 0600) when it does not exist. Further
// keys come from <dataDir>/keys/kek-<ID>.key files and from
// PAYLOOM_MASTER_KEYS. A key file that group or others may read or write is
// refused, and so are two different keys under one ID.
//
// Errors never contain key material.
func LoadKeyring(dataDir string, getenv func(string) string) (*Keys, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	var k *Keys
	if v := getenv(MasterKeyEnv); v != "" {
		master, err := parseMasterKey([]byte(v))
		if err != nil {
			return nil, fmt.Errorf("vault: %s: %w", MasterKeyEnv, err)
		}
		if err := checkMaterial(master); err != nil {
			return nil, fmt.Errorf("vault: %s: %w", MasterKeyEnv, err)
		}
		k = newKeys(master, SourceMasterEnv)
	} else {
		if dataDir == "" {
			return nil, fmt.Errorf("vault: no data directory for the key file and %s is not set", MasterKeyEnv)
		}
		path := filepath.Join(dataDir, KeyFileName)
		master, err := readKeyFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			master, err = createKeyFile(dataDir, path, hex.EncodeToString)
		}
		if err != nil {
			return nil, err
		}
		if err := checkMaterial(master); err != nil {
			return nil, fmt.Errorf("vault: key file %s: %w", path, err)
		}
		k = newKeys(master, SourceMasterFile)
	}
	k.dataDir, k.getenv = dataDir, getenv
	if err := k.reload(); err != nil {
		return nil, err
	}
	return k, nil
}

// KeyID is the ID of the master key as a key-encryption key. Cards
// encrypted before envelope encryption carry it as their KeyID.
func (k Keys) KeyID() string { return k.master.id }

// FromEnv reports whether the keys come from the environment
// (PAYLOOM_MASTER_KEY or PAYLOOM_MASTER_KEYS) rather than from files: then
// new keys must be handed to every node by the operator, not written to
// one node's disk.
func (k Keys) FromEnv() bool {
	return k.master.source == SourceMasterEnv || (k.getenv != nil && k.getenv(MasterKeysEnv) != "")
}

// KEKIDs returns the IDs of the key-encryption keys this keyring holds,
// sorted.
func (k Keys) KEKIDs() []string {
	k.state.mu.Lock()
	defer k.state.mu.Unlock()
	ids := make([]string, 0, len(k.state.keks))
	for id := range k.state.keks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Source returns where the keyring found a key-encryption key, and its
// file for SourceFile; ok is false when the keyring lacks it.
func (k Keys) Source(id string) (source KeySource, path string, ok bool) {
	x := k.lookup(id)
	if x == nil {
		return "", "", false
	}
	return x.source, x.path, true
}

// String, GoString, Format, MarshalJSON, MarshalText and LogValue keep the
// key material out of every printout. They have value receivers so that a
// dereferenced Keys is redacted too.
func (k Keys) String() string {
	return "vault.Keys{KeyID:" + k.master.id + ", KEKs:[" + strings.Join(k.KEKIDs(), " ") + "], [REDACTED]}"
}
func (k Keys) GoString() string     { return k.String() }
func (k Keys) LogValue() slog.Value { return slog.StringValue(k.String()) }
func (k Keys) MarshalText() ([]byte, error) {
	return []byte(k.String()), nil
}
func (k Keys) MarshalJSON() ([]byte, error) {
	return []byte(`{"key_id":"` + k.master.id + `","keys":"[REDACTED]"}`), nil
}

// Format makes every verb (%v, %+v, %#v, %x, %s ...) print the redacted
// form; without it %x or %+v on a Keys value would reach the fields.
func (k Keys) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(k.String())) }

// lookup returns the key-encryption key with the ID, or nil, without
// reading any file.
func (k Keys) lookup(id string) *kek {
	k.state.mu.Lock()
	defer k.state.mu.Unlock()
	return k.state.keks[id]
}

// find returns the key-encryption key with the ID. It re-reads the key
// files when the keyring lacks the ID (a KEK another process has just
// created) and when they were last read more than keyringRefresh ago (so
// that the key of a retired KEK leaves memory). An error means the ID is
// unknown to this node.
func (k Keys) find(id string) (*kek, error) {
	s := k.state
	s.mu.Lock()
	x, ok := s.keks[id]
	gen := s.gen
	stale := time.Since(s.loadedAt) >= keyringRefresh
	s.mu.Unlock()
	if k.dataDir == "" || (ok && !stale) {
		if ok {
			return x, nil
		}
		return nil, fmt.Errorf("vault: key-encryption key %s is not in this keyring (it holds only the master key)", id)
	}
	var reloadErr error
	s.reloading.Lock()
	s.mu.Lock()
	reloaded := s.gen != gen // by another lookup while this one waited
	s.mu.Unlock()
	if !reloaded {
		reloadErr = k.reload()
	}
	s.reloading.Unlock()
	if x := k.lookup(id); x != nil {
		return x, nil
	}
	where := "its key files in " + filepath.Join(k.dataDir, KeysDirName) + ", " + MasterKeysEnv + " and the master key"
	if reloadErr != nil {
		return nil, fmt.Errorf("vault: key-encryption key %s is not in this node's keyring (%s); reading the keyring failed: %w",
			id, where, reloadErr)
	}
	return nil, fmt.Errorf("vault: key-encryption key %s is not in this node's keyring (%s)", id, where)
}

// reload re-reads the key files and PAYLOOM_MASTER_KEYS. The master key
// stays as loaded. On an error the keyring stays as it was.
func (k Keys) reload() error {
	s := k.state
	keks := map[string]*kek{k.master.id: k.master}
	add := func(x *kek) error {
		if prev, ok := keks[x.id]; ok {
			if !bytes.Equal(prev.check, x.check) {
				return fmt.Errorf("vault: two different keys have the ID %s (%s and %s)", x.id, prev.source, x.source)
			}
			return nil
		}
		keks[x.id] = x
		return nil
	}
	if k.dataDir != "" {
		fileKEKs, err := readKEKFiles(filepath.Join(k.dataDir, KeysDirName))
		if err != nil {
			return err
		}
		for _, x := range fileKEKs {
			if err := add(x); err != nil {
				return err
			}
		}
	}
	if k.getenv != nil {
		envKEKs, err := parseKEKList(k.getenv(MasterKeysEnv))
		if err != nil {
			return err
		}
		for _, x := range envKEKs {
			if err := add(x); err != nil {
				return err
			}
		}
	}
	s.mu.Lock()
	s.keks = keks
	s.loadedAt = time.Now()
	s.gen++
	s.mu.Unlock()
	return nil
}

// readKEKFiles reads every kek-<ID>.key file of dir; a missing dir holds
// none. Other files are ignored (the temporary files of GenerateKEK among
// them).
func readKEKFiles(dir string) ([]*kek, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vault: read key directory: %w", err)
	}
	var out []*kek
	for _, e := range entries {
		m := kekFilePattern.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		id := m[1]
		path := filepath.Join(dir, e.Name())
		if !kekIDPattern.MatchString(id) {
			return nil, fmt.Errorf("vault: key file %s: %q is not a key ID (lower-case letters, digits, _ and -)", path, id)
		}
		material, err := readKeyFile(path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // retired and deleted while we listed
			}
			return nil, err
		}
		if err := checkMaterial(material); err != nil {
			return nil, fmt.Errorf("vault: key file %s: %w", path, err)
		}
		x := newKEK(id, SourceFile, material)
		x.path = path
		clear(material)
		out = append(out, x)
	}
	return out, nil
}

// parseKEKList parses PAYLOOM_MASTER_KEYS. Errors name the position and
// ID, never the key.
func parseKEKList(v string) ([]*kek, error) {
	var out []*kek
	for i, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		id, key, ok := strings.Cut(item, ":")
		id = strings.TrimSpace(id)
		if !ok || !kekIDPattern.MatchString(id) {
			return nil, fmt.Errorf("vault: %s: entry %d is not ID:KEY with an ID of lower-case letters, digits, _ and -", MasterKeysEnv, i+1)
		}
		material, err := parseMasterKey([]byte(key))
		if err == nil {
			err = checkMaterial(material)
		}
		if err != nil {
			return nil, fmt.Errorf("vault: %s: key %s: %w", MasterKeysEnv, id, err)
		}
		out = append(out, newKEK(id, SourceEnv, material))
		clear(material)
	}
	return out, nil
}

// GenerateKEK creates a new key-encryption key in a file
// <data>/keys/kek-<ID>.key (mode 0600) and adds it to the keyring. Its ID
// is k<N>_<8 hex digits>, N one more than the highest sequence number among
// the keyring's IDs and taken (the IDs the store knows, retired ones
// included). It refuses a keyring without a data directory.
func (k Keys) GenerateKEK(taken []string) (string, error) {
	if k.dataDir == "" {
		return "", errors.New("vault: no data directory to write a key file in")
	}
	seq := 1
	for _, id := range append(k.KEKIDs(), taken...) {
		if n, ok := kekSeq(id); ok && n >= seq {
			seq = n + 1
		}
	}
	material := make([]byte, MasterKeySize)
	if _, err := rand.Read(material); err != nil {
		return "", fmt.Errorf("vault: generate key: %w", err)
	}
	defer clear(material)
	id := derivedID(seq, material)
	dir := filepath.Join(k.dataDir, KeysDirName)
	path := filepath.Join(dir, "kek-"+id+".key")
	if _, err := createKeyFile(dir, path, base64.StdEncoding.EncodeToString, material); err != nil {
		return "", err
	}
	x := newKEK(id, SourceFile, material)
	x.path = path
	k.state.mu.Lock()
	k.state.keks[id] = x
	k.state.mu.Unlock()
	return id, nil
}

// kekSeq returns N of an ID k<N>_...
func kekSeq(id string) (int, bool) {
	rest, ok := strings.CutPrefix(id, "k")
	if !ok {
		return 0, false
	}
	num, _, ok := strings.Cut(rest, "_")
	n, err := strconv.Atoi(num)
	return n, ok && err == nil && n > 0
}

// destroy deletes the key file of a retired key-encryption key and drops
// the key from the keyring. It returns the deleted file, or "" when the key
// does not come from a file of the keys directory (the master key, which
// also roots the fingerprints and is never deleted, and keys from the
// environment, which the operator removes).
func (k Keys) destroy(id string) (string, error) {
	x := k.lookup(id)
	if x == nil || x.source != SourceFile || x == k.master {
		return "", nil
	}
	if err := os.Remove(x.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("vault: delete key file: %w", err)
	}
	syncDir(filepath.Dir(x.path))
	k.state.mu.Lock()
	delete(k.state.keks, id)
	k.state.mu.Unlock()
	return x.path, nil
}

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
	defer clear(buf)
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

// createKeyFile writes a key (new random bytes, or the given material) to a
// temporary file, syncs it, and links it into place. The link fails if
// another process (the CLI and the server share a data directory) created
// the file first; then that key is read, so both use the same one and
// nobody sees a half-written file.
func createKeyFile(dir, path string, encode func([]byte) string, material ...[]byte) ([]byte, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("vault: create key directory: %w", err)
	}
	var key []byte
	if len(material) > 0 {
		key = bytes.Clone(material[0])
	} else {
		key = make([]byte, MasterKeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("vault: generate master key: %w", err)
		}
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("vault: create key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600 already; Chmod makes that explicit
	// and independent of the umask.
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.WriteString(encode(key) + "\n")
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
		if errors.Is(err, fs.ErrExist) && len(material) == 0 {
			return readKeyFile(path)
		}
		return nil, fmt.Errorf("vault: install key file: %w", err)
	}
	syncDir(dir)
	return key, nil
}

// syncDir makes a directory's new or removed entries durable.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
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
	return nil, fmt.Errorf("key must be %d bytes written as 64 hex characters or as base64", MasterKeySize)
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
