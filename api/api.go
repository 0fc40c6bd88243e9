// Package api is Payloom's native JSON HTTP API (/v1): it authenticates
// requests by API key, checks the permission each route declares in the
// route table (auditing refusals), resolves the tenant scope (merchant and
// mode), decodes and validates request bodies strictly, makes every write
// (POST, PUT, PATCH, DELETE) safe to retry with an Idempotency-Key, calls the
// engine and the webhook service through the root package's service
// interfaces, and renders objects and errors as JSON. The API is
// described by api/openapi.json (OpenAPI 3.1), which OpenAPI returns and
// GET /v1/openapi.json serves; tests check real responses against it.
//
// A webhook endpoint's signing secret appears in exactly two responses, the
// endpoint's creation and its secret rotation; every other rendering of an
// endpoint (retrieve, list, update, events) leaves it out.
//
// Card numbers arrive in two places only: POST /v1/tokens, and
// POST /v1/payments from a key with the raw_card_data permission, where the
// card is tokenized (and the use audited) before the Idempotency-Key is
// claimed, so that the fingerprint, the stored record and the engine see
// only the token.
//
// The API must never show or log a card number or CVC (request bodies are
// never logged, and no error message quotes a value), never show the text of
// an unexpected error (it is logged with the request ID and answered as 500
// "internal error"), never execute a request that failed authentication or
// validation, and never store anything under an Idempotency-Key for such a
// request. It holds no state of its own: every decision about objects is the
// engine's, and tenancy is enforced by passing the resolved scope to it.
package api

import (
	"context"
	_ "embed"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/payloom/payloom"
)

//go:embed openapi.json
var openapiJSON []byte

// OpenAPI returns the OpenAPI 3.1 description of the API (api/openapi.json).
// The caller must not modify the returned slice.
func OpenAPI() []byte { return openapiJSON }

// Config wires the API to the services it calls. Payments, Idempotency,
// Auth, Vault, Webhooks, Customers and Audit are required.
type Config struct {
	// Payments may also implement payloom.ClaimingPaymentService: card
	// payments under a new Idempotency-Key then claim and complete the
	// key themselves, which is only right when they do it in the records
	// Idempotency reads (the engine is both).
	Payments    payloom.PaymentService
	Idempotency payloom.IdempotencyService
	Auth        payloom.AuthService
	Vault       payloom.Vault
	Webhooks    payloom.WebhookService
	Customers   payloom.CustomerService
	Audit       payloom.AuditService
	// Processors serves /v1/processor_accounts and /v1/routing; nil
	// answers them 503.
	Processors payloom.ProcessorAccountService
	// Checkout serves POST /v1/payments/{id}/confirm. Nil means Payments,
	// if it implements payloom.CheckoutService (the engine does).
	Checkout payloom.CheckoutService
	// Notify, if set, is called after a write that made webhook deliveries
	// due at once (POST /v1/events/{id}/resend), so that the node's
	// dispatcher sends them now rather than at its next poll. It must not
	// block.
	Notify func()
	// Logger receives one access line per request and the details of
	// internal errors and panics. Nil discards.
	Logger *slog.Logger
	// Clock defaults to time.Now. It dates card expiry checks and times
	// requests for the access log.
	Clock payloom.Clock
	// Ready reports whether the server can take traffic (GET /readyz
	// answers 503 while it returns an error). Nil means always ready.
	Ready func(ctx context.Context) error
}

// Route is one endpoint of the API. Pattern uses net/http.ServeMux syntax,
// which is also the OpenAPI path template ("/v1/payments/{id}").
type Route struct {
	Method  string
	Pattern string
	// OperationID names the operation in openapi.json.
	OperationID string
	// Auth says the route needs an API key; tenant-scoped routes all do.
	Auth bool
	// Write says the route changes state (POST, PUT, PATCH, DELETE): it takes a
	// JSON body (which may be empty) and an optional Idempotency-Key.
	Write bool
	// Permission is what the API key needs for the route (every route
	// with Auth has one); a key without it gets 403 permission_denied.
	Permission payloom.Permission
}

