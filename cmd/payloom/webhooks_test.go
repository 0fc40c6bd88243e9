package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/payloom/payloom/webhook"
)

func TestServeRejectsBadWebhookConfiguration(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string
	}{
		{"schedule env", map[string]string{"PAYLOOM_WEBHOOK_RETRY_SCHEDULE": "0s,soon"}, nil, "PAYLOOM_WEBHOOK_RETRY_SCHEDULE"},
		{"negative schedule entry", map[string]string{"PAYLOOM_WEBHOOK_RETRY_SCHEDULE": "0s,-5s"}, nil, "PAYLOOM_WEBHOOK_RETRY_SCHEDULE"},
		{"empty schedule flag", nil, []string{"--webhook-retry-schedule", " "}, "webhook-retry-schedule"},
		{"lease env", map[string]string{"PAYLOOM_WEBHOOK_LEASE": "forever"}, nil, "PAYLOOM_WEBHOOK_LEASE"},
		{"negative lease", map[string]string{"PAYLOOM_WEBHOOK_LEASE": "-1s"}, nil, "PAYLOOM_WEBHOOK_LEASE"},
		{"poll interval env", map[string]string{"PAYLOOM_WEBHOOK_POLL_INTERVAL": "often"}, nil, "PAYLOOM_WEBHOOK_POLL_INTERVAL"},
		{"zero poll interval", map[string]string{"PAYLOOM_WEBHOOK_POLL_INTERVAL": "0s"}, nil, "PAYLOOM_WEBHOOK_POLL_INTERVAL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--data", dir, "--addr", "127.0.0.1:0"}, tc.args...)
			_, _, err := run(t, tc.env, args...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("payloom %v with %v = %v; want an error mentioning %q", args, tc.env, err, tc.wantErr)
			}
		})
	}
}

func TestScheduleFlag(t *testing.T) {
	var f scheduleFlag
	if err := f.Set("0s, 100ms,1m"); err != nil {
		t.Fatalf("Set = %v", err)
	}
	if got := formatSchedule(f.schedule); got != "0s,100ms,1m0s" {
		t.Errorf("schedule = %s; want 0s,100ms,1m0s", got)
	}
	if got, err := webhook.ParseSchedule(formatSchedule(webhook.DefaultSchedule)); err != nil ||
		formatSchedule(got) != formatSchedule(webhook.DefaultSchedule) {
		t.Errorf("ParseSchedule(formatSchedule(DefaultSchedule)) = %v, %v; want the default back", got, err)
	}
}

