package webhook_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/webhook"
)

func TestCreateEndpoint(t *testing.T) {
	e := newEnv(t, webhook.Options{})
	ep, secret, err := e.svc.CreateEndpoint(ctx, e.scope, &payloom.WebhookEndpointCreate{
		URL: "http://127.0.0.1:9/hooks", Description: "orders",
		EnabledEvents: []string{"payment.captured", "refund.succeeded", "payment.captured"},
	})
	if err != nil {
		t.Fatalf("CreateEndpoint = %v", err)
	}
	key, kerr := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret.Reveal(), "whsec_"))
	if !strings.HasPrefix(secret.Reveal(), "whsec_") || kerr != nil || len(key) < 24 {
		t.Errorf("CreateEndpoint secret: %d-byte key, %v; want whsec_ and at least 24 random bytes", len(key), kerr)
	}
	if !payloom.HasPrefix(ep.ID, "we") || !ep.Enabled || ep.Object != "webhook_endpoint" ||
		!slices.Equal(ep.EnabledEvents, []string{"payment.captured", "refund.succeeded"}) {
		t.Errorf("CreateEndpoint = %+v; want an enabled we_ endpoint with the events once each", ep)
	}
	// The secret is never in the endpoint's JSON (what the API shows
	// after creation).
	b, _ := json.Marshal(ep)
	if strings.Contains(string(b), secret.Reveal()[6:]) || strings.Contains(string(b), "secret") {
		t.Errorf("endpoint JSON %s shows the secret", b)
	}
	got := e.getEndpoint(e.scope, ep.ID)
	if got.Secret.Reveal() != secret.Reveal() || got.URL != ep.URL || got.Description != "orders" {
		t.Errorf("stored endpoint differs from the created one")
	}
	live := e.scope
	live.Livemode = true
	for _, o := range []payloom.Scope{e.merchant(), live} {
		if _, err := e.svc.Endpoint(ctx, o, ep.ID); !payloom.IsCode(err, payloom.CodeNotFound) {
			t.Errorf("Endpoint(other scope %+v) = %v; want not_found", o, err)
		}
	}
}

func TestCreateEndpointValidation(t *testing.T) {
	e := newEnv(t, webhook.Options{})
	live := e.scope
	live.Livemode = true
	tests := []struct {
		name  string
		scope payloom.Scope
		req   payloom.WebhookEndpointCreate
		param string
	}{
		{"no url", e.scope, payloom.WebhookEndpointCreate{EnabledEvents: []string{"*"}}, "url"},
		{"live loopback", live, payloom.WebhookEndpointCreate{URL: "https://127.0.0.1/", EnabledEvents: []string{"*"}}, "url"},
		{"live http", live, payloom.WebhookEndpointCreate{URL: "http://93.184.216.34/", EnabledEvents: []string{"*"}}, "url"},
		{"no events", e.scope, payloom.WebhookEndpointCreate{URL: "http://127.0.0.1/"}, "enabled_events"},
		{"unknown event", e.scope, payloom.WebhookEndpointCreate{URL: "http://127.0.0.1/", EnabledEvents: []string{"payment.exploded"}}, "enabled_events"},
		{"star and more", e.scope, payloom.WebhookEndpointCreate{URL: "http://127.0.0.1/", EnabledEvents: []string{"*", "payment.created"}}, "enabled_events"},
		{"long description", e.scope, payloom.WebhookEndpointCreate{URL: "http://127.0.0.1/", EnabledEvents: []string{"*"}, Description: strings.Repeat("é", 1001)}, "description"},
	}
	for _, tt := range tests {
		_, _, err := e.svc.CreateEndpoint(ctx, tt.scope, &tt.req)
		if !payloom.IsCode(err, payloom.CodeValidation) || payloom.ErrorParam(err) != tt.param {
			t.Errorf("%s: CreateEndpoint = %v; want a validation error on %q", tt.name, err, tt.param)
		}
	}
	list, err := e.svc.ListEndpoints(ctx, e.scope, payloom.ListParams{})
	if err != nil || len(list.Data) != 0 {
		t.Errorf("ListEndpoints after only invalid requests = %v, %v; want none", list, err)
	}
}

func TestMaxEndpoints(t *testing.T) {
	e := newEnv(t, webhook.Options{MaxEndpoints: 3})
	for i := range 3 {
		e.endpoint(e.scope, fmt.Sprintf("http://127.0.0.1:%d/", 9000+i))
	}
	_, _, err := e.svc.CreateEndpoint(ctx, e.scope, &payloom.WebhookEndpointCreate{URL: "http://127.0.0.1/", EnabledEvents: []string{"*"}})
	if !payloom.IsCode(err, payloom.CodeValidation) {
		t.Errorf("CreateEndpoint beyond the maximum = %v; want a validation error", err)
	}
	// Another scope has its own allowance.
	e.endpoint(e.merchant(), "http://127.0.0.1/")
}

