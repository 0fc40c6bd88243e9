// Package adyen is Payloom's connector to Adyen's Checkout API (v71), with
// its own net/http client: POST /payments with raw card fields (which
// Adyen accepts from fully PCI-compliant merchants), then
// /payments/{pspReference}/captures, /cancels and /refunds. Every request
// carries X-API-Key and an Idempotency-Key (Adyen keeps keys at least 7
// days and answers a repeated key with the first answer).
//
// Adyen's modifications are asynchronous: a capture, cancel or refund is
// answered 201 with status "received", and its real outcome arrives later
// in a CAPTURE / CANCELLATION / REFUND webhook. This connector counts
// "received" as succeeded; a later failure must come from that webhook.
// Likewise an automatic capture (captureDelayHours 0) is confirmed only by
// webhook.
//
// Checkout has no lookup of a payment by the merchant's reference, so the
// connector declares Lookup false and answers it CodeNotSupported: an
// unknown outcome at Adyen cannot be settled by polling; the reconciler
// must wait for Adyen's AUTHORISATION webhook (or an operator).
//
// 3-D Secure is Adyen's redirect authentication: /payments answers
// resultCode RedirectShopper with an action {type redirect, method GET,
// url}, passed on as requires_action with that (absolute) URL; the shopper
// authenticates there and Adyen sends them back to the request's return URL
// with redirectResult appended; CompleteAuthentication sends it to
// /payments/details, whose resultCode (Authorised, Refused ...) is the
// authorization's answer, taken only if the answer names the payment being
// completed (a redirectResult comes from the browser, and may be another
// payment's). An action Payloom cannot send a browser to (a POST redirect,
// native 3-D Secure 2 without a URL) is a decline with
// authentication_required.
//
// Classes of failure: resultCode Refused/Cancelled is a decline, hard or
// soft by refusalReasonCode; resultCode Error, HTTP 400/401/403/404/422/429
// and a connection never made are failures (not processed, safe
// elsewhere); HTTP 5xx, a timeout, a dropped connection, an unreadable
// answer and resultCode Received/Pending are unknown outcomes (Go errors).
//
// A card number or CVC goes only into the /payments request body: never
// into a log line, a result or an error (text Adyen sends back is redacted
// of anything that looks like a card number).
package adyen

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/processor"
)

// Name is the connector's default name.
const Name = "adyen"

// TestURL is Adyen's Checkout test endpoint. Live endpoints carry a
// company prefix: https://{prefix}-checkout-live.adyenpayments.com/checkout/v71.
const TestURL = "https://checkout-test.adyen.com/v71"

// MetadataAttempt is the metadata key holding Payloom's attempt ID.
const MetadataAttempt = "payloom_attempt"

// Options configure the connector.
type Options struct {
	APIKey          string
	MerchantAccount string
	// BaseURL is the Checkout endpoint including the version (TestURL by
	// default).
	BaseURL string
	// ReturnURL is required by Adyen on /payments (where a shopper comes
	// back after a redirect).
	ReturnURL string
	// HTTPClient, if set, replaces the connector's own client.
	HTTPClient *http.Client
	// Timeout bounds every call when the caller's context has no earlier
	// deadline; default 30s.
	Timeout time.Duration
	// Name replaces "adyen" as the connector's name.
	Name string
}

// Connector is the payloom.Processor for Adyen Checkout.
type Connector struct {
	// Lookup answers CodeNotSupported.
	payloom.UnsupportedProcessor
	opts   Options
	client *http.Client
}

var _ payloom.Processor = (*Connector)(nil)

