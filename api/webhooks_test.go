package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/webhook"
)

// receiver is a webhook endpoint on 127.0.0.1 that records what it gets
// and answers statuses[i] to the i-th request (200 once they run out).
type receiver struct {
	url      string
	mu       sync.Mutex
	statuses []int
	got      []received
}

type received struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	t.Helper()
	rc := &receiver{statuses: statuses}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		status := http.StatusOK
		if n := len(rc.got); n < len(rc.statuses) {
			status = rc.statuses[n]
		}
		rc.got = append(rc.got, received{r.Header.Clone(), body})
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	rc.url = srv.URL + "/hooks"
	return rc
}

func (rc *receiver) received() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// createEndpoint registers an endpoint and returns its ID and secret.
func (h *harness) createEndpoint(key, url, events string) (id, secret string) {
	h.t.Helper()
	r := h.do(req{method: "POST", path: "/v1/webhook_endpoints", key: key,
		body: `{"url": "` + url + `", "enabled_events": ` + events + `}`})
	wantStatus(h.t, r, 200)
	return r.str("id"), r.str("secret")
}

// dispatch runs a dispatcher on the harness's store once: fan-out, then one
// try of every delivery due now.
func (h *harness) dispatch(opts webhook.Options) int {
	h.t.Helper()
	n, err := webhook.NewDispatcher(h.store, opts).RunOnce(context.Background())
	if err != nil {
		h.t.Fatalf("RunOnce: %v", err)
	}
	return n
}

