package vault

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// envMap is an environment for LoadKeyring.
type envMap map[string]string

func (m envMap) get(k string) string { return m[k] }

// material returns a distinct 32-byte key for each seed.
func material(seed byte) []byte {
	b := make([]byte, MasterKeySize)
	for i := range b {
		b[i] = seed ^ byte(i*13+5)
	}
	return b
}

// writeKEKFile writes a key file as an operator (or GenerateKEK) would.
func writeKEKFile(t *testing.T, dataDir, id string, content []byte, perm os.FileMode) string {
	t.Helper()
	dir := filepath.Join(dataDir, KeysDirName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "kek-"+id+".key")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	return path
}

// newDataDir returns a data directory holding testMaster as master.key.
func newDataDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, KeyFileName), []byte(hex.EncodeToString(testMaster)), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func mustLoadKeyring(t *testing.T, dir string, env envMap) *Keys {
	t.Helper()
	k, err := LoadKeyring(dir, env.get)
	if err != nil {
		t.Fatalf("LoadKeyring(%s) = %v", dir, err)
	}
	return k
}

func TestWrapUnwrap(t *testing.T) {
	k1 := newKEK("k1", SourceFile, material(1))
	k2 := newKEK("k2", SourceFile, material(2))
	dek := material(9)
	wrapped := k1.wrap("mrch_a", "dek_1", dek)
	if bytes.Contains(wrapped, dek) {
		t.Fatal("the wrapped data key contains the data key")
	}
	got, err := k1.unwrap("mrch_a", "dek_1", wrapped)
	if err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("unwrap(wrap(dek)) = %x, %v; want the data key", got, err)
	}
	if again := k1.wrap("mrch_a", "dek_1", dek); bytes.Equal(again, wrapped) {
		t.Fatal("two wraps of one key are equal; want a fresh nonce each time")
	}
	flipped := bytes.Clone(wrapped)
	flipped[len(flipped)-1] ^= 1
	relabelled := newKEK("k2", SourceFile, material(1)) // k1's material under another ID
	for _, tc := range []struct {
		name     string
		k        *kek
		merchant string
		dekID    string
		wrapped  []byte
	}{
		{"another merchant", k1, "mrch_b", "dek_1", wrapped},
		{"another data key ID", k1, "mrch_a", "dek_2", wrapped},
		{"another KEK", k2, "mrch_a", "dek_1", wrapped},
		{"the KEK's material under another ID", relabelled, "mrch_a", "dek_1", wrapped},
		{"a flipped bit", k1, "mrch_a", "dek_1", flipped},
		{"a truncated key", k1, "mrch_a", "dek_1", wrapped[:nonceSize+4]},
		{"nothing", k1, "mrch_a", "dek_1", nil},
	} {
		if got, err := tc.k.unwrap(tc.merchant, tc.dekID, tc.wrapped); err == nil {
			t.Errorf("unwrap with %s = %x, nil; want an error", tc.name, got)
		}
	}
}

func TestLoadKeyringFilesAndEnv(t *testing.T) {
	dir := newDataDir(t)
	writeKEKFile(t, dir, "k2_file", []byte(base64.StdEncoding.EncodeToString(material(2))+"\n"), 0o600)
	writeKEKFile(t, dir, "k3_hex", []byte(hex.EncodeToString(material(3))), 0o400)
	// Files that are not key files are ignored.
	writeKEKFile(t, dir, "x", nil, 0o600)
	if err := os.Rename(filepath.Join(dir, KeysDirName, "kek-x.key"), filepath.Join(dir, KeysDirName, ".kek-k9.key.tmp-1")); err != nil {
		t.Fatal(err)
	}
	env := envMap{MasterKeysEnv: " k4_env:" + base64.RawURLEncoding.EncodeToString(material(4)) +
		", k5-env:" + hex.EncodeToString(material(5)) + ",,k2_file:" + base64.StdEncoding.EncodeToString(material(2))}
	k := mustLoadKeyring(t, dir, env)
	master := mustKeys(t, testMaster).KeyID()
	want := []string{master, "k2_file", "k3_hex", "k4_env", "k5-env"}
	if got := k.KEKIDs(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("KEKIDs() = %v; want %v", got, want)
	}
	for id, wantSrc := range map[string]KeySource{
		master: SourceMasterFile, "k2_file": SourceFile, "k3_hex": SourceFile, "k4_env": SourceEnv, "k5-env": SourceEnv,
	} {
		if src, _, _ := k.Source(id); src != wantSrc {
			t.Errorf("Source(%q) = %q; want %q", id, src, wantSrc)
		}
	}
	for id, seed := range map[string]byte{"k2_file": 2, "k3_hex": 3, "k4_env": 4, "k5-env": 5} {
		if got := k.lookup(id); got == nil || !bytes.Equal(got.check, newKEK(id, SourceFile, material(seed)).check) {
			t.Errorf("lookup(%q) does not hold the key from its source", id)
		}
	}
	if !k.FromEnv() {
		t.Error("FromEnv() = false with PAYLOOM_MASTER_KEYS set; want true")
	}
	if mustLoadKeyring(t, dir, nil).FromEnv() {
		t.Error("FromEnv() = true with keys only from files; want false")
	}
}