// New returns an Adyen connector.
func New(opts Options) *Connector {
	if opts.BaseURL == "" {
		opts.BaseURL = TestURL
	}
	opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	if opts.Name == "" {
		opts.Name = Name
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	return &Connector{opts: opts, client: client}
}

// Name implements payloom.Processor.
func (c *Connector) Name() string { return c.opts.Name }

// currencies are those whose minor unit at Adyen is ISO 4217's (Adyen
// differs for a few, e.g. IDR, CVE), so that Payloom's minor units can be
// sent as they are.
var currencies = []payloom.Currency{"AUD", "BRL", "CAD", "CHF", "CZK", "DKK", "EUR", "GBP", "HKD", "JPY",
	"MXN", "NOK", "NZD", "PLN", "SEK", "SGD", "USD", "ZAR"}

// Capabilities implements payloom.Processor: no Lookup (see the package
// comment); 3-D Secure by redirect, completed with /payments/details.
func (c *Connector) Capabilities() payloom.Capabilities {
	return payloom.Capabilities{
		PaymentMethods: []payloom.PaymentMethodType{payloom.PaymentMethodTypeCard},
		Currencies:     currencies,
		ManualCapture:  true, PartialCapture: true, PartialRefund: true,
		ThreeDS: true,
	}
}

// Wire types. paymentRequest holds a full card number: it is encoded and
// sent, never printed.
type amount struct {
	Currency string `json:"currency"`
	Value    int64  `json:"value"`
}

type paymentMethod struct {
	Type        string `json:"type"`
	Number      string `json:"number"`
	ExpiryMonth string `json:"expiryMonth"`
	ExpiryYear  string `json:"expiryYear"`
	CVC         string `json:"cvc,omitempty"`
	HolderName  string `json:"holderName,omitempty"`
}

type paymentRequest struct {
	Amount             amount            `json:"amount"`
	Reference          string            `json:"reference"`
	MerchantAccount    string            `json:"merchantAccount"`
	PaymentMethod      paymentMethod     `json:"paymentMethod"`
	ReturnURL          string            `json:"returnUrl"`
	ShopperInteraction string            `json:"shopperInteraction"`
	CaptureDelayHours  *int              `json:"captureDelayHours,omitempty"`
	AdditionalData     map[string]string `json:"additionalData,omitempty"`
	ShopperStatement   string            `json:"shopperStatement,omitempty"`
	Metadata           map[string]string `json:"metadata"`
}

type paymentResponse struct {
	PspReference      string            `json:"pspReference"`
	ResultCode        string            `json:"resultCode"`
	RefusalReason     string            `json:"refusalReason"`
	RefusalReasonCode string            `json:"refusalReasonCode"`
	MerchantReference string            `json:"merchantReference"`
	AdditionalData    map[string]string `json:"additionalData"`
	Action            *struct {
		Type   string `json:"type"`
		URL    string `json:"url"`
		Method string `json:"method"`
		// Data is the form a POST redirect must send.
		Data map[string]string `json:"data"`
	} `json:"action"`
}

// detailsRequest is the body of /payments/details.
type detailsRequest struct {
	Details map[string]string `json:"details"`
}

type modificationRequest struct {
	MerchantAccount string  `json:"merchantAccount"`
	Reference       string  `json:"reference"`
	Amount          *amount `json:"amount,omitempty"`
}

type modificationResponse struct {
	PspReference        string `json:"pspReference"`
	PaymentPspReference string `json:"paymentPspReference"`
	Status              string `json:"status"`
}

// apiError is Adyen's error body (serviceError).
type apiError struct {
	Status       int    `json:"status"`
	ErrorCode    string `json:"errorCode"`
	Message      string `json:"message"`
	ErrorType    string `json:"errorType"`
	PspReference string `json:"pspReference"`
}

type response struct {
	status int
	header http.Header
	body   []byte
}

var errNotSent = errors.New("adyen: not sent")

// call POSTs a JSON body. It returns errNotSent (wrapped) when no
// connection was made; any other error means the request may have
// arrived. The body never appears in an error.
func (c *Connector) call(ctx context.Context, path, key string, body any) (*response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	ctx, trace := processor.TraceSend(ctx)
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("adyen: encoding %s: %w", path, errNotSent)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.opts.BaseURL+path, bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("adyen: %s: %w: %w", path, errNotSent, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-API-Key", c.opts.APIKey)
	req.Header.Set("Idempotency-Key", key)
	res, err := c.client.Do(req)
	if err != nil {
		if !trace.MaybeSent() {
			return nil, fmt.Errorf("adyen: POST %s: %w: %w", path, errNotSent, err)
		}
		return nil, fmt.Errorf("adyen: POST %s: no answer, outcome unknown: %w", path, err)
	}
	defer res.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("adyen: POST %s: answer cut short, outcome unknown: %w", path, err)
	}
	return &response{status: res.StatusCode, header: res.Header, body: rb}, nil
}

// failure reads a non-2xx answer: whether Adyen promises it did not
// process the request, its error code, and a description that is safe to
// show (no request data; Adyen's text redacted).
func (r *response) failure() (notProcessed bool, raw, detail string) {
	var e apiError
	json.Unmarshal(r.body, &e)
	raw = e.ErrorCode
	if raw == "" {
		raw = "http_" + strconv.Itoa(r.status)
	}
	detail = strings.Join(strings.Fields(fmt.Sprintf("HTTP %d %s %s", r.status, e.ErrorType, raw)), " ")
	if e.Message != "" {
		detail += ": " + processor.Redact(e.Message)
	}
	if t := r.header.Get("Transient-Error"); t != "" {
		detail += " (Transient-Error: " + t + ")"
	}
	switch r.status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound,
		http.StatusUnprocessableEntity, http.StatusTooManyRequests:
		// Validation, security and rate-limit errors are refused before
		// any processing, except 704: another request with this key is
		// in progress, and it may authorize.
		return raw != "704", raw, detail
	}
	return false, raw, detail
}

