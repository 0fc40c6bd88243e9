// Command bare is the benchmark's floor: a plain net/http server whose
// POST /v1/payments decodes and validates the same JSON request as
// Payloom's, and encodes a response of the same shape and about the same
// size as a captured Payloom payment, while storing nothing, calling no
// processor and checking no key. Payloom/bare is the share of a request's
// cost that is HTTP and JSON rather than payment work.
//
// It listens on 127.0.0.1 only and prints "bare listening on http://ADDR"
// once it accepts connections. It must never be used for anything but
// benchmarks: it answers "captured" to anything well-formed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"mime"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

type createRequest struct {
	Amount        *int64  `json:"amount"`
	Currency      *string `json:"currency"`
	CaptureMethod *string `json:"capture_method"`
	PaymentMethod *struct {
		Type *string `json:"type"`
		Card *struct {
			Token *string `json:"token"`
		} `json:"card"`
	} `json:"payment_method"`
	Description *string           `json:"description"`
	Reference   *string           `json:"reference"`
	Metadata    map[string]string `json:"metadata"`
}

// The response mirrors the fields of a Payloom payment.
type card struct {
	Token       string `json:"token"`
	Brand       string `json:"brand"`
	First6      string `json:"first6"`
	Last4       string `json:"last4"`
	ExpMonth    int    `json:"exp_month"`
	ExpYear     int    `json:"exp_year"`
	Fingerprint string `json:"fingerprint"`
}

type attempt struct {
	ID            string    `json:"id"`
	Processor     string    `json:"processor"`
	Status        string    `json:"status"`
	RawCode       string    `json:"raw_code"`
	TransactionID string    `json:"transaction_id"`
	DurationMS    int64     `json:"duration_ms"`
	CreatedAt     time.Time `json:"created_at"`
	CompletedAt   time.Time `json:"completed_at"`
}

type payment struct {
	ID               string `json:"id"`
	Object           string `json:"object"`
	MerchantID       string `json:"merchant_id"`
	Livemode         bool   `json:"livemode"`
	Amount           int64  `json:"amount"`
	AmountCapturable int64  `json:"amount_capturable"`
	AmountCaptured   int64  `json:"amount_captured"`
	AmountRefunded   int64  `json:"amount_refunded"`
	Currency         string `json:"currency"`
	Status           string `json:"status"`
	CaptureMethod    string `json:"capture_method"`
	PaymentMethod    struct {
		Type string `json:"type"`
		Card card   `json:"card"`
	} `json:"payment_method"`
	Processor struct {
		Name                 string `json:"name"`
		TransactionID        string `json:"transaction_id"`
		AuthorizationCode    string `json:"authorization_code"`
		AVSResult            string `json:"avs_result"`
		CVVResult            string `json:"cvv_result"`
		NetworkTransactionID string `json:"network_transaction_id"`
	} `json:"processor"`
	Attempts  []attempt         `json:"attempts"`
	Metadata  map[string]string `json:"metadata"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
}

var seq atomic.Uint64

// id returns a unique ID of Payloom's shape (prefix_ + 26 base-32 digits).
func id(prefix string) string {
	s := strconv.FormatUint(uint64(time.Now().UnixNano())^seq.Add(1)<<1, 32)
	return prefix + "_" + strings.Repeat("0", max(0, 26-len(s))) + s
}

type apiError struct {
	Error struct {
		Type    string `json:"type"`
		Code    string `json:"code"`
		Message string `json:"message"`
		Param   string `json:"param,omitempty"`
	} `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, code, param, msg string) {
	var e apiError
	e.Error.Type, e.Error.Code, e.Error.Param, e.Error.Message = "invalid_request_error", code, param, msg
	writeJSON(w, status, e)
}

func createPayment(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		fail(w, http.StatusUnauthorized, "auth_failed", "", "missing API key")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		fail(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "", "send application/json")
		return
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	var req createRequest
	if err := dec.Decode(&req); err != nil {
		fail(w, http.StatusBadRequest, "invalid_json", "", "malformed JSON")
		return
	}
	switch {
	case req.Amount == nil || *req.Amount <= 0:
		fail(w, http.StatusBadRequest, "validation_error", "amount", "amount must be a positive integer")
		return
	case req.Currency == nil || len(*req.Currency) != 3:
		fail(w, http.StatusBadRequest, "validation_error", "currency", "currency must be an ISO 4217 code")
		return
	case req.PaymentMethod == nil || req.PaymentMethod.Card == nil || req.PaymentMethod.Card.Token == nil ||
		!strings.HasPrefix(*req.PaymentMethod.Card.Token, "tok_"):
		fail(w, http.StatusBadRequest, "validation_error", "payment_method.card.token", "a card token is required")
		return
	}
	now := time.Now().UTC()
	p := payment{
		ID: id("pay"), Object: "payment", MerchantID: "mrch_01m7yjpt9r614mfwerrtebqnvd",
		Amount: *req.Amount, AmountCaptured: *req.Amount, Currency: strings.ToUpper(*req.Currency),
		Status: "captured", CaptureMethod: "automatic", Metadata: req.Metadata, CreatedAt: now, UpdatedAt: now,
	}
	if p.Metadata == nil {
		p.Metadata = map[string]string{}
	}
	p.PaymentMethod.Type = "card"
	p.PaymentMethod.Card = card{Token: *req.PaymentMethod.Card.Token, Brand: "visa", First6: "424242",
		Last4: "4242", ExpMonth: 12, ExpYear: 2030, Fingerprint: "fwKn79JvsKCU_nA3"}
	txn := id("sbx")
	p.Processor.Name, p.Processor.TransactionID, p.Processor.AuthorizationCode = "sandbox", txn, "VY8C0G"
	p.Processor.AVSResult, p.Processor.CVVResult, p.Processor.NetworkTransactionID = "Y", "M", "936100382828834"
	p.Attempts = []attempt{{ID: id("att"), Processor: "sandbox", Status: "captured", RawCode: "00",
		TransactionID: txn, CreatedAt: now, CompletedAt: now}}
	writeJSON(w, http.StatusOK, p)
}

func newHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/payments", createPayment)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	return mux
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on (loopback only)")
	flag.Parse()
	host, _, err := net.SplitHostPort(*addr)
	if err != nil || (host != "127.0.0.1" && host != "localhost" && host != "::1") {
		log.Fatalf("bare: -addr must be a loopback address, got %q", *addr)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("bare: %v", err)
	}
	// The same timeouts as Payloom's server, so connection handling costs
	// the same.
	srv := &http.Server{Handler: newHandler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		WriteTimeout: 120 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shCtx)
	}()
	fmt.Printf("bare listening on http://%s\n", ln.Addr())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("bare: %v", err)
	}
}
