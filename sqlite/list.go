package sqlite

import (
	"context"
	"database/sql"
	"slices"
	"strings"

	"github.com/payloom/payloom"
)

const (
	defaultLimit = 10
	maxLimit     = 100
)

// list pages through table in scope, newest first by ID (IDs are
// k-sortable). extra are further conditions with their args.
//
// StartingAfter reads older rows (id < cursor) in descending order.
// EndingBefore must return the rows just newer than its cursor, so it reads
// ascending from the cursor and reverses the page. One extra row is read
// to learn whether more exist in the cursor's direction.
func list[T any](ctx context.Context, t *tx, kind, table, cols string, scope payloom.Scope, p payloom.ListParams,
	extra []string, extraArgs []any, scan func(scanner) (T, error)) ([]T, bool, error) {
	if p.StartingAfter != "" && p.EndingBefore != "" {
		return nil, false, payloom.Errorf(payloom.CodeValidation, "starting_after and ending_before cannot be combined")
	}
	where := append([]string{"merchant_id = ?", "livemode = ?"}, extra...)
	args := append([]any{scope.MerchantID, scope.Livemode}, extraArgs...)
	return listWhere(ctx, t, kind, table, cols, p, where, args, scan)
}

// listWhere is list without the scope: where (not empty) holds every
// condition. Only the audit log, which the command line reads across
// merchants, uses it directly.
func listWhere[T any](ctx context.Context, t *tx, kind, table, cols string, p payloom.ListParams,
	where []string, args []any, scan func(scanner) (T, error)) ([]T, bool, error) {
	if p.StartingAfter != "" && p.EndingBefore != "" {
		return nil, false, payloom.Errorf(payloom.CodeValidation, "starting_after and ending_before cannot be combined")
	}
	limit := p.Limit
	if limit <= 0 {
		limit = defaultLimit
	}
	limit = min(limit, maxLimit)

	var e enc
	if len(where) == 0 {
		where = []string{"1 = 1"}
	}
	if p.CreatedGTE != nil {
		where = append(where, "created_at >= ?")
		args = append(args, e.time(*p.CreatedGTE))
	}
	if p.CreatedLTE != nil {
		where = append(where, "created_at <= ?")
		args = append(args, e.time(*p.CreatedLTE))
	}
	if e.err != nil {
		return nil, false, e.err
	}
	order := "DESC"
	switch {
	case p.StartingAfter != "":
		where = append(where, "id < ?")
		args = append(args, p.StartingAfter)
	case p.EndingBefore != "":
		where = append(where, "id > ?")
		args = append(args, p.EndingBefore)
		order = "ASC"
	}
	args = append(args, limit+1)
	q := `SELECT ` + cols + ` FROM ` + table + ` WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY id ` + order + ` LIMIT ?`
	rows, err := t.tx.QueryContext(t.c(ctx), q, args...)
	if err != nil {
		return nil, false, dbError(kind, err)
	}
	out, err := collect(rows, kind, scan)
	if err != nil {
		return nil, false, err
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	if order == "ASC" {
		slices.Reverse(out)
	}
	return out, more, nil
}

// collect scans every row and closes rows. The result is non-nil.
func collect[T any](rows *sql.Rows, kind string, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(kind, err)
	}
	return out, nil
}
