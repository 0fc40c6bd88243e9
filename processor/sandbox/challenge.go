package sandbox

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"html/template"
	"log/slog"
	"net/http"
	"strings"

	"github.com/payloom/payloom"
)

// ChallengeHandler serves the sandbox's 3-D Secure challenge page, playing
// the card issuer's authentication page: GET RedirectPathPrefix+{txn} shows
// the amount with an Approve and a Fail button, POST records the answer
// (CompleteChallenge) and sends the shopper to the authorization request's
// ReturnURL, or shows the outcome when there is none. logger may be nil.
//
// The page holds no card data and no secret: knowing a transaction ID lets
// one answer its challenge, which is what a test-mode simulator is for. The
// POST is refused when the browser says it comes from another site.
func (p *Processor) ChallengeHandler(logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &challengeHandler{p: p, log: logger}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+RedirectPathPrefix+"{txn}", h.show)
	mux.HandleFunc("POST "+RedirectPathPrefix+"{txn}", h.answer)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.render(w, http.StatusNotFound, &challengeView{Missing: true})
	})
	return mux
}

type challengeHandler struct {
	p   *Processor
	log *slog.Logger
}

type challengeView struct {
	*Challenge
	Amount  string
	Missing bool
	Nonce   string
}

func (h *challengeHandler) show(w http.ResponseWriter, r *http.Request) {
	c, err := h.p.Challenge(r.Context(), r.PathValue("txn"))
	h.respond(w, r, c, err)
}

func (h *challengeHandler) answer(w http.ResponseWriter, r *http.Request) {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		http.Error(w, "cross-site request refused", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	var approve bool
	switch r.PostForm.Get("outcome") {
	case ChallengeApproved:
		approve = true
	case ChallengeFailed:
	default:
		http.Error(w, "outcome must be approved or failed", http.StatusBadRequest)
		return
	}
	c, err := h.p.CompleteChallenge(r.Context(), r.PathValue("txn"), approve)
	if err == nil && c.ReturnURL != "" {
		http.Redirect(w, r, c.ReturnURL, http.StatusSeeOther)
		return
	}
	h.respond(w, r, c, err)
}

func (h *challengeHandler) respond(w http.ResponseWriter, r *http.Request, c *Challenge, err error) {
	switch {
	case payloom.IsCode(err, payloom.CodeNotFound):
		h.render(w, http.StatusNotFound, &challengeView{Missing: true})
	case err != nil:
		h.log.ErrorContext(r.Context(), "sandbox 3-D Secure challenge failed", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
	default:
		v := &challengeView{Challenge: c, Amount: payloom.FormatAmount(c.Amount, c.Currency) + " " + string(c.Currency)}
		h.render(w, http.StatusOK, v)
	}
}

func (h *challengeHandler) render(w http.ResponseWriter, status int, v *challengeView) {
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	v.Nonce = base64.RawStdEncoding.EncodeToString(nonce[:])
	var buf bytes.Buffer
	if err := challengeTemplate.Execute(&buf, v); err != nil {
		h.log.Error("sandbox challenge page", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	// No form-action: browsers apply it to every redirect that follows
	// the form's POST, and the answer's redirects end wherever the
	// payment's flow does (the return URL, then the merchant's
	// success_url), which this page cannot know. The form's action is
	// fixed, and the page takes no input into it.
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Security-Policy", strings.Join([]string{
		"default-src 'none'", "style-src 'nonce-" + v.Nonce + "'", "frame-ancestors 'none'", "base-uri 'none'",
	}, "; "))
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

var challengeTemplate = template.Must(template.New("challenge").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Sandbox bank: 3-D Secure</title>
<style nonce="{{.Nonce}}">
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#eef1f5;color:#1a2233}
main{max-width:420px;margin:40px auto;padding:0 16px}
.card{background:#fff;border-radius:12px;box-shadow:0 1px 3px rgba(0,0,0,.12);padding:28px}
.bank{font-weight:700;color:#0b5394;letter-spacing:.02em}
.note{background:#fff6d6;border:1px solid #f0d47a;border-radius:8px;padding:8px 12px;font-size:14px}
.amount{font-size:28px;font-weight:700;margin:8px 0 20px}
button{display:block;width:100%;padding:14px;margin-top:12px;border-radius:8px;font-size:16px;font-weight:600;cursor:pointer}
.approve{background:#0b5394;color:#fff;border:0}
.fail{background:#fff;color:#a4262c;border:1px solid #a4262c}
button:focus-visible{outline:3px solid #f0a30a;outline-offset:2px}
</style>
</head>
<body>
<main>
<div class="card">
<p class="bank">Sandbox Bank</p>
{{if .Missing}}
<h1>Authentication not found</h1>
<p>This 3-D Secure challenge does not exist.</p>
{{else}}
<h1>Confirm it's you</h1>
<p class="note">Test mode: this page stands in for your bank's 3-D Secure check. No real bank is involved.</p>
<p>Payment of</p>
<p class="amount">{{.Amount}}</p>
{{if .Outcome}}
<p role="status">{{if eq .Outcome "approved"}}You approved this payment.{{else}}Authentication failed.{{end}}</p>
{{if .ReturnURL}}<p><a href="{{.ReturnURL}}">Continue</a></p>{{end}}
{{else}}
<form method="post">
<button class="approve" type="submit" name="outcome" value="approved" id="approve">Approve</button>
<button class="fail" type="submit" name="outcome" value="failed" id="fail">Fail authentication</button>
</form>
{{end}}
{{end}}
</div>
</main>
</body>
</html>
`))