// Authorize implements payloom.Processor with POST /payments.
func (c *Connector) Authorize(ctx context.Context, req *payloom.AuthorizeRequest) (*payloom.AuthorizeResult, error) {
	if err := checkKey(req.IdempotencyKey); err != nil {
		return nil, err
	}
	if req.Card == nil {
		return processor.Failed(processor.RawNotSent, "No card was given."), nil
	}
	if !supported(req.Currency) {
		return processor.Failed("currency_not_supported", "The adyen connector does not take "+string(req.Currency)+"."), nil
	}
	body := paymentRequest{
		Amount:          amount{Currency: string(req.Currency), Value: req.Amount},
		Reference:       req.Reference,
		MerchantAccount: c.opts.MerchantAccount,
		PaymentMethod: paymentMethod{Type: "scheme", Number: req.Card.Number.Reveal(),
			ExpiryMonth: fmt.Sprintf("%02d", req.Card.ExpMonth), ExpiryYear: strconv.Itoa(req.Card.ExpYear),
			CVC: req.Card.CVC.Reveal(), HolderName: req.Card.HolderName},
		ReturnURL:          c.returnURL(req.ReturnURL),
		ShopperInteraction: "Ecommerce",
		ShopperStatement:   req.StatementDescriptor,
		Metadata:           map[string]string{MetadataAttempt: req.IdempotencyKey},
	}
	if req.Capture {
		zero := 0
		body.CaptureDelayHours = &zero
	} else {
		body.AdditionalData = map[string]string{"manualCapture": "true"}
	}
	res, err := c.call(ctx, "/payments", req.IdempotencyKey, &body)
	if errors.Is(err, errNotSent) {
		return processor.Failed(processor.RawNotSent, "Adyen could not be reached."), nil
	}
	if err != nil {
		return nil, err
	}
	if res.status != http.StatusOK {
		notProcessed, raw, detail := res.failure()
		if notProcessed {
			return processor.Failed(raw, "Adyen did not process the payment: "+detail), nil
		}
		return nil, fmt.Errorf("adyen: authorize %s: %s; outcome unknown", req.IdempotencyKey, detail)
	}
	var p paymentResponse
	if err := json.Unmarshal(res.body, &p); err != nil {
		return nil, fmt.Errorf("adyen: authorize %s: unreadable answer, outcome unknown: %w", req.IdempotencyKey, err)
	}
	return paymentResult(&p)
}

