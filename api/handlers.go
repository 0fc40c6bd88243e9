package api

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/payloom/payloom"
)

// List parameters.
const (
	defaultLimit = 10
	maxLimit     = 100
)

func (s *server) createToken(c *call, tree any) (*writeOp, error) {
	merchantID, card, err := decodeToken(tree)
	if err != nil {
		return nil, err
	}
	return &writeOp{merchantID: merchantID, exec: func(ctx context.Context, _ string) (any, error) {
		// A token is a new object on every call; the Idempotency-Key's
		// stored response is what makes a retry return the same one.
		return s.vault.Tokenize(ctx, c.scope, card)
	}}, nil
}

func (s *server) createPayment(c *call, tree any) (*writeOp, error) {
	merchantID, req, raw, err := decodePaymentCreate(tree)
	if err != nil {
		return nil, err
	}
	op := &writeOp{
		merchantID: merchantID,
		exec: func(ctx context.Context, opKey string) (any, error) {
			return s.payments.CreatePayment(ctx, c.scope, opKey, req)
		},
	}
	if cs, ok := s.payments.(payloom.ClaimingPaymentService); ok {
		op.claimed = func(ctx context.Context, claim *payloom.Claim) (any, error) {
			return cs.CreatePaymentClaimed(ctx, claim, req)
		}
	}
	if raw != nil {
		if !c.key.Can(payloom.PermissionRawCardData) {
			return nil, c.denied(payloom.PermissionRawCardData)
		}
		op.prepare = func(ctx context.Context) error {
			tok, err := c.rawCard(ctx, raw)
			if err != nil {
				return err
			}
			req.CardToken = tok.ID
			op.fingerprintTree = tokenizedTree(tree, tok)
			return nil
		}
	}
	return op, nil
}

func (s *server) capturePayment(c *call, tree any) (*writeOp, error) {
	merchantID, amount, err := decodeCapture(tree)
	if err != nil {
		return nil, err
	}
	id := c.r.PathValue("id")
	return &writeOp{merchantID: merchantID,
		exec: func(ctx context.Context, opKey string) (any, error) {
			return s.payments.CapturePayment(ctx, c.scope, opKey, id, amount)
		}}, nil
}

func (s *server) cancelPayment(c *call, tree any) (*writeOp, error) {
	merchantID, err := decodeCancel(tree)
	if err != nil {
		return nil, err
	}
	id := c.r.PathValue("id")
	return &writeOp{merchantID: merchantID,
		exec: func(ctx context.Context, opKey string) (any, error) {
			return s.payments.CancelPayment(ctx, c.scope, opKey, id)
		}}, nil
}

func (s *server) createRefund(c *call, tree any) (*writeOp, error) {
	merchantID, req, err := decodeRefundCreate(tree)
	if err != nil {
		return nil, err
	}
	return &writeOp{
		merchantID: merchantID,
		exec: func(ctx context.Context, opKey string) (any, error) {
			return s.payments.CreateRefund(ctx, c.scope, opKey, req)
		},
	}, nil
}

func (s *server) retrievePayment(c *call) (any, error) {
	return s.payments.Payment(c.ctx(), c.scope, c.r.PathValue("id"))
}

func (s *server) listPayments(c *call) (any, error) {
	lp, err := parseListParams(c.query, payloom.PrefixPayment)
	if err != nil {
		return nil, err
	}
	f := payloom.PaymentFilter{ListParams: lp}
	if v, ok := param(c.query, "status"); ok {
		st := payloom.PaymentStatus(v)
		if !st.Valid() {
			return nil, payloom.FieldError("status", "status must be one of %s", joinQuoted(payloom.PaymentStatuses))
		}
		f.Status = &st
	}
	return s.payments.ListPayments(c.ctx(), c.scope, f)
}

func (s *server) retrieveRefund(c *call) (any, error) {
	return s.payments.Refund(c.ctx(), c.scope, c.r.PathValue("id"))
}

func (s *server) listRefunds(c *call) (any, error) {
	lp, err := parseListParams(c.query, payloom.PrefixRefund)
	if err != nil {
		return nil, err
	}
	f := payloom.RefundFilter{ListParams: lp}
	if v, ok := param(c.query, "payment_id"); ok {
		if err := checkID(v, payloom.PrefixPayment, "payment_id"); err != nil {
			return nil, err
		}
		f.PaymentID = &v
	}
	return s.payments.ListRefunds(c.ctx(), c.scope, f)
}

