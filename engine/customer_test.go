package engine_test

import (
	"context"
	"sync"
	"testing"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/engine"
	"github.com/payloom/payloom/processor/sandbox"
)

// A CPF and a CNPJ with valid check digits.
const (
	validCPF  = "52998224725"
	validCNPJ = "11222333000181"
)

func (e *env) customer(req *payloom.CustomerCreate) *payloom.Customer {
	e.t.Helper()
	if req == nil {
		req = &payloom.CustomerCreate{Name: "Ada"}
	}
	c, err := e.eng.CreateCustomer(e.ctx, e.scope, payloom.NewID("op"), req)
	if err != nil {
		e.t.Fatalf("CreateCustomer: %v", err)
	}
	return c
}

func (e *env) methods(customerID string) []*payloom.SavedPaymentMethod {
	e.t.Helper()
	l, err := e.eng.ListPaymentMethods(e.ctx, e.scope, customerID, payloom.ListParams{Limit: 100})
	if err != nil {
		e.t.Fatalf("ListPaymentMethods: %v", err)
	}
	return l.Data
}

func TestCreateCustomerValidates(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name  string
		req   payloom.CustomerCreate
		param string // "" = valid
		check func(c *payloom.Customer) bool
	}{
		{"empty", payloom.CustomerCreate{}, "", func(c *payloom.Customer) bool { return c.Name == "" && c.Document == "" }},
		{"formatted CPF", payloom.CustomerCreate{Document: "529.982.247-25"}, "",
			func(c *payloom.Customer) bool { return c.Document == validCPF && c.DocumentType == payloom.DocumentCPF }},
		{"formatted CNPJ", payloom.CustomerCreate{Document: "11.222.333/0001-81"}, "",
			func(c *payloom.Customer) bool {
				return c.Document == validCNPJ && c.DocumentType == payloom.DocumentCNPJ
			}},
		{"email lower-cased", payloom.CustomerCreate{Email: " Ada@Example.COM "}, "",
			func(c *payloom.Customer) bool { return c.Email == "ada@example.com" }},
		{"phone normalized", payloom.CustomerCreate{Phone: "+55 (11) 91234-5678"}, "",
			func(c *payloom.Customer) bool { return c.Phone == "+5511912345678" }},
		{"name trimmed", payloom.CustomerCreate{Name: "  Ada Lovelace "}, "",
			func(c *payloom.Customer) bool { return c.Name == "Ada Lovelace" }},
		{"bad CPF check digit", payloom.CustomerCreate{Document: "52998224724"}, "document", nil},
		{"CPF of one digit", payloom.CustomerCreate{Document: "11111111111"}, "document", nil},
		{"bad CNPJ", payloom.CustomerCreate{Document: "11222333000182"}, "document", nil},
		{"12 digits", payloom.CustomerCreate{Document: "123456789012"}, "document", nil},
		{"letters", payloom.CustomerCreate{Document: "529a98224725"}, "document", nil},
		{"email without domain", payloom.CustomerCreate{Email: "ada@"}, "email", nil},
		{"email with name", payloom.CustomerCreate{Email: "Ada <ada@example.com>"}, "email", nil},
		{"email without dot", payloom.CustomerCreate{Email: "ada@localhost"}, "email", nil},
		{"phone too short", payloom.CustomerCreate{Phone: "1234567"}, "phone", nil},
		{"phone letters", payloom.CustomerCreate{Phone: "+55 11 CALL-ME"}, "phone", nil},
		{"phone plus inside", payloom.CustomerCreate{Phone: "55+11912345678"}, "phone", nil},
		{"name control", payloom.CustomerCreate{Name: "Ada\x00"}, "name", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := e.eng.CreateCustomer(e.ctx, e.scope, payloom.NewID("op"), &tt.req)
			if tt.param == "" {
				if err != nil {
					t.Fatalf("CreateCustomer(%+v) = %v; want success", tt.req, err)
				}
				if !tt.check(c) {
					t.Errorf("CreateCustomer(%+v) = %+v; not normalized as expected", tt.req, c)
				}
				return
			}
			if payloom.ErrorCode(err) != payloom.CodeValidation || payloom.ErrorParam(err) != tt.param {
				t.Fatalf("CreateCustomer(%+v) = %v; want validation_error on %q", tt.req, err, tt.param)
			}
		})
	}
}

