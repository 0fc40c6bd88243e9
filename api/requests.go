package api

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/payloom/payloom"
)

// Limits of request fields, in characters (Unicode code points).
const (
	maxMetadataKeys     = 20
	maxMetadataKeyLen   = 40
	maxMetadataValueLen = 500
	maxTextLen          = 500 // reference, description
	maxCustomerIDLen    = 255
	maxDescriptorLen    = 22
	maxHolderNameLen    = 200
	maxIDLen            = 255 // any object ID a client sends
)

// The request bodies as they travel on the wire. Pointers tell a missing
// field from a zero one; decodeInto fills them strictly.

type paymentCreateBody struct {
	MerchantID          *string            `json:"merchant_id"`
	Amount              *int64             `json:"amount"`
	Currency            *string            `json:"currency"`
	PaymentMethod       *paymentMethodBody `json:"payment_method"`
	CaptureMethod       *string            `json:"capture_method"`
	CustomerID          *string            `json:"customer_id"`
	Reference           *string            `json:"reference"`
	Description         *string            `json:"description"`
	StatementDescriptor *string            `json:"statement_descriptor"`
	Processor           *string            `json:"processor"`
	SavePaymentMethod   *bool              `json:"save_payment_method"`
	Metadata            map[string]string  `json:"metadata"`
	// The hosted page's options (checkout.go).
	LineItems  *[]lineItemBody `json:"line_items"`
	SuccessURL *string         `json:"success_url"`
	FailureURL *string         `json:"failure_url"`
	ReturnURL  *string         `json:"return_url"`
	ExpiresIn  *string         `json:"expires_in"`
	ExpiresAt  *string         `json:"expires_at"`
}

type paymentMethodBody struct {
	Type *string               `json:"type"`
	Card *paymentMethodCardRef `json:"card"`
}

// paymentMethodCardRef names the card of a payment in one of three ways:
// a token, a saved payment method, or (with the raw_card_data permission
// only) the card itself, which the API tokenizes before anything else sees
// the request.
type paymentMethodCardRef struct {
	Token         *string         `json:"token"`
	PaymentMethod *string         `json:"payment_method"`
	Number        *payloom.Secret `json:"number"`
	ExpMonth      *int            `json:"exp_month"`
	ExpYear       *int            `json:"exp_year"`
	CVC           *payloom.Secret `json:"cvc"`
	HolderName    *string         `json:"holder_name"`
}

// raw reports whether the card is sent as raw card data.
func (c *paymentMethodCardRef) raw() bool {
	return c.Number != nil || c.ExpMonth != nil || c.ExpYear != nil || c.CVC != nil || c.HolderName != nil
}

type captureBody struct {
	MerchantID *string `json:"merchant_id"`
	Amount     *int64  `json:"amount"`
}

type cancelBody struct {
	MerchantID *string `json:"merchant_id"`
}

type refundCreateBody struct {
	MerchantID *string           `json:"merchant_id"`
	PaymentID  *string           `json:"payment_id"`
	Amount     *int64            `json:"amount"`
	Reason     *string           `json:"reason"`
	Metadata   map[string]string `json:"metadata"`
}

type tokenCreateBody struct {
	MerchantID *string   `json:"merchant_id"`
	Card       *cardBody `json:"card"`
}

