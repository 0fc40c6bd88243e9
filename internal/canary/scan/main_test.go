package main

import (
	"os"
	"path/filepath"
	"testing"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	testlog := filepath.Join(t.TempDir(), "test.log")
	write(t, testlog, "ok  \tgithub.com/payloom/payloom/api\t12.3s\n")

	// Nothing recorded yet: the canary was not fed.
	if code := run([]string{"-recorded", dir, testlog}); code != 1 {
		t.Errorf("run(empty canary dir) = %d; want 1", code)
	}
	write(t, filepath.Join(dir, "a.responses"), "GET /v1/payments 200\n{\"last4\":\"4242\"}\n")
	write(t, filepath.Join(dir, "a.log"), "{\"msg\":\"request\"}\n")
	write(t, filepath.Join(dir, "a.db.jsonl"), "{\"table\":\"payments\",\"row\":{\"amount\":1000}}\n")
	if code := run([]string{"-recorded", dir, testlog}); code != 0 {
		t.Errorf("run(clean) = %d; want 0", code)
	}
	// A card number in the test output (a panic, a failure message).
	write(t, testlog, "panic: bad card 4000 0566 5566 5556\n")
	if code := run([]string{"-recorded", dir, testlog}); code != 1 {
		t.Errorf("run(card in the test output) = %d; want 1", code)
	}
	if code := run(nil); code != 2 {
		t.Errorf("run() = %d; want 2 (usage)", code)
	}
}
