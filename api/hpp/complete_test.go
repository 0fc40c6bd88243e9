package hpp

import (
	"context"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/engine"
)

// What the shopper comes back with goes to the processor, less the page's
// own parameters: the page secret never leaves Payloom.
func TestReturnDetails(t *testing.T) {
	many := url.Values{}
	for i := range 40 {
		many.Set("k"+strconv.Itoa(i), "v")
	}
	tests := []struct {
		query string
		want  map[string]string
		size  int // when want is nil: the number of details
	}{
		{"", map[string]string{}, 0},
		{"s=secret&lang=pt", map[string]string{}, 0},
		{"redirectResult=X6XtfGC3%21Y&s=secret&lang=en", map[string]string{"redirectResult": "X6XtfGC3!Y"}, 0},
		{"redirectResult=a&redirectResult=b&payload=p", map[string]string{"redirectResult": "a", "payload": "p"}, 0},
		{"flag", map[string]string{"flag": ""}, 0},
		{many.Encode(), nil, 16},
	}
	for _, tt := range tests {
		q, err := url.ParseQuery(tt.query)
		if err != nil {
			t.Fatal(err)
		}
		got := returnDetails(q)
		if tt.want != nil && !maps.Equal(got, tt.want) {
			t.Errorf("returnDetails(%q) = %v; want %v", tt.query, got, tt.want)
		}
		if tt.want == nil && len(got) != tt.size {
			t.Errorf("returnDetails(40 parameters) has %d; want %d", len(got), tt.size)
		}
	}
}

// acsProcessor is a processor whose 3-D Secure page is on another origin
// (as Adyen's is) and which learns the outcome from what the shopper
// brings back (redirectResult), recording what it was given.
type acsProcessor struct {
	payloom.UnsupportedProcessor
	mu      sync.Mutex
	details []map[string]string
}

const acsURL = "https://acs.example/challenge?MD=abc"

func (a *acsProcessor) Name() string { return "acs" }
func (a *acsProcessor) Capabilities() payloom.Capabilities {
	return payloom.Capabilities{PaymentMethods: []payloom.PaymentMethodType{payloom.PaymentMethodTypeCard}, ThreeDS: true}
}
func (a *acsProcessor) Authorize(context.Context, *payloom.AuthorizeRequest) (*payloom.AuthorizeResult, error) {
	return &payloom.AuthorizeResult{Status: payloom.AuthorizationRequiresAction, TransactionID: "acs_1",
		FailureCode: payloom.FailureAuthentication, RedirectURL: acsURL}, nil
}
func (a *acsProcessor) CompleteAuthentication(_ context.Context, req *payloom.AuthenticationRequest) (*payloom.AuthorizeResult, error) {
	a.mu.Lock()
	a.details = append(a.details, maps.Clone(req.Details))
	a.mu.Unlock()
	if req.Details["redirectResult"] != "passed" {
		return &payloom.AuthorizeResult{Status: payloom.AuthorizationRequiresAction, TransactionID: "acs_1"}, nil
	}
	return &payloom.AuthorizeResult{Status: payloom.AuthorizationApproved, TransactionID: "acs_1", AuthorizationCode: "A1B2C3"}, nil
}

// A processor whose authentication page is on another origin: after the
// form's post the browser is never redirected there (the form's
// form-action would block it) but gets a page that follows on by script
// or by its button; coming back with the processor's redirectResult, the
// payment is recorded from it, and the page secret is not passed on.
func TestThreeDSecureOffOrigin(t *testing.T) {
	acs := &acsProcessor{}
	e := newEnv(t, func(c *engine.Config) {
		c.Processor = func(payloom.Scope) (payloom.Processor, error) { return acs, nil }
	})
	p, path := e.create(func(r *payloom.PaymentCreate) { r.SuccessURL = "https://shop.example/ok" })
	b := e.browser()
	res := b.follow(b.pay(path, cardVisa, expiry(), "123"))
	if res.status != 200 || !strings.Contains(res.body, `href="https://acs.example/challenge?MD=abc" id="follow"`) {
		t.Fatalf("after paying: %d %s %s; want a page following on to %s", res.status, res.location(), res.body, acsURL)
	}
	if !strings.Contains(res.header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Errorf("CSP = %q; want the page's own policy", res.header.Get("Content-Security-Policy"))
	}
	// The shopper is back, the secret in its cookie, Adyen-style.
	res = b.get("/pay/" + p.ID + "/complete?redirectResult=passed&lang=en")
	if want := "https://shop.example/ok?payment_id=" + p.ID; res.status != http.StatusSeeOther || res.location() != want {
		t.Fatalf("back from the processor: %d to %q; want 303 to %s", res.status, res.location(), want)
	}
	if got := e.payment(p.ID); got.Status != payloom.PaymentStatusCaptured || got.Processor == nil || got.Processor.AuthorizationCode != "A1B2C3" {
		t.Errorf("payment = %s %+v; want captured with the processor's authorization", got.Status, got.Processor)
	}
	acs.mu.Lock()
	defer acs.mu.Unlock()
	if n := len(acs.details); n == 0 || !maps.Equal(acs.details[n-1], map[string]string{"redirectResult": "passed"}) {
		t.Errorf("the processor got %v; want only redirectResult", acs.details)
	}
}
