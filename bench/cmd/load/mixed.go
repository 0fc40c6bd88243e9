package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// The mixed scenario's operation mix, in percent of operations.
const (
	pctCreate  = 60 // automatic-capture payment
	pctCapture = 20 // manual payment, then its capture (two requests)
	pctRefund  = 10 // partial or full refund of a captured payment
	// The remaining 10% read one of the user's payments.
)

// Request-level operation names (the keys of Result.ByOp).
const (
	opCreate       = "create"
	opCreateManual = "create_manual"
	opCapture      = "capture"
	opRefund       = "refund"
	opRead         = "read"
)

// payState is what a client was told about one of its payments.
type payState struct {
	id       string
	amount   int64
	captured int64
	refunded int64
	// uncertain: an operation on it has an unknown outcome, so a read may
	// legitimately disagree with what the client last heard.
	uncertain bool
}

// pendingOp is a write whose outcome the client never learned (a timeout,
// a dropped connection, a 5xx after every retry). Verification sends it
// again with the same Idempotency-Key, as a real client must.
type pendingOp struct {
	op     string
	path   string
	key    string
	body   []byte
	amount int64     // capture: the amount asked (0 = all); refund: the amount
	pay    *payState // capture and refund
	manual bool      // create: capture_method manual
	// refundID is set for a refund that was answered "pending": its final
	// status is read back, not retried.
	refundID string
}

// user is one virtual user's state; only its own worker touches it.
type user struct {
	rng        *rand.Rand
	pays       []*payState
	refundable []*payState
	pending    []pendingOp
	rejected   map[string]int64
	readMiss   int64
	samples    []string
}

type mixedRun struct {
	token       string
	users       []*user
	measuredOps atomic.Int64
}

func newMixedRun(token string, n int, seed uint64) *mixedRun {
	m := &mixedRun{token: token, users: make([]*user, n)}
	for i := range m.users {
		m.users[i] = &user{rng: rand.New(rand.NewPCG(seed, uint64(i))), rejected: map[string]int64{}}
	}
	return m
}

// paymentJSON is the part of a payment the scenario reads.
type paymentJSON struct {
	ID             string `json:"id"`
	Status         string `json:"status"`
	Amount         int64  `json:"amount"`
	AmountCaptured int64  `json:"amount_captured"`
	AmountRefunded int64  `json:"amount_refunded"`
}

type refundJSON struct {
	ID        string `json:"id"`
	PaymentID string `json:"payment_id"`
	Status    string `json:"status"`
	Amount    int64  `json:"amount"`
}

// step runs one operation of the mix for w's user.
func (m *mixedRun) step(ctx context.Context, w *worker) {
	u := m.users[w.id]
	measured := w.win.in(time.Now())
	roll := u.rng.IntN(100)
	switch {
	case roll < pctCreate:
		m.create(ctx, w, u, false)
	case roll < pctCreate+pctCapture:
		if p := m.create(ctx, w, u, true); p != nil {
			m.capture(ctx, w, u, p)
		}
	case roll < pctCreate+pctCapture+pctRefund && len(u.refundable) > 0:
		m.refund(ctx, w, u)
	case roll >= pctCreate+pctCapture+pctRefund && len(u.pays) > 0:
		m.read(ctx, w, u)
	default:
		// Nothing to refund or read yet (the user's first operations):
		// create instead, so the user never idles.
		m.create(ctx, w, u, false)
	}
	if measured {
		m.measuredOps.Add(1)
	}
}

// send sends a request, retrying with the same Idempotency-Key while the
// outcome is unknown. known is false when the outcome is still unknown
// after the retries.
func (m *mixedRun) send(ctx context.Context, w *worker, op, method, path, key string, body []byte,
	ok func(int, []byte) bool) (r response, known bool) {
	for attempt := 0; ; attempt++ {
		r = w.do(ctx, op, method, path, "application/json", key, body, ok)
		if !retryable(r) {
			return r, true
		}
		if attempt == 4 || ctx.Err() != nil {
			return r, false
		}
		select {
		case <-ctx.Done():
			return r, false
		case <-time.After(time.Duration(20<<attempt) * time.Millisecond):
		}
	}
}