func paymentResult(p *paymentResponse) (*payloom.AuthorizeResult, error) {
	switch p.ResultCode {
	case "Authorised":
		return &payloom.AuthorizeResult{
			Status: payloom.AuthorizationApproved, TransactionID: p.PspReference,
			AuthorizationCode:    p.AdditionalData["authCode"],
			AVSResult:            p.AdditionalData["avsResultRaw"],
			CVVResult:            p.AdditionalData["cvcResultRaw"],
			NetworkTransactionID: p.AdditionalData["networkTxReference"],
			RawCode:              p.ResultCode, Message: "Approved",
		}, nil
	case "Refused", "Cancelled":
		r := processor.Declined(DeclineFor(p.RefusalReasonCode), p.ResultCode+"/"+p.RefusalReasonCode)
		r.TransactionID = p.PspReference
		return r, nil
	case "Error":
		r := processor.Failed(p.ResultCode+"/"+p.RefusalReasonCode, p.RefusalReason)
		r.TransactionID = p.PspReference
		return r, nil
	case "RedirectShopper", "IdentifyShopper", "ChallengeShopper":
		if u, ok := redirectURL(p); ok {
			return &payloom.AuthorizeResult{Status: payloom.AuthorizationRequiresAction, TransactionID: p.PspReference,
				FailureCode: payloom.FailureAuthentication, RawCode: p.ResultCode,
				Message: "The card requires 3-D Secure authentication.", RedirectURL: u}, nil
		}
		// A native 3-D Secure 2 action has no URL to send the shopper to,
		// and a POST redirect needs a form Payloom does not serve: the
		// shopper cannot authenticate, and nothing is authorized.
		d := processor.Declined(processor.DeclineAuthenticationRequired, p.ResultCode)
		d.TransactionID = p.PspReference
		return d, nil
	}
	// Received, Pending, PresentToShopper ...: not final.
	return nil, fmt.Errorf("adyen: payment %s answered %q; outcome unknown until Adyen's webhook", p.PspReference, p.ResultCode)
}

// maxRedirectURL bounds the URL of a redirect action (Adyen's carry the
// authentication's state in the query).
const maxRedirectURL = 8192

// redirectURL returns the URL of a GET redirect action (no method given is
// a GET too, if there is no form to post): absolute http(s) with a host and
// no credentials, as a browser can be sent to it.
func redirectURL(p *paymentResponse) (string, bool) {
	a := p.Action
	if a == nil || a.Type != "redirect" || len(a.URL) > maxRedirectURL {
		return "", false
	}
	if !strings.EqualFold(a.Method, http.MethodGet) && (a.Method != "" || len(a.Data) > 0) {
		return "", false
	}
	u, err := url.Parse(a.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return "", false
	}
	return a.URL, true
}

// returnURL is where Adyen sends the shopper back after a redirect: the
// request's own (Payloom's landing for that payment), if it is an absolute
// URL Adyen can use, else Options.ReturnURL.
func (c *Connector) returnURL(perRequest string) string {
	if u, err := url.Parse(perRequest); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
		return perRequest
	}
	return c.opts.ReturnURL
}

// detailsKeys are the parameters Adyen appends to the return URL after a
// redirect that /payments/details takes; anything else on that URL is not
// Adyen's and is not sent. maxDetail bounds one value.
var detailsKeys = []string{"redirectResult", "payload"}

const maxDetail = 16 << 10

