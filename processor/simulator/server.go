// Package simulator is Payloom's fake acquirer and the connector that
// talks to it. The acquirer is a separate HTTP server (payloom simulator
// --addr ...) speaking a small protocol documented in docs/connectors.md:
// POST /authorize, /capture, /void, /refund, GET /lookup, plus a control
// API under /_control/ that tells it, per card number or per request, to
// approve, decline, answer 5xx "not processed", hang, record the outcome
// and then drop the connection, lose the request, or commit it late (held
// invisible to lookups, then committed after a delay or when told), and
// that shows its ledger. A seeded random fault mode makes it fail
// reproducibly. The fault tests and the benchmarks run against it across a
// real socket.
//
// The simulator is idempotent by key and keeps its ledger in memory: it
// forgets everything when it stops. It never moves money, and it never
// logs, stores or shows a full card number (rules show a masked one, the
// ledger the last four digits).
package simulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/payloom/payloom"
)

// Test cards: what the simulator answers to them when no rule matches. Any
// other card with a valid number and expiry is approved.
const (
	CardApprove           = "4242424242424242" // 00 approved
	CardDoNotHonor        = "4000000000000002" // 05 do not honour
	CardInsufficientFunds = "4000000000009995" // 51 insufficient funds
	CardExpired           = "4000000000000069" // 54 expired card
	CardIncorrectCVC      = "4000000000000127" // N7 CVV2 mismatch
	CardFraud             = "4100000000000019" // 59 suspected fraud
	CardLost              = "4000000000009987" // 41 lost card
	CardStolen            = "4000000000009979" // 43 stolen card
	CardIssuerUnavailable = "4000000000000119" // 91 issuer unavailable
	CardNotProcessed      = "4000000000000259" // 503 not processed
)

var cardCodes = map[string]string{
	CardDoNotHonor:        "05",
	CardInsufficientFunds: "51",
	CardExpired:           "54",
	CardIncorrectCVC:      "N7",
	CardFraud:             "59",
	CardLost:              "41",
	CardStolen:            "43",
	CardIssuerUnavailable: "91",
}

// isoMessages are the simulator's texts for the ISO 8583 response codes it
// answers with.
var isoMessages = map[string]string{
	"00": "Approved",
	"01": "Refer to card issuer",
	"04": "Pick up card",
	"05": "Do not honour",
	"12": "Invalid transaction",
	"13": "Invalid amount",
	"14": "Invalid card number",
	"41": "Lost card, pick up",
	"43": "Stolen card, pick up",
	"51": "Insufficient funds",
	"54": "Expired card",
	"57": "Transaction not permitted to cardholder",
	"59": "Suspected fraud",
	"61": "Exceeds withdrawal amount limit",
	"62": "Restricted card",
	"65": "Exceeds withdrawal frequency limit",
	"91": "Issuer or switch inoperative",
	"96": "System malfunction",
	"1A": "Additional customer authentication required",
	"N7": "Decline for CVV2 failure",
}

const (
	opAuthorize = "authorize"
	opCapture   = "capture"
	opVoid      = "void"
	opRefund    = "refund"

	statusApproved  = "approved"
	statusDeclined  = "declined"
	statusSucceeded = "succeeded"
	statusRefused   = "refused"

	maxBody = 64 << 10
)

// Options configure a simulator server.
type Options struct {
	// Faults is the initial random fault mode (none by default).
	Faults Faults
	// Latency delays every answer, after its outcome is recorded.
	Latency time.Duration
	// Clock decides whether a card has expired; default time.Now.
	Clock func() time.Time
	// Logger gets one line per request (never card data); nil discards.
	Logger *slog.Logger
}

// Server is the simulator: an http.Handler holding the ledger in memory.
type Server struct {
	opts Options
	mux  *http.ServeMux
	// done ends hung requests when the simulator stops.
	done      chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	auths    map[string]*authRecord // by idempotency key
	byTxn    map[string]*authRecord
	ops      map[string]*opRecord // by idempotency key
	authList []*authRecord
	opList   []*opRecord
	rules    []Rule
	ruleSeq  int
	faults   Faults
	seen     map[string]uint64 // requests per operation and key, for faults
	// held are late commits (ActionLateCommit) by idempotency key, in
	// heldList order: decided but not yet in the ledger.
	held     map[string]*heldAuth
	heldList []*heldAuth
}

