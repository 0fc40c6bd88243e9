package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/payloom/payloom"
)

const (
	// maxResponseRead is how much of a receiver's answer is read (and
	// discarded) so that the connection can be reused.
	maxResponseRead = 64 << 10
	// maxErrorLength bounds WebhookAttempt.Error and LastError.
	maxErrorLength = 500
	// recordTimeout bounds the store writes that record an attempt, which
	// run even while the dispatcher shuts down: a request that was sent
	// must not be forgotten.
	recordTimeout = 10 * time.Second
	userAgent     = "Payloom-Webhooks/1"
)

// Dispatcher delivers events to webhook endpoints. Any number of
// dispatchers may run on one store (one per node): fan-out takes each event
// once, and deliveries are claimed with leases.
type Dispatcher struct {
	store payloom.Store
	opts  Options
	// clients holds the HTTP client of each mode ([1] is live).
	clients [2]*http.Client
	wake    chan struct{}
}

// NewDispatcher returns a dispatcher on store.
func NewDispatcher(store payloom.Store, opts Options) *Dispatcher {
	opts.defaults()
	d := &Dispatcher{store: store, opts: opts, wake: make(chan struct{}, 1)}
	for i, live := range []bool{false, true} {
		tr := &http.Transport{
			// No proxy: the address guard must see the receiver's
			// address, not a proxy's.
			Proxy:                 nil,
			DialContext:           newDialer(!opts.AllowPrivate(live)).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		}
		d.clients[i] = &http.Client{
			Transport: tr,
			Timeout:   opts.Timeout,
			// A redirect is a failure: the merchant should update the
			// URL, and a redirect must not lead the request elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return d
}

func (d *Dispatcher) client(livemode bool) *http.Client {
	if livemode {
		return d.clients[1]
	}
	return d.clients[0]
}

// Notify makes a running Run look for work now rather than at its next
// poll (after a commit that wrote events, say).
func (d *Dispatcher) Notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run fans out events and delivers due deliveries, with at most
// Options.Workers requests in flight, until ctx is done. Requests in flight
// then are abandoned and their leases released, so another node (or this
// one after a restart) sends them again.
func (d *Dispatcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, d.opts.Workers)
	freed := make(chan struct{}, 1)
	tick := time.NewTicker(d.opts.PollInterval)
	defer tick.Stop()
	for {
		if _, err := d.fanOut(ctx); err != nil && ctx.Err() == nil {
			d.opts.Logger.ErrorContext(ctx, "webhook fan-out failed", "err", err)
		}
		if free := cap(slots) - len(slots); free > 0 && ctx.Err() == nil {
			ds, err := d.claim(ctx, free)
			if err != nil && ctx.Err() == nil {
				d.opts.Logger.ErrorContext(ctx, "webhook claim failed", "err", err)
			}
			for _, dl := range ds {
				slots <- struct{}{}
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := d.deliver(ctx, dl); err != nil && ctx.Err() == nil {
						d.opts.Logger.ErrorContext(ctx, "webhook delivery failed", "delivery", dl.ID, "err", err)
					}
					<-slots
					select {
					case freed <- struct{}{}:
					default:
					}
				}()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-freed:
		case <-d.wake:
		}
	}
}

// RunOnce fans out every new event, then claims the deliveries due now
// (at most Options.BatchSize) and tries each once, Options.Workers at a
// time. It returns how many it tried. A receiver's failure is not an error;
// a store failure is.
func (d *Dispatcher) RunOnce(ctx context.Context) (int, error) {
	if _, err := d.fanOut(ctx); err != nil {
		return 0, err
	}
	ds, err := d.claim(ctx, d.opts.BatchSize)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(ds))
	slots := make(chan struct{}, d.opts.Workers)
	for i, dl := range ds {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.deliver(ctx, dl)
			<-slots
		}()
	}
	wg.Wait()
	return len(ds), errors.Join(errs...)
}

