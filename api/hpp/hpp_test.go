package hpp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/engine"
	"github.com/payloom/payloom/processor/sandbox"
	"github.com/payloom/payloom/sqlite"
	"github.com/payloom/payloom/vault"
)

const (
	cardVisa     = "4242424242424242"
	cardDeclined = "4000000000000002"
	card3DS      = "4000000000003220"
)

// env is the real stack behind the page: a SQLite file, the vault, the
// sandbox (with its challenge page), the engine, and this package's
// handler, served on 127.0.0.1.
type env struct {
	t        *testing.T
	ctx      context.Context
	url      string
	eng      *engine.Engine
	vault    *vault.Vault
	sandbox  *sandbox.Processor
	merchant *payloom.Merchant
	scope    payloom.Scope
	logs     *lockedBuffer
	now      *clock
	saved    map[string][]payloom.CardSummary // by customer
}

type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newEnv's opts may change the engine's Config (its processor) before New.
func newEnv(t *testing.T, opts ...func(*engine.Config)) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "payloom.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	keys, err := vault.NewKeys(bytes.Repeat([]byte{9}, vault.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, logs: &lockedBuffer{}, now: &clock{}, saved: map[string][]payloom.CardSummary{}}
	e.vault = vault.New(st, keys, vault.Options{})
	e.sandbox = sandbox.New(st, sandbox.Options{})
	logger := slog.New(slog.NewJSONHandler(e.logs, nil))

	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	e.url = srv.URL
	cfg := engine.Config{
		Store: st, Vault: e.vault, Logger: logger, PublicURL: srv.URL, Clock: e.now.Now,
		Processor: func(s payloom.Scope) (payloom.Processor, error) {
			if s.Livemode {
				return nil, errors.New("no live-mode processor in these tests")
			}
			return e.sandbox, nil
		},
	}
	for _, o := range opts {
		o(&cfg)
	}
	e.eng = engine.New(cfg)
	mux := http.NewServeMux()
	pages := New(Config{Checkout: e.eng, Auth: e.eng, Vault: e.vault, PublicURL: srv.URL, Logger: logger, Clock: e.now.Now,
		MaxPaymentAttempts: cfg.MaxPaymentAttempts,
		SavedCards: func(_ context.Context, scope payloom.Scope, customer string) ([]payloom.CardSummary, error) {
			return e.saved[customer], nil
		}})
	mux.Handle("/pay/", pages)
	mux.Handle("/receipts/", pages)
	mux.Handle("/assets/", pages)
	mux.Handle("/sandbox/", e.sandbox.ChallengeHandler(logger))
	handler = mux

	e.merchant = &payloom.Merchant{Name: "Acme Coffee"}
	if err := e.eng.CreateMerchant(ctx, e.merchant); err != nil {
		t.Fatal(err)
	}
	e.scope = payloom.Scope{MerchantID: e.merchant.ID}
	return e
}

// create makes a hosted-page payment and returns it with its page path.
func (e *env) create(edit func(*payloom.PaymentCreate)) (*payloom.Payment, string) {
	e.t.Helper()
	req := &payloom.PaymentCreate{Amount: 2500, Currency: "USD", Description: "Order 1042",
		PageOptions: payloom.PageOptions{LineItems: []payloom.LineItem{
			{Description: "Coffee beans", Amount: 1000, Quantity: 2}, {Description: "Shipping", Amount: 500, Quantity: 1}}}}
	if edit != nil {
		edit(req)
	}
	p, err := e.eng.CreatePayment(e.ctx, e.scope, payloom.NewID("op"), req)
	if err != nil {
		e.t.Fatalf("CreatePayment: %v", err)
	}
	return p, strings.TrimPrefix(p.PaymentURL, e.url)
}

