package api

import (
	"context"

	"github.com/payloom/payloom"
)

// Customers, their saved payment methods and raw card data in payments
// (issue 4).

// Limits of customer fields the API checks before the engine normalizes
// them: generous bounds on the raw text, so that garbage is refused
// early and the engine's exact rules decide the rest.
const (
	maxCustomerTextLen = 500
)

type customerBody struct {
	MerchantID *string           `json:"merchant_id"`
	Name       *string           `json:"name"`
	Email      *string           `json:"email"`
	Phone      *string           `json:"phone"`
	Document   *string           `json:"document"`
	Reference  *string           `json:"reference"`
	Metadata   map[string]string `json:"metadata"`
}

func (b *customerBody) check() error {
	for _, f := range []struct {
		p    *string
		name string
	}{{b.Name, "name"}, {b.Email, "email"}, {b.Phone, "phone"}, {b.Document, "document"}, {b.Reference, "reference"}} {
		if err := checkText(f.p, f.name, maxCustomerTextLen); err != nil {
			return err
		}
	}
	return checkMetadata(b.Metadata)
}

func decodeCustomerCreate(tree any) (merchantID string, req *payloom.CustomerCreate, err error) {
	var b customerBody
	if err := decodeInto(tree, &b); err != nil {
		return "", nil, err
	}
	if merchantID, err = decodeMerchantID(b.MerchantID); err != nil {
		return "", nil, err
	}
	if err := b.check(); err != nil {
		return "", nil, err
	}
	return merchantID, &payloom.CustomerCreate{Name: str(b.Name), Email: str(b.Email), Phone: str(b.Phone),
		Document: str(b.Document), Reference: str(b.Reference), Metadata: b.Metadata}, nil
}

// decodeCustomerUpdate decodes a PATCH body: a missing field is unchanged,
// "" clears it; metadata merges, a key set to "" is removed.
func decodeCustomerUpdate(tree any) (merchantID string, req *payloom.CustomerUpdate, err error) {
	var b customerBody
	if err := decodeInto(tree, &b); err != nil {
		return "", nil, err
	}
	if merchantID, err = decodeMerchantID(b.MerchantID); err != nil {
		return "", nil, err
	}
	if err := b.check(); err != nil {
		return "", nil, err
	}
	return merchantID, &payloom.CustomerUpdate{Name: b.Name, Email: b.Email, Phone: b.Phone,
		Document: b.Document, Reference: b.Reference, Metadata: b.Metadata}, nil
}

func (s *server) createCustomer(c *call, tree any) (*writeOp, error) {
	merchantID, req, err := decodeCustomerCreate(tree)
	if err != nil {
		return nil, err
	}
	return &writeOp{merchantID: merchantID, exec: func(ctx context.Context, opKey string) (any, error) {
		return s.cust.CreateCustomer(ctx, c.scope, opKey, req)
	}}, nil
}

func (s *server) updateCustomer(c *call, tree any) (*writeOp, error) {
	merchantID, req, err := decodeCustomerUpdate(tree)
	if err != nil {
		return nil, err
	}
	id := c.r.PathValue("id")
	return &writeOp{merchantID: merchantID, exec: func(ctx context.Context, _ string) (any, error) {
		return s.cust.UpdateCustomer(ctx, c.scope, id, req)
	}}, nil
}

func (s *server) deleteCustomer(c *call, tree any) (*writeOp, error) {
	merchantID, err := decodeMerchantOnly(tree)
	if err != nil {
		return nil, err
	}
	id := c.r.PathValue("id")
	return &writeOp{merchantID: merchantID, exec: func(ctx context.Context, _ string) (any, error) {
		if err := s.cust.DeleteCustomer(ctx, c.scope, id); err != nil {
			return nil, err
		}
		return &deletedObject{ID: id, Object: "customer", Deleted: true}, nil
	}}, nil
}

func (s *server) retrieveCustomer(c *call) (any, error) {
	return s.cust.Customer(c.ctx(), c.scope, c.r.PathValue("id"))
}

func (s *server) listCustomers(c *call) (any, error) {
	lp, err := parseListParams(c.query, payloom.PrefixCustomer)
	if err != nil {
		return nil, err
	}
	f := payloom.CustomerFilter{ListParams: lp}
	if v, ok := param(c.query, "email"); ok {
		if v == "" || runes(v) > maxCustomerTextLen {
			return nil, payloom.FieldError("email", "email must be an e-mail address")
		}
		f.Email = &v
	}
	if v, ok := param(c.query, "reference"); ok {
		if runes(v) > maxCustomerTextLen {
			return nil, payloom.FieldError("reference", "reference must be at most %d characters", maxCustomerTextLen)
		}
		f.Reference = &v
	}
	return s.cust.ListCustomers(c.ctx(), c.scope, f)
}

