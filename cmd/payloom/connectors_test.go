package main

import (
	"testing"
	"time"

	"github.com/payloom/payloom"
)

// The factory gives each connector its account's name (attempts find their
// processor by it) and the public URL as the 3-D Secure return address
// (Stripe's connector offers 3-D Secure only with one).
func TestConnectorFactory(t *testing.T) {
	build := connectorFactory(time.Second, "https://pay.example")
	yes := true
	tests := []struct {
		connector string
		creds     map[string]payloom.Secret
		threeDS   *bool // nil: not checked
	}{
		{payloom.ConnectorSimulator, map[string]payloom.Secret{"base_url": "http://127.0.0.1:7070"}, nil},
		{payloom.ConnectorStripe, map[string]payloom.Secret{"api_key": "sk_test_x", "backend_url": "http://127.0.0.1:12111"}, &yes},
		{payloom.ConnectorAdyen, map[string]payloom.Secret{"api_key": "k", "merchant_account": "m", "base_url": "https://checkout-test.adyen.com/v71"}, nil},
	}
	for _, tt := range tests {
		p, err := build(tt.connector, "acct-"+tt.connector, tt.creds)
		if err != nil || p == nil || p.Name() != "acct-"+tt.connector {
			t.Errorf("connectorFactory(%s) = %v, %v; want a connector named acct-%s", tt.connector, p, err, tt.connector)
			continue
		}
		if got := p.Capabilities().ThreeDS; tt.threeDS != nil && got != *tt.threeDS {
			t.Errorf("connectorFactory(%s).Capabilities().ThreeDS = %v; want %v", tt.connector, got, *tt.threeDS)
		}
	}
	if p, err := build("paypal", "x", nil); err == nil {
		t.Errorf("connectorFactory(paypal) = %v; want an error", p)
	}
}
