package simulator_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/payloom/payloom/processor/simulator"
)

// FuzzRequestBodies: whatever a client sends, the simulator answers with a
// JSON status it documents (200, 400, 409 or 503, never a crash or a 500)
// and never echoes a card number.
func FuzzRequestBodies(f *testing.F) {
	for _, s := range []string{
		`{"idempotency_key":"k","reference":"r","amount":100,"currency":"EUR","capture":true,"card":{"number":"4242424242424242","exp_month":12,"exp_year":2030}}`,
		`{"idempotency_key":"k","amount":-1,"card":{"number":"4242424242424242"}}`,
		`{"card":{"number":"4242424242424242"`,
		`{"idempotency_key":"k","transaction_id":"sim_x","amount":5,"currency":"EUR"}`,
		`[]`, `null`, ``, `{"amount":1e99}`,
	} {
		f.Add("/authorize", s)
		f.Add("/capture", s)
		f.Add("/refund", s)
	}
	pan := regexp.MustCompile(`\d{12,19}`)
	sim := simulator.NewServer(simulator.Options{})
	defer sim.Close()
	f.Fuzz(func(t *testing.T, path, body string) {
		switch path {
		case "/authorize", "/capture", "/void", "/refund":
		default:
			path = "/authorize"
		}
		w := httptest.NewRecorder()
		sim.ServeHTTP(w, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
		switch w.Code {
		case 200, 400, 409, 503:
		default:
			t.Fatalf("POST %s answered %d", path, w.Code)
		}
		if !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			t.Fatalf("POST %s answered %q", path, w.Header().Get("Content-Type"))
		}
		var sent struct {
			Card struct {
				Number string `json:"number"`
			} `json:"card"`
		}
		json.Unmarshal([]byte(body), &sent)
		if n := sent.Card.Number; pan.MatchString(n) && strings.Contains(w.Body.String(), n) {
			t.Fatalf("POST %s echoed the card number", path)
		}
	})
}