func TestLoadKeyringRefuses(t *testing.T) {
	b64 := func(seed byte) string { return base64.StdEncoding.EncodeToString(material(seed)) }
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string) envMap
		want  string // in the error
	}{
		{"group-readable key file", func(t *testing.T, dir string) envMap {
			writeKEKFile(t, dir, "k2", []byte(b64(2)), 0o640)
			return nil
		}, "chmod 600"},
		{"world-readable key file", func(t *testing.T, dir string) envMap {
			writeKEKFile(t, dir, "k2", []byte(b64(2)), 0o604)
			return nil
		}, "chmod 600"},
		{"group-writable key file", func(t *testing.T, dir string) envMap {
			writeKEKFile(t, dir, "k2", []byte(b64(2)), 0o620)
			return nil
		}, "chmod 600"},
		{"bad ID in a file name", func(t *testing.T, dir string) envMap {
			writeKEKFile(t, dir, "K2:bad", []byte(b64(2)), 0o600)
			return nil
		}, "not a key ID"},
		{"short key file", func(t *testing.T, dir string) envMap {
			writeKEKFile(t, dir, "k2", []byte(base64.StdEncoding.EncodeToString(make([]byte, 16))), 0o600)
			return nil
		}, "32 bytes"},
		{"zero key file", func(t *testing.T, dir string) envMap {
			writeKEKFile(t, dir, "k2", []byte(base64.StdEncoding.EncodeToString(make([]byte, 32))), 0o600)
			return nil
		}, "all zero"},
		{"two keys under one ID", func(t *testing.T, dir string) envMap {
			writeKEKFile(t, dir, "k2", []byte(b64(2)), 0o600)
			return envMap{MasterKeysEnv: "k2:" + b64(3)}
		}, "two different keys have the ID k2"},
		{"env entry without ID", func(t *testing.T, dir string) envMap {
			return envMap{MasterKeysEnv: b64(2)}
		}, "entry 1 is not ID:KEY"},
		{"env entry with a bad ID", func(t *testing.T, dir string) envMap {
			return envMap{MasterKeysEnv: "k2:" + b64(2) + ",K 3:" + b64(3)}
		}, "entry 2 is not ID:KEY"},
		{"env entry with a short key", func(t *testing.T, dir string) envMap {
			return envMap{MasterKeysEnv: "k2:" + base64.StdEncoding.EncodeToString(make([]byte, 20))}
		}, "key k2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := newDataDir(t)
			env := tc.setup(t, dir)
			k, err := LoadKeyring(dir, env.get)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("LoadKeyring = %v, %v; want an error containing %q", k, err, tc.want)
			}
			for seed := byte(2); seed <= 3; seed++ {
				if strings.Contains(err.Error(), b64(seed)) || strings.Contains(err.Error(), hex.EncodeToString(material(seed))) {
					t.Errorf("LoadKeyring error %q contains key material", err)
				}
			}
		})
	}
}

