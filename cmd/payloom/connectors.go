package main

import (
	"fmt"
	"net/http"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/accounts"
	"github.com/payloom/payloom/processor/adyen"
	"github.com/payloom/payloom/processor/simulator"
	"github.com/payloom/payloom/processor/stripe"
)

// connectorFactory builds the connectors of processor accounts for the
// accounts service: the one place that knows which package serves which
// connector. Every call of a connector is bounded by timeout; returnURL
// is where a shopper comes back after a processor's redirect (Stripe's
// and Adyen's 3-D Secure). The credentials are revealed only into the
// connector's options.
func connectorFactory(timeout time.Duration, returnURL string) accounts.ConnectorFunc {
	return func(connector, name string, creds map[string]payloom.Secret) (payloom.Processor, error) {
		switch connector {
		case payloom.ConnectorSimulator:
			return simulator.NewConnector(creds["base_url"].Reveal(),
				simulator.ConnectorOptions{Name: name, Timeout: timeout}), nil
		case payloom.ConnectorStripe:
			return stripe.New(stripe.Options{Name: name, APIKey: creds["api_key"].Reveal(),
				BackendURL: creds["backend_url"].Reveal(), ReturnURL: returnURL,
				HTTPClient: &http.Client{Timeout: timeout}}), nil
		case payloom.ConnectorAdyen:
			return adyen.New(adyen.Options{Name: name, APIKey: creds["api_key"].Reveal(),
				MerchantAccount: creds["merchant_account"].Reveal(), BaseURL: creds["base_url"].Reveal(),
				ReturnURL: returnURL, Timeout: timeout}), nil
		}
		return nil, fmt.Errorf("no connector %q in this build", connector)
	}
}