// fanOut creates the deliveries of every event not yet fanned out, one
// batch per transaction, and returns how many events it took.
func (d *Dispatcher) fanOut(ctx context.Context) (int, error) {
	total := 0
	for {
		n := 0
		now := d.opts.Clock().UTC()
		err := d.store.Update(ctx, func(tx payloom.Tx) error {
			evs, err := tx.ListUndispatchedEvents(ctx, d.opts.BatchSize)
			if err != nil {
				return err
			}
			n = len(evs)
			endpoints := map[payloom.Scope][]*payloom.WebhookEndpoint{}
			for _, ev := range evs {
				scope := payloom.Scope{MerchantID: ev.MerchantID, Livemode: ev.Livemode}
				eps, ok := endpoints[scope]
				if !ok {
					if eps, err = tx.ListEnabledWebhookEndpoints(ctx, scope); err != nil {
						return err
					}
					endpoints[scope] = eps
				}
				for _, ep := range eps {
					// An endpoint receives the events that happened
					// after it was created, not a backlog.
					if !ep.Subscribed(ev.Type) || ep.CreatedAt.After(ev.CreatedAt) {
						continue
					}
					if err := tx.CreateWebhookDelivery(ctx, newDelivery(ev, ep, now, now.Add(jitter(d.opts.Schedule[0])))); err != nil {
						return err
					}
				}
				if err := tx.MarkEventDispatched(ctx, ev.ID, now); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("webhook: fan out: %w", err)
		}
		total += n
		if n < d.opts.BatchSize {
			return total, nil
		}
	}
}

func newDelivery(ev *payloom.Event, ep *payloom.WebhookEndpoint, now, due time.Time) *payloom.WebhookDelivery {
	return &payloom.WebhookDelivery{
		ID: payloom.NewID(payloom.PrefixWebhookDelivery), Object: "webhook_delivery", EventID: ev.ID,
		EndpointID: ep.ID, MerchantID: ev.MerchantID, Livemode: ev.Livemode, Status: payloom.WebhookDeliveryPending,
		NextAttemptAt: due, CreatedAt: now, UpdatedAt: now,
	}
}

// claim leases up to n due deliveries. The lease covers the requests
// queued behind the worker pool as well as the one in flight.
func (d *Dispatcher) claim(ctx context.Context, n int) ([]*payloom.WebhookDelivery, error) {
	now := d.opts.Clock().UTC()
	lease := d.opts.Lease + time.Duration((n-1)/d.opts.Workers)*d.opts.Timeout
	var ds []*payloom.WebhookDelivery
	err := d.store.Update(ctx, func(tx payloom.Tx) error {
		var err error
		ds, err = tx.ClaimWebhookDeliveries(ctx, now, d.opts.Owner, now.Add(lease), n)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("webhook: claim deliveries: %w", err)
	}
	return ds, nil
}

// result is what one request came to.
type result struct {
	at         time.Time
	url        string
	statusCode int
	duration   time.Duration
	err        string
	retryAfter time.Duration
}

func (r *result) ok() bool { return r.statusCode >= 200 && r.statusCode <= 299 }

// deliver sends one claimed delivery and records the outcome.
func (d *Dispatcher) deliver(ctx context.Context, dl *payloom.WebhookDelivery) error {
	scope := dl.Scope()
	var ev *payloom.Event
	var ep *payloom.WebhookEndpoint
	err := d.store.View(ctx, func(tx payloom.Tx) error {
		var err error
		if ev, err = tx.GetEvent(ctx, scope, dl.EventID); err != nil {
			return err
		}
		ep, err = tx.GetWebhookEndpoint(ctx, scope, dl.EndpointID)
		if payloom.IsCode(err, payloom.CodeNotFound) {
			ep, err = nil, nil
		}
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return d.release(ctx, dl)
		}
		// The lease expires and the delivery is tried again.
		return fmt.Errorf("webhook: load delivery %s: %w", dl.ID, err)
	}
	switch {
	case ep == nil:
		return d.abandon(ctx, dl, "the endpoint was deleted")
	case !ep.Enabled:
		return d.abandon(ctx, dl, "the endpoint is disabled")
	}

	res, err := d.send(ctx, ev, ep)
	if err != nil {
		// Nothing was sent: a shutdown, or an unsignable secret.
		if ctx.Err() != nil {
			return d.release(ctx, dl)
		}
		return d.abandon(ctx, dl, err.Error())
	}
	return d.record(ctx, dl, res)
}

// send makes one signed POST of the event to the endpoint. Its error means
// that the request was not (completely) made because of ctx or the
// secret; the receiver's failures are in the result.
func (d *Dispatcher) send(ctx context.Context, ev *payloom.Event, ep *payloom.WebhookEndpoint) (*result, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	now := d.opts.Clock()
	secrets := []string{ep.Secret.Reveal()}
	if ep.PreviousSecret != "" && ep.PreviousSecretExpiresAt != nil && now.Before(*ep.PreviousSecretExpiresAt) {
		secrets = append(secrets, ep.PreviousSecret.Reveal())
	}
	sig, err := signatureHeader(secrets, ev.ID, now, body)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	res := &result{at: now, url: ep.URL}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		// A URL stored before a stricter validation: a failed attempt.
		res.err = "invalid URL"
		return res, nil
	}
	if req.URL.Scheme != "https" && !d.opts.AllowHTTP(ep.Livemode) {
		res.err = "the URL must use https in live mode"
		return res, nil
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(HeaderID, ev.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)

	start := time.Now()
	resp, err := d.client(ep.Livemode).Do(req)
	if err != nil {
		res.duration = time.Since(start)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		res.err = describe(err, d.opts.Timeout)
		return res, nil
	}
	_, rerr := io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseRead))
	resp.Body.Close()
	res.duration = time.Since(start)
	res.statusCode = resp.StatusCode
	if !res.ok() {
		res.err = "HTTP " + resp.Status
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			res.retryAfter = retryAfter(resp.Header, d.opts.Clock())
		}
	} else if rerr != nil && ctx.Err() == nil {
		// The status arrived: the receiver accepted the event even if
		// its body was cut short.
		d.opts.Logger.WarnContext(ctx, "webhook response body unreadable", "endpoint", ep.ID, "err", rerr)
	}
	return res, nil
}

