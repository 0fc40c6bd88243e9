package canary

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/mattn/go-sqlite3"
)

// Each planted card number or CVC is found; each look-alike is not.
func TestScan(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string // Kind + " " + Masked, in order
	}{
		// Card numbers, plain and formatted, in the contexts the suite
		// writes: JSON, log lines, Go values, panics, SQL dumps.
		{"plain visa in JSON", `{"number":"4242424242424242"}`, []string{"pan 424242******4242"}},
		{"spaces", `card 4242 4242 4242 4242 ok`, []string{"pan 424242******4242"}},
		{"dashes", `4242-4242-4242-4242`, []string{"pan 424242******4242"}},
		{"amex 4-6-5", `pan=3782 822463 10005;`, []string{"pan 378282*****0005"}},
		{"unknown test card by brand", `x=4917484589897107 `, []string{"pan 491748******7107"}},
		{"mastercard 2-series", `"n": 2223000048400011`, []string{"pan 222300******0011"}},
		{"visa 13", `4222222222222.`, []string{"pan 422222***2222"}},
		{"19 digits", `6011000000000000001`, []string{"pan 601100*********0001"}},
		{"elo", `5066991111111118`, []string{"pan 506699******1118"}},
		{"in a Go struct", `{Number:4000000000000002 ExpMonth:12}`, []string{"pan 400000******0002"}},
		{"in a stack trace", "panic: card 5555555555554444\n\tgoroutine 1", []string{"pan 555555******4444"}},
		{"after letters", `tok_4242424242424242`, []string{"pan 424242******4242"}},
		{"known card inside a longer run", `99424242424242424299`, []string{"pan 424242******4242"}},
		{"after a number and a space", `order 12 4242 4242 4242 4242`, []string{"pan 424242******4242"}},
		{"two on a line", `4242424242424242,5555555555554444`, []string{"pan 424242******4242", "pan 555555******4444"}},
		{"on line 3", "a\nb\n4242424242424242", []string{"pan 424242******4242"}},
		// CVCs next to their keys.
		{"cvc JSON", `{"cvc":"737"}`, []string{"cvc cvc=***"}},
		{"cvc JSON spaced", `{"cvc": "1234"}`, []string{"cvc cvc=***"}},
		{"cvc escaped JSON", `"body":"{\"cvc\":\"737\"}"`, []string{"cvc cvc=***"}},
		{"cvv key=value", `cvv=123 `, []string{"cvc cvv=***"}},
		{"CVC Go struct", `{CVC:737}`, []string{"cvc CVC=***"}},
		{"security_code", `"security_code": 9876`, []string{"cvc security_code=***"}},
		// Look-alikes that are not card data.
		{"unix nanoseconds", `"created_at":1741965000123456789`, nil},
		{"unix nanoseconds in a dump", `{"applied_at":1741965000123456789}`, nil},
		{"Luhn-invalid", `4242424242424241`, nil},
		{"no brand for the length", `45723174000110`, nil}, // a CNPJ, 14 digits from 4
		{"CNPJ", `11222333000181`, nil},
		{"CPF", `52998224725`, nil},
		{"amount", `"amount":99999999`, nil},
		{"twelve digits", `424242424242`, nil},
		{"twenty digits", `49174845898971070000`, nil},
		{"first6 and last4 apart", `"first6":"424242","last4":"4242"`, nil},
		{"redacted CVC", `"cvc":"[REDACTED]"`, nil},
		{"cvc_check", `"cvc_check":"pass"`, nil},
		{"incorrect_cvc code", `"code":"incorrect_cvc","message":"737 tries"`, nil},
		{"five digits after cvc", `cvc=12345`, nil},
		{"sha-256 hex", `"fingerprint":"6d2f4917484589897107a1b2c3d4e5f60718293a4b5c6d7e8f9012345678abcd"`, nil},
		{"payloom ID", `pay_01hx4917484589897107abcdef`, nil},
		{"date and time", `2025-03-14 15:09:26.535897`, nil},
		{"phone", `+5511912345678`, nil},
		{"network transaction ID", `"network_transaction_id":"386534105937520"`, nil},
		{"escaped transaction ID", `\"transaction_id\":\"4917484589897107\"`, nil},
		{"Go transaction ID", `TransactionID:4917484589897107`, nil},
		{"known card as a transaction ID", `"transaction_id":"4242424242424242"`, []string{"pan 424242******4242"}},
		{"groups too small", `4 242 424 242 424 242`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, f := range Scan("x", []byte(tt.text)) {
				got = append(got, f.Kind+" "+f.Masked)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("Scan(%q) = %q; want %q", tt.text, got, tt.want)
			}
		})
	}
}