func TestCreateCustomerResumesByOperationKey(t *testing.T) {
	e := newEnv(t)
	req := &payloom.CustomerCreate{Name: "Ada", Metadata: map[string]string{"a": "b"}}
	c1, err := e.eng.CreateCustomer(e.ctx, e.scope, "op_same", req)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := e.eng.CreateCustomer(e.ctx, e.scope, "op_same", req)
	if err != nil {
		t.Fatal(err)
	}
	if c1.ID != c2.ID {
		t.Errorf("CreateCustomer twice with one operation key = %s, %s; want one customer", c1.ID, c2.ID)
	}
	l, err := e.eng.ListCustomers(e.ctx, e.scope, payloom.CustomerFilter{})
	if err != nil || len(l.Data) != 1 {
		t.Fatalf("ListCustomers = %v, %v; want one customer", l, err)
	}
	req.Metadata["a"] = "changed"
	if got, _ := e.eng.Customer(e.ctx, e.scope, c1.ID); got.Metadata["a"] != "b" {
		t.Errorf("Metadata[a] = %q; want b (the request's map is copied)", got.Metadata["a"])
	}
}

func TestUpdateCustomer(t *testing.T) {
	e := newEnv(t)
	c := e.customer(&payloom.CustomerCreate{Name: "Ada", Email: "ada@example.com", Document: validCPF,
		Metadata: map[string]string{"keep": "1", "drop": "2"}})
	empty := ""
	doc := "11.222.333/0001-81"
	got, err := e.eng.UpdateCustomer(e.ctx, e.scope, c.ID, &payloom.CustomerUpdate{
		Email: &empty, Document: &doc, Metadata: map[string]string{"drop": "", "new": "3"}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Ada" || got.Email != "" || got.Document != validCNPJ || got.DocumentType != payloom.DocumentCNPJ ||
		len(got.Metadata) != 2 || got.Metadata["keep"] != "1" || got.Metadata["new"] != "3" {
		t.Errorf("UpdateCustomer = %+v; want name kept, email cleared, CNPJ, metadata merged", got)
	}
	if stored, _ := e.eng.Customer(e.ctx, e.scope, c.ID); stored.Document != validCNPJ || stored.Email != "" {
		t.Errorf("stored customer = %+v; want the update", stored)
	}
	_, err = e.eng.UpdateCustomer(e.ctx, e.scope, c.ID, &payloom.CustomerUpdate{Document: &empty})
	if err != nil {
		t.Fatal(err)
	}
	if stored, _ := e.eng.Customer(e.ctx, e.scope, c.ID); stored.Document != "" || stored.DocumentType != "" {
		t.Errorf("customer after clearing document = %+v; want no document", stored)
	}
	bad := "00000000000"
	_, err = e.eng.UpdateCustomer(e.ctx, e.scope, c.ID, &payloom.CustomerUpdate{Document: &bad})
	if payloom.ErrorParam(err) != "document" {
		t.Errorf("UpdateCustomer(bad document) = %v; want validation_error on document", err)
	}
	// Merged metadata keeps the limit of 20 keys.
	many := map[string]string{}
	for i := range 19 {
		many[string(rune('a'+i))] = "v"
	}
	_, err = e.eng.UpdateCustomer(e.ctx, e.scope, c.ID, &payloom.CustomerUpdate{Metadata: many})
	if payloom.ErrorParam(err) != "metadata" {
		t.Errorf("UpdateCustomer(21 keys in all) = %v; want validation_error on metadata", err)
	}
	many["keep"], many["new"] = "", ""
	if _, err = e.eng.UpdateCustomer(e.ctx, e.scope, c.ID, &payloom.CustomerUpdate{Metadata: many}); err != nil {
		t.Errorf("UpdateCustomer(19 keys after removing 2) = %v; want success", err)
	}
	_, err = e.eng.UpdateCustomer(e.ctx, e.scope, "cus_missing", &payloom.CustomerUpdate{})
	wantCode(t, "UpdateCustomer(unknown)", err, payloom.CodeNotFound)
}

func TestListCustomersEmailIgnoresCase(t *testing.T) {
	e := newEnv(t)
	c := e.customer(&payloom.CustomerCreate{Email: "Ada@Example.com"})
	e.customer(&payloom.CustomerCreate{Email: "bob@example.com"})
	q := "ADA@example.COM"
	l, err := e.eng.ListCustomers(e.ctx, e.scope, payloom.CustomerFilter{Email: &q})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Data) != 1 || l.Data[0].ID != c.ID {
		t.Errorf("ListCustomers(email %q) = %v; want [%s]", q, l.Data, c.ID)
	}
}

// recorder is the sandbox, remembering whether each authorization came
// with a CVC.
type recorder struct {
	payloom.Processor
	mu   sync.Mutex
	cvcs []bool
}

func (r *recorder) Authorize(ctx context.Context, req *payloom.AuthorizeRequest) (*payloom.AuthorizeResult, error) {
	r.mu.Lock()
	r.cvcs = append(r.cvcs, req.Card.CVC.Reveal() != "")
	r.mu.Unlock()
	return r.Processor.Authorize(ctx, req)
}

func TestSavePaymentMethod(t *testing.T) {
	e := newEnv(t)
	rec := &recorder{Processor: e.sandbox}
	e.setProcessor(rec)
	c := e.customer(nil)
	save := func(number string, capture payloom.CaptureMethod) *payloom.Payment {
		t.Helper()
		req := paymentReq(e.token(number), 1000, capture)
		req.CustomerID, req.SavePaymentMethod = c.ID, true
		p, err := e.eng.CreatePayment(e.ctx, e.scope, payloom.NewID("op"), req)
		if err != nil {
			t.Fatalf("CreatePayment: %v", err)
		}
		return p
	}

	// Declines, failures and 3-D Secure save nothing.
	for _, number := range []string{sandbox.CardDeclined, sandbox.CardProcessingError, sandbox.CardRequires3DS} {
		if p := save(number, payloom.CaptureMethodAutomatic); p.PaymentMethod.ID != "" {
			t.Errorf("payment %s with card %s... saved %s; want nothing saved", p.Status, number[:6], p.PaymentMethod.ID)
		}
	}
	if ms := e.methods(c.ID); len(ms) != 0 {
		t.Fatalf("saved methods after unsuccessful payments = %d; want 0", len(ms))
	}

	// An authorization (manual capture) saves the card.
	first := save(sandbox.CardVisa, payloom.CaptureMethodManual)
	if first.Status != payloom.PaymentStatusAuthorized || !payloom.HasPrefix(first.PaymentMethod.ID, payloom.PrefixPaymentMethod) {
		t.Fatalf("payment = %s, payment_method.id %q; want authorized with a pm_", first.Status, first.PaymentMethod.ID)
	}
	ms := e.methods(c.ID)
	if len(ms) != 1 || ms[0].ID != first.PaymentMethod.ID || ms[0].Card.Fingerprint != first.PaymentMethod.Card.Fingerprint ||
		ms[0].Card.Token != "" || ms[0].CardToken != first.PaymentMethod.Card.Token || ms[0].CustomerID != c.ID {
		t.Fatalf("saved methods = %+v; want the payment's card, token hidden in the summary", ms)
	}
	if stored := e.payment(first.ID); stored.PaymentMethod.ID != first.PaymentMethod.ID {
		t.Errorf("stored payment_method.id = %q; want %q", stored.PaymentMethod.ID, first.PaymentMethod.ID)
	}

	// The same card again, through a new token: no duplicate, and the
	// method now charges the newest token.
	again := save(sandbox.CardVisa, payloom.CaptureMethodAutomatic)
	if again.PaymentMethod.ID != first.PaymentMethod.ID {
		t.Errorf("second save = %q; want the existing %q", again.PaymentMethod.ID, first.PaymentMethod.ID)
	}
	ms = e.methods(c.ID)
	if len(ms) != 1 || ms[0].CardToken != again.PaymentMethod.Card.Token {
		t.Errorf("saved methods after a second save = %+v; want one, on the newest token", ms)
	}

	// Paying with the saved method: same fingerprint, no CVC.
	n := len(rec.cvcs)
	req := &payloom.PaymentCreate{Amount: 500, Currency: "USD", PaymentMethodID: first.PaymentMethod.ID,
		CaptureMethod: payloom.CaptureMethodAutomatic}
	p, err := e.eng.CreatePayment(e.ctx, e.scope, payloom.NewID("op"), req)
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != payloom.PaymentStatusCaptured || p.CustomerID != c.ID || p.PaymentMethod.ID != first.PaymentMethod.ID ||
		p.PaymentMethod.Card.Fingerprint != first.PaymentMethod.Card.Fingerprint {
		t.Errorf("payment with the saved method = %s customer %q method %+v; want captured for %s with the same card",
			p.Status, p.CustomerID, p.PaymentMethod, c.ID)
	}
	if len(rec.cvcs) != n+1 || rec.cvcs[n] {
		t.Errorf("authorizations with a CVC = %v; want the saved method's sent without one", rec.cvcs[n:])
	}
	if req.CardToken != "" || req.CustomerID != "" {
		t.Errorf("the caller's request was changed: %+v", req)
	}
	// A card another customer saved is not this one's; saving a second,
	// different card adds a method.
	other := e.customer(nil)
	_, err = e.eng.CreatePayment(e.ctx, e.scope, payloom.NewID("op"), &payloom.PaymentCreate{Amount: 500, Currency: "USD",
		PaymentMethodID: first.PaymentMethod.ID, CustomerID: other.ID})
	if payloom.ErrorParam(err) != "payment_method[card][payment_method]" || payloom.ErrorCode(err) != payloom.CodeValidation {
		t.Errorf("CreatePayment(another customer's method) = %v; want validation_error on payment_method[card][payment_method]", err)
	}
	save(sandbox.CardMastercard, payloom.CaptureMethodAutomatic)
	if ms := e.methods(c.ID); len(ms) != 2 {
		t.Errorf("saved methods after a second card = %d; want 2", len(ms))
	}
}

func TestPaymentCustomerChecks(t *testing.T) {
	e := newEnv(t)
	c := e.customer(nil)
	tok := e.token(sandbox.CardVisa)
	tests := []struct {
		name        string
		req         payloom.PaymentCreate
		code, param string
	}{
		{"unknown customer", payloom.PaymentCreate{CardToken: tok, CustomerID: "cus_missing"}, payloom.CodeNotFound, "customer_id"},
		{"save without customer", payloom.PaymentCreate{CardToken: tok, SavePaymentMethod: true}, payloom.CodeValidation, "customer_id"},
		{"save for free-text customer", payloom.PaymentCreate{CardToken: tok, CustomerID: "crm-1", SavePaymentMethod: true}, payloom.CodeValidation, "customer_id"},
		{"unknown method", payloom.PaymentCreate{PaymentMethodID: "pm_missing"}, payloom.CodeNotFound, "payment_method[card][payment_method]"},
		{"token and method", payloom.PaymentCreate{CardToken: tok, PaymentMethodID: "pm_x"}, payloom.CodeValidation, "payment_method[card][payment_method]"},
		{"customer of another scope", payloom.PaymentCreate{CardToken: tok, CustomerID: c.ID}, payloom.CodeNotFound, "customer_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scope := e.scope
			if tt.name == "customer of another scope" {
				scope.Livemode = true
			}
			tt.req.Amount, tt.req.Currency = 1000, "USD"
			_, err := e.eng.CreatePayment(e.ctx, scope, payloom.NewID("op"), &tt.req)
			if payloom.ErrorCode(err) != tt.code || payloom.ErrorParam(err) != tt.param {
				t.Fatalf("CreatePayment(%s) = %v; want %s on %q", tt.name, err, tt.code, tt.param)
			}
		})
	}
	// A free-text customer_id stays allowed without saving.
	p, err := e.eng.CreatePayment(e.ctx, e.scope, payloom.NewID("op"), &payloom.PaymentCreate{Amount: 1000, Currency: "USD",
		CardToken: tok, CustomerID: "crm-1"})
	if err != nil || p.CustomerID != "crm-1" {
		t.Fatalf("CreatePayment(free-text customer) = %v, %v; want success", p, err)
	}
}

