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
	"reflect"
	"regexp"
	"strings"
	"sync"
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

// The redirectResult values of the /payments/details recordings: Adyen's
// "X6XtfGC3!" prefix and, base64, {"transStatus":"Y"} or "N".
const (
	redirectPassed = "X6XtfGC3!eyJ0cmFuc1N0YXR1cyI6IlkifQ=="
	redirectFailed = "X6XtfGC3!eyJ0cmFuc1N0YXR1cyI6Ik4ifQ=="
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
			// The shopper comes back from Adyen's redirect with a
			// redirectResult; the recordings answer these two.
			Authenticate: func(t *testing.T, res *payloom.AuthorizeResult, pass bool) map[string]string {
				return srv.shopperReturns(t, res.TransactionID, pass)
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
		{"RedirectShopper by POST", 200, nil, `{"pspReference":"PSP0000000000001","resultCode":"RedirectShopper","action":{"type":"redirect","method":"POST","url":"https://test.adyen.com/hpp/3d/validate.shtml","data":{"MD":"x","PaReq":"y"}}}`, "declined"},
		{"RedirectShopper to a relative URL", 200, nil, `{"pspReference":"PSP0000000000001","resultCode":"RedirectShopper","action":{"type":"redirect","method":"GET","url":"/threeDS/redirect"}}`, "declined"},
		{"RedirectShopper to javascript:", 200, nil, `{"pspReference":"PSP0000000000001","resultCode":"RedirectShopper","action":{"type":"redirect","method":"GET","url":"javascript:alert(1)"}}`, "declined"},
		{"RedirectShopper without a method", 200, nil, `{"pspReference":"PSP0000000000001","resultCode":"RedirectShopper","action":{"type":"redirect","url":"https://checkoutshopper-test.adyen.com/checkoutshopper/threeDS/redirect?MD=M2R"}}`, "requires_action"},
		{"RedirectShopper without a method but with a form", 200, nil, `{"pspReference":"PSP0000000000001","resultCode":"RedirectShopper","action":{"type":"redirect","url":"https://test.adyen.com/hpp/3d/validate.shtml","data":{"MD":"x"}}}`, "declined"},
		{"RedirectShopper by GET", 200, nil, `{"pspReference":"PSP0000000000001","resultCode":"RedirectShopper","action":{"type":"redirect","method":"GET","url":"https://checkoutshopper-test.adyen.com/checkoutshopper/threeDS/redirect?MD=M2R"}}`, "requires_action"},
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

// capture is a fake Adyen that records what it was sent and answers with
// one canned answer.
type capture struct {
	mu   sync.Mutex
	reqs []captured
}

type captured struct {
	path, key string
	body      map[string]any
}

func (c *capture) sent() []captured {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]captured(nil), c.reqs...)
}

