package payloom

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		in   string
		want Duration
		ok   bool
	}{
		{"P30D", Duration{Days: 30}, true},
		{"P31D", Duration{Days: 31}, true},
		{"P1W", Duration{Weeks: 1}, true},
		{"P1Y2M3W4D", Duration{Years: 1, Months: 2, Weeks: 3, Days: 4}, true},
		{"PT15M", Duration{Clock: 15 * time.Minute}, true},
		{"PT2H", Duration{Clock: 2 * time.Hour}, true},
		{"P1DT12H", Duration{Days: 1, Clock: 12 * time.Hour}, true},
		{"PT1H30M5S", Duration{Clock: time.Hour + 30*time.Minute + 5*time.Second}, true},
		{"PT1.5S", Duration{Clock: 1500 * time.Millisecond}, true},
		{"PT0,25S", Duration{Clock: 250 * time.Millisecond}, true},
		{"PT0.000000001S", Duration{Clock: 1}, true},
		{"PT36H", Duration{Clock: 36 * time.Hour}, true},
		{"P0D", Duration{}, true},
		{"PT999999999S", Duration{Clock: 999999999 * time.Second}, true},
		{"", Duration{}, false},
		{"P", Duration{}, false},
		{"PT", Duration{}, false},
		{"P1DT", Duration{}, false},
		{"30D", Duration{}, false},
		{"p30d", Duration{}, false},
		{"P30d", Duration{}, false},
		{"-P1D", Duration{}, false},
		{"P-1D", Duration{}, false},
		{"P+1D", Duration{}, false},
		{"P 1D", Duration{}, false},
		{"P1D ", Duration{}, false},
		{"P1H", Duration{}, false},
		{"PT1D", Duration{}, false},
		{"P1D1M", Duration{}, false},
		{"PT1S1M", Duration{}, false},
		{"P1DD", Duration{}, false},
		{"PT1M1M", Duration{}, false},
		{"P1.5D", Duration{}, false},
		{"PT1.5M", Duration{}, false},
		{"PT1.S", Duration{}, false},
		{"PT.5S", Duration{}, false},
		{"PT1.0000000001S", Duration{}, false},
		{"P1TT1H", Duration{}, false},
		{"PT1H T1M", Duration{}, false},
		{"P1234567890D", Duration{}, false},
		{"PT999999999H", Duration{}, false},
		{"P0003-04-05", Duration{}, false},
		{"P1", Duration{}, false},
		{"PD", Duration{}, false},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		switch {
		case tt.ok && (err != nil || got != tt.want):
			t.Errorf("ParseDuration(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		case !tt.ok && err == nil:
			t.Errorf("ParseDuration(%q) = %+v; want an error", tt.in, got)
		case !tt.ok && (!IsCode(err, CodeValidation) || ErrorMessage(err) == ""):
			t.Errorf("ParseDuration(%q) error = %v; want a validation error with a message", tt.in, err)
		}
	}
	// Calendar units follow the calendar.
	base := time.Date(2026, time.January, 31, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		in   string
		want time.Time
	}{
		{"P1M", time.Date(2026, time.March, 3, 10, 0, 0, 0, time.UTC)},
		{"P1Y", time.Date(2027, time.January, 31, 10, 0, 0, 0, time.UTC)},
		{"P2W", base.Add(14 * day)},
		{"P1DT1H", base.Add(25 * time.Hour)},
	} {
		d, err := ParseDuration(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.AddTo(base); !got.Equal(tt.want) {
			t.Errorf("ParseDuration(%q).AddTo(%s) = %s; want %s", tt.in, base, got, tt.want)
		}
	}
}

func TestDurationString(t *testing.T) {
	for _, tt := range []struct {
		d    Duration
		want string
	}{
		{Duration{}, "PT0S"},
		{Duration{Days: 30}, "P30D"},
		{Duration{Years: 1, Months: 2, Weeks: 3, Days: 4}, "P1Y2M3W4D"},
		{Duration{Clock: 90 * time.Minute}, "PT1H30M"},
		{Duration{Days: 1, Clock: 1500 * time.Millisecond}, "P1DT1.5S"},
		{Duration{Clock: 1}, "PT0.000000001S"},
	} {
		if got := tt.d.String(); got != tt.want {
			t.Errorf("%+v.String() = %q; want %q", tt.d, got, tt.want)
		}
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"P30D", "P1Y2M3W4DT5H6M7.5S", "PT0,1S", "P", "PT", "P1DT", "PT999999999H", "P-1D", "P1D1M"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			if !IsCode(err, CodeValidation) || ErrorParam(err) != "" {
				t.Fatalf("ParseDuration(%q) error = %v; want a validation error without a param", s, err)
			}
			return
		}
		if d.Years < 0 || d.Months < 0 || d.Weeks < 0 || d.Days < 0 || d.Clock < 0 {
			t.Fatalf("ParseDuration(%q) = %+v; want no negative part", s, d)
		}
		// What parses prints to something that parses to the same.
		again, err := ParseDuration(d.String())
		if err != nil || again != d {
			t.Fatalf("ParseDuration(%q) = %+v; its String %q parses to %+v, %v", s, d, d.String(), again, err)
		}
	})
}
