package api

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/payloom/payloom"
)

const validPayment = `{"amount": 1050, "currency": "usd", "payment_method": {"type": "card", "card": {"token": "tok_abc"}}}`

// withField returns validPayment with one more top-level field.
func withField(field string) string {
	return strings.TrimSuffix(validPayment, "}") + ", " + field + "}"
}

func decodePaymentBody(body string) (string, *payloom.PaymentCreate, error) {
	m, req, _, err := decodePaymentBodyRaw(body)
	return m, req, err
}

func decodePaymentBodyRaw(body string) (string, *payloom.PaymentCreate, *payloom.CardInput, error) {
	tree, err := parseJSON([]byte(body))
	if err != nil {
		return "", nil, nil, err
	}
	return decodePaymentCreate(tree)
}

func TestDecodePaymentCreate(t *testing.T) {
	_, req, err := decodePaymentBody(withField(`"metadata": {"plan": "pro"}, "statement_descriptor": "PAYLOOM*SHOP", "merchant_id": "mrch_x"`))
	if err != nil {
		t.Fatal(err)
	}
	want := &payloom.PaymentCreate{Amount: 1050, Currency: "USD", PaymentMethodType: payloom.PaymentMethodTypeCard,
		CardToken: "tok_abc", CaptureMethod: payloom.CaptureMethodAutomatic, StatementDescriptor: "PAYLOOM*SHOP",
		Metadata: map[string]string{"plan": "pro"}}
	if !reflect.DeepEqual(req, want) {
		t.Errorf("decodePaymentCreate = %+v; want %+v", req, want)
	}

	long := func(n int) string { return strings.Repeat("é", n) } // characters, not bytes
	meta := func(n int) string {
		var kv []string
		for i := range n {
			kv = append(kv, fmt.Sprintf(`"k%d": "v"`, i))
		}
		return `"metadata": {` + strings.Join(kv, ",") + `}`
	}
	tests := []struct {
		name, body string
		param      string // "" = valid
	}{
		{"valid", validPayment, ""},
		{"manual", withField(`"capture_method": "manual"`), ""},
		{"descriptor 22", withField(`"statement_descriptor": "` + long(22) + `"`), ""},
		{"reference 500", withField(`"reference": "` + long(500) + `"`), ""},
		{"customer 255", withField(`"customer_id": "` + long(255) + `"`), ""},
		{"metadata 20", withField(meta(20)), ""},
		{"metadata value 500", withField(`"metadata": {"k": "` + long(500) + `"}`), ""},
		{"metadata key 40", withField(`"metadata": {"` + long(40) + `": "v"}`), ""},
		{"missing amount", `{"currency": "usd", "payment_method": {"type": "card", "card": {"token": "tok_abc"}}}`, "amount"},
		{"zero amount", strings.Replace(validPayment, "1050", "0", 1), "amount"},
		{"negative amount", strings.Replace(validPayment, "1050", "-1", 1), "amount"},
		{"fractional amount", strings.Replace(validPayment, "1050", "10.5", 1), "amount"},
		{"string amount", strings.Replace(validPayment, "1050", `"1050"`, 1), "amount"},
		{"bad currency", strings.Replace(validPayment, "usd", "usdx", 1), "currency"},
		{"unknown currency", strings.Replace(validPayment, "usd", "xyz", 1), "currency"},
		{"missing currency", `{"amount": 1, "payment_method": {"type": "card", "card": {"token": "tok_abc"}}}`, "currency"},
		{"no payment method (hosted page)", `{"amount": 1, "currency": "usd"}`, ""},
		{"hosted page options", `{"amount": 2500, "currency": "usd", "line_items": [{"description": "Mug", "amount": 1000, "quantity": 2}, {"description": "Ship", "amount": 500}], "success_url": "https://s.example/ok", "failure_url": "http://localhost:3000/ko", "expires_in": "PT2H"}`, ""},
		{"expires_at", `{"amount": 1, "currency": "usd", "expires_at": "2030-01-31T12:00:00+02:00"}`, ""},
		{"return_url with a token", withField(`"return_url": "https://s.example/back"`), ""},
		{"line items not adding up", `{"amount": 2400, "currency": "usd", "line_items": [{"description": "Mug", "amount": 1000, "quantity": 2}, {"description": "Ship", "amount": 500}]}`, "line_items"},
		{"line item without amount", `{"amount": 1, "currency": "usd", "line_items": [{"description": "Mug"}]}`, "line_items[0][amount]"},
		{"line item without description", `{"amount": 1, "currency": "usd", "line_items": [{"amount": 1}]}`, "line_items[0][description]"},
		{"line item unknown field", `{"amount": 1, "currency": "usd", "line_items": [{"description": "x", "amount": 1, "sku": "a"}]}`, "line_items[0][sku]"},
		{"line item quantity 0", `{"amount": 1, "currency": "usd", "line_items": [{"description": "x", "amount": 1, "quantity": 0}]}`, "line_items[0][quantity]"},
		{"line items not an array", `{"amount": 1, "currency": "usd", "line_items": {"description": "x"}}`, "line_items"},
		{"line item not an object", `{"amount": 1, "currency": "usd", "line_items": ["x"]}`, "line_items[0]"},
		{"relative success_url", `{"amount": 1, "currency": "usd", "success_url": "/ok"}`, "success_url"},
		{"ftp failure_url", `{"amount": 1, "currency": "usd", "failure_url": "ftp://x.example/"}`, "failure_url"},
		{"bad expires_in", `{"amount": 1, "currency": "usd", "expires_in": "30 days"}`, "expires_in"},
		{"bad expires_at", `{"amount": 1, "currency": "usd", "expires_at": "tomorrow"}`, "expires_at"},
		{"both expiries", `{"amount": 1, "currency": "usd", "expires_in": "P1D", "expires_at": "2030-01-31T12:00:00Z"}`, "expires_at"},
		{"bad type", strings.Replace(validPayment, `"card", "card"`, `"sepa", "card"`, 1), "payment_method[type]"},
		{"missing token", strings.Replace(validPayment, `{"token": "tok_abc"}`, `{}`, 1), "payment_method[card][token]"},
		{"bad token prefix", strings.Replace(validPayment, "tok_abc", "pay_abc", 1), "payment_method[card][token]"},
		{"unknown nested field", strings.Replace(validPayment, `{"token": "tok_abc"}`, `{"token": "tok_abc", "foo": 1}`, 1), "payment_method[card][foo]"},
		{"unknown top field", withField(`"amout": 1`), "amout"},
		{"case-insensitive field", withField(`"Amount": 1`), "Amount"},
		{"bad capture method", withField(`"capture_method": "later"`), "capture_method"},
		{"descriptor 23", withField(`"statement_descriptor": "` + long(23) + `"`), "statement_descriptor"},
		{"descriptor quote", withField(`"statement_descriptor": "it's"`), "statement_descriptor"},
		{"descriptor angle", withField(`"statement_descriptor": "<b>"`), "statement_descriptor"},
		{"descriptor control", withField(`"statement_descriptor": "a\nb"`), "statement_descriptor"},
		{"reference 501", withField(`"reference": "` + long(501) + `"`), "reference"},
		{"description 501", withField(`"description": "` + long(501) + `"`), "description"},
		{"customer 256", withField(`"customer_id": "` + long(256) + `"`), "customer_id"},
		{"metadata 21", withField(meta(21)), "metadata"},
		{"metadata value 501", withField(`"metadata": {"k": "` + long(501) + `"}`), "metadata[k]"},
		{"metadata key 41", withField(`"metadata": {"` + long(41) + `": "v"}`), "metadata[" + displayKey(long(41)) + "]"},
		{"metadata empty key", withField(`"metadata": {"": "v"}`), "metadata[]"},
		{"metadata number", withField(`"metadata": {"k": 1}`), "metadata[k]"},
		{"metadata null", withField(`"metadata": null`), "metadata"},
		{"merchant id", withField(`"merchant_id": "acct_1"`), "merchant_id"},
		{"merchant id empty", withField(`"merchant_id": ""`), "merchant_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := decodePaymentBody(tt.body)
			if tt.param == "" {
				if err != nil {
					t.Fatalf("decodePaymentCreate(%.80q) = %v; want success", tt.body, err)
				}
				return
			}
			if payloom.ErrorCode(err) != payloom.CodeValidation || payloom.ErrorParam(err) != tt.param {
				t.Fatalf("decodePaymentCreate(%.80q) = %v; want validation_error on %q", tt.body, err, tt.param)
			}
		})
	}
}