type cardBody struct {
	Number     *payloom.Secret `json:"number"`
	ExpMonth   *int            `json:"exp_month"`
	ExpYear    *int            `json:"exp_year"`
	CVC        *payloom.Secret `json:"cvc"`
	HolderName *string         `json:"holder_name"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func required(param string) error {
	return payloom.FieldError(param, "%s is required", param)
}

func runes(s string) int { return utf8.RuneCountInString(s) }

// decodeMerchantID checks the optional merchant_id of a body. Whether it is
// required and must match is decided with the API key (resolveScope).
func decodeMerchantID(p *string) (string, error) {
	if p == nil {
		return "", nil
	}
	if err := checkID(*p, payloom.PrefixMerchant, "merchant_id"); err != nil {
		return "", err
	}
	return *p, nil
}

// checkID checks that a client-sent ID has the object's prefix and a sane
// length; a wrong one can never name an object.
func checkID(id, prefix, param string) error {
	if id == "" {
		return required(param)
	}
	if !payloom.HasPrefix(id, prefix) || len(id) > maxIDLen || !printableASCII(id) {
		return payloom.FieldError(param, "%s must be an ID starting with %q", param, prefix+"_")
	}
	return nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func checkAmount(p *int64, param string) error {
	if p != nil && *p < 1 {
		return payloom.FieldError(param, "%s must be a positive integer in the currency's minor unit", param)
	}
	return nil
}

func checkText(p *string, param string, limit int) error {
	if p != nil && runes(*p) > limit {
		return payloom.FieldError(param, "%s must be at most %d characters", param, limit)
	}
	return nil
}

func checkMetadata(m map[string]string) error {
	if len(m) > maxMetadataKeys {
		return payloom.FieldError("metadata", "metadata may have at most %d keys", maxMetadataKeys)
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if n := runes(k); n < 1 || n > maxMetadataKeyLen {
			return payloom.FieldError(childPath("metadata", k), "metadata keys must be 1 to %d characters", maxMetadataKeyLen)
		}
		if runes(m[k]) > maxMetadataValueLen {
			return payloom.FieldError(childPath("metadata", k), "metadata values must be at most %d characters", maxMetadataValueLen)
		}
	}
	return nil
}

// Params of the three ways to name a payment's card.
const (
	paramCardToken         = "payment_method[card][token]"
	paramCardPaymentMethod = "payment_method[card][payment_method]"
	paramCardNumber        = "payment_method[card][number]"
)

// decodePaymentCreate decodes and validates a POST /v1/payments body. It
// checks everything that does not need the store; the merchant's amount
// limits and the token's existence are checked by the caller with the
// scope. A body with raw card data returns it as raw, with req.CardToken
// empty: the caller checks the key's permission and tokenizes it.
func decodePaymentCreate(tree any) (merchantID string, req *payloom.PaymentCreate, raw *payloom.CardInput, err error) {
	var b paymentCreateBody
	if err := decodeInto(tree, &b); err != nil {
		return "", nil, nil, err
	}
	if merchantID, err = decodeMerchantID(b.MerchantID); err != nil {
		return "", nil, nil, err
	}
	req = &payloom.PaymentCreate{Metadata: b.Metadata}

	if b.Amount == nil {
		return "", nil, nil, required("amount")
	}
	if err := checkAmount(b.Amount, "amount"); err != nil {
		return "", nil, nil, err
	}
	req.Amount = *b.Amount

	if b.Currency == nil {
		return "", nil, nil, required("currency")
	}
	if req.Currency, err = payloom.ParseCurrency(*b.Currency); err != nil {
		return "", nil, nil, err
	}

	pm := b.PaymentMethod
	switch {
	case pm == nil:
		// No payment method: the shopper pays on the hosted page.
	case pm.Type == nil:
		return "", nil, nil, required("payment_method[type]")
	case *pm.Type != string(payloom.PaymentMethodTypeCard):
		return "", nil, nil, payloom.FieldError("payment_method[type]", "payment_method[type] must be \"card\"")
	case pm.Card == nil:
		return "", nil, nil, required("payment_method[card]")
	}
	if pm != nil {
		card := pm.Card
		ways := 0
		for _, set := range []bool{card.Token != nil, card.PaymentMethod != nil, card.raw()} {
			if set {
				ways++
			}
		}
		switch {
		case ways == 0:
			return "", nil, nil, required(paramCardToken)
		case ways > 1:
			return "", nil, nil, payloom.FieldError("payment_method[card]",
				"payment_method[card] takes exactly one of token, payment_method or the card's number")
		case card.Token != nil:
			if err := checkID(*card.Token, payloom.PrefixToken, paramCardToken); err != nil {
				return "", nil, nil, err
			}
			req.CardToken = *card.Token
		case card.PaymentMethod != nil:
			if err := checkID(*card.PaymentMethod, payloom.PrefixPaymentMethod, paramCardPaymentMethod); err != nil {
				return "", nil, nil, err
			}
			req.PaymentMethodID = *card.PaymentMethod
		default:
			switch {
			case card.Number == nil || card.Number.Reveal() == "":
				return "", nil, nil, required(paramCardNumber)
			case card.ExpMonth == nil:
				return "", nil, nil, required("payment_method[card][exp_month]")
			case card.ExpYear == nil:
				return "", nil, nil, required("payment_method[card][exp_year]")
			}
			raw = &payloom.CardInput{Number: *card.Number, ExpMonth: *card.ExpMonth, ExpYear: *card.ExpYear,
				HolderName: str(card.HolderName)}
			if card.CVC != nil {
				raw.CVC = *card.CVC
			}
		}
		req.PaymentMethodType = payloom.PaymentMethodTypeCard
		if b.SavePaymentMethod != nil {
			req.SavePaymentMethod = *b.SavePaymentMethod
		}
	}

	req.CaptureMethod = payloom.CaptureMethodAutomatic
	if b.CaptureMethod != nil {
		switch cm := payloom.CaptureMethod(*b.CaptureMethod); cm {
		case payloom.CaptureMethodAutomatic, payloom.CaptureMethodManual:
			req.CaptureMethod = cm
		default:
			return "", nil, nil, payloom.FieldError("capture_method", "capture_method must be \"automatic\" or \"manual\"")
		}
	}

	if err := checkText(b.CustomerID, "customer_id", maxCustomerIDLen); err != nil {
		return "", nil, nil, err
	}
	if err := checkText(b.Reference, "reference", maxTextLen); err != nil {
		return "", nil, nil, err
	}
	if err := checkText(b.Description, "description", maxTextLen); err != nil {
		return "", nil, nil, err
	}
	if err := checkText(b.StatementDescriptor, "statement_descriptor", maxDescriptorLen); err != nil {
		return "", nil, nil, err
	}
	if sd := str(b.StatementDescriptor); strings.ContainsAny(sd, "<>\"'") || strings.ContainsFunc(sd, isControl) {
		return "", nil, nil, payloom.FieldError("statement_descriptor",
			"statement_descriptor must not contain < > \" ' or control characters")
	}
	req.CustomerID = str(b.CustomerID)
	req.Reference = str(b.Reference)
	req.Description = str(b.Description)
	req.StatementDescriptor = str(b.StatementDescriptor)
	if b.Processor != nil && *b.Processor == "" {
		return "", nil, nil, payloom.FieldError("processor", "processor must not be empty")
	}
	if err := checkText(b.Processor, "processor", 64); err != nil {
		return "", nil, nil, err
	}
	req.Processor = str(b.Processor)

	if err := checkMetadata(b.Metadata); err != nil {
		return "", nil, nil, err
	}
	if err := decodePageOptions(&b, req); err != nil {
		return "", nil, nil, err
	}
	return merchantID, req, raw, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// encodePaymentCreate is the inverse of decodePaymentCreate: the body a
// client would send for req. The fuzz target checks the round trip; tests
// and the documentation's examples use it.
func encodePaymentCreate(merchantID string, req *payloom.PaymentCreate, raw *payloom.CardInput) []byte {
	card := map[string]any{}
	switch {
	case raw != nil:
		card["number"], card["exp_month"], card["exp_year"] = raw.Number.Reveal(), raw.ExpMonth, raw.ExpYear
		if raw.CVC != "" {
			card["cvc"] = raw.CVC.Reveal()
		}
		if raw.HolderName != "" {
			card["holder_name"] = raw.HolderName
		}
	case req.PaymentMethodID != "":
		card["payment_method"] = req.PaymentMethodID
	default:
		card["token"] = req.CardToken
	}
	m := map[string]any{
		"amount":         req.Amount,
		"currency":       req.Currency,
		"capture_method": req.CaptureMethod,
	}
	if raw != nil || req.PaymentMethodID != "" || req.CardToken != "" {
		m["payment_method"] = map[string]any{"type": req.PaymentMethodType, "card": card}
	}
	if req.SavePaymentMethod {
		m["save_payment_method"] = true
	}
	encodePageOptions(m, &req.PageOptions)
	if merchantID != "" {
		m["merchant_id"] = merchantID
	}
	for k, v := range map[string]string{"customer_id": req.CustomerID, "reference": req.Reference,
		"description": req.Description, "statement_descriptor": req.StatementDescriptor} {
		if v != "" {
			m[k] = v
		}
	}
	if req.Metadata != nil {
		m["metadata"] = req.Metadata
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func decodeCapture(tree any) (merchantID string, amount *int64, err error) {
	var b captureBody
	if err := decodeInto(tree, &b); err != nil {
		return "", nil, err
	}
	if merchantID, err = decodeMerchantID(b.MerchantID); err != nil {
		return "", nil, err
	}
	if err := checkAmount(b.Amount, "amount"); err != nil {
		return "", nil, err
	}
	return merchantID, b.Amount, nil
}

func decodeCancel(tree any) (merchantID string, err error) {
	var b cancelBody
	if err := decodeInto(tree, &b); err != nil {
		return "", err
	}
	return decodeMerchantID(b.MerchantID)
}

func decodeRefundCreate(tree any) (merchantID string, req *payloom.RefundCreate, err error) {
	var b refundCreateBody
	if err := decodeInto(tree, &b); err != nil {
		return "", nil, err
	}
	if merchantID, err = decodeMerchantID(b.MerchantID); err != nil {
		return "", nil, err
	}
	if b.PaymentID == nil {
		return "", nil, required("payment_id")
	}
	if err := checkID(*b.PaymentID, payloom.PrefixPayment, "payment_id"); err != nil {
		return "", nil, err
	}
	if err := checkAmount(b.Amount, "amount"); err != nil {
		return "", nil, err
	}
	if b.Reason != nil {
		switch *b.Reason {
		case payloom.RefundReasonDuplicate, payloom.RefundReasonFraudulent, payloom.RefundReasonRequestedByCustomer:
		default:
			return "", nil, payloom.FieldError("reason",
				"reason must be \"duplicate\", \"fraudulent\" or \"requested_by_customer\"")
		}
	}
	if err := checkMetadata(b.Metadata); err != nil {
		return "", nil, err
	}
	return merchantID, &payloom.RefundCreate{PaymentID: *b.PaymentID, Amount: b.Amount,
		Reason: str(b.Reason), Metadata: b.Metadata}, nil
}

// decodeToken decodes a POST /v1/tokens body: presence and types. The card
// rules (Luhn, expiry, CVC) are the vault's alone; its validation errors
// abandon the Idempotency-Key like any other. The CVC is optional. No
// message it returns contains a digit run that could be card data: values
// are never quoted, and keys are masked by displayKey.
func decodeToken(tree any) (merchantID string, card *payloom.CardInput, err error) {
	var b tokenCreateBody
	if err := decodeInto(tree, &b); err != nil {
		return "", nil, err
	}
	if merchantID, err = decodeMerchantID(b.MerchantID); err != nil {
		return "", nil, err
	}
	c := b.Card
	switch {
	case c == nil:
		return "", nil, required("card")
	case c.Number == nil || c.Number.Reveal() == "":
		return "", nil, required("card[number]")
	case c.ExpMonth == nil:
		return "", nil, required("card[exp_month]")
	case c.ExpYear == nil:
		return "", nil, required("card[exp_year]")
	}
	in := &payloom.CardInput{Number: *c.Number, ExpMonth: *c.ExpMonth, ExpYear: *c.ExpYear,
		HolderName: str(c.HolderName)}
	if c.CVC != nil {
		in.CVC = *c.CVC
	}
	return merchantID, in, nil
}

// maxEnabledEvents bounds enabled_events; there are far fewer event types,
// so a longer list is garbage whatever it holds.
const maxEnabledEvents = 100

type webhookEndpointCreateBody struct {
	MerchantID    *string   `json:"merchant_id"`
	URL           *string   `json:"url"`
	EnabledEvents *[]string `json:"enabled_events"`
	Description   *string   `json:"description"`
}

type webhookEndpointUpdateBody struct {
	MerchantID    *string   `json:"merchant_id"`
	URL           *string   `json:"url"`
	EnabledEvents *[]string `json:"enabled_events"`
	Enabled       *bool     `json:"enabled"`
	Description   *string   `json:"description"`
}

// merchantOnlyBody is the body of a write that takes no parameters besides
// merchant_id (delete, rotate_secret, resend). It may be empty.
type merchantOnlyBody struct {
	MerchantID *string `json:"merchant_id"`
}

func checkEnabledEvents(p *[]string) error {
	if p != nil && len(*p) > maxEnabledEvents {
		return payloom.FieldError("enabled_events", "enabled_events may list at most %d event types", maxEnabledEvents)
	}
	return nil
}

// decodeWebhookEndpointCreate decodes a POST /v1/webhook_endpoints body. It
// checks presence and types; the URL policy (https and public addresses in
// live mode), the event names and the description's length are the
// webhook service's to judge, with the same params.
func decodeWebhookEndpointCreate(tree any) (merchantID string, req *payloom.WebhookEndpointCreate, err error) {
	var b webhookEndpointCreateBody
	if err := decodeInto(tree, &b); err != nil {
		return "", nil, err
	}
	if merchantID, err = decodeMerchantID(b.MerchantID); err != nil {
		return "", nil, err
	}
	switch {
	case b.URL == nil || *b.URL == "":
		return "", nil, required("url")
	case b.EnabledEvents == nil:
		return "", nil, required("enabled_events")
	}
	if err := checkEnabledEvents(b.EnabledEvents); err != nil {
		return "", nil, err
	}
	return merchantID, &payloom.WebhookEndpointCreate{URL: *b.URL, EnabledEvents: *b.EnabledEvents,
		Description: str(b.Description)}, nil
}

// decodeWebhookEndpointUpdate decodes a PATCH /v1/webhook_endpoints/{id}
// body: every field is optional, and a missing one is left unchanged.
func decodeWebhookEndpointUpdate(tree any) (merchantID string, req *payloom.WebhookEndpointUpdate, err error) {
	var b webhookEndpointUpdateBody
	if err := decodeInto(tree, &b); err != nil {
		return "", nil, err
	}
	if merchantID, err = decodeMerchantID(b.MerchantID); err != nil {
		return "", nil, err
	}
	if err := checkEnabledEvents(b.EnabledEvents); err != nil {
		return "", nil, err
	}
	return merchantID, &payloom.WebhookEndpointUpdate{URL: b.URL, EnabledEvents: b.EnabledEvents,
		Enabled: b.Enabled, Description: b.Description}, nil
}

func decodeMerchantOnly(tree any) (merchantID string, err error) {
	var b merchantOnlyBody
	if err := decodeInto(tree, &b); err != nil {
		return "", err
	}
	return decodeMerchantID(b.MerchantID)
}