func (e *env) payment(id string) *payloom.Payment {
	e.t.Helper()
	p, err := e.eng.Payment(e.ctx, e.scope, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// browser is a client with a cookie jar that does not follow redirects, so
// that tests see each hop.
type browser struct {
	e    *env
	c    *http.Client
	lang string
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type page struct {
	status int
	header http.Header
	body   string
}

func (p *page) location() string { return p.header.Get("Location") }

func (b *browser) do(method, path string, form url.Values, headers ...string) *page {
	b.e.t.Helper()
	if !strings.HasPrefix(path, "http") {
		path = b.e.url + path
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, path, body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if b.lang != "" {
		req.Header.Set("Accept-Language", b.lang)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return &page{status: resp.StatusCode, header: resp.Header, body: string(raw)}
}

func (b *browser) get(path string) *page { return b.do("GET", path, nil) }

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="(\w+)" value="([^"]*)">`)

// form returns the hidden fields of a page's form.
func form(t *testing.T, p *page) url.Values {
	t.Helper()
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(p.body, -1) {
		v.Set(m[1], htmlUnescape(m[2]))
	}
	if v.Get("s") == "" || v.Get("csrf") == "" {
		t.Fatalf("page has no form with s and csrf:\n%s", p.body)
	}
	return v
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&#43;", "+", "&#34;", `"`, "&amp;", "&", "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(s)
}

// pay posts a card on the page at path and returns the response.
func (b *browser) pay(path, number, exp, cvc string) *page {
	b.e.t.Helper()
	p := b.get(path)
	if p.status != 200 {
		b.e.t.Fatalf("GET %s = %d; want the form", path, p.status)
	}
	f := form(b.e.t, p)
	f.Set("number", number)
	f.Set("exp", exp)
	f.Set("cvc", cvc)
	f.Set("name", "Ada Lovelace")
	return b.do("POST", strings.SplitN(path, "?", 2)[0], f, "Sec-Fetch-Site", "same-origin", "Origin", "null")
}

// follow follows same-server redirects (and the sandbox's) until a page
// answers or the redirect leaves the server; it returns the last answer.
func (b *browser) follow(p *page) *page {
	b.e.t.Helper()
	for i := 0; p.status == http.StatusSeeOther || p.status == http.StatusFound; i++ {
		loc := p.location()
		if i > 10 || (strings.HasPrefix(loc, "http") && !strings.HasPrefix(loc, b.e.url)) {
			return p
		}
		p = b.get(loc)
	}
	return p
}

func expiry() string { return "12 / " + time.Now().AddDate(3, 0, 0).Format("06") }

func TestFormPage(t *testing.T) {
	e := newEnv(t)
	p, path := e.create(func(r *payloom.PaymentCreate) {
		r.SuccessURL = "https://shop.example/thanks"
		r.FailureURL = "https://shop.example/cart"
	})
	b := e.browser()
	pg := b.get(path)
	if pg.status != 200 {
		t.Fatalf("GET %s = %d %s", path, pg.status, pg.body)
	}
	for _, want := range []string{"Acme Coffee", "$25.00", "Coffee beans", "Qty 2 × $10.00", "$20.00", "Shipping", "Pay $25.00",
		`lang="en"`, "Test mode", "Cancel and return to Acme Coffee", "payment_id=" + p.ID, "This payment link expires on",
		`autocomplete="cc-number"`, `autocomplete="cc-exp"`, `autocomplete="cc-csc"`} {
		if !strings.Contains(pg.body, want) {
			t.Errorf("form page lacks %q", want)
		}
	}
	// Every visible field has a label.
	for _, m := range regexp.MustCompile(`<input ([^>]*)>`).FindAllStringSubmatch(pg.body, -1) {
		if strings.Contains(m[1], `type="hidden"`) {
			continue
		}
		id := regexp.MustCompile(`id="([^"]+)"`).FindStringSubmatch(m[1])
		if id == nil || !strings.Contains(pg.body, `<label for="`+id[1]+`"`) {
			t.Errorf("input %s has no label", m[0])
		}
	}
	// No inline script, no inline style, no event handler attributes.
	if regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`).MatchString(pg.body) || strings.Contains(pg.body, "style=") ||
		regexp.MustCompile(`\son[a-z]+=`).MatchString(pg.body) {
		t.Errorf("the page has inline script, style or handlers:\n%s", pg.body)
	}
	csp := pg.header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'",
		"base-uri 'none'", "form-action 'self' " + e.url + " https://shop.example"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") {
		t.Errorf("Content-Security-Policy %q allows unsafe sources", csp)
	}
	for h, want := range map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
		"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Content-Type": "text/html; charset=utf-8"} {
		if got := pg.header.Get(h); got != want {
			t.Errorf("%s = %q; want %q", h, got, want)
		}
	}
	cookies := strings.Join(pg.header.Values("Set-Cookie"), "\n")
	for _, want := range []string{"payloom_page=", "payloom_csrf=", "Path=/pay/" + p.ID, "HttpOnly", "SameSite=Lax", "SameSite=Strict"} {
		if !strings.Contains(cookies, want) {
			t.Errorf("cookies %q lack %q", cookies, want)
		}
	}
	// The assets the page uses are served.
	for _, m := range regexp.MustCompile(`(?:src|href)="(/assets/[^"]+)"`).FindAllStringSubmatch(pg.body, -1) {
		a := b.get(htmlUnescape(m[1]))
		if a.status != 200 || !strings.Contains(a.header.Get("Content-Type"), "text/") || a.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s = %d %s", m[1], a.status, a.header.Get("Content-Type"))
		}
	}
	if a := b.get("/assets/other.js"); a.status != 404 {
		t.Errorf("GET /assets/other.js = %d; want 404", a.status)
	}
}

