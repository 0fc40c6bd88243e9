package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCreatePayment(t *testing.T) {
	srv := httptest.NewServer(newHandler())
	defer srv.Close()
	valid := `{"amount":1000,"currency":"USD","payment_method":{"type":"card","card":{"token":"tok_1"}}}`
	tests := []struct {
		name        string
		auth, ctype string
		body        string
		status      int
		code        string
	}{
		{"valid", "Bearer sk_test_x", "application/json", valid, 200, ""},
		{"no key", "", "application/json", valid, 401, "auth_failed"},
		{"form body", "Bearer sk_test_x", "application/x-www-form-urlencoded", "amount=1000", 415, "unsupported_media_type"},
		{"malformed", "Bearer sk_test_x", "application/json", `{"amount":`, 400, "invalid_json"},
		{"unknown field", "Bearer sk_test_x", "application/json", `{"amount":1000,"amont":1}`, 400, "invalid_json"},
		{"zero amount", "Bearer sk_test_x", "application/json", strings.Replace(valid, "1000", "0", 1), 400, "validation_error"},
		{"bad currency", "Bearer sk_test_x", "application/json", strings.Replace(valid, "USD", "US", 1), 400, "validation_error"},
		{"no token", "Bearer sk_test_x", "application/json", `{"amount":1000,"currency":"USD"}`, 400, "validation_error"},
	}
	ids := map[string]bool{}
	for _, tt := range tests {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/payments", strings.NewReader(tt.body))
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		req.Header.Set("Content-Type", tt.ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s: POST /v1/payments = %d %s; want %d", tt.name, resp.StatusCode, b, tt.status)
			continue
		}
		var out struct {
			ID             string `json:"id"`
			Status         string `json:"status"`
			AmountCaptured int64  `json:"amount_captured"`
			Error          struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(b, &out); err != nil {
			t.Errorf("%s: response %s is not JSON: %v", tt.name, b, err)
			continue
		}
		if tt.status != 200 {
			if out.Error.Code != tt.code {
				t.Errorf("%s: error code = %q; want %q", tt.name, out.Error.Code, tt.code)
			}
			continue
		}
		if out.Status != "captured" || out.AmountCaptured != 1000 || !strings.HasPrefix(out.ID, "pay_") || ids[out.ID] {
			t.Errorf("%s: payment = %+v; want a new captured pay_ of 1000", tt.name, out)
		}
		ids[out.ID] = true
	}
}

// TestResponseShape: the response has the top-level fields of a Payloom
// payment, so both servers encode about the same JSON.
func TestResponseShape(t *testing.T) {
	srv := httptest.NewServer(newHandler())
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/v1/payments",
		strings.NewReader(`{"amount":1000,"currency":"USD","payment_method":{"type":"card","card":{"token":"tok_1"}}}`))
	req.Header.Set("Authorization", "Bearer k")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"id", "object", "merchant_id", "livemode", "amount", "amount_capturable",
		"amount_captured", "amount_refunded", "currency", "status", "capture_method", "payment_method",
		"processor", "attempts", "metadata", "created_at", "updated_at"} {
		if _, ok := m[f]; !ok {
			t.Errorf("response has no %q field", f)
		}
	}
}