// retryable: the server may or may not have done the work.
func retryable(r response) bool {
	return r.err != nil || r.status >= 500 ||
		(r.status == 409 && errorCode(r.body) == "idempotency_in_progress")
}

func (m *mixedRun) createBody(amount int64, manual bool) []byte {
	cm := "automatic"
	if manual {
		cm = "manual"
	}
	return []byte(`{"amount":` + strconv.FormatInt(amount, 10) + `,"currency":"USD","capture_method":"` + cm +
		`","payment_method":{"type":"card","card":{"token":"` + m.token + `"}}}`)
}

// create creates a payment of a random amount from 1.00 to 1000.00 and
// returns what the client was told, or nil.
func (m *mixedRun) create(ctx context.Context, w *worker, u *user, manual bool) *payState {
	amount := 100 + u.rng.Int64N(99901)
	body := m.createBody(amount, manual)
	key := w.newKey()
	op := opCreate
	if manual {
		op = opCreateManual
	}
	var pj paymentJSON
	r, known := m.send(ctx, w, op, "POST", "/v1/payments", key, body, func(_ int, b []byte) bool {
		pj = paymentJSON{}
		if json.Unmarshal(b, &pj) != nil {
			return false
		}
		if manual {
			return pj.Status == "authorized" && pj.AmountCaptured == 0
		}
		return pj.Status == "captured" && pj.AmountCaptured == amount
	})
	if !known {
		u.pending = append(u.pending, pendingOp{op: op, path: "/v1/payments", key: key, body: body, manual: manual})
		return nil
	}
	return u.applyCreate(op, r, pj)
}

// applyCreate records a create's answer; the client believes whatever a
// 2xx told it.
func (u *user) applyCreate(op string, r response, pj paymentJSON) *payState {
	if r.status < 200 || r.status >= 300 || pj.ID == "" {
		u.rejected[op]++
		return nil
	}
	p := &payState{id: pj.ID, amount: pj.Amount, captured: pj.AmountCaptured, refunded: pj.AmountRefunded}
	u.pays = append(u.pays, p)
	if p.captured > p.refunded {
		u.refundable = append(u.refundable, p)
	}
	return p
}

// capture captures an authorized payment in full or, half the time, in
// part.
func (m *mixedRun) capture(ctx context.Context, w *worker, u *user, p *payState) {
	var amount int64
	body := []byte(`{}`)
	if u.rng.IntN(2) == 0 {
		amount = 1 + u.rng.Int64N(p.amount)
		body = []byte(`{"amount":` + strconv.FormatInt(amount, 10) + `}`)
	}
	want := amount
	if want == 0 {
		want = p.amount
	}
	path := "/v1/payments/" + p.id + "/capture"
	key := w.newKey()
	var pj paymentJSON
	r, known := m.send(ctx, w, opCapture, "POST", path, key, body, func(_ int, b []byte) bool {
		pj = paymentJSON{}
		return json.Unmarshal(b, &pj) == nil && pj.Status == "captured" && pj.AmountCaptured == want
	})
	if !known {
		p.uncertain = true
		u.pending = append(u.pending, pendingOp{op: opCapture, path: path, key: key, body: body, amount: amount, pay: p})
		return
	}
	u.applyCapture(r, pj, p)
}

func (u *user) applyCapture(r response, pj paymentJSON, p *payState) {
	if r.status < 200 || r.status >= 300 || pj.ID != p.id {
		u.rejected[opCapture]++
		return
	}
	p.captured, p.refunded = pj.AmountCaptured, pj.AmountRefunded
	if p.captured > p.refunded {
		u.refundable = append(u.refundable, p)
	}
}

