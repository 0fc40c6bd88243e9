package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/payloom/payloom"
)

// Processor accounts and routing rules.

const processorAccountCols = `id, merchant_id, livemode, name, connector, enabled, credential_keys, credentials, key_id,
	deleted_at, created_at, updated_at, version`

func (t *tx) CreateProcessorAccount(ctx context.Context, a *payloom.ProcessorAccount) error {
	var e enc
	keys, sealed := a.CredentialKeys, a.Ciphertext
	if keys == nil {
		keys = []string{}
	}
	if sealed == nil {
		sealed = []byte{}
	}
	args := []any{a.ID, a.MerchantID, a.Livemode, a.Name, a.Connector, a.Enabled, e.json(keys, false), sealed, a.KeyID,
		e.timePtr(a.DeletedAt), e.timeNotNull("processor account created_at", a.CreatedAt),
		e.timeNotNull("processor account updated_at", a.UpdatedAt), a.Version}
	if e.err != nil {
		return e.err
	}
	return t.insertNew(ctx, "processor account", `INSERT INTO processor_accounts (`+processorAccountCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, args...)
}

func (t *tx) GetProcessorAccount(ctx context.Context, scope payloom.Scope, id string) (*payloom.ProcessorAccount, error) {
	return scanProcessorAccount(t.tx.QueryRowContext(t.c(ctx), `SELECT `+processorAccountCols+` FROM processor_accounts
		WHERE id = ? AND merchant_id = ? AND livemode = ?`, id, scope.MerchantID, scope.Livemode))
}

func (t *tx) ListProcessorAccounts(ctx context.Context, scope payloom.Scope) ([]*payloom.ProcessorAccount, error) {
	rows, err := t.tx.QueryContext(t.c(ctx), `SELECT `+processorAccountCols+` FROM processor_accounts
		WHERE merchant_id = ? AND livemode = ? ORDER BY created_at, id`, scope.MerchantID, scope.Livemode)
	if err != nil {
		return nil, dbError("processor account", err)
	}
	return collect(rows, "processor account", scanProcessorAccount)
}

func (t *tx) UpdateProcessorAccount(ctx context.Context, a *payloom.ProcessorAccount) error {
	var e enc
	keys, sealed := a.CredentialKeys, a.Ciphertext
	if keys == nil {
		keys = []string{}
	}
	if sealed == nil {
		sealed = []byte{}
	}
	args := []any{a.Enabled, e.json(keys, false), sealed, a.KeyID, e.timePtr(a.DeletedAt),
		e.timeNotNull("processor account updated_at", a.UpdatedAt), a.ID, a.MerchantID, a.Livemode, a.Version}
	if e.err != nil {
		return e.err
	}
	res, err := t.exec(ctx, "processor account", `UPDATE processor_accounts SET enabled = ?, credential_keys = ?,
		credentials = ?, key_id = ?, deleted_at = ?, updated_at = ?, version = version + 1
		WHERE id = ? AND merchant_id = ? AND livemode = ? AND version = ?`, args...)
	if err != nil {
		return err
	}
	if err := t.versionChecked(ctx, "processor account", "processor_accounts", res, a.ID, a.MerchantID, a.Livemode); err != nil {
		return err
	}
	a.Version++
	return nil
}

func scanProcessorAccount(row scanner) (*payloom.ProcessorAccount, error) {
	var a payloom.ProcessorAccount
	var keys string
	var deleted, created, updated sql.NullInt64
	if err := row.Scan(&a.ID, &a.MerchantID, &a.Livemode, &a.Name, &a.Connector, &a.Enabled, &keys, &a.Ciphertext,
		&a.KeyID, &deleted, &created, &updated, &a.Version); err != nil {
		return nil, dbError("processor account", err)
	}
	a.Object = "processor_account"
	a.DeletedAt = decTimePtr(deleted)
	a.CreatedAt = decTime(created)
	a.UpdatedAt = decTime(updated)
	a.CredentialKeys = []string{}
	if err := json.Unmarshal([]byte(keys), &a.CredentialKeys); err != nil {
		return nil, scanErr("processor account", fmt.Errorf("decode credential_keys: %w", err))
	}
	if a.Ciphertext == nil {
		a.Ciphertext = []byte{}
	}
	return &a, nil
}

func (t *tx) GetRouting(ctx context.Context, scope payloom.Scope) (*payloom.Routing, error) {
	r := payloom.Routing{MerchantID: scope.MerchantID, Livemode: scope.Livemode}
	var rules string
	var updated sql.NullInt64
	err := t.tx.QueryRowContext(t.c(ctx), `SELECT rules, updated_at, version FROM routing_rules
		WHERE merchant_id = ? AND livemode = ?`, scope.MerchantID, scope.Livemode).Scan(&rules, &updated, &r.Version)
	if err != nil {
		return nil, dbError("routing", err)
	}
	r.UpdatedAt = decTime(updated)
	r.Rules = []payloom.RoutingRule{}
	if err := json.Unmarshal([]byte(rules), &r.Rules); err != nil {
		return nil, scanErr("routing", fmt.Errorf("decode rules: %w", err))
	}
	return &r, nil
}

func (t *tx) PutRouting(ctx context.Context, r *payloom.Routing) error {
	var e enc
	rules := r.Rules
	if rules == nil {
		rules = []payloom.RoutingRule{}
	}
	args := []any{e.json(rules, false), e.timeNotNull("routing updated_at", r.UpdatedAt)}
	if e.err != nil {
		return e.err
	}
	if r.Version == 0 {
		if err := t.insertNew(ctx, "routing", `INSERT INTO routing_rules (merchant_id, livemode, rules, updated_at, version)
			VALUES (?, ?, ?, ?, 1) ON CONFLICT DO NOTHING`, append([]any{r.MerchantID, r.Livemode}, args...)...); err != nil {
			if payloom.IsCode(err, payloom.CodeAlreadyExists) {
				return &payloom.Error{Code: payloom.CodeConflict, Message: "routing was changed by another request"}
			}
			return err
		}
		r.Version = 1
		return nil
	}
	res, err := t.exec(ctx, "routing", `UPDATE routing_rules SET rules = ?, updated_at = ?, version = version + 1
		WHERE merchant_id = ? AND livemode = ? AND version = ?`, append(args, r.MerchantID, r.Livemode, r.Version)...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return dbError("routing", err)
	}
	if n != 1 {
		return &payloom.Error{Code: payloom.CodeConflict, Message: "routing was changed by another request"}
	}
	r.Version++
	return nil
}
