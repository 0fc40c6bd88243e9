package stripe_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/processor"
	"github.com/payloom/payloom/processor/processortest"
	"github.com/payloom/payloom/processor/stripe"
)

const (
	apiKey   = "sk_test_123"
	cardVisa = "4242424242424242"
)

var bg = context.Background()

func card(number string) *payloom.CardData {
	return &payloom.CardData{Number: payloom.Secret(number), ExpMonth: 12, ExpYear: time.Now().Year() + 3,
		CVC: "123", HolderName: "Ada Lovelace", Brand: payloom.CardBrandVisa}
}

func connector(base string) *stripe.Connector {
	return stripe.New(stripe.Options{APIKey: apiKey, BackendURL: base})
}

// recorded is one request that went through the proxy.
type recorded struct {
	Method, Path, Key, Auth string
	Form                    url.Values
}

// proxy stands between the connector and stripe-mock on a real socket: it
// records every request and can drop one path (read the request, close
// the connection, forward nothing).
type proxy struct {
	mu   sync.Mutex
	reqs []recorded
	drop string
}

func startProxy(t *testing.T, drop string) (*proxy, string) {
	t.Helper()
	p := &proxy{drop: drop}
	ts := httptest.NewServer(p)
	t.Cleanup(ts.Close)
	return p, ts.URL
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(body))
	if r.Method == http.MethodGet {
		form = r.URL.Query()
	}
	p.mu.Lock()
	p.reqs = append(p.reqs, recorded{Method: r.Method, Path: r.URL.Path, Key: r.Header.Get("Idempotency-Key"),
		Auth: r.Header.Get("Authorization"), Form: form})
	p.mu.Unlock()
	if r.Method == http.MethodPost && r.URL.Path == p.drop {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, mockURL+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = r.Header.Clone()
	res, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer res.Body.Close()
	for k, v := range res.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(res.StatusCode)
	io.Copy(w, res.Body)
}

func (p *proxy) requests() []recorded {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]recorded(nil), p.reqs...)
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

// TestContract runs the contract suite against the real stripe-mock.
// stripe-mock is stateless and answers with fixtures: it validates every
// request against Stripe's OpenAPI spec and answers with canned objects,
// so it can prove the requests and the happy paths, never a decline, a
// replay, a refused capture or a Lookup hit. The harness declares exactly
// that. The failure and unknown scenarios put a real socket fault between
// the connector and stripe-mock.
func TestContract(t *testing.T) {
	processortest.Run(t, func(t *testing.T) processortest.Harness {
		_, pmLost := startProxy(t, "/v1/payment_methods")
		_, piLost := startProxy(t, "/v1/payment_intents")
		return processortest.Harness{
			Processor: connector(mockURL),
			Scenarios: map[processortest.Outcome][]processortest.Scenario{
				processortest.Approve: {{Name: "visa", Card: card(cardVisa)}},
				processortest.Failed: {
					{Name: "connection_refused", Card: card(cardVisa), Processor: connector(closedPort(t))},
					// Lost while creating the PaymentMethod: no PaymentIntent
					// exists, so nothing can have been authorized.
					{Name: "payment_method_answer_lost", Card: card(cardVisa), Processor: connector(pmLost)},
				},
				processortest.Unknown: {
					{Name: "payment_intent_answer_lost", Card: card(cardVisa), Processor: connector(piLost)},
				},
			},
		}
	})
}