// heldAuth is a late commit: the record it becomes, and when it commits by
// itself (zero: only when told).
type heldAuth struct {
	rec      *authRecord
	commitAt time.Time
}

type authRecord struct {
	LedgerAuthorization
	fingerprint string
	answer      authorizeAnswer
}

type opRecord struct {
	LedgerOperation
	fingerprint string
	answer      operationAnswer
}

var _ http.Handler = (*Server)(nil)

// NewServer returns a simulator with an empty ledger. Call Close when done
// with it so that hung requests end.
func NewServer(opts Options) *Server {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, done: make(chan struct{})}
	s.resetLocked()
	if err := s.SetFaults(opts.Faults); err != nil {
		// Options are the caller's; a bad rate is a programming error.
		panic("simulator: " + err.Error())
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /authorize", s.handleAuthorize)
	s.mux.HandleFunc("POST /capture", s.operationHandler(opCapture))
	s.mux.HandleFunc("POST /void", s.operationHandler(opVoid))
	s.mux.HandleFunc("POST /refund", s.operationHandler(opRefund))
	s.mux.HandleFunc("GET /lookup", s.handleLookup)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	s.mux.HandleFunc("GET /_control/rules", s.handleGetRules)
	s.mux.HandleFunc("POST /_control/rules", s.handleAddRules)
	s.mux.HandleFunc("DELETE /_control/rules", func(w http.ResponseWriter, r *http.Request) {
		s.ClearRules()
		writeJSON(w, http.StatusOK, map[string]any{"rules": []Rule{}})
	})
	s.mux.HandleFunc("GET /_control/faults", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		f := s.faults
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, f)
	})
	s.mux.HandleFunc("POST /_control/faults", s.handleSetFaults)
	s.mux.HandleFunc("GET /_control/ledger", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Ledger())
	})
	s.mux.HandleFunc("POST /_control/commit", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]int{"committed": s.CommitHeld()})
	})
	s.mux.HandleFunc("POST /_control/reset", func(w http.ResponseWriter, r *http.Request) {
		s.Reset()
		writeJSON(w, http.StatusOK, map[string]bool{"reset": true})
	})
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, errNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path, false)
	})
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close ends every hung request. The ledger stays readable.
func (s *Server) Close() { s.closeOnce.Do(func() { close(s.done) }) }

// Reset forgets the ledger, the rules and the fault mode.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetLocked()
}

func (s *Server) resetLocked() {
	s.auths = map[string]*authRecord{}
	s.byTxn = map[string]*authRecord{}
	s.ops = map[string]*opRecord{}
	s.authList, s.opList, s.rules = nil, nil, nil
	s.faults = Faults{}
	s.seen = map[string]uint64{}
	s.held, s.heldList = map[string]*heldAuth{}, nil
}

// CommitHeld commits every held late authorization now, oldest first, and
// returns how many it committed.
func (s *Server) CommitHeld() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.heldList)
	for _, h := range s.heldList {
		s.commitLocked(h)
	}
	s.heldList = nil
	return n
}

// commitDueLocked commits the held authorizations whose time has come.
// Every request and Ledger call runs it first, so a late commit needs no
// timer and follows Options.Clock. Called with s.mu held.
func (s *Server) commitDueLocked() {
	if len(s.heldList) == 0 {
		return
	}
	now := s.opts.Clock()
	kept := s.heldList[:0]
	for _, h := range s.heldList {
		if !h.commitAt.IsZero() && !now.Before(h.commitAt) {
			s.commitLocked(h)
			continue
		}
		kept = append(kept, h)
	}
	s.heldList = kept
}

// commitLocked moves a held authorization into the ledger (the caller
// takes it off heldList). Called with s.mu held.
func (s *Server) commitLocked(h *heldAuth) {
	delete(s.held, h.rec.IdempotencyKey)
	h.rec.CreatedAt = s.opts.Clock().UTC()
	s.auths[h.rec.IdempotencyKey] = h.rec
	s.byTxn[h.rec.TransactionID] = h.rec
	s.authList = append(s.authList, h.rec)
}

