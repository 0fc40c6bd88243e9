package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/payloom/payloom/processor/sandbox"
	"github.com/payloom/payloom/processor/simulator"
)

func TestParseTestRoute(t *testing.T) {
	sb := sandbox.New(nil, sandbox.Options{})
	tests := []struct {
		in      string
		names   []string
		wantErr string
	}{
		{"", nil, ""},
		{"sandbox", []string{"sandbox"}, ""},
		{"simA=http://127.0.0.1:7070, simB=http://127.0.0.1:7071,sandbox", []string{"simA", "simB", "sandbox"}, ""},
		{"simA=http://127.0.0.1:7070,simA=http://127.0.0.1:7071", nil, "used twice"},
		{"simA=ftp://x", nil, "entry 0"},
		{"sandbox=http://127.0.0.1:1", nil, "entry 0"},
		{"sandbox,stripe", nil, "entry 1"},
		{"=http://127.0.0.1:1", nil, "entry 0"},
	}
	for _, tt := range tests {
		got, err := parseTestRoute(tt.in, sb, time.Second)
		var names []string
		for _, p := range got {
			names = append(names, p.Name())
		}
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseTestRoute(%q) = %v, %v; want an error containing %q", tt.in, names, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(names, tt.names) {
			t.Errorf("parseTestRoute(%q) = %v, %v; want %v", tt.in, names, err, tt.names)
		}
	}
}

// A server started with --test-route falls back from a simulator that
// answers 5xx to the next one.
func TestServeRoutesTestPayments(t *testing.T) {
	simA, simB := simulator.NewServer(simulator.Options{}), simulator.NewServer(simulator.Options{})
	if _, err := simA.AddRules(simulator.Rule{Action: simulator.ActionError}); err != nil {
		t.Fatal(err)
	}
	hsA, hsB := httptest.NewServer(simA), httptest.NewServer(simB)
	defer hsA.Close()
	defer hsB.Close()
	env := map[string]string{
		"PAYLOOM_DATA": filepath.Join(t.TempDir(), "data"), "PAYLOOM_ADDR": "127.0.0.1:0", "PAYLOOM_LOG_LEVEL": "warn",
		"PAYLOOM_TEST_ROUTE": "simA=" + hsA.URL + ",simB=" + hsB.URL,
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
	tok := call("POST", "/v1/tokens", fmt.Sprintf(`{"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": %d}}`, time.Now().Year()+2))
	pay := call("POST", "/v1/payments", `{"amount": 990, "currency": "EUR", "payment_method": {"type": "card", "card": {"token": "`+tok["id"].(string)+`"}}}`)
	var got []string
	atts, _ := pay["attempts"].([]any)
	for _, a := range atts {
		m, _ := a.(map[string]any)
		got = append(got, fmt.Sprint(m["processor"], ":", m["status"]))
	}
	want := []string{"simA:failed", "simB:captured"}
	if pay["status"] != "captured" || !slices.Equal(got, want) {
		t.Errorf("payment = %v with attempts %v; want captured with %v", pay["status"], got, want)
	}
	if n := len(simB.Ledger().Approved()); n != 1 {
		t.Errorf("simB approvals = %d; want 1", n)
	}
	if _, ok := pay["processor_ms"]; !ok {
		t.Errorf("payment has no processor_ms: %v", pay)
	}
}