// CompleteAuthentication implements payloom.Processor with
// /payments/details: the redirectResult the shopper came back with gives
// the authorization's answer, mapped like /payments'. Without one the
// shopper has not come back, and nothing is sent: requires_action. Adyen
// refusing the details (4xx: forged, expired, already used) is
// CodeValidation, and so is an answer about another payment (belongsTo);
// a lost answer is an unknown outcome, and the same details may be sent
// again under the same Idempotency-Key (derived from the attempt and the
// details, so that forged details sent first cannot take the key of the
// real ones).
func (c *Connector) CompleteAuthentication(ctx context.Context, req *payloom.AuthenticationRequest) (*payloom.AuthorizeResult, error) {
	if err := checkKey(req.IdempotencyKey); err != nil {
		return nil, err
	}
	details := map[string]string{}
	for _, k := range detailsKeys {
		v := req.Details[k]
		if v == "" {
			continue
		}
		if len(v) > maxDetail {
			return nil, payloom.Errorf(payloom.CodeValidation, "adyen: %s is longer than %d bytes", k, maxDetail)
		}
		details[k] = v
	}
	if len(details) == 0 {
		return &payloom.AuthorizeResult{Status: payloom.AuthorizationRequiresAction, TransactionID: req.TransactionID,
			FailureCode: payloom.FailureAuthentication, RawCode: "RedirectShopper",
			Message: "The shopper has not come back from 3-D Secure authentication."}, nil
	}
	key := detailsKey(req.IdempotencyKey, details)
	res, err := c.call(ctx, "/payments/details", key, &detailsRequest{Details: details})
	if errors.Is(err, errNotSent) {
		return nil, processor.ErrUnavailable(c.opts.Name, "authentication", "Adyen could not be reached")
	}
	if err != nil {
		return nil, err
	}
	if res.status != http.StatusOK {
		notProcessed, _, detail := res.failure()
		switch {
		case !notProcessed:
			return nil, fmt.Errorf("adyen: payment details for %s: %s; outcome unknown", req.IdempotencyKey, detail)
		case res.status == http.StatusTooManyRequests || res.status == http.StatusUnauthorized || res.status == http.StatusForbidden:
			return nil, processor.ErrUnavailable(c.opts.Name, "authentication", detail)
		}
		return nil, payloom.Errorf(payloom.CodeValidation, "adyen: the authentication's details were refused: %s", detail)
	}
	var p paymentResponse
	if err := json.Unmarshal(res.body, &p); err != nil {
		return nil, fmt.Errorf("adyen: payment details for %s: unreadable answer, outcome unknown: %w", req.IdempotencyKey, err)
	}
	if err := belongsTo(&p, req); err != nil {
		return nil, err
	}
	if p.PspReference == "" {
		p.PspReference = req.TransactionID
	}
	return paymentResult(&p)
}

// belongsTo checks that a /payments/details answer is about the payment
// being completed. The details come from a browser, and a redirectResult
// decides the payment it was issued for, whichever payment's return URL it
// is brought to: a shopper could finish a cheap payment's 3-D Secure and
// bring its redirectResult to an expensive one. So the answer must name
// this payment (its pspReference or our reference) and name no other;
// otherwise it decides nothing here (CodeValidation: the authentication
// stays open).
func belongsTo(p *paymentResponse, req *payloom.AuthenticationRequest) error {
	pspTies := p.PspReference != "" && p.PspReference == req.TransactionID
	refTies := p.MerchantReference != "" && p.MerchantReference == req.Reference
	switch {
	case p.PspReference != "" && req.TransactionID != "" && p.PspReference != req.TransactionID,
		p.MerchantReference != "" && p.MerchantReference != req.Reference:
		return payloom.Errorf(payloom.CodeValidation, "adyen: the authentication's details are for another payment")
	case !pspTies && !refTies:
		return payloom.Errorf(payloom.CodeValidation, "adyen: the answer to the authentication's details names no payment of ours")
	}
	return nil
}

// detailsKey is the Idempotency-Key of a /payments/details call: the
// attempt's key (cut to leave room) and a hash of the attempt's key and
// the details, at most 64 characters.
func detailsKey(attemptKey string, details map[string]string) string {
	b, _ := json.Marshal(details) // sorted keys: canonical
	h := sha256.Sum256(append([]byte(attemptKey+"\n"), b...))
	prefix := attemptKey
	if len(prefix) > 40 {
		prefix = prefix[:40]
	}
	return prefix + "-" + hex.EncodeToString(h[:])[:23]
}

