package api

import (
	"context"

	"github.com/payloom/payloom"
)

// webhookEndpointWithSecret is the endpoint as the create and rotate_secret
// responses show it: the only two answers that carry the signing secret.
// Every other response renders payloom.WebhookEndpoint, whose secrets are
// not serialized at all.
type webhookEndpointWithSecret struct {
	*payloom.WebhookEndpoint
	Secret string `json:"secret"`
}

func withSecret(ep *payloom.WebhookEndpoint, secret payloom.Secret) *webhookEndpointWithSecret {
	return &webhookEndpointWithSecret{WebhookEndpoint: normEndpoint(ep), Secret: secret.Reveal()}
}

// deletedObject answers a DELETE.
type deletedObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Deleted bool   `json:"deleted"`
}

// Endpoint creation and secret rotation are not resumable by operation key:
// the service has no creation key to find a committed endpoint by. The
// Idempotency-Key's stored response is what makes a retry return the same
// endpoint and secret; a crash between the commit and the stored response
// (a window of one store write) lets a retry create or rotate again.

func (s *server) createWebhookEndpoint(c *call, tree any) (*writeOp, error) {
	merchantID, req, err := decodeWebhookEndpointCreate(tree)
	if err != nil {
		return nil, err
	}
	return &writeOp{merchantID: merchantID, exec: func(ctx context.Context, _ string) (any, error) {
		ep, secret, err := s.webhooks.CreateEndpoint(ctx, c.scope, req)
		if err != nil {
			return nil, err
		}
		return withSecret(ep, secret), nil
	}}, nil
}

func (s *server) updateWebhookEndpoint(c *call, tree any) (*writeOp, error) {
	merchantID, req, err := decodeWebhookEndpointUpdate(tree)
	if err != nil {
		return nil, err
	}
	id := c.r.PathValue("id")
	return &writeOp{merchantID: merchantID, exec: func(ctx context.Context, _ string) (any, error) {
		return s.webhooks.UpdateEndpoint(ctx, c.scope, id, req)
	}}, nil
}

func (s *server) deleteWebhookEndpoint(c *call, tree any) (*writeOp, error) {
	merchantID, err := decodeMerchantOnly(tree)
	if err != nil {
		return nil, err
	}
	id := c.r.PathValue("id")
	return &writeOp{merchantID: merchantID, exec: func(ctx context.Context, _ string) (any, error) {
		if err := s.webhooks.DeleteEndpoint(ctx, c.scope, id); err != nil {
			return nil, err
		}
		return &deletedObject{ID: id, Object: "webhook_endpoint", Deleted: true}, nil
	}}, nil
}

func (s *server) rotateWebhookSecret(c *call, tree any) (*writeOp, error) {
	merchantID, err := decodeMerchantOnly(tree)
	if err != nil {
		return nil, err
	}
	id := c.r.PathValue("id")
	return &writeOp{merchantID: merchantID, exec: func(ctx context.Context, _ string) (any, error) {
		ep, secret, err := s.webhooks.RotateSecret(ctx, c.scope, id)
		if err != nil {
			return nil, err
		}
		return withSecret(ep, secret), nil
	}}, nil
}

func (s *server) resendEvent(c *call, tree any) (*writeOp, error) {
	merchantID, err := decodeMerchantOnly(tree)
	if err != nil {
		return nil, err
	}
	id := c.r.PathValue("id")
	return &writeOp{merchantID: merchantID, exec: func(ctx context.Context, _ string) (any, error) {
		ds, err := s.webhooks.Resend(ctx, c.scope, id)
		if err != nil {
			return nil, err
		}
		// The new deliveries are due now: wake this node's dispatcher
		// rather than leave them to its next poll.
		if s.notify != nil {
			s.notify()
		}
		return &payloom.List[*payloom.WebhookDelivery]{Object: "list", Data: nonNil(ds)}, nil
	}}, nil
}

func (s *server) retrieveWebhookEndpoint(c *call) (any, error) {
	return s.webhooks.Endpoint(c.ctx(), c.scope, c.r.PathValue("id"))
}

func (s *server) listWebhookEndpoints(c *call) (any, error) {
	lp, err := parseListParams(c.query, payloom.PrefixWebhookEndpoint)
	if err != nil {
		return nil, err
	}
	return s.webhooks.ListEndpoints(c.ctx(), c.scope, lp)
}

func (s *server) listEventDeliveries(c *call) (any, error) {
	as, err := s.webhooks.ListDeliveryAttempts(c.ctx(), c.scope, c.r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return &payloom.List[*payloom.WebhookAttempt]{Object: "list", Data: nonNil(as)}, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func normEndpoint(ep *payloom.WebhookEndpoint) *payloom.WebhookEndpoint {
	if ep == nil || ep.EnabledEvents != nil {
		return ep
	}
	cp := *ep
	cp.EnabledEvents = []string{}
	return &cp
}
