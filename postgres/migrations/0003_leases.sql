-- Leases of background jobs ("recovery", "purge", "bootstrap"): the node
-- named by owner runs the job until `until`; a node that dies stops
-- renewing, and another takes the job over once until has passed.
-- acquired_at is when the current owner took the lease (a renewal keeps
-- it): for operators asking which node has been doing what since when.
--
-- Safe for nodes of the previous release: they never read this table (they
-- run their background jobs without leases, which is wasteful but correct,
-- as every job is idempotent on its own).

CREATE TABLE leases (
	name        text PRIMARY KEY,
	owner       text NOT NULL,
	until       timestamptz NOT NULL,
	acquired_at timestamptz NOT NULL
);
