package payloom

import (
	"strings"
	"testing"
)

func TestValidateLineItems(t *testing.T) {
	item := func(desc string, amount, qty int64) LineItem {
		return LineItem{Description: desc, Amount: amount, Quantity: qty}
	}
	many := make([]LineItem, 101)
	for i := range many {
		many[i] = item("x", 1, 1)
	}
	tests := []struct {
		name   string
		items  []LineItem
		amount int64
		param  string
	}{
		{"none", nil, 100, ""},
		{"exact", []LineItem{item("Mug", 1000, 2), item("Free sticker", 0, 1), item("Ship", 500, 1)}, 2500, ""},
		{"100 items", many[:100], 100, ""},
		{"101 items", many, 101, "line_items"},
		{"short", []LineItem{item("Mug", 1000, 2)}, 2500, "line_items"},
		{"over", []LineItem{item("Mug", 1000, 3)}, 2500, "line_items"},
		{"empty description", []LineItem{item("", 100, 1)}, 100, "line_items[0][description]"},
		{"long description", []LineItem{item("ok", 0, 1), item(strings.Repeat("é", 201), 100, 1)}, 100, "line_items[1][description]"},
		{"200 characters", []LineItem{item(strings.Repeat("é", 200), 100, 1)}, 100, ""},
		{"control character", []LineItem{item("a\nb", 100, 1)}, 100, "line_items[0][description]"},
		{"invalid UTF-8", []LineItem{item("a\xffb", 100, 1)}, 100, "line_items[0][description]"},
		{"negative amount", []LineItem{item("x", -1, 1), item("y", 101, 1)}, 100, "line_items[0][amount]"},
		{"zero quantity", []LineItem{item("x", 100, 0)}, 100, "line_items[0][quantity]"},
		{"huge quantity", []LineItem{item("x", 0, 1_000_001)}, 0, "line_items[0][quantity]"},
		{"overflowing product", []LineItem{item("x", 1<<62, 1_000_000)}, 1 << 62, "line_items"},
		{"overflowing sum", []LineItem{item("x", 1<<62, 1), item("y", 1<<62, 1), item("z", 1<<62, 1)}, 1 << 62, "line_items"},
	}
	for _, tt := range tests {
		err := ValidateLineItems(tt.items, tt.amount)
		if ErrorParam(err) != tt.param || (tt.param == "") != (err == nil) {
			t.Errorf("ValidateLineItems(%s) = %v; want param %q", tt.name, err, tt.param)
		}
	}
}

func TestValidateRedirectURL(t *testing.T) {
	tests := []struct {
		url  string
		live bool
		ok   bool
	}{
		{"https://shop.example/ok?x=1#top", true, true},
		{"http://localhost:3000/ok", false, true},
		{"http://shop.example/ok", true, false},
		{"/ok", false, false},
		{"//shop.example/ok", false, false},
		{"javascript:alert(1)", false, false},
		{"data:text/html,x", false, false},
		{"ftp://shop.example/", false, false},
		{"https://user:pw@shop.example/", false, false},
		{"https:///path", false, false},
		{"https://shop.example/" + strings.Repeat("a", 2048), false, false},
		{"https://shop.example/\x00", false, false},
	}
	for _, tt := range tests {
		err := ValidateRedirectURL("success_url", tt.url, tt.live)
		if (err == nil) != tt.ok || (err != nil && ErrorParam(err) != "success_url") {
			t.Errorf("ValidateRedirectURL(%.60q, live %v) = %v; want ok %v", tt.url, tt.live, err, tt.ok)
		}
	}
}

func TestPageSecrets(t *testing.T) {
	a, b := NewPageSecret(), NewPageSecret()
	if len(a.Reveal()) != 43 || a == b || strings.ContainsAny(a.Reveal(), "+/=") {
		t.Fatalf("NewPageSecret = %q, %q; want two different 43-character URL-safe secrets", a.Reveal(), b.Reveal())
	}
	h := HashPageSecret(a.Reveal())
	for _, tt := range []struct {
		hash   []byte
		secret string
		want   bool
	}{
		{h, a.Reveal(), true}, {h, b.Reveal(), false}, {h, "", false}, {nil, a.Reveal(), false}, {h[:31], a.Reveal(), false},
	} {
		if got := PageSecretMatches(tt.hash, tt.secret); got != tt.want {
			t.Errorf("PageSecretMatches(%x, %q) = %v; want %v", tt.hash, tt.secret, got, tt.want)
		}
	}
	for _, tt := range []struct {
		want Secret
		got  string
		ok   bool
	}{{a, a.Reveal(), true}, {a, b.Reveal(), false}, {"", "", false}, {a, "", false}} {
		if SecretMatches(tt.want, tt.got) != tt.ok {
			t.Errorf("SecretMatches(%q, %q) = %v; want %v", tt.want.Reveal(), tt.got, !tt.ok, tt.ok)
		}
	}
}

func TestPageURLs(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{PaymentPageURL("https://pay.example", "pay_1", "s3cret"), "https://pay.example/pay/pay_1?s=s3cret"},
		{PaymentCompleteURL("https://pay.example", "pay_1"), "https://pay.example/pay/pay_1/complete"},
		{ReceiptPageURL("", "pay_1", "r"), "/receipts/pay_1?s=r"},
		{WithPaymentID("https://shop.example/ok", "pay_1"), "https://shop.example/ok?payment_id=pay_1"},
		{WithPaymentID("https://shop.example/ok?order=7#x", "pay_1"), "https://shop.example/ok?order=7&payment_id=pay_1#x"},
		{WithPaymentID("https://shop.example/ok?payment_id=evil", "pay_1"), "https://shop.example/ok?payment_id=pay_1"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q; want %q", tt.got, tt.want)
		}
	}
}
