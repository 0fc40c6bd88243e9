// Package webhook delivers Payloom's events to merchants' HTTP endpoints,
// and lets receivers check what they get.
//
// Delivery follows the Standard Webhooks specification
// (standardwebhooks.com): a POST of the event object as JSON with the
// headers webhook-id (the event ID, the same on every retry, for receivers
// to deduplicate), webhook-timestamp and webhook-signature
// ("v1,<base64 HMAC-SHA256 of id.timestamp.body>", two of them while a
// rotated-out secret still signs).
//
// The events table is the outbox: an event exists only if the change it
// describes committed. A Dispatcher fans each new event out, exactly once
// even with several nodes, into durable deliveries (one per subscribed
// endpoint), created in the transaction that marks the event fanned out.
// Due deliveries are claimed with leases, so two nodes never send one
// attempt at once and a dead node's work is taken over when its lease runs
// out. Every request is recorded as a WebhookAttempt. 2xx is success;
// anything else is retried on Options.Schedule with jitter, honouring
// Retry-After on 429 and 503; 410 Gone, or three days of failures, disables
// the endpoint and records a webhook_endpoint.disabled event. Delivery is
// at least once: receivers deduplicate on webhook-id.
//
// In live mode endpoints may not reach loopback, private, link-local
// (cloud metadata), carrier-grade NAT, multicast or reserved addresses: the
// URL's addresses are checked when it is set, and every connection's
// actual address is checked again when it is dialed, which defeats DNS
// rebinding. Test mode allows them, so that developers can receive on
// their own machine.
//
// Verify, VerifyAt and VerifyFile are for receivers and the CLI.
//
// The package never sends a request without its signature, never follows a
// redirect, never sends through a proxy, and never logs a signing secret or
// an endpoint URL (which may carry a token): logs name endpoints by ID.
package webhook
