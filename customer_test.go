package payloom_test

import (
	"context"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/payloom/payloom"
)

// digitRun is what quoting any part of a document would put in a message.
var digitRun = regexp.MustCompile(`[0-9]{3,}`)

func TestParseDocument(t *testing.T) {
	tests := []struct {
		in      string
		digits  string
		typ     payloom.DocumentType
		invalid bool
	}{
		{in: "52998224725", digits: "52998224725", typ: payloom.DocumentCPF},
		{in: "529.982.247-25", digits: "52998224725", typ: payloom.DocumentCPF},
		{in: "  529 982 247 25 ", digits: "52998224725", typ: payloom.DocumentCPF},
		{in: "11144477735", digits: "11144477735", typ: payloom.DocumentCPF},
		// A first check digit of 0 (remainder below 2).
		{in: "10000000108", digits: "10000000108", typ: payloom.DocumentCPF},
		{in: "11222333000181", digits: "11222333000181", typ: payloom.DocumentCNPJ},
		{in: "11.222.333/0001-81", digits: "11222333000181", typ: payloom.DocumentCNPJ},
		{in: "45.723.174/0001-10", digits: "45723174000110", typ: payloom.DocumentCNPJ},
		{in: "52998224724", invalid: true}, // second check digit off
		{in: "52998224715", invalid: true}, // first check digit off
		{in: "11222333000180", invalid: true},
		{in: "11222333000191", invalid: true},
		{in: "00000000000", invalid: true}, // passes the arithmetic, never issued
		{in: "99999999999", invalid: true},
		{in: "00000000000000", invalid: true},
		{in: "5299822472", invalid: true},      // 10 digits
		{in: "529982247250", invalid: true},    // 12 digits
		{in: "112223330001811", invalid: true}, // 15 digits
		{in: "529.982.247-2X", invalid: true},
		{in: "５２９９８２２４７２５", invalid: true}, // full-width digits
		{in: "", invalid: true},
	}
	for _, tt := range tests {
		digits, typ, err := payloom.ParseDocument(tt.in)
		if tt.invalid {
			if payloom.ErrorCode(err) != payloom.CodeValidation || payloom.ErrorParam(err) != "document" {
				t.Errorf("ParseDocument(%q) = %q, %q, %v; want validation_error on document", tt.in, digits, typ, err)
			}
			if msg := payloom.ErrorMessage(err); err != nil && digitRun.MatchString(msg) {
				t.Errorf("ParseDocument(%q) message %q quotes digits", tt.in, msg)
			}
			continue
		}
		if err != nil || digits != tt.digits || typ != tt.typ {
			t.Errorf("ParseDocument(%q) = %q, %q, %v; want %q, %q", tt.in, digits, typ, err, tt.digits, tt.typ)
		}
	}
}

// Every valid document stays valid formatted, and changing any one digit
// breaks it.
func TestParseDocumentCheckDigits(t *testing.T) {
	for _, doc := range []string{"52998224725", "11144477735", "11222333000181", "45723174000110"} {
		for i := range len(doc) {
			for d := byte('0'); d <= '9'; d++ {
				if d == doc[i] {
					continue
				}
				b := []byte(doc)
				b[i] = d
				if _, _, err := payloom.ParseDocument(string(b)); err == nil {
					t.Errorf("ParseDocument(%q) (digit %d of %q changed) = nil; want an error", b, i, doc)
				}
			}
		}
	}
}

func FuzzParseDocument(f *testing.F) {
	for _, s := range []string{"52998224725", "11.222.333/0001-81", "", "x", "1-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		digits, typ, err := payloom.ParseDocument(s)
		if err != nil {
			return
		}
		if (typ == payloom.DocumentCPF && len(digits) != 11) || (typ == payloom.DocumentCNPJ && len(digits) != 14) {
			t.Fatalf("ParseDocument(%q) = %q, %q; wrong length for the type", s, digits, typ)
		}
		// The normalized form parses to itself.
		if d2, t2, err := payloom.ParseDocument(digits); err != nil || d2 != digits || t2 != typ {
			t.Fatalf("ParseDocument(%q) = %q, %q, %v; want it unchanged", digits, d2, t2, err)
		}
	})
}

func TestParsePermissions(t *testing.T) {
	def := payloom.DefaultPermissions()
	tests := []struct {
		in   string
		want []payloom.Permission
		bad  bool
	}{
		{in: "default", want: def},
		{in: "all", want: payloom.Permissions},
		{in: "raw_card_data, payments:read", want: []payloom.Permission{payloom.PermissionPaymentsRead, payloom.PermissionRawCardData}},
		{in: "payments:read,payments:read", want: []payloom.Permission{payloom.PermissionPaymentsRead}},
		{in: "default,audit:read", want: append(slices.Clone(def), payloom.PermissionAuditRead)},
		{in: "", bad: true},
		{in: " , ", bad: true},
		{in: "payments:delete", bad: true},
		{in: "ALL", bad: true},
	}
	for _, tt := range tests {
		got, err := payloom.ParsePermissions(tt.in)
		if tt.bad {
			if payloom.ErrorParam(err) != "permissions" {
				t.Errorf("ParsePermissions(%q) = %v, %v; want validation_error on permissions", tt.in, got, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParsePermissions(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, p := range def {
		if p == payloom.PermissionRawCardData || p == payloom.PermissionAuditRead {
			t.Errorf("DefaultPermissions() = %v; must not hold %s", def, p)
		}
	}
	k := &payloom.APIKey{Permissions: def}
	if !k.Can(payloom.PermissionPaymentsWrite) || k.Can(payloom.PermissionRawCardData) {
		t.Errorf("APIKey{default}.Can: payments:write %v, raw_card_data %v; want true, false",
			k.Can(payloom.PermissionPaymentsWrite), k.Can(payloom.PermissionRawCardData))
	}
}

func TestActor(t *testing.T) {
	ctx := context.Background()
	if got := payloom.ActorFrom(ctx); got.ID != payloom.AuditActorSystem || got.Source != payloom.AuditSourceSystem {
		t.Errorf("ActorFrom(empty) = %+v; want the system", got)
	}
	ctx = payloom.WithActor(ctx, payloom.Actor{ID: "key_1", Source: "10.0.0.1"})
	ev := payloom.NewAuditEvent(ctx, payloom.Scope{MerchantID: "mrch_1"}, payloom.AuditAPIKeyRevoked, payloom.AuditSuccess, "key_2", time.Now())
	if ev.Actor != "key_1" || ev.Source != "10.0.0.1" || ev.MerchantID != "mrch_1" || ev.Object != "audit_event" ||
		!payloom.HasPrefix(ev.ID, payloom.PrefixAuditEvent) || ev.Details == nil {
		t.Errorf("NewAuditEvent = %+v; want it by key_1 from 10.0.0.1", ev)
	}
}