func TestLanguage(t *testing.T) {
	e := newEnv(t)
	_, path := e.create(func(r *payloom.PaymentCreate) { r.Currency = "BRL"; r.Amount = 123456; r.LineItems = nil })
	for _, tt := range []struct {
		accept, query, wantLang, wantAmount, wantText string
	}{
		{"pt-BR,pt;q=0.9,en;q=0.8", "", "pt-BR", "R$\u00a01.234,56", "Número do cartão"},
		{"en-US,en;q=0.9", "", "en", "R$1,234.56", "Card number"},
		{"fr-FR, pt;q=0.5", "", "pt-BR", "R$\u00a01.234,56", "Pagar R$\u00a01.234,56"},
		{"de", "", "en", "R$1,234.56", "Security code"},
		{"en", "pt", "pt-BR", "R$\u00a01.234,56", "Validade"},
		{"pt-BR", "en", "en", "R$1,234.56", "Expiry date"},
	} {
		b := e.browser()
		b.lang = tt.accept
		p := path
		if tt.query != "" {
			p += "&lang=" + tt.query
		}
		pg := b.get(p)
		for _, want := range []string{`lang="` + tt.wantLang + `"`, tt.wantAmount, tt.wantText} {
			if !strings.Contains(pg.body, want) {
				t.Errorf("Accept-Language %q, lang=%q: page lacks %q", tt.accept, tt.query, want)
			}
		}
	}
}

func TestFormatMoney(t *testing.T) {
	for _, tt := range []struct {
		v    int64
		c    payloom.Currency
		l    lang
		want string
	}{
		{1050, "USD", langEN, "$10.50"},
		{123456789, "USD", langEN, "$1,234,567.89"},
		{5, "USD", langEN, "$0.05"},
		{1050, "USD", langPTBR, "US$\u00a010,50"},
		{123456, "BRL", langPTBR, "R$\u00a01.234,56"},
		{123456, "BRL", langEN, "R$1,234.56"},
		{1235, "JPY", langEN, "¥1,235"},
		{1500, "BHD", langEN, "BHD\u00a01.500"},
		{1500, "BHD", langPTBR, "BHD\u00a01,500"},
		{999, "CHF", langEN, "CHF\u00a09.99"},
		{100000, "EUR", langPTBR, "€\u00a01.000,00"},
		{-2500, "GBP", langEN, "-£25.00"},
		{0, "EUR", langEN, "€0.00"},
	} {
		if got := formatMoney(tt.v, tt.c, tt.l); got != tt.want {
			t.Errorf("formatMoney(%d, %s, %s) = %q; want %q", tt.v, tt.c, tt.l, got, tt.want)
		}
	}
	at := time.Date(2026, time.March, 4, 15, 9, 0, 0, time.UTC)
	if got := formatDate(at, langEN); got != "March 4, 2026, 3:09 PM UTC" {
		t.Errorf("formatDate(en) = %q", got)
	}
	if got := formatDate(at, langPTBR); got != "4 de março de 2026, 15:09 UTC" {
		t.Errorf("formatDate(pt-BR) = %q", got)
	}
	// Both languages have every message.
	if en, pt := keysSorted(langEN), keysSorted(langPTBR); strings.Join(en, ",") != strings.Join(pt, ",") {
		t.Errorf("message keys differ:\nen %v\npt %v", en, pt)
	}
}

