package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// The hosted payment page in a real browser: headless Chromium (Debian's
// chromium, which scripts/test installs) driven with chromedp against the
// real binary. One browser process serves every subtest; each subtest has
// its own browser context (its own cookies) and its own deadline.

const (
	chromiumPath = "/usr/bin/chromium"
	// browserTimeout bounds one subtest's browser work. Reaching it is a
	// hang, not a timing result.
	browserTimeout = 45 * time.Second
	hppCVC         = "737"
)

// Test cards of the sandbox.
const (
	hppVisa     = "4242424242424242"
	hppDeclined = "4000000000000002"
	hpp3DS      = "4000000000003220"
	hppMaster   = "5555555555554444"
)

// landing is the merchant's site: it records every page the shopper lands
// on (success_url, failure_url, return_url).
type landing struct {
	srv  *httptest.Server
	mu   sync.Mutex
	hits []string
}

func newLanding(t *testing.T) *landing {
	l := &landing{}
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.hits = append(l.hits, r.URL.RequestURI())
		l.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><title>Shop</title><h1 id="landed">Thanks from the shop</h1><p>%s</p></html>`,
			r.URL.Path)
	}))
	t.Cleanup(l.srv.Close)
	return l
}

// landedAt reports whether the shop recorded a visit to path?query.
func (l *landing) landedAt(requestURI string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range l.hits {
		if h == requestURI {
			return true
		}
	}
	return false
}

// outputDir is where screenshots go: $PAYLOOM_TEST_OUTPUT/hpp, or testout/hpp
// at the repository's root (ignored by git).
func outputDir(t *testing.T) string {
	t.Helper()
	root := os.Getenv("PAYLOOM_TEST_OUTPUT")
	if root == "" {
		abs, err := filepath.Abs(filepath.Join("..", "testout"))
		if err != nil {
			t.Fatal(err)
		}
		root = abs
	}
	dir := filepath.Join(root, "hpp")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// hppEnv is one payloom server, the shop, and the browser.
type hppEnv struct {
	t       *testing.T
	srv     *server
	api     *client
	shop    *landing
	browser context.Context
	out     string
}

// tab opens a fresh browser context (cookies of its own) with a deadline.
func (e *hppEnv) tab(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(e.browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, browserTimeout)
	t.Cleanup(cancelTimeout)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return ctx
}

// createPayment creates a hosted-page payment and returns its ID and link.
func (e *hppEnv) createPayment(t *testing.T, extra map[string]any) (id, link string) {
	t.Helper()
	body := map[string]any{
		"amount": 4250, "currency": "usd", "description": "Order 1042",
		"line_items": []map[string]any{
			{"description": "Espresso beans, 1 kg", "amount": 1800, "quantity": 2},
			{"description": "Shipping", "amount": 650},
		},
	}
	for k, v := range extra {
		body[k] = v
	}
	var p struct {
		ID         string `json:"id"`
		Status     string `json:"status"`
		PaymentURL string `json:"payment_url"`
	}
	e.api.on(t).expect(http.StatusOK, &p, "POST", "/v1/payments", body)
	if p.Status != "requires_payment_method" || !strings.HasPrefix(p.PaymentURL, e.srv.URL+"/pay/"+p.ID+"?s=") {
		t.Fatalf("POST /v1/payments = %+v; want requires_payment_method with a payment_url on %s", p, e.srv.URL)
	}
	return p.ID, p.PaymentURL
}

func (e *hppEnv) payment(t *testing.T, id string) payment {
	t.Helper()
	var p payment
	e.api.on(t).expect(http.StatusOK, &p, "GET", "/v1/payments/"+id, nil)
	return p
}

// do runs browser steps and fails the test on an error.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %q: %v", js, err)
	}
	return v
}

// andWaitLoad runs trigger (a click, a key) and waits for the page it leads
// to, through any redirects, to finish loading.
func andWaitLoad(t *testing.T, ctx context.Context, what string, trigger chromedp.Action[chromedp.Void]) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, trigger)); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func text(t *testing.T, ctx context.Context) string {
	t.Helper()
	return eval[string](t, ctx, `document.body.innerText`)
}

// screenshot saves the page as name.png in the output folder.
func (e *hppEnv) screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(e.out, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// typeCard fills the card form by typing, as a shopper does.
func typeCard(t *testing.T, ctx context.Context, number, exp string) {
	t.Helper()
	do(t, ctx, "type the card",
		chromedp.WaitVisible(chromedp.ID("number")),
		chromedp.SendKeys(chromedp.ID("number"), number),
		chromedp.SendKeys(chromedp.ID("exp"), exp),
		chromedp.SendKeys(chromedp.ID("cvc"), hppCVC),
		chromedp.SendKeys(chromedp.ID("name"), "Ada Lovelace"),
	)
}

func pay(t *testing.T, ctx context.Context) {
	t.Helper()
	andWaitLoad(t, ctx, "click Pay", chromedp.Click(chromedp.ID("pay-button")))
}

func expYY() string { return "12" + time.Now().AddDate(3, 0, 0).Format("06") }

// unlabeled lists the form controls without an accessible label.
const unlabeledJS = `(() => {
	const bad = [];
	for (const el of document.querySelectorAll('input, select, textarea, button')) {
		if (el.type === 'hidden') continue;
		const named = (el.labels && el.labels.length > 0 && el.labels[0].textContent.trim() !== '') ||
			(el.getAttribute('aria-label') || '').trim() !== '' || el.getAttribute('aria-labelledby') ||
			(el.tagName === 'BUTTON' && el.textContent.trim() !== '');
		if (!named) bad.push(el.outerHTML);
	}
	return bad;
})()`

func TestHostedPaymentPage(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("PAYLOOM_REQUIRE_BROWSER") != "" {
			t.Fatalf("%s is missing (scripts/test installs Debian's chromium): %v", chromiumPath, err)
		}
		t.Skipf("%s is missing: run scripts/test, which installs Debian's chromium", chromiumPath)
	}
	in := newInstance(t)
	srv := in.start([]string{"PAYLOOM_EXPIRY_INTERVAL=200ms"})
	fs := parseFirstStart(t, srv.Stdout())
	e := &hppEnv{t: t, srv: srv, api: newClient(t, srv.URL, fs.Key), shop: newLanding(t), out: outputDir(t)}

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
			chromedp.Flag("disable-quic", true), chromedp.NoFirstRun,
			chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
		)...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	// The first action on the browser's own context starts the one
	// browser process (a derived context would take it down with it). The
	// allocator bounds the start: it gives up if Chromium does not answer.
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	e.browser = browser

	t.Run("PayAndLandOnSuccessURL", func(t *testing.T) {
		id, link := e.createPayment(t, map[string]any{
			"success_url": e.shop.srv.URL + "/orders/1042/paid", "failure_url": e.shop.srv.URL + "/cart",
		})
		ctx := e.tab(t)
		do(t, ctx, "open the link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("number")))
		page := text(t, ctx)
		for _, want := range []string{"Default merchant", "$42.50", "Espresso beans, 1 kg", "Qty 2 × $18.00", "$36.00", "Shipping",
			"Card number", "Pay $42.50", "Test mode"} {
			if !strings.Contains(page, want) {
				t.Errorf("the page lacks %q:\n%s", want, page)
			}
		}
		if bad := eval[[]string](t, ctx, unlabeledJS); len(bad) > 0 {
			t.Errorf("form controls without a label: %v", bad)
		}
		do(t, ctx, "type the number", chromedp.SendKeys(chromedp.ID("number"), hppVisa))
		if brand := eval[string](t, ctx, `document.getElementById('brand').textContent`); brand != "Visa" {
			t.Errorf("brand shown = %q; want Visa", brand)
		}
		if v := eval[string](t, ctx, `document.getElementById('number').value`); v != "4242 4242 4242 4242" {
			t.Errorf("number field = %q; want it grouped by fours", v)
		}
		do(t, ctx, "type the rest",
			chromedp.SendKeys(chromedp.ID("exp"), expYY()), chromedp.SendKeys(chromedp.ID("cvc"), hppCVC))
		e.screenshot(t, ctx, "01-form-desktop")
		pay(t, ctx)
		want := e.shop.srv.URL + "/orders/1042/paid?payment_id=" + id
		if loc := location(t, ctx); loc != want || !e.shop.landedAt("/orders/1042/paid?payment_id="+id) {
			t.Fatalf("after paying the browser is at %q; want the success_url %s", loc, want)
		}
		if p := e.payment(t, id); p.Status != "captured" || p.PaymentMethod == nil || p.PaymentMethod.Card.Last4 != "4242" {
			t.Errorf("payment = %+v; want captured with the visa", p)
		}
		// The paid link now shows a clear page and takes no card.
		do(t, ctx, "reopen the link", chromedp.Navigate(link))
		if page := text(t, ctx); !strings.Contains(page, "Payment successful") ||
			eval[bool](t, ctx, `document.getElementById('number') !== null`) {
			t.Errorf("the paid link shows:\n%s", page)
		}
		e.screenshot(t, ctx, "02-paid-link")
	})

	t.Run("ThreeDSecurePassed", func(t *testing.T) {
		id, link := e.createPayment(t, map[string]any{"success_url": e.shop.srv.URL + "/orders/7/paid"})
		ctx := e.tab(t)
		do(t, ctx, "open the link", chromedp.Navigate(link))
		typeCard(t, ctx, hpp3DS, expYY())
		pay(t, ctx)
		if loc := location(t, ctx); !strings.HasPrefix(loc, e.srv.URL+"/sandbox/3ds/sbx_") {
			t.Fatalf("after paying with the 3-D Secure card the browser is at %q; want the challenge", loc)
		}
		if page := text(t, ctx); !strings.Contains(page, "Sandbox Bank") || !strings.Contains(page, "42.50 USD") {
			t.Errorf("the challenge shows:\n%s", page)
		}
		e.screenshot(t, ctx, "03-3ds-challenge")
		andWaitLoad(t, ctx, "approve", chromedp.Click(chromedp.ID("approve")))
		want := e.shop.srv.URL + "/orders/7/paid?payment_id=" + id
		if loc := location(t, ctx); loc != want || !e.shop.landedAt("/orders/7/paid?payment_id="+id) {
			t.Fatalf("after the challenge the browser is at %q; want %s", loc, want)
		}
		if p := e.payment(t, id); p.Status != "captured" {
			t.Errorf("status = %q; want captured", p.Status)
		}
	})

	t.Run("ThreeDSecureFailed", func(t *testing.T) {
		id, link := e.createPayment(t, map[string]any{"success_url": e.shop.srv.URL + "/orders/8/paid"})
		ctx := e.tab(t)
		do(t, ctx, "open the link", chromedp.Navigate(link))
		typeCard(t, ctx, hpp3DS, expYY())
		pay(t, ctx)
		andWaitLoad(t, ctx, "fail the challenge", chromedp.Click(chromedp.ID("fail")))
		do(t, ctx, "see the decline", chromedp.WaitVisible(chromedp.ID("banner")))
		if banner := eval[string](t, ctx, `document.getElementById('banner').textContent`); !strings.Contains(banner, "Your bank could not confirm it was you") {
			t.Errorf("banner = %q; want the authentication decline", banner)
		}
		if role := eval[string](t, ctx, `document.getElementById('banner').getAttribute('role')`); role != "alert" {
			t.Errorf("banner role = %q; want alert", role)
		}
		if !strings.HasPrefix(location(t, ctx), e.srv.URL+"/pay/"+id+"?s=") {
			t.Errorf("after the failed challenge the browser is at %q; want the payment page", location(t, ctx))
		}
		e.screenshot(t, ctx, "04-3ds-failed")
		if p := e.payment(t, id); p.Status != "requires_payment_method" || p.Failure == nil || p.Failure.DeclineCode != "authentication_failed" {
			t.Errorf("payment = %+v; want requires_payment_method with authentication_failed", p)
		}
	})

	t.Run("DeclineThenAnotherCard", func(t *testing.T) {
		id, link := e.createPayment(t, map[string]any{"success_url": e.shop.srv.URL + "/orders/9/paid"})
		ctx := e.tab(t)
		do(t, ctx, "open the link", chromedp.Navigate(link))
		typeCard(t, ctx, hppDeclined, expYY())
		pay(t, ctx)
		do(t, ctx, "see the decline", chromedp.WaitVisible(chromedp.ID("banner")))
		if banner := eval[string](t, ctx, `document.getElementById('banner').textContent`); banner != "Your card was declined. Try another card." {
			t.Errorf("banner = %q; want the decline message", banner)
		}
		if v := eval[string](t, ctx, `document.getElementById('number').value`); v != "" {
			t.Errorf("the number field holds %q after the decline; want it empty", v)
		}
		e.screenshot(t, ctx, "05-declined")
		typeCard(t, ctx, hppMaster, expYY())
		if brand := eval[string](t, ctx, `document.getElementById('brand').textContent`); brand != "Mastercard" {
			t.Errorf("brand = %q; want Mastercard", brand)
		}
		pay(t, ctx)
		if want := "/orders/9/paid?payment_id=" + id; !e.shop.landedAt(want) {
			t.Fatalf("the second card did not land on the success_url (at %q)", location(t, ctx))
		}
		if p := e.payment(t, id); p.Status != "captured" || len(p.Attempts) != 2 || p.PaymentMethod.Card.Last4 != "4444" {
			t.Errorf("payment = %+v; want captured by the second card after two attempts", p)
		}
	})

	t.Run("BrowserChecksCardBeforeSubmitting", func(t *testing.T) {
		id, link := e.createPayment(t, nil)
		ctx := e.tab(t)
		do(t, ctx, "open the link", chromedp.Navigate(link))
		typeCard(t, ctx, "4242424242424241", "0120")
		do(t, ctx, "click Pay", chromedp.Click(chromedp.ID("pay-button")),
			chromedp.WaitVisible(chromedp.ID("number-error")))
		for id, want := range map[string]string{"number": "This card number is not valid", "exp": "This card has expired."} {
			msg := eval[string](t, ctx, `document.getElementById('`+id+`-error').textContent`)
			invalid := eval[string](t, ctx, `document.getElementById('`+id+`').getAttribute('aria-invalid')`)
			if !strings.Contains(msg, want) || invalid != "true" {
				t.Errorf("%s: message %q, aria-invalid %q; want %q and true", id, msg, invalid, want)
			}
		}
		if focused := eval[string](t, ctx, `document.activeElement.id`); focused != "number" {
			t.Errorf("focus is on %q; want the first invalid field", focused)
		}
		e.screenshot(t, ctx, "06-browser-checks")
		if p := e.payment(t, id); len(p.Attempts) != 0 {
			t.Errorf("the invalid card reached the server: %d attempts", len(p.Attempts))
		}
	})

	t.Run("KeyboardOnly", func(t *testing.T) {
		id, link := e.createPayment(t, map[string]any{"success_url": e.shop.srv.URL + "/orders/10/paid"})
		ctx := e.tab(t)
		do(t, ctx, "open the link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("number")))
		// Tab from the top of the page to the card number.
		for i := 0; ; i++ {
			if i == 20 {
				t.Fatalf("20 Tabs did not reach the card number (focus on %q)", eval[string](t, ctx, `document.activeElement.outerHTML`))
			}
			do(t, ctx, "press Tab", chromedp.KeyEvent("\t"))
			if eval[string](t, ctx, `document.activeElement.id`) == "number" {
				break
			}
		}
		for _, step := range []struct{ keys, next string }{{hppVisa, "exp"}, {expYY(), "cvc"}, {hppCVC, "name"}} {
			do(t, ctx, "type", chromedp.KeyEvent(step.keys), chromedp.KeyEvent("\t"))
			if got := eval[string](t, ctx, `document.activeElement.id`); got != step.next {
				t.Fatalf("Tab after typing led to %q; want %q", got, step.next)
			}
		}
		andWaitLoad(t, ctx, "press Enter", chromedp.KeyEvent("\r"))
		if want := "/orders/10/paid?payment_id=" + id; !e.shop.landedAt(want) {
			t.Fatalf("Enter did not pay (browser at %q)", location(t, ctx))
		}
	})

	t.Run("PhoneWidth", func(t *testing.T) {
		_, link := e.createPayment(t, map[string]any{"failure_url": e.shop.srv.URL + "/cart"})
		ctx := e.tab(t)
		do(t, ctx, "open the link on a phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)),
			chromedp.Navigate(link+"&lang=pt-BR"), chromedp.WaitVisible(chromedp.ID("number")))
		if overflow := eval[bool](t, ctx, `document.documentElement.scrollWidth > window.innerWidth`); overflow {
			t.Errorf("the page is wider than the phone (%v > %v)", eval[float64](t, ctx, `document.documentElement.scrollWidth`),
				eval[float64](t, ctx, `window.innerWidth`))
		}
		for _, id := range []string{"number", "exp", "cvc", "pay-button"} {
			w := eval[float64](t, ctx, `document.getElementById('`+id+`').getBoundingClientRect().right`)
			if w > 390 {
				t.Errorf("#%s ends at x=%v, beyond the 390px screen", id, w)
			}
		}
		if page := text(t, ctx); !strings.Contains(page, "US$\u00a042,50") || !strings.Contains(page, "Número do cartão") {
			t.Errorf("the Portuguese page shows:\n%s", page)
		}
		e.screenshot(t, ctx, "07-form-phone-pt-BR")
	})

	t.Run("ExpiredLink", func(t *testing.T) {
		id, link := e.createPayment(t, map[string]any{"expires_in": "PT1S", "failure_url": e.shop.srv.URL + "/cart"})
		// Wait for the expiry job (every 200ms here) to expire it: an
		// observable state, bounded by a generous deadline.
		deadline := time.Now().Add(requestTimeout)
		for e.payment(t, id).Status != "expired" {
			if time.Now().After(deadline) {
				t.Fatalf("payment %s not expired after %v", id, requestTimeout)
			}
			time.Sleep(100 * time.Millisecond)
		}
		ctx := e.tab(t)
		do(t, ctx, "open the expired link", chromedp.Navigate(link))
		page := text(t, ctx)
		if !strings.Contains(page, "This payment link has expired") || eval[bool](t, ctx, `document.getElementById('number') !== null`) {
			t.Errorf("the expired link shows:\n%s", page)
		}
		if href := eval[string](t, ctx, `[...document.querySelectorAll('a')].map(a => a.href).join(' ')`); !strings.Contains(href, e.shop.srv.URL+"/cart?payment_id="+id) {
			t.Errorf("links on the expired page = %q; want the failure_url", href)
		}
		e.screenshot(t, ctx, "08-expired")
		var evs list[event]
		e.api.on(t).expect(http.StatusOK, &evs, "GET", "/v1/events?type=payment.expired&object_id="+id, nil)
		if len(evs.Data) != 1 {
			t.Errorf("payment.expired events = %d; want 1", len(evs.Data))
		}
	})

	t.Run("Receipt", func(t *testing.T) {
		id, link := e.createPayment(t, nil)
		ctx := e.tab(t)
		do(t, ctx, "open the link", chromedp.Navigate(link))
		typeCard(t, ctx, hppVisa, expYY())
		pay(t, ctx)
		if page := text(t, ctx); !strings.Contains(page, "Payment successful") || !strings.Contains(page, "You paid $42.50 to Default merchant.") {
			t.Fatalf("without a success_url the result page shows:\n%s", page)
		}
		e.screenshot(t, ctx, "09-result")
		e.api.on(t).expect(http.StatusOK, nil, "POST", "/v1/refunds", map[string]any{"payment_id": id, "amount": 650})
		p := e.payment(t, id)
		andWaitLoad(t, ctx, "open the receipt", chromedp.Click(chromedp.ID("receipt-link")))
		page := text(t, ctx)
		for _, want := range []string{"Receipt from Default merchant", id, "$42.50", "Visa ending in 4242", p.Processor.AuthorizationCode,
			"Espresso beans, 1 kg", "Refund on", "-$6.50", "$36.00", "Print or save as PDF", fmt.Sprint(time.Now().UTC().Year())} {
			if !strings.Contains(page, want) {
				t.Errorf("the receipt lacks %q:\n%s", want, page)
			}
		}
		e.screenshot(t, ctx, "10-receipt")
		do(t, ctx, "receipt on a phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Reload())
		e.screenshot(t, ctx, "11-receipt-phone")
	})

	// 3-D Secure at a processor whose authentication page is on another
	// origin, as Adyen's is: the real adyen connector (a processor account
	// of the merchant) against a stand-in for Adyen's Checkout API and an
	// issuer's page. The form's post must not redirect off the page's
	// form-action; the page follows on by script, the shopper passes,
	// comes back with redirectResult, and /payments/details decides.
	t.Run("ThreeDSecureAtAdyen", func(t *testing.T) {
		adyen := newFakeAdyen(t)
		acct := map[string]any{}
		e.api.on(t).expect(http.StatusOK, &acct, "POST", "/v1/processor_accounts", map[string]any{
			"name": "adyen-e2e", "connector": "adyen",
			"credentials": map[string]any{"api_key": "test_key", "merchant_account": "PayloomE2E", "base_url": adyen.api.URL + "/v71"},
		})
		// The merchant's other payments go back to the sandbox after this.
		t.Cleanup(func() {
			e.api.on(t).expect(http.StatusOK, nil, "PATCH", "/v1/processor_accounts/"+acct["id"].(string), map[string]any{"enabled": false})
		})
		id, link := e.createPayment(t, map[string]any{"success_url": e.shop.srv.URL + "/orders/11/paid"})
		ctx := e.tab(t)
		do(t, ctx, "open the link", chromedp.Navigate(link))
		typeCard(t, ctx, hppVisa, expYY())
		do(t, ctx, "pay, and be sent on to the issuer", chromedp.Click(chromedp.ID("pay-button")),
			chromedp.WaitVisible(chromedp.ID("acs-pass")))
		if loc := location(t, ctx); !strings.HasPrefix(loc, adyen.acs.URL+"/challenge?MD=") {
			t.Fatalf("after paying the browser is at %q; want the issuer's page on %s", loc, adyen.acs.URL)
		}
		e.screenshot(t, ctx, "12-3ds-other-origin")
		andWaitLoad(t, ctx, "pass the authentication", chromedp.Click(chromedp.ID("acs-pass")))
		want := e.shop.srv.URL + "/orders/11/paid?payment_id=" + id
		if loc := location(t, ctx); loc != want || !e.shop.landedAt("/orders/11/paid?payment_id="+id) {
			t.Fatalf("after the authentication the browser is at %q; want %s", loc, want)
		}
		if p := e.payment(t, id); p.Status != "captured" || p.Processor == nil || p.Processor.Name != "adyen-e2e" ||
			p.Processor.AuthorizationCode != "065696" {
			t.Errorf("payment = %+v; want captured at adyen-e2e with Adyen's authCode", p)
		}
		if got := adyen.detailsSent(); len(got) != 1 || got[0] != `{"details":{"redirectResult":"X6XtfGC3!passed"}}` {
			t.Errorf("/payments/details bodies = %q; want one with the redirectResult alone", got)
		}
	})

	// A page's secret opens its own payment and nothing else (plain HTTP:
	// no browser needed to ask).
	t.Run("SecretOpensOnlyItsPayment", func(t *testing.T) {
		idA, linkA := e.createPayment(t, nil)
		idB, _ := e.createPayment(t, map[string]any{"amount": 9999, "line_items": []map[string]any{}})
		secretA := linkA[strings.Index(linkA, "?s=")+3:]
		hc := &http.Client{Timeout: requestTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		for _, tt := range []struct {
			method, path string
			want         int
		}{
			{"GET", "/pay/" + idA + "?s=" + secretA, 200},
			{"GET", "/pay/" + idB + "?s=" + secretA, 404},
			{"GET", "/receipts/" + idB + "?s=" + secretA, 404},
			{"POST", "/pay/" + idB, 404},
		} {
			var body *strings.Reader
			if tt.method == "POST" {
				body = strings.NewReader(url.Values{"s": {secretA}, "number": {hppVisa}, "exp": {"12/40"}, "cvc": {hppCVC}}.Encode())
			} else {
				body = strings.NewReader("")
			}
			req, _ := http.NewRequest(tt.method, e.srv.URL+tt.path, body)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b := make([]byte, 64<<10)
			n, _ := resp.Body.Read(b)
			resp.Body.Close()
			if resp.StatusCode != tt.want || (tt.want == 404 && (strings.Contains(string(b[:n]), "99.99") || strings.Contains(string(b[:n]), "Default merchant"))) {
				t.Errorf("%s %s with A's secret = %d; want %d, without B's details", tt.method, tt.path, resp.StatusCode, tt.want)
			}
		}
		if p := e.payment(t, idB); p.Status != "requires_payment_method" || len(p.Attempts) != 0 {
			t.Errorf("B = %s with %d attempts; want untouched", p.Status, len(p.Attempts))
		}
	})

	srv.Stop()
	scanForCardData(t, in, []string{hppVisa, hppDeclined, hpp3DS, hppMaster, "4242424242424241"}, []string{hppCVC})
}

// fakeAdyen stands in for Adyen's Checkout API (api) and an issuer's
// authentication page (acs, another origin): /v71/payments asks for a
// redirect to acs; acs's "Pass" link goes back to the returnUrl Payloom
// sent, with a redirectResult; /v71/payments/details answers Authorised
// for it.
type fakeAdyen struct {
	api, acs *httptest.Server
	mu       sync.Mutex
	returns  map[string]string // MD -> returnUrl
	details  []string
}

func newFakeAdyen(t *testing.T) *fakeAdyen {
	t.Helper()
	f := &fakeAdyen{returns: map[string]string{}}
	f.acs = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		back, ok := f.returns[r.URL.Query().Get("MD")]
		f.mu.Unlock()
		if r.URL.Path != "/challenge" || !ok {
			http.NotFound(w, r)
			return
		}
		u, _ := url.Parse(back)
		q := u.Query()
		q.Set("redirectResult", "X6XtfGC3!passed")
		u.RawQuery = q.Encode()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><title>Issuer</title><h1>Your bank</h1><a id="acs-pass" href="%s">Pass</a></html>`,
			html.EscapeString(u.String()))
	}))
	t.Cleanup(f.acs.Close)
	f.api = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body struct {
			Reference string `json:"reference"`
			ReturnURL string `json:"returnUrl"`
		}
		json.Unmarshal(raw, &body)
		w.Header().Set("Content-Type", "application/json")
		f.mu.Lock()
		defer f.mu.Unlock()
		switch r.URL.Path {
		case "/v71/payments":
			f.returns[body.Reference] = body.ReturnURL
			fmt.Fprintf(w, `{"resultCode":"RedirectShopper","pspReference":"993617895204576J","action":{"paymentMethodType":"scheme","type":"redirect","method":"GET","url":"%s/challenge?MD=%s"}}`,
				f.acs.URL, body.Reference)
		case "/v71/payments/details":
			f.details = append(f.details, string(raw))
			io.WriteString(w, `{"resultCode":"Authorised","pspReference":"993617895204576J","additionalData":{"authCode":"065696"}}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"status":404,"errorCode":"000","message":"not found","errorType":"validation"}`)
		}
	}))
	t.Cleanup(f.api.Close)
	return f
}

func (f *fakeAdyen) detailsSent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.details...)
}
