package api

import (
	"context"
	"strconv"
	"time"

	"github.com/payloom/payloom"
)

// The hosted payment page's part of the API: the page options of
// POST /v1/payments (a payment without payment_method gets a payment_url)
// and POST /v1/payments/{id}/confirm, which pays such a payment with a
// token. The page itself (api/hpp) is not part of this handler.

type lineItemBody struct {
	Description *string `json:"description"`
	Amount      *int64  `json:"amount"`
	Quantity    *int64  `json:"quantity"`
}

type paymentConfirmBody struct {
	MerchantID    *string                   `json:"merchant_id"`
	PaymentMethod *confirmPaymentMethodBody `json:"payment_method"`
	ReturnURL     *string                   `json:"return_url"`
}

// confirmPaymentMethodBody is the card of a confirmation: a token only
// (the hosted page tokenizes first; saved cards and raw card data go
// through POST /v1/payments).
type confirmPaymentMethodBody struct {
	Type *string `json:"type"`
	Card *struct {
		Token *string `json:"token"`
	} `json:"card"`
}

// decodePageOptions decodes the hosted-page fields of a payment body into
// req. It checks what needs neither the store nor the mode (the line items
// against the amount, the URLs' shape, the expiry's syntax); the engine
// checks the rest (https in live mode, the expiry's range at its clock).
func decodePageOptions(b *paymentCreateBody, req *payloom.PaymentCreate) error {
	o := &req.PageOptions
	if b.LineItems != nil {
		items := *b.LineItems
		if len(items) > payloom.MaxLineItems {
			return payloom.FieldError("line_items", "line_items may have at most %d entries", payloom.MaxLineItems)
		}
		o.LineItems = make([]payloom.LineItem, len(items))
		for i, li := range items {
			param := "line_items[" + strconv.Itoa(i) + "]"
			switch {
			case li.Description == nil:
				return required(param + "[description]")
			case li.Amount == nil:
				return required(param + "[amount]")
			}
			o.LineItems[i] = payloom.LineItem{Description: *li.Description, Amount: *li.Amount, Quantity: 1}
			if li.Quantity != nil {
				o.LineItems[i].Quantity = *li.Quantity
			}
		}
		if err := payloom.ValidateLineItems(o.LineItems, req.Amount); err != nil {
			return err
		}
	}
	for _, u := range []struct {
		param string
		src   *string
		dst   *string
	}{{"success_url", b.SuccessURL, &o.SuccessURL}, {"failure_url", b.FailureURL, &o.FailureURL}, {"return_url", b.ReturnURL, &o.ReturnURL}} {
		if u.src == nil {
			continue
		}
		if err := payloom.ValidateRedirectURL(u.param, *u.src, false); err != nil {
			return err
		}
		*u.dst = *u.src
	}
	if b.ExpiresIn != nil {
		d, err := payloom.ParseDuration(*b.ExpiresIn)
		if err != nil {
			return payloom.FieldError("expires_in", "expires_in %s", payloom.ErrorMessage(err))
		}
		o.ExpiresIn = &d
	}
	if b.ExpiresAt != nil {
		t, err := time.Parse(time.RFC3339, *b.ExpiresAt)
		if err != nil {
			return payloom.FieldError("expires_at", "expires_at must be an RFC 3339 time such as 2030-01-31T12:00:00Z")
		}
		t = t.UTC()
		o.ExpiresAt = &t
	}
	if o.ExpiresIn != nil && o.ExpiresAt != nil {
		return payloom.FieldError("expires_at", "give expires_in or expires_at, not both")
	}
	return nil
}

// encodePageOptions adds the page options to a body built by
// encodePaymentCreate.
func encodePageOptions(m map[string]any, o *payloom.PageOptions) {
	if o.LineItems != nil {
		items := make([]map[string]any, len(o.LineItems))
		for i, li := range o.LineItems {
			items[i] = map[string]any{"description": li.Description, "amount": li.Amount, "quantity": li.Quantity}
		}
		m["line_items"] = items
	}
	for k, v := range map[string]string{"success_url": o.SuccessURL, "failure_url": o.FailureURL, "return_url": o.ReturnURL} {
		if v != "" {
			m[k] = v
		}
	}
	if o.ExpiresIn != nil {
		m["expires_in"] = o.ExpiresIn.String()
	}
	if o.ExpiresAt != nil {
		m["expires_at"] = o.ExpiresAt.Format(time.RFC3339Nano)
	}
}

// decodeConfirm decodes a POST /v1/payments/{id}/confirm body.
func decodeConfirm(tree any) (merchantID string, req *payloom.PaymentConfirm, err error) {
	var b paymentConfirmBody
	if err := decodeInto(tree, &b); err != nil {
		return "", nil, err
	}
	if merchantID, err = decodeMerchantID(b.MerchantID); err != nil {
		return "", nil, err
	}
	pm := b.PaymentMethod
	switch {
	case pm == nil:
		return "", nil, required("payment_method")
	case pm.Type == nil:
		return "", nil, required("payment_method[type]")
	case *pm.Type != string(payloom.PaymentMethodTypeCard):
		return "", nil, payloom.FieldError("payment_method[type]", "payment_method[type] must be \"card\"")
	case pm.Card == nil:
		return "", nil, required("payment_method[card]")
	case pm.Card.Token == nil:
		return "", nil, required("payment_method[card][token]")
	}
	if err := checkID(*pm.Card.Token, payloom.PrefixToken, "payment_method[card][token]"); err != nil {
		return "", nil, err
	}
	req = &payloom.PaymentConfirm{CardToken: *pm.Card.Token}
	if b.ReturnURL != nil {
		if err := payloom.ValidateRedirectURL("return_url", *b.ReturnURL, false); err != nil {
			return "", nil, err
		}
		req.ReturnURL = *b.ReturnURL
	}
	return merchantID, req, nil
}

func (s *server) confirmPayment(c *call, tree any) (*writeOp, error) {
	merchantID, req, err := decodeConfirm(tree)
	if err != nil {
		return nil, err
	}
	id := c.r.PathValue("id")
	return &writeOp{merchantID: merchantID,
		exec: func(ctx context.Context, opKey string) (any, error) {
			if s.checkout == nil {
				return nil, payloom.Errorf(payloom.CodeUnavailable, "confirming payments is not configured on this server")
			}
			return s.checkout.ConfirmPayment(ctx, c.scope, opKey, id, req)
		}}, nil
}
