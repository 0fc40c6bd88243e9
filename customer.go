package payloom

import (
	"context"
	"time"
)

// ID prefixes of customers and their saved payment methods.
const (
	PrefixCustomer      = "cus"
	PrefixPaymentMethod = "pm"
)

// DocumentType is the kind of a Brazilian tax document.
type DocumentType string

const (
	// DocumentCPF: Cadastro de Pessoas Físicas, 11 digits (a person).
	DocumentCPF DocumentType = "cpf"
	// DocumentCNPJ: Cadastro Nacional da Pessoa Jurídica, 14 digits (a
	// company).
	DocumentCNPJ DocumentType = "cnpj"
)

// Customer is a merchant's shopper, who may have saved payment methods.
// Email is stored in lower case; Document holds digits only, its type in
// DocumentType.
type Customer struct {
	ID           string            `json:"id"`
	Object       string            `json:"object"` // "customer"
	MerchantID   string            `json:"merchant_id"`
	Livemode     bool              `json:"livemode"`
	Name         string            `json:"name,omitempty"`
	Email        string            `json:"email,omitempty"`
	Phone        string            `json:"phone,omitempty"`
	Document     string            `json:"document,omitempty"`
	DocumentType DocumentType      `json:"document_type,omitempty"`
	Reference    string            `json:"reference,omitempty"`
	Metadata     map[string]string `json:"metadata"`
	CreatedAt    time.Time         `json:"created_at"`
	UpdatedAt    time.Time         `json:"updated_at"`

	// CreationKey is the operation key of the creating request (see
	// Payment.CreationKey). Unique per scope.
	CreationKey string `json:"-"`
}

// Scope returns the customer's tenancy scope.
func (c *Customer) Scope() Scope { return Scope{MerchantID: c.MerchantID, Livemode: c.Livemode} }

// CustomerCreate is a request to create a customer. Every field is
// optional; Document may be formatted ("123.456.789-09").
type CustomerCreate struct {
	Name      string
	Email     string
	Phone     string
	Document  string
	Reference string
	Metadata  map[string]string
}

// CustomerUpdate is a partial update: nil fields are unchanged, a pointer
// to "" clears a field. Metadata is merged key by key; a key set to ""
// is removed.
type CustomerUpdate struct {
	Name      *string
	Email     *string
	Phone     *string
	Document  *string
	Reference *string
	Metadata  map[string]string
}

// CustomerFilter filters ListCustomers. Email matches case-insensitively.
type CustomerFilter struct {
	ListParams
	Email     *string
	Reference *string
}

// SavedPaymentMethod is a payment method saved for a customer (pm_...): a
// pointer at a card in the vault (CardToken), with the card's summary. The
// card number stays in the vault; only the vault decrypts it. A customer
// has at most one saved method per card fingerprint.
type SavedPaymentMethod struct {
	ID         string            `json:"id"`
	Object     string            `json:"object"` // "payment_method"
	MerchantID string            `json:"merchant_id"`
	Livemode   bool              `json:"livemode"`
	CustomerID string            `json:"customer_id"`
	Type       PaymentMethodType `json:"type"`
	// Card is the summary; its Token is left empty in responses.
	Card      *CardSummary `json:"card"`
	CreatedAt time.Time    `json:"created_at"`
	UpdatedAt time.Time    `json:"updated_at"`

	// CardToken is the vault token (tok_...) the method charges.
	CardToken string `json:"-"`
}

// Scope returns the payment method's tenancy scope.
func (m *SavedPaymentMethod) Scope() Scope {
	return Scope{MerchantID: m.MerchantID, Livemode: m.Livemode}
}

// CustomerService manages customers and their saved payment methods.
type CustomerService interface {
	// CreateCustomer validates and stores a customer. A call with an
	// opKey that already created one returns it. CodeValidation with
	// params "name", "email", "phone", "document", "reference",
	// "metadata[...]".
	CreateCustomer(ctx context.Context, scope Scope, opKey string, req *CustomerCreate) (*Customer, error)
	// Customer returns one customer. CodeNotFound.
	Customer(ctx context.Context, scope Scope, id string) (*Customer, error)
	ListCustomers(ctx context.Context, scope Scope, f CustomerFilter) (*List[*Customer], error)
	// UpdateCustomer changes the set fields. CodeNotFound, CodeValidation
	// as CreateCustomer.
	UpdateCustomer(ctx context.Context, scope Scope, id string, req *CustomerUpdate) (*Customer, error)
	// DeleteCustomer deletes a customer and its saved payment methods
	// (their vault cards stay, as payments refer to them). Payments keep
	// the customer's ID. CodeNotFound.
	DeleteCustomer(ctx context.Context, scope Scope, id string) error
	// ListPaymentMethods lists a customer's saved methods, newest first.
	// CodeNotFound for an unknown customer.
	ListPaymentMethods(ctx context.Context, scope Scope, customerID string, p ListParams) (*List[*SavedPaymentMethod], error)
	// PaymentMethod returns one saved method. CodeNotFound.
	PaymentMethod(ctx context.Context, scope Scope, id string) (*SavedPaymentMethod, error)
	// DeletePaymentMethod deletes a saved method. CodeNotFound.
	DeletePaymentMethod(ctx context.Context, scope Scope, id string) error
}

// ParseDocument validates a CPF (11 digits) or CNPJ (14 digits) with its
// two check digits. Digits may be separated by '.', '-', '/' or spaces
// ("123.456.789-09", "12.345.678/0001-95"). It returns the digits only.
// Numbers of one repeated digit pass the arithmetic but are not issued,
// and are refused. CodeValidation with param "document"; messages never
// quote the value.
func ParseDocument(s string) (string, DocumentType, error) {
	digits := make([]byte, 0, 14)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits = append(digits, c)
		case c == '.' || c == '-' || c == '/' || c == ' ':
		default:
			return "", "", FieldError("document", "document must be a CPF (11 digits) or a CNPJ (14 digits)")
		}
	}
	var typ DocumentType
	var ok bool
	switch len(digits) {
	case 11:
		typ = DocumentCPF
		ok = checkDigits(digits, []int{10, 9, 8, 7, 6, 5, 4, 3, 2}, []int{11, 10, 9, 8, 7, 6, 5, 4, 3, 2})
	case 14:
		typ = DocumentCNPJ
		ok = checkDigits(digits, []int{5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2}, []int{6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2})
	default:
		return "", "", FieldError("document", "document must be a CPF (11 digits) or a CNPJ (14 digits)")
	}
	if ok && allSame(digits) {
		ok = false
	}
	if !ok {
		return "", "", FieldError("document", "document is not a valid %s: its check digits do not match", typ)
	}
	return string(digits), typ, nil
}

// checkDigits verifies the two trailing mod-11 check digits, each computed
// over the digits before it with its weights.
func checkDigits(d []byte, w1, w2 []int) bool {
	dv := func(n int, w []int) byte {
		sum := 0
		for i := 0; i < n; i++ {
			sum += int(d[i]-'0') * w[i]
		}
		r := sum % 11
		if r < 2 {
			return '0'
		}
		return byte('0' + 11 - r)
	}
	n := len(w1)
	return d[n] == dv(n, w1) && d[n+1] == dv(n+1, w2)
}

func allSame(d []byte) bool {
	for _, c := range d {
		if c != d[0] {
			return false
		}
	}
	return true
}