// AddRules appends rules (after any already set) and returns them with
// their IDs.
func (s *Server) AddRules(rules ...Rule) ([]Rule, error) {
	for i := range rules {
		if err := validateRule(&rules[i]); err != nil {
			return nil, fmt.Errorf("rule %d: %w", i, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range rules {
		s.ruleSeq++
		rules[i].ID = "rule_" + strconv.Itoa(s.ruleSeq)
		s.rules = append(s.rules, rules[i])
	}
	return rules, nil
}

// ClearRules removes every rule.
func (s *Server) ClearRules() {
	s.mu.Lock()
	s.rules = nil
	s.mu.Unlock()
}

// Rules returns the rules in force, card numbers masked.
func (s *Server) Rules() []Rule {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Rule, len(s.rules))
	for i, r := range s.rules {
		r.CardNumber = mask(r.CardNumber)
		out[i] = r
	}
	return out
}

// SetFaults replaces the random fault mode and restarts its sequence.
func (s *Server) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	s.faults = f
	s.seen = map[string]uint64{}
	s.mu.Unlock()
	return nil
}

// Validate checks that the rates are probabilities adding up to at most 1.
func (f Faults) Validate() error {
	for _, r := range []float64{f.ErrorRate, f.HangRate, f.DropRate, f.LateRate, f.ThrottleRate} {
		if !(r >= 0 && r <= 1) {
			return errors.New("fault rates must be between 0 and 1")
		}
	}
	if f.ErrorRate+f.HangRate+f.DropRate+f.LateRate+f.ThrottleRate > 1 {
		return errors.New("fault rates must add up to at most 1")
	}
	if f.LateCommitAfterMS < 0 {
		return errors.New("late_commit_after_ms must not be negative")
	}
	return nil
}

// Ledger returns a copy of what the simulator recorded, oldest first.
func (s *Server) Ledger() Ledger {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitDueLocked()
	l := Ledger{Authorizations: []LedgerAuthorization{}, Operations: []LedgerOperation{}, Held: []LedgerAuthorization{}}
	for _, a := range s.authList {
		l.Authorizations = append(l.Authorizations, a.LedgerAuthorization)
	}
	for _, o := range s.opList {
		l.Operations = append(l.Operations, o.LedgerOperation)
	}
	for _, h := range s.heldList {
		l.Held = append(l.Held, h.rec.LedgerAuthorization)
	}
	return l
}

func validateRule(r *Rule) error {
	switch r.Operation {
	case "":
		r.Operation = opAuthorize
	case opAuthorize, opCapture, opVoid, opRefund, "*":
	default:
		return fmt.Errorf("unknown operation %q", r.Operation)
	}
	switch r.Action {
	case ActionApprove, ActionError, ActionHang, ActionDrop, ActionLose, ActionThrottle:
	case ActionLateCommit:
		if r.Operation != opAuthorize {
			return errors.New("late_commit applies to authorizations only")
		}
	case ActionDecline:
		if r.Code == "" {
			r.Code = "05"
		}
		if r.Code == "00" {
			return errors.New(`a decline cannot have code "00"`)
		}
	default:
		return fmt.Errorf("unknown action %q", r.Action)
	}
	if r.LatencyMS < 0 || r.Times < 0 || r.CommitAfterMS < 0 {
		return errors.New("latency_ms, times and commit_after_ms must not be negative")
	}
	if r.CommitAfterMS > 0 && r.Action != ActionLateCommit {
		return errors.New("commit_after_ms applies to late_commit only")
	}
	return nil
}

// match returns the first rule matching the request and uses it up once.
// Called with s.mu held.
func (s *Server) match(op, card, key, ref string) *Rule {
	for i := range s.rules {
		r := &s.rules[i]
		if (r.Operation != op && r.Operation != "*") ||
			(r.CardNumber != "" && r.CardNumber != card) ||
			(r.IdempotencyKey != "" && r.IdempotencyKey != key) ||
			(r.Reference != "" && r.Reference != ref) {
			continue
		}
		out := *r
		if r.Times > 0 {
			if r.Times--; r.Times == 0 {
				s.rules = slices.Delete(s.rules, i, i+1)
			}
		}
		return &out
	}
	return nil
}

// drawFault draws the random fault of one request. Called with s.mu held.
func (s *Server) drawFault(op, key string, committed bool) string {
	f := s.faults
	if f.ErrorRate == 0 && f.HangRate == 0 && f.DropRate == 0 && f.LateRate == 0 && f.ThrottleRate == 0 {
		return ""
	}
	n := s.seen[op+"\x00"+key]
	s.seen[op+"\x00"+key] = n + 1
	h := fnv.New64a()
	fmt.Fprintf(h, "%d\x00%s\x00%s\x00%d", f.Seed, op, key, n)
	u := rand.New(rand.NewPCG(f.Seed, h.Sum64())).Float64()
	switch {
	case u < f.ErrorRate:
		if committed {
			return "" // "not processed" would be a lie
		}
		return ActionError
	case u < f.ErrorRate+f.HangRate:
		return ActionHang
	case u < f.ErrorRate+f.HangRate+f.DropRate:
		return ActionDrop
	case u < f.ErrorRate+f.HangRate+f.DropRate+f.LateRate:
		if committed || op != opAuthorize {
			return ""
		}
		return ActionLateCommit
	case u < f.ErrorRate+f.HangRate+f.DropRate+f.LateRate+f.ThrottleRate:
		// Last, so that a seed draws the same other faults with or
		// without throttling.
		return ActionThrottle
	}
	return ""
}

// plan is what to do with a request after its outcome is (or is not)
// recorded.
type plan struct {
	action  string
	latency time.Duration
	// commitAfter is how long a late commit stays held (0: until told).
	commitAfter time.Duration
}

// planFor combines the matching rule and the random fault: a rule wins.
// Called with s.mu held.
func (s *Server) planFor(rule *Rule, op, key string, committed bool) plan {
	p := plan{latency: s.opts.Latency}
	if rule != nil {
		p.action = rule.Action
		if rule.LatencyMS > 0 {
			p.latency = time.Duration(rule.LatencyMS) * time.Millisecond
		}
		if p.action == ActionError && committed {
			p.action = "" // a replay was processed: never say otherwise
		}
		p.commitAfter = time.Duration(rule.CommitAfterMS) * time.Millisecond
	} else {
		p.action = s.drawFault(op, key, committed)
		p.commitAfter = time.Duration(s.faults.LateCommitAfterMS) * time.Millisecond
	}
	if committed && (p.action == ActionLateCommit || p.action == ActionLose) {
		// The outcome is recorded: a replay can be neither late nor
		// lost, only unanswered.
		p.action = ActionHang
	}
	return p
}

func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	var b authorizeBody
	if !decode(w, r, &b) {
		return
	}
	if msg := validateAuthorize(&b); msg != "" {
		writeError(w, http.StatusBadRequest, errInvalidRequest, msg, false)
		return
	}
	last4 := b.Card.Number[len(b.Card.Number)-4:]
	fp := fmt.Sprintf("%s|%d|%s|%v|%s", b.Reference, b.Amount, b.Currency, b.Capture, last4)

	s.mu.Lock()
	s.commitDueLocked()
	if h := s.held[b.IdempotencyKey]; h != nil {
		// A retry of a held late commit: the processor is still working
		// on the first request, and this one gets no answer either.
		s.mu.Unlock()
		if h.rec.fingerprint != fp {
			writeError(w, http.StatusConflict, errIdempotencyConflict,
				"idempotency key "+b.IdempotencyKey+" was used for a different authorization", false)
			return
		}
		s.log(r, opAuthorize, b.IdempotencyKey, "held", last4)
		s.finish(w, r, plan{action: ActionHang}, nil)
		return
	}
	rule := s.match(opAuthorize, b.Card.Number, b.IdempotencyKey, b.Reference)
	prev := s.auths[b.IdempotencyKey]
	if prev != nil && prev.fingerprint != fp {
		s.mu.Unlock()
		writeError(w, http.StatusConflict, errIdempotencyConflict,
			"idempotency key "+b.IdempotencyKey+" was used for a different authorization", false)
		return
	}
	p := s.planFor(rule, opAuthorize, b.IdempotencyKey, prev != nil)
	if p.action == ActionThrottle {
		s.mu.Unlock()
		s.log(r, opAuthorize, b.IdempotencyKey, "rate_limited", last4)
		writeThrottled(w)
		return
	}
	if prev == nil && (p.action == ActionError || (rule == nil && b.Card.Number == CardNotProcessed)) {
		s.mu.Unlock()
		s.log(r, opAuthorize, b.IdempotencyKey, "not_processed", last4)
		writeError(w, http.StatusServiceUnavailable, errNotProcessed, "The acquirer is unavailable; the request was not processed.", false)
		return
	}
	switch {
	case prev == nil && p.action == ActionLose:
		s.mu.Unlock()
		s.log(r, opAuthorize, b.IdempotencyKey, "lost", last4)
		s.finish(w, r, plan{action: ActionHang, latency: p.latency}, nil)
		return
	case prev == nil && p.action == ActionLateCommit:
		h := &heldAuth{rec: s.decide(&b, rule, fp, last4)}
		if p.commitAfter > 0 {
			h.commitAt = s.opts.Clock().Add(p.commitAfter)
		}
		s.held[b.IdempotencyKey] = h
		s.heldList = append(s.heldList, h)
		s.mu.Unlock()
		s.log(r, opAuthorize, b.IdempotencyKey, "held "+h.rec.Status+"/"+h.rec.ResponseCode, last4)
		s.finish(w, r, plan{action: ActionHang, latency: p.latency}, nil)
		return
	}
	rec := prev
	if rec == nil {
		rec = s.decide(&b, rule, fp, last4)
		s.auths[b.IdempotencyKey] = rec
		s.byTxn[rec.TransactionID] = rec
		s.authList = append(s.authList, rec)
	}
	answer := rec.answer
	s.mu.Unlock()

	s.log(r, opAuthorize, b.IdempotencyKey, answer.Status+"/"+answer.ResponseCode+" "+p.action, last4)
	s.finish(w, r, p, answer)
}