// refund refunds what is left of a captured payment or, half the time, a
// part of it.
func (m *mixedRun) refund(ctx context.Context, w *worker, u *user) {
	i := u.rng.IntN(len(u.refundable))
	p := u.refundable[i]
	// The payment leaves the refundable list for now; it comes back if
	// something is left to refund.
	u.refundable[i] = u.refundable[len(u.refundable)-1]
	u.refundable = u.refundable[:len(u.refundable)-1]
	left := p.captured - p.refunded
	if left <= 0 || p.uncertain {
		return
	}
	amount := left
	if u.rng.IntN(2) == 0 {
		amount = 1 + u.rng.Int64N(left)
	}
	body := []byte(`{"payment_id":"` + p.id + `","amount":` + strconv.FormatInt(amount, 10) + `}`)
	key := w.newKey()
	var rj refundJSON
	r, known := m.send(ctx, w, opRefund, "POST", "/v1/refunds", key, body, func(_ int, b []byte) bool {
		rj = refundJSON{}
		return json.Unmarshal(b, &rj) == nil && rj.Status == "succeeded" && rj.Amount == amount && rj.PaymentID == p.id
	})
	if !known {
		p.uncertain = true
		u.pending = append(u.pending, pendingOp{op: opRefund, path: "/v1/refunds", key: key, body: body, amount: amount, pay: p})
		return
	}
	u.applyRefund(r, rj, p, key, body)
}

func (u *user) applyRefund(r response, rj refundJSON, p *payState, key string, body []byte) {
	if r.status < 200 || r.status >= 300 || rj.ID == "" {
		u.rejected[opRefund]++
	} else {
		switch rj.Status {
		case "succeeded":
			p.refunded += rj.Amount
		case "pending":
			// Reserved but not final: read back at verification.
			p.uncertain = true
			u.pending = append(u.pending, pendingOp{op: opRefund, refundID: rj.ID, amount: rj.Amount, pay: p,
				key: key, body: body})
		}
	}
	if p.captured > p.refunded && !p.uncertain {
		u.refundable = append(u.refundable, p)
	}
}

// read retrieves one of the user's payments and checks that it says what
// the user was last told (only this user changes it).
func (m *mixedRun) read(ctx context.Context, w *worker, u *user) {
	p := u.pays[u.rng.IntN(len(u.pays))]
	r, _ := m.send(ctx, w, opRead, "GET", "/v1/payments/"+p.id, "", nil, func(_ int, b []byte) bool {
		var pj paymentJSON
		if json.Unmarshal(b, &pj) != nil {
			return false
		}
		return p.uncertain || (pj.AmountCaptured == p.captured && pj.AmountRefunded == p.refunded)
	})
	if r.class == classUnexpected {
		u.readMiss++
		if len(u.samples) < 3 {
			u.samples = append(u.samples, fmt.Sprintf("read %s: told captured=%d refunded=%d, server said %s",
				p.id, p.captured, p.refunded, r.body))
		}
	}
}

// Verify is the mixed scenario's end-of-run check: the sums over every
// payment the server lists equal what its clients were told, to the cent.
type Verify struct {
	Pass    bool   `json:"pass"`
	Summary string `json:"summary"`
	// What the clients were told.
	ExpectedPayments int64 `json:"expected_payments"`
	ExpectedCaptured int64 `json:"expected_captured"`
	ExpectedRefunded int64 `json:"expected_refunded"`
	// What GET /v1/payments and GET /v1/refunds list.
	ListedPayments int64 `json:"listed_payments"`
	ListedCaptured int64 `json:"listed_captured"`
	ListedRefunded int64 `json:"listed_refunded"`
	// RefundObjects sums the succeeded refunds listed by GET /v1/refunds.
	RefundObjects int64 `json:"listed_refund_objects_total"`
	// Per-payment disagreements and payments only one side knows.
	Mismatched int64 `json:"mismatched_payments"`
	Unknown    int64 `json:"unknown_payments"`
	Missing    int64 `json:"missing_payments"`
	// Unresolved: writes whose outcome stayed unknown even after retrying
	// with the same Idempotency-Key.
	Resolved       int64            `json:"resolved_by_retry"`
	Unresolved     int64            `json:"unresolved"`
	ReadMismatches int64            `json:"read_mismatches"`
	Rejected       map[string]int64 `json:"rejected"`
	Samples        []string         `json:"samples,omitempty"`
	Error          string           `json:"error,omitempty"`
}

