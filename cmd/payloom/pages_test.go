package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestServeRejectsBadPageConfiguration(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string
	}{
		{"relative public URL", nil, []string{"--public-url", "pay.example.com"}, "--public-url"},
		{"public URL with a path", nil, []string{"--public-url", "https://example.com/pay"}, "--public-url"},
		{"public URL ftp", map[string]string{"PAYLOOM_PUBLIC_URL": "ftp://example.com"}, nil, "PAYLOOM_PUBLIC_URL"},
		{"expiry interval", nil, []string{"--expiry-interval", "0s"}, "expiry-interval"},
		{"expiry interval env", map[string]string{"PAYLOOM_EXPIRY_INTERVAL": "often"}, nil, "PAYLOOM_EXPIRY_INTERVAL"},
		{"lookup grace", nil, []string{"--lookup-grace", "0s"}, "lookup-grace"},
		{"lookup grace below the crash recovery time", nil, []string{"--lookup-grace", "4m"}, "at least 4m10s"},
		{"late check interval env", map[string]string{"PAYLOOM_LATE_CHECK_INTERVAL": "-1m"}, nil, "PAYLOOM_LATE_CHECK_INTERVAL"},
		{"late check window", nil, []string{"--late-check-window", "0s"}, "late-check-window"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--data", dir}, tc.args...)
			_, _, err := run(t, tc.env, args...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("payloom %v = %v; want an error mentioning %q", args, err, tc.wantErr)
			}
		})
	}
}

func TestDefaultPublicURL(t *testing.T) {
	for _, tt := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}, "http://127.0.0.1:8080"},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 80}, "http://localhost:80"},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 8080}, "http://localhost:8080"},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 8080}, "http://[::1]:8080"},
	} {
		if got := defaultPublicURL(tt.addr); got != tt.want {
			t.Errorf("defaultPublicURL(%v) = %q; want %q", tt.addr, got, tt.want)
		}
	}
}

// The server mounts the pages next to the API, and payment_url uses
// --public-url.
func TestServeMountsPages(t *testing.T) {
	dir := t.TempDir()
	url, out := serveInProcess(t, map[string]string{"PAYLOOM_PUBLIC_URL": "https://pay.example.com/"}, "--addr", "127.0.0.1:0", "--data", dir)
	key := keyRE.FindString(out.String())
	if key == "" {
		t.Fatalf("no key in the banner:\n%s", out)
	}
	req, _ := http.NewRequest("POST", url+"/v1/payments", strings.NewReader(`{"amount": 500, "currency": "usd"}`))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		ID         string `json:"id"`
		PaymentURL string `json:"payment_url"`
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(b, &p); err != nil || !strings.HasPrefix(p.PaymentURL, "https://pay.example.com/pay/"+p.ID+"?s=") {
		t.Fatalf("POST /v1/payments = %s; want a payment_url on the public URL", b)
	}
	for path, want := range map[string]string{
		strings.TrimPrefix(p.PaymentURL, "https://pay.example.com"): "text/html; charset=utf-8",
		"/assets/page.css":   "text/css; charset=utf-8",
		"/sandbox/3ds/sbx_x": "text/html; charset=utf-8",
		"/v1/nothing":        "application/json",
	} {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Content-Type"); got != want {
			t.Errorf("GET %s: Content-Type %q; want %q", path, got, want)
		}
	}
}
