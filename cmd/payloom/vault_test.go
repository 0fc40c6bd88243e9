package main

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var kekLineRE = regexp.MustCompile(`(?m)^(k[0-9]+_[0-9a-f]{8}|k2)\s+(\S+)\s+(yes|no)\s+(\S+)\s+(\d+)\s+(\d+)\s+(.*)$`)

// kekRows parses payloom vault status into ID -> [created, primary,
// retired, data keys, cards, this node].
func kekRows(t *testing.T, status string) map[string][]string {
	t.Helper()
	rows := map[string][]string{}
	for _, m := range kekLineRE.FindAllStringSubmatch(status, -1) {
		rows[m[1]] = m[2:]
	}
	if !strings.HasPrefix(status, "KEK ") || len(rows) != strings.Count(status, "\n")-1 {
		t.Fatalf("payloom vault status =\n%s\nwant a header and one line per key", status)
	}
	return rows
}

// noKeyMaterial fails if any output holds one of the secrets.
func noKeyMaterial(t *testing.T, secrets []string, outputs ...string) {
	t.Helper()
	for _, s := range secrets {
		for _, out := range outputs {
			if s != "" && strings.Contains(out, s) {
				t.Errorf("output %q contains key material", out)
			}
		}
	}
}

func TestVaultCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	env := map[string]string{"PAYLOOM_DATA": dir}
	status, _ := mustRun(t, env, "vault", "status")
	rows := kekRows(t, status)
	if len(rows) != 1 {
		t.Fatalf("vault status on a new data directory =\n%s\nwant only the master key", status)
	}
	var master string
	for id, r := range rows {
		master = id
		if r[1] != "no" || !strings.Contains(r[5], "never used") {
			t.Errorf("vault status row of the master key = %v; want not primary, never used", r)
		}
	}

	out, errOut := mustRun(t, env, "vault", "rotate")
	k2 := strings.TrimSpace(out)
	keyFile := filepath.Join(dir, "keys", "kek-"+k2+".key")
	info, err := os.Stat(keyFile)
	if err != nil || info.Mode().Perm() != 0o600 || !strings.Contains(errOut, "was "+master) {
		t.Fatalf("vault rotate = %q (stderr %q); key file %s: %v; want a 0600 file of the new key, rotated from %s",
			out, errOut, keyFile, err, master)
	}
	secrets := []string{readTrimmed(t, filepath.Join(dir, "master.key")), readTrimmed(t, keyFile)}

	status, _ = mustRun(t, env, "vault", "status")
	rows = kekRows(t, status)
	if rows[k2][1] != "yes" || rows[master][1] != "no" || rows[master][2] != "-" {
		t.Errorf("vault status after rotate =\n%s\nwant %s primary, %s not retired", status, k2, master)
	}
	_, stderr, err := run(t, env, "vault", "retire", k2)
	if err == nil || !strings.Contains(err.Error(), "payloom vault rotate first") {
		t.Errorf("vault retire of the primary = %v; want it refused, telling to rotate first", err)
	}
	_, retireOut := mustRun(t, env, "vault", "retire", master)
	if !strings.Contains(retireOut, "master key") {
		t.Errorf("vault retire of the master key printed %q; want it to say master.key stays", retireOut)
	}
	status, _ = mustRun(t, env, "vault", "status")
	if rows = kekRows(t, status); rows[master][2] == "-" {
		t.Errorf("vault status after retire =\n%s\nwant %s retired", status, master)
	}
	noKeyMaterial(t, secrets, out, errOut, stderr, retireOut, status)
}

func TestVaultRotateWithEnvKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	masterKey := strings.Repeat("5a", 32)
	env := map[string]string{"PAYLOOM_DATA": dir, "PAYLOOM_MASTER_KEY": masterKey}
	_, _, err := run(t, env, "vault", "rotate")
	if err == nil || !strings.Contains(err.Error(), "PAYLOOM_MASTER_KEYS") || !strings.Contains(err.Error(), "--to k2") {
		t.Fatalf("vault rotate with keys from the environment and no new one = %v; want instructions", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "keys")); !os.IsNotExist(err) {
		t.Fatalf("vault rotate with keys from the environment created %s (stat %v); want no key file", filepath.Join(dir, "keys"), err)
	}

	k2 := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	env["PAYLOOM_MASTER_KEYS"] = "k2:" + k2
	out, errOut := mustRun(t, env, "vault", "rotate")
	if strings.TrimSpace(out) != "k2" {
		t.Fatalf("vault rotate with k2 in PAYLOOM_MASTER_KEYS = %q (stderr %q); want k2", out, errOut)
	}
	status, _ := mustRun(t, env, "vault", "status")
	rows := kekRows(t, status)
	if len(rows) != 2 || rows["k2"][1] != "yes" {
		t.Fatalf("vault status =\n%s\nwant the master key and k2, primary", status)
	}
	var master string
	for id := range rows {
		if id != "k2" {
			master = id
		}
	}
	_, retireOut := mustRun(t, env, "vault", "retire", master)
	if !strings.Contains(retireOut, "env PAYLOOM_MASTER_KEY") {
		t.Errorf("vault retire of the master key from the environment printed %q; want it to say the master key stays", retireOut)
	}
	noKeyMaterial(t, []string{masterKey, k2}, out, errOut, status, retireOut)
}

func readTrimmed(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
