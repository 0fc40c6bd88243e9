package simulator

import (
	"encoding/json"
	"time"
)

// The wire types of the simulator protocol (docs/connectors.md describes
// it). They are unexported on purpose: cardBody holds a full card number
// as a plain string, which is what goes over the wire, and nothing outside
// this package should be able to print one.

// authorizeBody is the body of POST /authorize.
type authorizeBody struct {
	IdempotencyKey string   `json:"idempotency_key"`
	Reference      string   `json:"reference"`
	Amount         int64    `json:"amount"`
	Currency       string   `json:"currency"`
	Capture        bool     `json:"capture"`
	Card           cardBody `json:"card"`
}

type cardBody struct {
	Number     string `json:"number"`
	ExpMonth   int    `json:"exp_month"`
	ExpYear    int    `json:"exp_year"`
	CVC        string `json:"cvc,omitempty"`
	HolderName string `json:"holder_name,omitempty"`
}

// authorizeAnswer is the 200 answer of POST /authorize, and the
// authorization inside a lookup answer. Status is "approved" or
// "declined"; ResponseCode is an ISO 8583 response code ("00" approved).
type authorizeAnswer struct {
	Status               string `json:"status"`
	TransactionID        string `json:"transaction_id"`
	ResponseCode         string `json:"response_code"`
	Message              string `json:"message"`
	AuthorizationCode    string `json:"authorization_code,omitempty"`
	AVSResult            string `json:"avs_result,omitempty"`
	CVVResult            string `json:"cvv_result,omitempty"`
	NetworkTransactionID string `json:"network_transaction_id,omitempty"`
	Captured             bool   `json:"captured"`
}

// operationBody is the body of POST /capture, /void and /refund (Amount
// and Currency are ignored by /void).
type operationBody struct {
	IdempotencyKey string `json:"idempotency_key"`
	TransactionID  string `json:"transaction_id"`
	Amount         int64  `json:"amount,omitempty"`
	Currency       string `json:"currency,omitempty"`
}

// operationAnswer is the 200 answer of /capture, /void and /refund. Status
// is "succeeded" or "refused"; TransactionID is the authorization's for a
// capture or void, and the refund's own for a refund.
type operationAnswer struct {
	Status        string `json:"status"`
	TransactionID string `json:"transaction_id,omitempty"`
	ResponseCode  string `json:"response_code"`
	Message       string `json:"message"`
}

// lookupAnswer is the answer of GET /lookup.
type lookupAnswer struct {
	Found          bool             `json:"found"`
	Authorization  *authorizeAnswer `json:"authorization,omitempty"`
	AmountCaptured int64            `json:"amount_captured"`
	Voided         bool             `json:"voided"`
	AmountRefunded int64            `json:"amount_refunded"`
}

// errorAnswer is the body of every non-200 answer. Processed false is the
// simulator's promise that this request was not processed and recorded
// nothing. For 400 and 503 it also means that nothing is recorded under its
// key (safe to send elsewhere); a 429 rate_limited may answer a retry of a
// key an earlier request was processed under, so it says nothing about the
// key's outcome, only about this request.
type errorAnswer struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		Processed bool   `json:"processed"`
	} `json:"error"`
}

// Error codes of errorAnswer.
const (
	errInvalidRequest      = "invalid_request"
	errNotProcessed        = "not_processed"
	errRateLimited         = "rate_limited"
	errIdempotencyConflict = "idempotency_conflict"
	errNotFound            = "not_found"
)