func TestScanLine(t *testing.T) {
	f := Scan("log", []byte("one\ntwo\nx 4242424242424242\n"))
	if len(f) != 1 || f[0].Line != 3 || f[0].File != "log" {
		t.Fatalf("Scan = %v; want one finding on log:3", f)
	}
	if strings.Contains(f[0].String(), "4242424242424242") {
		t.Errorf("Finding.String() = %q shows the whole number", f[0].String())
	}
}

func TestKnownTestPANsAreCards(t *testing.T) {
	for _, p := range KnownTestPANs {
		if !Luhn(p) {
			t.Errorf("Luhn(%s...) = false; every known test card passes", p[:6])
		}
	}
}

// The recorder writes what the scanner reads: a card number planted in a
// response, a log or a table is found, and a clean recording passes.
func TestRecorderFeedsScan(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvDir, dir)
	db, err := sql.Open("sqlite3", filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`CREATE TABLE cards (id TEXT, ciphertext BLOB, created_at INTEGER)`,
		`INSERT INTO cards VALUES ('tok_1', x'00ff10204242424242424242', 1741965000123456789)`,
		`CREATE TABLE idem (body BLOB)`,
		`INSERT INTO idem VALUES (CAST('{"id":"pay_1"}' AS BLOB))`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	r, err := New("TestX/sub test")
	if err != nil || r == nil {
		t.Fatalf("New = %v, %v; want a recorder", r, err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.Response("GET", "/v1/payments", 200, []byte(`{"last4":"4242"}`)))
	must(r.WriteFile(".log", []byte(`{"msg":"request","status":200}`)))
	must(r.DumpDB(db, SQLite))
	must(r.Close())
	if f, n, err := ScanPaths(dir); err != nil || n != 3 || len(f) != 0 {
		t.Fatalf("ScanPaths(clean recording) = %v, %d files, %v; want no finding in 3 files", f, n, err)
	}
	dump, _ := os.ReadFile(r.prefix + ".db.jsonl")
	if !strings.Contains(string(dump), `"body":"{\"id\":\"pay_1\"}"`) || !strings.Contains(string(dump), "base64:") {
		t.Errorf("dump = %s; want text blobs as text and binary ones as base64", dump)
	}

	// Plant one card number in each kind of recording.
	if _, err := db.Exec(`INSERT INTO idem VALUES (CAST('{"number":"4242424242424242"}' AS BLOB))`); err != nil {
		t.Fatal(err)
	}
	must(r.Response("POST", "/v1/tokens", 200, []byte(`{"cvc":"737"}`)))
	must(r.WriteFile(".log", []byte(`{"msg":"oops","pan":"5555 5555 5555 4444"}`)))
	must(r.DumpDB(db, SQLite))
	must(r.Close())
	f, _, err := ScanPaths(dir)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, x := range f {
		kinds[filepath.Ext(x.File)+" "+x.Kind] = true
	}
	for _, want := range []string{".responses cvc", ".log pan", ".jsonl pan"} {
		if !kinds[want] {
			t.Errorf("findings %v; want one in %s", f, want)
		}
	}
}

func TestRecorderOff(t *testing.T) {
	t.Setenv(EnvDir, "")
	r, err := New("x")
	if r != nil || err != nil {
		t.Fatalf("New without %s = %v, %v; want nil, nil", EnvDir, r, err)
	}
	// A nil recorder does nothing.
	if err := r.Response("GET", "/", 200, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.DumpDB(nil, SQLite); err != nil {
		t.Fatal(err)
	}
}
