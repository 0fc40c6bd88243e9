package webhook_test

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/payloom/payloom/webhook"
)

// signed returns the headers and body of a delivery signed now.
func signed(t *testing.T, secret string) (http.Header, []byte) {
	t.Helper()
	body := []byte(`{"id":"evt_1","object":"event","type":"payment.captured","data":{"object":{"note":"é \"q\""}}}`)
	now := time.Now()
	sig, err := webhook.Sign(secret, "evt_1", now, body)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("webhook-id", "evt_1")
	h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	h.Set("webhook-signature", sig)
	h.Set("Content-Type", "application/json")
	return h, body
}

func writeFile(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "delivery")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// rawRequest renders a request as it arrives on the wire.
func rawRequest(h http.Header, body []byte, eol string) []byte {
	var b bytes.Buffer
	b.WriteString("POST /hooks?tenant=1 HTTP/1.1" + eol + "Host: example.com" + eol)
	for _, name := range []string{"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature", "Content-Type"} {
		b.WriteString(name + ": " + h.Get(name) + eol)
	}
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + eol + eol)
	b.Write(body)
	return b.Bytes()
}

func TestVerifyFile(t *testing.T) {
	secret, _ := webhook.NewSecret()
	other, _ := webhook.NewSecret()
	h, body := signed(t, secret.Reveal())
	var saved bytes.Buffer
	if err := webhook.WriteDelivery(&saved, h, body); err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Replace(saved.Bytes(), []byte("payment.captured"), []byte("payment.canceled"), 1)
	changedRaw := rawRequest(h, body, "\r\n")
	changedRaw[len(changedRaw)-3]++
	tests := []struct {
		name    string
		file    []byte
		secret  string
		wantErr error // nil: verifies; errAny: some error
	}{
		{"JSON form", saved.Bytes(), secret.Reveal(), nil},
		{"JSON form with list values and spaces", []byte("\n  " + strings.Replace(saved.String(),
			`"webhook-id": "evt_1"`, `"webhook-id": ["evt_1"]`, 1)), secret.Reveal(), nil},
		{"raw HTTP request", rawRequest(h, body, "\r\n"), secret.Reveal(), nil},
		{"raw HTTP request with bare newlines", rawRequest(h, body, "\n"), secret.Reveal(), nil},
		{"JSON form, one byte changed", tampered, secret.Reveal(), webhook.ErrNoValidSignature},
		{"raw request, one byte changed", changedRaw, secret.Reveal(), webhook.ErrNoValidSignature},
		{"wrong secret", saved.Bytes(), other.Reveal(), webhook.ErrNoValidSignature},
		{"empty file", nil, secret.Reveal(), errAny},
		{"JSON without body", []byte(`{"headers":{}}`), secret.Reveal(), errAny},
		{"neither form", []byte("hello"), secret.Reveal(), errAny},
	}
	for _, tt := range tests {
		err := webhook.VerifyFile(tt.secret, writeFile(t, tt.file), 0)
		switch {
		case tt.wantErr == nil && err != nil:
			t.Errorf("%s: VerifyFile = %v; want nil", tt.name, err)
		case tt.wantErr == errAny && err == nil:
			t.Errorf("%s: VerifyFile = nil; want an error", tt.name)
		case tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
			t.Errorf("%s: VerifyFile = %v; want %v", tt.name, err, tt.wantErr)
		}
	}
	if err := webhook.VerifyFile(secret.Reveal(), filepath.Join(t.TempDir(), "missing"), 0); err == nil {
		t.Errorf("VerifyFile(missing file) = nil; want an error")
	}
}

var errAny = errors.New("any error")

// TestReadDeliveryKeepsBodyExact: the body comes back byte for byte from
// both forms (signatures are over exact bytes).
func TestReadDeliveryKeepsBodyExact(t *testing.T) {
	secret, _ := webhook.NewSecret()
	h, body := signed(t, secret.Reveal())
	var saved bytes.Buffer
	if err := webhook.WriteDelivery(&saved, h, body); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"json": saved.Bytes(), "raw": rawRequest(h, body, "\r\n")} {
		gh, gb, err := webhook.ReadDelivery(bytes.NewReader(data))
		if err != nil || !bytes.Equal(gb, body) || gh.Get("webhook-signature") != h.Get("webhook-signature") {
			t.Errorf("ReadDelivery(%s) = body %q, signature %q, %v; want %q, %q", name, gb, gh.Get("webhook-signature"), err, body, h.Get("webhook-signature"))
		}
	}
}

func FuzzReadDelivery(f *testing.F) {
	h := http.Header{}
	h.Set("webhook-id", "evt_1")
	h.Set("webhook-timestamp", "1700000000")
	h.Set("webhook-signature", "v1,AAAA")
	var saved bytes.Buffer
	webhook.WriteDelivery(&saved, h, []byte(`{"a":1}`))
	f.Add(saved.Bytes())
	f.Add(rawRequest(h, []byte(`{"a":1}`), "\r\n"))
	f.Add([]byte(`{"headers":{"x":[1]},"body":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, body, err := webhook.ReadDelivery(bytes.NewReader(data))
		if err == nil && (h == nil || body == nil) {
			t.Errorf("ReadDelivery(%q) = nil headers or body without an error", data)
		}
	})
}