func TestDecodeRefundCaptureCancel(t *testing.T) {
	tests := []struct {
		name   string
		decode func(any) error
		body   string
		param  string
	}{
		{"refund", decRefund, `{"payment_id": "pay_1", "amount": 5, "reason": "duplicate", "metadata": {"a": "b"}}`, ""},
		{"refund minimal", decRefund, `{"payment_id": "pay_1"}`, ""},
		{"refund no payment", decRefund, `{"amount": 5}`, "payment_id"},
		{"refund bad payment", decRefund, `{"payment_id": "re_1"}`, "payment_id"},
		{"refund zero", decRefund, `{"payment_id": "pay_1", "amount": 0}`, "amount"},
		{"refund reason", decRefund, `{"payment_id": "pay_1", "reason": "changed_mind"}`, "reason"},
		{"refund unknown", decRefund, `{"payment_id": "pay_1", "charge": "x"}`, "charge"},
		{"capture empty", decCapture, `{}`, ""},
		{"capture amount", decCapture, `{"amount": 10}`, ""},
		{"capture zero", decCapture, `{"amount": 0}`, "amount"},
		{"capture unknown", decCapture, `{"amount_to_capture": 10}`, "amount_to_capture"},
		{"cancel empty", decCancel, `{}`, ""},
		{"cancel unknown", decCancel, `{"reason": "x"}`, "reason"},
	}
	for _, tt := range tests {
		tree, err := parseJSON([]byte(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		err = tt.decode(tree)
		if payloom.ErrorParam(err) != tt.param || (tt.param == "") != (err == nil) {
			t.Errorf("%s: decode(%s) = %v; want param %q", tt.name, tt.body, err, tt.param)
		}
	}
}

func decRefund(t any) error  { _, _, err := decodeRefundCreate(t); return err }
func decCapture(t any) error { _, _, err := decodeCapture(t); return err }
func decCancel(t any) error  { _, err := decodeCancel(t); return err }

func TestDecodeToken(t *testing.T) {
	tests := []struct {
		name, body string
		param      string
	}{
		{"valid", `{"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123", "holder_name": "A B"}}`, ""},
		{"no cvc", `{"card": {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 30}}`, ""},
		{"amex cvc", `{"card": {"number": "378282246310005", "exp_month": 1, "exp_year": 2030, "cvc": "1234"}}`, ""},
		{"no card", `{}`, "card"},
		{"no number", `{"card": {"exp_month": 12, "exp_year": 2030}}`, "card[number]"},
		{"number as number", `{"card": {"number": 4242424242424242, "exp_month": 12, "exp_year": 2030}}`, "card[number]"},
		{"no month", `{"card": {"number": "4242424242424242", "exp_year": 2030}}`, "card[exp_month]"},
		{"no year", `{"card": {"number": "4242424242424242", "exp_month": 12}}`, "card[exp_year]"},
		{"cvc as number", `{"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": 123}}`, "card[cvc]"},
		{"unknown card field", `{"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "pin": "1"}}`, "card[pin]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tree, err := parseJSON([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = decodeToken(tree)
			if payloom.ErrorParam(err) != tt.param || (tt.param == "") != (err == nil) {
				t.Fatalf("decodeToken(%s) = %v; want param %q", tt.body, err, tt.param)
			}
			if err != nil && payloom.ErrorCode(err) != payloom.CodeValidation {
				t.Fatalf("decodeToken(%s) code = %s; want validation_error", tt.body, payloom.ErrorCode(err))
			}
		})
	}
}

func FuzzDecodePaymentCreate(f *testing.F) {
	f.Add([]byte(validPayment))
	f.Add([]byte(withField(`"metadata": {"a": "b"}, "capture_method": "manual", "reference": "r", "description": "d", "customer_id": "c", "statement_descriptor": "s"`)))
	f.Add([]byte(withField(`"merchant_id": "mrch_1", "metadata": {}`)))
	f.Add([]byte(`{"amount": 1e3}`))
	f.Add([]byte(`{"payment_method": {"card": {"token": "tok_\u00e9", "x": [1, {"y": null}]}}}`))
	f.Add([]byte(`{"amount": 1, "amount": 2}`))
	f.Add([]byte(`{"amount": 1, "currency": "brl", "customer_id": "cus_1", "save_payment_method": true, "payment_method": {"type": "card", "card": {"payment_method": "pm_1"}}}`))
	f.Add([]byte(`{"amount": 1, "currency": "brl", "payment_method": {"type": "card", "card": {"number": "4242", "exp_month": 1, "exp_year": 2030, "cvc": "1", "holder_name": "A"}}}`))
	f.Add([]byte(`{"amount": 2500, "currency": "eur", "line_items": [{"description": "Mug", "amount": 1000, "quantity": 2}, {"description": "Ship", "amount": 500}], "success_url": "https://s.example/ok?a=1", "return_url": "http://x.example", "expires_in": "P1DT90M0.5S"}`))
	f.Add([]byte(`{"amount": 1, "currency": "usd", "expires_at": "2030-01-31T12:00:00.123+02:00", "failure_url": "https://f.example/"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		tree, err := parseJSON(body)
		if err == nil {
			var merchantID string
			var req *payloom.PaymentCreate
			var raw *payloom.CardInput
			merchantID, req, raw, err = decodePaymentCreate(tree)
			if err == nil {
				// What decodes re-encodes to a body that decodes to the
				// same request.
				again := encodePaymentCreate(merchantID, req, raw)
				m2, req2, raw2, err2 := decodePaymentBodyRaw(string(again))
				if err2 != nil {
					t.Fatalf("re-encoded %s does not decode: %v", again, err2)
				}
				if m2 != merchantID || !reflect.DeepEqual(req2, req) || !reflect.DeepEqual(raw2, raw) {
					t.Fatalf("round trip of %q: got %+v (%s); want %+v (%s)", body, req2, m2, req, merchantID)
				}
				return
			}
		}
		code := payloom.ErrorCode(err)
		if code != payloom.CodeValidation && code != payloom.CodeInvalidJSON {
			t.Fatalf("decode(%q) = %v (code %q); want a validation_error or invalid_json", body, err, code)
		}
		if payloom.ErrorMessage(err) == "" {
			t.Fatalf("decode(%q) = %v: empty message", body, err)
		}
	})
}

// digitRun matches what could be a CVC (three digits or more) or part of a
// card number.
var digitRun = regexp.MustCompile(`[0-9]{3,}`)

func FuzzDecodeToken(f *testing.F) {
	f.Add([]byte(`{"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}}`))
	f.Add([]byte(`{"card": {"number": "4242424242424241", "exp_month": 12, "exp_year": 2030, "cvc": "123"}}`))
	f.Add([]byte(`{"card": {"number": 4242424242424242, "cvc": 123}}`))
	f.Add([]byte(`{"card": {"4242424242424242": "number", "123": 1}}`))
	f.Add([]byte(`{"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "1234x"}}`))
	f.Add([]byte(`{"card": {"number": "4242424242424242" "cvc": "123"}}`))
	f.Add([]byte(`{"card": {"number": "4242424242424242", "number": "5555555555554444"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		tree, err := parseJSON(body)
		if err == nil {
			_, _, err = decodeToken(tree)
		}
		if err == nil {
			return
		}
		code := payloom.ErrorCode(err)
		if code != payloom.CodeValidation && code != payloom.CodeInvalidJSON {
			t.Fatalf("decodeToken(%q) = %v; want a validation_error or invalid_json", body, err)
		}
		// Neither the message nor the param may carry a digit run: no
		// card number or CVC can be echoed, whatever the input.
		if s := payloom.ErrorMessage(err) + " " + payloom.ErrorParam(err); digitRun.MatchString(s) {
			t.Fatalf("decodeToken(%q) error %q contains a run of digits", body, s)
		}
	})
}
