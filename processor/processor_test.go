package processor_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/processor"
)

func TestDeclineTable(t *testing.T) {
	for _, code := range processor.DeclineCodes() {
		d, ok := processor.LookupDecline(code)
		if !ok || d.Code != code || d.FailureCode == "" || d.Message == "" ||
			(d.Class != payloom.DeclineHard && d.Class != payloom.DeclineSoft) {
			t.Errorf("LookupDecline(%q) = %+v, %v; want the code with a failure code, a class and a message", code, d, ok)
		}
	}
	// The classes routing depends on (issue 5).
	want := map[string]payloom.DeclineClass{
		payloom.DeclineGeneric: payloom.DeclineSoft, processor.DeclineDoNotHonor: payloom.DeclineSoft,
		processor.DeclineIssuerNotAvailable: payloom.DeclineSoft, payloom.DeclineInsufficientFunds: payloom.DeclineHard,
		processor.DeclineLostCard: payloom.DeclineHard, processor.DeclineStolenCard: payloom.DeclineHard,
		payloom.DeclineExpiredCard: payloom.DeclineHard, payloom.DeclineIncorrectCVC: payloom.DeclineHard,
		payloom.DeclineFraudulent: payloom.DeclineHard,
	}
	for code, class := range want {
		if d, _ := processor.LookupDecline(code); d.Class != class {
			t.Errorf("LookupDecline(%q).Class = %q; want %q", code, d.Class, class)
		}
	}
}

func TestDeclined(t *testing.T) {
	r := processor.Declined(payloom.DeclineExpiredCard, "54")
	if r.Status != payloom.AuthorizationDeclined || r.DeclineClass != payloom.DeclineHard ||
		r.FailureCode != payloom.FailureExpiredCard || r.DeclineCode != payloom.DeclineExpiredCard || r.RawCode != "54" {
		t.Errorf("Declined(expired_card, 54) = %+v", r)
	}
	r = processor.Declined("made_up", "ZZ")
	if r.DeclineCode != payloom.DeclineGeneric || r.DeclineClass != payloom.DeclineSoft || r.RawCode != "ZZ" {
		t.Errorf("Declined(made_up) = %+v; want a soft generic decline keeping the raw code", r)
	}
	f := processor.Failed("503", "card 4242 4242 4242 4242 was not processed")
	if f.Status != payloom.AuthorizationFailed || f.DeclineClass != "" || f.Message != "card [REDACTED] was not processed" {
		t.Errorf("Failed = %+v; want failed, no class, the number redacted", f)
	}
	if err := processor.ErrUnavailable("x", "capture", "4242424242424242"); !payloom.IsCode(err, payloom.CodeUnavailable) ||
		strings.Contains(err.Error(), "4242424242424242") {
		t.Errorf("ErrUnavailable = %v; want %s without the number", err, payloom.CodeUnavailable)
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"4242424242424242", "[REDACTED]"},
		{"card 4242-4242-4242-4242 declined", "card [REDACTED] declined"},
		{"card 4242 4242 4242 4242", "card [REDACTED]"},
		{"amount 100000000000 ok", "amount [REDACTED] ok"}, // 12 digits: could be a card
		{"auth 065696, psp 8815398378932581X", "auth 065696, psp [REDACTED]X"},
		{"code 12345678901 is short", "code 12345678901 is short"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := processor.Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestSendTrace(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ts.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		url  string
		sent bool
	}{
		{"answered", context.Background(), ts.URL, true},
		{"connection refused", context.Background(), closed, false},
		{"context ended first", cancelled, ts.URL, false},
	}
	for _, tt := range tests {
		ctx, trace := processor.TraceSend(tt.ctx)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, tt.url, nil)
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
		}
		if trace.MaybeSent() != tt.sent {
			t.Errorf("%s: MaybeSent() = %v (err %v); want %v", tt.name, trace.MaybeSent(), err, tt.sent)
		}
	}
}
