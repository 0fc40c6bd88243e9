-- Leases of background jobs ("recovery", "purge", "bootstrap"): the
-- process named by owner runs the job until `until` (nanoseconds since the
-- epoch, like every time here); a process that dies stops renewing, and
-- another takes the job over once until has passed. acquired_at is when the
-- current owner took the lease (a renewal keeps it).

CREATE TABLE leases (
	name        TEXT PRIMARY KEY,
	owner       TEXT NOT NULL,
	until       INTEGER NOT NULL,
	acquired_at INTEGER NOT NULL
) STRICT;
