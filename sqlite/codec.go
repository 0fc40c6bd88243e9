package sqlite

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// Times are stored as INTEGER nanoseconds since the epoch, which keeps full
// precision and compares in SQL. NULL stands for the zero time.
var (
	minTime = time.Unix(0, math.MinInt64+1)
	maxTime = time.Unix(0, math.MaxInt64)
)

var errTimeRange = errors.New("sqlite: time outside the storable range (years 1678 to 2262)")

// enc collects the first encoding error of a row so that argument lists can
// be written inline.
type enc struct{ err error }

func (e *enc) time(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	if t.Before(minTime) || t.After(maxTime) {
		e.fail(errTimeRange)
		return nil
	}
	return t.UnixNano()
}

// timeNotNull encodes a time that has a NOT NULL column (creation times):
// the zero time is refused with a clear error instead of a constraint one.
func (e *enc) timeNotNull(field string, t time.Time) any {
	if t.IsZero() {
		e.fail(fmt.Errorf("sqlite: %s is the zero time", field))
		return nil
	}
	return e.time(t)
}

func (e *enc) timePtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	if t.IsZero() {
		// A set pointer to the zero time would read back as nil.
		e.fail(errors.New("sqlite: a *time.Time points at the zero time"))
		return nil
	}
	return e.time(*t)
}

// json encodes v (a pointer to a row struct) as JSON text, NULL for nil.
func (e *enc) json(v any, isNil bool) any {
	if isNil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		e.fail(err)
		return nil
	}
	return string(b)
}

func (e *enc) metadata(m map[string]string) string {
	if m == nil {
		return "{}"
	}
	b, err := json.Marshal(m)
	if err != nil {
		e.fail(err)
		return "{}"
	}
	return string(b)
}

func (e *enc) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

// blob stores nil as an empty blob: NOT NULL columns, read back non-nil.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// nullString maps "" to NULL, for unique columns where "" means "none".
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func decTime(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

func decTimePtr(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := time.Unix(0, n.Int64).UTC()
	return &t
}

func decMetadata(s string) (map[string]string, error) {
	m := map[string]string{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("sqlite: decode metadata: %w", err)
	}
	return m, nil
}

// decJSON decodes a nullable JSON column into a new T; nil for NULL.
func decJSON[T any](s sql.NullString) (*T, error) {
	if !s.Valid {
		return nil, nil
	}
	v := new(T)
	if err := json.Unmarshal([]byte(s.String), v); err != nil {
		return nil, fmt.Errorf("sqlite: decode %T: %w", v, err)
	}
	return v, nil
}

func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}
