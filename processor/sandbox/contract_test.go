package sandbox_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/processor/processortest"
	"github.com/payloom/payloom/processor/sandbox"
	"github.com/payloom/payloom/sqlite"
)

// TestContract runs the connector contract suite against the sandbox on a
// real SQLite file. The sandbox runs in-process, so it has no Unknown
// scenario: the only way its answer is lost is the caller's context ending
// during Latency, which TestLatency covers.
func TestContract(t *testing.T) {
	processortest.Run(t, func(t *testing.T) processortest.Harness {
		store, err := sqlite.Open(filepath.Join(t.TempDir(), "payloom.db"))
		if err != nil {
			t.Fatalf("sqlite.Open: %v", err)
		}
		t.Cleanup(func() { store.Close() })
		if err := store.Migrate(context.Background()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		p := sandbox.New(store, sandbox.Options{})
		card := func(number string) *payloom.CardData {
			return &payloom.CardData{Number: payloom.Secret(number), ExpMonth: 12, ExpYear: time.Now().Year() + 3,
				CVC: "123", Brand: payloom.CardBrandVisa}
		}
		return processortest.Harness{
			Processor: p,
			Scenarios: map[processortest.Outcome][]processortest.Scenario{
				processortest.Approve: {{Name: "visa", Card: card(sandbox.CardVisa)}},
				processortest.HardDecline: {
					{Name: "insufficient_funds", Card: card(sandbox.CardInsufficientFunds),
						FailureCode: payloom.FailureCardDeclined, DeclineCode: payloom.DeclineInsufficientFunds},
					{Name: "incorrect_cvc", Card: card(sandbox.CardIncorrectCVC),
						FailureCode: payloom.FailureIncorrectCVC, DeclineCode: payloom.DeclineIncorrectCVC},
					{Name: "expired_card", Card: card(sandbox.CardExpired),
						FailureCode: payloom.FailureExpiredCard, DeclineCode: payloom.DeclineExpiredCard},
					{Name: "fraudulent", Card: card(sandbox.CardFraudulent),
						FailureCode: payloom.FailureCardDeclined, DeclineCode: payloom.DeclineFraudulent},
				},
				processortest.SoftDecline: {{Name: "generic_decline", Card: card(sandbox.CardDeclined),
					FailureCode: payloom.FailureCardDeclined, DeclineCode: payloom.DeclineGeneric}},
				processortest.Failed:         {{Name: "processing_error", Card: card(sandbox.CardProcessingError)}},
				processortest.RequiresAction: {{Name: "3ds", Card: card(sandbox.CardRequires3DS)}},
			},
			Authorizations: func(t *testing.T) int {
				t.Helper()
				n, err := p.Charges(context.Background())
				if err != nil {
					t.Fatalf("Charges: %v", err)
				}
				return n
			},
			// The shopper answers the sandbox's challenge page; the outcome
			// is the sandbox's to report (Lookup): nothing comes back.
			Authenticate: func(t *testing.T, res *payloom.AuthorizeResult, pass bool) map[string]string {
				t.Helper()
				if _, err := p.CompleteChallenge(context.Background(), res.TransactionID, pass); err != nil {
					t.Fatalf("CompleteChallenge(%s): %v", res.TransactionID, err)
				}
				return nil
			},
			Replays:       true,
			EnforcesState: true,
			LookupFinds:   true,
		}
	})
}