// decide is the simulator's issuer. Called with s.mu held.
func (s *Server) decide(b *authorizeBody, rule *Rule, fp, last4 string) *authRecord {
	code := "00"
	switch {
	case rule != nil && rule.Action == ActionDecline:
		code = rule.Code
	case rule != nil && rule.Action == ActionApprove:
	case cardCodes[b.Card.Number] != "":
		code = cardCodes[b.Card.Number]
	case !luhn(b.Card.Number):
		code = "14"
	default:
		now := s.opts.Clock().UTC()
		if y, m := b.Card.ExpYear, b.Card.ExpMonth; y < now.Year() || (y == now.Year() && m < int(now.Month())) {
			code = "54"
		}
	}
	msg := isoMessages[code]
	if msg == "" {
		msg = "Declined"
	}
	rec := &authRecord{fingerprint: fp}
	rec.LedgerAuthorization = LedgerAuthorization{
		IdempotencyKey: b.IdempotencyKey, Reference: b.Reference, TransactionID: payloom.NewID("sim"),
		Amount: b.Amount, Currency: b.Currency, Capture: b.Capture, ResponseCode: code,
		CardLast4: last4, CreatedAt: s.opts.Clock().UTC(),
	}
	a := authorizeAnswer{TransactionID: rec.TransactionID, ResponseCode: code, Message: msg}
	if code == "00" {
		rec.Status, a.Status = statusApproved, statusApproved
		a.AuthorizationCode = randString(6, "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789")
		a.AVSResult, a.CVVResult = "Y", "M"
		if b.Card.CVC == "" {
			a.CVVResult = "P"
		}
		a.NetworkTransactionID = randString(1, "123456789") + randString(14, "0123456789")
		if b.Capture {
			rec.AmountCaptured, a.Captured = b.Amount, true
		}
	} else {
		rec.Status, a.Status = statusDeclined, statusDeclined
		if code == "N7" {
			a.CVVResult = "N"
		}
	}
	rec.answer = a
	return rec
}

