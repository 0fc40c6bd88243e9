// Package stripe is Payloom's connector to Stripe, through stripe-go v85:
// a card becomes a PaymentMethod (POST /v1/payment_methods, which needs
// Stripe's raw card data access), then one PaymentIntent is created and
// confirmed with it (capture_method automatic or manual), captured
// (amount_to_capture), canceled, or refunded (POST /v1/refunds). Every
// call carries an Idempotency-Key derived from Payloom's key, and each
// PaymentIntent carries metadata payloom_attempt and payloom_reference, by
// which Lookup searches for it.
//
// How Stripe's answers are classed (docs/connectors.md has the tables):
// a card_error is a decline, hard or soft by its decline code; a 4xx
// other than 409 means Stripe did not process the request (failed, safe
// elsewhere); a 5xx, a 409 (another request with the key is in flight), a
// timeout or a connection lost after sending is an unknown outcome (a Go
// error); a connection never made is a failure. Anything that goes wrong
// while creating the PaymentMethod is at worst a failure: no PaymentIntent
// exists yet, so nothing can have been authorized.
//
// The connector must never log, and never put into a result or an error,
// a card number or CVC: they go only into the PaymentMethod request body.
// stripe-go's own logging is switched off for the same reason.
package stripe

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v85"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/processor"
)

// Name is the connector's default name.
const Name = "stripe"

// Metadata keys set on every PaymentIntent.
const (
	MetadataAttempt   = "payloom_attempt"
	MetadataReference = "payloom_reference"
)

// Options configure the connector.
type Options struct {
	// APIKey is the secret key (sk_live_... or sk_test_...).
	APIKey string
	// BackendURL replaces https://api.stripe.com (stripe-mock in tests).
	BackendURL string
	// HTTPClient, if set, carries every call.
	HTTPClient *http.Client
	// MaxNetworkRetries lets stripe-go retry network errors itself, with
	// the same idempotency key (safe). Default 0: the engine decides.
	MaxNetworkRetries int64
	// ReturnURL is where Stripe sends the shopper back after 3-D Secure
	// when the request names no absolute return URL of its own.
	// Without it the connector does not offer 3-D Secure, and a card that
	// demands it is declined authentication_required.
	ReturnURL string
	// Name replaces "stripe" as the connector's name.
	Name string
}

// Connector is the payloom.Processor for Stripe.
type Connector struct {
	// CompleteAuthentication answers CodeNotSupported: Stripe settles an
	// authentication on its side, and Lookup (the PaymentIntent) reports it.
	payloom.UnsupportedProcessor
	opts   Options
	client *stripego.Client
}

var _ payloom.Processor = (*Connector)(nil)

// New returns a Stripe connector.
func New(opts Options) *Connector {
	if opts.Name == "" {
		opts.Name = Name
	}
	cfg := &stripego.BackendConfig{
		HTTPClient:        opts.HTTPClient,
		MaxNetworkRetries: stripego.Int64(opts.MaxNetworkRetries),
		LeveledLogger:     &stripego.LeveledLogger{Level: stripego.LevelNull},
	}
	if opts.BackendURL != "" {
		cfg.URL = stripego.String(opts.BackendURL)
	}
	api := stripego.GetBackendWithConfig(stripego.APIBackend, cfg)
	client := stripego.NewClient(opts.APIKey, stripego.WithBackends(&stripego.Backends{API: api, Connect: api, Uploads: api, MeterEvents: api}))
	return &Connector{opts: opts, client: client}
}

// Name implements payloom.Processor.
func (c *Connector) Name() string { return c.opts.Name }

// Capabilities implements payloom.Processor. Lookup is by Stripe's search,
// which is eventually consistent (see Lookup): LookupLag tells the
// reconciler not to take a miss as final before searchLag.
func (c *Connector) Capabilities() payloom.Capabilities {
	return payloom.Capabilities{
		PaymentMethods: []payloom.PaymentMethodType{payloom.PaymentMethodTypeCard},
		ManualCapture:  true, PartialCapture: true, PartialRefund: true,
		ThreeDS:   c.opts.ReturnURL != "",
		Lookup:    true,
		LookupLag: searchLag,
	}
}

