package webhook_test

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/webhook"
)

func TestIsForbidden(t *testing.T) {
	tests := []struct {
		ip   string
		want bool
	}{
		{"127.0.0.1", true},
		{"127.255.0.9", true},
		{"10.0.0.1", true},
		{"172.16.5.4", true},
		{"192.168.1.1", true},
		{"169.254.169.254", true}, // cloud metadata
		{"100.64.0.1", true},      // carrier-grade NAT
		{"100.127.255.254", true},
		{"0.0.0.0", true},
		{"0.1.2.3", true},
		{"224.0.0.1", true},
		{"255.255.255.255", true},
		{"198.18.0.1", true},
		{"::1", true},
		{"::", true},
		{"fd00::1", true},
		{"fd00:ec2::254", true}, // AWS metadata over IPv6
		{"fe80::1", true},
		{"fe80::1%eth0", true},
		{"ff02::1", true},
		{"::ffff:127.0.0.1", true},  // IPv4-mapped
		{"::ffff:10.1.2.3", true},   // IPv4-mapped
		{"64:ff9b::a00:1", true},    // NAT64 of 10.0.0.1
		{"64:ff9b::7f00:1", true},   // NAT64 of 127.0.0.1
		{"2002:a9fe:a9fe::1", true}, // 6to4 of 169.254.169.254
		{"2001:0:4136:e378::1", true},
		{"8.8.8.8", false},
		{"93.184.216.34", false},
		{"100.63.255.255", false},
		{"100.128.0.1", false},
		{"172.32.0.1", false},
		{"2606:4700:4700::1111", false},
		{"64:ff9b::808:808", false}, // NAT64 of 8.8.8.8
		{"::ffff:8.8.8.8", false},
	}
	for _, tt := range tests {
		ip := netip.MustParseAddr(tt.ip)
		if got := webhook.IsForbidden(ip); got != tt.want {
			t.Errorf("IsForbidden(%s) = %v; want %v", tt.ip, got, tt.want)
		}
	}
}

// TestValidateURL: live mode refuses internal addresses (also behind a
// name) and plain http; test mode allows them.
func TestValidateURL(t *testing.T) {
	internal := []string{
		"https://127.0.0.1/hooks",
		"https://10.0.0.1/",
		"https://169.254.169.254/latest/meta-data/",
		"https://[::1]:8443/",
		"https://[fd00::1]/",
		"https://100.64.0.1/",
		"https://localhost/hooks", // a name that resolves to 127.0.0.1
		"https://LOCALHOST./hooks",
		"https://0.0.0.0/",
		"https://[::ffff:127.0.0.1]/",
		"https://[64:ff9b::a9fe:a9fe]/",
	}
	for _, u := range internal {
		err := webhook.ValidateURL(ctx, u, true)
		if !payloom.IsCode(err, payloom.CodeValidation) || payloom.ErrorParam(err) != "url" {
			t.Errorf("ValidateURL(%q, live) = %v; want a validation error on url", u, err)
		}
		testURL := strings.Replace(u, "https://", "http://", 1)
		if err := webhook.ValidateURL(ctx, testURL, false); err != nil {
			t.Errorf("ValidateURL(%q, test mode) = %v; want nil", testURL, err)
		}
	}
	invalid := []struct {
		url  string
		live bool
	}{
		{"http://93.184.216.34/hooks", true}, // live mode wants https
		{"", false},
		{"example.com/hooks", false},
		{"/hooks", false},
		{"ftp://example.com/", false},
		{"javascript:alert(1)", false},
		{"https://user:pass@example.com/", false},
		{"https://example.com/#frag", false},
		{"https:///nohost", false},
		{"https://" + strings.Repeat("a", 2050) + ".com/", false},
		{"https://no-such-host.invalid/hooks", true},
	}
	for _, tt := range invalid {
		err := webhook.ValidateURL(ctx, tt.url, tt.live)
		if !payloom.IsCode(err, payloom.CodeValidation) || payloom.ErrorParam(err) != "url" {
			t.Errorf("ValidateURL(%q, live %v) = %v; want a validation error on url", tt.url, tt.live, err)
		}
	}
	for _, u := range []string{"https://93.184.216.34/hooks?x=1", "https://[2606:4700:4700::1111]:8443/h"} {
		if err := webhook.ValidateURL(ctx, u, true); err != nil {
			t.Errorf("ValidateURL(%q, live) = %v; want nil (a public address)", u, err)
		}
	}
}

