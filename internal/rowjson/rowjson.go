// Package rowjson is the storage format of the JSON columns that the sqlite
// and postgres stores share (a payment's payment method, processor details,
// next action and failure; a refund's failure). Both stores encode through
// it, so data moved between them reads the same, and the format is
// independent of the API's JSON tags: the API can change without a
// migration.
//
// It holds no card number: a card summary has at most first6 and last4.
package rowjson

import "github.com/payloom/payloom"

// PaymentMethod is a payment's payment_method column.
type PaymentMethod struct {
	ID   string       `json:"id,omitempty"`
	Type string       `json:"type"`
	Card *CardSummary `json:"card,omitempty"`
}

// CardSummary is the card inside PaymentMethod.
type CardSummary struct {
	Token       string `json:"token"`
	Brand       string `json:"brand"`
	First6      string `json:"first6"`
	Last4       string `json:"last4"`
	ExpMonth    int    `json:"exp_month"`
	ExpYear     int    `json:"exp_year"`
	Fingerprint string `json:"fingerprint"`
	HolderName  string `json:"holder_name"`
	// Country is absent from rows written before cards had one.
	Country string `json:"country,omitempty"`
}

// Processor is a payment's processor column.
type Processor struct {
	Name                 string `json:"name"`
	TransactionID        string `json:"transaction_id"`
	AuthorizationCode    string `json:"authorization_code"`
	AVSResult            string `json:"avs_result"`
	CVVResult            string `json:"cvv_result"`
	NetworkTransactionID string `json:"network_transaction_id"`
}

// NextAction is a payment's next_action column.
type NextAction struct {
	Type        string `json:"type"`
	RedirectURL string `json:"redirect_url"`
}

// Failure is the failure column of a payment or a refund.
type Failure struct {
	Code        string `json:"code"`
	DeclineCode string `json:"decline_code"`
	Message     string `json:"message"`
}

// FromPaymentMethod returns the row of pm, nil for nil.
func FromPaymentMethod(pm *payloom.PaymentMethod) *PaymentMethod {
	if pm == nil {
		return nil
	}
	r := &PaymentMethod{ID: pm.ID, Type: string(pm.Type)}
	if c := pm.Card; c != nil {
		r.Card = &CardSummary{Token: c.Token, Brand: string(c.Brand), First6: c.First6, Last4: c.Last4,
			ExpMonth: c.ExpMonth, ExpYear: c.ExpYear, Fingerprint: c.Fingerprint, HolderName: c.HolderName,
			Country: c.Country}
	}
	return r
}

// Domain returns the payment method of the row, nil for nil.
func (r *PaymentMethod) Domain() *payloom.PaymentMethod {
	if r == nil {
		return nil
	}
	pm := &payloom.PaymentMethod{ID: r.ID, Type: payloom.PaymentMethodType(r.Type)}
	if c := r.Card; c != nil {
		pm.Card = &payloom.CardSummary{Token: c.Token, Brand: payloom.CardBrand(c.Brand), First6: c.First6, Last4: c.Last4,
			ExpMonth: c.ExpMonth, ExpYear: c.ExpYear, Fingerprint: c.Fingerprint, HolderName: c.HolderName,
			Country: c.Country}
	}
	return pm
}

// FromProcessor returns the row of d, nil for nil.
func FromProcessor(d *payloom.ProcessorDetails) *Processor {
	if d == nil {
		return nil
	}
	return &Processor{Name: d.Name, TransactionID: d.TransactionID, AuthorizationCode: d.AuthorizationCode,
		AVSResult: d.AVSResult, CVVResult: d.CVVResult, NetworkTransactionID: d.NetworkTransactionID}
}

// Domain returns the processor details of the row, nil for nil.
func (r *Processor) Domain() *payloom.ProcessorDetails {
	if r == nil {
		return nil
	}
	return &payloom.ProcessorDetails{Name: r.Name, TransactionID: r.TransactionID,
		AuthorizationCode: r.AuthorizationCode, AVSResult: r.AVSResult, CVVResult: r.CVVResult,
		NetworkTransactionID: r.NetworkTransactionID}
}

// FromNextAction returns the row of a, nil for nil.
func FromNextAction(a *payloom.NextAction) *NextAction {
	if a == nil {
		return nil
	}
	return &NextAction{Type: a.Type, RedirectURL: a.RedirectURL}
}

// Domain returns the next action of the row, nil for nil.
func (r *NextAction) Domain() *payloom.NextAction {
	if r == nil {
		return nil
	}
	return &payloom.NextAction{Type: r.Type, RedirectURL: r.RedirectURL}
}

// FromFailure returns the row of f, nil for nil.
func FromFailure(f *payloom.Failure) *Failure {
	if f == nil {
		return nil
	}
	return &Failure{Code: f.Code, DeclineCode: f.DeclineCode, Message: f.Message}
}

// Domain returns the failure of the row, nil for nil.
func (r *Failure) Domain() *payloom.Failure {
	if r == nil {
		return nil
	}
	return &payloom.Failure{Code: r.Code, DeclineCode: r.DeclineCode, Message: r.Message}
}