// TestWebhookEndpointLifecycle drives every endpoint route through success
// and error cases. The secret must appear in the create and rotate_secret
// responses and nowhere else; openapi.json's WebhookEndpoint schema refuses
// a "secret" property, so every validated response checks that too.
func TestWebhookEndpointLifecycle(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	key := h.key(h.merchant(nil), false)
	rc := newReceiver(t)

	r := h.do(req{method: "POST", path: "/v1/webhook_endpoints", key: key,
		body: `{"url": "` + rc.url + `", "enabled_events": ["payment.captured", "refund.succeeded", "payment.captured"], "description": "orders"}`})
	wantStatus(t, r, 200)
	id, secret := r.str("id"), r.str("secret")
	if !payloom.HasPrefix(id, payloom.PrefixWebhookEndpoint) || !strings.HasPrefix(secret, webhook.SecretPrefix) ||
		r.str("url") != rc.url || r.json["enabled"] != true || r.str("description") != "orders" {
		t.Fatalf("create = %s; want an enabled we_ endpoint for %s with a whsec_ secret", r.body, rc.url)
	}
	if got := fmt.Sprint(r.json["enabled_events"]); got != "[payment.captured refund.succeeded]" {
		t.Errorf("enabled_events = %s; want the list without its duplicate", got)
	}
	id2, secret2 := h.createEndpoint(key, rc.url, `["*"]`)

	noSecret := func(r *response, secrets ...string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(string(r.body), s) || strings.Contains(string(r.body), `"secret"`) {
				t.Errorf("response shows a signing secret: %s", r.body)
			}
		}
	}
	r = h.do(req{method: "GET", path: "/v1/webhook_endpoints/" + id, key: key})
	wantStatus(t, r, 200)
	noSecret(r, secret)
	if r.str("id") != id || r.str("url") != rc.url {
		t.Errorf("GET endpoint = %s; want %s", r.body, id)
	}

	// List, newest first, with cursors.
	r = h.do(req{method: "GET", path: "/v1/webhook_endpoints", key: key})
	wantStatus(t, r, 200)
	noSecret(r, secret, secret2)
	var ids []string
	for _, e := range r.json["data"].([]any) {
		ids = append(ids, e.(map[string]any)["id"].(string))
	}
	if want := []string{id2, id}; fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Errorf("list = %v; want %v", ids, want)
	}
	r = h.do(req{method: "GET", path: "/v1/webhook_endpoints?limit=1&starting_after=" + id2, key: key})
	if data := r.json["data"].([]any); len(data) != 1 || data[0].(map[string]any)["id"] != id || r.json["has_more"] != false {
		t.Errorf("list after %s = %s; want only %s", id2, r.body, id)
	}
	for _, q := range []struct{ query, param string }{
		{"?starting_after=pay_1", "starting_after"},
		{"?limit=0", "limit"},
		{"?created[gte]=1", "created[gte]"},
	} {
		wantError(t, h.do(req{method: "GET", path: "/v1/webhook_endpoints" + q.query, key: key}), 400, payloom.CodeValidation, q.param)
	}

	// Update: only the fields sent change.
	r = h.do(req{method: "PATCH", path: "/v1/webhook_endpoints/" + id, key: key,
		body: `{"enabled_events": ["*"], "enabled": false}`})
	wantStatus(t, r, 200)
	noSecret(r, secret)
	if r.json["enabled"] != false || fmt.Sprint(r.json["enabled_events"]) != "[*]" || r.str("description") != "orders" || r.str("url") != rc.url {
		t.Errorf("PATCH = %s; want disabled, [*], description and url unchanged", r.body)
	}
	r = h.do(req{method: "PATCH", path: "/v1/webhook_endpoints/" + id, key: key, body: `{"enabled": true, "description": ""}`})
	if r.json["enabled"] != true || r.str("description") != "" {
		t.Errorf("PATCH enable = %s; want enabled with an empty description", r.body)
	}
	for _, tt := range []struct{ body, param string }{
		{`{"enabled_events": ["payment.paid"]}`, "enabled_events"},
		{`{"enabled_events": []}`, "enabled_events"},
		{`{"enabled_events": "*"}`, "enabled_events"},
		{`{"url": "ftp://example.com/x"}`, "url"},
		{`{"url": ""}`, "url"},
		{`{"enabled": "yes"}`, "enabled"},
		{`{"secret": "whsec_AAAA"}`, "secret"},
	} {
		wantError(t, h.do(req{method: "PATCH", path: "/v1/webhook_endpoints/" + id, key: key, body: tt.body}), 400, payloom.CodeValidation, tt.param)
	}
	wantError(t, h.do(req{method: "PATCH", path: "/v1/webhook_endpoints/" + id + "?enabled=false", key: key}), 400, payloom.CodeValidation, "enabled")
	wantError(t, h.do(req{method: "PATCH", path: "/v1/webhook_endpoints/we_nope", key: key, body: `{"enabled": false}`}), 404, payloom.CodeNotFound, "")

	// Rotation answers a new secret, once.
	r = h.do(req{method: "POST", path: "/v1/webhook_endpoints/" + id + "/rotate_secret", key: key})
	wantStatus(t, r, 200)
	rotated := r.str("secret")
	if !strings.HasPrefix(rotated, webhook.SecretPrefix) || rotated == secret || r.str("id") != id {
		t.Fatalf("rotate_secret = %s; want a new whsec_ secret for %s", r.body, id)
	}
	noSecret(h.do(req{method: "GET", path: "/v1/webhook_endpoints/" + id, key: key}), secret, rotated)
	wantError(t, h.do(req{method: "POST", path: "/v1/webhook_endpoints/we_nope/rotate_secret", key: key}), 404, payloom.CodeNotFound, "")
	wantError(t, h.do(req{method: "POST", path: "/v1/webhook_endpoints/" + id + "/rotate_secret", key: key, body: `{"force": true}`}), 400, payloom.CodeValidation, "force")

	// Delete.
	r = h.do(req{method: "DELETE", path: "/v1/webhook_endpoints/" + id2, key: key})
	wantStatus(t, r, 200)
	if r.str("id") != id2 || r.json["deleted"] != true {
		t.Errorf("DELETE = %s; want {id: %s, deleted: true}", r.body, id2)
	}
	wantError(t, h.do(req{method: "GET", path: "/v1/webhook_endpoints/" + id2, key: key}), 404, payloom.CodeNotFound, "")
	wantError(t, h.do(req{method: "DELETE", path: "/v1/webhook_endpoints/" + id2, key: key}), 404, payloom.CodeNotFound, "")
	wantError(t, h.do(req{method: "DELETE", path: "/v1/webhook_endpoints/" + id2, key: key, body: `{"merchant_id": 5}`}), 400, payloom.CodeValidation, "merchant_id")

	// Methods the paths do not take.
	r = h.do(req{method: "PUT", path: "/v1/webhook_endpoints/" + id, key: key, body: `{}`})
	wantError(t, r, 405, codeMethodNotAllowed, "")
	if got := r.header.Get("Allow"); got != "GET, PATCH, DELETE, HEAD" {
		t.Errorf("PUT endpoint: Allow = %q; want %q", got, "GET, PATCH, DELETE, HEAD")
	}
}

