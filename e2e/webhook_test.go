package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/payloom/payloom/webhook"
)

// webhookEnv makes the dispatcher look for new events often, so that the
// tests do not wait a second per step. It changes no behaviour.
var webhookEnv = []string{"PAYLOOM_WEBHOOK_POLL_INTERVAL=100ms"}

// hookRequest is one request a receiver got, and what it answered.
type hookRequest struct {
	Header http.Header
	Body   []byte
	Raw    []byte // the request as it came over the wire (headers and body)
	Status int
}

// ID is the webhook-id header: the event's ID.
func (r hookRequest) ID() string { return r.Header.Get(webhook.HeaderID) }

// hookReceiver is a merchant's webhook endpoint on 127.0.0.1. It records
// every request and answers with what respond says (200 when nil).
type hookReceiver struct {
	t   *testing.T
	URL string

	mu      sync.Mutex
	respond func(n int) int // n counts requests from 0
	reqs    []hookRequest
}

func newHookReceiver(t *testing.T, respond func(n int) int) *hookReceiver {
	t.Helper()
	rc := &hookReceiver{t: t, respond: respond}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := httputil.DumpRequest(r, true)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		status := http.StatusOK
		if rc.respond != nil {
			status = rc.respond(len(rc.reqs))
		}
		rc.reqs = append(rc.reqs, hookRequest{Header: r.Header.Clone(), Body: body, Raw: raw, Status: status})
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	rc.URL = srv.URL + "/payloom/hooks"
	return rc
}

// setRespond changes how the receiver answers from now on.
func (rc *hookReceiver) setRespond(respond func(n int) int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.respond = respond
}

func (rc *hookReceiver) requests() []hookRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.reqs)
}

// accepted returns the requests the receiver answered with 2xx, by
// webhook-id (the first of each).
func (rc *hookReceiver) accepted() map[string]hookRequest {
	out := map[string]hookRequest{}
	for _, r := range rc.requests() {
		if _, seen := out[r.ID()]; !seen && r.Status >= 200 && r.Status <= 299 {
			out[r.ID()] = r
		}
	}
	return out
}

// waitUntil polls cond until it holds; the deadline only catches a hang.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(requestTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after %v for %s", requestTimeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// webhookEndpoint is the API's endpoint object as the tests read it.
type webhookEndpoint struct {
	ID            string   `json:"id"`
	URL           string   `json:"url"`
	EnabledEvents []string `json:"enabled_events"`
	Enabled       bool     `json:"enabled"`
	Secret        string   `json:"secret"`
}

// createEndpoint registers url for events and returns the endpoint with
// its secret.
func (c *client) createEndpoint(url string, events ...string) webhookEndpoint {
	c.t.Helper()
	var ep webhookEndpoint
	r := c.expect(http.StatusOK, &ep, "POST", "/v1/webhook_endpoints", map[string]any{"url": url, "enabled_events": events})
	if !strings.HasPrefix(ep.ID, "we_") || !strings.HasPrefix(ep.Secret, webhook.SecretPrefix) {
		c.t.Fatalf("POST /v1/webhook_endpoints = %s; want a we_ endpoint with a whsec_ secret", r.Body)
	}
	return ep
}

// allEvents pages through every event of the client's scope.
func (c *client) allEvents() map[string]event {
	c.t.Helper()
	out := map[string]event{}
	path := "/v1/events?limit=100"
	for range 1000 {
		var page list[event]
		c.expect(http.StatusOK, &page, "GET", path, nil)
		for _, e := range page.Data {
			out[e.ID] = e
		}
		if !page.HasMore || len(page.Data) == 0 {
			return out
		}
		path = "/v1/events?limit=100&starting_after=" + page.Data[len(page.Data)-1].ID
	}
	c.t.Fatal("allEvents: too many pages")
	return nil
}

// webhookAttempt is one entry of GET /v1/events/{id}/deliveries.
type webhookAttempt struct {
	EndpointID string `json:"endpoint_id"`
	StatusCode int    `json:"status_code"`
	DurationMS int64  `json:"duration_ms"`
	Error      string `json:"error"`
	CreatedAt  string `json:"created_at"`
}

