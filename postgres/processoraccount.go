package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5/pgtype"

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
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`, args...)
}

func (t *tx) GetProcessorAccount(ctx context.Context, scope payloom.Scope, id string) (*payloom.ProcessorAccount, error) {
	return t.scanProcessorAccount(t.tx.QueryRow(ctx, `SELECT `+processorAccountCols+` FROM processor_accounts
		WHERE id = $1 AND merchant_id = $2 AND livemode = $3`+t.forUpdate(), id, scope.MerchantID, scope.Livemode))
}

// listProcessorAccountsSQL reads the merchant's few accounts through the
// unique index on their names.
var listProcessorAccountsSQL = keyed(`SELECT `+processorAccountCols+` FROM processor_accounts
	WHERE merchant_id = $1 AND livemode = $2 ORDER BY created_at, id`, "processor_accounts_name")

func (t *tx) ListProcessorAccounts(ctx context.Context, scope payloom.Scope) ([]*payloom.ProcessorAccount, error) {
	rows, err := t.tx.Query(ctx, listProcessorAccountsSQL, t.prepared, scope.MerchantID, scope.Livemode)
	if err != nil {
		return nil, t.dbError("processor account", err)
	}
	return collect(t, rows, "processor account", t.scanProcessorAccount)
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
	res, err := t.exec(ctx, "processor account", `UPDATE processor_accounts SET enabled = $1, credential_keys = $2,
		credentials = $3, key_id = $4, deleted_at = $5, updated_at = $6, version = version + 1
		WHERE id = $7 AND merchant_id = $8 AND livemode = $9 AND version = $10`, args...)
	if err != nil {
		return err
	}
	if err := t.versionChecked(ctx, "processor account", "processor_accounts", res.RowsAffected(), a.ID, a.MerchantID, a.Livemode); err != nil {
		return err
	}
	a.Version++
	return nil
}

func (t *tx) scanProcessorAccount(row rowScanner) (*payloom.ProcessorAccount, error) {
	var a payloom.ProcessorAccount
	var keys []byte
	var deleted, created, updated pgtype.Timestamptz
	if err := row.Scan(&a.ID, &a.MerchantID, &a.Livemode, &a.Name, &a.Connector, &a.Enabled, &keys, &a.Ciphertext,
		&a.KeyID, &deleted, &created, &updated, &a.Version); err != nil {
		return nil, t.dbError("processor account", err)
	}
	a.Object = "processor_account"
	a.DeletedAt = decTimePtr(deleted)
	a.CreatedAt = decTime(created)
	a.UpdatedAt = decTime(updated)
	a.CredentialKeys = []string{}
	if err := json.Unmarshal(keys, &a.CredentialKeys); err != nil {
		return nil, scanErr("processor account", fmt.Errorf("decode credential_keys: %w", err))
	}
	if a.Ciphertext == nil {
		a.Ciphertext = []byte{}
	}
	return &a, nil
}

var getRoutingSQL = keyedLockable(`SELECT rules, updated_at, version FROM routing_rules
	WHERE merchant_id = $1 AND livemode = $2`, "routing_rules_pkey")

func (t *tx) GetRouting(ctx context.Context, scope payloom.Scope) (*payloom.Routing, error) {
	r := payloom.Routing{MerchantID: scope.MerchantID, Livemode: scope.Livemode}
	var rules []byte
	var updated pgtype.Timestamptz
	err := t.tx.QueryRow(ctx, t.pick(getRoutingSQL), t.prepared, scope.MerchantID, scope.Livemode).Scan(&rules, &updated, &r.Version)
	if err != nil {
		return nil, t.dbError("routing", err)
	}
	r.UpdatedAt = decTime(updated)
	r.Rules = []payloom.RoutingRule{}
	if err := json.Unmarshal(rules, &r.Rules); err != nil {
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
			VALUES ($1, $2, $3, $4, 1)`, append([]any{r.MerchantID, r.Livemode}, args...)...); err != nil {
			if payloom.IsCode(err, payloom.CodeAlreadyExists) {
				return &payloom.Error{Code: payloom.CodeConflict, Message: "routing was changed by another request"}
			}
			return err
		}
		r.Version = 1
		return nil
	}
	res, err := t.exec(ctx, "routing", `UPDATE routing_rules SET rules = $1, updated_at = $2, version = version + 1
		WHERE merchant_id = $3 AND livemode = $4 AND version = $5`, append(args, r.MerchantID, r.Livemode, r.Version)...)
	if err != nil {
		return err
	}
	if res.RowsAffected() != 1 {
		return &payloom.Error{Code: payloom.CodeConflict, Message: "routing was changed by another request"}
	}
	r.Version++
	return nil
}
