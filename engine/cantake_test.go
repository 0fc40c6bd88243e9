package engine_test

import (
	"testing"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/engine"
)

func TestCanTake(t *testing.T) {
	card := func(country string) *payloom.Payment {
		return &payloom.Payment{Currency: "USD", CaptureMethod: payloom.CaptureMethodAutomatic, PaymentMethod: &payloom.PaymentMethod{
			Type: payloom.PaymentMethodTypeCard, Card: &payloom.CardSummary{Brand: payloom.CardBrandVisa, Country: country}}}
	}
	manual := card("US")
	manual.CaptureMethod = payloom.CaptureMethodManual
	tests := []struct {
		name string
		c    payloom.Capabilities
		p    *payloom.Payment
		want bool
	}{
		{"declares nothing", payloom.Capabilities{}, card("BR"), true},
		{"currency", payloom.Capabilities{Currencies: []payloom.Currency{"EUR"}}, card("BR"), false},
		{"country listed", payloom.Capabilities{Countries: []string{"BR", "MX"}}, card("BR"), true},
		{"country not listed", payloom.Capabilities{Countries: []string{"BR", "MX"}}, card("US"), false},
		{"country unknown", payloom.Capabilities{Countries: []string{"BR"}}, card(""), true},
		{"no payment method", payloom.Capabilities{Countries: []string{"BR"}}, &payloom.Payment{Currency: "USD"}, true},
		{"manual capture", payloom.Capabilities{}, manual, false},
		{"manual capture offered", payloom.Capabilities{ManualCapture: true}, manual, true},
	}
	for _, tt := range tests {
		if got := engine.CanTake(tt.c, tt.p); got != tt.want {
			t.Errorf("canTake(%s) = %v; want %v", tt.name, got, tt.want)
		}
	}
}
