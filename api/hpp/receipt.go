package hpp

import (
	"net/http"

	"github.com/payloom/payloom"
)

type refundView struct {
	Label, Amount string
}

type receiptView struct {
	baseView
	PaymentID   string
	Amount      string
	Date        string
	Method      string
	AuthCode    string
	Description string
	Reference   string
	Items       []itemView
	Refunds     []refundView
	Refunded    string
	Net         string
}

// receipt serves GET /receipts/{id}?s=: the printable receipt of a captured
// payment. A wrong ID, a wrong secret and a payment that is not captured
// all answer the same 404.
func (h *handler) receipt(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	l, _ := pickLang(r, q.Get("lang"))
	rc, err := h.checkout.ReceiptPayment(r.Context(), r.PathValue("id"), q.Get("s"))
	if payloom.IsCode(err, payloom.CodeNotFound) {
		h.renderState(w, r, http.StatusNotFound, &stateView{Kind: "notfound", Body: tr(l, "receipt.notfound")}, l)
		return
	}
	if err != nil {
		h.fail(w, r, err, l)
		return
	}
	p := rc.Payment
	money := func(v int64) string { return formatMoney(v, p.Currency, l) }
	v := &receiptView{
		baseView:    baseView{Lang: l, Merchant: rc.Merchant.Name, Test: !p.Livemode},
		PaymentID:   p.ID,
		Amount:      money(p.AmountCaptured),
		Date:        formatDate(rc.CapturedAt, l),
		Description: p.Description,
		Reference:   p.Reference,
	}
	v.Title = tr(l, "receipt.title", rc.Merchant.Name)
	if pm := p.PaymentMethod; pm != nil && pm.Card != nil {
		v.Method = tr(l, "card.ending", brandName(pm.Card.Brand, l), pm.Card.Last4)
	}
	if p.Processor != nil {
		v.AuthCode = p.Processor.AuthorizationCode
	}
	for _, li := range p.LineItems {
		v.Items = append(v.Items, itemView{Description: li.Description, Quantity: tr(l, "qty", li.Quantity),
			Unit: money(li.Amount), Total: money(li.Amount * li.Quantity)})
	}
	var refunded int64
	for _, rf := range rc.Refunds {
		key := "receipt.refund"
		switch rf.Status {
		case payloom.RefundStatusSucceeded:
		case payloom.RefundStatusPending:
			key = "receipt.refund.pend"
		default:
			continue // a failed refund returned nothing
		}
		refunded += rf.Amount
		v.Refunds = append(v.Refunds, refundView{Label: tr(l, key, formatDate(rf.CreatedAt, l)), Amount: "-" + money(rf.Amount)})
	}
	if refunded > 0 {
		v.Refunded = money(refunded)
		v.Net = money(p.AmountCaptured - refunded)
	}
	h.render(w, r, "receipt", http.StatusOK, v)
}
