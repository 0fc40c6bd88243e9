package engine

import "context"

// LateCheckPass is one pass of the late-check job as RunBackground makes
// it: only under the late-check lease.
func (e *Engine) LateCheckPass(ctx context.Context) (ran bool, reversed int, err error) {
	return e.lateCheckPass(ctx)
}
