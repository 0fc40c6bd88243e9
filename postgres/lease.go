package postgres

import (
	"context"
	"errors"
	"time"
)

// AcquireLease takes, renews or fails to take the lease in one statement.
// INSERT ... ON CONFLICT DO UPDATE locks the existing row even when its
// WHERE clause refuses the update, and a statement that waited for that
// lock judges the row as the other transaction committed it: concurrent
// acquirers queue on the row, exactly one finds it free, and a transaction
// that begins with AcquireLease runs after every other one that did (at
// any isolation level; above READ COMMITTED the loser gets a
// serialization failure, which Update retries).
func (t *tx) AcquireLease(ctx context.Context, name, owner string, now, until time.Time) (bool, error) {
	if err := checkLease(name, owner, now, until); err != nil {
		return false, err
	}
	tag, err := t.exec(ctx, "lease", `INSERT INTO leases AS l (name, owner, until, acquired_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until,
			acquired_at = CASE WHEN l.owner = excluded.owner THEN l.acquired_at ELSE excluded.acquired_at END
		WHERE l.owner = excluded.owner OR l.until <= excluded.acquired_at`, name, owner, until, now)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// ReleaseLease deletes the lease row if owner holds it; the next
// AcquireLease inserts a fresh one.
func (t *tx) ReleaseLease(ctx context.Context, name, owner string) error {
	if name == "" || owner == "" {
		return errors.New("postgres: a lease needs a name and an owner")
	}
	_, err := t.exec(ctx, "lease", `DELETE FROM leases WHERE name = $1 AND owner = $2`, name, owner)
	return err
}

func checkLease(name, owner string, now, until time.Time) error {
	switch {
	case name == "" || owner == "":
		return errors.New("postgres: a lease needs a name and an owner")
	case now.IsZero() || !until.After(now):
		return errors.New("postgres: a lease must end after now")
	}
	return nil
}
