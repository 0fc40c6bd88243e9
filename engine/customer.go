package engine

import (
	"context"
	"maps"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/payloom/payloom"
)

var _ payloom.CustomerService = (*Engine)(nil)

// Limits of customer fields, in characters.
const (
	maxCustomerNameLen = 200
	maxEmailLen        = 254 // RFC 5321's path limit
	maxReferenceLen    = 500
	maxMetadataKeys    = 20 // as the API checks a request's own metadata
	minPhoneDigits     = 8
	maxPhoneDigits     = 15 // E.164
)

// customerFields are a customer's validated, normalized fields.
type customerFields struct {
	name, email, phone, document, reference string
	docType                                 payloom.DocumentType
}

func normalizeName(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case !utf8.ValidString(s):
		return "", payloom.FieldError("name", "name must be valid UTF-8")
	case utf8.RuneCountInString(s) > maxCustomerNameLen:
		return "", payloom.FieldError("name", "name must be at most %d characters", maxCustomerNameLen)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return "", payloom.FieldError("name", "name must not contain control characters")
	}
	return s, nil
}

// normalizeEmail accepts a bare address (no display name, no comments) and
// lower-cases it: the list filter matches e-mail addresses
// case-insensitively, as shoppers type them in any case.
func normalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	bad := payloom.FieldError("email", "email must be an e-mail address such as name@example.com")
	if len(s) > maxEmailLen || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return "", bad
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return "", bad
	}
	at := strings.LastIndexByte(s, '@')
	if at < 1 || !strings.Contains(s[at+1:], ".") || strings.HasSuffix(s, ".") {
		return "", bad
	}
	return strings.ToLower(s), nil
}

// normalizePhone accepts digits with an optional leading "+" and the usual
// separators (spaces, dashes, dots, parentheses) and returns "+" (if given)
// and the digits: "+55 (11) 91234-5678" becomes "+5511912345678".
func normalizePhone(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	bad := payloom.FieldError("phone", "phone must have %d to %d digits, optionally after a +", minPhoneDigits, maxPhoneDigits)
	var b strings.Builder
	digits := 0
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
			digits++
		case r == '+' && i == 0:
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return "", bad
		}
	}
	if digits < minPhoneDigits || digits > maxPhoneDigits {
		return "", bad
	}
	return b.String(), nil
}

func normalizeReference(s string) (string, error) {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxReferenceLen {
		return "", payloom.FieldError("reference", "reference must be at most %d characters", maxReferenceLen)
	}
	return s, nil
}

func normalizeDocument(s string) (string, payloom.DocumentType, error) {
	if strings.TrimSpace(s) == "" {
		return "", "", nil
	}
	return payloom.ParseDocument(s)
}

func (f *customerFields) apply(c *payloom.Customer) {
	c.Name, c.Email, c.Phone, c.Reference = f.name, f.email, f.phone, f.reference
	c.Document, c.DocumentType = f.document, f.docType
}

// validateCustomer normalizes every field of c in place.
func validateCustomer(c *payloom.Customer) error {
	var f customerFields
	var err error
	if f.name, err = normalizeName(c.Name); err != nil {
		return err
	}
	if f.email, err = normalizeEmail(c.Email); err != nil {
		return err
	}
	if f.phone, err = normalizePhone(c.Phone); err != nil {
		return err
	}
	if f.document, f.docType, err = normalizeDocument(c.Document); err != nil {
		return err
	}
	if f.reference, err = normalizeReference(c.Reference); err != nil {
		return err
	}
	f.apply(c)
	return nil
}

