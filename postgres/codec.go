package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// enc collects the first encoding error of a row so that argument lists can
// be written inline.
type enc struct{ err error }

// time encodes a time for a nullable timestamptz column: the zero time is
// NULL. PostgreSQL keeps microseconds; pgx truncates the rest.
func (e *enc) time(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// timeNotNull encodes a time that has a NOT NULL column (creation times):
// the zero time is refused with a clear error instead of a constraint one.
func (e *enc) timeNotNull(field string, t time.Time) any {
	if t.IsZero() {
		e.fail(fmt.Errorf("postgres: %s is the zero time", field))
		return nil
	}
	return t
}

func (e *enc) timePtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	if t.IsZero() {
		// A set pointer to the zero time would read back as nil.
		e.fail(errors.New("postgres: a *time.Time points at the zero time"))
		return nil
	}
	return *t
}

// json encodes v (a pointer to a row struct) for a jsonb column, NULL for
// nil.
func (e *enc) json(v any, isNil bool) any {
	if isNil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		e.fail(err)
		return nil
	}
	return b
}

func (e *enc) metadata(m map[string]string) []byte {
	if m == nil {
		return []byte("{}")
	}
	b, err := json.Marshal(m)
	if err != nil {
		e.fail(err)
		return []byte("{}")
	}
	return b
}

func (e *enc) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

// blob stores nil as an empty bytea: NOT NULL columns, read back non-nil.
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

func decTime(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

func decTimePtr(t pgtype.Timestamptz) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

func decMetadata(b []byte) (map[string]string, error) {
	m := map[string]string{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("postgres: decode metadata: %w", err)
	}
	return m, nil
}

// decJSON decodes a nullable jsonb column into a new T; nil for NULL.
func decJSON[T any](b []byte) (*T, error) {
	if b == nil {
		return nil, nil
	}
	v := new(T)
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("postgres: decode %T: %w", v, err)
	}
	return v, nil
}

func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// scanErr wraps a decoding failure of a row.
func scanErr(kind string, err error) error {
	return fmt.Errorf("postgres: read %s: %w", kind, err)
}