// searchLag is how long Stripe's search may miss a PaymentIntent: under a
// minute normally, up to an hour during incidents (Stripe's documentation
// of the Search API).
const searchLag = time.Hour

// apiError is an error from Stripe with a message that is safe to log:
// stripe-go's own Error() prints the whole error object, PaymentIntent
// client_secret included.
type apiError struct {
	summary string
	err     error
}

func (e *apiError) Error() string { return e.summary }
func (e *apiError) Unwrap() error { return e.err }

func describe(op string, se *stripego.Error) string {
	s := fmt.Sprintf("stripe: %s: HTTP %d %s", op, se.HTTPStatusCode, se.Type)
	if se.Code != "" {
		s += " " + string(se.Code)
	}
	if se.DeclineCode != "" {
		s += "/" + string(se.DeclineCode)
	}
	if se.RequestID != "" {
		s += " (request " + se.RequestID + ")"
	}
	if se.LastResponse != nil {
		if v := se.LastResponse.Header.Get("Stripe-Should-Retry"); v != "" {
			s += " Stripe-Should-Retry: " + v
		}
	}
	if se.Msg != "" {
		s += ": " + processor.Redact(se.Msg)
	}
	return s
}

// class is how a call's failure counts.
type class int

const (
	classUnknown      class = iota // may have been processed
	classNotProcessed              // definitely not processed
	classCard                      // a card_error: processed and declined
	classConflict                  // the key was used for other parameters
)

// classify sorts a call's error. sent is whether the request may have
// left this machine.
func classify(err error, sent bool) (class, *stripego.Error) {
	var se *stripego.Error
	if !errors.As(err, &se) {
		if sent {
			return classUnknown, nil
		}
		return classNotProcessed, nil
	}
	switch {
	case se.Type == stripego.ErrorTypeCard:
		return classCard, se
	case se.Type == stripego.ErrorTypeIdempotency:
		return classConflict, se
	case se.HTTPStatusCode == http.StatusConflict:
		// Another request with this key is being processed: it may
		// authorize. Never "safe elsewhere".
		return classUnknown, se
	case se.HTTPStatusCode >= 500:
		// Stripe: treat a 500 as indeterminate (Stripe-Should-Retry only
		// says whether retrying with the key could change the answer).
		return classUnknown, se
	case se.HTTPStatusCode >= 400:
		// 400, 401, 402 without a card error, 403, 404, 429: refused
		// before any processing.
		return classNotProcessed, se
	}
	return classUnknown, se
}

