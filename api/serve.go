package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/payloom/payloom"
)

// maxBodyBytes is the largest request body accepted (413 above).
const maxBodyBytes = 1 << 20

// maxIdempotencyKeyLen bounds the Idempotency-Key header.
const maxIdempotencyKeyLen = 255

// reqInfo follows one request through the handler for its access line.
type reqInfo struct {
	id         string
	merchantID string
	livemode   *bool
	replayed   bool
}

type infoKey struct{}

func requestInfo(r *http.Request) *reqInfo {
	if info, ok := r.Context().Value(infoKey{}).(*reqInfo); ok {
		return info
	}
	return &reqInfo{id: payloom.NewID(payloom.PrefixRequest)}
}

// statusWriter remembers the status for the access line and whether a
// response was started (a panic after that cannot answer any more).
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

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// middleware gives every request its Request-Id, turns a panic into a 500
// and writes the access line.
func (s *server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.clock()
		info := &reqInfo{id: payloom.NewID(payloom.PrefixRequest)}
		w.Header().Set("Request-Id", info.id)
		sw := &statusWriter{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.logPanic(r.Context(), info, p)
				if sw.status == 0 {
					s.writeError(sw, r, errors.New("panic"))
				}
			}
			s.accessLog(r, info, sw.status, s.clock().Sub(start))
		}()
		next.ServeHTTP(sw, r)
	})
}

