package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/processor"
)

// Name is the connector's default name.
const Name = "simulator"

// isoDeclines maps the simulator's ISO 8583 response codes to Payloom's
// canonical decline codes; the class comes from processor's table. A code
// not listed is a soft generic decline.
var isoDeclines = map[string]string{
	"01": processor.DeclineCallIssuer,
	"04": processor.DeclinePickupCard,
	"05": processor.DeclineDoNotHonor,
	"12": processor.DeclineTransactionNotAllowed,
	"13": processor.DeclineInvalidAmount,
	"14": processor.DeclineInvalidNumber,
	"41": processor.DeclineLostCard,
	"43": processor.DeclineStolenCard,
	"51": payloom.DeclineInsufficientFunds,
	"54": payloom.DeclineExpiredCard,
	"57": processor.DeclineTransactionNotAllowed,
	"59": payloom.DeclineFraudulent,
	"61": processor.DeclineCardVelocityExceeded,
	"62": processor.DeclineRestrictedCard,
	"65": processor.DeclineWithdrawalCountLimit,
	"91": processor.DeclineIssuerNotAvailable,
	"96": payloom.DeclineProcessingError,
	"1A": processor.DeclineAuthenticationRequired,
	"N7": payloom.DeclineIncorrectCVC,
}

// DeclineFor returns the canonical decline code of a simulator response
// code.
func DeclineFor(responseCode string) string {
	if c, ok := isoDeclines[responseCode]; ok {
		return c
	}
	return payloom.DeclineGeneric
}

// ConnectorOptions configure a Connector.
type ConnectorOptions struct {
	// Name is the connector's name in payments (default "simulator"):
	// several simulators stand for several processors.
	Name string
	// HTTPClient, if set, replaces the connector's own client.
	HTTPClient *http.Client
	// Timeout bounds every call when the caller's context has no earlier
	// deadline; default 30s. A call that hits it has an unknown outcome.
	Timeout time.Duration
}

// Connector is the payloom.Processor of a simulator.
type Connector struct {
	// CompleteAuthentication answers CodeNotSupported: no 3-D Secure.
	payloom.UnsupportedProcessor
	base   string
	name   string
	client *http.Client
	limit  time.Duration
}

var _ payloom.Processor = (*Connector)(nil)

// NewConnector returns a connector to the simulator at baseURL
// ("http://127.0.0.1:7070").
func NewConnector(baseURL string, opts ConnectorOptions) *Connector {
	c := &Connector{base: strings.TrimRight(baseURL, "/"), name: opts.Name, client: opts.HTTPClient, limit: opts.Timeout}
	if c.name == "" {
		c.name = Name
	}
	if c.client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		c.client = &http.Client{Transport: t}
	}
	if c.limit <= 0 {
		c.limit = 30 * time.Second
	}
	return c
}

// Name implements payloom.Processor.
func (c *Connector) Name() string { return c.name }

// Capabilities implements payloom.Processor: cards in every currency,
// manual and partial capture, partial refunds and Lookup; no 3-D Secure.
func (c *Connector) Capabilities() payloom.Capabilities {
	return payloom.Capabilities{
		PaymentMethods: []payloom.PaymentMethodType{payloom.PaymentMethodTypeCard},
		ManualCapture:  true, PartialCapture: true, PartialRefund: true, Lookup: true,
	}
}

// response is one HTTP exchange with the simulator.
type response struct {
	status int
	body   []byte
}

// errNotSent marks a call that never reached the simulator.
var errNotSent = errors.New("simulator: not sent")

