package hpp

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/payloom/payloom"
)

// tr returns the message key in language l, formatted with args.
func tr(l lang, key string, args ...any) string {
	s, ok := messages[l][key]
	if !ok {
		s = messages[langEN][key]
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

// baseView is what the layout needs.
type baseView struct {
	Lang     lang
	Title    string
	Merchant string
	Test     bool
	// Refresh, when set, reloads the page after that many seconds.
	Refresh int
}

// T translates a message key for the page.
func (b *baseView) T(key string, args ...any) string { return tr(b.Lang, key, args...) }

type itemView struct {
	Description, Quantity, Unit, Total string
}

type savedView struct {
	Token, Label string
	Checked      bool
}

type formView struct {
	baseView
	Action      string
	Secret      string
	CSRF        string
	LangParam   string
	Amount      string
	Description string
	Items       []itemView
	Banner      string
	Errors      map[string]string
	Saved       []savedView
	NewCard     bool
	HolderName  string
	Expires     string
	CancelURL   string
}

type stateView struct {
	baseView
	Kind       string
	Body       string
	Amount     string
	LinkURL    string
	LinkText   string
	ButtonURL  string
	ButtonText string
	// AutoFollow: the page's script follows ButtonURL at once.
	AutoFollow bool
	ReceiptURL string
}

func (h *handler) render(w http.ResponseWriter, r *http.Request, page string, status int, data any, formTargets ...string) {
	var buf bytes.Buffer
	if err := templates[page].Execute(&buf, data); err != nil {
		h.log.ErrorContext(r.Context(), "rendering a page failed", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h.securityHeaders(w, formTargets...)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (h *handler) renderState(w http.ResponseWriter, r *http.Request, status int, v *stateView, l lang) {
	v.Lang = l
	if v.Title == "" {
		v.Title = tr(l, v.Kind+".title")
	}
	h.render(w, r, "state", status, v)
}

// fail answers an error of the engine: not found (a wrong ID or secret, the
// same page for both) or an internal error, logged.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error, l lang) {
	if payloom.IsCode(err, payloom.CodeNotFound) {
		h.renderState(w, r, http.StatusNotFound, &stateView{Kind: "notfound", Body: tr(l, "notfound.body")}, l)
		return
	}
	h.log.ErrorContext(r.Context(), "page failed", "path", r.URL.Path, "err", err)
	h.renderState(w, r, http.StatusInternalServerError, &stateView{Kind: "error", Body: tr(l, "error.body")}, l)
}

// pagePath is the payment page's own URL, relative (redirects stay on the
// origin the browser used, where its cookies are).
func pagePath(id, secret string, l lang, explicit bool) string {
	u := payloom.PaymentPagePathPrefix + id + "?s=" + url.QueryEscape(secret)
	if explicit {
		u += "&lang=" + string(l)
	}
	return u
}

func completePath(id, secret string, l lang, explicit bool) string {
	u := payloom.PaymentPagePathPrefix + id + "/complete?s=" + url.QueryEscape(secret)
	if explicit {
		u += "&lang=" + string(l)
	}
	return u
}

func (h *handler) merchantName(ctx context.Context, p *payloom.Payment) (string, error) {
	m, err := h.auth.Merchant(ctx, p.MerchantID)
	if err != nil {
		return "", err
	}
	return m.Name, nil
}

// expired reports whether an unpaid payment is past its expiry, whether or
// not the expiry job has marked it yet.
func (h *handler) expired(p *payloom.Payment) bool {
	return p.Status == payloom.PaymentStatusExpired ||
		(p.Status == payloom.PaymentStatusRequiresPaymentMethod && p.ExpiresAt != nil && !h.clock().Before(*p.ExpiresAt))
}

// page serves GET /pay/{id}?s=: the card form while the payment can be
// paid, otherwise a page that says where it stands and takes no card.
func (h *handler) page(w http.ResponseWriter, r *http.Request) {
	id, q := r.PathValue("id"), r.URL.Query()
	l, explicit := pickLang(r, q.Get("lang"))
	secret := q.Get("s")
	if secret == "" {
		secret = cookieValue(r, secretCookie)
	}
	p, err := h.checkout.PagePayment(r.Context(), id, secret)
	if err != nil {
		h.fail(w, r, err, l)
		return
	}
	merchant, err := h.merchantName(r.Context(), p)
	if err != nil {
		h.fail(w, r, err, l)
		return
	}
	h.setCookie(w, r, secretCookie, secret, id, http.SameSiteLaxMode)
	if p.Status == payloom.PaymentStatusRequiresPaymentMethod && !h.expired(p) {
		if h.exhausted(p) {
			h.renderState(w, r, http.StatusOK, h.limitState(p, merchant, l), l)
			return
		}
		h.renderForm(w, r, http.StatusOK, p, merchant, secret, l, explicit, nil, "")
		return
	}
	h.renderPaymentState(w, r, p, merchant, secret, l, explicit)
}

// exhausted reports whether p made as many attempts as the engine allows.
func (h *handler) exhausted(p *payloom.Payment) bool {
	return h.maxAtt > 0 && payloom.AttemptsExhausted(p, h.maxAtt)
}

// limitState is the view of a payment that took as many cards as it may.
func (h *handler) limitState(p *payloom.Payment, merchant string, l lang) *stateView {
	v := h.paymentState(p, merchant, l)
	v.Kind, v.Title, v.Body = "closed", tr(l, "state.closed.title"), tr(l, "state.limit.body", merchant)
	return v
}

// renderPaymentState shows a payment that cannot take a card (now).
func (h *handler) renderPaymentState(w http.ResponseWriter, r *http.Request, p *payloom.Payment, merchant, secret string, l lang, explicit bool) {
	h.renderState(w, r, http.StatusOK, h.paymentState(p, merchant, l), l)
}

// paymentState is the view of a payment that cannot take a card (now).
func (h *handler) paymentState(p *payloom.Payment, merchant string, l lang) *stateView {
	v := &stateView{baseView: baseView{Merchant: merchant, Test: !p.Livemode}, Amount: formatMoney(p.Amount, p.Currency, l)}
	back := func(u string) {
		if u != "" {
			v.LinkURL, v.LinkText = payloom.WithPaymentID(u, p.ID), tr(l, "state.back", merchant)
		}
	}
	switch {
	case p.Status == payloom.PaymentStatusCaptured || p.Status == payloom.PaymentStatusAuthorized:
		v.Kind, v.Title = "paid", tr(l, "state.paid.title")
		v.Body = tr(l, "state.paid.body", v.Amount, merchant)
		v.ReceiptURL = p.ReceiptURL
		back(p.SuccessURL)
	case h.expired(p):
		v.Kind, v.Title, v.Body = "expired", tr(l, "state.expired.title"), tr(l, "state.expired.body", merchant)
		back(p.FailureURL)
	case p.Status == payloom.PaymentStatusCanceled:
		v.Kind, v.Title, v.Body = "canceled", tr(l, "state.canceled.title"), tr(l, "state.canceled.body", merchant)
		back(p.FailureURL)
	case p.Status == payloom.PaymentStatusProcessing:
		v.Kind, v.Title, v.Body = "processing", tr(l, "state.processing"), tr(l, "state.processing.body")
		v.Refresh = 2
	case p.Status == payloom.PaymentStatusRequiresAction && p.NextAction != nil:
		v.Kind, v.Title, v.Body = "action", tr(l, "state.action.title"), tr(l, "state.action.body")
		v.ButtonURL, v.ButtonText = p.NextAction.RedirectURL, tr(l, "state.action.button")
	default:
		v.Kind, v.Title, v.Body = "closed", tr(l, "state.closed.title"), tr(l, "state.closed.body", merchant)
		back(p.FailureURL)
	}
	return v
}

func (h *handler) renderForm(w http.ResponseWriter, r *http.Request, status int, p *payloom.Payment, merchant, secret string,
	l lang, explicit bool, errs map[string]string, banner string) {
	v := &formView{
		baseView:    baseView{Lang: l, Merchant: merchant, Test: !p.Livemode},
		Action:      payloom.PaymentPagePathPrefix + p.ID,
		Secret:      secret,
		CSRF:        h.csrfToken(w, r, p.ID),
		Amount:      formatMoney(p.Amount, p.Currency, l),
		Description: p.Description,
		Errors:      errs,
		Banner:      banner,
		NewCard:     true,
	}
	v.Title = tr(l, "title.pay", merchant)
	if explicit {
		v.LangParam = string(l)
	}
	if v.Banner == "" && p.Failure != nil && len(p.Attempts) > 0 {
		v.Banner = tr(l, declineMessage(p.Failure))
	}
	if v.Banner == "" && len(errs) > 0 {
		v.Banner = tr(l, "err.form")
	}
	for _, li := range p.LineItems {
		v.Items = append(v.Items, itemView{
			Description: li.Description, Quantity: tr(l, "qty", li.Quantity),
			Unit: formatMoney(li.Amount, p.Currency, l), Total: formatMoney(li.Amount*li.Quantity, p.Currency, l),
		})
	}
	if p.ExpiresAt != nil {
		v.Expires = tr(l, "expires", formatDate(*p.ExpiresAt, l))
	}
	if p.FailureURL != "" {
		v.CancelURL = payloom.WithPaymentID(p.FailureURL, p.ID)
	}
	for i, c := range h.saved(r.Context(), p) {
		v.Saved = append(v.Saved, savedView{Token: c.Token, Checked: i == 0,
			Label: tr(l, "saved.card", brandName(c.Brand, l), c.Last4, c.ExpMonth, c.ExpYear%100)})
	}
	if len(v.Saved) > 0 && r.Method == http.MethodGet {
		v.NewCard = false
	} else if len(v.Saved) > 0 {
		v.Saved[0].Checked = false
	}
	h.render(w, r, "form", status, v, p.SuccessURL)
}

// saved returns the customer's saved cards, none on error (logged): the
// shopper can still type a card.
func (h *handler) saved(ctx context.Context, p *payloom.Payment) []payloom.CardSummary {
	if h.savedCards == nil || p.CustomerID == "" {
		return nil
	}
	cards, err := h.savedCards(ctx, p.Scope(), p.CustomerID)
	if err != nil {
		h.log.ErrorContext(ctx, "listing saved cards failed", "payment_id", p.ID, "err", err)
		return nil
	}
	return cards
}

// maxFormBytes bounds the form a shopper posts.
const maxFormBytes = 16 << 10

// pay serves POST /pay/{id}: tokenize the card (or take the saved card
// chosen), confirm the payment, and send the browser on with a 303 to
// /pay/{id}/complete, where the outcome decides what comes next. A form the
// server refuses comes back with its errors and its card fields empty.
func (h *handler) pay(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	l, _ := pickLang(r, r.URL.Query().Get("lang"))
	if !h.sameOrigin(r) {
		h.renderState(w, r, http.StatusForbidden, &stateView{Kind: "error", Body: tr(l, "err.csrf")}, l)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.renderState(w, r, http.StatusBadRequest, &stateView{Kind: "error", Body: tr(l, "error.body")}, l)
		return
	}
	f := r.PostForm
	l, explicit := pickLang(r, f.Get("lang"))
	secret := f.Get("s")
	p, err := h.checkout.PagePayment(r.Context(), id, secret)
	if err != nil {
		h.fail(w, r, err, l)
		return
	}
	merchant, err := h.merchantName(r.Context(), p)
	if err != nil {
		h.fail(w, r, err, l)
		return
	}
	if p.Status != payloom.PaymentStatusRequiresPaymentMethod || h.expired(p) {
		// Paid, being paid, expired or canceled meanwhile: take no card.
		http.Redirect(w, r, pagePath(id, secret, l, explicit), http.StatusSeeOther)
		return
	}
	if !csrfOK(r) {
		h.renderForm(w, r, http.StatusForbidden, p, merchant, secret, l, explicit, nil, tr(l, "err.csrf"))
		return
	}
	token, errs, err := h.cardToken(r.Context(), p, f, l)
	if err != nil {
		h.fail(w, r, err, l)
		return
	}
	if len(errs) > 0 {
		h.renderForm(w, r, http.StatusBadRequest, p, merchant, secret, l, explicit, errs, "")
		return
	}
	_, err = h.checkout.ConfirmPayment(r.Context(), p.Scope(), payloom.NewID(payloom.PrefixOperation), id,
		&payloom.PaymentConfirm{CardToken: token})
	code := payloom.ErrorCode(err)
	if code == payloom.CodeTooManyAttempts {
		// Card after card was tried: the page takes no more.
		h.log.WarnContext(r.Context(), "confirming from the page was refused: too many attempts", "payment_id", id)
		h.renderState(w, r, http.StatusConflict, h.limitState(p, merchant, l), l)
		return
	}
	if code == payloom.CodeInvalidState {
		// Refused: if the payment still waits for a card (no processor
		// for its mode, say), say so on the form rather than loop.
		if cur, perr := h.checkout.PagePayment(r.Context(), id, secret); perr == nil &&
			cur.Status == payloom.PaymentStatusRequiresPaymentMethod && !h.expired(cur) {
			h.log.WarnContext(r.Context(), "confirming from the page was refused", "payment_id", id, "err", err)
			h.renderForm(w, r, http.StatusServiceUnavailable, cur, merchant, secret, l, explicit, nil, tr(l, "decline.processing"))
			return
		}
	}
	switch code {
	case "", payloom.CodeInvalidState, payloom.CodeUnavailable:
		// Recorded, refused because the payment moved on, or with the
		// processor still: the landing shows where it stands.
		if code != "" {
			h.log.WarnContext(r.Context(), "confirming from the page did not go through", "payment_id", id, "code", code)
		}
		http.Redirect(w, r, completePath(id, secret, l, explicit), http.StatusSeeOther)
	case payloom.CodeValidation:
		h.renderForm(w, r, http.StatusBadRequest, p, merchant, secret, l, explicit, nil, tr(l, "decline.processing"))
	default:
		h.fail(w, r, err, l)
	}
}

// cardToken returns the token to pay with: the saved card chosen (one of
// the customer's), or the typed card tokenized. Problems with the form come
// back as messages by field ("number", "exp", "cvc", "name", "saved").
func (h *handler) cardToken(ctx context.Context, p *payloom.Payment, f url.Values, l lang) (string, map[string]string, error) {
	if tok := f.Get("saved"); tok != "" {
		for _, c := range h.saved(ctx, p) {
			if c.Token == tok {
				return tok, nil, nil
			}
		}
		return "", map[string]string{"saved": tr(l, "err.saved.invalid")}, nil
	}
	errs := map[string]string{}
	number := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, f.Get("number"))
	switch {
	case number == "":
		errs["number"] = tr(l, "err.number.required")
	case !allDigits(number) || len(number) < 12 || len(number) > 19:
		errs["number"] = tr(l, "err.number.invalid")
	}
	month, year, ok := parseExpiry(f.Get("exp"))
	now := h.clock().UTC()
	switch {
	case strings.TrimSpace(f.Get("exp")) == "":
		errs["exp"] = tr(l, "err.exp.required")
	case !ok:
		errs["exp"] = tr(l, "err.exp.invalid")
	case year < now.Year() || (year == now.Year() && month < int(now.Month())):
		errs["exp"] = tr(l, "err.exp.past")
	}
	cvc := strings.TrimSpace(f.Get("cvc"))
	if !allDigits(cvc) || len(cvc) < 3 || len(cvc) > 4 {
		errs["cvc"] = tr(l, "err.cvc.invalid")
	}
	name := strings.TrimSpace(f.Get("name"))
	if utf8.RuneCountInString(name) > 200 {
		errs["name"] = tr(l, "err.name.invalid")
	}
	if len(errs) > 0 {
		return "", errs, nil
	}
	tok, err := h.vault.Tokenize(ctx, p.Scope(), &payloom.CardInput{
		Number: payloom.Secret(number), ExpMonth: month, ExpYear: year, CVC: payloom.Secret(cvc), HolderName: name,
	})
	if payloom.IsCode(err, payloom.CodeValidation) {
		switch payloom.ErrorParam(err) {
		case "card[exp_month]", "card[exp_year]":
			errs["exp"] = tr(l, "err.exp.invalid")
		case "card[cvc]":
			errs["cvc"] = tr(l, "err.cvc.invalid")
		case "card[holder_name]":
			errs["name"] = tr(l, "err.name.invalid")
		default:
			errs["number"] = tr(l, "err.number.invalid")
		}
		return "", errs, nil
	}
	if err != nil {
		return "", nil, err
	}
	return tok.ID, nil, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// parseExpiry reads "MM / YY", "MM/YY", "MM/YYYY", "MMYY" or "MM-YY".
func parseExpiry(s string) (month, year int, ok bool) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' {
			return -1
		}
		return r
	}, s)
	mm, yy, found := strings.Cut(s, "/")
	if !found {
		mm, yy, found = strings.Cut(s, "-")
	}
	if !found && len(s) == 4 {
		mm, yy = s[:2], s[2:]
	}
	if !allDigits(mm) || !allDigits(yy) || len(mm) > 2 || (len(yy) != 2 && len(yy) != 4) {
		return 0, 0, false
	}
	month, _ = strconv.Atoi(mm)
	year, _ = strconv.Atoi(yy)
	if len(yy) == 2 {
		year += 2000
	}
	return month, year, month >= 1 && month <= 12
}