// Authorize implements payloom.Processor: create the PaymentMethod, then
// create and confirm the PaymentIntent.
func (c *Connector) Authorize(ctx context.Context, req *payloom.AuthorizeRequest) (*payloom.AuthorizeResult, error) {
	if err := checkKey(req.IdempotencyKey); err != nil {
		return nil, err
	}
	if req.Card == nil {
		return processor.Failed(processor.RawNotSent, "No card was given."), nil
	}
	pm, res, err := c.paymentMethod(ctx, req)
	if res != nil || err != nil {
		return res, err
	}
	params := &stripego.PaymentIntentCreateParams{
		Amount:             stripego.Int64(req.Amount),
		Currency:           stripego.String(strings.ToLower(string(req.Currency))),
		PaymentMethod:      stripego.String(pm),
		PaymentMethodTypes: []*string{stripego.String("card")},
		Confirm:            stripego.Bool(true),
		CaptureMethod:      stripego.String(string(stripego.PaymentIntentCaptureMethodManual)),
		Metadata:           map[string]string{MetadataAttempt: req.IdempotencyKey, MetadataReference: req.Reference},
		Expand:             []*string{stripego.String("latest_charge")},
	}
	if req.Capture {
		params.CaptureMethod = stripego.String(string(stripego.PaymentIntentCaptureMethodAutomatic))
	}
	if req.Description != "" {
		params.Description = stripego.String(req.Description)
	}
	if d := req.StatementDescriptor; d != "" {
		if r := []rune(d); len(r) > 22 { // Stripe's limit for the suffix
			d = string(r[:22])
		}
		params.StatementDescriptorSuffix = stripego.String(d)
	}
	if u := c.returnURL(req.ReturnURL); u != "" {
		params.ReturnURL = stripego.String(u)
	}
	params.IdempotencyKey = stripego.String(req.IdempotencyKey)
	tctx, trace := processor.TraceSend(ctx)
	pi, err := c.client.V1PaymentIntents.Create(tctx, params)
	if err != nil {
		switch cl, se := classify(err, trace.MaybeSent()); cl {
		case classCard:
			r := declined(se)
			if se.PaymentIntent != nil {
				r.TransactionID = se.PaymentIntent.ID
			}
			return r, nil
		case classConflict:
			return nil, payloom.Errorf(payloom.CodeIdempotencyConflict,
				"stripe: idempotency key %q was used with other parameters", req.IdempotencyKey)
		case classNotProcessed:
			if se == nil {
				return processor.Failed(processor.RawNotSent, "Stripe could not be reached."), nil
			}
			return processor.Failed(rawCode(se), se.Msg), nil
		default:
			if se != nil {
				return nil, &apiError{describe("authorize "+req.IdempotencyKey, se) + "; outcome unknown", err}
			}
			return nil, fmt.Errorf("stripe: authorize %s: no answer, outcome unknown: %w", req.IdempotencyKey, err)
		}
	}
	return c.intentResult(pi)
}

// returnURL is where Stripe sends the shopper back after 3-D Secure: the
// request's own (Payloom's landing for that payment, which asks Stripe
// for the outcome) if it is an absolute URL, else Options.ReturnURL.
// Without Options.ReturnURL the connector offers no 3-D Secure, and sends
// none.
func (c *Connector) returnURL(perRequest string) string {
	if c.opts.ReturnURL == "" {
		return ""
	}
	if u, err := url.Parse(perRequest); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
		return perRequest
	}
	return c.opts.ReturnURL
}

// paymentMethod turns the card into a PaymentMethod. Whatever goes wrong
// here, nothing was authorized: the result is a decline (card error) or a
// failure, never an unknown outcome.
func (c *Connector) paymentMethod(ctx context.Context, req *payloom.AuthorizeRequest) (string, *payloom.AuthorizeResult, error) {
	card := &stripego.PaymentMethodCreateCardParams{
		Number:   stripego.String(req.Card.Number.Reveal()),
		ExpMonth: stripego.Int64(int64(req.Card.ExpMonth)),
		ExpYear:  stripego.Int64(int64(req.Card.ExpYear)),
	}
	if cvc := req.Card.CVC.Reveal(); cvc != "" {
		card.CVC = stripego.String(cvc)
	}
	params := &stripego.PaymentMethodCreateParams{Type: stripego.String("card"), Card: card}
	if req.Card.HolderName != "" {
		params.BillingDetails = &stripego.PaymentMethodCreateBillingDetailsParams{Name: stripego.String(req.Card.HolderName)}
	}
	params.IdempotencyKey = stripego.String(req.IdempotencyKey + "-pm")
	tctx, trace := processor.TraceSend(ctx)
	pm, err := c.client.V1PaymentMethods.Create(tctx, params)
	if err == nil {
		return pm.ID, nil, nil
	}
	switch cl, se := classify(err, trace.MaybeSent()); cl {
	case classCard:
		return "", declined(se), nil
	case classConflict:
		return "", nil, payloom.Errorf(payloom.CodeIdempotencyConflict,
			"stripe: idempotency key %q was used with other parameters", req.IdempotencyKey)
	default:
		if se != nil {
			return "", processor.Failed(rawCode(se), "Stripe did not accept the card: "+se.Msg), nil
		}
		return "", processor.Failed(processor.RawNotSent, "Stripe could not be reached."), nil
	}
}