func (c *client) attempts(eventID string) []webhookAttempt {
	c.t.Helper()
	var l list[webhookAttempt]
	c.expect(http.StatusOK, &l, "GET", "/v1/events/"+eventID+"/deliveries", nil)
	return l.Data
}

// checkDelivery verifies a delivery's signature with secret and that its
// body is the event its webhook-id names, as GET /v1/events/{id} shows it.
func checkDelivery(t *testing.T, c *client, secret string, r hookRequest) event {
	t.Helper()
	if err := webhook.Verify(secret, r.Header, r.Body, 0); err != nil {
		t.Errorf("delivery %s: Verify = %v; want nil", r.ID(), err)
	}
	var got event
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatalf("delivery %s: body %s is not an event: %v", r.ID(), r.Body, err)
	}
	var want event
	c.expect(http.StatusOK, &want, "GET", "/v1/events/"+r.ID(), nil)
	if got.ID != r.ID() || got.Type != want.Type || !jsonEqual(got.Data.Object, want.Data.Object) {
		t.Errorf("delivery %s = %s; want the event %s %s", r.ID(), r.Body, want.ID, want.Type)
	}
	return got
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return fmt.Sprint(x) == fmt.Sprint(y)
}

// objectID returns data.object.id and, for a refund, data.object.payment_id.
func objectIDs(e event) (id, paymentID string) {
	var o struct {
		ID        string `json:"id"`
		PaymentID string `json:"payment_id"`
	}
	_ = json.Unmarshal(e.Data.Object, &o)
	return o.ID, o.PaymentID
}