// route is a Route with its implementation. Exactly one of read, write and
// public is set.
type route struct {
	Route
	// query lists the query parameters a read accepts besides
	// merchant_id; any other is refused.
	query []string
	read  func(c *call) (any, error)
	write func(c *call, body any) (*writeOp, error)
	// keyRequiredLive: in live mode the request needs an Idempotency-Key
	// unless the merchant turned the rule off.
	keyRequiredLive bool
	public          http.HandlerFunc
}

// Routes returns the API's routes in the order they are documented. It is
// the same table the handler is built from, so a test that iterates it
// covers every endpoint.
func Routes() []Route {
	var out []Route
	for _, rt := range (&server{}).routes() {
		out = append(out, rt.Route)
	}
	return out
}

type server struct {
	payments   payloom.PaymentService
	idem       payloom.IdempotencyService
	auth       payloom.AuthService
	vault      payloom.Vault
	webhooks   payloom.WebhookService
	cust       payloom.CustomerService
	audit      payloom.AuditService
	checkout   payloom.CheckoutService
	processors payloom.ProcessorAccountService
	notify     func()
	log        *slog.Logger
	clock      payloom.Clock
	ready      func(ctx context.Context) error
}

// New returns the API's HTTP handler.
func New(cfg Config) http.Handler {
	if cfg.Payments == nil || cfg.Idempotency == nil || cfg.Auth == nil || cfg.Vault == nil || cfg.Webhooks == nil ||
		cfg.Customers == nil || cfg.Audit == nil {
		panic("api: Config needs Payments, Idempotency, Auth, Vault, Webhooks, Customers and Audit")
	}
	s := &server{
		payments: cfg.Payments, idem: cfg.Idempotency, auth: cfg.Auth, vault: cfg.Vault,
		webhooks: cfg.Webhooks, cust: cfg.Customers, audit: cfg.Audit,
		notify: cfg.Notify, log: cfg.Logger, clock: cfg.Clock, ready: cfg.Ready, processors: cfg.Processors,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.checkout = cfg.Checkout
	if cs, ok := cfg.Payments.(payloom.CheckoutService); ok && s.checkout == nil {
		s.checkout = cs
	}
	if s.clock == nil {
		s.clock = time.Now
	}

	mux := http.NewServeMux()
	methods := map[string][]string{} // path -> methods, for 405
	var paths []string
	for _, rt := range s.routes() {
		rt := rt
		mux.Handle(rt.Method+" "+rt.Pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.serveRoute(w, r, &rt)
		}))
		if _, ok := methods[rt.Pattern]; !ok {
			paths = append(paths, rt.Pattern)
		}
		methods[rt.Pattern] = append(methods[rt.Pattern], rt.Method)
	}
	// A pattern without a method is less specific than the same path with
	// one, so these catch only the methods the path does not serve.
	for _, p := range paths {
		allow := methods[p]
		if slices.Contains(allow, http.MethodGet) {
			allow = append(allow, http.MethodHead)
		}
		allowHeader := strings.Join(allow, ", ")
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allowHeader)
			s.writeError(w, r, &payloom.Error{Code: codeMethodNotAllowed,
				Message: "this endpoint does not accept " + r.Method + " requests; use " + allowHeader})
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, payloom.Errorf(payloom.CodeNotFound, "unrecognized request URL"))
	})
	return s.middleware(mux)
}