func (s *server) retrieveEvent(c *call) (any, error) {
	return s.payments.Event(c.ctx(), c.scope, c.r.PathValue("id"))
}

func (s *server) listEvents(c *call) (any, error) {
	lp, err := parseListParams(c.query, payloom.PrefixEvent)
	if err != nil {
		return nil, err
	}
	f := payloom.EventFilter{ListParams: lp}
	if v, ok := param(c.query, "type"); ok {
		t := payloom.EventType(v)
		if !slices.Contains(payloom.EventTypes, t) {
			return nil, payloom.FieldError("type", "type must be one of %s", joinQuoted(payloom.EventTypes))
		}
		f.Type = &t
	}
	if v, ok := param(c.query, "object_id"); ok {
		if v == "" || len(v) > maxIDLen || !printableASCII(v) {
			return nil, payloom.FieldError("object_id", "object_id must be an object ID")
		}
		f.ObjectID = &v
	}
	return s.payments.ListEvents(c.ctx(), c.scope, f)
}

func param(q url.Values, name string) (string, bool) {
	v, ok := q[name]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

func joinQuoted[T ~string](vs []T) string {
	s := ""
	for i, v := range vs {
		if i > 0 {
			s += ", "
		}
		s += strconv.Quote(string(v))
	}
	return s
}

// parseListParams reads the cursor, limit and creation-time filters every
// list takes. Cursors must be IDs of the listed kind (prefix).
func parseListParams(q url.Values, prefix string) (payloom.ListParams, error) {
	lp := payloom.ListParams{Limit: defaultLimit}
	if v, ok := param(q, "limit"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit || !isDigits(v) {
			return lp, payloom.FieldError("limit", "limit must be an integer from 1 to %d", maxLimit)
		}
		lp.Limit = n
	}
	if v, ok := param(q, "starting_after"); ok {
		if err := checkID(v, prefix, "starting_after"); err != nil {
			return lp, err
		}
		lp.StartingAfter = v
	}
	if v, ok := param(q, "ending_before"); ok {
		if err := checkID(v, prefix, "ending_before"); err != nil {
			return lp, err
		}
		if lp.StartingAfter != "" {
			return lp, payloom.FieldError("ending_before", "starting_after and ending_before cannot be used together")
		}
		lp.EndingBefore = v
	}
	for _, p := range []struct {
		name string
		dst  **time.Time
	}{{"created[gte]", &lp.CreatedGTE}, {"created[lte]", &lp.CreatedLTE}} {
		if v, ok := param(q, p.name); ok {
			t, err := parseTime(v, p.name)
			if err != nil {
				return lp, err
			}
			*p.dst = &t
		}
	}
	if lp.CreatedGTE != nil && lp.CreatedLTE != nil && lp.CreatedLTE.Before(*lp.CreatedGTE) {
		return lp, payloom.FieldError("created[lte]", "created[lte] must not be before created[gte]")
	}
	return lp, nil
}

// maxUnix is 9999-12-31T23:59:59Z, the last second RFC 3339 can write.
const maxUnix = 253402300799

// parseTime accepts Unix seconds or an RFC 3339 time and returns it in UTC.
func parseTime(v, name string) (time.Time, error) {
	if isDigits(v) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err == nil && n <= maxUnix {
			return time.Unix(n, 0).UTC(), nil
		}
	} else if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, payloom.FieldError(name, "%s must be Unix seconds or an RFC 3339 time", name)
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func (s *server) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(openapiJSON)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(openapiJSON)
}

type statusBody struct {
	Status string `json:"status"`
}

func (s *server) serveHealth(w http.ResponseWriter, r *http.Request) {
	status, body, code := s.render(r, statusBody{"ok"}, nil)
	s.writeBody(w, status, body, code, false)
}

func (s *server) serveReady(w http.ResponseWriter, r *http.Request) {
	if s.ready != nil {
		if err := s.ready(r.Context()); err != nil {
			s.log.WarnContext(r.Context(), "not ready", "request_id", requestInfo(r).id, "err", err.Error())
			s.writeError(w, r, payloom.Errorf(payloom.CodeUnavailable, "the server is not ready"))
			return
		}
	}
	s.serveHealth(w, r)
}