// intentResult reads a confirmed PaymentIntent as an authorization.
func (c *Connector) intentResult(pi *stripego.PaymentIntent) (*payloom.AuthorizeResult, error) {
	switch pi.Status {
	case stripego.PaymentIntentStatusSucceeded, stripego.PaymentIntentStatusRequiresCapture:
		r := &payloom.AuthorizeResult{Status: payloom.AuthorizationApproved, TransactionID: pi.ID,
			RawCode: string(pi.Status), Message: "Approved"}
		if ch := pi.LatestCharge; ch != nil && ch.PaymentMethodDetails != nil && ch.PaymentMethodDetails.Card != nil {
			card := ch.PaymentMethodDetails.Card
			r.AuthorizationCode = card.AuthorizationCode
			r.NetworkTransactionID = card.NetworkTransactionID
			if card.Checks != nil {
				r.CVVResult = string(card.Checks.CVCCheck)
				r.AVSResult = string(card.Checks.AddressPostalCodeCheck)
			}
		}
		return r, nil
	case stripego.PaymentIntentStatusRequiresAction:
		if na := pi.NextAction; na != nil && na.RedirectToURL != nil && na.RedirectToURL.URL != "" {
			return &payloom.AuthorizeResult{Status: payloom.AuthorizationRequiresAction, TransactionID: pi.ID,
				FailureCode: payloom.FailureAuthentication, RawCode: string(pi.Status),
				Message: "The card requires 3-D Secure authentication.", RedirectURL: na.RedirectToURL.URL}, nil
		}
		// No redirect (no ReturnURL, or an SDK-only action): Payloom cannot
		// take the shopper through it, and nothing is authorized.
		r := processor.Declined(processor.DeclineAuthenticationRequired, string(pi.Status))
		r.TransactionID = pi.ID
		return r, nil
	case stripego.PaymentIntentStatusRequiresPaymentMethod, stripego.PaymentIntentStatusCanceled:
		// The confirmation failed (or the intent was canceled): declined.
		var r *payloom.AuthorizeResult
		if se := pi.LastPaymentError; se != nil && (se.Code != "" || se.DeclineCode != "") {
			r = declined(se)
		} else {
			r = processor.Declined(payloom.DeclineGeneric, string(pi.Status))
		}
		r.TransactionID = pi.ID
		return r, nil
	case stripego.PaymentIntentStatusRequiresConfirmation:
		r := processor.Failed(string(pi.Status), "The PaymentIntent was not confirmed.")
		r.TransactionID = pi.ID
		return r, nil
	}
	// processing, or a status this connector does not know.
	return nil, fmt.Errorf("stripe: PaymentIntent %s is %q; outcome unknown until it settles", pi.ID, pi.Status)
}

// Capture implements payloom.Processor (amount_to_capture; the rest of the
// authorization is released).
func (c *Connector) Capture(ctx context.Context, req *payloom.CaptureRequest) (*payloom.OperationResult, error) {
	if err := checkKey(req.IdempotencyKey); err != nil {
		return nil, err
	}
	params := &stripego.PaymentIntentCaptureParams{AmountToCapture: stripego.Int64(req.Amount)}
	params.IdempotencyKey = stripego.String(req.IdempotencyKey)
	tctx, trace := processor.TraceSend(ctx)
	pi, err := c.client.V1PaymentIntents.Capture(tctx, req.TransactionID, params)
	if err != nil {
		return c.operationError("capture", req.IdempotencyKey, err, trace.MaybeSent())
	}
	return &payloom.OperationResult{Succeeded: true, TransactionID: pi.ID, RawCode: string(pi.Status), Message: "Captured"}, nil
}