func TestPayAndRedirect(t *testing.T) {
	e := newEnv(t)
	p, path := e.create(func(r *payloom.PaymentCreate) { r.SuccessURL = "https://shop.example/thanks?order=1042" })
	b := e.browser()
	res := b.pay(path, "4242 4242 4242 4242", expiry(), "123")
	if res.status != http.StatusSeeOther || !strings.HasPrefix(res.location(), "/pay/"+p.ID+"/complete?s=") {
		t.Fatalf("POST = %d to %q; want 303 to the completion", res.status, res.location())
	}
	res = b.follow(res)
	if want := "https://shop.example/thanks?order=1042&payment_id=" + p.ID; res.location() != want {
		t.Fatalf("after paying: %d to %q; want a redirect to %s", res.status, res.location(), want)
	}
	if got := e.payment(p.ID); got.Status != payloom.PaymentStatusCaptured || got.PaymentMethod.Card.Last4 != "4242" {
		t.Fatalf("payment = %q; want captured with the visa", got.Status)
	}
	// The paid link shows a clear page and takes no card.
	again := b.get(path)
	if again.status != 200 || !strings.Contains(again.body, "Payment successful") || strings.Contains(again.body, `id="number"`) ||
		!strings.Contains(again.body, `id="receipt-link"`) {
		t.Errorf("paid link = %d %s; want the paid page with a receipt link and no form", again.status, again.body)
	}
	post := b.pay2(path)
	if post.status != http.StatusSeeOther || len(e.payment(p.ID).Attempts) != 1 {
		t.Errorf("POST on a paid link = %d; want a redirect and no new attempt", post.status)
	}

	// Without success_url the page shows the result itself.
	q, path2 := e.create(nil)
	res = b.follow(b.pay(path2, cardVisa, expiry(), "123"))
	if res.status != 200 || !strings.Contains(res.body, "Payment successful") || !strings.Contains(res.body, "You paid $25.00 to Acme Coffee.") {
		t.Errorf("result page = %d %s; want the success page", res.status, res.body)
	}
	if e.payment(q.ID).Status != payloom.PaymentStatusCaptured {
		t.Errorf("payment not captured")
	}
	e.noSecrets(t, cardVisa)
}

// pay2 posts the form of a page that has none (a paid link) with made-up
// fields: the server must refuse to take the card.
func (b *browser) pay2(path string) *page {
	b.e.t.Helper()
	u, _ := url.Parse(path)
	f := url.Values{"s": {u.Query().Get("s")}, "csrf": {"x"}, "number": {cardVisa}, "exp": {expiry()}, "cvc": {"123"}}
	return b.do("POST", u.Path, f)
}

func TestDeclineThenAnotherCard(t *testing.T) {
	e := newEnv(t)
	p, path := e.create(nil)
	b := e.browser()
	b.lang = "pt-BR"
	res := b.follow(b.pay(path, cardDeclined, expiry(), "123"))
	if res.status != 200 || !strings.Contains(res.body, `role="alert"`) || !strings.Contains(res.body, "Seu cartão foi recusado. Tente outro cartão.") ||
		!strings.Contains(res.body, `id="number"`) {
		t.Fatalf("after a decline: %d %s; want the form again with the decline message", res.status, res.body)
	}
	if strings.Contains(res.body, cardDeclined) || strings.Contains(res.body, "4000 0000") {
		t.Errorf("the page shows the declined card number")
	}
	res = b.follow(b.pay(path, cardVisa, expiry(), "123"))
	if res.status != 200 || !strings.Contains(res.body, "Pagamento aprovado") {
		t.Fatalf("second card: %d %s; want the success page", res.status, res.body)
	}
	if got := e.payment(p.ID); got.Status != payloom.PaymentStatusCaptured || len(got.Attempts) != 2 {
		t.Errorf("payment %q with %d attempts; want captured after 2", got.Status, len(got.Attempts))
	}
}

// A page whose payment has had as many attempts as a payment may takes no
// more cards: the next one is refused with a page that says so, and no
// processor is asked.
func TestTooManyAttempts(t *testing.T) {
	e := newEnv(t, func(c *engine.Config) { c.MaxPaymentAttempts = 2 })
	p, path := e.create(nil)
	b := e.browser()
	stale := b.get(path) // a second tab, opened before any card was tried
	res := b.follow(b.pay(path, cardDeclined, expiry(), "123"))
	if res.status != 200 || !strings.Contains(res.body, `id="number"`) {
		t.Fatalf("first declined card: %d %s; want the form again", res.status, res.body)
	}
	// The second decline uses the last attempt: the page explains, and
	// shows no form to type a card that would be refused.
	res = b.follow(b.pay(path, cardDeclined, expiry(), "123"))
	if res.status != 200 || !strings.Contains(res.body, "Too many cards were tried for this payment.") || strings.Contains(res.body, `id="number"`) {
		t.Fatalf("second declined card: %d %s; want the limit explained, no form", res.status, res.body)
	}
	if !strings.Contains(stale.body, `id="number"`) {
		t.Fatalf("the page before any attempt has no form: %s", stale.body)
	}
	// A form still open elsewhere posts a third card: refused.
	f := form(t, stale)
	f.Set("number", cardVisa)
	f.Set("exp", expiry())
	f.Set("cvc", "123")
	res = b.do("POST", "/pay/"+p.ID, f)
	if res.status != http.StatusConflict || !strings.Contains(res.body, "Too many cards were tried for this payment.") ||
		!strings.Contains(res.body, "This payment can no longer be made") || strings.Contains(res.body, `id="number"`) {
		t.Fatalf("third card = %d %s; want 409, the limit explained, no form", res.status, res.body)
	}
	if got := e.payment(p.ID); got.Status != payloom.PaymentStatusRequiresPaymentMethod || len(got.Attempts) != 2 {
		t.Errorf("payment %q with %d attempts; want requires_payment_method with 2", got.Status, len(got.Attempts))
	}
	if n := strings.Count(e.logs.String(), "confirming from the page was refused: too many attempts"); n != 1 {
		t.Errorf("log has %d refusals; want 1", n)
	}
}