// describe turns a request error into the attempt's error text, without
// the URL (which may carry a token) that url.Error repeats.
func describe(err error, timeout time.Duration) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	switch {
	case errors.Is(err, ErrForbiddenAddress):
		return truncate(err.Error())
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("timed out after %s", timeout)
	}
	return truncate(err.Error())
}

func truncate(s string) string {
	if len(s) > maxErrorLength {
		return s[:maxErrorLength]
	}
	return s
}

// record stores the attempt and moves the delivery on: succeeded, due
// again later, or failed; and keeps the endpoint's failure streak,
// disabling it on 410 Gone or after Options.DisableAfter of failures.
func (d *Dispatcher) record(ctx context.Context, dl *payloom.WebhookDelivery, res *result) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	scope := dl.Scope()
	attempt := &payloom.WebhookAttempt{
		ID: payloom.NewID(payloom.PrefixWebhookAttempt), Object: "webhook_attempt", DeliveryID: dl.ID,
		EventID: dl.EventID, EndpointID: dl.EndpointID, MerchantID: dl.MerchantID, Livemode: dl.Livemode,
		URL: res.url, At: res.at.UTC(), StatusCode: res.statusCode, DurationMS: res.duration.Milliseconds(),
		Error: res.err,
	}
	var disabled *payloom.WebhookEndpoint
	err := d.store.Update(ctx, func(tx payloom.Tx) error {
		disabled = nil
		now := d.opts.Clock().UTC()
		next := *dl
		next.Attempts++
		next.LastStatusCode, next.LastError = res.statusCode, res.err
		next.LeaseOwner, next.LeaseUntil = "", time.Time{}
		next.UpdatedAt = now

		ep, err := tx.GetWebhookEndpoint(ctx, scope, dl.EndpointID)
		switch {
		case payloom.IsCode(err, payloom.CodeNotFound):
			ep = nil
		case err != nil:
			return err
		}
		epChanged := false
		if res.ok() {
			next.Status = payloom.WebhookDeliverySucceeded
			if ep != nil && ep.FailingSince != nil {
				ep.FailingSince, epChanged = nil, true
			}
		} else {
			reason := ""
			if ep != nil {
				if ep.FailingSince == nil {
					ep.FailingSince, epChanged = &now, true
				}
				switch {
				case res.statusCode == http.StatusGone:
					reason = "the endpoint answered 410 Gone"
				case now.Sub(*ep.FailingSince) >= d.opts.DisableAfter:
					reason = fmt.Sprintf("every delivery to the endpoint failed for %s", roundDuration(now.Sub(*ep.FailingSince)))
				}
				if reason != "" && ep.Enabled {
					ep.Enabled, ep.DisabledReason, epChanged = false, reason, true
					disabled = ep
				}
			}
			switch {
			case ep == nil || !ep.Enabled:
				next.Status = payloom.WebhookDeliveryFailed
			case next.Attempts >= len(d.opts.Schedule):
				next.Status = payloom.WebhookDeliveryFailed
			default:
				delay := jitter(d.opts.Schedule[next.Attempts])
				// Retry-After is a floor: the schedule may wait longer.
				delay = max(delay, res.retryAfter)
				next.NextAttemptAt = now.Add(delay)
			}
		}
		// The delivery first: a lost lease (CodeConflict) must change
		// nothing but the attempt log.
		if err := tx.UpdateWebhookDelivery(ctx, &next); err != nil {
			return err
		}
		if err := tx.CreateWebhookAttempt(ctx, attempt); err != nil {
			return err
		}
		if epChanged {
			ep.UpdatedAt = now
			if err := tx.UpdateWebhookEndpoint(ctx, ep); err != nil {
				return err
			}
		}
		if disabled != nil {
			ev, err := payloom.NewEvent(ep.Scope(), payloom.EventWebhookEndpointDisabled, ep.ID, ep, now)
			if err != nil {
				return err
			}
			return tx.CreateEvent(ctx, ev)
		}
		return nil
	})
	if payloom.IsCode(err, payloom.CodeConflict) {
		// Our lease expired and another dispatcher took the delivery
		// over; the request was still made, so log it.
		d.opts.Logger.WarnContext(ctx, "webhook lease lost during delivery", "delivery", dl.ID)
		err = d.store.Update(ctx, func(tx payloom.Tx) error { return tx.CreateWebhookAttempt(ctx, attempt) })
	}
	if err != nil {
		return fmt.Errorf("webhook: record attempt of %s: %w", dl.ID, err)
	}
	if disabled != nil {
		d.opts.Logger.WarnContext(ctx, "webhook endpoint disabled", "endpoint", disabled.ID, "reason", disabled.DisabledReason)
	}
	return nil
}