// CreateCustomer implements payloom.CustomerService. Like a payment, a
// customer remembers the operation key that created it, so a retry after a
// crash between the commit and the stored response returns the same
// customer instead of a second one.
func (e *Engine) CreateCustomer(ctx context.Context, scope payloom.Scope, opKey string, req *payloom.CustomerCreate) (*payloom.Customer, error) {
	if opKey == "" {
		return nil, payloom.Errorf(payloom.CodeInternal, "engine: empty operation key")
	}
	if req == nil {
		return nil, payloom.Errorf(payloom.CodeValidation, "empty customer request")
	}
	now := e.now()
	c := &payloom.Customer{
		ID: payloom.NewID(payloom.PrefixCustomer), Object: "customer",
		MerchantID: scope.MerchantID, Livemode: scope.Livemode,
		Name: req.Name, Email: req.Email, Phone: req.Phone, Document: req.Document, Reference: req.Reference,
		Metadata: copyMetadata(req.Metadata), CreatedAt: now, UpdatedAt: now, CreationKey: opKey,
	}
	if err := validateCustomer(c); err != nil {
		return nil, err
	}
	var out *payloom.Customer
	created := false
	err := e.update(ctx, "create_customer", func(tx payloom.Tx) error {
		out, created = nil, false
		cur, err := tx.GetCustomerByCreationKey(ctx, scope, opKey)
		switch {
		case err == nil:
			out = cur
			return nil
		case !payloom.IsCode(err, payloom.CodeNotFound):
			return err
		}
		if _, err := tx.GetMerchant(ctx, scope.MerchantID); err != nil {
			if payloom.IsCode(err, payloom.CodeNotFound) {
				return payloom.FieldError("merchant_id", "no such merchant")
			}
			return err
		}
		err = tx.CreateCustomer(ctx, c)
		if payloom.IsCode(err, payloom.CodeAlreadyExists) {
			// A concurrent request with the same key won (PostgreSQL).
			out, err = tx.GetCustomerByCreationKey(ctx, scope, opKey)
			return err
		}
		out, created = c, err == nil
		return err
	})
	if err != nil {
		return nil, err
	}
	if created {
		e.log.InfoContext(ctx, "customer created", "customer_id", out.ID, "merchant_id", scope.MerchantID,
			"livemode", scope.Livemode)
	}
	return out, nil
}

func copyMetadata(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	maps.Copy(out, m)
	return out
}

// Customer implements payloom.CustomerService.
func (e *Engine) Customer(ctx context.Context, scope payloom.Scope, id string) (*payloom.Customer, error) {
	var c *payloom.Customer
	err := e.view(ctx, "get_customer", func(tx payloom.Tx) error {
		var err error
		c, err = tx.GetCustomer(ctx, scope, id)
		return err
	})
	return c, err
}

// ListCustomers implements payloom.CustomerService. The e-mail filter is
// normalized like stored addresses, so it matches in any case.
func (e *Engine) ListCustomers(ctx context.Context, scope payloom.Scope, f payloom.CustomerFilter) (*payloom.List[*payloom.Customer], error) {
	clampLimit(&f.ListParams)
	if f.Email != nil {
		f.Email = ptr(strings.ToLower(strings.TrimSpace(*f.Email)))
	}
	var data []*payloom.Customer
	var more bool
	err := e.view(ctx, "list_customers", func(tx payloom.Tx) error {
		var err error
		data, more, err = tx.ListCustomers(ctx, scope, f)
		return err
	})
	if err != nil {
		return nil, err
	}
	return newList(data, more), nil
}