func TestGenerateKEK(t *testing.T) {
	dir := newDataDir(t)
	k := mustLoadKeyring(t, dir, nil)
	id, err := k.GenerateKEK([]string{"k6_retired", "other"})
	if err != nil {
		t.Fatalf("GenerateKEK = %v", err)
	}
	if !strings.HasPrefix(id, "k7_") || len(id) != len("k7_")+8 {
		t.Fatalf("GenerateKEK(taken k6_retired) = %q; want k7_ and 8 hex digits", id)
	}
	path := filepath.Join(dir, KeysDirName, "kek-"+id+".key")
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file %s: %v, mode %v; want it with mode 0600", path, err, info.Mode().Perm())
	}
	if info, err := os.Stat(filepath.Join(dir, KeysDirName)); err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("keys directory: %v; want mode 0700", err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, KeysDirName))
	if len(entries) != 1 {
		t.Fatalf("keys directory holds %d entries; want only the key file (no temporary file left)", len(entries))
	}
	if k.lookup(id) == nil {
		t.Fatalf("GenerateKEK did not add %s to the keyring", id)
	}
	// Another process loading the directory finds the same key.
	other := mustLoadKeyring(t, dir, nil)
	if got := other.lookup(id); got == nil || !bytes.Equal(got.check, k.lookup(id).check) {
		t.Fatalf("a fresh keyring does not hold %s as written", id)
	}
	next, err := other.GenerateKEK(nil)
	if err != nil || !strings.HasPrefix(next, "k8_") {
		t.Fatalf("second GenerateKEK = %q, %v; want k8_...", next, err)
	}
	if _, err := mustKeys(t, testMaster).GenerateKEK(nil); err == nil {
		t.Fatal("GenerateKEK on a keyring without a data directory = nil error; want an error")
	}
}

// TestKeyringFindsNewFiles: a key file written by another process after
// the keyring was loaded is found by find (the server picking up a
// rotation), and a deleted one leaves the keyring at the next reload.
func TestKeyringFindsNewFiles(t *testing.T) {
	dir := newDataDir(t)
	server := mustLoadKeyring(t, dir, nil)
	cli := mustLoadKeyring(t, dir, nil)
	id, err := cli.GenerateKEK(nil)
	if err != nil {
		t.Fatal(err)
	}
	if server.lookup(id) != nil {
		t.Fatal("the server's keyring holds the new key before reading its files")
	}
	got, err := server.find(id)
	if err != nil || !bytes.Equal(got.check, cli.lookup(id).check) {
		t.Fatalf("find(%q) after another process wrote it = %v, %v; want the key", id, got, err)
	}
	if _, err := cli.destroy(id); err != nil {
		t.Fatal(err)
	}
	if err := server.reload(); err != nil {
		t.Fatal(err)
	}
	if server.lookup(id) != nil {
		t.Fatalf("the keyring still holds %s after its file was deleted and the files re-read", id)
	}
	if _, err := server.find("k9_unknown"); err == nil || !strings.Contains(err.Error(), "not in this node's keyring") {
		t.Fatalf("find(unknown) = %v; want an error saying the node lacks it", err)
	}
}

func TestKeyTypesRedacted(t *testing.T) {
	m := material(7)
	k := newKEK("k2_x", SourceFile, m)
	raw := material(8)
	dk := newDataKey("dek_1", "mrch_a", raw)
	secrets := []string{hex.EncodeToString(m), hex.EncodeToString(raw), fmt.Sprint(m), fmt.Sprint(raw),
		hex.EncodeToString(derive(m, labelKEKWrap, 32))}
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("keys", "kek", k, "dek", dk)
	js, _ := json.Marshal(map[string]any{"dek": dk})
	outs := map[string]string{"slog": logBuf.String(), "json": string(js)}
	for _, verb := range []string{"%v", "%+v", "%#v", "%x", "%s", "%d"} {
		outs["kek "+verb] = fmt.Sprintf(verb, k)
		outs["dek "+verb] = fmt.Sprintf(verb, dk)
		outs["struct "+verb] = fmt.Sprintf(verb, struct {
			K *kek
			D *dataKey
		}{k, dk})
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

func TestDestroyKeepsMasterAndEnvKeys(t *testing.T) {
	dir := newDataDir(t)
	k := mustLoadKeyring(t, dir, envMap{MasterKeysEnv: "k4:" + base64.StdEncoding.EncodeToString(material(4))})
	for _, id := range []string{k.KeyID(), "k4"} {
		path, err := k.destroy(id)
		if err != nil || path != "" {
			t.Errorf("destroy(%q) = %q, %v; want no file deleted", id, path, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, KeyFileName)); errors.Is(err, fs.ErrNotExist) {
		t.Fatal("destroy deleted master.key, the root of the fingerprints")
	}
}