// Void implements payloom.Processor by canceling the PaymentIntent.
func (c *Connector) Void(ctx context.Context, req *payloom.VoidRequest) (*payloom.OperationResult, error) {
	if err := checkKey(req.IdempotencyKey); err != nil {
		return nil, err
	}
	params := &stripego.PaymentIntentCancelParams{}
	params.IdempotencyKey = stripego.String(req.IdempotencyKey)
	tctx, trace := processor.TraceSend(ctx)
	pi, err := c.client.V1PaymentIntents.Cancel(tctx, req.TransactionID, params)
	if err != nil {
		return c.operationError("void", req.IdempotencyKey, err, trace.MaybeSent())
	}
	return &payloom.OperationResult{Succeeded: true, TransactionID: pi.ID, RawCode: string(pi.Status), Message: "Canceled"}, nil
}

// Refund implements payloom.Processor. A refund Stripe accepted as pending
// counts as succeeded: it settles later, and a failure then arrives as a
// refund.failed event, not as this answer.
func (c *Connector) Refund(ctx context.Context, req *payloom.RefundRequest) (*payloom.OperationResult, error) {
	if err := checkKey(req.IdempotencyKey); err != nil {
		return nil, err
	}
	params := &stripego.RefundCreateParams{PaymentIntent: stripego.String(req.TransactionID), Amount: stripego.Int64(req.Amount)}
	params.IdempotencyKey = stripego.String(req.IdempotencyKey)
	tctx, trace := processor.TraceSend(ctx)
	rf, err := c.client.V1Refunds.Create(tctx, params)
	if err != nil {
		return c.operationError("refund", req.IdempotencyKey, err, trace.MaybeSent())
	}
	switch rf.Status {
	case stripego.RefundStatusFailed, stripego.RefundStatusCanceled:
		return &payloom.OperationResult{TransactionID: rf.ID, FailureCode: payloom.FailureProcessingError,
			RawCode: string(rf.Status), Message: "The refund " + string(rf.Status) + "."}, nil
	}
	return &payloom.OperationResult{Succeeded: true, TransactionID: rf.ID, RawCode: string(rf.Status), Message: "Refunded"}, nil
}

// operationError turns a capture, void or refund error into a refusal
// (Stripe processed it and said no), a retryable CodeUnavailable error
// (not processed), or an error with an unknown outcome.
func (c *Connector) operationError(op, key string, err error, sent bool) (*payloom.OperationResult, error) {
	switch cl, se := classify(err, sent); cl {
	case classConflict:
		return nil, payloom.Errorf(payloom.CodeIdempotencyConflict, "stripe: idempotency key %q was used with other parameters", key)
	case classCard:
		return &payloom.OperationResult{FailureCode: payloom.FailureProcessingError, RawCode: rawCode(se), Message: processor.Redact(se.Msg)}, nil
	case classNotProcessed:
		if se == nil {
			return nil, processor.ErrUnavailable(c.opts.Name, op, "Stripe could not be reached")
		}
		if se.HTTPStatusCode == http.StatusTooManyRequests || se.HTTPStatusCode == http.StatusUnauthorized ||
			se.HTTPStatusCode == http.StatusForbidden {
			return nil, processor.ErrUnavailable(c.opts.Name, op, describe(op, se))
		}
		// 400/402/404: Stripe refused the operation (already captured,
		// canceled, amount too large ...).
		return &payloom.OperationResult{FailureCode: payloom.FailureProcessingError, RawCode: rawCode(se), Message: processor.Redact(se.Msg)}, nil
	default:
		if se != nil {
			return nil, &apiError{describe(op+" "+key, se) + "; outcome unknown", err}
		}
		return nil, fmt.Errorf("stripe: %s %s: no answer, outcome unknown: %w", op, key, err)
	}
}

