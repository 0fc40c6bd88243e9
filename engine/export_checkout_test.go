package engine

import "context"

// ExpiryPass is one pass of the expiry job as RunBackground makes it: only
// under the job's lease.
func (e *Engine) ExpiryPass(ctx context.Context) (ran bool, expired int, err error) {
	return e.expiryPass(ctx)
}