func validateAuthorize(b *authorizeBody) string {
	switch {
	case b.IdempotencyKey == "":
		return "idempotency_key is required"
	case len(b.IdempotencyKey) > 255:
		return "idempotency_key is longer than 255 characters"
	case b.Amount <= 0:
		return "amount must be a positive integer in minor units"
	case len(b.Currency) != 3 || strings.ToUpper(b.Currency) != b.Currency:
		return "currency must be a three-letter upper-case ISO 4217 code"
	case len(b.Card.Number) < 12 || len(b.Card.Number) > 19 || strings.Trim(b.Card.Number, "0123456789") != "":
		return "card.number must be 12 to 19 digits"
	case b.Card.ExpMonth < 1 || b.Card.ExpMonth > 12 || b.Card.ExpYear < 2000 || b.Card.ExpYear > 2100:
		return "card.exp_month and card.exp_year must form a valid date"
	}
	return ""
}

func (s *Server) operationHandler(op string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var b operationBody
		if !decode(w, r, &b) {
			return
		}
		switch {
		case b.IdempotencyKey == "" || len(b.IdempotencyKey) > 255:
			writeError(w, http.StatusBadRequest, errInvalidRequest, "idempotency_key is required (at most 255 characters)", false)
			return
		case b.TransactionID == "":
			writeError(w, http.StatusBadRequest, errInvalidRequest, "transaction_id is required", false)
			return
		}
		if op == opVoid {
			b.Amount, b.Currency = 0, ""
		}
		fp := fmt.Sprintf("%s|%s|%d|%s", op, b.TransactionID, b.Amount, b.Currency)

		s.mu.Lock()
		s.commitDueLocked()
		auth := s.byTxn[b.TransactionID]
		card, ref := "", ""
		if auth != nil {
			ref = auth.Reference
		}
		rule := s.match(op, card, b.IdempotencyKey, ref)
		prev := s.ops[b.IdempotencyKey]
		if prev != nil && prev.fingerprint != fp {
			s.mu.Unlock()
			writeError(w, http.StatusConflict, errIdempotencyConflict,
				"idempotency key "+b.IdempotencyKey+" was used for a different request", false)
			return
		}
		p := s.planFor(rule, op, b.IdempotencyKey, prev != nil)
		if p.action == ActionThrottle {
			s.mu.Unlock()
			s.log(r, op, b.IdempotencyKey, "rate_limited", "")
			writeThrottled(w)
			return
		}
		if prev == nil && p.action == ActionError {
			s.mu.Unlock()
			s.log(r, op, b.IdempotencyKey, "not_processed", "")
			writeError(w, http.StatusServiceUnavailable, errNotProcessed, "The acquirer is unavailable; the request was not processed.", false)
			return
		}
		if prev == nil && p.action == ActionLose {
			s.mu.Unlock()
			s.log(r, op, b.IdempotencyKey, "lost", "")
			s.finish(w, r, plan{action: ActionHang, latency: p.latency}, nil)
			return
		}
		rec := prev
		if rec == nil {
			rec = s.operate(op, &b, auth, rule, fp)
			s.ops[b.IdempotencyKey] = rec
			s.opList = append(s.opList, rec)
		}
		answer := rec.answer
		s.mu.Unlock()

		s.log(r, op, b.IdempotencyKey, answer.Status+"/"+answer.ResponseCode+" "+p.action, "")
		s.finish(w, r, p, answer)
	}
}

