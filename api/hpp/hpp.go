// Package hpp is Payloom's hosted payment page: the page a shopper pays a
// payment on (GET and POST /pay/{id}), the landing after payment and after
// 3-D Secure (GET /pay/{id}/complete), the printable receipt (GET
// /receipts/{id}) and the page's stylesheet and script (/assets/). It is
// server-rendered HTML (html/template) with one small script for brand
// detection and checks before submitting; it works without the script, on a
// phone, by keyboard alone, in English and Brazilian Portuguese.
//
// The page authenticates with the secret in its link (payment_url), which
// opens that one payment and nothing else; it never sees, needs or shows a
// merchant's API key. The card goes from the form to this package, which
// tokenizes it with the vault and confirms the payment through the engine,
// in the same request.
//
// This package must never log, store, echo into a page or put into a URL a
// card number or CVC (form values are never logged, a rejected form comes
// back with its card fields empty, and only the query's names are ever
// logged, never the secret); it must never serve a page that runs inline
// script or can be framed, and it must never take a card for a payment that
// is not in requires_payment_method. It keeps no state: every decision is
// the engine's. Requests are not rate-limited here yet (put a limit in the
// reverse proxy in front).
package hpp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/payloom/payloom"
)

// SavedCardsFunc returns the saved cards of a payment's customer (each with
// its Token set), for the page to offer. It is called only for payments
// with a CustomerID. An empty result means none.
type SavedCardsFunc func(ctx context.Context, scope payloom.Scope, customerID string) ([]payloom.CardSummary, error)

// Config wires the page. Checkout, Auth and Vault are required.
type Config struct {
	Checkout payloom.CheckoutService
	// Auth gives the merchant's name.
	Auth payloom.AuthService
	// Vault tokenizes the card the shopper types.
	Vault payloom.Vault
	// SavedCards, if set, lists the saved cards a customer may pay with.
	// Nil means none: no saved-card choice is shown.
	SavedCards SavedCardsFunc
	// PublicURL is the base URL shoppers reach the server at; its origin
	// is allowed as a form target, and an https URL makes the page's
	// cookies Secure.
	PublicURL string
	// Logger receives one line per request (never a query value or a form
	// field) and internal errors. Nil discards.
	Logger *slog.Logger
	// Clock defaults to time.Now.
	Clock payloom.Clock
	// MaxPaymentAttempts is the engine's cap on a payment's attempts
	// (engine.Config.MaxPaymentAttempts): a payment that reached it is
	// shown as closed, without the form. Zero means no cap is shown.
	MaxPaymentAttempts int
}

//go:embed templates/*.html static/*
var files embed.FS

// asset is a static file served under /assets/, with a version for cache
// busting in the URLs the pages use.
type asset struct {
	body        []byte
	contentType string
	version     string
}

var assets = func() map[string]*asset {
	out := map[string]*asset{}
	for name, ct := range map[string]string{"page.css": "text/css; charset=utf-8", "page.js": "text/javascript; charset=utf-8"} {
		b, err := fs.ReadFile(files, "static/"+name)
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(b)
		out[name] = &asset{body: b, contentType: ct, version: hex.EncodeToString(sum[:6])}
	}
	return out
}()

// initial is the first letter of a merchant's name, for its avatar.
func initial(name string) string {
	for _, r := range strings.TrimSpace(name) {
		return strings.ToUpper(string(r))
	}
	return "·"
}

func assetURL(name string) string { return "/assets/" + name + "?v=" + assets[name].version }

var templates = func() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, page := range []string{"form", "state", "receipt"} {
		out[page] = template.Must(template.New("layout.html").Funcs(template.FuncMap{
			"asset":   assetURL,
			"initial": initial,
		}).ParseFS(files, "templates/layout.html", "templates/"+page+".html"))
	}
	return out
}()

type handler struct {
	checkout   payloom.CheckoutService
	auth       payloom.AuthService
	vault      payloom.Vault
	savedCards SavedCardsFunc
	public     *url.URL
	log        *slog.Logger
	clock      payloom.Clock
	maxAtt     int // Config.MaxPaymentAttempts
}

// New returns the pages' handler. It serves /pay/, /receipts/ and /assets/
// and answers 404 for anything else.
func New(cfg Config) http.Handler {
	if cfg.Checkout == nil || cfg.Auth == nil || cfg.Vault == nil {
		panic("hpp: Config needs Checkout, Auth and Vault")
	}
	h := &handler{checkout: cfg.Checkout, auth: cfg.Auth, vault: cfg.Vault, savedCards: cfg.SavedCards,
		log: cfg.Logger, clock: cfg.Clock, maxAtt: cfg.MaxPaymentAttempts}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.clock == nil {
		h.clock = time.Now
	}
	if u, err := url.Parse(cfg.PublicURL); err == nil && u.Host != "" {
		h.public = u
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /pay/{id}", h.page)
	mux.HandleFunc("POST /pay/{id}", h.pay)
	mux.HandleFunc("GET /pay/{id}/complete", h.complete)
	mux.HandleFunc("GET /receipts/{id}", h.receipt)
	mux.HandleFunc("GET /assets/{name}", h.asset)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		l, _ := pickLang(r, r.URL.Query().Get("lang"))
		h.renderState(w, r, http.StatusNotFound, &stateView{Kind: "notfound", Body: tr(l, "notfound.body")}, l)
	})
	return h.middleware(mux)
}

