package webhook

import (
	"context"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/payloom/payloom"
)

// maxDescription bounds an endpoint's description, in characters.
const maxDescription = 1000

// Service manages endpoints and deliveries for the API. It validates
// URLs before it opens a transaction: a DNS lookup never runs while the
// store's write lock is held.
type Service struct {
	store payloom.Store
	opts  Options
}

var _ payloom.WebhookService = (*Service)(nil)

// NewService returns the service on store. It uses opts' URL policy
// (AllowPrivate, AllowHTTP, Resolver), RotationOverlap, MaxEndpoints and
// Clock.
func NewService(store payloom.Store, opts Options) *Service {
	opts.defaults()
	return &Service{store: store, opts: opts}
}

func (s *Service) now() time.Time { return s.opts.Clock().UTC() }

// validateEvents checks enabled_events and returns it without duplicates.
func validateEvents(events []string) ([]string, error) {
	if len(events) == 0 {
		return nil, payloom.FieldError("enabled_events", "enabled_events must list at least one event type, or \"*\"")
	}
	out := make([]string, 0, len(events))
	for _, e := range events {
		if e == payloom.WebhookEventAll {
			if len(events) != 1 && slices.ContainsFunc(events, func(v string) bool { return v != payloom.WebhookEventAll }) {
				return nil, payloom.FieldError("enabled_events", "\"*\" subscribes to every event type and cannot be combined with others")
			}
		} else if !slices.Contains(payloom.EventTypes, payloom.EventType(e)) {
			return nil, payloom.FieldError("enabled_events", "unknown event type %q", e)
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

func validateDescription(d string) error {
	if !utf8.ValidString(d) || utf8.RuneCountInString(d) > maxDescription {
		return payloom.FieldError("description", "description must be valid UTF-8 of at most %d characters", maxDescription)
	}
	return nil
}

// CreateEndpoint implements payloom.WebhookService.
func (s *Service) CreateEndpoint(ctx context.Context, scope payloom.Scope, req *payloom.WebhookEndpointCreate) (*payloom.WebhookEndpoint, payloom.Secret, error) {
	if err := s.opts.validateURL(ctx, req.URL, scope.Livemode); err != nil {
		return nil, "", err
	}
	events, err := validateEvents(req.EnabledEvents)
	if err != nil {
		return nil, "", err
	}
	if err := validateDescription(req.Description); err != nil {
		return nil, "", err
	}
	secret, err := NewSecret()
	if err != nil {
		return nil, "", err
	}
	now := s.now()
	ep := &payloom.WebhookEndpoint{
		ID: payloom.NewID(payloom.PrefixWebhookEndpoint), Object: "webhook_endpoint", MerchantID: scope.MerchantID,
		Livemode: scope.Livemode, URL: req.URL, Description: req.Description, EnabledEvents: events, Enabled: true,
		Secret: secret, CreatedAt: now, UpdatedAt: now,
	}
	err = s.store.Update(ctx, func(tx payloom.Tx) error {
		existing, _, err := tx.ListWebhookEndpoints(ctx, scope, payloom.ListParams{Limit: s.opts.MaxEndpoints})
		if err != nil {
			return err
		}
		if len(existing) >= s.opts.MaxEndpoints {
			return payloom.Errorf(payloom.CodeValidation, "a merchant may have at most %d webhook endpoints in %s mode",
				s.opts.MaxEndpoints, scope.Mode())
		}
		return tx.CreateWebhookEndpoint(ctx, ep)
	})
	if err != nil {
		return nil, "", err
	}
	return ep, secret, nil
}

// Endpoint implements payloom.WebhookService.
func (s *Service) Endpoint(ctx context.Context, scope payloom.Scope, id string) (*payloom.WebhookEndpoint, error) {
	var ep *payloom.WebhookEndpoint
	err := s.store.View(ctx, func(tx payloom.Tx) error {
		var err error
		ep, err = tx.GetWebhookEndpoint(ctx, scope, id)
		return err
	})
	return ep, err
}

// ListEndpoints implements payloom.WebhookService.
func (s *Service) ListEndpoints(ctx context.Context, scope payloom.Scope, p payloom.ListParams) (*payloom.List[*payloom.WebhookEndpoint], error) {
	out := &payloom.List[*payloom.WebhookEndpoint]{Object: "list"}
	err := s.store.View(ctx, func(tx payloom.Tx) error {
		var err error
		out.Data, out.HasMore, err = tx.ListWebhookEndpoints(ctx, scope, p)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UpdateEndpoint implements payloom.WebhookService.
func (s *Service) UpdateEndpoint(ctx context.Context, scope payloom.Scope, id string, req *payloom.WebhookEndpointUpdate) (*payloom.WebhookEndpoint, error) {
	if req.URL != nil {
		if err := s.opts.validateURL(ctx, *req.URL, scope.Livemode); err != nil {
			return nil, err
		}
	}
	var events []string
	if req.EnabledEvents != nil {
		var err error
		if events, err = validateEvents(*req.EnabledEvents); err != nil {
			return nil, err
		}
	}
	if req.Description != nil {
		if err := validateDescription(*req.Description); err != nil {
			return nil, err
		}
	}
	var ep *payloom.WebhookEndpoint
	err := s.store.Update(ctx, func(tx payloom.Tx) error {
		var err error
		if ep, err = tx.GetWebhookEndpoint(ctx, scope, id); err != nil {
			return err
		}
		if req.URL != nil {
			ep.URL = *req.URL
		}
		if events != nil {
			ep.EnabledEvents = events
		}
		if req.Description != nil {
			ep.Description = *req.Description
		}
		if req.Enabled != nil && *req.Enabled != ep.Enabled {
			ep.Enabled = *req.Enabled
			// Re-enabling starts afresh; a merchant's own disabling
			// needs no reason.
			ep.DisabledReason, ep.FailingSince = "", nil
		}
		ep.UpdatedAt = s.now()
		return tx.UpdateWebhookEndpoint(ctx, ep)
	})
	if err != nil {
		return nil, err
	}
	return ep, nil
}

// DeleteEndpoint implements payloom.WebhookService. Pending deliveries to
// the endpoint fail when they come due.
func (s *Service) DeleteEndpoint(ctx context.Context, scope payloom.Scope, id string) error {
	return s.store.Update(ctx, func(tx payloom.Tx) error { return tx.DeleteWebhookEndpoint(ctx, scope, id) })
}

// RotateSecret implements payloom.WebhookService. Rotating again within
// the overlap drops the oldest secret: at most two ever sign.
func (s *Service) RotateSecret(ctx context.Context, scope payloom.Scope, id string) (*payloom.WebhookEndpoint, payloom.Secret, error) {
	secret, err := NewSecret()
	if err != nil {
		return nil, "", err
	}
	var ep *payloom.WebhookEndpoint
	err = s.store.Update(ctx, func(tx payloom.Tx) error {
		var err error
		if ep, err = tx.GetWebhookEndpoint(ctx, scope, id); err != nil {
			return err
		}
		now := s.now()
		expires := now.Add(s.opts.RotationOverlap)
		ep.PreviousSecret, ep.PreviousSecretExpiresAt = ep.Secret, &expires
		ep.Secret = secret
		ep.UpdatedAt = now
		return tx.UpdateWebhookEndpoint(ctx, ep)
	})
	if err != nil {
		return nil, "", err
	}
	return ep, secret, nil
}

// ListDeliveryAttempts implements payloom.WebhookService.
func (s *Service) ListDeliveryAttempts(ctx context.Context, scope payloom.Scope, eventID string) ([]*payloom.WebhookAttempt, error) {
	var out []*payloom.WebhookAttempt
	err := s.store.View(ctx, func(tx payloom.Tx) error {
		if _, err := tx.GetEvent(ctx, scope, eventID); err != nil {
			return err
		}
		var err error
		out, err = tx.ListWebhookAttempts(ctx, scope, eventID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Resend implements payloom.WebhookService. Unlike fan-out it also
// reaches endpoints created after the event.
func (s *Service) Resend(ctx context.Context, scope payloom.Scope, eventID string) ([]*payloom.WebhookDelivery, error) {
	var out []*payloom.WebhookDelivery
	err := s.store.Update(ctx, func(tx payloom.Tx) error {
		out = []*payloom.WebhookDelivery{}
		ev, err := tx.GetEvent(ctx, scope, eventID)
		if err != nil {
			return err
		}
		eps, err := tx.ListEnabledWebhookEndpoints(ctx, scope)
		if err != nil {
			return err
		}
		now := s.now()
		for _, ep := range eps {
			if !ep.Subscribed(ev.Type) {
				continue
			}
			dl := newDelivery(ev, ep, now, now)
			if err := tx.CreateWebhookDelivery(ctx, dl); err != nil {
				return err
			}
			out = append(out, dl)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
