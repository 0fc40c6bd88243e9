package api

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/payloom/payloom"
)

func TestParseJSONRejects(t *testing.T) {
	tests := []struct {
		name, body string
		code       string
		param      string
	}{
		{"syntax", `{"amount": }`, payloom.CodeInvalidJSON, ""},
		{"truncated", `{"amount": 1`, payloom.CodeInvalidJSON, ""},
		{"trailing data", `{} {}`, payloom.CodeInvalidJSON, ""},
		{"trailing garbage", `{}x`, payloom.CodeInvalidJSON, ""},
		{"duplicate key", `{"amount": 1, "amount": 2}`, payloom.CodeInvalidJSON, "amount"},
		{"nested duplicate key", `{"payment_method": {"card": {"token": "a", "token": "b"}}}`, payloom.CodeInvalidJSON, "payment_method[card][token]"},
		{"invalid utf-8", "{\"a\": \"\xff\"}", payloom.CodeInvalidJSON, ""},
		{"too deep", strings.Repeat("[", 40) + strings.Repeat("]", 40), payloom.CodeInvalidJSON, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseJSON([]byte(tt.body))
			if payloom.ErrorCode(err) != tt.code || payloom.ErrorParam(err) != tt.param {
				t.Fatalf("parseJSON(%q) = %v; want code %s param %q", tt.body, err, tt.code, tt.param)
			}
		})
	}
}

// A syntax error must not quote the input: the input may be a card number.
func TestParseJSONErrorsDoNotEchoInput(t *testing.T) {
	for _, body := range []string{
		`{"card": {"number": 4242424242424242x}}`,
		`{"card": {"number": "4242424242424242", "cvc": 123a}}`,
		`4242424242424242 4242`,
		`{"card": {"number": "4242424242424242"`,
	} {
		_, err := parseJSON([]byte(body))
		if err == nil {
			t.Fatalf("parseJSON(%q) = nil; want an error", body)
		}
		if msg := err.Error(); strings.Contains(msg, "4242") || strings.Contains(msg, "123") {
			t.Errorf("parseJSON(%q) error %q quotes the input", body, msg)
		}
	}
}

func TestCanonicalJSONIgnoresKeyOrderAndSpace(t *testing.T) {
	a, err := parseJSON([]byte(`{"b": [1, {"y": 2, "x": 1}], "a": "s<>&"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := parseJSON([]byte("{\"a\":\"s<>&\",\n\"b\":[1,{\"x\":1,\"y\":2}]}"))
	if err != nil {
		t.Fatal(err)
	}
	ca, cb := string(canonicalJSON(a)), string(canonicalJSON(b))
	if want := `{"a":"s<>&","b":[1,{"x":1,"y":2}]}`; ca != want || cb != want {
		t.Fatalf("canonicalJSON = %s and %s; want %s", ca, cb, want)
	}
	if fingerprint("POST", "/v1/payments", []byte(ca)) == fingerprint("POST", "/v1/refunds", []byte(ca)) {
		t.Error("fingerprint ignores the path")
	}
	if fingerprint("POST", "/v1/payments", []byte(`{"amount":1}`)) == fingerprint("POST", "/v1/payments", []byte(`{"amount":2}`)) {
		t.Error("fingerprint ignores the body")
	}
}

func TestDisplayKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"amount", "amount"},
		{"order_12", "order_12"},
		{"4242424242424242", "****************"},
		{"cvc123", "cvc***"},
		{strings.Repeat("a", 70), strings.Repeat("a", 64) + "..."},
	}
	for _, tt := range tests {
		if got := displayKey(tt.in); got != tt.want {
			t.Errorf("displayKey(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

type decodeTarget struct {
	S    *string           `json:"s"`
	N    *int64            `json:"n"`
	B    *bool             `json:"b"`
	M    map[string]string `json:"m"`
	Sub  *decodeSub        `json:"sub"`
	Word payloom.Secret    `json:"word"`
	L    *[]string         `json:"l"`
}

type decodeSub struct {
	Inner *struct {
		X *int `json:"x"`
	} `json:"inner"`
}

func TestDecodeInto(t *testing.T) {
	tests := []struct {
		body  string
		param string // "" = success
		code  string
	}{
		{`{"s": "x", "n": 5, "b": true, "m": {"k": "v"}, "sub": {"inner": {"x": 1}}, "word": "w"}`, "", ""},
		{`{}`, "", ""},
		{`{"S": "x"}`, "S", payloom.CodeValidation},
		{`{"sub": {"inner": {"foo": 1}}}`, "sub[inner][foo]", payloom.CodeValidation},
		{`{"sub": {"4242424242424242": 1}}`, "sub[****************]", payloom.CodeValidation},
		{`{"n": "5"}`, "n", payloom.CodeValidation},
		{`{"n": 5.0}`, "n", payloom.CodeValidation},
		{`{"n": 1e3}`, "n", payloom.CodeValidation},
		{`{"n": 99999999999999999999}`, "n", payloom.CodeValidation},
		{`{"n": null}`, "n", payloom.CodeValidation},
		{`{"s": 1}`, "s", payloom.CodeValidation},
		{`{"b": "true"}`, "b", payloom.CodeValidation},
		{`{"m": {"k": 1}}`, "m[k]", payloom.CodeValidation},
		{`{"m": []}`, "m", payloom.CodeValidation},
		{`{"sub": {"inner": {"x": 2147483648000000000000}}}`, "sub[inner][x]", payloom.CodeValidation},
		{`{"l": ["a", "b"]}`, "", ""},
		{`{"l": []}`, "", ""},
		{`{"l": "a"}`, "l", payloom.CodeValidation},
		{`{"l": ["a", 1]}`, "l[1]", payloom.CodeValidation},
		{`{"l": ["a", null]}`, "l[1]", payloom.CodeValidation},
		{`{"l": [["a"]]}`, "l[0]", payloom.CodeValidation},
		{`{"l": null}`, "l", payloom.CodeValidation},
		{`[]`, "", payloom.CodeInvalidJSON},
		{`"s"`, "", payloom.CodeInvalidJSON},
	}
	for _, tt := range tests {
		tree, err := parseJSON([]byte(tt.body))
		if err != nil {
			t.Fatalf("parseJSON(%q) = %v", tt.body, err)
		}
		var dst decodeTarget
		err = decodeInto(tree, &dst)
		if payloom.ErrorCode(err) != tt.code || payloom.ErrorParam(err) != tt.param {
			t.Errorf("decodeInto(%q) = %v; want code %q param %q", tt.body, err, tt.code, tt.param)
		}
	}
	tree, _ := parseJSON([]byte(`{"s": "x", "n": -5, "m": {"k": "v"}, "sub": {"inner": {"x": 1}}, "word": "w", "l": ["b", "a"]}`))
	var dst decodeTarget
	if err := decodeInto(tree, &dst); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(map[string]any{"s": *dst.S, "n": *dst.N, "m": dst.M, "x": *dst.Sub.Inner.X, "word": dst.Word.Reveal(), "l": *dst.L})
	if want := `{"l":["b","a"],"m":{"k":"v"},"n":-5,"s":"x","word":"w","x":1}`; string(got) != want {
		t.Errorf("decodeInto = %s; want %s", got, want)
	}
}