func TestServerSideCardChecks(t *testing.T) {
	e := newEnv(t)
	_, path := e.create(nil)
	b := e.browser()
	past := "01 / " + time.Now().AddDate(-1, 0, 0).Format("06")
	for _, tt := range []struct {
		name, number, exp, cvc string
		field, message         string
	}{
		{"bad luhn", "4242424242424241", expiry(), "123", "number", "This card number is not valid"},
		{"letters", "4242abcd42424242", expiry(), "123", "number", "This card number is not valid"},
		{"empty number", "", expiry(), "123", "number", "Enter your card number."},
		{"past expiry", cardVisa, past, "123", "exp", "This card has expired."},
		{"month 13", cardVisa, "13 / 30", "123", "exp", "This expiry date is not valid."},
		{"no expiry", cardVisa, "", "123", "exp", "Enter the expiry date"},
		{"short cvc", cardVisa, expiry(), "12", "cvc", "Enter the 3 or 4 digit security code."},
		{"amex cvc on a visa", cardVisa, expiry(), "1234", "cvc", "Enter the 3 or 4 digit security code."},
	} {
		res := b.pay(path, tt.number, tt.exp, tt.cvc)
		if res.status != http.StatusBadRequest || !strings.Contains(res.body, tt.message) ||
			!strings.Contains(res.body, `id="`+tt.field+`" `) || !regexp.MustCompile(`id="`+tt.field+`"[^>]*aria-invalid="true"`).MatchString(res.body) {
			t.Errorf("%s: POST = %d; want 400 with %q on field %s\n%s", tt.name, res.status, tt.message, tt.field, res.body)
		}
		if tt.number != "" && strings.Contains(res.body, tt.number) {
			t.Errorf("%s: the refused form echoes the card number", tt.name)
		}
	}
	e.noSecrets(t, "4242424242424241")
}

func TestCSRFAndOrigin(t *testing.T) {
	e := newEnv(t)
	p, path := e.create(nil)
	b := e.browser()
	pg := b.get(path)
	f := form(t, pg)
	f.Set("number", cardVisa)
	f.Set("exp", expiry())
	f.Set("cvc", "123")
	action := "/pay/" + p.ID

	// Another browser (no CSRF cookie) with the right secret is refused.
	other := e.browser()
	if res := other.do("POST", action, f); res.status != http.StatusForbidden || !strings.Contains(res.body, "This form has expired") {
		t.Errorf("POST without the CSRF cookie = %d; want 403", res.status)
	}
	// A wrong token is refused.
	bad := url.Values{}
	for k, v := range f {
		bad[k] = v
	}
	bad.Set("csrf", strings.Repeat("A", 43))
	if res := b.do("POST", action, bad); res.status != http.StatusForbidden {
		t.Errorf("POST with a wrong CSRF token = %d; want 403", res.status)
	}
	// A cross-site POST is refused before anything else.
	for _, h := range [][]string{{"Sec-Fetch-Site", "cross-site"}, {"Sec-Fetch-Site", "same-site"}, {"Origin", "https://evil.example"}} {
		if res := b.do("POST", action, f, h...); res.status != http.StatusForbidden {
			t.Errorf("POST with %s: %s = %d; want 403", h[0], h[1], res.status)
		}
	}
	if got := e.payment(p.ID); len(got.Attempts) != 0 {
		t.Fatalf("refused POSTs made %d attempts", len(got.Attempts))
	}
	if res := b.do("POST", action, f, "Sec-Fetch-Site", "same-origin", "Origin", "null"); res.status != http.StatusSeeOther {
		t.Errorf("same-origin POST = %d %s; want 303", res.status, res.body)
	}
}

