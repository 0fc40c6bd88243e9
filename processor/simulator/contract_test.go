package simulator_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/processor"
	"github.com/payloom/payloom/processor/processortest"
	"github.com/payloom/payloom/processor/simulator"
)

func card(number string) *payloom.CardData {
	return &payloom.CardData{Number: payloom.Secret(number), ExpMonth: 12, ExpYear: time.Now().Year() + 3,
		CVC: "123", Brand: payloom.CardBrandVisa}
}

// startSimulator serves a fresh simulator on a loopback port.
func startSimulator(t *testing.T, opts simulator.Options) (*simulator.Server, string) {
	t.Helper()
	sim := simulator.NewServer(opts)
	ts := httptest.NewServer(sim)
	t.Cleanup(func() {
		sim.Close() // end hung requests first, or ts.Close waits for them
		ts.Close()
	})
	return sim, ts.URL
}

// closedPort returns the URL of a loopback port nobody listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	return url
}

// swallower is a loopback server that reads a request and closes the
// connection without processing or answering it.
func swallower(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				http.ReadRequest(bufio.NewReader(conn))
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

const cardDropped = "5555555555554444"

func TestContract(t *testing.T) {
	processortest.Run(t, func(t *testing.T) processortest.Harness {
		sim, url := startSimulator(t, simulator.Options{})
		if _, err := sim.AddRules(simulator.Rule{CardNumber: cardDropped, Action: simulator.ActionDrop, Times: 1}); err != nil {
			t.Fatal(err)
		}
		conn := simulator.NewConnector(url, simulator.ConnectorOptions{})
		hard := func(name, number, failure, decline string) processortest.Scenario {
			return processortest.Scenario{Name: name, Card: card(number), FailureCode: failure, DeclineCode: decline}
		}
		return processortest.Harness{
			Processor: conn,
			Scenarios: map[processortest.Outcome][]processortest.Scenario{
				processortest.Approve: {{Name: "approve", Card: card(simulator.CardApprove)}},
				processortest.HardDecline: {
					hard("insufficient_funds", simulator.CardInsufficientFunds, payloom.FailureCardDeclined, payloom.DeclineInsufficientFunds),
					hard("expired_card", simulator.CardExpired, payloom.FailureExpiredCard, payloom.DeclineExpiredCard),
					hard("incorrect_cvc", simulator.CardIncorrectCVC, payloom.FailureIncorrectCVC, payloom.DeclineIncorrectCVC),
					hard("fraudulent", simulator.CardFraud, payloom.FailureCardDeclined, payloom.DeclineFraudulent),
					hard("lost_card", simulator.CardLost, payloom.FailureCardDeclined, processor.DeclineLostCard),
					hard("stolen_card", simulator.CardStolen, payloom.FailureCardDeclined, processor.DeclineStolenCard),
					hard("invalid_number", "4242424242424241", processor.FailureIncorrectNumber, processor.DeclineInvalidNumber),
				},
				processortest.SoftDecline: {
					hard("do_not_honor", simulator.CardDoNotHonor, payloom.FailureCardDeclined, processor.DeclineDoNotHonor),
					hard("issuer_not_available", simulator.CardIssuerUnavailable, payloom.FailureCardDeclined, processor.DeclineIssuerNotAvailable),
				},
				processortest.Failed: {
					{Name: "503_not_processed", Card: card(simulator.CardNotProcessed)},
					{Name: "connection_refused", Card: card(simulator.CardApprove),
						Processor: simulator.NewConnector(closedPort(t), simulator.ConnectorOptions{})},
				},
				processortest.Unknown: {
					{Name: "recorded_then_dropped", Card: card(cardDropped), Committed: true},
					{Name: "swallowed_unprocessed", Card: card(simulator.CardApprove),
						Processor: simulator.NewConnector(swallower(t), simulator.ConnectorOptions{})},
				},
			},
			Authorizations: func(t *testing.T) int { return len(sim.Ledger().Approved()) },
			Replays:        true,
			EnforcesState:  true,
			LookupFinds:    true,
		}
	})
}

var bg = context.Background()
