package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/payloom/payloom"
)

// checkoutRow is the payments.checkout JSON column: the hosted-page part of
// a payment (payloom.PaymentPage) as stored. PaymentURL and ReceiptURL are
// composed by the engine and never stored; the page secret is stored only
// as its hash. LineItems is a pointer so that nil and empty read back as
// they were written.
type checkoutRow struct {
	LineItems      *[]lineItemRow `json:"line_items,omitempty"`
	SuccessURL     string         `json:"success_url,omitempty"`
	FailureURL     string         `json:"failure_url,omitempty"`
	ReturnURL      string         `json:"return_url,omitempty"`
	PageSecretHash []byte         `json:"page_secret_hash,omitempty"`
	ReceiptSecret  string         `json:"receipt_secret,omitempty"`
	// ConfirmAttemptID: the first attempt of the latest confirmation.
	ConfirmAttemptID string `json:"confirm_attempt_id,omitempty"`
}

type lineItemRow struct {
	Description string `json:"description"`
	Amount      int64  `json:"amount"`
	Quantity    int64  `json:"quantity"`
}

// checkoutArgs encodes expires_at and checkout, in that order.
func checkoutArgs(e *enc, pg *payloom.PaymentPage) []any {
	var row *checkoutRow
	if pg.LineItems != nil || pg.SuccessURL != "" || pg.FailureURL != "" || pg.ReturnURL != "" ||
		len(pg.PageSecretHash) > 0 || pg.ReceiptSecret != "" || pg.ConfirmAttemptID != "" {
		row = &checkoutRow{SuccessURL: pg.SuccessURL, FailureURL: pg.FailureURL, ReturnURL: pg.ReturnURL,
			PageSecretHash: pg.PageSecretHash, ReceiptSecret: pg.ReceiptSecret.Reveal(),
			ConfirmAttemptID: pg.ConfirmAttemptID}
		if pg.LineItems != nil {
			items := make([]lineItemRow, len(pg.LineItems))
			for i, li := range pg.LineItems {
				items[i] = lineItemRow{Description: li.Description, Amount: li.Amount, Quantity: li.Quantity}
			}
			row.LineItems = &items
		}
	}
	return []any{e.timePtr(pg.ExpiresAt), e.json(row, row == nil)}
}

// scanCheckout decodes expires_at and checkout into p.
func scanCheckout(p *payloom.Payment, expires sql.NullInt64, checkout sql.NullString) error {
	p.ExpiresAt = decTimePtr(expires)
	row, err := decJSON[checkoutRow](checkout)
	if err != nil || row == nil {
		return err
	}
	pg := &p.PaymentPage
	pg.SuccessURL, pg.FailureURL, pg.ReturnURL = row.SuccessURL, row.FailureURL, row.ReturnURL
	pg.PageSecretHash = row.PageSecretHash
	pg.ReceiptSecret = payloom.Secret(row.ReceiptSecret)
	pg.ConfirmAttemptID = row.ConfirmAttemptID
	if row.LineItems != nil {
		pg.LineItems = make([]payloom.LineItem, len(*row.LineItems))
		for i, li := range *row.LineItems {
			pg.LineItems[i] = payloom.LineItem{Description: li.Description, Amount: li.Amount, Quantity: li.Quantity}
		}
	}
	return nil
}

func (t *tx) FindPayment(ctx context.Context, id string) (*payloom.Payment, error) {
	p, err := scanPayment(t.tx.QueryRowContext(t.c(ctx), `SELECT `+paymentCols+` FROM payments WHERE id = ?`, id))
	if err != nil {
		return nil, err
	}
	return p, t.fillAttempts(ctx, []*payloom.Payment{p})
}

func (t *tx) ListExpiredPayments(ctx context.Context, now time.Time, limit int) ([]*payloom.Payment, error) {
	var e enc
	cutoff := e.time(now)
	if e.err != nil {
		return nil, e.err
	}
	if cutoff == nil || limit <= 0 {
		return []*payloom.Payment{}, nil
	}
	rows, err := t.tx.QueryContext(t.c(ctx), `SELECT `+paymentCols+` FROM payments INDEXED BY payments_expiring
		WHERE status = 'requires_payment_method' AND expires_at IS NOT NULL AND expires_at <= ?
		ORDER BY expires_at, id LIMIT ?`, cutoff, limit)
	if err != nil {
		return nil, dbError("payment", err)
	}
	ps, err := collect(rows, "payment", scanPayment)
	if err != nil {
		return nil, err
	}
	return ps, t.fillAttempts(ctx, ps)
}
