package vault

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// testMaster is a fixed master key for tests; not all of its bytes are
// printable, like a random key's.
var testMaster = func() []byte {
	b := make([]byte, MasterKeySize)
	for i := range b {
		b[i] = byte(i*7 + 1)
	}
	return b
}()

func mustKeys(t testing.TB, master []byte) *Keys {
	t.Helper()
	k, err := NewKeys(master)
	if err != nil {
		t.Fatalf("NewKeys: %v", err)
	}
	return k
}

func TestNewKeysDerivesSeparateKeys(t *testing.T) {
	k := mustKeys(t, testMaster)
	derived := map[string][]byte{
		"fingerprint": k.fp,
		"legacy card": derive(testMaster, labelEncryption, 32),
		"kek wrap":    derive(testMaster, labelKEKWrap, 32),
		"kek check":   k.master.check,
	}
	for name, a := range derived {
		if bytes.Equal(a, testMaster[:len(a)]) {
			t.Errorf("the %s key equals (a prefix of) the master key", name)
		}
		for other, b := range derived {
			if name != other && bytes.Equal(a, b[:min(len(a), len(b))]) {
				t.Errorf("the %s and %s keys are equal; want independent derivations", name, other)
			}
		}
	}
	if len(k.fp) != 32 || len(k.master.check) != checkValueSize {
		t.Fatalf("key lengths = %d, %d; want 32, %d", len(k.fp), len(k.master.check), checkValueSize)
	}
	k2 := mustKeys(t, testMaster)
	if k.KeyID() != k2.KeyID() || !bytes.Equal(k.fp, k2.fp) || !bytes.Equal(k.master.check, k2.master.check) {
		t.Fatal("the same master key gave different keys")
	}
	other := mustKeys(t, bytes.Repeat([]byte{0x43}, MasterKeySize))
	if other.KeyID() == k.KeyID() || bytes.Equal(other.master.check, k.master.check) {
		t.Fatalf("two master keys share KeyID %q or a check value", k.KeyID())
	}
	if !strings.HasPrefix(k.KeyID(), "k1_") || len(k.KeyID()) != 11 {
		t.Fatalf("KeyID() = %q; want k1_ and 8 hex characters", k.KeyID())
	}
}

func TestNewKeysRejectsBadMasters(t *testing.T) {
	for _, m := range [][]byte{nil, make([]byte, 16), make([]byte, 33), make([]byte, 32)} {
		if _, err := NewKeys(m); err == nil {
			t.Errorf("NewKeys(%d bytes, zero=%v) = nil error; want an error", len(m), isZero(m))
		}
	}
}

func TestKeysRedacted(t *testing.T) {
	k := mustKeys(t, testMaster)
	secrets := []string{
		hex.EncodeToString(derive(testMaster, labelEncryption, 32)), hex.EncodeToString(k.fp),
		hex.EncodeToString(testMaster), hex.EncodeToString(derive(testMaster, labelKEKWrap, 32)),
		fmt.Sprint(k.fp), fmt.Sprint(testMaster),
	}
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("keys", "keys", k, "deref", *k)
	js, _ := json.Marshal(map[string]any{"p": k, "v": *k})
	outs := map[string]string{
		"%v": fmt.Sprintf("%v", k), "%+v": fmt.Sprintf("%+v", k), "%#v": fmt.Sprintf("%#v", k),
		"%x": fmt.Sprintf("%x", k), "%s": fmt.Sprintf("%s", k), "%d": fmt.Sprintf("%d", k),
		"deref %+v": fmt.Sprintf("%+v", *k), "deref %x": fmt.Sprintf("%x", *k),
		"struct": fmt.Sprintf("%+v", struct{ K *Keys }{k}),
		"json":   string(js), "slog": logBuf.String(),
	}
	for name, out := range outs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s printout %q contains key material", name, out)
			}
		}
		if !strings.Contains(out, "REDACTED") {
			t.Errorf("%s printout %q; want it redacted", name, out)
		}
	}
}

