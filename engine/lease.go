package engine

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/payloom/payloom"
)

// Names of the leases (payloom.Tx.AcquireLease) under which the engine does
// work that every node could do but that must be done once.
const (
	// LeaseRecovery: the node that holds it runs the recovery passes.
	LeaseRecovery = "recovery"
	// LeasePurge: the node that holds it purges idempotency records.
	LeasePurge = "purge"
	// LeaseBootstrap serializes Bootstrap across nodes starting at once.
	LeaseBootstrap = "bootstrap"
)

// leaseIntervals is how many of its intervals a job's lease lasts: the
// holder renews it every pass, so it survives a slow pass or two, and a
// dead holder's job moves to another node within a few intervals.
const leaseIntervals = 3

// bootstrapLease is the term of the bootstrap lease. Its only use is the
// row lock during the Bootstrap transaction; its term does not matter.
const bootstrapLease = time.Minute

// releaseTimeout bounds giving the leases back on shutdown: a store that
// does not answer leaves them to expire instead.
const releaseTimeout = 5 * time.Second

// defaultNodeID names this process among the nodes sharing a store: the
// host and the pid for the operator reading the leases table, and random
// characters because pids repeat across containers and restarts.
func defaultNodeID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), randomBase62(8))
}

// NodeID returns the name under which this engine holds leases.
func (e *Engine) NodeID() string { return e.node }

// holdLease takes or renews the named lease for term, in its own
// transaction, and reports whether this engine holds it.
func (e *Engine) holdLease(ctx context.Context, name string, term time.Duration) (bool, error) {
	var held bool
	err := e.update(ctx, "lease_"+name, func(tx payloom.Tx) error {
		now := e.now()
		var err error
		held, err = tx.AcquireLease(ctx, name, e.node, now, now.Add(term))
		return err
	})
	if err != nil {
		return false, err
	}
	e.noteLease(ctx, name, held)
	return held, nil
}

// noteLease records whether the engine holds a lease and logs the changes:
// which node runs a job is worth a line when it moves, not every pass.
func (e *Engine) noteLease(ctx context.Context, name string, held bool) {
	e.leasesMu.Lock()
	was := e.held[name]
	e.held[name] = held
	e.leasesMu.Unlock()
	switch {
	case held && !was:
		e.log.InfoContext(ctx, "this node now runs a background job", "job", name, "node", e.node)
	case !held && was:
		e.log.InfoContext(ctx, "another node took over a background job", "job", name, "node", e.node)
	}
}

// releaseLeases gives back every lease the engine holds, so that another
// node takes the jobs over at its next pass instead of after the leases
// expire. ctx may be canceled already (shutdown).
func (e *Engine) releaseLeases(ctx context.Context) {
	e.leasesMu.Lock()
	var names []string
	for name, held := range e.held {
		if held {
			names = append(names, name)
		}
	}
	e.leasesMu.Unlock()
	if len(names) == 0 {
		return
	}
	slices.Sort(names) // one lock order for every node

	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	err := e.update(ctx, "lease_release", func(tx payloom.Tx) error {
		for _, name := range names {
			if err := tx.ReleaseLease(ctx, name, e.node); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		e.log.WarnContext(ctx, "could not release the background job leases; they expire by themselves",
			"jobs", names, "node", e.node, "err", err)
		return
	}
	e.leasesMu.Lock()
	for _, name := range names {
		e.held[name] = false
	}
	e.leasesMu.Unlock()
	e.log.InfoContext(ctx, "released the background job leases", "jobs", names, "node", e.node)
}

// recoveryPass runs one recovery pass if this engine holds, or can take,
// the recovery lease, renewing it while the pass lasts; ran reports
// whether it did.
func (e *Engine) recoveryPass(ctx context.Context) (ran bool, recovered int, err error) {
	// One payment may take a resend and each fallback attempt, then a
	// capture, each up to the processor timeout: the lease, renewed only
	// between payments and once a third of its term is gone, must still
	// have that much left, or another node could take the job and work on
	// the same payment meanwhile (safe, by keys and versions, but calls
	// twice). Two thirds of 2×(calls×timeout) covers it.
	term := RecoveryLeaseTerm(e.recoveryInterval, e.maxAttempts, e.processorTimeout)
	return e.leasedPass(ctx, LeaseRecovery, term, e.recoverStale)
}

// MinLookupGrace is the shortest lookup grace under which a payment whose
// node crashed after committing its attempt is still resent: the attempt
// must outlive the lock timeout (before which neither a retry nor the
// recovery job takes it), a dead node's recovery lease, a recovery interval
// and the processor call itself. A shorter grace would fail such payments
// as "not found" instead of sending them.
func MinLookupGrace(lockTimeout time.Duration, maxAttempts int) time.Duration {
	if lockTimeout <= 0 {
		lockTimeout = DefaultLockTimeout
	}
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}
	timeout := min(DefaultProcessorTimeout, lockTimeout*2/3)
	return lockTimeout + RecoveryLeaseTerm(DefaultRecoveryInterval, maxAttempts, timeout) + DefaultRecoveryInterval + timeout
}

// RecoveryLeaseTerm is the recovery job's lease term for its interval, the
// most attempts of a payment and the processor timeout (see recoveryPass).
func RecoveryLeaseTerm(interval time.Duration, maxAttempts int, processorTimeout time.Duration) time.Duration {
	return leaseIntervals*interval + 2*time.Duration(maxAttempts+1)*processorTimeout
}

// leasedPass runs work if this engine holds, or can take, job's lease for
// term; ran reports whether it did. A pass may outlast its lease (each
// processor call may take ProcessorTimeout): work calls keep between items,
// which renews the lease once a third of the term is gone and answers false
// if another node has taken the job over meanwhile, so that work stops.
func (e *Engine) leasedPass(ctx context.Context, job string, term time.Duration,
	work func(ctx context.Context, keep func() bool) (int, error)) (ran bool, n int, err error) {
	held, err := e.holdLease(ctx, job, term)
	if err != nil || !held {
		return false, 0, err
	}
	renewed := e.now()
	keep := func() bool {
		if e.now().Sub(renewed) < term/3 {
			return true
		}
		held, err := e.holdLease(ctx, job, term)
		if err != nil || !held {
			return false
		}
		renewed = e.now()
		return true
	}
	n, err = work(ctx, keep)
	return true, n, err
}

// purgePass purges expired idempotency records if this engine holds, or
// can take, the purge lease: both in one transaction, so a node purges only
// under a lease it holds.
func (e *Engine) purgePass(ctx context.Context) (ran bool, purged int64, err error) {
	term := leaseIntervals * e.purgeInterval
	defer func() {
		if purged > 0 {
			e.log.InfoContext(ctx, "idempotency keys purged", "count", purged)
		}
	}()
	// Chunk by chunk, each in its own transaction that also renews the
	// lease: a purge far behind never holds the write path for long.
	for {
		var held bool
		var n int64
		err = e.update(ctx, "idempotency_purge", func(tx payloom.Tx) error {
			held, n = false, 0
			now := e.now()
			var err error
			if held, err = tx.AcquireLease(ctx, LeasePurge, e.node, now, now.Add(term)); err != nil || !held {
				return err
			}
			n, err = tx.DeleteIdempotencyKeysBefore(ctx, now.Add(-e.ttl), purgeChunk)
			return err
		})
		if err != nil {
			return ran, purged, err
		}
		if !ran {
			e.noteLease(ctx, LeasePurge, held)
		}
		ran = ran || held
		purged += n
		if !held || n < purgeChunk || ctx.Err() != nil {
			return ran, purged, nil
		}
	}
}