// TestWebhookPaymentEvents: a receiver on loopback, registered in test
// mode, sees every event of a manually captured and refunded payment, each
// signed with the endpoint's secret; `payloom webhooks verify` accepts a
// saved delivery and rejects it with one byte changed.
func TestWebhookPaymentEvents(t *testing.T) {
	in := newInstance(t)
	srv := in.start(webhookEnv)
	first := parseFirstStart(t, srv.Stdout())
	c := newClient(t, srv.URL, first.Key)
	rc := newHookReceiver(t, nil)
	ep := c.createEndpoint(rc.URL, "*")

	tok := c.tokenize(cardVisa, cvcA)
	var p payment
	c.expect(http.StatusOK, &p, "POST", "/v1/payments", paymentBody(tok.ID, 5000, "EUR", "manual"), idem("order-1")...)
	c.expect(http.StatusOK, &p, "POST", "/v1/payments/"+p.ID+"/capture", map[string]any{"amount": 4000}, idem("order-1-capture")...)
	var rf refund
	c.expect(http.StatusOK, &rf, "POST", "/v1/refunds", map[string]any{"payment_id": p.ID, "amount": 1500}, idem("order-1-refund")...)
	if p.Status != "captured" || rf.Status != "succeeded" {
		t.Fatalf("payment %s, refund %s; want captured and succeeded", p.Status, rf.Status)
	}

	want := []string{"payment.created", "payment.authorized", "payment.captured", "refund.created", "refund.succeeded"}
	ofPayment := func() map[string]hookRequest {
		out := map[string]hookRequest{}
		for _, r := range rc.accepted() {
			var e event
			_ = json.Unmarshal(r.Body, &e)
			if id, pid := objectIDs(e); id == p.ID || pid == p.ID {
				out[e.Type] = r
			}
		}
		return out
	}
	waitUntil(t, "the payment's five events at the receiver", func() bool { return len(ofPayment()) >= len(want) })
	got := ofPayment()
	for _, typ := range want {
		r, ok := got[typ]
		if !ok {
			t.Errorf("receiver did not get %s", typ)
			continue
		}
		if e := checkDelivery(t, c, ep.Secret, r); e.Type != typ {
			t.Errorf("delivery %s has type %s; want %s", r.ID(), e.Type, typ)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type = %q; want application/json", typ, ct)
		}
		if sig := r.Header.Get(webhook.HeaderSignature); strings.Count(sig, "v1,") != 1 {
			t.Errorf("%s: webhook-signature = %q; want one v1 signature", typ, sig)
		}
	}
	if len(got) != len(want) {
		t.Errorf("receiver got event types %v for the payment; want exactly %v", slices.Sorted(maps.Keys(got)), want)
	}

	// Every delivery attempt is listed, with the receiver's answer.
	for _, typ := range want {
		as := c.attempts(got[typ].ID())
		if len(as) != 1 || as[0].StatusCode != http.StatusOK || as[0].EndpointID != ep.ID || as[0].Error != "" {
			t.Errorf("attempts of %s = %+v; want one 200 to %s", typ, as, ep.ID)
		}
	}

	t.Run("cli verify", func(t *testing.T) {
		d := got["payment.captured"]
		var saved bytes.Buffer
		if err := webhook.WriteDelivery(&saved, d.Header, d.Body); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		write := func(name string, b []byte) string {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}
		// One changed byte: the body's amount 4000 becomes 5000.
		changed := bytes.Replace(d.Body, []byte(`"amount_captured":4000`), []byte(`"amount_captured":5000`), 1)
		if bytes.Equal(changed, d.Body) {
			t.Fatalf("delivery body %s has no amount_captured 4000 to change", d.Body)
		}
		var tampered bytes.Buffer
		if err := webhook.WriteDelivery(&tampered, d.Header, changed); err != nil {
			t.Fatal(err)
		}
		rawChanged := bytes.Replace(d.Raw, []byte(`"amount_captured":4000`), []byte(`"amount_captured":5000`), 1)
		other, _ := webhook.NewSecret()
		for _, tc := range []struct {
			name, secret, file string
			valid              bool
		}{
			{"saved JSON", ep.Secret, write("delivery.json", saved.Bytes()), true},
			{"raw request", ep.Secret, write("delivery.http", d.Raw), true},
			{"one changed byte", ep.Secret, write("tampered.json", tampered.Bytes()), false},
			{"one changed byte, raw", ep.Secret, write("tampered.http", rawChanged), false},
			{"another secret", other.Reveal(), write("delivery2.json", saved.Bytes()), false},
		} {
			stdout, stderr, err := in.tryCLI(nil, "webhooks", "verify", "--secret", tc.secret, "--file", tc.file)
			switch {
			case tc.valid && (err != nil || stdout != "valid\n"):
				t.Errorf("%s: payloom webhooks verify = %q, %v (stderr %q); want valid, exit 0", tc.name, stdout, err, stderr)
			case !tc.valid && (err == nil || stdout != "" || !strings.Contains(stderr, "no valid signature")):
				t.Errorf("%s: payloom webhooks verify = %q, %v (stderr %q); want exit 1 and the reason", tc.name, stdout, err, stderr)
			}
		}
	})
	srv.Stop()
}

