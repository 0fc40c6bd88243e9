package postgres

import (
	"context"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/payloom/payloom"
)

// Customers and their saved payment methods (issue 4).

const customerCols = `id, merchant_id, livemode, name, email, phone, document, document_type, reference,
	metadata, created_at, updated_at, creation_key`

func (t *tx) CreateCustomer(ctx context.Context, c *payloom.Customer) error {
	var e enc
	args := []any{c.ID, c.MerchantID, c.Livemode, c.Name, c.Email, c.Phone, c.Document, string(c.DocumentType),
		c.Reference, e.metadata(c.Metadata), e.timeNotNull("customer created_at", c.CreatedAt), e.time(c.UpdatedAt),
		nullString(c.CreationKey)}
	if e.err != nil {
		return e.err
	}
	return t.insertNew(ctx, "customer", `INSERT INTO customers (`+customerCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`, args...)
}

func (t *tx) GetCustomer(ctx context.Context, scope payloom.Scope, id string) (*payloom.Customer, error) {
	return t.scanCustomer(t.tx.QueryRow(ctx,
		`SELECT `+customerCols+` FROM customers WHERE id = $1 AND merchant_id = $2 AND livemode = $3`+t.forUpdate(),
		id, scope.MerchantID, scope.Livemode))
}

func (t *tx) GetCustomerByCreationKey(ctx context.Context, scope payloom.Scope, key string) (*payloom.Customer, error) {
	if key == "" {
		return nil, notFound("customer")
	}
	return t.scanCustomer(t.tx.QueryRow(ctx,
		`SELECT `+customerCols+` FROM customers WHERE merchant_id = $1 AND livemode = $2 AND creation_key = $3`+t.forUpdate(),
		scope.MerchantID, scope.Livemode, key))
}

func (t *tx) UpdateCustomer(ctx context.Context, c *payloom.Customer) error {
	var e enc
	args := []any{c.Name, c.Email, c.Phone, c.Document, string(c.DocumentType), c.Reference,
		e.metadata(c.Metadata), e.time(c.UpdatedAt), c.ID, c.MerchantID, c.Livemode}
	if e.err != nil {
		return e.err
	}
	return t.execOne(ctx, "customer", `UPDATE customers SET name = $1, email = $2, phone = $3, document = $4,
		document_type = $5, reference = $6, metadata = $7, updated_at = $8
		WHERE id = $9 AND merchant_id = $10 AND livemode = $11`, args...)
}

func (t *tx) DeleteCustomer(ctx context.Context, scope payloom.Scope, id string) error {
	if _, err := t.exec(ctx, "payment method",
		`DELETE FROM payment_methods WHERE customer_id = $1 AND merchant_id = $2 AND livemode = $3`,
		id, scope.MerchantID, scope.Livemode); err != nil {
		return err
	}
	return t.execOne(ctx, "customer", `DELETE FROM customers WHERE id = $1 AND merchant_id = $2 AND livemode = $3`,
		id, scope.MerchantID, scope.Livemode)
}

func (t *tx) ListCustomers(ctx context.Context, scope payloom.Scope, f payloom.CustomerFilter) ([]*payloom.Customer, bool, error) {
	var a args
	var where []string
	if f.Email != nil {
		where = append(where, "email = "+a.arg(*f.Email))
	}
	if f.Reference != nil {
		where = append(where, "reference = "+a.arg(*f.Reference))
	}
	return list(ctx, t, "customer", "customers", customerCols, scope, f.ListParams, a, where, t.scanCustomer)
}

func (t *tx) scanCustomer(row rowScanner) (*payloom.Customer, error) {
	var c payloom.Customer
	var docType string
	var metadata []byte
	var created, updated pgtype.Timestamptz
	var key pgtype.Text
	if err := row.Scan(&c.ID, &c.MerchantID, &c.Livemode, &c.Name, &c.Email, &c.Phone, &c.Document, &docType,
		&c.Reference, &metadata, &created, &updated, &key); err != nil {
		return nil, t.dbError("customer", err)
	}
	m, err := decMetadata(metadata)
	if err != nil {
		return nil, scanErr("customer", err)
	}
	c.Object = "customer"
	c.DocumentType = payloom.DocumentType(docType)
	c.Metadata = m
	c.CreatedAt = decTime(created)
	c.UpdatedAt = decTime(updated)
	c.CreationKey = key.String
	return &c, nil
}

const paymentMethodCols = `id, merchant_id, livemode, customer_id, type, card_token, brand, first6, last4,
	exp_month, exp_year, fingerprint, holder_name, created_at, updated_at, country`

func (t *tx) CreatePaymentMethod(ctx context.Context, m *payloom.SavedPaymentMethod) error {
	// The customer must exist in the method's scope: the foreign key alone
	// would accept another merchant's customer. The lock keeps a
	// concurrent DeleteCustomer from leaving the method orphaned.
	if _, err := t.GetCustomer(ctx, m.Scope(), m.CustomerID); err != nil {
		return err
	}
	var e enc
	c := cardOf(m)
	args := []any{m.ID, m.MerchantID, m.Livemode, m.CustomerID, string(m.Type), m.CardToken,
		string(c.Brand), c.First6, c.Last4, c.ExpMonth, c.ExpYear, c.Fingerprint, c.HolderName,
		e.timeNotNull("payment method created_at", m.CreatedAt), e.timeNotNull("payment method updated_at", m.UpdatedAt), c.Country}
	if e.err != nil {
		return e.err
	}
	return t.insertNew(ctx, "payment method", `INSERT INTO payment_methods (`+paymentMethodCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`, args...)
}

// cardOf returns the method's card summary, or an empty one.
func cardOf(m *payloom.SavedPaymentMethod) *payloom.CardSummary {
	if m.Card == nil {
		return &payloom.CardSummary{}
	}
	return m.Card
}

func (t *tx) GetPaymentMethod(ctx context.Context, scope payloom.Scope, id string) (*payloom.SavedPaymentMethod, error) {
	return t.scanPaymentMethod(t.tx.QueryRow(ctx,
		`SELECT `+paymentMethodCols+` FROM payment_methods WHERE id = $1 AND merchant_id = $2 AND livemode = $3`+t.forUpdate(),
		id, scope.MerchantID, scope.Livemode))
}

func (t *tx) GetPaymentMethodByFingerprint(ctx context.Context, scope payloom.Scope, customerID, fingerprint string) (*payloom.SavedPaymentMethod, error) {
	return t.scanPaymentMethod(t.tx.QueryRow(ctx,
		`SELECT `+paymentMethodCols+` FROM payment_methods
		WHERE merchant_id = $1 AND livemode = $2 AND customer_id = $3 AND fingerprint = $4`+t.forUpdate(),
		scope.MerchantID, scope.Livemode, customerID, fingerprint))
}

func (t *tx) UpdatePaymentMethod(ctx context.Context, m *payloom.SavedPaymentMethod) error {
	var e enc
	c := cardOf(m)
	args := []any{m.CardToken, string(c.Brand), c.First6, c.Last4, c.ExpMonth, c.ExpYear, c.Fingerprint, c.HolderName,
		e.timeNotNull("payment method updated_at", m.UpdatedAt), c.Country, m.ID, m.MerchantID, m.Livemode}
	if e.err != nil {
		return e.err
	}
	return t.execOne(ctx, "payment method", `UPDATE payment_methods SET card_token = $1, brand = $2, first6 = $3,
		last4 = $4, exp_month = $5, exp_year = $6, fingerprint = $7, holder_name = $8, updated_at = $9, country = $10
		WHERE id = $11 AND merchant_id = $12 AND livemode = $13`, args...)
}

func (t *tx) DeletePaymentMethod(ctx context.Context, scope payloom.Scope, id string) error {
	return t.execOne(ctx, "payment method", `DELETE FROM payment_methods WHERE id = $1 AND merchant_id = $2 AND livemode = $3`,
		id, scope.MerchantID, scope.Livemode)
}

func (t *tx) ListPaymentMethods(ctx context.Context, scope payloom.Scope, customerID string, p payloom.ListParams) ([]*payloom.SavedPaymentMethod, bool, error) {
	var a args
	where := []string{"customer_id = " + a.arg(customerID)}
	return list(ctx, t, "payment method", "payment_methods", paymentMethodCols, scope, p, a, where, t.scanPaymentMethod)
}

func (t *tx) scanPaymentMethod(row rowScanner) (*payloom.SavedPaymentMethod, error) {
	var m payloom.SavedPaymentMethod
	c := &payloom.CardSummary{}
	var typ, brand string
	var created, updated pgtype.Timestamptz
	if err := row.Scan(&m.ID, &m.MerchantID, &m.Livemode, &m.CustomerID, &typ, &m.CardToken, &brand,
		&c.First6, &c.Last4, &c.ExpMonth, &c.ExpYear, &c.Fingerprint, &c.HolderName, &created, &updated, &c.Country); err != nil {
		return nil, t.dbError("payment method", err)
	}
	m.Object = "payment_method"
	m.Type = payloom.PaymentMethodType(typ)
	c.Brand = payloom.CardBrand(brand)
	m.Card = c
	m.CreatedAt = decTime(created)
	m.UpdatedAt = decTime(updated)
	return &m, nil
}