// Rule tells the simulator how to answer matching requests. Every match
// field that is set must match; a rule with none matches every request of
// its operation. The first matching rule wins; Times limits how many
// requests it answers before it is removed (0: forever).
type Rule struct {
	// ID is assigned by the simulator.
	ID string `json:"id,omitempty"`
	// Operation: "authorize" (the default), "capture", "void", "refund",
	// or "*" for all of them.
	Operation      string `json:"operation,omitempty"`
	CardNumber     string `json:"card_number,omitempty"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	Reference      string `json:"reference,omitempty"`
	// Action is one of the Action* constants.
	Action string `json:"action"`
	// Code is the ISO 8583 response code of a decline (default "05").
	Code string `json:"code,omitempty"`
	// LatencyMS delays the answer by that many milliseconds (after the
	// outcome is recorded).
	LatencyMS int `json:"latency_ms,omitempty"`
	Times     int `json:"times,omitempty"`
	// CommitAfterMS is, for ActionLateCommit, how long the authorization
	// stays held before it commits by itself; 0 holds it until the
	// control API commits it (POST /_control/commit).
	CommitAfterMS int `json:"commit_after_ms,omitempty"`
}

// Rule actions.
const (
	// ActionApprove approves (or, for an operation, performs it as the
	// ledger allows), whatever the card.
	ActionApprove = "approve"
	// ActionDecline declines with Rule.Code (for an operation: refuses).
	ActionDecline = "decline"
	// ActionError answers 503 {"error":{"code":"not_processed",
	// "processed":false}} and records nothing.
	ActionError = "error"
	// ActionHang records the outcome, then never answers: the request
	// ends only when the client gives up or the simulator stops.
	ActionHang = "hang"
	// ActionDrop records the outcome, then closes the connection without
	// answering.
	ActionDrop = "drop"
	// ActionLateCommit (authorizations only) decides the authorization
	// as the card says but holds it: the request never gets an answer,
	// Lookup does not find it and a retry with the same key hangs too,
	// until it commits (Rule.CommitAfterMS later, or when the control
	// API says so); from then on it is in the ledger, Lookup finds it
	// and a retry replays it. It is a processor that commits an
	// authorization after its caller gave up and asked: the case where
	// Payloom must void what it recorded as failed. A held authorization
	// that never commits is a request the processor never received.
	ActionLateCommit = "late_commit"
	// ActionLose records nothing and never answers: a request lost on
	// the way, which a retry with the same key does not find.
	ActionLose = "lose"
	// ActionThrottle answers 429 {"error":{"code":"rate_limited",
	// "processed":false}} and records nothing, whether or not the key
	// already has an outcome: a rate limiter in front of the processor
	// (Stripe's 429). This request was not processed, but an earlier one
	// with the same key may have been: only the request that sent the
	// key first may take it as safe to send elsewhere.
	ActionThrottle = "throttle"
)

// Faults is the seeded random fault mode: each POST request draws a fault
// from a hash of (Seed, operation, idempotency key, how many times the key
// was seen), so a run is reproducible whatever the interleaving. Rates are
// probabilities in [0, 1] that add up to at most 1. An error fault is never
// drawn for a key whose outcome is already recorded: "not processed" must
// stay true. A throttle fault (ActionThrottle) is drawn for any request,
// retries of recorded keys included.
type Faults struct {
	Seed         uint64  `json:"seed"`
	ErrorRate    float64 `json:"error_rate"`
	HangRate     float64 `json:"hang_rate"`
	DropRate     float64 `json:"drop_rate"`
	ThrottleRate float64 `json:"throttle_rate"`
	// LateRate is the probability that a new authorization is a late
	// commit (ActionLateCommit), committed LateCommitAfterMS later or,
	// when that is 0, when the control API says so. Operations and keys
	// already recorded never draw it.
	LateRate          float64 `json:"late_rate"`
	LateCommitAfterMS int     `json:"late_commit_after_ms"`
}

// Ledger is everything the simulator recorded, for tests: what it
// authorized and every capture, void and refund. It holds no card data
// beyond the last four digits.
type Ledger struct {
	Authorizations []LedgerAuthorization `json:"authorizations"`
	Operations     []LedgerOperation     `json:"operations"`
	// Held are the late commits not committed yet: decided, invisible to
	// Lookup, not in Authorizations.
	Held []LedgerAuthorization `json:"held"`
}

// LedgerAuthorization is one recorded authorization (approved or
// declined) and what happened to it since.
type LedgerAuthorization struct {
	IdempotencyKey string    `json:"idempotency_key"`
	Reference      string    `json:"reference"`
	TransactionID  string    `json:"transaction_id"`
	Amount         int64     `json:"amount"`
	Currency       string    `json:"currency"`
	Capture        bool      `json:"capture"`
	Status         string    `json:"status"`
	ResponseCode   string    `json:"response_code"`
	CardLast4      string    `json:"card_last4"`
	AmountCaptured int64     `json:"amount_captured"`
	AmountRefunded int64     `json:"amount_refunded"`
	Voided         bool      `json:"voided"`
	CreatedAt      time.Time `json:"created_at"`
}

// LedgerOperation is one recorded capture, void or refund.
type LedgerOperation struct {
	IdempotencyKey string    `json:"idempotency_key"`
	Kind           string    `json:"kind"`
	TransactionID  string    `json:"transaction_id"`
	Amount         int64     `json:"amount"`
	Currency       string    `json:"currency"`
	Status         string    `json:"status"`
	ResultID       string    `json:"result_id,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
}

// Approved returns the approved authorizations.
func (l Ledger) Approved() []LedgerAuthorization {
	var out []LedgerAuthorization
	for _, a := range l.Authorizations {
		if a.Status == statusApproved {
			out = append(out, a)
		}
	}
	return out
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("simulator: " + err.Error()) // only plain structs are encoded
	}
	return b
}
