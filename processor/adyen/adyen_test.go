package adyen_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/processor"
	"github.com/payloom/payloom/processor/adyen"
	"github.com/payloom/payloom/processor/processortest"
)

const (
	cardVisa    = "4111111111111111"
	card3DS     = "4917610000000000"
	cardBadLuhn = "4111111111111112"
)

var bg = context.Background()

// card is Adyen's documented test card with a holder name, which Adyen's
// test platform reads as the outcome to produce.
func card(number, holder string) *payloom.CardData {
	return &payloom.CardData{Number: payloom.Secret(number), ExpMonth: 3, ExpYear: 2030, CVC: "737",
		HolderName: holder, Brand: payloom.CardBrandVisa}
}

func connector(base string, client *http.Client) *adyen.Connector {
	return adyen.New(adyen.Options{APIKey: "AQE_test_api_key", MerchantAccount: "PayloomTestECOM",
		BaseURL: base + "/v71", ReturnURL: "https://payloom.example/return", HTTPClient: client})
}

func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	ln.Close()
	return u
}

// TestContract runs the contract suite through the recordings. Adyen's
// modifications are asynchronous ("received"), so nothing refuses a second
// capture synchronously (EnforcesState false), and Checkout has no lookup
// (the suite checks that the connector says so).
func TestContract(t *testing.T) {
	processortest.Run(t, func(t *testing.T) processortest.Harness {
		srv, base := startReplay(t)
		c := connector(base, nil)
		// A client that never reuses a connection: the transport then never
		// retries the dropped request on its own (it may for a reused one,
		// since the request carries an Idempotency-Key).
		fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		decline := func(holder, failure, decline string) processortest.Scenario {
			return processortest.Scenario{Name: holder, Card: card(cardVisa, holder), FailureCode: failure, DeclineCode: decline}
		}
		return processortest.Harness{
			Processor: c,
			Currency:  "EUR",
			Scenarios: map[processortest.Outcome][]processortest.Scenario{
				processortest.Approve: {{Name: "authorised", Card: card(cardVisa, "S. Hopper")}},
				processortest.HardDecline: {
					decline("NOT_ENOUGH_BALANCE", payloom.FailureCardDeclined, payloom.DeclineInsufficientFunds),
					decline("BLOCK_CARD", payloom.FailureCardDeclined, processor.DeclineRestrictedCard),
					decline("CARD_EXPIRED", payloom.FailureExpiredCard, payloom.DeclineExpiredCard),
					decline("CVC_DECLINED", payloom.FailureIncorrectCVC, payloom.DeclineIncorrectCVC),
					decline("FRAUD", payloom.FailureCardDeclined, payloom.DeclineFraudulent),
				},
				processortest.SoftDecline: {
					decline("DECLINED", payloom.FailureCardDeclined, payloom.DeclineGeneric),
					decline("ISSUER_UNAVAILABLE", payloom.FailureCardDeclined, processor.DeclineIssuerNotAvailable),
				},
				processortest.Failed: {
					{Name: "result_code_error", Card: card(cardVisa, "ERROR")},
					{Name: "422_validation", Card: card(cardBadLuhn, "S. Hopper")},
					{Name: "connection_refused", Card: card(cardVisa, "S. Hopper"), Processor: connector(closedPort(t), nil)},
				},
				processortest.Unknown: {
					{Name: "answer_dropped", Card: card(cardVisa, "Lost Answer"), Processor: connector(base, fresh), Committed: true},
					{Name: "500_transient", Card: card(cardVisa, "Server Error")},
				},
				processortest.RequiresAction: {{Name: "redirect_shopper", Card: card(card3DS, "S. Hopper")}},
			},
			Authorizations: func(t *testing.T) int { return srv.authorizations() },
			Replays:        true,
		}
	})
}

