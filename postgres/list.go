package postgres

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/payloom/payloom"
)

const (
	defaultLimit = 10
	maxLimit     = 100
)

// args numbers query arguments: each arg call appends a value and returns
// its placeholder ($1, $2 ...).
type args []any

func (a *args) arg(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// list pages through table in scope, newest first by ID (IDs are
// k-sortable). where holds further conditions whose placeholders came from a.
//
// StartingAfter reads older rows (id < cursor) in descending order.
// EndingBefore must return the rows just newer than its cursor, so it reads
// ascending from the cursor and reverses the page. One extra row is read
// to learn whether more exist in the cursor's direction.
func list[T any](ctx context.Context, t *tx, kind, table, cols string, scope payloom.Scope, p payloom.ListParams,
	a args, where []string, scan func(rowScanner) (T, error)) ([]T, bool, error) {
	if p.StartingAfter != "" && p.EndingBefore != "" {
		return nil, false, payloom.Errorf(payloom.CodeValidation, "starting_after and ending_before cannot be combined")
	}
	where = append(where, "merchant_id = "+a.arg(scope.MerchantID), "livemode = "+a.arg(scope.Livemode))
	return listWhere(ctx, t, kind, table, cols, p, a, where, scan)
}

// listWhere is list without the scope: where holds every condition. Only
// the audit log, which the command line reads across merchants, uses it
// directly.
func listWhere[T any](ctx context.Context, t *tx, kind, table, cols string, p payloom.ListParams,
	a args, where []string, scan func(rowScanner) (T, error)) ([]T, bool, error) {
	if p.StartingAfter != "" && p.EndingBefore != "" {
		return nil, false, payloom.Errorf(payloom.CodeValidation, "starting_after and ending_before cannot be combined")
	}
	limit := p.Limit
	if limit <= 0 {
		limit = defaultLimit
	}
	limit = min(limit, maxLimit)
	if len(where) == 0 {
		where = []string{"true"}
	}
	// pgx sends times truncated to microseconds, as stored: a row created
	// at exactly a bound stays inside it.
	if p.CreatedGTE != nil {
		where = append(where, "created_at >= "+a.arg(*p.CreatedGTE))
	}
	if p.CreatedLTE != nil {
		where = append(where, "created_at <= "+a.arg(*p.CreatedLTE))
	}
	order := "DESC"
	switch {
	case p.StartingAfter != "":
		where = append(where, "id < "+a.arg(p.StartingAfter))
	case p.EndingBefore != "":
		where = append(where, "id > "+a.arg(p.EndingBefore))
		order = "ASC"
	}
	q := `SELECT ` + cols + ` FROM ` + table + ` WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY id ` + order + ` LIMIT ` + a.arg(limit+1)
	rows, err := t.tx.Query(ctx, q, a...)
	if err != nil {
		return nil, false, t.dbError(kind, err)
	}
	out, err := collect(t, rows, kind, scan)
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
func collect[T any](t *tx, rows pgx.Rows, kind string, scan func(rowScanner) (T, error)) ([]T, error) {
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
		return nil, t.dbError(kind, err)
	}
	return out, nil
}