// TestLiveDeliveryRefusedAtDial: even a live endpoint whose URL passed
// validation (a name that resolved elsewhere then, or a lenient policy
// then) is never connected to an internal address: the dialer checks the
// address it actually connects to.
func TestLiveDeliveryRefusedAtDial(t *testing.T) {
	e := newEnv(t, webhook.Options{})
	rc := newReceiver(t, e.clock, nil)
	live := e.scope
	live.Livemode = true
	lenient := webhook.NewService(e.store, webhook.Options{Clock: e.clock.Now,
		AllowPrivate: func(bool) bool { return true }, AllowHTTP: func(bool) bool { return true }})
	port := rc.srv.URL[strings.LastIndex(rc.srv.URL, ":")+1:]
	for _, u := range []string{rc.URL(), "http://localhost:" + port + "/hooks"} {
		if _, _, err := lenient.CreateEndpoint(ctx, live, &payloom.WebhookEndpointCreate{URL: u, EnabledEvents: []string{"*"}}); err != nil {
			t.Fatalf("CreateEndpoint(%q) = %v", u, err)
		}
	}
	// Plain http is allowed here, to reach the dial-time check itself.
	guarded := webhook.NewDispatcher(e.store, webhook.Options{Clock: e.clock.Now, AllowHTTP: func(bool) bool { return true }})
	ev := e.event(live, payloom.EventPaymentCaptured)
	if n := e.runOnce(guarded); n != 2 {
		t.Fatalf("RunOnce() = %d; want 2 tries", n)
	}
	if n := len(rc.requests()); n != 0 {
		t.Errorf("receiver on 127.0.0.1 got %d live-mode requests; want 0", n)
	}
	as := e.attempts(live, ev.ID)
	if len(as) != 2 {
		t.Fatalf("attempts = %d; want 2", len(as))
	}
	for _, a := range as {
		if a.StatusCode != 0 || !strings.Contains(a.Error, "not allowed") {
			t.Errorf("attempt to %s: status %d, error %q; want no response and an address refusal", a.URL, a.StatusCode, a.Error)
		}
	}
	// With the default policy plain http is refused too, before dialing.
	ev2 := e.event(live, payloom.EventPaymentCaptured)
	e.runOnce(e.disp)
	as2 := e.attempts(live, ev2.ID)
	if len(as2) != 2 {
		t.Errorf("attempts of the second live event = %d; want 2", len(as2))
	}
	for _, a := range as2 {
		if a.StatusCode != 0 || !strings.Contains(a.Error, "https") {
			t.Errorf("default policy, live http attempt: status %d, error %q; want an https refusal", a.StatusCode, a.Error)
		}
	}
	if n := len(rc.requests()); n != 0 {
		t.Errorf("receiver got %d live-mode requests; want 0", n)
	}
	// The same receiver in test mode is reached.
	_, secret := e.endpoint(e.scope, rc.URL())
	e.event(e.scope, payloom.EventPaymentCaptured)
	e.runOnce(e.disp)
	if reqs := rc.requests(); len(reqs) != 1 {
		t.Errorf("receiver got %d test-mode requests; want 1", len(reqs))
	} else {
		verify(t, secret, reqs[0])
	}
}

// TestRedirectIsNotFollowed: a 3xx is a failed attempt, and the request
// never reaches where it points.
func TestRedirectIsNotFollowed(t *testing.T) {
	e := newEnv(t, webhook.Options{})
	target := newReceiver(t, e.clock, nil)
	rc := newReceiver(t, e.clock, func(w http.ResponseWriter, r *http.Request, _ int) {
		http.Redirect(w, r, target.URL(), http.StatusTemporaryRedirect)
	})
	e.endpoint(e.scope, rc.URL())
	ev := e.event(e.scope, payloom.EventPaymentCreated)
	e.runOnce(e.disp)
	if n := len(target.requests()); n != 0 {
		t.Errorf("redirect target got %d requests; want 0", n)
	}
	if d := e.onlyDelivery(e.scope, ev.ID); d.Status != payloom.WebhookDeliveryPending || d.LastStatusCode != 307 {
		t.Errorf("delivery after a redirect: %s, last %d; want pending (to retry), 307", d.Status, d.LastStatusCode)
	}
}