// A page secret opens its own payment and nothing else.
func TestSecretScoping(t *testing.T) {
	e := newEnv(t)
	a, pathA := e.create(nil)
	bp, pathB := e.create(nil)
	secretOf := func(path string) string { u, _ := url.Parse(path); return u.Query().Get("s") }
	sa, sb := secretOf(pathA), secretOf(pathB)
	br := e.browser()
	for _, tt := range []struct {
		path string
		want int
	}{
		{"/pay/" + a.ID + "?s=" + sa, 200},
		{"/pay/" + bp.ID + "?s=" + sa, 404},
		{"/pay/" + a.ID + "?s=" + sb, 404},
		{"/pay/" + a.ID, 404},
		{"/pay/" + a.ID + "?s=", 404},
		{"/pay/pay_unknown?s=" + sa, 404},
		{"/pay/" + a.ID + "?s=" + sa[:42], 404},
	} {
		b := e.browser() // no cookies from earlier visits
		if pg := b.get(tt.path); pg.status != tt.want || (tt.want == 404 && (strings.Contains(pg.body, "25.00") || strings.Contains(pg.body, "Acme"))) {
			t.Errorf("GET %s = %d; want %d without payment details", tt.path, pg.status, tt.want)
		}
	}
	// POST to B with A's secret (and A's CSRF cookie): not found, no attempt.
	pg := br.get(pathA)
	f := form(t, pg)
	f.Set("number", cardVisa)
	f.Set("exp", expiry())
	f.Set("cvc", "123")
	if res := br.do("POST", "/pay/"+bp.ID, f); res.status != http.StatusNotFound {
		t.Errorf("POST to B with A's secret = %d; want 404", res.status)
	}
	// A's cookie does not open B's landing or page.
	if res := br.get("/pay/" + bp.ID + "/complete"); res.status != 200 || strings.Contains(res.body, "Acme") || strings.Contains(res.body, "25.00") {
		t.Errorf("B's landing with A's cookie = %d %s; want a page without details", res.status, res.body)
	}
	if got := e.payment(bp.ID); len(got.Attempts) != 0 || got.Status != payloom.PaymentStatusRequiresPaymentMethod {
		t.Errorf("B = %q with %d attempts; want untouched", got.Status, len(got.Attempts))
	}
	// A paid: A's receipt secret does not open B's receipt.
	b := e.browser()
	b.follow(b.pay(pathA, cardVisa, expiry(), "123"))
	receipt := strings.TrimPrefix(e.payment(a.ID).ReceiptURL, e.url)
	rs := secretOf(receipt)
	for _, tt := range []struct {
		path string
		want int
	}{{receipt, 200}, {"/receipts/" + bp.ID + "?s=" + rs, 404}, {"/receipts/" + a.ID + "?s=" + sa, 404}, {"/receipts/" + a.ID, 404}} {
		if pg := b.get(tt.path); pg.status != tt.want {
			t.Errorf("GET %s = %d; want %d", tt.path, pg.status, tt.want)
		}
	}
	e.noSecrets(t, cardVisa)
}

