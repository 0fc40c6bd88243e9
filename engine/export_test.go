package engine

import "context"

// One pass of each background job, as RunBackground makes it: only under
// the job's lease. Exported for the tests of two engines on one store.

func (e *Engine) RecoveryPass(ctx context.Context) (ran bool, recovered int, err error) {
	return e.recoveryPass(ctx)
}

func (e *Engine) PurgePass(ctx context.Context) (ran bool, purged int64, err error) {
	return e.purgePass(ctx)
}

// CanTake exposes canTake to the routing tests.
var CanTake = canTake