// abandon fails a delivery that cannot be sent, without an attempt.
func (d *Dispatcher) abandon(ctx context.Context, dl *payloom.WebhookDelivery, why string) error {
	return d.finishWithout(ctx, dl, func(next *payloom.WebhookDelivery) {
		next.Status = payloom.WebhookDeliveryFailed
		next.LastError = truncate(why)
	})
}

// release gives a claimed delivery back, untried, for another dispatcher
// to take at once.
func (d *Dispatcher) release(ctx context.Context, dl *payloom.WebhookDelivery) error {
	return d.finishWithout(ctx, dl, func(*payloom.WebhookDelivery) {})
}

func (d *Dispatcher) finishWithout(ctx context.Context, dl *payloom.WebhookDelivery, change func(*payloom.WebhookDelivery)) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	next := *dl
	next.LeaseOwner, next.LeaseUntil = "", time.Time{}
	next.UpdatedAt = d.opts.Clock().UTC()
	change(&next)
	err := d.store.Update(ctx, func(tx payloom.Tx) error {
		n := next // a retried fn starts from the same values
		return tx.UpdateWebhookDelivery(ctx, &n)
	})
	if payloom.IsCode(err, payloom.CodeConflict) {
		return nil // another dispatcher holds it now
	}
	if err != nil {
		return fmt.Errorf("webhook: update delivery %s: %w", dl.ID, err)
	}
	return nil
}

func roundDuration(d time.Duration) string {
	if d >= 24*time.Hour {
		return fmt.Sprintf("%.1f days", d.Hours()/24)
	}
	return d.Round(time.Second).String()
}