func captureAdyen(t *testing.T, status int, body string) (*capture, string) {
	t.Helper()
	c := &capture{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v map[string]any
		json.NewDecoder(r.Body).Decode(&v)
		c.mu.Lock()
		c.reqs = append(c.reqs, captured{path: r.URL.Path, key: r.Header.Get("Idempotency-Key"), body: v})
		c.mu.Unlock()
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(ts.Close)
	return c, ts.URL
}

func TestCompleteAuthenticationAnswers(t *testing.T) {
	req := func(details map[string]string) *payloom.AuthenticationRequest {
		return &payloom.AuthenticationRequest{IdempotencyKey: "att_01JAUTHENTICATION00000000", Reference: "pay_1",
			TransactionID: "PSP0000000000001", Details: details}
	}
	back := map[string]string{"redirectResult": redirectPassed}
	tests := []struct {
		name    string
		status  int
		body    string
		details map[string]string
		// approved, declined, requires_action, validation_error,
		// unavailable, unknown
		want  string
		calls int
	}{
		{"not back yet", 200, `{}`, nil, "requires_action", 0},
		{"only foreign parameters", 200, `{}`, map[string]string{"s": "page-secret", "payment_id": "pay_1"}, "requires_action", 0},
		{"authorised", 200, `{"resultCode":"Authorised","pspReference":"PSP0000000000001","merchantReference":"pay_1"}`, back, "approved", 1},
		{"authorised without pspReference", 200, `{"resultCode":"Authorised","merchantReference":"pay_1"}`, back, "approved", 1},
		{"authorised, same pspReference", 200, `{"resultCode":"Authorised","pspReference":"PSP0000000000001"}`, back, "approved", 1},
		// An answer about another payment (its redirectResult brought to
		// this payment's return URL) decides nothing here.
		{"authorised, another pspReference", 200, `{"resultCode":"Authorised","pspReference":"PSP0000000000002","merchantReference":"pay_1"}`, back, "validation_error", 1},
		{"authorised, another reference", 200, `{"resultCode":"Authorised","pspReference":"PSP0000000000001","merchantReference":"pay_2"}`, back, "validation_error", 1},
		{"refused, another reference", 200, `{"resultCode":"Refused","refusalReasonCode":"11","merchantReference":"pay_2"}`, back, "validation_error", 1},
		{"authorised, naming no payment", 200, `{"resultCode":"Authorised"}`, back, "validation_error", 1},
		{"refused 3D not authenticated", 200, `{"resultCode":"Refused","refusalReasonCode":"11","pspReference":"PSP0000000000001"}`, back, "declined", 1},
		{"refused soft", 200, `{"resultCode":"Refused","refusalReasonCode":"2","pspReference":"PSP0000000000001"}`, back, "declined", 1},
		{"another redirect", 200, `{"resultCode":"RedirectShopper","pspReference":"PSP0000000000001","action":{"type":"redirect","method":"GET","url":"https://checkoutshopper-test.adyen.com/x"}}`, back, "requires_action", 1},
		{"422 invalid redirectResult", 422, `{"status":422,"errorCode":"14_018","message":"Invalid payload provided","errorType":"validation"}`, back, "validation_error", 1},
		{"422 in progress", 422, `{"status":422,"errorCode":"704","message":"request already processed or in progress","errorType":"validation"}`, back, "unknown", 1},
		{"401", 401, `{"status":401,"errorCode":"000","message":"Unauthorized","errorType":"security"}`, back, "unavailable", 1},
		{"500", 500, `{"status":500,"errorCode":"000","message":"Unexpected error","errorType":"internal"}`, back, "unknown", 1},
		{"Pending", 200, `{"resultCode":"Pending","pspReference":"PSP0000000000001"}`, back, "unknown", 1},
		{"too long", 200, `{}`, map[string]string{"redirectResult": strings.Repeat("A", 16<<10+1)}, "validation_error", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, base := captureAdyen(t, tt.status, tt.body)
			res, err := connector(base, nil).CompleteAuthentication(bg, req(tt.details))
			var got string
			switch {
			case err == nil:
				got = string(res.Status)
			case payloom.IsCode(err, payloom.CodeValidation):
				got = "validation_error"
			case payloom.IsCode(err, payloom.CodeUnavailable):
				got = "unavailable"
			case payloom.ErrorCode(err) == payloom.CodeInternal:
				got = "unknown"
			}
			if got != tt.want {
				t.Fatalf("CompleteAuthentication(%s) = %+v, %v (%s); want %s", tt.name, res, err, got, tt.want)
			}
			sent := srv.sent()
			if len(sent) != tt.calls {
				t.Fatalf("CompleteAuthentication(%s) sent %d requests; want %d", tt.name, len(sent), tt.calls)
			}
			if tt.calls == 0 {
				return
			}
			// Only Adyen's own parameter goes to Adyen.
			want := map[string]any{"details": map[string]any{"redirectResult": redirectPassed}}
			if sent[0].path != "/v71/payments/details" || !reflect.DeepEqual(sent[0].body, want) {
				t.Errorf("sent %s %v; want /v71/payments/details %v", sent[0].path, sent[0].body, want)
			}
			if err == nil && res.Status == payloom.AuthorizationApproved && res.TransactionID == "" {
				t.Errorf("approved without a TransactionID: %+v", res)
			}
			if err == nil && res.Status == payloom.AuthorizationDeclined && tt.name == "refused 3D not authenticated" &&
				(res.DeclineCode != payloom.DeclineAuthenticationFail || res.DeclineClass != payloom.DeclineHard) {
				t.Errorf("refused 11 = %s/%s; want %s/hard", res.DeclineCode, res.DeclineClass, payloom.DeclineAuthenticationFail)
			}
		})
	}
	if _, err := connector(closedPort(t), nil).CompleteAuthentication(bg, req(back)); !payloom.IsCode(err, payloom.CodeUnavailable) {
		t.Errorf("CompleteAuthentication(connection refused) = %v; want %s", err, payloom.CodeUnavailable)
	}
}

// The Idempotency-Key of /payments/details is the same for the same
// details (a reload replays Adyen's answer) and differs for other details
// (forged details sent first cannot take the real ones' key); it fits
// Adyen's 64 characters whatever the attempt's key.
func TestCompleteAuthenticationKeys(t *testing.T) {
	srv, base := captureAdyen(t, 200, `{"resultCode":"Authorised","pspReference":"PSP0000000000002"}`)
	c := connector(base, nil)
	long := strings.Repeat("k", 64)
	for _, tt := range []struct{ key, result string }{
		{"att_1", redirectPassed}, {"att_1", redirectPassed}, {"att_1", redirectFailed}, {"att_2", redirectPassed}, {long, redirectPassed},
	} {
		if _, err := c.CompleteAuthentication(bg, &payloom.AuthenticationRequest{IdempotencyKey: tt.key,
			TransactionID: "PSP0000000000002", Details: map[string]string{"redirectResult": tt.result}}); err != nil {
			t.Fatalf("CompleteAuthentication(%s): %v", tt.key, err)
		}
	}
	sent := srv.sent()
	keys := make([]string, len(sent))
	for i, r := range sent {
		keys[i] = r.key
		if len(r.key) == 0 || len(r.key) > 64 {
			t.Errorf("Idempotency-Key %q has %d characters; want 1 to 64", r.key, len(r.key))
		}
	}
	if len(keys) != 5 || keys[0] != keys[1] || keys[0] == keys[2] || keys[0] == keys[3] || !strings.HasPrefix(keys[0], "att_1-") {
		t.Errorf("Idempotency-Keys = %q; want the first two equal (att_1-...), the others different", keys)
	}
}