// operate decides a capture, void or refund against the ledger and records
// its effect. Called with s.mu held.
func (s *Server) operate(op string, b *operationBody, a *authRecord, rule *Rule, fp string) *opRecord {
	rec := &opRecord{fingerprint: fp}
	rec.LedgerOperation = LedgerOperation{IdempotencyKey: b.IdempotencyKey, Kind: op, TransactionID: b.TransactionID,
		Amount: b.Amount, Currency: b.Currency, CreatedAt: s.opts.Clock().UTC()}
	refuse := func(code, msg string) *opRecord {
		rec.Status = statusRefused
		rec.answer = operationAnswer{Status: statusRefused, ResponseCode: code, Message: msg}
		return rec
	}
	if rule != nil && rule.Action == ActionDecline {
		return refuse(rule.Code, isoMessages[rule.Code])
	}
	if a == nil || a.Status != statusApproved {
		return refuse("12", "No such approved transaction.")
	}
	var resultID string
	switch op {
	case opCapture:
		switch {
		case a.Voided:
			return refuse("12", "The authorization was voided.")
		case a.AmountCaptured > 0:
			return refuse("12", "The authorization is already captured.")
		case b.Currency != a.Currency:
			return refuse("12", "The currency differs from the authorization's.")
		case b.Amount <= 0 || b.Amount > a.Amount:
			return refuse("13", "The amount must be between 1 and the authorized amount.")
		}
		a.AmountCaptured = b.Amount
		resultID = a.TransactionID
	case opVoid:
		switch {
		case a.Voided:
			return refuse("12", "The authorization was already voided.")
		case a.AmountCaptured > 0:
			return refuse("12", "A captured transaction cannot be voided; refund it instead.")
		}
		a.Voided = true
		resultID = a.TransactionID
	case opRefund:
		switch {
		case a.AmountCaptured == 0:
			return refuse("12", "The transaction is not captured.")
		case b.Currency != a.Currency:
			return refuse("12", "The currency differs from the transaction's.")
		case b.Amount <= 0 || a.AmountRefunded+b.Amount > a.AmountCaptured:
			return refuse("13", "The refunds would exceed the captured amount.")
		}
		a.AmountRefunded += b.Amount
		resultID = payloom.NewID("simrf")
	}
	rec.Status, rec.ResultID = statusSucceeded, resultID
	rec.answer = operationAnswer{Status: statusSucceeded, TransactionID: resultID, ResponseCode: "00", Message: "Approved"}
	return rec
}