func (s *server) listCustomerPaymentMethods(c *call) (any, error) {
	lp, err := parseListParams(c.query, payloom.PrefixPaymentMethod)
	if err != nil {
		return nil, err
	}
	return s.cust.ListPaymentMethods(c.ctx(), c.scope, c.r.PathValue("id"), lp)
}

func (s *server) retrievePaymentMethod(c *call) (any, error) {
	return s.cust.PaymentMethod(c.ctx(), c.scope, c.r.PathValue("id"))
}

func (s *server) deletePaymentMethod(c *call, tree any) (*writeOp, error) {
	merchantID, err := decodeMerchantOnly(tree)
	if err != nil {
		return nil, err
	}
	id := c.r.PathValue("id")
	return &writeOp{merchantID: merchantID, exec: func(ctx context.Context, _ string) (any, error) {
		if err := s.cust.DeletePaymentMethod(ctx, c.scope, id); err != nil {
			return nil, err
		}
		return &deletedObject{ID: id, Object: "payment_method", Deleted: true}, nil
	}}, nil
}

func normCustomer(c *payloom.Customer) *payloom.Customer {
	if c == nil || c.Metadata != nil {
		return c
	}
	cp := *c
	cp.Metadata = map[string]string{}
	return &cp
}

// normPaymentMethod shows a saved method without the vault token it points
// at: the pm_ ID is how clients use it.
func normPaymentMethod(m *payloom.SavedPaymentMethod) *payloom.SavedPaymentMethod {
	if m == nil || m.Card == nil || m.Card.Token == "" {
		return m
	}
	cp := *m
	card := *m.Card
	card.Token = ""
	cp.Card = &card
	return &cp
}

// rawCard tokenizes the raw card data of a payment request (the key's
// raw_card_data permission was checked) and returns the token. Every
// receipt of raw card data is audited, whether the card was valid or not;
// a use that cannot be recorded is refused, before anything is stored under
// the Idempotency-Key.
func (c *call) rawCard(ctx context.Context, in *payloom.CardInput) (*payloom.Token, error) {
	s := c.s
	tok, terr := s.vault.Tokenize(ctx, c.scope, in)
	outcome, target := payloom.AuditSuccess, ""
	if terr != nil {
		outcome = payloom.AuditFailure
	} else {
		target = tok.ID
	}
	ev := payloom.NewAuditEvent(ctx, c.scope, payloom.AuditRawCardDataUsed, outcome, target, s.clock().UTC())
	ev.Details["route"] = "POST /v1/payments"
	if terr != nil {
		ev.Details["error"] = payloom.ErrorCode(terr)
	}
	if err := s.audit.RecordAudit(ctx, ev); err != nil {
		return nil, err
	}
	if terr != nil {
		return nil, rawCardParam(terr)
	}
	return tok, nil
}

// rawCardParam moves the vault's card[...] params under
// payment_method[card][...], where the client sent them.
func rawCardParam(err error) error {
	if p := payloom.ErrorParam(err); len(p) > len("card") && p[:len("card")] == "card" {
		return &payloom.Error{Code: payloom.ErrorCode(err), Message: payloom.ErrorMessage(err),
			Param: "payment_method[" + p[:len("card")] + "]" + p[len("card"):]}
	}
	return err
}

// tokenizedTree returns the payment body as the idempotency fingerprint
// sees it once its raw card is tokenized: the card replaced by the vault's
// fingerprint (a keyed HMAC of the number) and the expiry and holder name.
// The fingerprint record thus never hashes a card number (an unkeyed hash
// of a number whose first six and last four are known is quickly brute
// forced), while a retry with the same card still matches and replays.
// The CVC is not part of it: a retry that differs only in the CVC replays
// the first answer.
func tokenizedTree(tree any, tok *payloom.Token) any {
	body, _ := tree.(map[string]any)
	out := make(map[string]any, len(body))
	for k, v := range body {
		out[k] = v
	}
	pm, _ := body["payment_method"].(map[string]any)
	pmOut := make(map[string]any, len(pm))
	for k, v := range pm {
		pmOut[k] = v
	}
	card := map[string]any{
		"fingerprint": tok.Card.Fingerprint,
		"exp_month":   tok.Card.ExpMonth,
		"exp_year":    tok.Card.ExpYear,
		"holder_name": tok.Card.HolderName,
	}
	pmOut["card"] = card
	out["payment_method"] = pmOut
	return out
}