func (s *server) logPanic(ctx context.Context, info *reqInfo, p any) {
	// The panic value and stack name code, not request data: bodies are
	// never logged.
	s.log.ErrorContext(ctx, "panic serving request", "request_id", info.id,
		"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
}

func (s *server) accessLog(r *http.Request, info *reqInfo, status int, d time.Duration) {
	args := []any{
		"method", r.Method,
		"path", maskPAN(r.URL.Path),
		"status", status,
		"duration_ms", float64(d.Microseconds()) / 1000,
		"request_id", info.id,
	}
	if r.Pattern != "" {
		args = append(args, "route", r.Pattern)
	}
	if r.URL.RawQuery != "" {
		// Names only: values can hold anything a client typed.
		if q, err := url.ParseQuery(r.URL.RawQuery); err == nil {
			names := make([]string, 0, len(q))
			for k := range q {
				names = append(names, displayKey(k))
			}
			slices.Sort(names)
			args = append(args, "query", strings.Join(names, ","))
		}
	}
	if info.merchantID != "" {
		args = append(args, "merchant_id", info.merchantID)
	}
	if info.livemode != nil {
		args = append(args, "livemode", *info.livemode)
	}
	if info.replayed {
		args = append(args, "idempotent_replayed", true)
	}
	s.log.InfoContext(r.Context(), "request", args...)
}

// maskPAN hides runs of twelve or more digits (the length of the shortest
// card number) in a logged path, in case a client puts a card number in a
// URL.
func maskPAN(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		switch {
		case j-i >= 12:
			b.WriteString(strings.Repeat("*", j-i))
			i = j
		case j > i:
			b.WriteString(s[i:j])
			i = j
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String()
}

// call is one authenticated request.
type call struct {
	s     *server
	r     *http.Request
	info  *reqInfo
	key   *payloom.APIKey
	scope payloom.Scope
	query url.Values
	// m caches the scope's merchant once loaded.
	m *payloom.Merchant
}

func (c *call) ctx() context.Context { return c.r.Context() }

// merchant returns the scope's merchant, loading it once.
func (c *call) merchant(ctx context.Context) (*payloom.Merchant, error) {
	if c.m != nil {
		return c.m, nil
	}
	m, err := c.s.auth.Merchant(ctx, c.scope.MerchantID)
	if err != nil {
		if payloom.IsCode(err, payloom.CodeNotFound) {
			// A key whose merchant is gone: a broken invariant.
			return nil, fmt.Errorf("api: merchant %s of key %s not found: %w", c.scope.MerchantID, c.key.ID, err)
		}
		return nil, err
	}
	c.m = m
	return m, nil
}

// writeOp is a validated write, ready to run under an operation key.
type writeOp struct {
	// merchantID is the body's merchant_id ("" if absent).
	merchantID string
	// exec performs the write. It may run again with the same opKey after
	// a crash or a released lease: the engine resumes, never repeats.
	exec func(ctx context.Context, opKey string) (any, error)
	// claimed, if set, performs the write under a new Idempotency-Key
	// that it claims and completes itself (payloom.Claim); when it
	// returns with claim.Record nil it wrote nothing, and the usual path
	// (Begin, exec) runs.
	claimed func(ctx context.Context, claim *payloom.Claim) (any, error)
	// prepare, if set, runs once the scope is known and before the
	// Idempotency-Key is claimed: raw card data is tokenized there, so
	// that nothing after it (the fingerprint, the stored record, the
	// engine) sees the card number. It may set fingerprintTree.
	prepare func(ctx context.Context) error
	// fingerprintTree, if set, replaces the body in the idempotency
	// fingerprint.
	fingerprintTree any
}

func (s *server) serveRoute(w http.ResponseWriter, r *http.Request, rt *route) {
	if rt.public != nil {
		rt.public(w, r)
		return
	}
	info := requestInfo(r)
	key, err := s.authenticate(r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="payloom"`)
		s.writeError(w, r, err)
		return
	}
	// Everything done for this request is done by this key, from this
	// address: the services write it into the audit events they record.
	r = r.WithContext(payloom.WithActor(r.Context(), payloom.Actor{ID: key.ID, Source: remoteIP(r)}))
	c := &call{s: s, r: r, info: info, key: key}
	livemode := key.Livemode
	info.livemode = &livemode
	if !key.Can(rt.Permission) {
		s.writeError(w, r, c.denied(rt.Permission))
		return
	}
	if rt.Write {
		s.serveWrite(w, c, rt)
	} else {
		s.serveRead(w, c, rt)
	}
}

// remoteIP is the address of the client's end of the connection. Headers
// such as X-Forwarded-For are not read: any client can write them, and an
// audit log must not record what the client claims.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// denied records a permission.denied audit event and returns the 403 to
// answer. The event is best effort: failing to record a refusal must not
// turn it into an acceptance, nor into a 500 that hides it.
func (c *call) denied(p payloom.Permission) error {
	route := c.r.Method + " " + c.r.Pattern
	if _, pattern, ok := strings.Cut(c.r.Pattern, " "); ok {
		route = c.r.Method + " " + pattern
	}
	ev := payloom.NewAuditEvent(c.ctx(), payloom.Scope{MerchantID: c.key.MerchantID, Livemode: c.key.Livemode},
		payloom.AuditPermissionDenied, payloom.AuditDenied, "", c.s.clock().UTC())
	ev.Details["permission"] = string(p)
	ev.Details["route"] = route
	if err := c.s.audit.RecordAudit(context.WithoutCancel(c.ctx()), ev); err != nil {
		c.s.log.ErrorContext(c.ctx(), "recording permission.denied failed", "request_id", c.info.id, "err", err)
	}
	return errPermission(p, route)
}

func errPermission(p payloom.Permission, route string) error {
	msg := fmt.Sprintf("this API key lacks the %q permission, which %s requires", string(p), route)
	if p == payloom.PermissionRawCardData {
		msg = "this API key lacks the \"raw_card_data\" permission, which sending card numbers in a payment " +
			"requires; tokenize the card with POST /v1/tokens (or collect it on the hosted payment page) and " +
			"pay with payment_method[card][token]"
	}
	return payloom.Errorf(payloom.CodePermissionDenied, "%s", msg)
}

func (s *server) authenticate(r *http.Request) (*payloom.APIKey, error) {
	vals := r.Header.Values("Authorization")
	if len(vals) == 0 {
		return nil, payloom.Errorf(payloom.CodeAuthFailed,
			"no API key provided: send it as Authorization: Bearer <key>")
	}
	scheme, secret, ok := strings.Cut(vals[0], " ")
	if len(vals) > 1 || !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
		return nil, payloom.Errorf(payloom.CodeAuthFailed,
			"malformed Authorization header: send the API key as Authorization: Bearer <key>")
	}
	key, err := s.auth.Authenticate(r.Context(), strings.TrimSpace(secret))
	if err != nil {
		return nil, err
	}
	return key, nil
}

// resolveScope fixes the tenant of the request from the API key and the
// merchant_id the request names. A platform key must name a merchant that
// exists; a merchant key may name only its own merchant. The mode is always
// the key's.
func (c *call) resolveScope(merchantID string) error {
	if c.key.Platform || c.key.MerchantID == "" {
		if merchantID == "" {
			return payloom.FieldError("merchant_id", "merchant_id is required with a platform key")
		}
		m, err := c.s.auth.Merchant(c.ctx(), merchantID)
		if payloom.IsCode(err, payloom.CodeNotFound) {
			return payloom.FieldError("merchant_id", "no such merchant")
		}
		if err != nil {
			return err
		}
		c.m = m
	} else if merchantID != "" && merchantID != c.key.MerchantID {
		return payloom.FieldError("merchant_id", "merchant_id does not match the API key's merchant")
	} else {
		merchantID = c.key.MerchantID
	}
	c.scope = payloom.Scope{MerchantID: merchantID, Livemode: c.key.Livemode}
	c.info.merchantID = merchantID
	return nil
}

func (s *server) serveRead(w http.ResponseWriter, c *call, rt *route) {
	q, err := url.ParseQuery(c.r.URL.RawQuery)
	if err != nil {
		s.writeError(w, c.r, payloom.Errorf(payloom.CodeValidation, "the query string is malformed"))
		return
	}
	for _, name := range slices.Sorted(maps.Keys(q)) {
		if name != "merchant_id" && !slices.Contains(rt.query, name) {
			s.writeError(w, c.r, payloom.FieldError(displayKey(name), "unknown parameter"))
			return
		}
		if len(q[name]) > 1 {
			s.writeError(w, c.r, payloom.FieldError(displayKey(name), "%s is given more than once", displayKey(name)))
			return
		}
	}
	merchantID := ""
	if _, ok := q["merchant_id"]; ok {
		merchantID = q.Get("merchant_id")
		if err := checkID(merchantID, payloom.PrefixMerchant, "merchant_id"); err != nil {
			s.writeError(w, c.r, err)
			return
		}
	}
	if err := c.resolveScope(merchantID); err != nil {
		s.writeError(w, c.r, err)
		return
	}
	c.query = q
	v, err := rt.read(c)
	status, body, code := s.render(c.r, v, err)
	s.writeBody(w, status, body, code, false)
}

func (s *server) serveWrite(w http.ResponseWriter, c *call, rt *route) {
	r := c.r
	if r.URL.RawQuery != "" {
		param := ""
		if q, err := url.ParseQuery(r.URL.RawQuery); err == nil {
			for k := range q {
				if param == "" || k < param {
					param = k
				}
			}
		}
		s.writeError(w, r, payloom.FieldError(displayKey(param),
			"%s requests take their parameters in the JSON body, not the query string", r.Method))
		return
	}
	idemKey, hasKey, err := idempotencyKey(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	tree, err := readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	op, err := rt.write(c, tree)
	if err == nil {
		err = c.resolveScope(op.merchantID)
	}
	if err == nil && !hasKey && rt.keyRequiredLive && c.scope.Livemode {
		var m *payloom.Merchant
		if m, err = c.merchant(r.Context()); err == nil && !m.IdempotencyKeyOptional {
			err = &payloom.Error{Code: payloom.CodeIdempotencyKeyRequired, Param: "Idempotency-Key",
				Message: "live-mode payments require an Idempotency-Key header"}
		}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}

	// The write runs to its end even if the client hangs up: stopping
	// between the engine's phases would only leave work for recovery.
	ctx := context.WithoutCancel(r.Context())
	if op.prepare != nil {
		if err := op.prepare(ctx); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if !hasKey {
		status, body, code := s.execute(ctx, c, op, payloom.NewID(payloom.PrefixOperation))
		s.writeBody(w, status, body, code, false)
		return
	}
	fpTree := tree
	if op.fingerprintTree != nil {
		fpTree = op.fingerprintTree
	}
	fp := fingerprint(r.Method, r.URL.Path, canonicalJSON(fpTree))
	if op.claimed != nil {
		// The hot path: the write claims the key in its first
		// transaction and stores the response in its last.
		claim := &payloom.Claim{Scope: c.scope, Key: idemKey, Method: r.Method, Path: r.URL.Path, Fingerprint: fp,
			Respond: func(v any) (int, []byte, bool) {
				status, body, code := s.render(r, v, nil)
				return status, body, code == "" && status < 500
			}}
		v, err := s.run(ctx, c, func(ctx context.Context) (any, error) { return op.claimed(ctx, claim) })
		switch {
		case claim.Completed:
			s.writeBody(w, claim.Code, claim.Body, "", false)
			return
		case claim.Record != nil:
			status, body, code := s.render(r, v, err)
			s.finish(ctx, c, claim.Record, status, body, code)
			s.writeBody(w, status, body, code, false)
			return
		}
		// Nothing claimed and nothing done: the key has a record (a
		// retry: replay, conflict, in progress or take-over) or the
		// request failed a check, which the usual path finds again.
	}
	rec, held, err := s.idem.Begin(ctx, c.scope, idemKey, r.Method, r.URL.Path, fp)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !held {
		if !rec.Completed() {
			s.writeError(w, r, fmt.Errorf("api: idempotency record %s neither held nor completed", rec.ID))
			return
		}
		c.info.replayed = true
		s.writeBody(w, rec.ResponseCode, rec.ResponseBody, "", true)
		return
	}
	status, body, code := s.execute(ctx, c, op, rec.ID)
	s.finish(ctx, c, rec, status, body, code)
	s.writeBody(w, status, body, code, false)
}

// finish settles the held record rec of a write that answered status:
// released after a server error, abandoned when nothing changed, else
// completed with the response.
func (s *server) finish(ctx context.Context, c *call, rec *payloom.IdempotencyKey, status int, body []byte, code string) {
	switch {
	case status >= 500:
		// No response is stored for a server error: the retry resumes the
		// operation under the same record (and operation key).
		if err := s.idem.Release(ctx, rec); err != nil {
			s.log.ErrorContext(ctx, "releasing idempotency key failed", "request_id", c.info.id, "err", err)
		}
	case code == payloom.CodeValidation || code == payloom.CodeNotFound:
		// The engine and the vault change nothing when they answer these
		// (checks that need the store: merchant limits, the token, the
		// payment exists): nothing is kept under the key, so the client
		// can correct the request and send it again with the same key.
		if err := s.idem.Abandon(ctx, rec); err != nil {
			s.log.ErrorContext(ctx, "abandoning idempotency key failed", "request_id", c.info.id, "err", err)
		}
	default:
		if err := s.idem.Complete(ctx, rec, status, body); err != nil {
			// The operation is done and this response is right; a retry will
			// resume under the record and get the same answer from the engine.
			s.log.WarnContext(ctx, "storing idempotent response failed", "request_id", c.info.id, "err", err)
		}
	}
}

// execute runs a write and renders its result.
func (s *server) execute(ctx context.Context, c *call, op *writeOp, opKey string) (status int, body []byte, code string) {
	v, err := s.run(ctx, c, func(ctx context.Context) (any, error) { return op.exec(ctx, opKey) })
	return s.render(c.r, v, err)
}

// run runs a write. A panic becomes an error here, so that the idempotency
// lease is released rather than left to expire.
func (s *server) run(ctx context.Context, c *call, fn func(ctx context.Context) (any, error)) (v any, err error) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.logPanic(ctx, c.info, p)
			v, err = nil, errors.New("panic")
		}
	}()
	return fn(ctx)
}

// idempotencyKey reads the Idempotency-Key header: 1 to 255 printable
// ASCII characters, at most one header.
func idempotencyKey(r *http.Request) (string, bool, error) {
	vals := r.Header.Values("Idempotency-Key")
	if len(vals) == 0 {
		return "", false, nil
	}
	k := vals[0]
	if len(vals) > 1 || k == "" || len(k) > maxIdempotencyKeyLen || !printableASCII(k) {
		return "", false, payloom.FieldError("Idempotency-Key",
			"Idempotency-Key must be one header of 1 to %d printable ASCII characters", maxIdempotencyKeyLen)
	}
	return k, true, nil
}

// readBody reads and parses a POST body: at most maxBodyBytes of JSON,
// declared as application/json (UTF-8). An empty body means {}, so that
// capture and cancel need none.
func readBody(w http.ResponseWriter, r *http.Request) (any, error) {
	ct := r.Header.Get("Content-Type")
	if ct != "" {
		if err := checkContentType(ct); err != nil {
			return nil, err
		}
	}
	tooLarge := payloom.Errorf(payloom.CodeRequestTooLarge, "request body is larger than %d bytes", maxBodyBytes)
	if r.ContentLength > maxBodyBytes {
		return nil, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge
		}
		return nil, payloom.Errorf(payloom.CodeInvalidJSON, "the request body could not be read")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return map[string]any{}, nil
	}
	if ct == "" {
		return nil, payloom.Errorf(payloom.CodeUnsupportedMediaType, "request body must be sent with Content-Type: application/json")
	}
	return parseJSON(body)
}

func checkContentType(ct string) error {
	mt, params, err := mime.ParseMediaType(ct)
	ok := err == nil && mt == "application/json"
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			ok = false
		}
	}
	if !ok {
		return payloom.Errorf(payloom.CodeUnsupportedMediaType,
			"request body must be sent with Content-Type: application/json (charset utf-8 only)")
	}
	return nil
}

// render turns a result into a status and JSON body. Unexpected errors are
// logged here with the request ID and answered as "internal error".
func (s *server) render(r *http.Request, v any, err error) (status int, body []byte, code string) {
	info := requestInfo(r)
	if err == nil {
		b, merr := encodeJSON(normalize(v))
		if merr == nil {
			return http.StatusOK, b, ""
		}
		err = fmt.Errorf("api: encoding response: %w", merr)
	}
	status, eb, internal := classify(err, info.id)
	if internal {
		s.log.ErrorContext(r.Context(), "internal error", "request_id", info.id, "err", err.Error())
	}
	b, merr := encodeJSON(eb)
	if merr != nil {
		panic(merr) // an errorBody always encodes
	}
	return status, b, eb.Error.Code
}

func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body, code := s.render(r, nil, err)
	s.writeBody(w, status, body, code, false)
}

// writeBody sends a JSON response. code is the error code of an error
// response ("" for success and replays); replay marks a stored response
// sent again.
func (s *server) writeBody(w http.ResponseWriter, status int, body []byte, code string, replay bool) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if code == payloom.CodeIdempotencyInProgress {
		h.Set("Retry-After", "1")
	}
	if replay {
		h.Set("Idempotent-Replayed", "true")
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// encodeJSON renders v compactly with one trailing newline. HTML characters
// are not escaped: the API serves JSON, not HTML.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// normalize makes empty collections render as [] and {} rather than null,
// as the OpenAPI description promises, whatever the engine handed back.
func normalize(v any) any {
	switch o := v.(type) {
	case *payloom.Payment:
		return normPayment(o)
	case *payloom.Refund:
		return normRefund(o)
	case *payloom.List[*payloom.Payment]:
		return normList(o, normPayment)
	case *payloom.List[*payloom.Refund]:
		return normList(o, normRefund)
	case *payloom.List[*payloom.Event]:
		return normList(o, func(e *payloom.Event) *payloom.Event { return e })
	case *payloom.WebhookEndpoint:
		return normEndpoint(o)
	case *payloom.List[*payloom.WebhookEndpoint]:
		return normList(o, normEndpoint)
	case *payloom.Customer:
		return normCustomer(o)
	case *payloom.List[*payloom.Customer]:
		return normList(o, normCustomer)
	case *payloom.SavedPaymentMethod:
		return normPaymentMethod(o)
	case *payloom.List[*payloom.SavedPaymentMethod]:
		return normList(o, normPaymentMethod)
	case *payloom.List[*payloom.AuditEvent]:
		return normList(o, func(e *payloom.AuditEvent) *payloom.AuditEvent { return e })
	}
	return v
}

func normPayment(p *payloom.Payment) *payloom.Payment {
	if p == nil || (p.Attempts != nil && p.Metadata != nil) {
		return p
	}
	cp := *p
	if cp.Attempts == nil {
		cp.Attempts = []*payloom.Attempt{}
	}
	if cp.Metadata == nil {
		cp.Metadata = map[string]string{}
	}
	return &cp
}

func normRefund(r *payloom.Refund) *payloom.Refund {
	if r == nil || r.Metadata != nil {
		return r
	}
	cp := *r
	cp.Metadata = map[string]string{}
	return &cp
}

func normList[T any](l *payloom.List[T], f func(T) T) *payloom.List[T] {
	if l == nil {
		return nil
	}
	out := &payloom.List[T]{Object: "list", Data: make([]T, len(l.Data)), HasMore: l.HasMore}
	for i, v := range l.Data {
		out.Data[i] = f(v)
	}
	return out
}