func (s *Server) handleLookup(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("idempotency_key")
	if key == "" {
		writeError(w, http.StatusBadRequest, errInvalidRequest, "idempotency_key is required", false)
		return
	}
	s.mu.Lock()
	s.commitDueLocked()
	var out lookupAnswer
	if a := s.auths[key]; a != nil {
		ans := a.answer
		out = lookupAnswer{Found: true, Authorization: &ans, AmountCaptured: a.AmountCaptured,
			Voided: a.Voided, AmountRefunded: a.AmountRefunded}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// finish spends the latency and then answers, hangs or drops.
func (s *Server) finish(w http.ResponseWriter, r *http.Request, p plan, answer any) {
	if p.latency > 0 {
		t := time.NewTimer(p.latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return // the client is gone
		case <-s.done:
			t.Stop()
			panic(http.ErrAbortHandler)
		}
	}
	switch p.action {
	case ActionHang:
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			panic(http.ErrAbortHandler) // close without an answer
		}
	case ActionDrop:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	writeJSON(w, http.StatusOK, answer)
}

func (s *Server) handleGetRules(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"rules": s.Rules()})
}

func (s *Server) handleAddRules(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Rules []Rule `json:"rules"`
	}
	if !decode(w, r, &body) {
		return
	}
	rules, err := s.AddRules(body.Rules...)
	if err != nil {
		writeError(w, http.StatusBadRequest, errInvalidRequest, err.Error(), false)
		return
	}
	for i := range rules {
		rules[i].CardNumber = mask(rules[i].CardNumber)
	}
	writeJSON(w, http.StatusOK, map[string]any{"rules": rules})
}

func (s *Server) handleSetFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	if !decode(w, r, &f) {
		return
	}
	if err := s.SetFaults(f); err != nil {
		writeError(w, http.StatusBadRequest, errInvalidRequest, err.Error(), false)
		return
	}
	writeJSON(w, http.StatusOK, f)
}

func (s *Server) log(r *http.Request, op, key, outcome, last4 string) {
	s.opts.Logger.LogAttrs(r.Context(), slog.LevelInfo, "simulator",
		slog.String("op", op), slog.String("key", key), slog.String("outcome", strings.TrimSpace(outcome)),
		slog.String("card_last4", last4))
}

// decode reads a JSON body; it answers 400 itself and returns false when
// the body is not one.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		// The decoder's message may quote the body (a card number): say
		// only that it is not valid JSON for this endpoint.
		writeError(w, http.StatusBadRequest, errInvalidRequest, "the body is not valid JSON for this endpoint", false)
		return false
	}
	// Reading to the end lets the server notice a client that goes away
	// (which ends a hang).
	io.Copy(io.Discard, r.Body)
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(mustMarshal(v), '\n'))
}

func writeError(w http.ResponseWriter, status int, code, msg string, processed bool) {
	var e errorAnswer
	e.Error.Code, e.Error.Message, e.Error.Processed = code, msg, processed
	writeJSON(w, status, e)
}

// writeThrottled answers a request the rate limiter turned away
// (ActionThrottle): not processed, but silent on what its key holds.
func writeThrottled(w http.ResponseWriter) {
	writeError(w, http.StatusTooManyRequests, errRateLimited, "Too many requests; this request was not processed.", false)
}

// mask shows at most the first six and last four digits of a card number.
func mask(n string) string {
	if len(n) <= 10 {
		return strings.Repeat("*", len(n))
	}
	return n[:6] + strings.Repeat("*", len(n)-10) + n[len(n)-4:]
}

func luhn(s string) bool {
	sum := 0
	for i := 0; i < len(s); i++ {
		d := int(s[len(s)-1-i] - '0')
		if i%2 == 1 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

func randString(n int, alphabet string) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rand.IntN(len(alphabet))]
	}
	return string(b)
}
