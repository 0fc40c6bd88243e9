package sandbox

import (
	"context"

	"github.com/payloom/payloom"
)

// 3-D Secure in the sandbox.
//
// CardRequires3DS answers requires_action with a RedirectURL to the
// sandbox's challenge page (RedirectPathPrefix + transaction ID, served by
// ChallengeHandler). The challenge is a ledger fact written in the same
// transaction as the authorization; the shopper's answer (CompleteChallenge)
// is another, keyed by the transaction, so the first answer wins and a
// second one changes nothing. From then on the authorization's answer, as
// Lookup reports it and as Authorize replays it under the same idempotency
// key, is the challenge's outcome: approved (and captured if the request
// asked for it), or declined with authentication_failed. An approval is
// recorded like any other, so capture, void and refund work on it.

// Ledger facts of a challenge.
const (
	// kindChallenge: the open challenge of a transaction.
	kindChallenge = "sandbox_challenge"
	// kindChallengeResult: the authorization's final answer, once the
	// shopper has answered the challenge.
	kindChallengeResult = "sandbox_challenge_result"
)

// Outcomes of a challenge.
const (
	ChallengeApproved = "approved"
	ChallengeFailed   = "failed"
)

// rawAuthenticationFailed is the raw code of a failed challenge.
const rawAuthenticationFailed = "N7A"

// challengeRecord is the kindChallenge fact. It holds no card data.
type challengeRecord struct {
	// AuthKey is the idempotency key the authorization was sent with.
	AuthKey   string `json:"auth_key"`
	Capture   bool   `json:"capture"`
	ReturnURL string `json:"return_url,omitempty"`
}

// Challenge is a 3-D Secure challenge as its page shows it.
type Challenge struct {
	TransactionID string
	Amount        int64
	Currency      payloom.Currency
	// ReturnURL is where the shopper goes after answering ("" if the
	// authorization request gave none).
	ReturnURL string
	// Outcome is "" while the challenge is open, then ChallengeApproved or
	// ChallengeFailed.
	Outcome string
}

// openChallenge records the challenge of an authorization that answered
// requires_action, in the authorization's transaction.
func openChallenge(ctx context.Context, tx payloom.Tx, op *payloom.SandboxOperation, req *payloom.AuthorizeRequest) error {
	return create(ctx, tx, &payloom.SandboxOperation{
		Key: factKey(kindChallenge, op.TransactionID), Kind: kindChallenge,
		TransactionID: op.TransactionID, Amount: op.Amount, Currency: op.Currency,
		Result:    mustJSON(challengeRecord{AuthKey: op.Key, Capture: req.Capture, ReturnURL: req.ReturnURL}),
		CreatedAt: op.CreatedAt,
	})
}

// settled returns the final answer of an authorization: rec itself, unless
// it required a challenge that the shopper has answered since.
func settled(ctx context.Context, tx payloom.Tx, rec *authRecord) (*authRecord, error) {
	if rec.Status != payloom.AuthorizationRequiresAction {
		return rec, nil
	}
	op, err := tx.GetSandboxOperation(ctx, factKey(kindChallengeResult, rec.TransactionID))
	if payloom.IsCode(err, payloom.CodeNotFound) {
		return rec, nil
	}
	if err != nil {
		return nil, err
	}
	final := new(authRecord)
	if err := decode(op, final); err != nil {
		return nil, err
	}
	return final, nil
}

// Challenge returns the challenge of a transaction. CodeNotFound when the
// transaction has none.
func (p *Processor) Challenge(ctx context.Context, txnID string) (*Challenge, error) {
	var out *Challenge
	err := p.store.View(ctx, func(tx payloom.Tx) error {
		var err error
		out, err = readChallenge(ctx, tx, txnID)
		return err
	})
	return out, err
}

func readChallenge(ctx context.Context, tx payloom.Tx, txnID string) (*Challenge, error) {
	op, err := tx.GetSandboxOperation(ctx, factKey(kindChallenge, txnID))
	if payloom.IsCode(err, payloom.CodeNotFound) || (err == nil && op.Kind != kindChallenge) {
		return nil, payloom.Errorf(payloom.CodeNotFound, "no such 3-D Secure challenge")
	}
	if err != nil {
		return nil, err
	}
	var rec challengeRecord
	if err := decode(op, &rec); err != nil {
		return nil, err
	}
	c := &Challenge{TransactionID: txnID, Amount: op.Amount, Currency: op.Currency, ReturnURL: rec.ReturnURL}
	res, err := tx.GetSandboxOperation(ctx, factKey(kindChallengeResult, txnID))
	switch {
	case payloom.IsCode(err, payloom.CodeNotFound):
	case err != nil:
		return nil, err
	default:
		var final authRecord
		if err := decode(res, &final); err != nil {
			return nil, err
		}
		c.Outcome = ChallengeFailed
		if final.Status == payloom.AuthorizationApproved {
			c.Outcome = ChallengeApproved
		}
	}
	return c, nil
}

// CompleteChallenge records the shopper's answer to a challenge: approve or
// fail. The first answer wins; the returned Challenge carries the outcome
// that stands. CodeNotFound when the transaction has no challenge.
func (p *Processor) CompleteChallenge(ctx context.Context, txnID string, approve bool) (*Challenge, error) {
	var out *Challenge
	err := p.update(ctx, func(tx payloom.Tx) error {
		c, err := readChallenge(ctx, tx, txnID)
		if err != nil || c.Outcome != "" {
			out = c
			return err
		}
		chOp, err := tx.GetSandboxOperation(ctx, factKey(kindChallenge, txnID))
		if err != nil {
			return err
		}
		var ch challengeRecord
		if err := decode(chOp, &ch); err != nil {
			return err
		}
		authOp, err := tx.GetSandboxOperation(ctx, ch.AuthKey)
		if err != nil {
			return err
		}
		final := new(authRecord)
		if err := decode(authOp, final); err != nil {
			return err
		}
		final.RedirectURL = ""
		if approve {
			final.Status = payloom.AuthorizationApproved
			final.FailureCode, final.DeclineCode, final.DeclineClass = "", "", ""
			final.AuthorizationCode = randomString(6, "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789")
			final.AVSResult, final.CVVResult = "Y", "M"
			final.NetworkTransactionID = randomString(1, "123456789") + randomString(14, "0123456789")
			final.RawCode, final.Message = rawApproved, "Approved"
			final.Captured = ch.Capture
			c.Outcome = ChallengeApproved
		} else {
			final.Status = payloom.AuthorizationDeclined
			final.FailureCode = payloom.FailureCardDeclined
			final.DeclineCode = payloom.DeclineAuthenticationFail
			final.DeclineClass = payloom.DeclineHard
			final.RawCode = rawAuthenticationFailed
			final.Message = "The cardholder did not pass 3-D Secure authentication."
			c.Outcome = ChallengeFailed
		}
		now := p.opts.Clock().UTC()
		result := &payloom.SandboxOperation{
			Key: factKey(kindChallengeResult, txnID), Kind: kindChallengeResult, TransactionID: txnID,
			Amount: authOp.Amount, Currency: authOp.Currency, Result: mustJSON(final), CreatedAt: now,
		}
		if err := create(ctx, tx, result); err != nil {
			return err
		}
		if approve {
			approval := *result
			approval.Key, approval.Kind = factKey(kindApproval, txnID), kindApproval
			if err := create(ctx, tx, &approval); err != nil {
				return err
			}
		}
		out = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
