package sqlite

import (
	"context"
	"errors"
	"time"
)

// AcquireLease takes, renews or fails to take the lease in one upsert. The
// write transaction is exclusive, so no other acquirer interleaves; an
// upsert whose WHERE refuses the update changes no row.
func (t *tx) AcquireLease(ctx context.Context, name, owner string, now, until time.Time) (bool, error) {
	if name == "" || owner == "" {
		return false, errors.New("sqlite: a lease needs a name and an owner")
	}
	if now.IsZero() || !until.After(now) {
		return false, errors.New("sqlite: a lease must end after now")
	}
	var e enc
	nowV, untilV := e.time(now), e.time(until)
	if e.err != nil {
		return false, e.err
	}
	res, err := t.exec(ctx, "lease", `INSERT INTO leases (name, owner, until, acquired_at) VALUES (?1, ?2, ?3, ?4)
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until,
			acquired_at = CASE WHEN leases.owner = excluded.owner THEN leases.acquired_at ELSE excluded.acquired_at END
		WHERE leases.owner = excluded.owner OR leases.until <= excluded.acquired_at`, name, owner, untilV, nowV)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, dbError("lease", err)
	}
	return n == 1, nil
}

// ReleaseLease deletes the lease row if owner holds it.
func (t *tx) ReleaseLease(ctx context.Context, name, owner string) error {
	if name == "" || owner == "" {
		return errors.New("sqlite: a lease needs a name and an owner")
	}
	_, err := t.exec(ctx, "lease", `DELETE FROM leases WHERE name = ? AND owner = ?`, name, owner)
	return err
}