func TestWebhookEndpointCreateValidation(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	key := h.key(h.merchant(nil), false)
	const url = `"url": "http://127.0.0.1:9/hooks"`
	tooMany := `["payment.created"` + strings.Repeat(`, "payment.created"`, maxEnabledEvents) + `]`
	tests := []struct{ body, param string }{
		{`{"enabled_events": ["*"]}`, "url"},
		{`{"url": "", "enabled_events": ["*"]}`, "url"},
		{`{` + url + `}`, "enabled_events"},
		{`{` + url + `, "enabled_events": []}`, "enabled_events"},
		{`{` + url + `, "enabled_events": ["*", "payment.created"]}`, "enabled_events"},
		{`{` + url + `, "enabled_events": ["payment.paid"]}`, "enabled_events"},
		{`{` + url + `, "enabled_events": ["payment.created", 7]}`, "enabled_events[1]"},
		{`{` + url + `, "enabled_events": ` + tooMany + `}`, "enabled_events"},
		{`{` + url + `, "enabled_events": ["*"], "description": "` + strings.Repeat("é", 1001) + `"}`, "description"},
		{`{"url": "127.0.0.1/hooks", "enabled_events": ["*"]}`, "url"},
		{`{"url": "javascript:alert(1)", "enabled_events": ["*"]}`, "url"},
		{`{"url": "http://user:pw@127.0.0.1/hooks", "enabled_events": ["*"]}`, "url"},
		{`{"url": "http://127.0.0.1/hooks#frag", "enabled_events": ["*"]}`, "url"},
		{`{"url": "http://127.0.0.1/` + strings.Repeat("a", 2048) + `", "enabled_events": ["*"]}`, "url"},
		{`{` + url + `, "enabled_events": ["*"], "secret": "whsec_AAAA"}`, "secret"},
		{`{` + url + `, "enabled_events": ["*"], "merchant_id": "acct_1"}`, "merchant_id"},
	}
	for i, tt := range tests {
		// The same Idempotency-Key every time: a refused request stores
		// nothing under it.
		r := h.do(req{method: "POST", path: "/v1/webhook_endpoints", key: key, body: tt.body,
			header: map[string]string{"Idempotency-Key": "create-endpoint"}})
		if r.status != 400 || r.str("error", "param") != tt.param {
			t.Errorf("case %d: POST /v1/webhook_endpoints %.80s = %d %s; want 400 param %q", i, tt.body, r.status, r.body, tt.param)
		}
	}
	r := h.do(req{method: "GET", path: "/v1/webhook_endpoints", key: key})
	if data := r.json["data"].([]any); len(data) != 0 {
		t.Fatalf("endpoints after refused requests = %s; want none", r.body)
	}

	// With an Idempotency-Key, a retry replays the first answer, secret
	// included, and creates nothing more.
	body := `{` + url + `, "enabled_events": ["*"]}`
	first := h.do(req{method: "POST", path: "/v1/webhook_endpoints", key: key, body: body,
		header: map[string]string{"Idempotency-Key": "create-endpoint"}})
	wantStatus(t, first, 200)
	again := h.do(req{method: "POST", path: "/v1/webhook_endpoints", key: key, body: body,
		header: map[string]string{"Idempotency-Key": "create-endpoint"}})
	if string(again.body) != string(first.body) || again.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay = %s (Idempotent-Replayed %q); want %s replayed", again.body, again.header.Get("Idempotent-Replayed"), first.body)
	}
	wantError(t, h.do(req{method: "POST", path: "/v1/webhook_endpoints", key: key, body: `{` + url + `, "enabled_events": ["payment.created"]}`,
		header: map[string]string{"Idempotency-Key": "create-endpoint"}}), 409, payloom.CodeIdempotencyConflict, "")
	r = h.do(req{method: "GET", path: "/v1/webhook_endpoints", key: key})
	if data := r.json["data"].([]any); len(data) != 1 {
		t.Errorf("endpoints after a replayed create = %d; want 1", len(data))
	}
}

