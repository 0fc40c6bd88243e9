// Package e2e holds Payloom's end-to-end tests: they build the real payloom
// binary once, run it as a subprocess on 127.0.0.1 with a throwaway data
// directory, and talk to it over real HTTP and through its CLI. They cover
// the whole payment flow, concurrency (idempotency and refunds), crashes
// between committed phases (SIGKILL), graceful shutdown, webhook delivery
// to real receivers (signatures, retries, delivery across a SIGKILL),
// several nodes on one PostgreSQL and two processes on one SQLite file, and
// a scan of the logs and the database files for card numbers and CVCs.
//
// The package has no non-test code. Its tests must never depend on timing:
// waits are for observable events (a line on stdout, a row in a list, a
// process exit) and are only bounded by generous deadlines.
package e2e