// TestRecordingsHoldCardNumbersOnlyWhereSent: the only card numbers in the
// recordings are the request's paymentMethod.number.
func TestRecordingsHoldCardNumbersOnlyWhereSent(t *testing.T) {
	pan := regexp.MustCompile(`\d(?:[ -]?\d){11,18}`)
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var walk func(v any, at string)
		walk = func(v any, at string) {
			switch x := v.(type) {
			case map[string]any:
				for k, e := range x {
					walk(e, at+"."+k)
				}
			case []any:
				for _, e := range x {
					walk(e, at+"[]")
				}
			case string:
				if pan.MatchString(x) && at != ".request.body.paymentMethod.number" {
					t.Errorf("%s: %s holds a card-number-like value", f, at)
				}
			}
		}
		walk(v, "")
	}
}

func TestRefusalReasons(t *testing.T) {
	tests := []struct {
		code, decline string
		class         payloom.DeclineClass
	}{
		{"2", payloom.DeclineGeneric, payloom.DeclineSoft},
		{"5", processor.DeclineRestrictedCard, payloom.DeclineHard},
		{"6", payloom.DeclineExpiredCard, payloom.DeclineHard},
		{"7", processor.DeclineInvalidAmount, payloom.DeclineHard},
		{"9", processor.DeclineIssuerNotAvailable, payloom.DeclineSoft},
		{"12", payloom.DeclineInsufficientFunds, payloom.DeclineHard},
		{"20", payloom.DeclineFraudulent, payloom.DeclineHard},
		{"24", payloom.DeclineIncorrectCVC, payloom.DeclineHard},
		{"46", processor.DeclineDoNotTryAgain, payloom.DeclineHard},
		{"999", payloom.DeclineGeneric, payloom.DeclineSoft},
	}
	for _, tt := range tests {
		got := adyen.DeclineFor(tt.code)
		d, ok := processor.LookupDecline(got)
		if got != tt.decline || !ok || d.Class != tt.class {
			t.Errorf("DeclineFor(%q) = %q (%s); want %q (%s)", tt.code, got, d.Class, tt.decline, tt.class)
		}
	}
	for code := 2; code <= 46; code++ {
		c := adyen.DeclineFor(itoa(code))
		if _, ok := processor.LookupDecline(c); !ok {
			t.Errorf("DeclineFor(%d) = %q, unknown to the canonical table", code, c)
		}
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// fakeAdyen answers every request with one canned answer, for the error
// shapes the contract run does not reach.
func fakeAdyen(t *testing.T, status int, header map[string]string, body string) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

func TestAnswers(t *testing.T) {
	echo := `{"status":422,"errorCode":"101","message":"Invalid card number ` + cardVisa + `","errorType":"validation"}`
	tests := []struct {
		name   string
		status int
		header map[string]string
		body   string
		// result status, or "unknown" / an error code
		want string
	}{
		{"401", 401, nil, `{"status":401,"errorCode":"000","message":"HTTP Status Response - Unauthorized","errorType":"security"}`, "failed"},
		{"403", 403, nil, `{"status":403,"errorCode":"010","message":"Not allowed","errorType":"security"}`, "failed"},
		{"422 echoing the number", 422, nil, echo, "failed"},
		{"429", 429, nil, `{"status":429,"errorCode":"429","message":"Too many requests","errorType":"throttling"}`, "failed"},
		{"704 in progress", 422, nil, `{"status":422,"errorCode":"704","message":"request already processed or in progress","errorType":"validation"}`, "unknown"},
		{"503 transient", 503, map[string]string{"Transient-Error": "true"}, `{"status":503,"errorCode":"000","message":"Service unavailable","errorType":"internal"}`, "unknown"},
		{"not JSON", 200, nil, `<html>`, "unknown"},
		{"Received", 200, nil, `{"pspReference":"PSP0000000000001","resultCode":"Received"}`, "unknown"},
		{"Pending", 200, nil, `{"pspReference":"PSP0000000000001","resultCode":"Pending"}`, "unknown"},
		{"Cancelled fraud", 200, nil, `{"pspReference":"PSP0000000000001","resultCode":"Cancelled","refusalReasonCode":"22","refusalReason":"FRAUD-CANCELLED"}`, "declined"},
		{"ChallengeShopper without a URL", 200, nil, `{"pspReference":"PSP0000000000001","resultCode":"ChallengeShopper","action":{"type":"threeDS2","subtype":"challenge"}}`, "declined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := connector(fakeAdyen(t, tt.status, tt.header, tt.body), nil)
			res, err := c.Authorize(bg, &payloom.AuthorizeRequest{IdempotencyKey: "att_1", Reference: "pay_1", Amount: 100,
				Currency: "EUR", Capture: true, Card: card(cardVisa, "S. Hopper")})
			if (err != nil && strings.Contains(err.Error(), cardVisa)) || (res != nil && strings.Contains(res.Message, cardVisa)) {
				t.Errorf("Authorize shows the card number: %v %+v", err, res)
			}
			got := ""
			switch {
			case err == nil:
				got = string(res.Status)
			case payloom.ErrorCode(err) == payloom.CodeInternal:
				got = "unknown"
			default:
				got = payloom.ErrorCode(err)
			}
			if got != tt.want {
				t.Errorf("Authorize = %+v, %v (%s); want %s", res, err, got, tt.want)
			}
		})
	}
	if _, err := connector("http://127.0.0.1:1", nil).Authorize(bg, &payloom.AuthorizeRequest{IdempotencyKey: "att_1",
		Amount: 1, Currency: "XAF", Card: card(cardVisa, "")}); err != nil {
		t.Errorf("Authorize(unsupported currency) = %v; want a failed result", err)
	}
	if _, err := connector("http://127.0.0.1:1", nil).Authorize(bg, &payloom.AuthorizeRequest{IdempotencyKey: strings.Repeat("k", 65),
		Amount: 1, Currency: "EUR", Card: card(cardVisa, "")}); !payloom.IsCode(err, payloom.CodeValidation) {
		t.Errorf("Authorize(65-character key) = %v; want %s", err, payloom.CodeValidation)
	}
}

func TestModificationAnswers(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   string // succeeded, refused, unavailable, unknown
	}{
		{"received", 201, `{"pspReference":"MOD0000000000001","paymentPspReference":"PSP0000000000001","status":"received"}`, "succeeded"},
		{"422 refused", 422, `{"status":422,"errorCode":"167","message":"Original pspReference required for this operation","errorType":"validation"}`, "refused"},
		{"401", 401, `{"status":401,"errorCode":"000","message":"Unauthorized","errorType":"security"}`, "unavailable"},
		{"500", 500, `{"status":500,"errorCode":"000","message":"Unexpected error","errorType":"internal"}`, "unknown"},
		{"201 but not received", 201, `{"status":"mystery"}`, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := connector(fakeAdyen(t, tt.status, nil, tt.body), nil)
			res, err := c.Refund(bg, &payloom.RefundRequest{IdempotencyKey: "op_1", TransactionID: "PSP0000000000001", Amount: 5, Currency: "EUR"})
			var got string
			switch {
			case err == nil && res.Succeeded:
				got = "succeeded"
				if res.TransactionID != "MOD0000000000001" {
					t.Errorf("Refund.TransactionID = %q; want the modification's pspReference", res.TransactionID)
				}
			case err == nil:
				got = "refused"
			case payloom.IsCode(err, payloom.CodeUnavailable):
				got = "unavailable"
			case payloom.ErrorCode(err) == payloom.CodeInternal:
				got = "unknown"
			}
			if got != tt.want {
				t.Errorf("Refund = %+v, %v (%s); want %s", res, err, got, tt.want)
			}
		})
	}
	c := connector(closedPort(t), nil)
	if _, err := c.Capture(bg, &payloom.CaptureRequest{IdempotencyKey: "op_2", TransactionID: "PSP0000000000001", Amount: 5, Currency: "EUR"}); !payloom.IsCode(err, payloom.CodeUnavailable) {
		t.Errorf("Capture(connection refused) = %v; want %s", err, payloom.CodeUnavailable)
	}
	if _, err := c.Void(bg, &payloom.VoidRequest{IdempotencyKey: "op_3", TransactionID: "../payments"}); !payloom.IsCode(err, payloom.CodeValidation) {
		t.Errorf("Void(a path as pspReference) = %v; want %s", err, payloom.CodeValidation)
	}
}