// Capture implements payloom.Processor with /payments/{psp}/captures.
func (c *Connector) Capture(ctx context.Context, req *payloom.CaptureRequest) (*payloom.OperationResult, error) {
	if err := checkKey(req.IdempotencyKey); err != nil {
		return nil, err
	}
	return c.modify(ctx, "capture", "captures", req.IdempotencyKey, req.TransactionID,
		&amount{Currency: string(req.Currency), Value: req.Amount})
}

// Void implements payloom.Processor with /payments/{psp}/cancels.
func (c *Connector) Void(ctx context.Context, req *payloom.VoidRequest) (*payloom.OperationResult, error) {
	if err := checkKey(req.IdempotencyKey); err != nil {
		return nil, err
	}
	return c.modify(ctx, "void", "cancels", req.IdempotencyKey, req.TransactionID, nil)
}

// Refund implements payloom.Processor with /payments/{psp}/refunds.
func (c *Connector) Refund(ctx context.Context, req *payloom.RefundRequest) (*payloom.OperationResult, error) {
	if err := checkKey(req.IdempotencyKey); err != nil {
		return nil, err
	}
	return c.modify(ctx, "refund", "refunds", req.IdempotencyKey, req.TransactionID,
		&amount{Currency: string(req.Currency), Value: req.Amount})
}

// modify sends a modification. "received" is success (the outcome comes by
// webhook); a 422 and the like are refusals; "not sent" and 429/401/403
// are retryable CodeUnavailable errors; 5xx and lost answers are unknown.
func (c *Connector) modify(ctx context.Context, op, endpoint, key, psp string, amt *amount) (*payloom.OperationResult, error) {
	if psp == "" || strings.ContainsAny(psp, "/?#") {
		return nil, payloom.Errorf(payloom.CodeValidation, "adyen: %q is not a pspReference", psp)
	}
	body := modificationRequest{MerchantAccount: c.opts.MerchantAccount, Reference: key, Amount: amt}
	res, err := c.call(ctx, "/payments/"+url.PathEscape(psp)+"/"+endpoint, key, &body)
	if errors.Is(err, errNotSent) {
		return nil, processor.ErrUnavailable(c.opts.Name, op, "Adyen could not be reached")
	}
	if err != nil {
		return nil, err
	}
	if res.status/100 == 2 {
		var m modificationResponse
		if err := json.Unmarshal(res.body, &m); err != nil || m.Status != "received" {
			return nil, fmt.Errorf("adyen: %s %s: unexpected answer (status %q), outcome unknown", op, key, m.Status)
		}
		return &payloom.OperationResult{Succeeded: true, TransactionID: m.PspReference, RawCode: m.Status,
			Message: "Received by Adyen; the outcome arrives by webhook."}, nil
	}
	notProcessed, raw, detail := res.failure()
	switch {
	case !notProcessed:
		return nil, fmt.Errorf("adyen: %s %s: %s; outcome unknown", op, key, detail)
	case res.status == http.StatusTooManyRequests || res.status == http.StatusUnauthorized || res.status == http.StatusForbidden:
		return nil, processor.ErrUnavailable(c.opts.Name, op, detail)
	}
	return &payloom.OperationResult{FailureCode: payloom.FailureProcessingError, RawCode: raw,
		Message: "Adyen refused the " + op + ": " + detail}, nil
}

// checkKey: Adyen takes idempotency keys of at most 64 characters.
func checkKey(key string) error {
	if key == "" || len(key) > 64 {
		return payloom.Errorf(payloom.CodeValidation, "adyen: an idempotency key of 1 to 64 characters is required")
	}
	return nil
}

func supported(c payloom.Currency) bool {
	for _, s := range currencies {
		if s == c {
			return true
		}
	}
	return false
}