// signedDelivery returns the headers and body of a delivery signed with
// secret at ts.
func signedDelivery(t *testing.T, secret string, ts time.Time, body string) http.Header {
	t.Helper()
	sig, err := webhook.Sign(secret, "evt_test", ts, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(webhook.HeaderID, "evt_test")
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(webhook.HeaderSignature, sig)
	return h
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func saved(t *testing.T, h http.Header, body string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := webhook.WriteDelivery(&b, h, []byte(body)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestWebhooksVerify(t *testing.T) {
	s, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	secret := s.Reveal()
	other, _ := webhook.NewSecret()
	const body = `{"id":"evt_test","object":"event","type":"payment.captured"}`
	now := time.Now()
	good := writeFile(t, "good.json", saved(t, signedDelivery(t, secret, now, body), body))
	tampered := writeFile(t, "tampered.json", saved(t, signedDelivery(t, secret, now, body), strings.Replace(body, "captured", "capturee", 1)))
	old := writeFile(t, "old.json", saved(t, signedDelivery(t, secret, now.Add(-301*time.Second), body), body))
	raw := "POST /hooks HTTP/1.1\nHost: shop.example\nContent-Type: application/json\n"
	for k, v := range signedDelivery(t, secret, now, body) {
		raw += k + ": " + v[0] + "\n"
	}
	raw += "Content-Length: " + strconv.Itoa(len(body)) + "\n\n" + body
	rawFile := writeFile(t, "raw.http", []byte(raw))

	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string // "" = valid
	}{
		{"valid", nil, []string{"--secret", secret, "--file", good}, ""},
		{"raw HTTP request", nil, []string{"--secret", secret, "--file", rawFile}, ""},
		{"secret from env", map[string]string{"PAYLOOM_WEBHOOK_SECRET": secret}, []string{"--file", good}, ""},
		{"one changed byte", nil, []string{"--secret", secret, "--file", tampered}, "no valid signature"},
		{"wrong secret", nil, []string{"--secret", other.Reveal(), "--file", good}, "no valid signature"},
		{"301 seconds old", nil, []string{"--secret", secret, "--file", old}, "tolerance"},
		{"old within a wider tolerance", nil, []string{"--secret", secret, "--file", old, "--tolerance", "10m"}, ""},
		{"malformed secret", nil, []string{"--secret", "whsec_%%%", "--file", good}, "invalid signing secret"},
		{"no secret", nil, []string{"--file", good}, "--secret"},
		{"no file", nil, []string{"--secret", secret}, "--file"},
		{"missing file", nil, []string{"--secret", secret, "--file", filepath.Join(t.TempDir(), "nope.json")}, "no such file"},
		{"not a delivery", nil, []string{"--secret", secret, "--file", writeFile(t, "junk", []byte("{]"))}, "not valid JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := run(t, tc.env, append([]string{"webhooks", "verify"}, tc.args...)...)
			if tc.wantErr == "" {
				if err != nil || out != "valid\n" {
					t.Errorf("webhooks verify = %q, %v; want \"valid\"", out, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || out != "" {
				t.Errorf("webhooks verify = %q, %v; want an error mentioning %q and no output", out, err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), strings.TrimPrefix(secret, webhook.SecretPrefix)) {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}

	t.Run("stdin", func(t *testing.T) {
		for _, tc := range []struct {
			in   []byte
			want bool
		}{
			{saved(t, signedDelivery(t, secret, now, body), body), true},
			{saved(t, signedDelivery(t, secret, now, body), body+" "), false},
		} {
			m, out, _ := testMain(nil)
			m.Stdin = bytes.NewReader(tc.in)
			err := m.Run(context.Background(), []string{"webhooks", "verify", "--secret", secret, "--file", "-"})
			if got := err == nil && out.String() == "valid\n"; got != tc.want {
				t.Errorf("webhooks verify --file - = %q, %v; want valid %v", out.String(), err, tc.want)
			}
		}
	})
}

// TestServeDeliversWebhooks checks the wiring: an endpoint created through
// the API receives the events of a payment, signed with its secret.
func TestServeDeliversWebhooks(t *testing.T) {
	type got struct {
		header http.Header
		body   []byte
	}
	deliveries := make(chan got, 16)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		deliveries <- got{r.Header.Clone(), b}
	}))
	defer rcv.Close()

	env := map[string]string{
		"PAYLOOM_DATA": filepath.Join(t.TempDir(), "data"), "PAYLOOM_ADDR": "127.0.0.1:0", "PAYLOOM_LOG_LEVEL": "warn",
		"PAYLOOM_WEBHOOK_POLL_INTERVAL": "50ms",
	}
	url, out := serveInProcess(t, env)
	key := keyRE.FindString(out.String())
	call := func(method, path, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, url+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		b := readBody(t, resp)
		if err := json.Unmarshal(b, &v); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s = %d %s; want 200", method, path, resp.StatusCode, b)
		}
		return v
	}
	ep := call("POST", "/v1/webhook_endpoints", `{"url": "`+rcv.URL+`/hooks", "enabled_events": ["payment.captured"]}`)
	secret, _ := ep["secret"].(string)
	tok := call("POST", "/v1/tokens", fmt.Sprintf(`{"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": %d}}`, time.Now().Year()+2))
	pay := call("POST", "/v1/payments", `{"amount": 990, "currency": "EUR", "payment_method": {"type": "card", "card": {"token": "`+tok["id"].(string)+`"}}}`)

	select {
	case d := <-deliveries:
		// What a merchant receives is scanned like a response.
		if err := canaryFor(t).Response("WEBHOOK", "/hooks", 200, d.body); err != nil {
			t.Error(err)
		}
		if err := webhook.Verify(secret, d.header, d.body, 0); err != nil {
			t.Fatalf("delivery does not verify: %v", err)
		}
		var ev struct {
			Type string `json:"type"`
			Data struct {
				Object struct {
					ID string `json:"id"`
				} `json:"object"`
			} `json:"data"`
		}
		if err := json.Unmarshal(d.body, &ev); err != nil || ev.Type != "payment.captured" || ev.Data.Object.ID != pay["id"] {
			t.Errorf("delivery = %s; want payment.captured of %s", d.body, pay["id"])
		}
	case <-time.After(time.Minute):
		t.Fatal("no delivery within a minute")
	}
}