// returnDetails are the parameters a processor's authentication page sent
// the shopper back with (Adyen's redirectResult), for the processor to
// read: the query less the page's own parameters, so that the page secret
// never leaves Payloom. One value per name; at most maxReturnDetails names.
func returnDetails(q url.Values) map[string]string {
	const maxReturnDetails = 16
	out := map[string]string{}
	for k, v := range q {
		if k == "s" || k == "lang" || len(v) == 0 || len(out) == maxReturnDetails {
			continue
		}
		out[k] = v[0]
	}
	return out
}

// complete serves GET /pay/{id}/complete: the landing after the form and
// after the issuer's authentication page. It records a finished
// authentication first (with what the processor appended to the URL);
// then a shopper of the hosted page (the page secret in the query or its
// cookie) goes on to success_url, the 3-D Secure challenge, or back to the
// page, and a shopper the merchant sent to authenticate goes to the
// payment's return_url. Without either, the page
// says authentication is complete and shows nothing about the payment.
func (h *handler) complete(w http.ResponseWriter, r *http.Request) {
	id, q := r.PathValue("id"), r.URL.Query()
	l, explicit := pickLang(r, q.Get("lang"))
	secret := q.Get("s")
	if secret == "" {
		secret = cookieValue(r, secretCookie)
	}
	p, err := h.checkout.CompleteAuthentication(r.Context(), id, returnDetails(q))
	if payloom.IsCode(err, payloom.CodeUnavailable) {
		h.renderState(w, r, http.StatusOK, &stateView{Kind: "processing",
			baseView: baseView{Refresh: 3, Title: tr(l, "state.processing")}, Body: tr(l, "state.processing.body")}, l)
		return
	}
	if err != nil {
		h.fail(w, r, err, l)
		return
	}
	if !payloom.PageSecretMatches(p.PageSecretHash, secret) {
		if p.ReturnURL != "" {
			http.Redirect(w, r, payloom.WithPaymentID(p.ReturnURL, p.ID), http.StatusSeeOther)
			return
		}
		h.renderState(w, r, http.StatusOK, &stateView{Kind: "authdone", Body: tr(l, "authdone.body")}, l)
		return
	}
	switch p.Status {
	case payloom.PaymentStatusCaptured, payloom.PaymentStatusAuthorized:
		if p.SuccessURL != "" {
			http.Redirect(w, r, payloom.WithPaymentID(p.SuccessURL, p.ID), http.StatusSeeOther)
			return
		}
		merchant, err := h.merchantName(r.Context(), p)
		if err != nil {
			h.fail(w, r, err, l)
			return
		}
		h.renderPaymentState(w, r, p, merchant, secret, l, explicit)
	case payloom.PaymentStatusRequiresAction:
		if p.NextAction == nil {
			http.Redirect(w, r, pagePath(id, secret, l, explicit), http.StatusSeeOther)
			return
		}
		if o := origin(p.NextAction.RedirectURL); o == "" || o == origin(h.publicURL()) {
			http.Redirect(w, r, p.NextAction.RedirectURL, http.StatusSeeOther) // the sandbox's challenge
			return
		}
		// The processor's authentication page is on another origin.
		// Browsers hold every redirect after a form post to the form's
		// form-action, which cannot know that origin: a page that sends
		// the shopper on (its script at once, or the button) starts a
		// new navigation instead.
		merchant, err := h.merchantName(r.Context(), p)
		if err != nil {
			h.fail(w, r, err, l)
			return
		}
		v := h.paymentState(p, merchant, l)
		v.AutoFollow = true
		h.renderState(w, r, http.StatusOK, v, l)
	default:
		http.Redirect(w, r, pagePath(id, secret, l, explicit), http.StatusSeeOther)
	}
}