// UpdateCustomer implements payloom.CustomerService.
func (e *Engine) UpdateCustomer(ctx context.Context, scope payloom.Scope, id string, req *payloom.CustomerUpdate) (*payloom.Customer, error) {
	if req == nil {
		req = &payloom.CustomerUpdate{}
	}
	var c *payloom.Customer
	err := e.update(ctx, "update_customer", func(tx payloom.Tx) error {
		var err error
		c, err = tx.GetCustomer(ctx, scope, id)
		if err != nil {
			return err
		}
		for _, f := range []struct {
			src *string
			dst *string
		}{{req.Name, &c.Name}, {req.Email, &c.Email}, {req.Phone, &c.Phone},
			{req.Document, &c.Document}, {req.Reference, &c.Reference}} {
			if f.src != nil {
				*f.dst = *f.src
			}
		}
		if req.Document != nil && strings.TrimSpace(*req.Document) == "" {
			c.DocumentType = ""
		}
		if err := validateCustomer(c); err != nil {
			return err
		}
		// Stripe's rule: metadata merges key by key, "" removes a key.
		for k, v := range req.Metadata {
			if v == "" {
				delete(c.Metadata, k)
			} else {
				c.Metadata[k] = v
			}
		}
		if len(c.Metadata) > maxMetadataKeys {
			return payloom.FieldError("metadata", "metadata may have at most %d keys; set a key to \"\" to remove it", maxMetadataKeys)
		}
		c.UpdatedAt = e.now()
		return tx.UpdateCustomer(ctx, c)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// DeleteCustomer implements payloom.CustomerService.
func (e *Engine) DeleteCustomer(ctx context.Context, scope payloom.Scope, id string) error {
	err := e.update(ctx, "delete_customer", func(tx payloom.Tx) error {
		return tx.DeleteCustomer(ctx, scope, id)
	})
	if err == nil {
		e.log.InfoContext(ctx, "customer deleted", "customer_id", id, "merchant_id", scope.MerchantID,
			"livemode", scope.Livemode)
	}
	return err
}

// ListPaymentMethods implements payloom.CustomerService.
func (e *Engine) ListPaymentMethods(ctx context.Context, scope payloom.Scope, customerID string, p payloom.ListParams) (*payloom.List[*payloom.SavedPaymentMethod], error) {
	clampLimit(&p)
	var data []*payloom.SavedPaymentMethod
	var more bool
	err := e.view(ctx, "list_payment_methods", func(tx payloom.Tx) error {
		if _, err := tx.GetCustomer(ctx, scope, customerID); err != nil {
			return err
		}
		var err error
		data, more, err = tx.ListPaymentMethods(ctx, scope, customerID, p)
		return err
	})
	if err != nil {
		return nil, err
	}
	return newList(data, more), nil
}

// PaymentMethod implements payloom.CustomerService.
func (e *Engine) PaymentMethod(ctx context.Context, scope payloom.Scope, id string) (*payloom.SavedPaymentMethod, error) {
	var m *payloom.SavedPaymentMethod
	err := e.view(ctx, "get_payment_method", func(tx payloom.Tx) error {
		var err error
		m, err = tx.GetPaymentMethod(ctx, scope, id)
		return err
	})
	return m, err
}

// DeletePaymentMethod implements payloom.CustomerService. The vault card
// stays: payments made with it refer to its token.
func (e *Engine) DeletePaymentMethod(ctx context.Context, scope payloom.Scope, id string) error {
	err := e.update(ctx, "delete_payment_method", func(tx payloom.Tx) error {
		return tx.DeletePaymentMethod(ctx, scope, id)
	})
	if err == nil {
		e.log.InfoContext(ctx, "payment method deleted", "payment_method_id", id, "merchant_id", scope.MerchantID,
			"livemode", scope.Livemode)
	}
	return err
}

// savePaymentMethod saves the payment's card for its customer inside the
// transaction that records a successful authorization, and returns the
// method's ID. A card the customer already saved (same fingerprint) is
// not saved twice: the existing method is returned, pointed at the newest
// token so that a renewed expiry date is used from now on. A customer
// deleted since the payment began gets nothing saved ("" and no error):
// the payment's outcome must be recorded regardless.
func (e *Engine) savePaymentMethod(ctx context.Context, tx payloom.Tx, p *payloom.Payment, now time.Time) (string, error) {
	card := p.PaymentMethod.Card
	scope := p.Scope()
	summary := *card
	summary.Token = ""
	for range 2 {
		cur, err := tx.GetPaymentMethodByFingerprint(ctx, scope, p.CustomerID, card.Fingerprint)
		switch {
		case err == nil:
			if cur.CardToken != card.Token {
				cur.CardToken = card.Token
				cur.Card = &summary
				cur.UpdatedAt = now
				if err := tx.UpdatePaymentMethod(ctx, cur); err != nil {
					return "", err
				}
			}
			return cur.ID, nil
		case !payloom.IsCode(err, payloom.CodeNotFound):
			return "", err
		}
		m := &payloom.SavedPaymentMethod{
			ID: payloom.NewID(payloom.PrefixPaymentMethod), Object: "payment_method",
			MerchantID: scope.MerchantID, Livemode: scope.Livemode, CustomerID: p.CustomerID,
			Type: payloom.PaymentMethodTypeCard, Card: &summary, CardToken: card.Token,
			CreatedAt: now, UpdatedAt: now,
		}
		err = tx.CreatePaymentMethod(ctx, m)
		switch {
		case err == nil:
			return m.ID, nil
		case payloom.IsCode(err, payloom.CodeNotFound):
			e.log.WarnContext(ctx, "card not saved: the customer was deleted", "payment_id", p.ID,
				"customer_id", p.CustomerID)
			return "", nil
		case !payloom.IsCode(err, payloom.CodeAlreadyExists):
			return "", err
		}
		// A concurrent payment saved the same card first: use its method.
	}
	return "", payloom.Errorf(payloom.CodeConflict, "payment method changed concurrently")
}