func TestUpdateListDeleteEndpoint(t *testing.T) {
	e := newEnv(t, webhook.Options{})
	a, _ := e.endpoint(e.scope, "http://127.0.0.1:1/a")
	b, _ := e.endpoint(e.scope, "http://127.0.0.1:2/b")

	newURL, desc, events, off := "http://127.0.0.1:3/c", "renamed", []string{"refund.failed"}, false
	got, err := e.svc.UpdateEndpoint(ctx, e.scope, a.ID, &payloom.WebhookEndpointUpdate{
		URL: &newURL, Description: &desc, EnabledEvents: &events, Enabled: &off})
	if err != nil {
		t.Fatalf("UpdateEndpoint = %v", err)
	}
	if got.URL != newURL || got.Description != desc || !slices.Equal(got.EnabledEvents, events) || got.Enabled {
		t.Errorf("UpdateEndpoint = %+v; want the new url, description, events, disabled", got)
	}
	stored := e.getEndpoint(e.scope, a.ID)
	if stored.URL != newURL || stored.Enabled || stored.Secret.Reveal() != a.Secret.Reveal() {
		t.Errorf("stored after update: url %q enabled %v; want %q, false, same secret", stored.URL, stored.Enabled, newURL)
	}
	bad := "ftp://x"
	if _, err := e.svc.UpdateEndpoint(ctx, e.scope, a.ID, &payloom.WebhookEndpointUpdate{URL: &bad}); payloom.ErrorParam(err) != "url" {
		t.Errorf("UpdateEndpoint(bad url) = %v; want a validation error on url", err)
	}
	empty := []string{}
	if _, err := e.svc.UpdateEndpoint(ctx, e.scope, a.ID, &payloom.WebhookEndpointUpdate{EnabledEvents: &empty}); payloom.ErrorParam(err) != "enabled_events" {
		t.Errorf("UpdateEndpoint(no events) = %v; want a validation error on enabled_events", err)
	}
	if _, err := e.svc.UpdateEndpoint(ctx, e.merchant(), a.ID, &payloom.WebhookEndpointUpdate{Description: &desc}); !payloom.IsCode(err, payloom.CodeNotFound) {
		t.Errorf("UpdateEndpoint(other scope) = %v; want not_found", err)
	}

	list, err := e.svc.ListEndpoints(ctx, e.scope, payloom.ListParams{Limit: 1})
	if err != nil || len(list.Data) != 1 || list.Data[0].ID != b.ID || !list.HasMore || list.Object != "list" {
		t.Errorf("ListEndpoints(limit 1) = %+v, %v; want [%s] with more", list, err, b.ID)
	}

	if err := e.svc.DeleteEndpoint(ctx, e.scope, a.ID); err != nil {
		t.Fatalf("DeleteEndpoint = %v", err)
	}
	if err := e.svc.DeleteEndpoint(ctx, e.scope, a.ID); !payloom.IsCode(err, payloom.CodeNotFound) {
		t.Errorf("DeleteEndpoint(again) = %v; want not_found", err)
	}
	if _, err := e.svc.Endpoint(ctx, e.scope, a.ID); !payloom.IsCode(err, payloom.CodeNotFound) {
		t.Errorf("Endpoint(deleted) = %v; want not_found", err)
	}
	if _, _, err := e.svc.RotateSecret(ctx, e.scope, a.ID); !payloom.IsCode(err, payloom.CodeNotFound) {
		t.Errorf("RotateSecret(deleted) = %v; want not_found", err)
	}
}

// TestResend: a resend delivers the event again, now, with the same
// webhook-id, to every subscribed endpoint, and the attempts list shows
// both deliveries.
func TestResend(t *testing.T) {
	e := newEnv(t, webhook.Options{})
	rc := newReceiver(t, e.clock, nil)
	_, secret := e.endpoint(e.scope, rc.URL())
	ev := e.event(e.scope, payloom.EventRefundSucceeded)
	e.runOnce(e.disp)
	// An endpoint created after the event, and one not subscribed.
	late := newReceiver(t, e.clock, nil)
	_, lateSecret := e.endpoint(e.scope, late.URL(), string(payloom.EventRefundSucceeded))
	e.endpoint(e.scope, "http://127.0.0.1:9/never", string(payloom.EventPaymentCreated))

	ds, err := e.svc.Resend(ctx, e.scope, ev.ID)
	if err != nil || len(ds) != 2 {
		t.Fatalf("Resend = %d deliveries, %v; want 2", len(ds), err)
	}
	for _, d := range ds {
		if d.Status != payloom.WebhookDeliveryPending || d.NextAttemptAt.After(e.clock.Now()) {
			t.Errorf("resent delivery %+v; want pending and due now", d)
		}
	}
	e.runOnce(e.disp)
	reqs := rc.requests()
	if len(reqs) != 2 || reqs[0].id() != ev.ID || reqs[1].id() != ev.ID {
		t.Fatalf("receiver got %d requests; want the event twice", len(reqs))
	}
	verify(t, secret, reqs[1])
	if lr := late.requests(); len(lr) != 1 {
		t.Errorf("endpoint created after the event got %d requests on resend; want 1", len(lr))
	} else {
		verify(t, lateSecret, lr[0])
	}
	if as := e.attempts(e.scope, ev.ID); len(as) != 3 {
		t.Errorf("ListDeliveryAttempts = %d; want 3", len(as))
	}

	for _, o := range []payloom.Scope{e.merchant(), {MerchantID: e.scope.MerchantID, Livemode: true}} {
		if _, err := e.svc.Resend(ctx, o, ev.ID); !payloom.IsCode(err, payloom.CodeNotFound) {
			t.Errorf("Resend(other scope %+v) = %v; want not_found", o, err)
		}
		if _, err := e.svc.ListDeliveryAttempts(ctx, o, ev.ID); !payloom.IsCode(err, payloom.CodeNotFound) {
			t.Errorf("ListDeliveryAttempts(other scope %+v) = %v; want not_found", o, err)
		}
	}
	if _, err := e.svc.Resend(ctx, e.scope, payloom.NewID(payloom.PrefixEvent)); !payloom.IsCode(err, payloom.CodeNotFound) {
		t.Errorf("Resend(unknown event) = %v; want not_found", err)
	}
}