func (m *mixedRun) verify(ctx context.Context, vw *worker) *Verify {
	v := &Verify{Rejected: map[string]int64{}}
	for _, u := range m.users {
		for _, op := range u.pending {
			if m.resolve(ctx, vw, u, op) {
				v.Resolved++
			} else {
				v.Unresolved++
			}
		}
		u.pending = nil
		v.ReadMismatches += u.readMiss
		v.Samples = append(v.Samples, u.samples...)
		for k, n := range u.rejected {
			v.Rejected[k] += n
		}
	}
	told := map[string]*payState{}
	for _, u := range m.users {
		for _, p := range u.pays {
			told[p.id] = p
			v.ExpectedPayments++
			v.ExpectedCaptured += p.captured
			v.ExpectedRefunded += p.refunded
		}
	}

	seen := map[string]bool{}
	err := listAll(ctx, vw, "/v1/payments", func(b json.RawMessage) error {
		var pj paymentJSON
		if err := json.Unmarshal(b, &pj); err != nil {
			return err
		}
		if seen[pj.ID] {
			return fmt.Errorf("payment %s listed twice", pj.ID)
		}
		seen[pj.ID] = true
		v.ListedPayments++
		v.ListedCaptured += pj.AmountCaptured
		v.ListedRefunded += pj.AmountRefunded
		p, ok := told[pj.ID]
		switch {
		case !ok:
			v.Unknown++
			v.sample("payment %s is listed but no client was told about it", pj.ID)
		case p.captured != pj.AmountCaptured || p.refunded != pj.AmountRefunded:
			v.Mismatched++
			v.sample("payment %s: told captured=%d refunded=%d; listed captured=%d refunded=%d",
				pj.ID, p.captured, p.refunded, pj.AmountCaptured, pj.AmountRefunded)
		}
		return nil
	})
	if err == nil {
		err = listAll(ctx, vw, "/v1/refunds", func(b json.RawMessage) error {
			var rj refundJSON
			if err := json.Unmarshal(b, &rj); err != nil {
				return err
			}
			if rj.Status == "succeeded" {
				v.RefundObjects += rj.Amount
			}
			return nil
		})
	}
	for id := range told {
		if !seen[id] {
			v.Missing++
			v.sample("payment %s was acknowledged but is not listed", id)
		}
	}
	if err != nil {
		v.Error = err.Error()
	}
	v.Pass = err == nil && v.Unresolved == 0 && v.Mismatched == 0 && v.Unknown == 0 && v.Missing == 0 &&
		v.ReadMismatches == 0 && v.ExpectedPayments == v.ListedPayments &&
		v.ExpectedCaptured == v.ListedCaptured && v.ExpectedRefunded == v.ListedRefunded &&
		v.RefundObjects == v.ExpectedRefunded
	verdict := "FAIL"
	if v.Pass {
		verdict = "PASS"
	}
	v.Summary = fmt.Sprintf("%s: %d payments; captured %s (clients) vs %s (server); refunded %s (clients) vs %s (payments) vs %s (refunds)",
		verdict, v.ListedPayments, cents(v.ExpectedCaptured), cents(v.ListedCaptured),
		cents(v.ExpectedRefunded), cents(v.ListedRefunded), cents(v.RefundObjects))
	if v.Unresolved+v.Mismatched+v.Unknown+v.Missing+v.ReadMismatches > 0 || v.Error != "" {
		v.Summary += fmt.Sprintf("; unresolved=%d mismatched=%d unknown=%d missing=%d read_mismatches=%d %s",
			v.Unresolved, v.Mismatched, v.Unknown, v.Missing, v.ReadMismatches, v.Error)
	}
	return v
}