// TestRequests checks what the connector sends, through a recording proxy
// in front of stripe-mock (which itself refuses any parameter Stripe's
// spec does not know).
func TestRequests(t *testing.T) {
	p, base := startProxy(t, "")
	c := connector(base)
	req := &payloom.AuthorizeRequest{IdempotencyKey: payloom.NewID("att"), Reference: payloom.NewID("pay"), Amount: 1234,
		Currency: "EUR", Capture: false, Card: card(cardVisa), Description: "order 7", StatementDescriptor: "PAYLOOM TEST"}
	res, err := c.Authorize(bg, req)
	if err != nil || res.Status != payloom.AuthorizationApproved || !strings.HasPrefix(res.TransactionID, "pi_") {
		t.Fatalf("Authorize = %+v, %v; want approved with a pi_ TransactionID", res, err)
	}
	if _, err := c.Capture(bg, &payloom.CaptureRequest{IdempotencyKey: "op_cap", TransactionID: res.TransactionID, Amount: 1000, Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Void(bg, &payloom.VoidRequest{IdempotencyKey: "op_void", TransactionID: res.TransactionID}); err != nil {
		t.Fatal(err)
	}
	rf, err := c.Refund(bg, &payloom.RefundRequest{IdempotencyKey: "op_ref", TransactionID: res.TransactionID, Amount: 200, Currency: "EUR"})
	if err != nil || !rf.Succeeded || !strings.HasPrefix(rf.TransactionID, "re_") {
		t.Fatalf("Refund = %+v, %v; want succeeded with a re_ ID", rf, err)
	}
	look, err := c.Lookup(bg, &payloom.LookupRequest{IdempotencyKey: req.IdempotencyKey, Reference: req.Reference})
	if err != nil || look.Found {
		t.Fatalf("Lookup(by key) on stripe-mock = %+v, %v; want not found (its fixtures carry none of our metadata)", look, err)
	}
	look, err = c.Lookup(bg, &payloom.LookupRequest{IdempotencyKey: req.IdempotencyKey, TransactionID: res.TransactionID})
	if err != nil || !look.Found || look.Result.Status != payloom.AuthorizationApproved {
		t.Fatalf("Lookup(by TransactionID) = %+v, %v; want found approved", look, err)
	}

	type want struct {
		method, path, key string
		form              map[string]string
	}
	pi := "/v1/payment_intents/" + res.TransactionID
	wants := []want{
		{"POST", "/v1/payment_methods", req.IdempotencyKey + "-pm", map[string]string{"type": "card", "card[number]": cardVisa,
			"card[cvc]": "123", "card[exp_month]": "12", "billing_details[name]": "Ada Lovelace"}},
		{"POST", "/v1/payment_intents", req.IdempotencyKey, map[string]string{"amount": "1234", "currency": "eur",
			"confirm": "true", "capture_method": "manual", "payment_method_types[0]": "card",
			"metadata[payloom_attempt]": req.IdempotencyKey, "metadata[payloom_reference]": req.Reference,
			"description": "order 7", "statement_descriptor_suffix": "PAYLOOM TEST", "expand[0]": "latest_charge"}},
		{"POST", pi + "/capture", "op_cap", map[string]string{"amount_to_capture": "1000"}},
		{"POST", pi + "/cancel", "op_void", nil},
		{"POST", "/v1/refunds", "op_ref", map[string]string{"payment_intent": res.TransactionID, "amount": "200"}},
		{"GET", "/v1/payment_intents/search", "", map[string]string{"query": "metadata['payloom_attempt']:'" + req.IdempotencyKey + "'"}},
		{"GET", pi, "", nil},
	}
	got := p.requests()
	if len(got) != len(wants) {
		t.Fatalf("the connector made %d requests; want %d", len(got), len(wants))
	}
	for i, w := range wants {
		g := got[i]
		if g.Method != w.method || g.Path != w.path || g.Key != w.key || g.Auth != "Bearer "+apiKey {
			t.Errorf("request %d = %s %s key %q auth %q; want %s %s key %q with the API key", i, g.Method, g.Path, g.Key, g.Auth, w.method, w.path, w.key)
		}
		for k, v := range w.form {
			if g.Form.Get(k) != v {
				t.Errorf("request %d (%s %s): %s = %q; want %q", i, g.Method, g.Path, k, g.Form.Get(k), v)
			}
		}
		// The card number goes into the PaymentMethod request and nowhere else.
		if i > 0 && strings.Contains(g.Form.Encode(), cardVisa) {
			t.Errorf("request %d (%s %s) carries the card number", i, g.Method, g.Path)
		}
	}
	// Automatic capture asks for it.
	if _, err := c.Authorize(bg, &payloom.AuthorizeRequest{IdempotencyKey: payloom.NewID("att"), Reference: "pay_x",
		Amount: 50, Currency: "USD", Capture: true, Card: card(cardVisa)}); err != nil {
		t.Fatal(err)
	}
	if last := p.requests()[len(wants)+1]; last.Form.Get("capture_method") != "automatic" {
		t.Errorf("capture_method with Capture true = %q; want automatic", last.Form.Get("capture_method"))
	}
}

// Authorize sends the request's return URL (Payloom's landing for that
// payment, /pay/{id}/complete, which asks Stripe for the outcome) when it
// is absolute, else the configured one; a connector configured without
// one offers no 3-D Secure and sends none. stripe-mock checks the request
// against Stripe's spec.
func TestAuthorizeReturnURL(t *testing.T) {
	for _, tt := range []struct{ configured, perRequest, want string }{
		{"https://pay.example", "https://pay.example/pay/pay_1/complete", "https://pay.example/pay/pay_1/complete"},
		{"https://pay.example", "/pay/pay_1/complete", "https://pay.example"},
		{"https://pay.example", "", "https://pay.example"},
		{"", "https://pay.example/pay/pay_1/complete", ""},
	} {
		p, base := startProxy(t, "")
		c := stripe.New(stripe.Options{APIKey: apiKey, BackendURL: base, ReturnURL: tt.configured})
		res, err := c.Authorize(bg, &payloom.AuthorizeRequest{IdempotencyKey: payloom.NewID("att"), Reference: "pay_1",
			Amount: 100, Currency: "EUR", Capture: true, Card: card(cardVisa), ReturnURL: tt.perRequest})
		if err != nil || res.Status != payloom.AuthorizationApproved {
			t.Fatalf("Authorize(ReturnURL %q) = %+v, %v; want approved", tt.perRequest, res, err)
		}
		var got []string
		for _, r := range p.requests() {
			if r.Method == http.MethodPost && r.Path == "/v1/payment_intents" {
				got = append(got, r.Form.Get("return_url"))
			}
		}
		if len(got) != 1 || got[0] != tt.want {
			t.Errorf("Authorize(configured %q, ReturnURL %q) sent return_url %q; want [%q]", tt.configured, tt.perRequest, got, tt.want)
		}
	}
}

// fakeStripe answers each path with a canned Stripe answer, for the
// answers stripe-mock cannot give (errors, declines, odd statuses). The
// bodies follow Stripe's documented error and object shapes.
type fakeAnswer struct {
	status int
	header map[string]string
	body   string
}

func fakeStripe(t *testing.T, answers map[string]fakeAnswer) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		a, ok := answers[r.Method+" "+r.URL.Path]
		if !ok {
			t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
			w.WriteHeader(http.StatusNotFound)
			return
		}
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

const (
	pmOK       = `{"id":"pm_1","object":"payment_method","type":"card"}`
	secret     = "pi_9_secret_DONOTLEAK"
	piDeclined = `{"error":{"type":"card_error","code":"card_declined","decline_code":"%s","message":"Your card was declined.",` +
		`"payment_intent":{"id":"pi_9","object":"payment_intent","status":"requires_payment_method","client_secret":"` + secret + `"}}}`
)

func stripeError(typ, code, msg string) string {
	return `{"error":{"type":"` + typ + `","code":"` + code + `","message":"` + msg + `"}}`
}

func TestAuthorizeAnswers(t *testing.T) {
	type result struct {
		status  payloom.AuthorizationStatus
		class   payloom.DeclineClass
		decline string
		txn     string
		err     string // "unknown" or an error code; "" for a result
	}
	tests := []struct {
		name   string
		pm, pi fakeAnswer
		want   result
	}{
		{"insufficient_funds is hard", fakeAnswer{200, nil, pmOK},
			fakeAnswer{402, nil, strings.Replace(piDeclined, "%s", "insufficient_funds", 1)},
			result{status: payloom.AuthorizationDeclined, class: payloom.DeclineHard, decline: payloom.DeclineInsufficientFunds, txn: "pi_9"}},
		{"do_not_honor is soft", fakeAnswer{200, nil, pmOK},
			fakeAnswer{402, nil, strings.Replace(piDeclined, "%s", "do_not_honor", 1)},
			result{status: payloom.AuthorizationDeclined, class: payloom.DeclineSoft, decline: processor.DeclineDoNotHonor, txn: "pi_9"}},
		{"incorrect_cvc without decline_code", fakeAnswer{200, nil, pmOK},
			fakeAnswer{402, nil, stripeError("card_error", "incorrect_cvc", "Your card's security code is incorrect.")},
			result{status: payloom.AuthorizationDeclined, class: payloom.DeclineHard, decline: payloom.DeclineIncorrectCVC}},
		{"PaymentMethod refuses the number", fakeAnswer{402, nil, stripeError("card_error", "incorrect_number", "Your card number is incorrect.")},
			fakeAnswer{},
			result{status: payloom.AuthorizationDeclined, class: payloom.DeclineHard, decline: processor.DeclineInvalidNumber}},
		{"PaymentMethod 500 is only a failure", fakeAnswer{500, nil, stripeError("api_error", "", "Something went wrong.")},
			fakeAnswer{}, result{status: payloom.AuthorizationFailed}},
		{"400 invalid request", fakeAnswer{200, nil, pmOK},
			fakeAnswer{400, nil, stripeError("invalid_request_error", "parameter_unknown", "Received unknown parameter: foo")},
			result{status: payloom.AuthorizationFailed}},
		{"401 bad key", fakeAnswer{200, nil, pmOK},
			fakeAnswer{401, nil, stripeError("invalid_request_error", "", "Invalid API Key provided: sk_test_****")},
			result{status: payloom.AuthorizationFailed}},
		{"429 rate limited", fakeAnswer{200, nil, pmOK},
			fakeAnswer{429, nil, stripeError("invalid_request_error", "rate_limit", "Too many requests.")},
			result{status: payloom.AuthorizationFailed}},
		{"409 key in flight", fakeAnswer{200, nil, pmOK},
			fakeAnswer{409, nil, stripeError("invalid_request_error", "idempotency_key_in_use", "in use")},
			result{err: "unknown"}},
		{"500 api_error", fakeAnswer{200, nil, pmOK},
			fakeAnswer{500, nil, stripeError("api_error", "", "Something went wrong.")},
			result{err: "unknown"}},
		{"500 with Stripe-Should-Retry false", fakeAnswer{200, nil, pmOK},
			fakeAnswer{500, map[string]string{"Stripe-Should-Retry": "false"}, stripeError("api_error", "", "Something went wrong.")},
			result{err: "unknown"}},
		{"idempotency_error", fakeAnswer{200, nil, pmOK},
			fakeAnswer{400, nil, stripeError("idempotency_error", "", "Keys for idempotent requests can only be used with the same parameters")},
			result{err: payloom.CodeIdempotencyConflict}},
		{"requires_payment_method after confirm", fakeAnswer{200, nil, pmOK},
			fakeAnswer{200, nil, `{"id":"pi_2","object":"payment_intent","status":"requires_payment_method","last_payment_error":{"type":"card_error","code":"card_declined","decline_code":"stolen_card"}}`},
			result{status: payloom.AuthorizationDeclined, class: payloom.DeclineHard, decline: processor.DeclineStolenCard, txn: "pi_2"}},
		{"requires_action with a redirect", fakeAnswer{200, nil, pmOK},
			fakeAnswer{200, nil, `{"id":"pi_3","object":"payment_intent","status":"requires_action","next_action":{"type":"redirect_to_url","redirect_to_url":{"url":"https://hooks.stripe.com/3d_secure/x","return_url":"https://r"}}}`},
			result{status: payloom.AuthorizationRequiresAction, txn: "pi_3"}},
		{"requires_action without a redirect", fakeAnswer{200, nil, pmOK},
			fakeAnswer{200, nil, `{"id":"pi_4","object":"payment_intent","status":"requires_action","next_action":{"type":"use_stripe_sdk"}}`},
			result{status: payloom.AuthorizationDeclined, class: payloom.DeclineHard, decline: processor.DeclineAuthenticationRequired, txn: "pi_4"}},
		{"processing", fakeAnswer{200, nil, pmOK},
			fakeAnswer{200, nil, `{"id":"pi_5","object":"payment_intent","status":"processing"}`},
			result{err: "unknown"}},
		{"requires_capture", fakeAnswer{200, nil, pmOK},
			fakeAnswer{200, nil, `{"id":"pi_6","object":"payment_intent","status":"requires_capture","latest_charge":{"id":"ch_1","object":"charge","status":"succeeded","payment_method_details":{"type":"card","card":{"authorization_code":"123456","network_transaction_id":"NTI1","checks":{"cvc_check":"pass","address_postal_code_check":"unchecked"}}}}}`},
			result{status: payloom.AuthorizationApproved, txn: "pi_6"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			answers := map[string]fakeAnswer{"POST /v1/payment_methods": tt.pm}
			if tt.pi.status != 0 {
				answers["POST /v1/payment_intents"] = tt.pi
			}
			c := connector(fakeStripe(t, answers))
			res, err := c.Authorize(bg, &payloom.AuthorizeRequest{IdempotencyKey: "att_1", Reference: "pay_1",
				Amount: 100, Currency: "USD", Capture: true, Card: card(cardVisa)})
			for _, s := range []string{cardVisa, secret} {
				if (err != nil && strings.Contains(err.Error(), s)) || (res != nil && strings.Contains(res.Message, s)) {
					t.Errorf("Authorize shows %q", s)
				}
			}
			switch tt.want.err {
			case "":
				if err != nil {
					t.Fatalf("Authorize = %v; want a result", err)
				}
				if res.Status != tt.want.status || res.DeclineClass != tt.want.class || res.DeclineCode != tt.want.decline && tt.want.decline != "" ||
					res.TransactionID != tt.want.txn {
					t.Errorf("Authorize = %s/%s/%s txn %q; want %s/%s/%s txn %q", res.Status, res.DeclineClass, res.DeclineCode,
						res.TransactionID, tt.want.status, tt.want.class, tt.want.decline, tt.want.txn)
				}
				if res.Status == payloom.AuthorizationRequiresAction && res.RedirectURL != "https://hooks.stripe.com/3d_secure/x" {
					t.Errorf("RedirectURL = %q", res.RedirectURL)
				}
				if tt.want.txn == "pi_6" && (res.AuthorizationCode != "123456" || res.NetworkTransactionID != "NTI1" || res.CVVResult != "pass") {
					t.Errorf("approved details = %+v; want the charge's authorization code, NTI and CVC check", res)
				}
			case "unknown":
				if err == nil || payloom.ErrorCode(err) != payloom.CodeInternal {
					t.Fatalf("Authorize = %+v, %v; want a plain error (outcome unknown)", res, err)
				}
			default:
				if !payloom.IsCode(err, tt.want.err) {
					t.Fatalf("Authorize = %+v, %v; want error code %s", res, err, tt.want.err)
				}
			}
		})
	}
}

func TestOperationAnswers(t *testing.T) {
	tests := []struct {
		name string
		ans  fakeAnswer
		// succeeded, refused, unavailable or unknown
		want string
	}{
		{"captured", fakeAnswer{200, nil, `{"id":"pi_1","object":"payment_intent","status":"succeeded"}`}, "succeeded"},
		{"already captured", fakeAnswer{400, nil, stripeError("invalid_request_error", "payment_intent_unexpected_state", "This PaymentIntent could not be captured because it has a status of succeeded.")}, "refused"},
		{"rate limited", fakeAnswer{429, nil, stripeError("invalid_request_error", "rate_limit", "Too many requests.")}, "unavailable"},
		{"500", fakeAnswer{500, nil, stripeError("api_error", "", "Something went wrong.")}, "unknown"},
		{"409", fakeAnswer{409, nil, stripeError("invalid_request_error", "idempotency_key_in_use", "in use")}, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := connector(fakeStripe(t, map[string]fakeAnswer{"POST /v1/payment_intents/pi_1/capture": tt.ans}))
			res, err := c.Capture(bg, &payloom.CaptureRequest{IdempotencyKey: "op_1", TransactionID: "pi_1", Amount: 10, Currency: "USD"})
			var got string
			switch {
			case err == nil && res.Succeeded:
				got = "succeeded"
			case err == nil:
				got = "refused"
			case payloom.IsCode(err, payloom.CodeUnavailable):
				got = "unavailable"
			case payloom.ErrorCode(err) == payloom.CodeInternal:
				got = "unknown"
			}
			if got != tt.want {
				t.Errorf("Capture = %+v, %v (%s); want %s", res, err, got, tt.want)
			}
		})
	}
	// Never sent: a retryable CodeUnavailable, not a refusal.
	if _, err := connector(closedPort(t)).Void(bg, &payloom.VoidRequest{IdempotencyKey: "op_2", TransactionID: "pi_1"}); !payloom.IsCode(err, payloom.CodeUnavailable) {
		t.Errorf("Void(connection refused) = %v; want %s", err, payloom.CodeUnavailable)
	}
	// A pending refund is accepted; a failed one is refused.
	for status, want := range map[string]bool{"pending": true, "succeeded": true, "failed": false} {
		c := connector(fakeStripe(t, map[string]fakeAnswer{"POST /v1/refunds": {200, nil, `{"id":"re_1","object":"refund","status":"` + status + `"}`}}))
		res, err := c.Refund(bg, &payloom.RefundRequest{IdempotencyKey: "op_3", TransactionID: "pi_1", Amount: 10, Currency: "USD"})
		if err != nil || res.Succeeded != want || res.TransactionID != "re_1" {
			t.Errorf("Refund(status %s) = %+v, %v; want Succeeded %v with re_1", status, res, err, want)
		}
	}
}

func TestLookupAnswers(t *testing.T) {
	search := func(data string) fakeAnswer {
		return fakeAnswer{200, nil, `{"object":"search_result","url":"/v1/payment_intents/search","has_more":false,"data":[` + data + `]}`}
	}
	const ours = `{"id":"pi_7","object":"payment_intent","status":"requires_capture","amount_received":0,"metadata":{"payloom_attempt":"att_7"}}`
	tests := []struct {
		name            string
		ans             fakeAnswer
		found, captured bool
		voided          bool
	}{
		{"nothing", search(""), false, false, false},
		{"someone else's", search(`{"id":"pi_8","object":"payment_intent","status":"succeeded","metadata":{"payloom_attempt":"att_other"}}`), false, false, false},
		{"authorized", search(ours), true, false, false},
		{"captured", search(`{"id":"pi_7","object":"payment_intent","status":"succeeded","amount_received":500,"metadata":{"payloom_attempt":"att_7"}}`), true, true, false},
		{"voided", search(`{"id":"pi_7","object":"payment_intent","status":"canceled","metadata":{"payloom_attempt":"att_7"},"latest_charge":{"id":"ch_7","object":"charge","status":"succeeded"}}`), true, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := connector(fakeStripe(t, map[string]fakeAnswer{"GET /v1/payment_intents/search": tt.ans}))
			res, err := c.Lookup(bg, &payloom.LookupRequest{IdempotencyKey: "att_7"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Found != tt.found || res.Captured != tt.captured || res.Voided != tt.voided {
				t.Fatalf("Lookup = %+v; want found %v captured %v voided %v", res, tt.found, tt.captured, tt.voided)
			}
			if res.Found && (res.Result.Status != payloom.AuthorizationApproved || res.Result.TransactionID != "pi_7") {
				t.Errorf("Lookup.Result = %+v; want approved pi_7", res.Result)
			}
		})
	}
	if _, err := connector("http://127.0.0.1:1").Lookup(bg, &payloom.LookupRequest{IdempotencyKey: "att_'x"}); !payloom.IsCode(err, payloom.CodeValidation) {
		t.Errorf("Lookup(key with a quote) = %v; want %s", err, payloom.CodeValidation)
	}
}

func TestDeclineFor(t *testing.T) {
	tests := []struct {
		code, decline, want string
		class               payloom.DeclineClass
	}{
		{"card_declined", "generic_decline", payloom.DeclineGeneric, payloom.DeclineSoft},
		{"card_declined", "do_not_honor", processor.DeclineDoNotHonor, payloom.DeclineSoft},
		{"card_declined", "insufficient_funds", payloom.DeclineInsufficientFunds, payloom.DeclineHard},
		{"card_declined", "lost_card", processor.DeclineLostCard, payloom.DeclineHard},
		{"card_declined", "stolen_card", processor.DeclineStolenCard, payloom.DeclineHard},
		{"card_declined", "fraudulent", payloom.DeclineFraudulent, payloom.DeclineHard},
		{"card_declined", "try_again_later", processor.DeclineTryAgainLater, payloom.DeclineSoft},
		{"card_declined", "issuer_not_available", processor.DeclineIssuerNotAvailable, payloom.DeclineSoft},
		{"card_declined", "never_heard_of_it", payloom.DeclineGeneric, payloom.DeclineSoft},
		{"expired_card", "", payloom.DeclineExpiredCard, payloom.DeclineHard},
		{"incorrect_cvc", "", payloom.DeclineIncorrectCVC, payloom.DeclineHard},
		{"incorrect_number", "", processor.DeclineInvalidNumber, payloom.DeclineHard},
		{"processing_error", "", payloom.DeclineProcessingError, payloom.DeclineSoft},
		{"card_declined", "", payloom.DeclineGeneric, payloom.DeclineSoft},
	}
	for _, tt := range tests {
		got := stripe.DeclineFor(tt.code, tt.decline)
		d, ok := processor.LookupDecline(got)
		if got != tt.want || !ok || d.Class != tt.class {
			t.Errorf("DeclineFor(%q, %q) = %q (%s); want %q (%s)", tt.code, tt.decline, got, d.Class, tt.want, tt.class)
		}
	}
	// Every decline code stripe-go v85 knows maps to a code the canonical
	// table knows (so it has a class), and only unknown codes fall back.
	for _, dc := range []string{"authentication_required", "approve_with_id", "call_issuer", "card_not_supported",
		"card_velocity_exceeded", "currency_not_supported", "do_not_honor", "do_not_try_again", "duplicate_transaction",
		"expired_card", "fraudulent", "generic_decline", "incorrect_number", "incorrect_cvc", "incorrect_pin", "incorrect_zip",
		"insufficient_funds", "invalid_account", "invalid_amount", "invalid_cvc", "invalid_expiry_month", "invalid_expiry_year",
		"invalid_number", "invalid_pin", "issuer_not_available", "lost_card", "merchant_blacklist",
		"new_account_information_available", "no_action_taken", "not_permitted", "offline_pin_required",
		"online_or_offline_pin_required", "pickup_card", "pin_try_exceeded", "processing_error", "reenter_transaction",
		"restricted_card", "revocation_of_all_authorizations", "revocation_of_authorization", "security_violation",
		"service_not_allowed", "stolen_card", "stop_payment_order", "testmode_decline", "transaction_not_allowed",
		"try_again_later", "withdrawal_count_limit_exceeded"} {
		got := stripe.DeclineFor("card_declined", dc)
		if _, ok := processor.LookupDecline(got); !ok {
			t.Errorf("DeclineFor(card_declined, %q) = %q, unknown to the canonical table", dc, got)
		}
		if got == payloom.DeclineGeneric && dc != "generic_decline" {
			t.Errorf("DeclineFor(card_declined, %q) fell back to generic_decline; map it", dc)
		}
	}
}
