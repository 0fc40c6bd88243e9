package accounts

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/internal/bin"
)

// Limits of a scope's routing rules. A split has 2 to MaxRuleProcessors
// accounts, each weighing 1 to MaxSplitWeight.
const (
	MaxRules          = 100
	MaxRuleProcessors = 10
	MaxSplitWeight    = 10000
	maxRuleMetadata   = 20
)

var knownBrands = []payloom.CardBrand{payloom.CardBrandVisa, payloom.CardBrandMastercard, payloom.CardBrandAmex,
	payloom.CardBrandDiscover, payloom.CardBrandDiners, payloom.CardBrandJCB, payloom.CardBrandUnionPay,
	payloom.CardBrandElo, payloom.CardBrandHipercard}

func (s *Service) Routing(ctx context.Context, scope payloom.Scope) (*payloom.Routing, error) {
	var r *payloom.Routing
	err := s.store.View(ctx, func(tx payloom.Tx) error {
		var err error
		r, err = tx.GetRouting(ctx, scope)
		return err
	})
	if payloom.IsCode(err, payloom.CodeNotFound) {
		return &payloom.Routing{MerchantID: scope.MerchantID, Livemode: scope.Livemode, Rules: []payloom.RoutingRule{}}, nil
	}
	return r, err
}

func (s *Service) PutRouting(ctx context.Context, scope payloom.Scope, rules []payloom.RoutingRule) (*payloom.Routing, error) {
	if len(rules) > MaxRules {
		return nil, payloom.FieldError("rules", "at most %d rules", MaxRules)
	}
	if rules == nil {
		rules = []payloom.RoutingRule{}
	}
	var out *payloom.Routing
	err := s.store.Update(ctx, func(tx payloom.Tx) error {
		accts, err := tx.ListProcessorAccounts(ctx, scope)
		if err != nil {
			return err
		}
		if err := checkRules(rules, accts); err != nil {
			return err
		}
		r, err := tx.GetRouting(ctx, scope)
		switch {
		case payloom.IsCode(err, payloom.CodeNotFound):
			r = &payloom.Routing{MerchantID: scope.MerchantID, Livemode: scope.Livemode}
		case err != nil:
			return err
		}
		r.Rules, r.UpdatedAt = rules, s.now()
		if err := tx.PutRouting(ctx, r); err != nil {
			return err
		}
		out = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// checkRules validates rules against the scope's accounts; the error's
// param names the offending rule and field, e.g. rules[2][processors][0].
func checkRules(rules []payloom.RoutingRule, accts []*payloom.ProcessorAccount) error {
	live := map[string]bool{}
	for _, a := range accts {
		if a.DeletedAt == nil {
			live[a.ID] = true
		}
	}
	for i, r := range rules {
		p := "rules[" + strconv.Itoa(i) + "]"
		c := r.Conditions
		if c.PaymentMethodType != "" && c.PaymentMethodType != string(payloom.PaymentMethodTypeCard) {
			return payloom.FieldError(p+"[conditions][payment_method_type]", "rule %d: payment_method_type must be card", i)
		}
		if c.Currency != "" {
			if cur, err := payloom.ParseCurrency(string(c.Currency)); err != nil || cur != c.Currency {
				return payloom.FieldError(p+"[conditions][currency]", "rule %d: currency must be an upper-case ISO 4217 code Payloom knows", i)
			}
		}
		if c.AmountGTE != nil && *c.AmountGTE < 0 {
			return payloom.FieldError(p+"[conditions][amount_gte]", "rule %d: amount_gte must not be negative", i)
		}
		if c.AmountLTE != nil && *c.AmountLTE < 0 {
			return payloom.FieldError(p+"[conditions][amount_lte]", "rule %d: amount_lte must not be negative", i)
		}
		if c.AmountGTE != nil && c.AmountLTE != nil && *c.AmountLTE < *c.AmountGTE {
			return payloom.FieldError(p+"[conditions][amount_lte]", "rule %d: amount_lte is below amount_gte: no payment matches", i)
		}
		if c.CardBrand != "" && !slices.Contains(knownBrands, payloom.CardBrand(c.CardBrand)) {
			return payloom.FieldError(p+"[conditions][card_brand]", "rule %d: unknown card_brand", i)
		}
		if c.CardCountry != "" && !bin.IsCountry(c.CardCountry) {
			return payloom.FieldError(p+"[conditions][card_country]",
				"rule %d: card_country must be an upper-case ISO 3166-1 alpha-2 country code", i)
		}
		if len(c.Metadata) > maxRuleMetadata {
			return payloom.FieldError(p+"[conditions][metadata]", "rule %d: at most %d metadata conditions", i, maxRuleMetadata)
		}
		switch {
		case len(r.Processors) > 0 && len(r.Split) > 0:
			return payloom.FieldError(p+"[split]", "rule %d: give either processors or split, not both", i)
		case len(r.Split) > 0:
			if err := checkSplit(i, p, r.Split, live); err != nil {
				return err
			}
			continue
		case len(r.Processors) == 0:
			return payloom.FieldError(p+"[processors]", "rule %d: processors (or split) must list at least one processor account", i)
		case len(r.Processors) > MaxRuleProcessors:
			return payloom.FieldError(p+"[processors]", "rule %d: at most %d processors", i, MaxRuleProcessors)
		}
		for j, id := range r.Processors {
			pp := p + "[processors][" + strconv.Itoa(j) + "]"
			if !live[id] {
				return payloom.FieldError(pp, "rule %d: no processor account %q in this mode", i, id)
			}
			if slices.Index(r.Processors, id) != j {
				return payloom.FieldError(pp, "rule %d lists processor account %s twice", i, id)
			}
		}
	}
	return nil
}

// checkSplit validates rule i's split; p is the rule's param.
func checkSplit(i int, p string, split []payloom.RoutingSplit, live map[string]bool) error {
	if len(split) < 2 || len(split) > MaxRuleProcessors {
		return payloom.FieldError(p+"[split]", "rule %d: a split has 2 to %d processor accounts", i, MaxRuleProcessors)
	}
	for j, e := range split {
		pp := p + "[split][" + strconv.Itoa(j) + "]"
		if !live[e.Processor] {
			return payloom.FieldError(pp+"[processor]", "rule %d: no processor account %q in this mode", i, e.Processor)
		}
		if slices.IndexFunc(split, func(o payloom.RoutingSplit) bool { return o.Processor == e.Processor }) != j {
			return payloom.FieldError(pp+"[processor]", "rule %d splits to processor account %s twice", i, e.Processor)
		}
		if e.Weight < 1 || e.Weight > MaxSplitWeight {
			return payloom.FieldError(pp+"[weight]", "rule %d: a weight is an integer from 1 to %d", i, MaxSplitWeight)
		}
	}
	return nil
}

// ruleAccounts returns the accounts a rule names, whether as processors
// or in a split.
func ruleAccounts(r payloom.RoutingRule) []string {
	ids := slices.Clone(r.Processors)
	for _, e := range r.Split {
		ids = append(ids, e.Processor)
	}
	return ids
}

// splitOrder returns every account of a split in the order payment
// paymentID tries them, by weighted rendezvous hashing: each account gets
// the score -ln(u)/weight, u in (0,1) from SHA-256(paymentID|accountID),
// and the accounts go in ascending score. The lowest of such scores (an
// exponential race) falls on an account with probability its weight over
// the total, and the order after it is a weighted draw without
// replacement, so the fallbacks are spread by weight too.
//
// Each account's score depends only on the payment and that account, not
// on the others, nor on their order in the rule, nor on which are enabled:
// the caller skips disabled (or deleted) accounts from this order, and the
// others keep their relative order. Enabling, disabling or reordering
// accounts therefore never changes which account comes first for a
// payment whose first is another, nor its fallbacks' order; only payments
// whose first was the disabled account move, to their own second. Every
// routing of a payment (at creation, after a fallback, by the recovery
// pass) gives the same order, while distinct payment IDs, even
// consecutive ones, hash to independent draws.
func splitOrder(split []payloom.RoutingSplit, paymentID string) []string {
	type scored struct {
		id    string
		score float64
	}
	entries := make([]scored, len(split))
	for i, e := range split {
		entries[i] = scored{e.Processor, splitScore(paymentID, e.Processor, e.Weight)}
	}
	// Ties (equal scores: practically never) go by account ID, not by the
	// rule's order, which must not matter.
	slices.SortFunc(entries, func(a, b scored) int { return cmp.Or(cmp.Compare(a.score, b.score), cmp.Compare(a.id, b.id)) })
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.id
	}
	return out
}

// splitScore is -ln(u)/weight with u = (k+0.5)/2^52, k the first 52 bits
// of SHA-256(paymentID "|" accountID): u is exact, strictly inside (0,1),
// so the score is finite and positive; a higher weight makes it smaller,
// so the account comes first more often. (math.Log may differ in the last
// bit between architectures; two scores that close are a 1-in-2^50 event,
// so nodes of a mixed cluster agree on the order all but never.)
func splitScore(paymentID, accountID string, weight int) float64 {
	sum := sha256.Sum256([]byte(paymentID + "|" + accountID))
	k := binary.BigEndian.Uint64(sum[:8]) >> 12
	u := (float64(k) + 0.5) / (1 << 52)
	return -math.Log(u) / float64(weight)
}

// matches reports whether p meets every condition set in c.
func matches(c payloom.RoutingConditions, p *payloom.Payment) bool {
	if c.Currency != "" && c.Currency != p.Currency {
		return false
	}
	if c.AmountGTE != nil && p.Amount < *c.AmountGTE {
		return false
	}
	if c.AmountLTE != nil && p.Amount > *c.AmountLTE {
		return false
	}
	if c.PaymentMethodType != "" || c.CardBrand != "" || c.CardCountry != "" {
		pm := p.PaymentMethod
		if pm == nil {
			return false
		}
		if c.PaymentMethodType != "" && string(pm.Type) != c.PaymentMethodType {
			return false
		}
		if c.CardBrand != "" && (pm.Card == nil || string(pm.Card.Brand) != c.CardBrand) {
			return false
		}
		if c.CardCountry != "" && (pm.Card == nil || pm.Card.Country != c.CardCountry) {
			return false
		}
	}
	for k, v := range c.Metadata {
		if got, ok := p.Metadata[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// routeTimeout bounds the store reads of one routing decision (the Router
// interface takes no context).
const routeTimeout = 10 * time.Second

// Route implements engine.Router: the first matching rule's enabled
// accounts, in the rule's order or, for a split, in the payment's weighted
// order (see splitOrder) with the disabled ones skipped (only those: a
// rule is the merchant's statement of where such payments may go);
// without a matching rule, every enabled account in creation order. A
// scope without an enabled account routes to the default: the sandbox (or
// the --test-route route) in test mode, nothing in live mode.
func (s *Service) Route(scope payloom.Scope, p *payloom.Payment) ([]payloom.Processor, error) {
	ctx, cancel := context.WithTimeout(context.Background(), routeTimeout)
	defer cancel()
	var route func(*payloom.Payment) ([]payloom.Processor, error)
	err := s.store.View(ctx, func(tx payloom.Tx) error {
		var err error
		route, err = s.RouterIn(ctx, tx, scope)
		return err
	})
	if err != nil {
		return nil, err
	}
	return route(p)
}

// RouterIn implements engine.PreparedRouter: it reads the scope's accounts
// and rules in tx, a read the engine's payment path already holds, and
// returns Route as of that read.
func (s *Service) RouterIn(ctx context.Context, tx payloom.Tx, scope payloom.Scope) (func(*payloom.Payment) ([]payloom.Processor, error), error) {
	accts, err := tx.ListProcessorAccounts(ctx, scope)
	if err != nil {
		return nil, err
	}
	routing, err := tx.GetRouting(ctx, scope)
	if payloom.IsCode(err, payloom.CodeNotFound) {
		routing, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	return func(p *payloom.Payment) ([]payloom.Processor, error) {
		ctx, cancel := context.WithTimeout(context.Background(), routeTimeout)
		defer cancel()
		return s.routeBy(ctx, scope, accts, routing, p)
	}, nil
}

// routeBy is Route on the scope's accounts and routing rules.
func (s *Service) routeBy(ctx context.Context, scope payloom.Scope, accts []*payloom.ProcessorAccount, routing *payloom.Routing,
	p *payloom.Payment) ([]payloom.Processor, error) {
	byID := map[string]*payloom.ProcessorAccount{}
	var enabled []*payloom.ProcessorAccount
	for _, a := range accts {
		if a.DeletedAt == nil && a.Enabled {
			byID[a.ID] = a
			enabled = append(enabled, a)
		}
	}
	if len(enabled) == 0 {
		return s.defaultRoute(scope)
	}
	chosen := enabled
	if routing != nil {
		for i, r := range routing.Rules {
			if !matches(r.Conditions, p) {
				continue
			}
			chosen = nil
			ids := r.Processors
			if len(r.Split) > 0 {
				ids = splitOrder(r.Split, p.ID)
			}
			for _, id := range ids {
				if a := byID[id]; a != nil {
					chosen = append(chosen, a)
				}
			}
			if len(chosen) == 0 {
				return nil, fmt.Errorf("accounts: routing rule %d matches but every account it lists is disabled", i)
			}
			break
		}
	}
	out := make([]payloom.Processor, 0, len(chosen))
	for _, a := range chosen {
		proc, err := s.connector(ctx, a)
		if err != nil {
			// One account whose credentials do not open must not stop
			// the payment from going to the others.
			s.opts.Logger.Error("processor account unusable", "processor_account", a.ID, "err", err)
			continue
		}
		out = append(out, proc)
	}
	return out, nil
}

func (s *Service) defaultRoute(scope payloom.Scope) ([]payloom.Processor, error) {
	if scope.Livemode {
		return nil, errors.New("accounts: no enabled processor account in live mode")
	}
	if len(s.opts.TestRoute) > 0 {
		return s.opts.TestRoute, nil
	}
	if s.opts.Sandbox != nil {
		return []payloom.Processor{s.opts.Sandbox}, nil
	}
	return nil, errors.New("accounts: no processor in test mode")
}

// ProcessorNamed implements engine.Router: the built-in processors of
// test mode, else the scope's account of that name, disabled and deleted
// ones included, so that work an account took (captures, refunds,
// reconciliation) can always finish there.
func (s *Service) ProcessorNamed(scope payloom.Scope, name string) (payloom.Processor, error) {
	if !scope.Livemode {
		if s.opts.Sandbox != nil && s.opts.Sandbox.Name() == name {
			return s.opts.Sandbox, nil
		}
		for _, p := range s.opts.TestRoute {
			if p.Name() == name {
				return p, nil
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), routeTimeout)
	defer cancel()
	var accts []*payloom.ProcessorAccount
	if err := s.store.View(ctx, func(tx payloom.Tx) error {
		var err error
		accts, err = tx.ListProcessorAccounts(ctx, scope)
		return err
	}); err != nil {
		return nil, err
	}
	for _, a := range accts {
		if a.Name == name {
			return s.connector(ctx, a)
		}
	}
	return nil, fmt.Errorf("accounts: no processor named %q in %s mode", name, scope.Mode())
}

// Routable implements engine.RoutableChecker: a payment may name as its
// first processor only an enabled account, or in test mode the sandbox and
// the --test-route processors.
func (s *Service) Routable(scope payloom.Scope, name string) bool {
	if !scope.Livemode {
		if s.opts.Sandbox != nil && s.opts.Sandbox.Name() == name {
			return true
		}
		for _, p := range s.opts.TestRoute {
			if p.Name() == name {
				return true
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), routeTimeout)
	defer cancel()
	var accts []*payloom.ProcessorAccount
	if err := s.store.View(ctx, func(tx payloom.Tx) error {
		var err error
		accts, err = tx.ListProcessorAccounts(ctx, scope)
		return err
	}); err != nil {
		return false
	}
	return slices.ContainsFunc(accts, func(a *payloom.ProcessorAccount) bool {
		return a.Name == name && a.Enabled && a.DeletedAt == nil
	})
}

// connector returns the account's connector, built once per account
// version.
func (s *Service) connector(ctx context.Context, a *payloom.ProcessorAccount) (payloom.Processor, error) {
	s.mu.Lock()
	c, ok := s.cache[a.ID]
	s.mu.Unlock()
	if ok && c.version == a.Version {
		return c.proc, nil
	}
	creds, err := s.open(ctx, a)
	if err != nil {
		return nil, err
	}
	proc, err := s.connect(a.Connector, a.Name, creds)
	if err != nil {
		return nil, fmt.Errorf("accounts: connector of %s (%s): %w", a.ID, a.Connector, err)
	}
	if proc == nil || proc.Name() != a.Name {
		// Captures, refunds and reconciliation find the account by the
		// name its attempts recorded: a connector under another name
		// would strand them.
		return nil, fmt.Errorf("accounts: the %s connector of %s is not named %q", a.Connector, a.ID, a.Name)
	}
	s.mu.Lock()
	if c, ok := s.cache[a.ID]; !ok || c.version < a.Version {
		s.cache[a.ID] = cachedConnector{version: a.Version, proc: proc}
	}
	s.mu.Unlock()
	return proc, nil
}