func TestLoadKeysCreatesKeyFile(t *testing.T) {
	t.Setenv(MasterKeyEnv, "")
	dir := filepath.Join(t.TempDir(), "data")
	k1, err := LoadKeys(dir)
	if err != nil {
		t.Fatalf("LoadKeys(new dir) = %v", err)
	}
	info, err := os.Stat(filepath.Join(dir, KeyFileName))
	if err != nil {
		t.Fatalf("key file not created: %v", err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Fatalf("key file mode = %04o; want 0600", perm)
	}
	k2, err := LoadKeys(dir)
	if err != nil {
		t.Fatalf("LoadKeys(second time) = %v", err)
	}
	if k1.KeyID() != k2.KeyID() || !bytes.Equal(k1.fp, k2.fp) {
		t.Fatal("second LoadKeys gave a different key; want the one in the file")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("data dir holds %d entries; want only %s (no temporary files left)", len(entries), KeyFileName)
	}
}

func TestLoadKeysConcurrentCreationAgrees(t *testing.T) {
	t.Setenv(MasterKeyEnv, "")
	dir := t.TempDir()
	const n = 8
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			k, err := LoadKeys(dir)
			errs[i] = err
			if err == nil {
				ids[i] = k.KeyID()
			}
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("LoadKeys #%d = %q, %v; want %q, nil like #0", i, ids[i], errs[i], ids[0])
		}
	}
}

func TestLoadKeysRefusesOpenPermissions(t *testing.T) {
	t.Setenv(MasterKeyEnv, "")
	for _, perm := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o606} {
		dir := t.TempDir()
		path := filepath.Join(dir, KeyFileName)
		if err := os.WriteFile(path, []byte(hex.EncodeToString(testMaster)), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, perm); err != nil {
			t.Fatal(err)
		}
		_, err := LoadKeys(dir)
		if err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("LoadKeys(key file mode %04o) = %v; want an error telling to chmod 600", perm, err)
		}
		if err != nil && strings.Contains(err.Error(), hex.EncodeToString(testMaster)) {
			t.Errorf("LoadKeys error %q contains the key", err)
		}
	}
}

func TestLoadKeysFileFormats(t *testing.T) {
	t.Setenv(MasterKeyEnv, "")
	want := mustKeys(t, testMaster).KeyID()
	for name, content := range map[string][]byte{
		"raw":             testMaster,
		"hex":             []byte(hex.EncodeToString(testMaster)),
		"hex newline":     []byte(hex.EncodeToString(testMaster) + "\n"),
		"base64":          []byte(base64.StdEncoding.EncodeToString(testMaster)),
		"base64url nopad": []byte(base64.RawURLEncoding.EncodeToString(testMaster) + "\n"),
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, KeyFileName), content, 0o600); err != nil {
			t.Fatal(err)
		}
		k, err := LoadKeys(dir)
		if err != nil || k.KeyID() != want {
			t.Errorf("LoadKeys(%s file) = %v, %v; want KeyID %q", name, k, err, want)
		}
	}
	for name, content := range map[string][]byte{
		"empty":        nil,
		"short hex":    []byte("abcdef"),
		"passphrase":   []byte("correct horse battery staple!!!!"),
		"bad hex":      []byte(strings.Repeat("zz", 32)),
		"16 bytes b64": []byte(base64.StdEncoding.EncodeToString(make([]byte, 16))),
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, KeyFileName), content, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadKeys(dir); err == nil {
			t.Errorf("LoadKeys(%s file) = nil error; want an error", name)
		} else if len(content) > 4 && strings.Contains(err.Error(), string(content)) {
			t.Errorf("LoadKeys(%s file) error %q echoes the file", name, err)
		}
	}
}

func TestLoadKeysFromEnv(t *testing.T) {
	want := mustKeys(t, testMaster).KeyID()
	for name, v := range map[string]string{
		"hex":       hex.EncodeToString(testMaster),
		"HEX":       strings.ToUpper(hex.EncodeToString(testMaster)),
		"base64":    base64.StdEncoding.EncodeToString(testMaster),
		"base64url": base64.RawURLEncoding.EncodeToString(testMaster),
	} {
		t.Setenv(MasterKeyEnv, v)
		dir := t.TempDir()
		k, err := LoadKeys(dir)
		if err != nil || k.KeyID() != want {
			t.Errorf("LoadKeys(env %s) = %v, %v; want KeyID %q", name, k, err, want)
		}
		if _, err := os.Stat(filepath.Join(dir, KeyFileName)); !os.IsNotExist(err) {
			t.Errorf("LoadKeys(env %s) touched the key file (stat: %v); want no file", name, err)
		}
	}
	bad := "0123456789abcdef0123456789abcdef" // 16 bytes of hex
	t.Setenv(MasterKeyEnv, bad)
	_, err := LoadKeys(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), MasterKeyEnv) || strings.Contains(err.Error(), bad) {
		t.Fatalf("LoadKeys(env of 16 bytes) = %v; want an error naming %s without its value", err, MasterKeyEnv)
	}
}
