package payloom

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is an ISO 8601 duration such as "P30D", "PT15M" or "P1Y2M3DT4H5M6.5S".
// Years, months, weeks and days are calendar units: they are added with
// time.AddDate, so "P1M" from January 31 ends on March 2 or 3, as Go and
// most calendars count. The clock part (hours, minutes, seconds) is an exact
// time.Duration.
type Duration struct {
	Years, Months, Weeks, Days int
	Clock                      time.Duration
}

// maxDurationDigits bounds each number of a duration: nine digits keep every
// component, and their sum, far from overflowing an int or a time.Duration.
const maxDurationDigits = 9

// ParseDuration parses an ISO 8601 duration: "P", then any of nY nM nW nD in
// that order, then optionally "T" and any of nH nM nS in that order, with at
// least one component and a non-empty part after "T". Numbers are unsigned
// integers of at most nine digits; only the seconds may have a fraction
// ("PT1.5S", "." or ",", up to nanoseconds). Lower-case letters, signs,
// spaces and the alternative format ("P0003-04-05") are refused.
//
// Errors are validation errors without a param; the caller names the field.
func ParseDuration(s string) (Duration, error) {
	fail := func(msg string) (Duration, error) {
		return Duration{}, &Error{Code: CodeValidation, Message: msg}
	}
	const shape = "must be an ISO 8601 duration such as P30D, PT2H or P1DT12H"
	if len(s) < 3 || s[0] != 'P' || len(s) > 64 {
		return fail(shape)
	}
	var d Duration
	rest := s[1:]
	// Designators in the order they may appear; time designators after T.
	dateUnits, timeUnits := "YMWD", "HMS"
	inTime := false
	order := -1 // index in the current unit list of the last designator seen
	components, timeComponents := 0, 0
	for rest != "" {
		if rest[0] == 'T' {
			if inTime {
				return fail(shape)
			}
			inTime, order = true, -1
			rest = rest[1:]
			if rest == "" {
				return fail(shape)
			}
			continue
		}
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		intPart := rest[:i]
		frac := ""
		if i < len(rest) && (rest[i] == '.' || rest[i] == ',') {
			j := i + 1
			for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
				j++
			}
			frac = rest[i+1 : j]
			if frac == "" {
				return fail(shape)
			}
			i = j
		}
		if intPart == "" || i >= len(rest) {
			return fail(shape)
		}
		if len(intPart) > maxDurationDigits {
			return fail("has a number that is too large")
		}
		unit := rest[i]
		rest = rest[i+1:]
		units := dateUnits
		if inTime {
			units = timeUnits
		}
		pos := strings.IndexByte(units, unit)
		if pos < 0 || pos <= order {
			return fail(shape)
		}
		order = pos
		if frac != "" && !(inTime && unit == 'S') {
			return fail("may have a fraction only in its seconds")
		}
		n, _ := strconv.Atoi(intPart) // at most nine digits
		components++
		if !inTime {
			switch unit {
			case 'Y':
				d.Years = n
			case 'M':
				d.Months = n
			case 'W':
				d.Weeks = n
			case 'D':
				d.Days = n
			}
			continue
		}
		timeComponents++
		unitDur := map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second}[unit]
		if int64(n) > math.MaxInt64/int64(unitDur) {
			return fail("is too long")
		}
		add := time.Duration(n) * unitDur
		if unit == 'S' {
			if len(frac) > 9 {
				return fail("has more than nine decimals in its seconds")
			}
			ns, _ := strconv.Atoi(frac + strings.Repeat("0", 9-len(frac)))
			add += time.Duration(ns) // below one second: cannot overflow here
		}
		if d.Clock > math.MaxInt64-add {
			return fail("is too long")
		}
		d.Clock += add
	}
	if components == 0 || (inTime && timeComponents == 0) {
		return fail(shape)
	}
	return d, nil
}

// AddTo returns t plus the duration: the calendar part with AddDate, then
// the clock part.
func (d Duration) AddTo(t time.Time) time.Time {
	return t.AddDate(d.Years, d.Months, 7*d.Weeks+d.Days).Add(d.Clock)
}

// IsZero reports whether the duration is empty (P0D, PT0S ...).
func (d Duration) IsZero() bool { return d == Duration{} }

// String renders the duration in ISO 8601 ("P30D", "PT1H30M", "PT0S" for
// zero). ParseDuration(d.String()) == d for any duration it returned,
// except that the clock part is normalised into hours, minutes and seconds.
func (d Duration) String() string {
	var b strings.Builder
	b.WriteByte('P')
	for _, c := range []struct {
		n    int
		unit byte
	}{{d.Years, 'Y'}, {d.Months, 'M'}, {d.Weeks, 'W'}, {d.Days, 'D'}} {
		if c.n != 0 {
			b.WriteString(strconv.Itoa(c.n))
			b.WriteByte(c.unit)
		}
	}
	if d.Clock != 0 || b.Len() == 1 {
		b.WriteByte('T')
		rest := d.Clock
		if h := rest / time.Hour; h != 0 {
			b.WriteString(strconv.FormatInt(int64(h), 10) + "H")
			rest -= h * time.Hour
		}
		if m := rest / time.Minute; m != 0 {
			b.WriteString(strconv.FormatInt(int64(m), 10) + "M")
			rest -= m * time.Minute
		}
		if rest != 0 || d.Clock == 0 {
			sec := rest / time.Second
			ns := rest - sec*time.Second
			b.WriteString(strconv.FormatInt(int64(sec), 10))
			if ns != 0 {
				b.WriteString("." + strings.TrimRight(strconv.FormatInt(int64(ns)+1e9, 10)[1:], "0"))
			}
			b.WriteByte('S')
		}
	}
	return b.String()
}
