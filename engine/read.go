package engine

import (
	"context"

	"github.com/payloom/payloom"
)

// Default and largest page sizes. The API validates limit; the engine only
// guards against a caller that did not.
const (
	defaultListLimit = 10
	maxListLimit     = 100
)

func clampLimit(p *payloom.ListParams) {
	switch {
	case p.Limit <= 0:
		p.Limit = defaultListLimit
	case p.Limit > maxListLimit:
		p.Limit = maxListLimit
	}
}

func newList[T any](data []T, more bool) *payloom.List[T] {
	if data == nil {
		data = []T{}
	}
	return &payloom.List[T]{Object: "list", Data: data, HasMore: more}
}

// ListPayments implements payloom.PaymentService.
func (e *Engine) ListPayments(ctx context.Context, scope payloom.Scope, f payloom.PaymentFilter) (*payloom.List[*payloom.Payment], error) {
	clampLimit(&f.ListParams)
	var data []*payloom.Payment
	var more bool
	err := e.view(ctx, "list_payments", func(tx payloom.Tx) error {
		var err error
		data, more, err = tx.ListPayments(ctx, scope, f)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, p := range data {
		e.present(p)
	}
	return newList(data, more), nil
}

// ListRefunds implements payloom.PaymentService.
func (e *Engine) ListRefunds(ctx context.Context, scope payloom.Scope, f payloom.RefundFilter) (*payloom.List[*payloom.Refund], error) {
	clampLimit(&f.ListParams)
	var data []*payloom.Refund
	var more bool
	err := e.view(ctx, "list_refunds", func(tx payloom.Tx) error {
		var err error
		data, more, err = tx.ListRefunds(ctx, scope, f)
		return err
	})
	if err != nil {
		return nil, err
	}
	return newList(data, more), nil
}

// Event implements payloom.PaymentService.
func (e *Engine) Event(ctx context.Context, scope payloom.Scope, id string) (*payloom.Event, error) {
	var ev *payloom.Event
	err := e.view(ctx, "get_event", func(tx payloom.Tx) error {
		var err error
		ev, err = tx.GetEvent(ctx, scope, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return ev, nil
}

// ListEvents implements payloom.PaymentService.
func (e *Engine) ListEvents(ctx context.Context, scope payloom.Scope, f payloom.EventFilter) (*payloom.List[*payloom.Event], error) {
	clampLimit(&f.ListParams)
	var data []*payloom.Event
	var more bool
	err := e.view(ctx, "list_events", func(tx payloom.Tx) error {
		var err error
		data, more, err = tx.ListEvents(ctx, scope, f)
		return err
	})
	if err != nil {
		return nil, err
	}
	return newList(data, more), nil
}
