package api

import (
	"testing"
)

// benchPaymentBody is the body bench/cmd/load sends to POST /v1/payments.
const benchPaymentBody = `{"amount":1000,"currency":"USD","payment_method":{"type":"card","card":{"token":"tok_01m7yqjd54fgd209mg6pwhvn49"}}}`

// BenchmarkDecodePaymentCreate measures the request-side CPU of a payment
// create before any store access: parsing the JSON body into the checked
// tree (parseJSON), then decoding and validating it (decodePaymentCreate).
func BenchmarkDecodePaymentCreate(b *testing.B) {
	body := []byte(benchPaymentBody)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		tree, err := parseJSON(body)
		if err != nil {
			b.Fatal(err)
		}
		_, req, raw, err := decodePaymentCreate(tree)
		if err != nil || req.Amount != 1000 || raw != nil {
			b.Fatalf("decodePaymentCreate = %+v, %v, %v; want a 1000 payment, no raw card", req, raw, err)
		}
	}
}