// In live mode, endpoints must be https and must not reach loopback,
// private, link-local or metadata addresses; test mode allows them.
func TestWebhookEndpointURLPolicy(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	mrch := h.merchant(nil)
	live, test := h.key(mrch, true), h.key(mrch, false)
	refused := []string{
		"http://127.0.0.1/hooks",
		"https://127.0.0.1/hooks",
		"https://127.1.2.3:8443/hooks",
		"https://10.0.0.1/hooks",
		"https://172.16.5.4/hooks",
		"https://192.168.1.1/hooks",
		"https://169.254.169.254/latest/meta-data",
		"https://100.64.0.1/hooks",
		"https://0.0.0.0/hooks",
		"https://[::1]/hooks",
		"https://[fd00::1]/hooks",
		"https://[fe80::1]/hooks",
		"https://[::ffff:127.0.0.1]/hooks",
		"https://localhost/hooks",
		"http://example.com/hooks",
		"http://93.184.216.34/hooks",
	}
	for _, u := range refused {
		r := h.do(req{method: "POST", path: "/v1/webhook_endpoints", key: live, body: `{"url": "` + u + `", "enabled_events": ["*"]}`})
		if r.status != 400 || r.str("error", "param") != "url" {
			t.Errorf("live POST /v1/webhook_endpoints url %q = %d %s; want 400 param url", u, r.status, r.body)
		}
	}
	// A public address is accepted (an IP literal: no DNS needed).
	id, _ := h.createEndpoint(live, "https://93.184.216.34/hooks", `["*"]`)
	// Changing it to an internal address is refused like creating one.
	wantError(t, h.do(req{method: "PATCH", path: "/v1/webhook_endpoints/" + id, key: live,
		body: `{"url": "https://169.254.169.254/"}`}), 400, payloom.CodeValidation, "url")

	for _, u := range []string{"http://127.0.0.1:8080/hooks", "http://localhost/hooks", "https://[::1]/hooks", "http://10.0.0.1/hooks"} {
		r := h.do(req{method: "POST", path: "/v1/webhook_endpoints", key: test, body: `{"url": "` + u + `", "enabled_events": ["*"]}`})
		if r.status != 200 {
			t.Errorf("test-mode POST /v1/webhook_endpoints url %q = %d %s; want 200", u, r.status, r.body)
		}
	}
}