func TestExpiredAndCanceledLinks(t *testing.T) {
	e := newEnv(t)
	hour, _ := payloom.ParseDuration("PT1H")
	exp, expPath := e.create(func(r *payloom.PaymentCreate) { r.ExpiresIn = &hour; r.FailureURL = "https://shop.example/cart" })
	can, canPath := e.create(nil)
	if _, err := e.eng.CancelPayment(e.ctx, e.scope, payloom.NewID("op"), can.ID); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	form(t, b.get(expPath)) // open before the hour: a form
	e.now.mu.Lock()
	e.now.off = time.Hour
	e.now.mu.Unlock()

	// Past expires_at the page says so even before the expiry job ran, and
	// after it ran too.
	for i := 0; i < 2; i++ {
		pg := b.get(expPath)
		if pg.status != 200 || !strings.Contains(pg.body, "This payment link has expired") || strings.Contains(pg.body, `id="number"`) ||
			!strings.Contains(pg.body, "https://shop.example/cart?payment_id="+exp.ID) {
			t.Errorf("expired link (pass %d) = %d %s; want the expired page without a form", i, pg.status, pg.body)
		}
		if _, err := e.eng.ExpireDue(e.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.payment(exp.ID).Status; got != payloom.PaymentStatusExpired {
		t.Errorf("status = %q; want expired", got)
	}
	if res := b.pay2(expPath); res.status != http.StatusSeeOther || len(e.payment(exp.ID).Attempts) != 0 {
		t.Errorf("POST on an expired link = %d; want a redirect and no attempt", res.status)
	}
	pg := b.get(canPath)
	if !strings.Contains(pg.body, "This payment was canceled") || strings.Contains(pg.body, `id="number"`) {
		t.Errorf("canceled link = %s; want the canceled page", pg.body)
	}
}

func TestThreeDSecureOnThePage(t *testing.T) {
	for _, approve := range []bool{true, false} {
		e := newEnv(t)
		p, path := e.create(nil)
		b := e.browser()
		res := b.follow(b.pay(path, card3DS, expiry(), "123"))
		// The landing sent the browser to the challenge, served here.
		if res.status != 200 || !strings.Contains(res.body, "Sandbox Bank") {
			t.Fatalf("after paying with the 3-D Secure card: %d %s; want the challenge page", res.status, res.body)
		}
		txn := e.payment(p.ID).Attempts[0].TransactionID
		outcome := sandbox.ChallengeFailed
		if approve {
			outcome = sandbox.ChallengeApproved
		}
		res = b.do("POST", sandbox.RedirectPathPrefix+txn, url.Values{"outcome": {outcome}}, "Sec-Fetch-Site", "same-origin")
		if want := e.url + "/pay/" + p.ID + "/complete"; res.status != http.StatusSeeOther || res.location() != want {
			t.Fatalf("challenge answer = %d to %q; want 303 to %s", res.status, res.location(), want)
		}
		res = b.follow(res) // no secret in the URL: the cookie carries it
		got := e.payment(p.ID)
		if approve {
			if res.status != 200 || !strings.Contains(res.body, "Payment successful") || got.Status != payloom.PaymentStatusCaptured {
				t.Errorf("approved: %d %s, payment %q; want the success page and a captured payment", res.status, res.body, got.Status)
			}
			continue
		}
		if res.status != 200 || !strings.Contains(res.body, "Your bank could not confirm it was you") || !strings.Contains(res.body, `id="number"`) ||
			got.Status != payloom.PaymentStatusRequiresPaymentMethod {
			t.Errorf("failed: %d %s, payment %q; want the form with the decline", res.status, res.body, got.Status)
		}
	}
}

// The API flow: the merchant sends the shopper to next_action and gets them
// back at return_url, without the hosted page.
func TestThreeDSecureReturnURL(t *testing.T) {
	e := newEnv(t)
	tok, err := e.vault.Tokenize(e.ctx, e.scope, &payloom.CardInput{Number: card3DS, ExpMonth: 12, ExpYear: time.Now().Year() + 2, CVC: "123"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.eng.CreatePayment(e.ctx, e.scope, payloom.NewID("op"), &payloom.PaymentCreate{Amount: 900, Currency: "EUR",
		PaymentMethodType: payloom.PaymentMethodTypeCard, CardToken: tok.ID,
		PageOptions: payloom.PageOptions{ReturnURL: "https://shop.example/back"}})
	if err != nil || p.NextAction == nil {
		t.Fatalf("CreatePayment = %+v, %v; want requires_action", p, err)
	}
	b := e.browser()
	ch := b.get(p.NextAction.RedirectURL)
	if ch.status != 200 || !strings.Contains(ch.body, "9.00 EUR") {
		t.Fatalf("GET %s = %d %s", p.NextAction.RedirectURL, ch.status, ch.body)
	}
	txn := p.Attempts[0].TransactionID
	res := b.follow(b.do("POST", sandbox.RedirectPathPrefix+txn, url.Values{"outcome": {sandbox.ChallengeApproved}}))
	if want := "https://shop.example/back?payment_id=" + p.ID; res.location() != want {
		t.Fatalf("after the challenge: %d to %q; want %s", res.status, res.location(), want)
	}
	if got := e.payment(p.ID).Status; got != payloom.PaymentStatusCaptured {
		t.Errorf("status = %q; want captured", got)
	}
}

func TestReceipt(t *testing.T) {
	e := newEnv(t)
	p, path := e.create(nil)
	b := e.browser()
	b.follow(b.pay(path, cardVisa, expiry(), "123"))
	amt := int64(700)
	if _, err := e.eng.CreateRefund(e.ctx, e.scope, payloom.NewID("op"), &payloom.RefundCreate{PaymentID: p.ID, Amount: &amt}); err != nil {
		t.Fatal(err)
	}
	paid := e.payment(p.ID)
	rc := b.get(strings.TrimPrefix(paid.ReceiptURL, e.url))
	if rc.status != 200 {
		t.Fatalf("GET receipt = %d %s", rc.status, rc.body)
	}
	for _, want := range []string{"Receipt from Acme Coffee", "$25.00", "Visa ending in 4242", paid.Processor.AuthorizationCode,
		p.ID, "Coffee beans", "Refund on", "-$7.00", "$18.00", "Print or save as PDF", time.Now().UTC().Format("2006")} {
		if !strings.Contains(rc.body, want) {
			t.Errorf("receipt lacks %q", want)
		}
	}
	if strings.Contains(rc.header.Get("Content-Security-Policy"), "unsafe") || rc.header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("receipt headers = %v", rc.header)
	}
	b.lang = "pt-BR"
	if pt := b.get(strings.TrimPrefix(paid.ReceiptURL, e.url)); !strings.Contains(pt.body, "Recibo de Acme Coffee") ||
		!strings.Contains(pt.body, "Visa com final 4242") || !strings.Contains(pt.body, "US$\u00a025,00") {
		t.Errorf("Portuguese receipt = %s", pt.body)
	}
}

// The saved-card block renders from Config.SavedCards, and a saved card is
// taken only if it is one of the customer's.
func TestSavedCards(t *testing.T) {
	e := newEnv(t)
	tok, err := e.vault.Tokenize(e.ctx, e.scope, &payloom.CardInput{Number: cardVisa, ExpMonth: 11, ExpYear: 2031})
	if err != nil {
		t.Fatal(err)
	}
	summary := tok.Card
	summary.Token = tok.ID
	// A free-text customer reference: the engine only checks that a cus_
	// ID exists, and this test is about the page, not the customer.
	e.saved["shopper-42"] = []payloom.CardSummary{summary}
	p, path := e.create(func(r *payloom.PaymentCreate) { r.CustomerID = "shopper-42" })
	_, plain := e.create(nil)
	b := e.browser()
	if pg := b.get(plain); strings.Contains(pg.body, "Saved cards") {
		t.Errorf("a payment without a customer shows saved cards")
	}
	pg := b.get(path)
	if !strings.Contains(pg.body, "Visa ending in 4242, expires 11/31") || !strings.Contains(pg.body, `value="`+tok.ID+`" checked`) ||
		!strings.Contains(pg.body, `<label for="saved-new">Use a new card</label>`) {
		t.Fatalf("page with a saved card = %s", pg.body)
	}
	f := form(t, pg)
	f.Set("saved", "tok_someone_elses")
	if res := b.do("POST", "/pay/"+p.ID, f); res.status != http.StatusBadRequest || !strings.Contains(res.body, "Choose one of your saved cards") {
		t.Errorf("POST with another token = %d; want 400", res.status)
	}
	f = form(t, b.get(path))
	f.Set("saved", tok.ID)
	res := b.follow(b.do("POST", "/pay/"+p.ID, f))
	if got := e.payment(p.ID); res.status != 200 || got.Status != payloom.PaymentStatusCaptured || got.PaymentMethod.Card.Token != tok.ID {
		t.Errorf("paying with the saved card: %d, payment %q; want captured with %s", res.status, got.Status, tok.ID)
	}
}

// A payment whose mode has no processor keeps its form, with a message,
// instead of sending the shopper round in circles.
func TestNoProcessor(t *testing.T) {
	e := newEnv(t)
	live := e.scope
	live.Livemode = true
	p, err := e.eng.CreatePayment(e.ctx, live, payloom.NewID("op"), &payloom.PaymentCreate{Amount: 1000, Currency: "EUR"})
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	res := b.pay(strings.TrimPrefix(p.PaymentURL, e.url), cardVisa, expiry(), "123")
	if res.status != http.StatusServiceUnavailable || !strings.Contains(res.body, "We could not process your card") ||
		!strings.Contains(res.body, `id="number"`) || strings.Contains(res.body, "Test mode") {
		t.Errorf("POST without a processor = %d %s; want 503 with the form and a message", res.status, res.body)
	}
}

// keysSorted lists a language's message keys.
func keysSorted(l lang) []string {
	var ks []string
	for k := range messages[l] {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// noSecrets checks that the logs hold no card number, CVC value or page
// secret.
func (e *env) noSecrets(t *testing.T, numbers ...string) {
	t.Helper()
	logs := e.logs.String()
	for _, n := range numbers {
		if strings.Contains(logs, n) || strings.Contains(logs, n[:4]+" "+n[4:8]) {
			t.Errorf("the logs contain a card number")
		}
	}
	if regexp.MustCompile(`[?&]s=[A-Za-z0-9_-]{20,}`).MatchString(logs) || strings.Contains(logs, `"cvc`) {
		t.Errorf("the logs contain a page secret or a CVC:\n%s", logs)
	}
	if !strings.Contains(logs, `"query":"s"`) {
		t.Errorf("the access log does not name the query parameters:\n%s", logs)
	}
}
