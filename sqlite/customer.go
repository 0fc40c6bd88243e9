package sqlite

import (
	"context"
	"database/sql"

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
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, args...)
}

func (t *tx) GetCustomer(ctx context.Context, scope payloom.Scope, id string) (*payloom.Customer, error) {
	return scanCustomer(t.tx.QueryRowContext(t.c(ctx),
		`SELECT `+customerCols+` FROM customers WHERE id = ? AND merchant_id = ? AND livemode = ?`,
		id, scope.MerchantID, scope.Livemode))
}

func (t *tx) GetCustomerByCreationKey(ctx context.Context, scope payloom.Scope, key string) (*payloom.Customer, error) {
	if key == "" {
		return nil, notFound("customer")
	}
	return scanCustomer(t.tx.QueryRowContext(t.c(ctx),
		`SELECT `+customerCols+` FROM customers WHERE merchant_id = ? AND livemode = ? AND creation_key = ?`,
		scope.MerchantID, scope.Livemode, key))
}

func (t *tx) UpdateCustomer(ctx context.Context, c *payloom.Customer) error {
	var e enc
	args := []any{c.Name, c.Email, c.Phone, c.Document, string(c.DocumentType), c.Reference,
		e.metadata(c.Metadata), e.time(c.UpdatedAt), c.ID, c.MerchantID, c.Livemode}
	if e.err != nil {
		return e.err
	}
	return t.execOne(ctx, "customer", `UPDATE customers SET name = ?, email = ?, phone = ?, document = ?,
		document_type = ?, reference = ?, metadata = ?, updated_at = ?
		WHERE id = ? AND merchant_id = ? AND livemode = ?`, args...)
}

func (t *tx) DeleteCustomer(ctx context.Context, scope payloom.Scope, id string) error {
	if _, err := t.exec(ctx, "payment method",
		`DELETE FROM payment_methods WHERE customer_id = ? AND merchant_id = ? AND livemode = ?`,
		id, scope.MerchantID, scope.Livemode); err != nil {
		return err
	}
	return t.execOne(ctx, "customer", `DELETE FROM customers WHERE id = ? AND merchant_id = ? AND livemode = ?`,
		id, scope.MerchantID, scope.Livemode)
}

func (t *tx) ListCustomers(ctx context.Context, scope payloom.Scope, f payloom.CustomerFilter) ([]*payloom.Customer, bool, error) {
	var where []string
	var args []any
	if f.Email != nil {
		where = append(where, "email = ?")
		args = append(args, *f.Email)
	}
	if f.Reference != nil {
		where = append(where, "reference = ?")
		args = append(args, *f.Reference)
	}
	return list(ctx, t, "customer", "customers", customerCols, scope, f.ListParams, where, args, scanCustomer)
}

func scanCustomer(row scanner) (*payloom.Customer, error) {
	var c payloom.Customer
	var docType, metadata string
	var created, updated sql.NullInt64
	var key sql.NullString
	if err := row.Scan(&c.ID, &c.MerchantID, &c.Livemode, &c.Name, &c.Email, &c.Phone, &c.Document, &docType,
		&c.Reference, &metadata, &created, &updated, &key); err != nil {
		return nil, dbError("customer", err)
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
	// would accept another merchant's customer.
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
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, args...)
}

// cardOf returns the method's card summary, or an empty one.
func cardOf(m *payloom.SavedPaymentMethod) *payloom.CardSummary {
	if m.Card == nil {
		return &payloom.CardSummary{}
	}
	return m.Card
}

func (t *tx) GetPaymentMethod(ctx context.Context, scope payloom.Scope, id string) (*payloom.SavedPaymentMethod, error) {
	return scanPaymentMethod(t.tx.QueryRowContext(t.c(ctx),
		`SELECT `+paymentMethodCols+` FROM payment_methods WHERE id = ? AND merchant_id = ? AND livemode = ?`,
		id, scope.MerchantID, scope.Livemode))
}

func (t *tx) GetPaymentMethodByFingerprint(ctx context.Context, scope payloom.Scope, customerID, fingerprint string) (*payloom.SavedPaymentMethod, error) {
	return scanPaymentMethod(t.tx.QueryRowContext(t.c(ctx),
		`SELECT `+paymentMethodCols+` FROM payment_methods
		WHERE merchant_id = ? AND livemode = ? AND customer_id = ? AND fingerprint = ?`,
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
	return t.execOne(ctx, "payment method", `UPDATE payment_methods SET card_token = ?, brand = ?, first6 = ?,
		last4 = ?, exp_month = ?, exp_year = ?, fingerprint = ?, holder_name = ?, updated_at = ?, country = ?
		WHERE id = ? AND merchant_id = ? AND livemode = ?`, args...)
}

func (t *tx) DeletePaymentMethod(ctx context.Context, scope payloom.Scope, id string) error {
	return t.execOne(ctx, "payment method", `DELETE FROM payment_methods WHERE id = ? AND merchant_id = ? AND livemode = ?`,
		id, scope.MerchantID, scope.Livemode)
}

func (t *tx) ListPaymentMethods(ctx context.Context, scope payloom.Scope, customerID string, p payloom.ListParams) ([]*payloom.SavedPaymentMethod, bool, error) {
	return list(ctx, t, "payment method", "payment_methods", paymentMethodCols, scope, p,
		[]string{"customer_id = ?"}, []any{customerID}, scanPaymentMethod)
}

func scanPaymentMethod(row scanner) (*payloom.SavedPaymentMethod, error) {
	var m payloom.SavedPaymentMethod
	c := &payloom.CardSummary{}
	var typ, brand string
	var created, updated sql.NullInt64
	if err := row.Scan(&m.ID, &m.MerchantID, &m.Livemode, &m.CustomerID, &typ, &m.CardToken, &brand,
		&c.First6, &c.Last4, &c.ExpMonth, &c.ExpYear, &c.Fingerprint, &c.HolderName, &created, &updated, &c.Country); err != nil {
		return nil, dbError("payment method", err)
	}
	m.Object = "payment_method"
	m.Type = payloom.PaymentMethodType(typ)
	c.Brand = payloom.CardBrand(brand)
	m.Card = c
	m.CreatedAt = decTime(created)
	m.UpdatedAt = decTime(updated)
	return &m, nil
}
