package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/webhook"
)

func mustSchedule(t *testing.T, s string) []time.Duration {
	t.Helper()
	d, err := webhook.ParseSchedule(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDeliveryEndToEnd: the four events of a payment's life reach a real
// receiver, signed, with the event object as body; an endpoint that wants
// one type gets only it; other scopes' endpoints get nothing.
func TestDeliveryEndToEnd(t *testing.T) {
	e := newEnv(t, webhook.Options{})
	all := newReceiver(t, e.clock, nil)
	captured := newReceiver(t, e.clock, nil)
	otherMerchant := newReceiver(t, e.clock, nil)
	liveMode := newReceiver(t, e.clock, nil)
	_, secret := e.endpoint(e.scope, all.URL())
	_, capSecret := e.endpoint(e.scope, captured.URL(), string(payloom.EventPaymentCaptured))
	e.endpoint(e.merchant(), otherMerchant.URL())
	live := e.scope
	live.Livemode = true
	liveSvc := webhook.NewService(e.store, webhook.Options{Clock: e.clock.Now,
		AllowPrivate: func(bool) bool { return true }, AllowHTTP: func(bool) bool { return true }})
	if _, _, err := liveSvc.CreateEndpoint(ctx, live, &payloom.WebhookEndpointCreate{URL: liveMode.URL(), EnabledEvents: []string{"*"}}); err != nil {
		t.Fatal(err)
	}

	var evs []*payloom.Event
	for _, typ := range []payloom.EventType{payloom.EventPaymentCreated, payloom.EventPaymentAuthorized,
		payloom.EventPaymentCaptured, payloom.EventRefundSucceeded} {
		evs = append(evs, e.event(e.scope, typ))
	}
	if n := e.runOnce(e.disp); n != 5 {
		t.Errorf("RunOnce() tried %d deliveries; want 5 (4 + 1)", n)
	}

	got := all.requests()
	if len(got) != len(evs) {
		t.Fatalf("receiver got %d requests; want %d", len(got), len(evs))
	}
	byID := map[string]request{}
	for _, r := range got {
		byID[r.id()] = r
	}
	for _, ev := range evs {
		r, ok := byID[ev.ID]
		if !ok {
			t.Errorf("receiver never got %s (%s)", ev.ID, ev.Type)
			continue
		}
		verify(t, secret, r)
		want, _ := json.Marshal(ev)
		if string(r.body) != string(want) {
			t.Errorf("body of %s = %s; want the event object %s", ev.ID, r.body, want)
		}
		var obj map[string]any
		if err := json.Unmarshal(r.body, &obj); err != nil || obj["object"] != "event" || obj["type"] != string(ev.Type) ||
			obj["data"].(map[string]any)["object"] == nil {
			t.Errorf("body of %s = %s; want an event with type %s and data.object", ev.ID, r.body, ev.Type)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type of %s = %q; want application/json", ev.ID, ct)
		}
		if ts := r.header.Get("webhook-timestamp"); ts != strconv.FormatInt(r.at.Unix(), 10) {
			t.Errorf("webhook-timestamp of %s = %q; want the send time %d", ev.ID, ts, r.at.Unix())
		}
		as := e.attempts(e.scope, ev.ID)
		if len(as) != 2 && ev.Type == payloom.EventPaymentCaptured || len(as) != 1 && ev.Type != payloom.EventPaymentCaptured {
			t.Errorf("attempts of %s (%s) = %d; want one per subscribed endpoint", ev.ID, ev.Type, len(as))
		}
		for _, a := range as {
			if a.StatusCode != 200 || a.Error != "" || a.EventID != ev.ID {
				t.Errorf("attempt %+v; want status 200, no error", a)
			}
		}
		for _, d := range e.deliveries(e.scope, ev.ID) {
			if d.Status != payloom.WebhookDeliverySucceeded || d.Attempts != 1 || d.LastStatusCode != 200 || d.LeaseOwner != "" {
				t.Errorf("delivery %s: status %s, attempts %d, last %d, lease %q; want succeeded after 1 with 200 and no lease",
					d.ID, d.Status, d.Attempts, d.LastStatusCode, d.LeaseOwner)
			}
		}
	}
	if got := captured.requests(); len(got) != 1 || got[0].id() != evs[2].ID {
		t.Errorf("payment.captured-only receiver got %d requests; want exactly %s", len(got), evs[2].ID)
	} else {
		verify(t, capSecret, got[0])
	}
	if n := len(otherMerchant.requests()) + len(liveMode.requests()); n != 0 {
		t.Errorf("endpoints of other scopes got %d requests; want 0", n)
	}
	// Nothing is sent twice.
	if n := e.runOnce(e.disp); n != 0 || len(all.requests()) != len(evs) {
		t.Errorf("second RunOnce() tried %d, receiver has %d requests; want 0 and %d", n, len(all.requests()), len(evs))
	}
}

// TestFailsThreeTimesThenSucceeds: with the schedule 0s,50ms,50ms,50ms a
// receiver answering 500 three times gets the event on the fourth try.
func TestFailsThreeTimesThenSucceeds(t *testing.T) {
	e := newEnv(t, webhook.Options{Schedule: mustSchedule(t, "0s,50ms,50ms,50ms")})
	rc := newReceiver(t, e.clock, func(w http.ResponseWriter, _ *http.Request, seen int) {
		if seen < 3 {
			http.Error(w, "not yet", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	ep, secret := e.endpoint(e.scope, rc.URL())
	ev := e.event(e.scope, payloom.EventPaymentCaptured)
	for range 10 {
		e.runOnce(e.disp)
		e.clock.Advance(time.Second) // past any jittered 50ms
		if e.onlyDelivery(e.scope, ev.ID).Status != payloom.WebhookDeliveryPending {
			break
		}
	}
	d := e.onlyDelivery(e.scope, ev.ID)
	if d.Status != payloom.WebhookDeliverySucceeded || d.Attempts != 4 || d.LastStatusCode != 204 {
		t.Errorf("delivery: status %s after %d attempts (last %d); want succeeded after 4 (204)", d.Status, d.Attempts, d.LastStatusCode)
	}
	as := e.attempts(e.scope, ev.ID)
	if got, want := statusCodes(as), []int{500, 500, 500, 204}; !slices.Equal(got, want) {
		t.Errorf("attempt status codes = %v; want %v", got, want)
	}
	for i, a := range as {
		if (i < 3) != strings.Contains(a.Error, "500") || a.DeliveryID != d.ID || a.URL != ep.URL {
			t.Errorf("attempt %d: error %q, delivery %s, url %q; want HTTP 500 for the first three, %s, %q", i, a.Error, a.DeliveryID, a.URL, d.ID, ep.URL)
		}
	}
	reqs := rc.requests()
	if len(reqs) != 4 {
		t.Fatalf("receiver got %d requests; want 4", len(reqs))
	}
	for _, r := range reqs {
		if r.id() != ev.ID {
			t.Errorf("webhook-id = %q; want the event ID %q on every retry", r.id(), ev.ID)
		}
		verify(t, secret, r)
	}
	if got := e.getEndpoint(e.scope, ep.ID); got.FailingSince != nil || !got.Enabled {
		t.Errorf("endpoint after a success: FailingSince %v, Enabled %v; want nil, true", got.FailingSince, got.Enabled)
	}
}

// TestScheduleExhausted: a delivery still failing after the last entry's
// try fails for good, and the endpoint keeps its failure streak.
func TestScheduleExhausted(t *testing.T) {
	e := newEnv(t, webhook.Options{Schedule: mustSchedule(t, "0s,1s")})
	rc := newReceiver(t, e.clock, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusBadGateway) })
	ep, _ := e.endpoint(e.scope, rc.URL())
	ev := e.event(e.scope, payloom.EventPaymentFailed)
	for range 5 {
		e.runOnce(e.disp)
		e.clock.Advance(2 * time.Second)
	}
	d := e.onlyDelivery(e.scope, ev.ID)
	if d.Status != payloom.WebhookDeliveryFailed || d.Attempts != 2 || d.LastStatusCode != 502 {
		t.Errorf("delivery: %s after %d attempts (last %d); want failed after 2 (502)", d.Status, d.Attempts, d.LastStatusCode)
	}
	if n := len(rc.requests()); n != 2 {
		t.Errorf("receiver got %d requests; want 2", n)
	}
	got := e.getEndpoint(e.scope, ep.ID)
	if got.FailingSince == nil || !got.Enabled {
		t.Errorf("endpoint: FailingSince %v, Enabled %v; want set, still enabled", got.FailingSince, got.Enabled)
	}
}

// TestGoneDisablesEndpoint: 410 disables the endpoint at once, fails the
// delivery, records webhook_endpoint.disabled, and nothing more is sent.
func TestGoneDisablesEndpoint(t *testing.T) {
	e := newEnv(t, webhook.Options{})
	rc := newReceiver(t, e.clock, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusGone) })
	watcher := newReceiver(t, e.clock, nil)
	ep, _ := e.endpoint(e.scope, rc.URL())
	_, watchSecret := e.endpoint(e.scope, watcher.URL(), string(payloom.EventWebhookEndpointDisabled))
	ev := e.event(e.scope, payloom.EventPaymentCreated)
	e.runOnce(e.disp)

	d := e.onlyDeliveryTo(ev.ID, ep.ID)
	if d.Status != payloom.WebhookDeliveryFailed || d.Attempts != 1 || d.LastStatusCode != 410 {
		t.Errorf("delivery: %s after %d (last %d); want failed after 1 (410)", d.Status, d.Attempts, d.LastStatusCode)
	}
	got := e.getEndpoint(e.scope, ep.ID)
	if got.Enabled || !strings.Contains(got.DisabledReason, "410") {
		t.Errorf("endpoint: Enabled %v, DisabledReason %q; want disabled for 410", got.Enabled, got.DisabledReason)
	}
	disabled := e.disabledEvents()
	if len(disabled) != 1 || disabled[0].ObjectID != ep.ID {
		t.Fatalf("webhook_endpoint.disabled events = %d; want 1 about %s", len(disabled), ep.ID)
	}
	var obj map[string]any
	if err := json.Unmarshal(disabled[0].Data.Object, &obj); err != nil || obj["id"] != ep.ID || obj["enabled"] != false {
		t.Errorf("disabled event data = %s; want the disabled endpoint", disabled[0].Data.Object)
	}
	if strings.Contains(string(disabled[0].Data.Object), "whsec_") {
		t.Errorf("disabled event data %s contains a signing secret", disabled[0].Data.Object)
	}

	// The event itself is delivered to the endpoints that want it.
	e.runOnce(e.disp)
	if w := watcher.requests(); len(w) != 1 || w[0].id() != disabled[0].ID {
		t.Errorf("watcher got %d requests; want the webhook_endpoint.disabled event", len(w))
	} else {
		verify(t, watchSecret, w[0])
	}
	e.event(e.scope, payloom.EventPaymentCaptured)
	e.runOnce(e.disp)
	if n := len(rc.requests()); n != 1 {
		t.Errorf("disabled endpoint got %d requests in all; want 1", n)
	}
}

func (e *env) onlyDeliveryTo(eventID, endpointID string) *payloom.WebhookDelivery {
	e.t.Helper()
	for _, d := range e.deliveries(e.scope, eventID) {
		if d.EndpointID == endpointID {
			return d
		}
	}
	e.t.Fatalf("no delivery of %s to %s", eventID, endpointID)
	return nil
}

func (e *env) disabledEvents() []*payloom.Event {
	e.t.Helper()
	typ := payloom.EventWebhookEndpointDisabled
	var evs []*payloom.Event
	err := e.store.View(ctx, func(tx payloom.Tx) error {
		var err error
		evs, _, err = tx.ListEvents(ctx, e.scope, payloom.EventFilter{Type: &typ})
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}

// TestRetryAfterHonoured: on 429 and 503, Retry-After (seconds or an HTTP
// date) is a floor for the next try; on other codes it is ignored.
func TestRetryAfterHonoured(t *testing.T) {
	tests := []struct {
		name       string
		code       int
		retryAfter func(now time.Time) string
		min, max   time.Duration
	}{
		{"429 seconds", 429, func(time.Time) string { return "120" }, 120 * time.Second, 120 * time.Second},
		{"503 date", 503, func(now time.Time) string { return now.Add(time.Hour).Format(http.TimeFormat) }, time.Hour - time.Second, time.Hour},
		{"429 shorter than the schedule", 429, func(time.Time) string { return "1" }, 9 * time.Second, 11 * time.Second},
		{"500 ignores it", 500, func(time.Time) string { return "3600" }, 9 * time.Second, 11 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, webhook.Options{Schedule: mustSchedule(t, "0s,10s")})
			rc := newReceiver(t, e.clock, func(w http.ResponseWriter, _ *http.Request, _ int) {
				w.Header().Set("Retry-After", tt.retryAfter(e.clock.Now()))
				w.WriteHeader(tt.code)
			})
			e.endpoint(e.scope, rc.URL())
			ev := e.event(e.scope, payloom.EventPaymentCreated)
			e.runOnce(e.disp)
			sent := e.clock.Now()
			d := e.onlyDelivery(e.scope, ev.ID)
			if d.Status != payloom.WebhookDeliveryPending || d.Attempts != 1 || d.LastStatusCode != tt.code {
				t.Fatalf("delivery: %s after %d (last %d); want pending after 1 (%d)", d.Status, d.Attempts, d.LastStatusCode, tt.code)
			}
			if wait := d.NextAttemptAt.Sub(sent); wait < tt.min || wait > tt.max {
				t.Errorf("next attempt %v after the failure; want between %v and %v", wait, tt.min, tt.max)
			}
			// Not tried again before then.
			e.clock.Advance(tt.min - time.Second)
			if n := e.runOnce(e.disp); n != 0 {
				t.Errorf("RunOnce() before the Retry-After delay tried %d; want 0", n)
			}
		})
	}
}

// TestDisabledAfterThreeDaysOfFailures: an endpoint whose every delivery
// failed for three days is disabled, with a webhook_endpoint.disabled
// event; a success in between resets the streak.
func TestDisabledAfterThreeDaysOfFailures(t *testing.T) {
	e := newEnv(t, webhook.Options{Schedule: mustSchedule(t, "0s,24h,24h,24h,24h,24h")})
	var mu sync.Mutex
	code := http.StatusInternalServerError
	rc := newReceiver(t, e.clock, func(w http.ResponseWriter, _ *http.Request, _ int) {
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(code)
	})
	ep, _ := e.endpoint(e.scope, rc.URL())
	ev := e.event(e.scope, payloom.EventPaymentCreated)
	e.runOnce(e.disp)
	first := e.getEndpoint(e.scope, ep.ID).FailingSince
	if first == nil {
		t.Fatalf("FailingSince after a failure = nil; want set")
	}
	// Days 1 and 2 (jitter is at most 2.4h of 24h).
	for range 2 {
		e.clock.Advance(27 * time.Hour)
		if n := e.runOnce(e.disp); n != 1 {
			t.Fatalf("RunOnce() = %d; want the retry", n)
		}
		if got := e.getEndpoint(e.scope, ep.ID); !got.Enabled || !got.FailingSince.Equal(*first) {
			t.Fatalf("endpoint after %v of failures: Enabled %v, FailingSince %v; want enabled since %v",
				e.clock.Now().Sub(*first), got.Enabled, got.FailingSince, first)
		}
	}
	e.clock.Advance(27 * time.Hour) // 81h since the first failure
	e.runOnce(e.disp)
	got := e.getEndpoint(e.scope, ep.ID)
	if got.Enabled || !strings.Contains(got.DisabledReason, "days") {
		t.Errorf("endpoint after 81h of failures: Enabled %v, DisabledReason %q; want disabled", got.Enabled, got.DisabledReason)
	}
	if d := e.onlyDelivery(e.scope, ev.ID); d.Status != payloom.WebhookDeliveryFailed || d.Attempts != 4 {
		t.Errorf("delivery: %s after %d; want failed after 4", d.Status, d.Attempts)
	}
	if evs := e.disabledEvents(); len(evs) != 1 || evs[0].ObjectID != ep.ID {
		t.Errorf("webhook_endpoint.disabled events = %d; want 1 about %s", len(evs), ep.ID)
	}

	// Re-enabled, a success clears the streak.
	enabled := true
	if _, err := e.svc.UpdateEndpoint(ctx, e.scope, ep.ID, &payloom.WebhookEndpointUpdate{Enabled: &enabled}); err != nil {
		t.Fatal(err)
	}
	if got := e.getEndpoint(e.scope, ep.ID); !got.Enabled || got.DisabledReason != "" || got.FailingSince != nil {
		t.Errorf("re-enabled endpoint: Enabled %v, reason %q, FailingSince %v; want enabled, cleared", got.Enabled, got.DisabledReason, got.FailingSince)
	}
	e.event(e.scope, payloom.EventPaymentCaptured)
	e.runOnce(e.disp)
	if got := e.getEndpoint(e.scope, ep.ID).FailingSince; got == nil {
		t.Fatalf("FailingSince after a new failure = nil; want set")
	}
	mu.Lock()
	code = http.StatusOK
	mu.Unlock()
	e.event(e.scope, payloom.EventRefundSucceeded)
	e.runOnce(e.disp)
	if got := e.getEndpoint(e.scope, ep.ID).FailingSince; got != nil {
		t.Errorf("FailingSince after a success = %v; want nil", got)
	}
}

// TestTwoDispatchersNeverSendOneDeliveryTwice: two dispatchers on two
// handles of one database file (as two processes would be) deliver every
// event exactly once, never concurrently.
func TestTwoDispatchersNeverSendOneDeliveryTwice(t *testing.T) {
	const events = 40
	e := newEnv(t, webhook.Options{})
	path := e.store.(interface{ Path() string }).Path()
	other := webhook.NewDispatcher(openStore(t, path), webhook.Options{Clock: e.clock.Now, Workers: 3, BatchSize: 7})
	mine := webhook.NewDispatcher(e.store, webhook.Options{Clock: e.clock.Now, Workers: 3, BatchSize: 7})
	rc := newReceiver(t, e.clock, nil)
	_, secret := e.endpoint(e.scope, rc.URL())
	for range events {
		e.event(e.scope, payloom.EventPaymentCreated)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, d := range []*webhook.Dispatcher{mine, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100 && len(rc.requests()) < events; i++ {
				if _, err := d.RunOnce(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("RunOnce = %v", err)
	}
	reqs := rc.requests()
	count := map[string]int{}
	for _, r := range reqs {
		count[r.id()]++
		verify(t, secret, r)
	}
	if len(count) != events {
		t.Errorf("receiver got %d distinct events; want %d", len(count), events)
	}
	for id, n := range count {
		if n != 1 {
			t.Errorf("event %s delivered %d times; want once", id, n)
		}
	}
	if len(rc.overlaps) != 0 {
		t.Errorf("events received while the same event was in flight: %v", rc.overlaps)
	}
}

// TestLeaseHeldDuringDelivery: while one dispatcher's request is in
// flight, another dispatcher's pass does not send the same delivery.
func TestLeaseHeldDuringDelivery(t *testing.T) {
	e := newEnv(t, webhook.Options{})
	other := webhook.NewDispatcher(openStore(t, e.store.(interface{ Path() string }).Path()), webhook.Options{Clock: e.clock.Now})
	var nested int
	var nestedErr error
	rc := newReceiver(t, e.clock, func(w http.ResponseWriter, _ *http.Request, seen int) {
		if seen == 0 {
			// The first dispatcher holds the delivery right now.
			nested, nestedErr = other.RunOnce(ctx)
		}
		w.WriteHeader(http.StatusOK)
	})
	_, secret := e.endpoint(e.scope, rc.URL())
	ev := e.event(e.scope, payloom.EventPaymentCaptured)
	if n := e.runOnce(e.disp); n != 1 {
		t.Fatalf("RunOnce() = %d; want 1", n)
	}
	if nested != 0 || nestedErr != nil {
		t.Errorf("other dispatcher's RunOnce() during the delivery = %d, %v; want 0, nil", nested, nestedErr)
	}
	reqs := rc.requests()
	if len(reqs) != 1 || len(rc.overlaps) != 0 {
		t.Fatalf("receiver got %d requests (%d overlapping); want 1", len(reqs), len(rc.overlaps))
	}
	verify(t, secret, reqs[0])
	if d := e.onlyDelivery(e.scope, ev.ID); d.Status != payloom.WebhookDeliverySucceeded || d.Attempts != 1 {
		t.Errorf("delivery: %s after %d; want succeeded after 1", d.Status, d.Attempts)
	}
}

// TestExpiredLeaseIsTakenOver: a dispatcher that claimed a delivery and
// died holds it only until its lease ends; then another sends it.
func TestExpiredLeaseIsTakenOver(t *testing.T) {
	e := newEnv(t, webhook.Options{Schedule: mustSchedule(t, "10s"), Lease: time.Minute})
	rc := newReceiver(t, e.clock, nil)
	_, secret := e.endpoint(e.scope, rc.URL())
	ev := e.event(e.scope, payloom.EventPaymentAuthorized)
	if n := e.runOnce(e.disp); n != 0 { // fans out; not due for 10s
		t.Fatalf("RunOnce() = %d; want 0 before the first delay", n)
	}
	e.clock.Advance(12 * time.Second)
	// The dead node's claim.
	var claimed []*payloom.WebhookDelivery
	err := e.store.Update(ctx, func(tx payloom.Tx) error {
		var err error
		claimed, err = tx.ClaimWebhookDeliveries(ctx, e.clock.Now(), "dead-node", e.clock.Now().Add(time.Minute), 10)
		return err
	})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("ClaimWebhookDeliveries = %d, %v; want the delivery", len(claimed), err)
	}
	if n := e.runOnce(e.disp); n != 0 || len(rc.requests()) != 0 {
		t.Fatalf("RunOnce() during the dead node's lease tried %d (receiver got %d); want 0", n, len(rc.requests()))
	}
	e.clock.Advance(time.Minute + time.Second)
	if n := e.runOnce(e.disp); n != 1 {
		t.Fatalf("RunOnce() after the lease expired tried %d; want 1", n)
	}
	reqs := rc.requests()
	if len(reqs) != 1 || reqs[0].id() != ev.ID {
		t.Fatalf("receiver got %d requests; want the event", len(reqs))
	}
	verify(t, secret, reqs[0])
	if d := e.onlyDelivery(e.scope, ev.ID); d.Status != payloom.WebhookDeliverySucceeded {
		t.Errorf("delivery status = %s; want succeeded", d.Status)
	}
}

// TestShutdownMidRequestReleasesTheDelivery: a dispatcher stopped while its
// request is in flight releases the delivery without counting an attempt,
// and another dispatcher sends it at once.
func TestShutdownMidRequestReleasesTheDelivery(t *testing.T) {
	e := newEnv(t, webhook.Options{})
	arrived := make(chan struct{})
	var once sync.Once
	rc := newReceiver(t, e.clock, func(w http.ResponseWriter, r *http.Request, seen int) {
		if seen == 0 {
			once.Do(func() { close(arrived) })
			<-r.Context().Done() // hang until the sender gives up
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	_, secret := e.endpoint(e.scope, rc.URL())
	ev := e.event(e.scope, payloom.EventRefundSucceeded)

	stopCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := e.disp.RunOnce(stopCtx)
		done <- err
	}()
	<-arrived
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("RunOnce(stopped) = %v", err)
	}
	d := e.onlyDelivery(e.scope, ev.ID)
	if d.Status != payloom.WebhookDeliveryPending || d.Attempts != 0 || d.LeaseOwner != "" || !d.LeaseUntil.IsZero() {
		t.Fatalf("delivery after the stop: %s, %d attempts, lease %q until %v; want pending, 0, released",
			d.Status, d.Attempts, d.LeaseOwner, d.LeaseUntil)
	}
	other := webhook.NewDispatcher(e.store, webhook.Options{Clock: e.clock.Now})
	if n := e.runOnce(other); n != 1 {
		t.Fatalf("other RunOnce() = %d; want 1", n)
	}
	reqs := rc.requests()
	if len(reqs) != 2 {
		t.Fatalf("receiver got %d requests; want the abandoned one and the retry", len(reqs))
	}
	verify(t, secret, reqs[1])
	if got := statusCodes(e.attempts(e.scope, ev.ID)); !slices.Equal(got, []int{200}) {
		t.Errorf("attempts = %v; want [200] (the abandoned request is not an attempt)", got)
	}
}

// TestRolledBackEventIsNeverSent: an event whose transaction failed after
// CreateEvent does not exist, so nothing is sent for it.
func TestRolledBackEventIsNeverSent(t *testing.T) {
	e := newEnv(t, webhook.Options{})
	rc := newReceiver(t, e.clock, nil)
	e.endpoint(e.scope, rc.URL())
	ghost, err := payloom.NewEvent(e.scope, payloom.EventPaymentCaptured, "pay_ghost", map[string]string{"id": "pay_ghost"}, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	errBoom := errors.New("processor said no after the event was written")
	err = e.store.Update(ctx, func(tx payloom.Tx) error {
		if err := tx.CreateEvent(ctx, ghost); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Update = %v; want the failure", err)
	}
	real := e.event(e.scope, payloom.EventPaymentCaptured)
	for range 3 {
		e.runOnce(e.disp)
	}
	reqs := rc.requests()
	if len(reqs) != 1 || reqs[0].id() != real.ID {
		ids := []string{}
		for _, r := range reqs {
			ids = append(ids, r.id())
		}
		t.Errorf("receiver got %v; want only the committed %s, never the rolled-back %s", ids, real.ID, ghost.ID)
	}
	if _, err := e.svc.ListDeliveryAttempts(ctx, e.scope, ghost.ID); !payloom.IsCode(err, payloom.CodeNotFound) {
		t.Errorf("ListDeliveryAttempts(rolled-back event) = %v; want not_found", err)
	}
}

// TestDeletedOrDisabledEndpointGetsNothing: deliveries pending for an
// endpoint that was deleted or disabled fail without a request.
func TestDeletedOrDisabledEndpointGetsNothing(t *testing.T) {
	e := newEnv(t, webhook.Options{Schedule: mustSchedule(t, "10s")})
	deleted := newReceiver(t, e.clock, nil)
	disabled := newReceiver(t, e.clock, nil)
	del, _ := e.endpoint(e.scope, deleted.URL())
	dis, _ := e.endpoint(e.scope, disabled.URL())
	ev := e.event(e.scope, payloom.EventPaymentCreated)
	e.runOnce(e.disp) // fan out
	if err := e.svc.DeleteEndpoint(ctx, e.scope, del.ID); err != nil {
		t.Fatal(err)
	}
	off := false
	if _, err := e.svc.UpdateEndpoint(ctx, e.scope, dis.ID, &payloom.WebhookEndpointUpdate{Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(15 * time.Second)
	e.runOnce(e.disp)
	if n := len(deleted.requests()) + len(disabled.requests()); n != 0 {
		t.Errorf("deleted and disabled endpoints got %d requests; want 0", n)
	}
	for _, d := range e.deliveries(e.scope, ev.ID) {
		if d.Status != payloom.WebhookDeliveryFailed || d.Attempts != 0 || d.LastError == "" {
			t.Errorf("delivery to %s: %s, %d attempts, error %q; want failed untried with a reason", d.EndpointID, d.Status, d.Attempts, d.LastError)
		}
	}
}

// TestEndpointGetsOnlyLaterEvents: an endpoint does not receive events
// that happened before it was created.
func TestEndpointGetsOnlyLaterEvents(t *testing.T) {
	e := newEnv(t, webhook.Options{})
	rc := newReceiver(t, e.clock, nil)
	before := e.event(e.scope, payloom.EventPaymentCreated)
	e.clock.Advance(time.Second)
	e.endpoint(e.scope, rc.URL())
	after := e.event(e.scope, payloom.EventPaymentCaptured)
	e.runOnce(e.disp)
	if reqs := rc.requests(); len(reqs) != 1 || reqs[0].id() != after.ID {
		t.Errorf("receiver got %d requests; want only %s (not %s, older than the endpoint)", len(reqs), after.ID, before.ID)
	}
}

// TestRotationSignsWithBothSecrets: after a rotation both secrets verify
// a delivery until the overlap ends; then only the new one does.
func TestRotationSignsWithBothSecrets(t *testing.T) {
	e := newEnv(t, webhook.Options{})
	rc := newReceiver(t, e.clock, nil)
	ep, oldSecret := e.endpoint(e.scope, rc.URL())
	rotated, newSecret, err := e.svc.RotateSecret(ctx, e.scope, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if newSecret.Reveal() == oldSecret || !strings.HasPrefix(newSecret.Reveal(), "whsec_") {
		t.Fatalf("RotateSecret returned %q-prefixed secret equal to the old: %v", newSecret.Reveal()[:6], newSecret.Reveal() == oldSecret)
	}
	if want := e.clock.Now().Add(24 * time.Hour); rotated.PreviousSecretExpiresAt == nil || !rotated.PreviousSecretExpiresAt.Equal(want) {
		t.Errorf("PreviousSecretExpiresAt = %v; want %v", rotated.PreviousSecretExpiresAt, want)
	}
	e.event(e.scope, payloom.EventPaymentCreated)
	e.runOnce(e.disp)
	e.clock.Advance(24*time.Hour + time.Second)
	e.event(e.scope, payloom.EventPaymentCaptured)
	e.runOnce(e.disp)
	reqs := rc.requests()
	if len(reqs) != 2 {
		t.Fatalf("receiver got %d requests; want 2", len(reqs))
	}
	during, after := reqs[0], reqs[1]
	if n := len(strings.Fields(during.header.Get("webhook-signature"))); n != 2 {
		t.Errorf("signatures during the overlap = %d; want 2", n)
	}
	verify(t, oldSecret, during)
	verify(t, newSecret.Reveal(), during)
	verify(t, newSecret.Reveal(), after)
	if err := webhook.VerifyAt(oldSecret, after.header, after.body, 0, after.at); !errors.Is(err, webhook.ErrNoValidSignature) {
		t.Errorf("old secret after the overlap: VerifyAt = %v; want ErrNoValidSignature", err)
	}
}

// TestRunDeliversUntilStopped: Run, the production loop, delivers what is
// committed while it runs, and returns when its context ends.
func TestRunDeliversUntilStopped(t *testing.T) {
	e := newEnv(t, webhook.Options{PollInterval: 10 * time.Millisecond})
	got := make(chan string, 10)
	rc := newReceiver(t, e.clock, func(w http.ResponseWriter, r *http.Request, _ int) {
		got <- r.Header.Get("webhook-id")
	})
	_, secret := e.endpoint(e.scope, rc.URL())
	runCtx, stop := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() {
		e.disp.Run(runCtx)
		close(stopped)
	}()
	for range 3 {
		ev := e.event(e.scope, payloom.EventPaymentCreated)
		e.disp.Notify()
		select {
		case id := <-got:
			if id != ev.ID {
				t.Errorf("Run delivered %s; want %s", id, ev.ID)
			}
		case <-time.After(time.Minute): // a deadline against a hang, not a timing assertion
			t.Fatalf("Run did not deliver %s", ev.ID)
		}
	}
	stop()
	<-stopped
	for _, r := range rc.requests() {
		verify(t, secret, r)
	}
}