func (v *Verify) sample(format string, args ...any) {
	if len(v.Samples) < 10 {
		v.Samples = append(v.Samples, fmt.Sprintf(format, args...))
	}
}

// cents formats minor units as a decimal amount.
func cents(v int64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
}

// resolve learns the outcome of a pending write by sending it again with
// its Idempotency-Key (or, for a pending refund, by reading it back).
func (m *mixedRun) resolve(ctx context.Context, w *worker, u *user, op pendingOp) bool {
	if op.refundID != "" {
		r, known := retryUntilKnown(ctx, w, "GET", "/v1/refunds/"+op.refundID, "", nil)
		var rj refundJSON
		if !known || r.status != 200 || json.Unmarshal(r.body, &rj) != nil || rj.Status == "pending" {
			return false
		}
		if rj.Status == "succeeded" {
			op.pay.refunded += rj.Amount
		}
		op.pay.uncertain = false
		return true
	}
	r, known := retryUntilKnown(ctx, w, "POST", op.path, op.key, op.body)
	if !known {
		return false
	}
	switch op.op {
	case opCreate, opCreateManual:
		var pj paymentJSON
		_ = json.Unmarshal(r.body, &pj)
		u.applyCreate(op.op, r, pj)
	case opCapture:
		var pj paymentJSON
		_ = json.Unmarshal(r.body, &pj)
		u.applyCapture(r, pj, op.pay)
		op.pay.uncertain = false
	case opRefund:
		var rj refundJSON
		_ = json.Unmarshal(r.body, &rj)
		op.pay.uncertain = false
		u.applyRefund(r, rj, op.pay, op.key, op.body)
		if rj.Status == "pending" {
			// applyRefund queued it again; read it back now.
			last := u.pending[len(u.pending)-1]
			u.pending = u.pending[:len(u.pending)-1]
			return m.resolve(ctx, w, u, last)
		}
	}
	return true
}

// retryUntilKnown repeats a request (same key) for up to about a minute
// until its answer is definitive.
func retryUntilKnown(ctx context.Context, w *worker, method, path, key string, body []byte) (response, bool) {
	for attempt := 0; attempt < 20; attempt++ {
		r := w.do(ctx, "verify", method, path, "application/json", key, body, nil)
		if !retryable(r) {
			return r, true
		}
		select {
		case <-ctx.Done():
			return r, false
		case <-time.After(time.Duration(min(100<<attempt, 5000)) * time.Millisecond):
		}
	}
	return response{}, false
}

// listAll pages through a list endpoint, newest first, calling fn on each
// object.
func listAll(ctx context.Context, w *worker, path string, fn func(json.RawMessage) error) error {
	after := ""
	for pages := 0; ; pages++ {
		if pages > 1_000_000 {
			return fmt.Errorf("%s: too many pages", path)
		}
		q := path + "?limit=100"
		if after != "" {
			q += "&starting_after=" + after
		}
		r, known := retryUntilKnown(ctx, w, "GET", q, "", nil)
		if !known || r.status != 200 {
			return fmt.Errorf("GET %s: status %d %v %s", q, r.status, r.err, strings.TrimSpace(string(r.body)))
		}
		var page struct {
			Data    []json.RawMessage `json:"data"`
			HasMore bool              `json:"has_more"`
		}
		if err := json.Unmarshal(r.body, &page); err != nil {
			return fmt.Errorf("GET %s: %v", q, err)
		}
		for _, obj := range page.Data {
			if err := fn(obj); err != nil {
				return err
			}
		}
		if !page.HasMore || len(page.Data) == 0 {
			return nil
		}
		var last struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(page.Data[len(page.Data)-1], &last); err != nil || last.ID == "" {
			return fmt.Errorf("GET %s: last object has no id", q)
		}
		after = last.ID
	}
}