// Authorize sends the request's return URL (Payloom's landing for that
// payment) when it is absolute, else the configured one.
func TestAuthorizeReturnURL(t *testing.T) {
	for _, tt := range []struct{ perRequest, want string }{
		{"https://pay.example/pay/pay_1/complete", "https://pay.example/pay/pay_1/complete"},
		{"/pay/pay_1/complete", "https://payloom.example/return"},
		{"", "https://payloom.example/return"},
	} {
		srv, base := captureAdyen(t, 200, `{"resultCode":"Authorised","pspReference":"PSP0000000000002"}`)
		_, err := connector(base, nil).Authorize(bg, &payloom.AuthorizeRequest{IdempotencyKey: "att_1", Reference: "pay_1",
			Amount: 100, Currency: "EUR", Capture: true, Card: card(cardVisa, "S. Hopper"), ReturnURL: tt.perRequest})
		if err != nil {
			t.Fatal(err)
		}
		if sent := srv.sent(); len(sent) != 1 || sent[0].body["returnUrl"] != tt.want {
			t.Errorf("Authorize(ReturnURL %q) sent returnUrl %v; want %q", tt.perRequest, sent[0].body["returnUrl"], tt.want)
		}
	}
}

// A redirectResult decides the payment Adyen issued it for, whichever
// payment's return URL the browser brings it to. A shopper with two
// payments waiting for 3-D Secure who passes the cheap one's and brings
// its redirectResult to the expensive one's return URL must not get the
// expensive one authorized with the cheap one's pspReference: the answer
// names another payment, so it is refused (CodeValidation, which leaves
// the authentication open) and decides nothing. The cheap payment itself
// still completes with it.
func TestCompleteAuthenticationOfAnotherPayment(t *testing.T) {
	for _, tt := range []struct {
		name string
		// knownPSP: the expensive attempt kept the pspReference of its
		// RedirectShopper answer (else only the reference can tell).
		knownPSP bool
	}{
		{"pspReference known", true},
		{"pspReference unknown", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, base := startReplay(t)
			c := connector(base, nil)
			authorize := func(amount int64) (*payloom.AuthorizeRequest, *payloom.AuthorizeResult) {
				t.Helper()
				req := &payloom.AuthorizeRequest{IdempotencyKey: payloom.NewID("att"), Reference: payloom.NewID("pay"),
					Amount: amount, Currency: "EUR", Capture: true, Card: card(card3DS, "S. Hopper")}
				res, err := c.Authorize(bg, req)
				if err != nil || res.Status != payloom.AuthorizationRequiresAction || res.TransactionID == "" {
					t.Fatalf("Authorize(%d EUR, 3-D Secure card) = %+v, %v; want requires_action with a pspReference", amount, res, err)
				}
				return req, res
			}
			cheapReq, cheapRes := authorize(100)
			dearReq, dearRes := authorize(500000)
			details := srv.shopperReturns(t, cheapRes.TransactionID, true)

			dear := &payloom.AuthenticationRequest{IdempotencyKey: dearReq.IdempotencyKey, Reference: dearReq.Reference, Details: details}
			if tt.knownPSP {
				dear.TransactionID = dearRes.TransactionID
			}
			res, err := c.CompleteAuthentication(bg, dear)
			if !payloom.IsCode(err, payloom.CodeValidation) || res != nil {
				t.Fatalf("CompleteAuthentication(expensive payment, the cheap one's redirectResult) = %+v, %v; want %s and no result",
					res, err, payloom.CodeValidation)
			}

			res, err = c.CompleteAuthentication(bg, &payloom.AuthenticationRequest{IdempotencyKey: cheapReq.IdempotencyKey,
				Reference: cheapReq.Reference, TransactionID: cheapRes.TransactionID, Details: details})
			if err != nil || res.Status != payloom.AuthorizationApproved || res.TransactionID != cheapRes.TransactionID {
				t.Fatalf("CompleteAuthentication(cheap payment, its own redirectResult) = %+v, %v; want approved as %s",
					res, err, cheapRes.TransactionID)
			}
		})
	}
}