// TestWebhookDeliveriesAndResend delivers a payment's events to a real
// receiver that fails once, then lists the attempts and resends.
func TestWebhookDeliveriesAndResend(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	mrch := h.merchant(nil)
	key := h.key(mrch, false)
	rc := newReceiver(t, http.StatusInternalServerError)
	_, secret := h.createEndpoint(key, rc.url, `["payment.captured"]`)

	pay := h.pay(key, cardApprove, 1200, "")
	wantStatus(t, pay, 200)
	opts := webhook.Options{Schedule: []time.Duration{0, 0, 0}}
	h.dispatch(opts) // the first try fails with 500
	h.dispatch(opts) // the retry, due at once, succeeds
	got := rc.received()
	if len(got) != 2 {
		t.Fatalf("receiver got %d requests; want 2 (a failure and its retry)", len(got))
	}
	r := h.do(req{method: "GET", path: "/v1/events?type=payment.captured&object_id=" + pay.str("id"), key: key})
	events := r.json["data"].([]any)
	if len(events) != 1 {
		t.Fatalf("payment.captured events = %s; want 1", r.body)
	}
	evID := events[0].(map[string]any)["id"].(string)
	for i, d := range got {
		if err := webhook.Verify(secret, d.header, d.body, 0); err != nil {
			t.Errorf("delivery %d: Verify = %v; want nil", i, err)
		}
		if id := d.header.Get(webhook.HeaderID); id != evID {
			t.Errorf("delivery %d: webhook-id = %q; want the event ID %s", i, id, evID)
		}
	}

	r = h.do(req{method: "GET", path: "/v1/events/" + evID + "/deliveries", key: key})
	wantStatus(t, r, 200)
	attempts := r.json["data"].([]any)
	if len(attempts) != 2 {
		t.Fatalf("attempts = %s; want 2", r.body)
	}
	a0, a1 := attempts[0].(map[string]any), attempts[1].(map[string]any)
	if a0["status_code"] != float64(500) || a0["error"] == nil || a1["status_code"] != float64(200) || a1["error"] != nil {
		t.Errorf("attempts = %s; want a 500 with an error, then a 200 without", r.body)
	}
	if strings.Contains(string(r.body), secret) {
		t.Errorf("attempts show the signing secret: %s", r.body)
	}

	// Resend: a new delivery, due now, with the same webhook-id.
	before := h.notified.Load()
	r = h.do(req{method: "POST", path: "/v1/events/" + evID + "/resend", key: key})
	wantStatus(t, r, 200)
	ds := r.json["data"].([]any)
	if len(ds) != 1 || ds[0].(map[string]any)["status"] != "pending" || ds[0].(map[string]any)["event_id"] != evID {
		t.Fatalf("resend = %s; want one pending delivery of %s", r.body, evID)
	}
	if h.notified.Load() == before {
		t.Errorf("resend did not call Config.Notify")
	}
	h.dispatch(opts)
	if got := rc.received(); len(got) != 3 || got[2].header.Get(webhook.HeaderID) != evID {
		t.Fatalf("receiver after resend got %d requests; want a third with webhook-id %s", len(got), evID)
	}
	if r := h.do(req{method: "GET", path: "/v1/events/" + evID + "/deliveries", key: key}); len(r.json["data"].([]any)) != 3 {
		t.Errorf("attempts after resend = %s; want 3", r.body)
	}

	// An event no endpoint subscribes to resends to nobody.
	r = h.do(req{method: "GET", path: "/v1/events?type=payment.created&object_id=" + pay.str("id"), key: key})
	created := r.json["data"].([]any)[0].(map[string]any)["id"].(string)
	r = h.do(req{method: "POST", path: "/v1/events/" + created + "/resend", key: key, body: `{}`})
	if r.status != 200 || len(r.json["data"].([]any)) != 0 {
		t.Errorf("resend of an unsubscribed event = %d %s; want 200 with no deliveries", r.status, r.body)
	}

	// Unknown events, and another merchant's, are 404; bad bodies 400.
	other := h.key(h.merchant(&payloom.Merchant{Name: "Other"}), false)
	for _, k := range []string{key, other} {
		path := "/v1/events/" + evID
		if k == key {
			path = "/v1/events/evt_00000000000000000000000000"
		}
		wantError(t, h.do(req{method: "GET", path: path + "/deliveries", key: k}), 404, payloom.CodeNotFound, "")
		wantError(t, h.do(req{method: "POST", path: path + "/resend", key: k}), 404, payloom.CodeNotFound, "")
	}
	wantError(t, h.do(req{method: "POST", path: "/v1/events/" + evID + "/resend", key: key, body: `{"now": true}`}), 400, payloom.CodeValidation, "now")
	wantError(t, h.do(req{method: "GET", path: "/v1/events/" + evID + "/deliveries?limit=1", key: key}), 400, payloom.CodeValidation, "limit")
}