// A crash between the processor call and the record phase leaves the
// card unsaved; the retry records the outcome and saves the card once.
func TestSavePaymentMethodCrash(t *testing.T) {
	for _, phase := range []string{engine.PhaseProcessorCalled, engine.PhasePaymentRecorded} {
		t.Run(phase, func(t *testing.T) {
			e := newEnv(t)
			c := e.customer(nil)
			req := paymentReq(e.token(sandbox.CardVisa), 1000, payloom.CaptureMethodAutomatic)
			req.CustomerID, req.SavePaymentMethod = c.ID, true
			e.crashAt(phase)
			mustCrash(t, phase, func() { _, _ = e.eng.CreatePayment(e.ctx, e.scope, "op_crash", req) })
			e.hook.Store(nil)
			p, err := e.eng.CreatePayment(e.ctx, e.scope, "op_crash", req)
			if err != nil {
				t.Fatal(err)
			}
			ms := e.methods(c.ID)
			if p.Status != payloom.PaymentStatusCaptured || len(ms) != 1 || p.PaymentMethod.ID != ms[0].ID {
				t.Errorf("after the retry: payment %s method %q, saved %d; want captured with the one saved method",
					p.Status, p.PaymentMethod.ID, len(ms))
			}
			if got := e.charges(); got != 1 {
				t.Errorf("charges = %d; want 1", got)
			}
		})
	}
}

