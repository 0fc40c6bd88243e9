package storetest

import (
	"testing"
	"time"

	"github.com/payloom/payloom"
)

// TestDiff: the comparison the suite rests on tells apart what the
// contract tells apart.
func TestDiff(t *testing.T) {
	utc := time.Date(2025, 1, 1, 0, 0, 0, 1000, time.UTC)
	tests := []struct {
		name      string
		want, got any
		differ    bool
	}{
		{"equal", &payloom.Merchant{ID: "m", CreatedAt: utc}, &payloom.Merchant{ID: "m", CreatedAt: utc}, false},
		{"field", &payloom.Merchant{ID: "m"}, &payloom.Merchant{ID: "n"}, true},
		{"same instant, UTC", &payloom.Merchant{CreatedAt: utc.In(time.FixedZone("X", 3600))}, &payloom.Merchant{CreatedAt: utc}, false},
		{"same instant, not UTC", &payloom.Merchant{CreatedAt: utc}, &payloom.Merchant{CreatedAt: utc.In(time.FixedZone("X", 3600))}, true},
		{"lost microsecond", &payloom.Merchant{CreatedAt: utc}, &payloom.Merchant{CreatedAt: utc.Truncate(time.Millisecond)}, true},
		{"nil vs empty map", &payloom.Payment{Metadata: map[string]string{}}, &payloom.Payment{}, true},
		{"map value", &payloom.Payment{Metadata: map[string]string{"a": "1"}}, &payloom.Payment{Metadata: map[string]string{"a": "2"}}, true},
		{"map key", &payloom.Payment{Metadata: map[string]string{"a": ""}}, &payloom.Payment{Metadata: map[string]string{"b": ""}}, true},
		{"nil vs set pointer", &payloom.Payment{}, &payloom.Payment{Failure: &payloom.Failure{}}, true},
		{"pointee", &payloom.Payment{Failure: &payloom.Failure{Code: "a"}}, &payloom.Payment{Failure: &payloom.Failure{Code: "b"}}, true},
		{"attempt order", &payloom.Payment{Attempts: []*payloom.Attempt{{ID: "1"}, {ID: "2"}}},
			&payloom.Payment{Attempts: []*payloom.Attempt{{ID: "2"}, {ID: "1"}}}, true},
		{"nil vs empty bytes", &payloom.IdempotencyKey{ResponseBody: []byte{}}, &payloom.IdempotencyKey{}, true},
		{"bytes", &payloom.IdempotencyKey{ResponseBody: []byte("a")}, &payloom.IdempotencyKey{ResponseBody: []byte("b")}, true},
		{"nil vs set time pointer", &payloom.Attempt{}, &payloom.Attempt{CompletedAt: &utc}, true},
	}
	for _, tt := range tests {
		d := diff(tt.want, tt.got)
		if (len(d) > 0) != tt.differ {
			t.Errorf("diff(%s) = %q; want differences %v", tt.name, d, tt.differ)
		}
	}
}