// statusWriter remembers the status for the access line.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// middleware writes one access line per request: the path (payment IDs are
// not secret) and the names of the query's parameters, never their values
// (the page secret travels in the query).
func (h *handler) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				h.log.ErrorContext(r.Context(), "panic serving a page", "path", r.URL.Path, "panic", p)
				if sw.status == 0 {
					http.Error(sw, "internal error", http.StatusInternalServerError)
				}
			}
			args := []any{"method", r.Method, "path", r.URL.Path, "status", sw.status,
				"duration_ms", float64(time.Since(start).Microseconds()) / 1000}
			if r.Pattern != "" {
				args = append(args, "route", r.Pattern)
			}
			if q := r.URL.Query(); len(q) > 0 {
				names := slices.Sorted(func(yield func(string) bool) {
					for k := range q {
						if !yield(k) {
							return
						}
					}
				})
				args = append(args, "query", strings.Join(names, ","))
			}
			h.log.InfoContext(r.Context(), "page request", args...)
		}()
		next.ServeHTTP(sw, r)
	})
}

func (h *handler) asset(w http.ResponseWriter, r *http.Request) {
	a, ok := assets[r.PathValue("name")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", a.contentType)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "public, max-age=86400")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	_, _ = w.Write(a.body)
}

// securityHeaders are on every page: a Content-Security-Policy that allows
// scripts and styles from this server only (no inline script, no eval), no
// framing, forms posting only to this server (and to the origins the
// payment's own redirects lead to after a form post), and no referrer: the
// page's URL carries its secret.
func (h *handler) securityHeaders(w http.ResponseWriter, formTargets ...string) {
	actions := []string{"'self'"}
	for _, t := range append([]string{h.publicURL()}, formTargets...) {
		if o := origin(t); o != "" && !slices.Contains(actions, o) {
			actions = append(actions, o)
		}
	}
	hd := w.Header()
	hd.Set("Content-Security-Policy", strings.Join([]string{
		"default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
		"form-action " + strings.Join(actions, " "), "frame-ancestors 'none'", "base-uri 'none'",
	}, "; "))
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
}

func (h *handler) publicURL() string {
	if h.public == nil {
		return ""
	}
	return h.public.String()
}

// origin returns scheme://host of an absolute http(s) URL, or "".
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// Cookies. The page secret rides in a cookie so that the shopper's browser
// coming back from the issuer's authentication page, on a URL without the
// secret, still opens the payment; the CSRF token is a double-submit
// cookie. Both are scoped to the one payment's path, HttpOnly, and Secure
// when the server is reached over https.
const (
	secretCookie = "payloom_page"
	csrfCookie   = "payloom_csrf"
)

func (h *handler) secureCookies(r *http.Request) bool {
	return r.TLS != nil || (h.public != nil && h.public.Scheme == "https")
}

func (h *handler) setCookie(w http.ResponseWriter, r *http.Request, name, value, id string, site http.SameSite) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: payloom.PaymentPagePathPrefix + id,
		HttpOnly: true, Secure: h.secureCookies(r), SameSite: site})
}

func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

// csrfToken returns the request's CSRF cookie, or a new one (set on w).
func (h *handler) csrfToken(w http.ResponseWriter, r *http.Request, id string) string {
	if v := cookieValue(r, csrfCookie); len(v) == 43 {
		return v
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	v := base64.RawURLEncoding.EncodeToString(b[:])
	h.setCookie(w, r, csrfCookie, v, id, http.SameSiteStrictMode)
	return v
}

// csrfOK checks the double submit: the form's token equals the cookie's.
func csrfOK(r *http.Request) bool {
	c, f := cookieValue(r, csrfCookie), r.PostForm.Get("csrf")
	return len(c) == 43 && subtle.ConstantTimeCompare([]byte(c), []byte(f)) == 1
}

// sameOrigin refuses a POST the browser says comes from another site.
// Sec-Fetch-Site, which pages cannot forge, decides when present; otherwise
// an Origin must be this server's. A same-origin form under Referrer-Policy
// no-referrer sends "Origin: null", and old browsers send neither header:
// the page secret and the CSRF token still guard those.
func (h *handler) sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return true
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return o == scheme+"://"+r.Host || (h.public != nil && o == origin(h.public.String()))
}