func TestDeleteCustomerDeletesItsMethods(t *testing.T) {
	e := newEnv(t)
	c := e.customer(nil)
	req := paymentReq(e.token(sandbox.CardVisa), 1000, payloom.CaptureMethodAutomatic)
	req.CustomerID, req.SavePaymentMethod = c.ID, true
	p, err := e.eng.CreatePayment(e.ctx, e.scope, payloom.NewID("op"), req)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.eng.DeleteCustomer(e.ctx, e.scope, c.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.eng.PaymentMethod(e.ctx, e.scope, p.PaymentMethod.ID)
	wantCode(t, "PaymentMethod(of a deleted customer)", err, payloom.CodeNotFound)
	_, err = e.eng.ListPaymentMethods(e.ctx, e.scope, c.ID, payloom.ListParams{})
	wantCode(t, "ListPaymentMethods(deleted customer)", err, payloom.CodeNotFound)
	// The payment keeps its customer's ID and its card.
	if got := e.payment(p.ID); got.CustomerID != c.ID || got.PaymentMethod.Card.Token == "" {
		t.Errorf("payment after the customer's deletion = %+v; want it unchanged", got)
	}
	err = e.eng.DeleteCustomer(e.ctx, e.scope, c.ID)
	wantCode(t, "DeleteCustomer(again)", err, payloom.CodeNotFound)
}

func TestDeletePaymentMethod(t *testing.T) {
	e := newEnv(t)
	c := e.customer(nil)
	req := paymentReq(e.token(sandbox.CardVisa), 1000, payloom.CaptureMethodAutomatic)
	req.CustomerID, req.SavePaymentMethod = c.ID, true
	p, err := e.eng.CreatePayment(e.ctx, e.scope, payloom.NewID("op"), req)
	if err != nil {
		t.Fatal(err)
	}
	other := payloom.Scope{MerchantID: e.scope.MerchantID, Livemode: true}
	wantCode(t, "DeletePaymentMethod(other scope)", e.eng.DeletePaymentMethod(e.ctx, other, p.PaymentMethod.ID), payloom.CodeNotFound)
	if err := e.eng.DeletePaymentMethod(e.ctx, e.scope, p.PaymentMethod.ID); err != nil {
		t.Fatal(err)
	}
	if ms := e.methods(c.ID); len(ms) != 0 {
		t.Errorf("methods after delete = %d; want 0", len(ms))
	}
	_, err = e.eng.CreatePayment(e.ctx, e.scope, payloom.NewID("op"), &payloom.PaymentCreate{Amount: 1000, Currency: "USD",
		PaymentMethodID: p.PaymentMethod.ID})
	wantCode(t, "CreatePayment(deleted method)", err, payloom.CodeNotFound)
}

func (e *env) audit(f payloom.AuditFilter) []*payloom.AuditEvent {
	e.t.Helper()
	f.Limit = 100
	l, err := e.eng.ListAuditEvents(e.ctx, f)
	if err != nil {
		e.t.Fatalf("ListAuditEvents: %v", err)
	}
	return l.Data
}

func TestAPIKeyAudit(t *testing.T) {
	e := newEnv(t)
	ctx := payloom.WithActor(e.ctx, payloom.Actor{ID: "cli", Source: "cli"})
	key, _, err := e.eng.CreateAPIKey(ctx, e.merchant.ID, true, payloom.PermissionPaymentsRead, payloom.PermissionRawCardData)
	if err != nil {
		t.Fatal(err)
	}
	if want := []payloom.Permission{payloom.PermissionPaymentsRead, payloom.PermissionRawCardData}; len(key.Permissions) != 2 ||
		key.Permissions[0] != want[0] || key.Permissions[1] != want[1] {
		t.Errorf("key permissions = %v; want %v", key.Permissions, want)
	}
	if err := e.eng.RevokeAPIKey(ctx, key.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.eng.RevokeAPIKey(ctx, key.ID); err != nil {
		t.Fatal(err)
	}
	evs := e.audit(payloom.AuditFilter{MerchantID: &e.merchant.ID})
	if len(evs) != 2 {
		t.Fatalf("audit events = %d; want created and revoked once", len(evs))
	}
	revoked, created := evs[0], evs[1]
	for _, tt := range []struct {
		ev     *payloom.AuditEvent
		action payloom.AuditAction
	}{{created, payloom.AuditAPIKeyCreated}, {revoked, payloom.AuditAPIKeyRevoked}} {
		if tt.ev.Action != tt.action || tt.ev.Outcome != payloom.AuditSuccess || tt.ev.Actor != "cli" ||
			tt.ev.Source != "cli" || tt.ev.TargetID != key.ID || !tt.ev.Livemode || tt.ev.MerchantID != e.merchant.ID {
			t.Errorf("audit event = %+v; want %s of %s by cli", tt.ev, tt.action, key.ID)
		}
	}
	if created.Details["permissions"] != "payments:read,raw_card_data" {
		t.Errorf("created details = %v; want the permissions", created.Details)
	}

	// Default permissions; a failed creation writes nothing; an unknown
	// permission is refused.
	def, _, err := e.eng.CreateAPIKey(e.ctx, e.merchant.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	if payloom.JoinPermissions(def.Permissions) != payloom.JoinPermissions(payloom.DefaultPermissions()) {
		t.Errorf("default key permissions = %v; want %v", def.Permissions, payloom.DefaultPermissions())
	}
	_, _, err = e.eng.CreateAPIKey(e.ctx, "mrch_missing", false)
	wantCode(t, "CreateAPIKey(unknown merchant)", err, payloom.CodeNotFound)
	_, _, err = e.eng.CreateAPIKey(e.ctx, e.merchant.ID, false, "payments:everything")
	wantCode(t, "CreateAPIKey(unknown permission)", err, payloom.CodeValidation)
	evs = e.audit(payloom.AuditFilter{})
	if len(evs) != 3 || evs[0].TargetID != def.ID || evs[0].Actor != payloom.AuditActorSystem {
		t.Errorf("audit events = %d, newest %+v; want 3, the newest by the system for %s", len(evs), evs[0], def.ID)
	}
}

func TestRecordAudit(t *testing.T) {
	e := newEnv(t)
	ctx := payloom.WithActor(e.ctx, payloom.Actor{ID: "key_x", Source: "192.0.2.1"})
	ev := payloom.NewAuditEvent(ctx, e.scope, payloom.AuditPermissionDenied, payloom.AuditDenied, "", e.clock.Now())
	ev.Details["permission"] = "audit:read"
	if err := e.eng.RecordAudit(ctx, ev); err != nil {
		t.Fatal(err)
	}
	evs := e.audit(payloom.AuditFilter{Action: ptr(payloom.AuditPermissionDenied)})
	if len(evs) != 1 || evs[0].Actor != "key_x" || evs[0].Source != "192.0.2.1" || evs[0].Details["permission"] != "audit:read" {
		t.Errorf("audit events = %+v; want the recorded denial", evs)
	}
}