func (s *server) routes() []route {
	const (
		payRead   = payloom.PermissionPaymentsRead
		payWrite  = payloom.PermissionPaymentsWrite
		refWrite  = payloom.PermissionRefundsWrite
		cusRead   = payloom.PermissionCustomersRead
		cusWrite  = payloom.PermissionCustomersWrite
		hookRead  = payloom.PermissionWebhooksRead
		hookWrite = payloom.PermissionWebhooksWrite
		audRead   = payloom.PermissionAuditRead
		procRead  = payloom.PermissionProcessorsRead
		procWrite = payloom.PermissionProcessorsWrite
	)
	listQuery := []string{"limit", "starting_after", "ending_before", "created[gte]", "created[lte]"}
	return []route{
		{Route: Route{Method: "POST", Pattern: "/v1/tokens", OperationID: "createToken", Auth: true, Write: true, Permission: payWrite},
			write: s.createToken},
		{Route: Route{Method: "POST", Pattern: "/v1/payments", OperationID: "createPayment", Auth: true, Write: true, Permission: payWrite},
			write: s.createPayment, keyRequiredLive: true},
		{Route: Route{Method: "GET", Pattern: "/v1/payments", OperationID: "listPayments", Auth: true, Permission: payRead},
			read: s.listPayments, query: []string{"limit", "starting_after", "ending_before", "status", "created[gte]", "created[lte]"}},
		{Route: Route{Method: "GET", Pattern: "/v1/payments/{id}", OperationID: "retrievePayment", Auth: true, Permission: payRead},
			read: s.retrievePayment},
		{Route: Route{Method: "POST", Pattern: "/v1/payments/{id}/capture", OperationID: "capturePayment", Auth: true, Write: true, Permission: payWrite},
			write: s.capturePayment},
		{Route: Route{Method: "POST", Pattern: "/v1/payments/{id}/cancel", OperationID: "cancelPayment", Auth: true, Write: true, Permission: payWrite},
			write: s.cancelPayment},
		{Route: Route{Method: "POST", Pattern: "/v1/payments/{id}/confirm", OperationID: "confirmPayment", Auth: true, Write: true, Permission: payWrite},
			write: s.confirmPayment},
		{Route: Route{Method: "POST", Pattern: "/v1/refunds", OperationID: "createRefund", Auth: true, Write: true, Permission: refWrite},
			write: s.createRefund},
		{Route: Route{Method: "GET", Pattern: "/v1/refunds", OperationID: "listRefunds", Auth: true, Permission: payRead},
			read: s.listRefunds, query: []string{"limit", "starting_after", "ending_before", "created[gte]", "created[lte]", "payment_id"}},
		{Route: Route{Method: "GET", Pattern: "/v1/refunds/{id}", OperationID: "retrieveRefund", Auth: true, Permission: payRead},
			read: s.retrieveRefund},
		{Route: Route{Method: "POST", Pattern: "/v1/customers", OperationID: "createCustomer", Auth: true, Write: true, Permission: cusWrite},
			write: s.createCustomer},
		{Route: Route{Method: "GET", Pattern: "/v1/customers", OperationID: "listCustomers", Auth: true, Permission: cusRead},
			read: s.listCustomers, query: append(slices.Clone(listQuery), "email", "reference")},
		{Route: Route{Method: "GET", Pattern: "/v1/customers/{id}", OperationID: "retrieveCustomer", Auth: true, Permission: cusRead},
			read: s.retrieveCustomer},
		{Route: Route{Method: "PATCH", Pattern: "/v1/customers/{id}", OperationID: "updateCustomer", Auth: true, Write: true, Permission: cusWrite},
			write: s.updateCustomer},
		{Route: Route{Method: "DELETE", Pattern: "/v1/customers/{id}", OperationID: "deleteCustomer", Auth: true, Write: true, Permission: cusWrite},
			write: s.deleteCustomer},
		{Route: Route{Method: "GET", Pattern: "/v1/customers/{id}/payment_methods", OperationID: "listCustomerPaymentMethods", Auth: true, Permission: cusRead},
			read: s.listCustomerPaymentMethods, query: []string{"limit", "starting_after", "ending_before"}},
		{Route: Route{Method: "GET", Pattern: "/v1/payment_methods/{id}", OperationID: "retrievePaymentMethod", Auth: true, Permission: cusRead},
			read: s.retrievePaymentMethod},
		{Route: Route{Method: "DELETE", Pattern: "/v1/payment_methods/{id}", OperationID: "deletePaymentMethod", Auth: true, Write: true, Permission: cusWrite},
			write: s.deletePaymentMethod},
		{Route: Route{Method: "GET", Pattern: "/v1/events", OperationID: "listEvents", Auth: true, Permission: payRead},
			read: s.listEvents, query: []string{"limit", "starting_after", "ending_before", "created[gte]", "created[lte]", "type", "object_id"}},
		{Route: Route{Method: "GET", Pattern: "/v1/events/{id}", OperationID: "retrieveEvent", Auth: true, Permission: payRead},
			read: s.retrieveEvent},
		{Route: Route{Method: "GET", Pattern: "/v1/events/{id}/deliveries", OperationID: "listEventDeliveries", Auth: true, Permission: hookRead},
			read: s.listEventDeliveries},
		{Route: Route{Method: "POST", Pattern: "/v1/events/{id}/resend", OperationID: "resendEvent", Auth: true, Write: true, Permission: hookWrite},
			write: s.resendEvent},
		{Route: Route{Method: "POST", Pattern: "/v1/webhook_endpoints", OperationID: "createWebhookEndpoint", Auth: true, Write: true, Permission: hookWrite},
			write: s.createWebhookEndpoint},
		{Route: Route{Method: "GET", Pattern: "/v1/webhook_endpoints", OperationID: "listWebhookEndpoints", Auth: true, Permission: hookRead},
			read: s.listWebhookEndpoints, query: []string{"limit", "starting_after", "ending_before"}},
		{Route: Route{Method: "GET", Pattern: "/v1/webhook_endpoints/{id}", OperationID: "retrieveWebhookEndpoint", Auth: true, Permission: hookRead},
			read: s.retrieveWebhookEndpoint},
		{Route: Route{Method: "PATCH", Pattern: "/v1/webhook_endpoints/{id}", OperationID: "updateWebhookEndpoint", Auth: true, Write: true, Permission: hookWrite},
			write: s.updateWebhookEndpoint},
		{Route: Route{Method: "DELETE", Pattern: "/v1/webhook_endpoints/{id}", OperationID: "deleteWebhookEndpoint", Auth: true, Write: true, Permission: hookWrite},
			write: s.deleteWebhookEndpoint},
		{Route: Route{Method: "POST", Pattern: "/v1/webhook_endpoints/{id}/rotate_secret", OperationID: "rotateWebhookEndpointSecret", Auth: true, Write: true, Permission: hookWrite},
			write: s.rotateWebhookSecret},
		{Route: Route{Method: "POST", Pattern: "/v1/processor_accounts", OperationID: "createProcessorAccount", Auth: true, Write: true, Permission: procWrite},
			write: s.createProcessorAccount},
		{Route: Route{Method: "GET", Pattern: "/v1/processor_accounts", OperationID: "listProcessorAccounts", Auth: true, Permission: procRead},
			read: s.listProcessorAccounts},
		{Route: Route{Method: "GET", Pattern: "/v1/processor_accounts/{id}", OperationID: "retrieveProcessorAccount", Auth: true, Permission: procRead},
			read: s.retrieveProcessorAccount},
		{Route: Route{Method: "PATCH", Pattern: "/v1/processor_accounts/{id}", OperationID: "updateProcessorAccount", Auth: true, Write: true, Permission: procWrite},
			write: s.updateProcessorAccount},
		{Route: Route{Method: "DELETE", Pattern: "/v1/processor_accounts/{id}", OperationID: "deleteProcessorAccount", Auth: true, Write: true, Permission: procWrite},
			write: s.deleteProcessorAccount},
		{Route: Route{Method: "GET", Pattern: "/v1/processor_accounts/{id}/health", OperationID: "retrieveProcessorAccountHealth", Auth: true, Permission: procRead},
			read: s.processorAccountHealth},
		{Route: Route{Method: "GET", Pattern: "/v1/routing", OperationID: "retrieveRouting", Auth: true, Permission: procRead},
			read: s.retrieveRouting},
		{Route: Route{Method: "PUT", Pattern: "/v1/routing", OperationID: "updateRouting", Auth: true, Write: true, Permission: procWrite},
			write: s.putRouting},
		{Route: Route{Method: "GET", Pattern: "/v1/audit_events", OperationID: "listAuditEvents", Auth: true, Permission: audRead},
			read: s.listAuditEvents, query: append(slices.Clone(listQuery), "action")},
		{Route: Route{Method: "GET", Pattern: "/v1/openapi.json", OperationID: "getOpenAPI"},
			public: s.serveOpenAPI},
		{Route: Route{Method: "GET", Pattern: "/healthz", OperationID: "getHealth"},
			public: s.serveHealth},
		{Route: Route{Method: "GET", Pattern: "/readyz", OperationID: "getReadiness"},
			public: s.serveReady},
	}
}