// TestWebhookRetriesUntilSuccess: a receiver that fails three times gets
// the event on the fourth try, on a schedule shortened by
// PAYLOOM_WEBHOOK_RETRY_SCHEDULE; the attempts are listed with their
// status codes.
func TestWebhookRetriesUntilSuccess(t *testing.T) {
	in := newInstance(t)
	srv := in.start(append([]string{"PAYLOOM_WEBHOOK_RETRY_SCHEDULE=0s,100ms,100ms,100ms,1s"}, webhookEnv...))
	first := parseFirstStart(t, srv.Stdout())
	c := newClient(t, srv.URL, first.Key)
	rc := newHookReceiver(t, func(n int) int {
		if n < 3 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	ep := c.createEndpoint(rc.URL, "payment.created")

	tok := c.tokenize(cardVisa, cvcA)
	var p payment
	c.expect(http.StatusOK, &p, "POST", "/v1/payments", paymentBody(tok.ID, 700, "USD", "automatic"))
	var evs list[event]
	c.expect(http.StatusOK, &evs, "GET", "/v1/events?type=payment.created&object_id="+p.ID, nil)
	if len(evs.Data) != 1 {
		t.Fatalf("payment.created events of %s = %d; want 1", p.ID, len(evs.Data))
	}
	evID := evs.Data[0].ID

	// The fourth attempt is recorded after the receiver answered it.
	var as []webhookAttempt
	waitUntil(t, "four recorded attempts", func() bool {
		as = c.attempts(evID)
		return len(as) >= 4
	})
	var codes []int
	for _, a := range as {
		codes = append(codes, a.StatusCode)
	}
	if want := []int{500, 500, 500, 200}; !slices.Equal(codes, want) {
		t.Fatalf("attempt status codes = %v; want %v", codes, want)
	}
	for i, a := range as {
		if (i < 3) != (a.Error != "") || a.EndpointID != ep.ID || a.DurationMS < 0 || a.CreatedAt == "" {
			t.Errorf("attempt %d = %+v; want an error on the failures only, endpoint %s", i+1, a, ep.ID)
		}
	}
	reqs := rc.requests()
	if len(reqs) != 4 {
		t.Fatalf("receiver got %d requests; want 4", len(reqs))
	}
	for i, r := range reqs {
		if r.ID() != evID {
			t.Errorf("request %d: webhook-id %q; want %s on every retry", i+1, r.ID(), evID)
		}
		if err := webhook.Verify(ep.Secret, r.Header, r.Body, 0); err != nil {
			t.Errorf("request %d: Verify = %v", i+1, err)
		}
	}
	srv.Stop()
}

// TestWebhookDeliverySurvivesKill kills the server with SIGKILL while
// deliveries are pending (the receiver is down), and again, through the
// engine's fault hook, right after a payment's first phase committed. After
// the restart every committed event reaches the receiver, and the receiver
// never sees an event that was not committed: requests the API refused
// leave no event, and nothing else is announced.
func TestWebhookDeliverySurvivesKill(t *testing.T) {
	env := append([]string{
		// Short leases, so that a dead node's claims expire at once; a
		// schedule of one-second retries, so that the deliveries stay
		// pending (not failed) for longer than the test runs.
		"PAYLOOM_WEBHOOK_LEASE=2s",
		"PAYLOOM_WEBHOOK_RETRY_SCHEDULE=0s" + strings.Repeat(",1s", 60),
	}, webhookEnv...)
	env = append(env, crashEnv...)
	in := newInstance(t)
	down := func(int) int { return http.StatusServiceUnavailable }
	rc := newHookReceiver(t, down)

	srv := in.start(env)
	first := parseFirstStart(t, srv.Stdout())
	c := newClient(t, srv.URL, first.Key)
	ep := c.createEndpoint(rc.URL, "*")

	// Payments of every kind while the receiver is down.
	pay := func(card, captureMethod string, amount int64) payment {
		t.Helper()
		tok := c.tokenize(card, cvcA)
		var p payment
		c.expect(http.StatusOK, &p, "POST", "/v1/payments", paymentBody(tok.ID, amount, "USD", captureMethod))
		return p
	}
	captured := pay(cardVisa, "automatic", 3000)
	canceled := pay(cardVisa, "manual", 2000)
	c.expect(http.StatusOK, nil, "POST", "/v1/payments/"+canceled.ID+"/cancel", nil)
	authorized := pay(cardMastercard, "manual", 1000)
	declined := pay(cardDeclined, "automatic", 500)
	var rf refund
	c.expect(http.StatusOK, &rf, "POST", "/v1/refunds", map[string]any{"payment_id": captured.ID, "amount": 1000})
	// Requests the API refuses change nothing and announce nothing.
	tok := c.tokenize(cardVisa, cvcA)
	c.expectError(http.StatusBadRequest, "validation_error", "POST", "/v1/payments", paymentBody(tok.ID, -1, "USD", "automatic"))
	c.expectError(http.StatusConflict, "invalid_state", "POST", "/v1/payments/"+canceled.ID+"/capture", nil)
	c.expectError(http.StatusBadRequest, "validation_error", "POST", "/v1/refunds", map[string]any{"payment_id": captured.ID, "amount": 2001})
	c.expectError(http.StatusConflict, "invalid_state", "POST", "/v1/refunds", map[string]any{"payment_id": authorized.ID})

	// Kill once every event has been tried and refused: the deliveries
	// are pending, with failed attempts.
	before := c.allEvents()
	waitUntil(t, "a refused try of every event", func() bool {
		tried := map[string]bool{}
		for _, r := range rc.requests() {
			tried[r.ID()] = true
		}
		for id := range before {
			if !tried[id] {
				return false
			}
		}
		return true
	})
	if n := len(rc.accepted()); n != 0 {
		t.Fatalf("the receiver accepted %d deliveries while down", n)
	}
	srv.Kill()

	// The receiver comes back. The next server dies right after a new
	// payment's first phase committed its payment.created event.
	rc.setRespond(nil)
	srv2 := in.start(append([]string{"PAYLOOM_FAULT_CRASH_AFTER=payment_created"}, env...))
	c2 := newClient(t, srv2.URL, first.Key)
	tok = c2.tokenize(cardVisa, cvcA)
	cutBody := paymentBody(tok.ID, 4200, "USD", "automatic")
	if r, err := c2.send("POST", "/v1/payments", cutBody, idem("cut-off")...); err == nil {
		t.Fatalf("POST /v1/payments = %v; want the server killed after payment_created", r)
	}
	if ws, ok := srv2.WaitExit().Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("server exit = %v; want killed by SIGKILL after payment_created", ws)
	}

	srv3 := in.start(env)
	c3 := newClient(t, srv3.URL, first.Key)
	var cut payment
	r := c3.retryUntilDone("POST", "/v1/payments", cutBody, idem("cut-off")...)
	if r.Status != http.StatusOK {
		t.Fatalf("retry of the cut-off payment = %v; want 200", r)
	}
	decode(t, r, &cut)

	committed := c3.allEvents()
	waitUntil(t, "every committed event accepted by the receiver", func() bool {
		got := rc.accepted()
		for id := range committed {
			if _, ok := got[id]; !ok {
				return false
			}
		}
		return true
	})

	// The committed events are exactly those of the changes that
	// happened, and the receiver got nothing else.
	wantTypes := map[string][]string{
		captured.ID:   {"payment.created", "payment.authorized", "payment.captured"},
		rf.ID:         {"refund.created", "refund.succeeded"},
		canceled.ID:   {"payment.created", "payment.authorized", "payment.canceled"},
		authorized.ID: {"payment.created", "payment.authorized"},
		declined.ID:   {"payment.created", "payment.failed"},
		cut.ID:        {"payment.created", "payment.authorized", "payment.captured"},
	}
	gotTypes := map[string][]string{}
	for _, e := range committed {
		id, _ := objectIDs(e)
		gotTypes[id] = append(gotTypes[id], e.Type)
	}
	for id, want := range wantTypes {
		got := slices.Sorted(slices.Values(gotTypes[id]))
		if want = slices.Sorted(slices.Values(want)); !slices.Equal(got, want) {
			t.Errorf("committed events of %s = %v; want %v", id, got, want)
		}
	}
	if len(gotTypes) != len(wantTypes) {
		t.Errorf("committed events are about %d objects; want %d: %v", len(gotTypes), len(wantTypes), gotTypes)
	}
	for _, r := range rc.requests() {
		if _, ok := committed[r.ID()]; !ok {
			t.Errorf("the receiver got event %s (answered %d), which was never committed: %s", r.ID(), r.Status, r.Body)
		}
	}
	for _, r := range rc.accepted() {
		checkDelivery(t, c3, ep.Secret, r)
	}
	srv3.Stop()
	scanForCardData(t, in, []string{cardVisa, cardMastercard}, []string{cvcA})
}

// TestWebhookSecretRotation: after rotate_secret, deliveries carry two
// signatures, and both the old and the new secret verify them.
func TestWebhookSecretRotation(t *testing.T) {
	in := newInstance(t)
	srv := in.start(webhookEnv)
	first := parseFirstStart(t, srv.Stdout())
	c := newClient(t, srv.URL, first.Key)
	rc := newHookReceiver(t, nil)
	ep := c.createEndpoint(rc.URL, "payment.created")
	deliveryOf := func(amount int64) hookRequest {
		t.Helper()
		tok := c.tokenize(cardVisa, cvcA)
		var p payment
		c.expect(http.StatusOK, &p, "POST", "/v1/payments", paymentBody(tok.ID, amount, "USD", "automatic"))
		var out hookRequest
		waitUntil(t, "the payment.created delivery of "+p.ID, func() bool {
			for _, r := range rc.accepted() {
				var e event
				_ = json.Unmarshal(r.Body, &e)
				if id, _ := objectIDs(e); id == p.ID {
					out = r
					return true
				}
			}
			return false
		})
		return out
	}
	before := deliveryOf(100)

	var rotated webhookEndpoint
	c.expect(http.StatusOK, &rotated, "POST", "/v1/webhook_endpoints/"+ep.ID+"/rotate_secret", nil)
	if !strings.HasPrefix(rotated.Secret, webhook.SecretPrefix) || rotated.Secret == ep.Secret {
		t.Fatalf("rotate_secret secret = %q; want a new whsec_ secret", rotated.Secret)
	}
	r := c.expect(http.StatusOK, nil, "GET", "/v1/webhook_endpoints/"+ep.ID, nil)
	if bytes.Contains(r.Body, []byte(rotated.Secret)) || bytes.Contains(r.Body, []byte(ep.Secret)) {
		t.Errorf("GET endpoint shows a secret: %s", r.Body)
	}
	after := deliveryOf(200)

	other, _ := webhook.NewSecret()
	for _, tc := range []struct {
		name   string
		d      hookRequest
		secret string
		valid  bool
	}{
		{"before, old secret", before, ep.Secret, true},
		{"before, new secret", before, rotated.Secret, false},
		{"after, old secret", after, ep.Secret, true},
		{"after, new secret", after, rotated.Secret, true},
		{"after, another secret", after, other.Reveal(), false},
	} {
		if err := webhook.Verify(tc.secret, tc.d.Header, tc.d.Body, 0); (err == nil) != tc.valid {
			t.Errorf("%s: Verify = %v; want valid %v", tc.name, err, tc.valid)
		}
	}
	if sigs := strings.Fields(after.Header.Get(webhook.HeaderSignature)); len(sigs) != 2 {
		t.Errorf("webhook-signature after rotation = %q; want two signatures", after.Header.Get(webhook.HeaderSignature))
	}
	srv.Stop()
}

// TestWebhookLiveModeSSRF: live-mode endpoints may not point at loopback,
// private, link-local or metadata addresses, nor use plain http; test mode
// accepts a loopback http URL.
func TestWebhookLiveModeSSRF(t *testing.T) {
	in := newInstance(t)
	srv := in.start(webhookEnv)
	first := parseFirstStart(t, srv.Stdout())
	test := newClient(t, srv.URL, first.Key)
	out, _ := in.runCLI("keys", "create", "--merchant", first.MerchantID, "--mode", "live")
	live := test.withKey(strings.TrimSpace(out))
	if !strings.HasPrefix(live.key, "sk_live_") {
		t.Fatalf("keys create --mode live printed %q; want sk_live_...", out)
	}
	rc := newHookReceiver(t, nil)

	for _, u := range []string{
		"http://127.0.0.1/hooks",
		strings.Replace(rc.URL, "http://", "https://", 1),
		"https://10.0.0.1/hooks",
		"https://192.168.0.10/hooks",
		"https://169.254.169.254/latest/meta-data/",
		"https://[::1]/hooks",
		"https://[fe80::1]/hooks",
		"https://localhost/hooks",
		"http://example.com/hooks",
	} {
		r := live.do("POST", "/v1/webhook_endpoints", map[string]any{"url": u, "enabled_events": []string{"*"}})
		if r.Status != http.StatusBadRequest || r.ErrorCode() != "validation_error" || r.ErrorParam() != "url" {
			t.Errorf("live POST /v1/webhook_endpoints %q = %v; want 400 validation_error param url", u, r)
		}
	}
	var eps list[webhookEndpoint]
	live.expect(http.StatusOK, &eps, "GET", "/v1/webhook_endpoints", nil)
	if len(eps.Data) != 0 {
		t.Errorf("live endpoints after refusals = %d; want 0", len(eps.Data))
	}
	ep := test.createEndpoint(rc.URL, "*")
	if ep.URL != rc.URL {
		t.Errorf("test-mode endpoint url = %q; want %q", ep.URL, rc.URL)
	}
	srv.Stop()
}