// call sends a request. It returns errNotSent (wrapped) when no connection
// was ever made, and any other error when the request may have arrived.
// The body is never part of an error.
func (c *Connector) call(ctx context.Context, method, path string, body any) (*response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.limit)
	defer cancel()
	ctx, trace := processor.TraceSend(ctx)
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(mustMarshal(body))
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("simulator: %s %s: %w: %w", method, path, errNotSent, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.client.Do(req)
	if err != nil {
		if !trace.MaybeSent() {
			return nil, fmt.Errorf("simulator: %s %s: %w: %w", method, path, errNotSent, err)
		}
		return nil, fmt.Errorf("simulator: %s %s: no answer, outcome unknown: %w", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("simulator: %s %s: answer cut short, outcome unknown: %w", method, path, err)
	}
	return &response{status: res.StatusCode, body: b}, nil
}

// notProcessed reports whether an error answer carries the simulator's
// promise that nothing was processed, with its code and message.
func (r *response) notProcessed() (bool, string, string) {
	var e errorAnswer
	if json.Unmarshal(r.body, &e) != nil || e.Error.Code == "" {
		return false, "", ""
	}
	return !e.Error.Processed, e.Error.Code, e.Error.Message
}

// Authorize implements payloom.Processor. A simulator that cannot be
// reached, or that answers 400, 429 or 503 "not processed", gives a failed
// result (safe elsewhere); a dropped connection, a timeout or an answer
// that cannot be read gives an error (outcome unknown).
func (c *Connector) Authorize(ctx context.Context, req *payloom.AuthorizeRequest) (*payloom.AuthorizeResult, error) {
	if req == nil || req.IdempotencyKey == "" {
		return nil, payloom.Errorf(payloom.CodeValidation, "simulator: an idempotency key is required")
	}
	if req.Card == nil {
		return processor.Failed(processor.RawNotSent, "No card was given."), nil
	}
	body := authorizeBody{
		IdempotencyKey: req.IdempotencyKey, Reference: req.Reference, Amount: req.Amount,
		Currency: string(req.Currency), Capture: req.Capture,
		Card: cardBody{Number: req.Card.Number.Reveal(), ExpMonth: req.Card.ExpMonth, ExpYear: req.Card.ExpYear,
			CVC: req.Card.CVC.Reveal(), HolderName: req.Card.HolderName},
	}
	res, err := c.call(ctx, http.MethodPost, "/authorize", &body)
	if errors.Is(err, errNotSent) {
		return processor.Failed(processor.RawNotSent, "The simulator could not be reached."), nil
	}
	if err != nil {
		return nil, err
	}
	switch {
	case res.status == http.StatusOK:
		var a authorizeAnswer
		if err := json.Unmarshal(res.body, &a); err != nil {
			return nil, fmt.Errorf("simulator: authorize %s: unreadable answer, outcome unknown: %w", req.IdempotencyKey, err)
		}
		return authorizeResult(&a)
	case res.status == http.StatusConflict:
		return nil, payloom.Errorf(payloom.CodeIdempotencyConflict,
			"simulator: idempotency key %q was used for a different authorization", req.IdempotencyKey)
	}
	if np, code, msg := res.notProcessed(); np && (res.status == http.StatusBadRequest ||
		res.status == http.StatusTooManyRequests || res.status >= 500) {
		// This request was not processed. For a 429 an earlier one with
		// the same key may have been: the engine, which knows whether
		// this was the key's first send, decides what that means.
		return processor.Failed(code, msg), nil
	}
	return nil, fmt.Errorf("simulator: authorize %s: HTTP %d without a not-processed promise, outcome unknown", req.IdempotencyKey, res.status)
}

func authorizeResult(a *authorizeAnswer) (*payloom.AuthorizeResult, error) {
	switch a.Status {
	case statusApproved:
		return &payloom.AuthorizeResult{
			Status: payloom.AuthorizationApproved, TransactionID: a.TransactionID,
			AuthorizationCode: a.AuthorizationCode, AVSResult: a.AVSResult, CVVResult: a.CVVResult,
			NetworkTransactionID: a.NetworkTransactionID, RawCode: a.ResponseCode, Message: a.Message,
		}, nil
	case statusDeclined:
		res := processor.Declined(DeclineFor(a.ResponseCode), a.ResponseCode)
		res.TransactionID, res.CVVResult = a.TransactionID, a.CVVResult
		return res, nil
	}
	return nil, fmt.Errorf("simulator: unknown authorization status %q, outcome unknown", a.Status)
}

// Capture implements payloom.Processor.
func (c *Connector) Capture(ctx context.Context, req *payloom.CaptureRequest) (*payloom.OperationResult, error) {
	if req == nil {
		return nil, payloom.Errorf(payloom.CodeValidation, "simulator: no request")
	}
	return c.operate(ctx, opCapture, &operationBody{IdempotencyKey: req.IdempotencyKey, TransactionID: req.TransactionID,
		Amount: req.Amount, Currency: string(req.Currency)})
}

// Void implements payloom.Processor.
func (c *Connector) Void(ctx context.Context, req *payloom.VoidRequest) (*payloom.OperationResult, error) {
	if req == nil {
		return nil, payloom.Errorf(payloom.CodeValidation, "simulator: no request")
	}
	return c.operate(ctx, opVoid, &operationBody{IdempotencyKey: req.IdempotencyKey, TransactionID: req.TransactionID})
}

// Refund implements payloom.Processor.
func (c *Connector) Refund(ctx context.Context, req *payloom.RefundRequest) (*payloom.OperationResult, error) {
	if req == nil {
		return nil, payloom.Errorf(payloom.CodeValidation, "simulator: no request")
	}
	return c.operate(ctx, opRefund, &operationBody{IdempotencyKey: req.IdempotencyKey, TransactionID: req.TransactionID,
		Amount: req.Amount, Currency: string(req.Currency)})
}

// operate sends a capture, void or refund. A refusal is a result; "not
// sent" and "not processed" are CodeUnavailable errors (retry with the same
// key); anything else that goes wrong is an error with an unknown outcome.
func (c *Connector) operate(ctx context.Context, op string, body *operationBody) (*payloom.OperationResult, error) {
	if body.IdempotencyKey == "" {
		return nil, payloom.Errorf(payloom.CodeValidation, "simulator: an idempotency key is required")
	}
	res, err := c.call(ctx, http.MethodPost, "/"+op, body)
	if errors.Is(err, errNotSent) {
		return nil, processor.ErrUnavailable(c.name, op, "the simulator could not be reached")
	}
	if err != nil {
		return nil, err
	}
	switch res.status {
	case http.StatusOK:
		var a operationAnswer
		if err := json.Unmarshal(res.body, &a); err != nil {
			return nil, fmt.Errorf("simulator: %s %s: unreadable answer, outcome unknown: %w", op, body.IdempotencyKey, err)
		}
		switch a.Status {
		case statusSucceeded:
			return &payloom.OperationResult{Succeeded: true, TransactionID: a.TransactionID, RawCode: a.ResponseCode, Message: a.Message}, nil
		case statusRefused:
			return &payloom.OperationResult{FailureCode: payloom.FailureProcessingError, RawCode: a.ResponseCode,
				Message: processor.Redact(a.Message)}, nil
		}
		return nil, fmt.Errorf("simulator: %s %s: unknown status %q, outcome unknown", op, body.IdempotencyKey, a.Status)
	case http.StatusConflict:
		return nil, payloom.Errorf(payloom.CodeIdempotencyConflict,
			"simulator: idempotency key %q was used for a different %s", body.IdempotencyKey, op)
	}
	if np, _, msg := res.notProcessed(); np {
		if res.status == http.StatusBadRequest {
			return nil, payloom.Errorf(payloom.CodeValidation, "simulator: %s refused: %s", op, processor.Redact(msg))
		}
		if res.status >= 500 || res.status == http.StatusTooManyRequests {
			return nil, processor.ErrUnavailable(c.name, op, msg)
		}
	}
	return nil, fmt.Errorf("simulator: %s %s: HTTP %d, outcome unknown", op, body.IdempotencyKey, res.status)
}

// Lookup implements payloom.Processor with GET /lookup: the simulator
// keeps every authorization it processed (approved or declined) under its
// key, and nothing for a request it did not process.
func (c *Connector) Lookup(ctx context.Context, req *payloom.LookupRequest) (*payloom.LookupResult, error) {
	if req == nil || req.IdempotencyKey == "" {
		return nil, payloom.Errorf(payloom.CodeValidation, "simulator: an idempotency key is required")
	}
	res, err := c.call(ctx, http.MethodGet, "/lookup?idempotency_key="+url.QueryEscape(req.IdempotencyKey), nil)
	if err != nil {
		return nil, err
	}
	if res.status != http.StatusOK {
		return nil, fmt.Errorf("simulator: lookup %s: HTTP %d", req.IdempotencyKey, res.status)
	}
	var a lookupAnswer
	if err := json.Unmarshal(res.body, &a); err != nil {
		return nil, fmt.Errorf("simulator: lookup %s: unreadable answer: %w", req.IdempotencyKey, err)
	}
	if !a.Found || a.Authorization == nil {
		return &payloom.LookupResult{}, nil
	}
	r, err := authorizeResult(a.Authorization)
	if err != nil {
		return nil, err
	}
	return &payloom.LookupResult{Found: true, Result: r, Captured: a.AmountCaptured > 0,
		AmountCaptured: a.AmountCaptured, Voided: a.Voided}, nil
}