// An endpoint that answers 410 Gone is disabled, and the event that says so
// shows the endpoint without its secret.
func TestWebhookEndpointDisabledEvent(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	key := h.key(h.merchant(nil), false)
	rc := newReceiver(t, http.StatusGone)
	id, secret := h.createEndpoint(key, rc.url, `["payment.created"]`)
	wantStatus(t, h.pay(key, cardApprove, 500, ""), 200)
	h.dispatch(webhook.Options{})

	r := h.do(req{method: "GET", path: "/v1/webhook_endpoints/" + id, key: key})
	if r.json["enabled"] != false || !strings.Contains(r.str("disabled_reason"), "410") {
		t.Fatalf("endpoint after 410 = %s; want disabled, with a reason naming 410", r.body)
	}
	r = h.do(req{method: "GET", path: "/v1/events?type=webhook_endpoint.disabled", key: key})
	data := r.json["data"].([]any)
	if len(data) != 1 {
		t.Fatalf("webhook_endpoint.disabled events = %s; want 1", r.body)
	}
	ev := data[0].(map[string]any)
	if obj := ev["data"].(map[string]any)["object"].(map[string]any); obj["id"] != id || obj["enabled"] != false {
		t.Errorf("event data = %v; want the disabled endpoint %s", obj, id)
	}
	if strings.Contains(string(r.body), secret) || strings.Contains(string(r.body), `"secret"`) {
		t.Errorf("the event shows the signing secret: %s", r.body)
	}
	r = h.do(req{method: "GET", path: "/v1/events/" + ev["id"].(string), key: key})
	wantStatus(t, r, 200)

	// Enabling it again clears the reason.
	r = h.do(req{method: "PATCH", path: "/v1/webhook_endpoints/" + id, key: key, body: `{"enabled": true}`})
	if r.json["enabled"] != true || r.json["disabled_reason"] != nil {
		t.Errorf("re-enabled endpoint = %s; want enabled without disabled_reason", r.body)
	}
}

// Another merchant's endpoint, or the same merchant's in the other mode,
// answers 404 like a missing one.
func TestWebhookEndpointTenancy(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	a := h.merchant(&payloom.Merchant{Name: "A"})
	keyA, keyB, liveA := h.key(a, false), h.key(h.merchant(&payloom.Merchant{Name: "B"}), false), h.key(a, true)
	platform := h.key("", false)
	id, _ := h.createEndpoint(keyA, "http://127.0.0.1:9/hooks", `["*"]`)
	for _, k := range []string{keyB, liveA} {
		for _, rq := range []req{
			{method: "GET", path: "/v1/webhook_endpoints/" + id},
			{method: "PATCH", path: "/v1/webhook_endpoints/" + id, body: `{"enabled": false}`},
			{method: "DELETE", path: "/v1/webhook_endpoints/" + id},
			{method: "POST", path: "/v1/webhook_endpoints/" + id + "/rotate_secret"},
		} {
			rq.key = k
			wantError(t, h.do(rq), 404, payloom.CodeNotFound, "")
		}
		if r := h.do(req{method: "GET", path: "/v1/webhook_endpoints", key: k}); len(r.json["data"].([]any)) != 0 {
			t.Errorf("another scope lists %s", r.body)
		}
	}
	if r := h.do(req{method: "GET", path: "/v1/webhook_endpoints/" + id, key: keyA}); r.json["enabled"] != true {
		t.Errorf("A's endpoint after the others' requests = %s; want it unchanged", r.body)
	}
	// A platform key names the merchant.
	wantError(t, h.do(req{method: "GET", path: "/v1/webhook_endpoints/" + id, key: platform}), 400, payloom.CodeValidation, "merchant_id")
	wantStatus(t, h.do(req{method: "GET", path: "/v1/webhook_endpoints/" + id + "?merchant_id=" + a, key: platform}), 200)
	r := h.do(req{method: "POST", path: "/v1/webhook_endpoints", key: platform,
		body: `{"merchant_id": "` + a + `", "url": "http://127.0.0.1:9/other", "enabled_events": ["*"]}`})
	if r.status != 200 || r.str("merchant_id") != a {
		t.Errorf("platform create for A = %d %s; want 200 for %s", r.status, r.body, a)
	}
}