// Lookup implements payloom.Processor. With a TransactionID it retrieves
// the PaymentIntent (strongly consistent). Otherwise it searches
// PaymentIntents by metadata payloom_attempt, and Stripe's search index
// lags writes (under a minute normally, up to an hour in incidents): a
// Found false for an attempt sent moments ago is not proof that Stripe
// never processed it. The reconciler must wait before trusting it.
func (c *Connector) Lookup(ctx context.Context, req *payloom.LookupRequest) (*payloom.LookupResult, error) {
	if req.TransactionID != "" {
		params := &stripego.PaymentIntentRetrieveParams{Expand: []*string{stripego.String("latest_charge")}}
		pi, err := c.client.V1PaymentIntents.Retrieve(ctx, req.TransactionID, params)
		if err != nil {
			var se *stripego.Error
			if errors.As(err, &se) && se.HTTPStatusCode == http.StatusNotFound {
				return &payloom.LookupResult{}, nil
			}
			return nil, lookupError(err)
		}
		return c.lookupResult(pi)
	}
	if err := checkKey(req.IdempotencyKey); err != nil {
		return nil, err
	}
	params := &stripego.PaymentIntentSearchParams{
		SearchParams: stripego.SearchParams{Query: fmt.Sprintf("metadata['%s']:'%s'", MetadataAttempt, req.IdempotencyKey),
			Limit: stripego.Int64(10)},
		Expand: []*string{stripego.String("data.latest_charge")},
	}
	for pi, err := range c.client.V1PaymentIntents.Search(ctx, params).All(ctx) {
		if err != nil {
			return nil, lookupError(err)
		}
		// Trust the metadata, not the search: a mock, or a loose query
		// match, may return someone else's intent.
		if pi.Metadata[MetadataAttempt] == req.IdempotencyKey {
			return c.lookupResult(pi)
		}
	}
	return &payloom.LookupResult{}, nil
}

func (c *Connector) lookupResult(pi *stripego.PaymentIntent) (*payloom.LookupResult, error) {
	out := &payloom.LookupResult{Found: true, Captured: pi.AmountReceived > 0, AmountCaptured: pi.AmountReceived}
	ch := pi.LatestCharge
	if pi.Status == stripego.PaymentIntentStatusCanceled && ch != nil && ch.Status == stripego.ChargeStatusSucceeded {
		// Authorized, then voided.
		pi2 := *pi
		pi2.Status = stripego.PaymentIntentStatusRequiresCapture
		r, err := c.intentResult(&pi2)
		if err != nil {
			return nil, err
		}
		out.Result, out.Voided = r, true
		return out, nil
	}
	r, err := c.intentResult(pi)
	if err != nil {
		return nil, err
	}
	out.Result = r
	return out, nil
}

func lookupError(err error) error {
	var se *stripego.Error
	if errors.As(err, &se) {
		return &apiError{describe("lookup", se), err}
	}
	return fmt.Errorf("stripe: lookup: %w", err)
}

// checkKey refuses keys Stripe would refuse or that would break the search
// query; Payloom's keys are IDs and always pass.
func checkKey(key string) error {
	switch {
	case key == "":
		return payloom.Errorf(payloom.CodeValidation, "stripe: an idempotency key is required")
	case len(key) > 200 || strings.ContainsAny(key, `'"\ `):
		return payloom.Errorf(payloom.CodeValidation, "stripe: idempotency key %q is not usable with Stripe", key)
	}
	return nil
}

func rawCode(se *stripego.Error) string {
	s := string(se.Code)
	if se.DeclineCode != "" {
		s += "/" + string(se.DeclineCode)
	}
	if s == "" {
		s = string(se.Type)
	}
	return s
}

// declined builds the decline of a Stripe card error.
func declined(se *stripego.Error) *payloom.AuthorizeResult {
	return processor.Declined(DeclineFor(string(se.Code), string(se.DeclineCode)), rawCode(se))
}
