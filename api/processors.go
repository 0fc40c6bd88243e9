package api

import (
	"context"
	"math"
	"strconv"
	"time"

	"github.com/payloom/payloom"
)

// Processor accounts and routing rules. A processor account's credentials
// arrive in the create and update bodies only and are never rendered: the
// service seals them, and payloom.ProcessorAccount shows only which keys
// are set. Request bodies are never logged.

type processorAccountCreateBody struct {
	MerchantID  *string                    `json:"merchant_id"`
	Name        *string                    `json:"name"`
	Connector   *string                    `json:"connector"`
	Credentials *map[string]payloom.Secret `json:"credentials"`
	Enabled     *bool                      `json:"enabled"`
}

type processorAccountUpdateBody struct {
	MerchantID  *string                    `json:"merchant_id"`
	Credentials *map[string]payloom.Secret `json:"credentials"`
	Enabled     *bool                      `json:"enabled"`
}

type routingPutBody struct {
	MerchantID *string            `json:"merchant_id"`
	Rules      *[]routingRuleBody `json:"rules"`
}

type routingRuleBody struct {
	Conditions *routingConditionsBody `json:"conditions"`
	Processors *[]string              `json:"processors"`
	Split      *[]routingSplitBody    `json:"split"`
}

type routingSplitBody struct {
	Processor *string `json:"processor"`
	Weight    *int64  `json:"weight"`
}

type routingConditionsBody struct {
	PaymentMethodType *string            `json:"payment_method_type"`
	Currency          *string            `json:"currency"`
	AmountGTE         *int64             `json:"amount_gte"`
	AmountLTE         *int64             `json:"amount_lte"`
	CardBrand         *string            `json:"card_brand"`
	CardCountry       *string            `json:"card_country"`
	Metadata          *map[string]string `json:"metadata"`
}

// routingObject is the API's rendering of a scope's rules.
type routingObject struct {
	Object    string              `json:"object"` // "routing"
	Livemode  bool                `json:"livemode"`
	Rules     []routingRuleObject `json:"rules"`
	UpdatedAt *time.Time          `json:"updated_at"`
}

// routingRuleObject is a rule as the API shows it: with exactly one of
// processors and split, as RoutingRule's schema says. A rule without a
// split shows processors as an array (never null, never absent, even
// empty), so a client can always tell which kind of rule it reads; the
// shape is the API's, not left to payloom.RoutingRule's JSON tags.
type routingRuleObject struct {
	Conditions payloom.RoutingConditions `json:"conditions"`
	Processors *[]string                 `json:"processors,omitempty"`
	Split      []payloom.RoutingSplit    `json:"split,omitempty"`
}

func renderRouting(r *payloom.Routing) *routingObject {
	out := &routingObject{Object: "routing", Livemode: r.Livemode, Rules: make([]routingRuleObject, len(r.Rules))}
	if !r.UpdatedAt.IsZero() {
		t := r.UpdatedAt
		out.UpdatedAt = &t
	}
	for i, rule := range r.Rules {
		o := routingRuleObject{Conditions: rule.Conditions}
		if len(rule.Split) > 0 {
			o.Split = rule.Split
		} else {
			ps := nonNil(rule.Processors)
			o.Processors = &ps
		}
		out.Rules[i] = o
	}
	return out
}

func (s *server) processorService() (payloom.ProcessorAccountService, error) {
	if s.processors == nil {
		return nil, &payloom.Error{Code: payloom.CodeUnavailable, Message: "processor accounts are not configured on this server"}
	}
	return s.processors, nil
}

func (s *server) createProcessorAccount(c *call, tree any) (*writeOp, error) {
	var b processorAccountCreateBody
	if err := decodeInto(tree, &b); err != nil {
		return nil, err
	}
	merchantID, err := decodeMerchantID(b.MerchantID)
	if err != nil {
		return nil, err
	}
	switch {
	case b.Name == nil || *b.Name == "":
		return nil, required("name")
	case b.Connector == nil || *b.Connector == "":
		return nil, required("connector")
	case b.Credentials == nil:
		return nil, required("credentials")
	}
	req := &payloom.ProcessorAccountCreate{Name: *b.Name, Connector: *b.Connector, Credentials: *b.Credentials, Enabled: b.Enabled}
	return &writeOp{merchantID: merchantID, exec: func(ctx context.Context, _ string) (any, error) {
		ps, err := s.processorService()
		if err != nil {
			return nil, err
		}
		return ps.CreateProcessorAccount(ctx, c.scope, req)
	}}, nil
}

func (s *server) updateProcessorAccount(c *call, tree any) (*writeOp, error) {
	var b processorAccountUpdateBody
	if err := decodeInto(tree, &b); err != nil {
		return nil, err
	}
	merchantID, err := decodeMerchantID(b.MerchantID)
	if err != nil {
		return nil, err
	}
	req := &payloom.ProcessorAccountUpdate{Enabled: b.Enabled}
	if b.Credentials != nil {
		req.Credentials = *b.Credentials
		if req.Credentials == nil {
			req.Credentials = map[string]payloom.Secret{}
		}
	}
	id := c.r.PathValue("id")
	return &writeOp{merchantID: merchantID, exec: func(ctx context.Context, _ string) (any, error) {
		ps, err := s.processorService()
		if err != nil {
			return nil, err
		}
		return ps.UpdateProcessorAccount(ctx, c.scope, id, req)
	}}, nil
}

func (s *server) deleteProcessorAccount(c *call, tree any) (*writeOp, error) {
	merchantID, err := decodeMerchantOnly(tree)
	if err != nil {
		return nil, err
	}
	id := c.r.PathValue("id")
	return &writeOp{merchantID: merchantID, exec: func(ctx context.Context, _ string) (any, error) {
		ps, err := s.processorService()
		if err != nil {
			return nil, err
		}
		if err := ps.DeleteProcessorAccount(ctx, c.scope, id); err != nil {
			return nil, err
		}
		return &deletedObject{ID: id, Object: "processor_account", Deleted: true}, nil
	}}, nil
}

func (s *server) retrieveProcessorAccount(c *call) (any, error) {
	ps, err := s.processorService()
	if err != nil {
		return nil, err
	}
	return ps.ProcessorAccount(c.ctx(), c.scope, c.r.PathValue("id"))
}

func (s *server) listProcessorAccounts(c *call) (any, error) {
	ps, err := s.processorService()
	if err != nil {
		return nil, err
	}
	return ps.ListProcessorAccounts(c.ctx(), c.scope)
}

func (s *server) processorAccountHealth(c *call) (any, error) {
	ps, err := s.processorService()
	if err != nil {
		return nil, err
	}
	return ps.ProcessorAccountHealth(c.ctx(), c.scope, c.r.PathValue("id"))
}

func (s *server) retrieveRouting(c *call) (any, error) {
	ps, err := s.processorService()
	if err != nil {
		return nil, err
	}
	r, err := ps.Routing(c.ctx(), c.scope)
	if err != nil {
		return nil, err
	}
	return renderRouting(r), nil
}

func (s *server) putRouting(c *call, tree any) (*writeOp, error) {
	var b routingPutBody
	if err := decodeInto(tree, &b); err != nil {
		return nil, err
	}
	merchantID, err := decodeMerchantID(b.MerchantID)
	if err != nil {
		return nil, err
	}
	if b.Rules == nil {
		return nil, required("rules")
	}
	rules := make([]payloom.RoutingRule, 0, len(*b.Rules))
	for i, rb := range *b.Rules {
		var r payloom.RoutingRule
		if rb.Processors != nil {
			r.Processors = *rb.Processors
		}
		if rb.Split != nil {
			for j, e := range *rb.Split {
				p := "rules[" + strconv.Itoa(i) + "][split][" + strconv.Itoa(j) + "]"
				switch {
				case e.Processor == nil:
					return nil, required(p + "[processor]")
				case e.Weight == nil:
					return nil, required(p + "[weight]")
				case *e.Weight < math.MinInt32 || *e.Weight > math.MaxInt32:
					// The service checks the bounds; this only keeps
					// the value within an int on every platform.
					return nil, payloom.FieldError(p+"[weight]", "rule %d: weight is out of range", i)
				}
				r.Split = append(r.Split, payloom.RoutingSplit{Processor: *e.Processor, Weight: int(*e.Weight)})
			}
		}
		if c := rb.Conditions; c != nil {
			r.Conditions = payloom.RoutingConditions{PaymentMethodType: str(c.PaymentMethodType),
				Currency: payloom.Currency(str(c.Currency)), AmountGTE: c.AmountGTE, AmountLTE: c.AmountLTE,
				CardBrand: str(c.CardBrand), CardCountry: str(c.CardCountry)}
			if c.Metadata != nil {
				r.Conditions.Metadata = *c.Metadata
			}
		}
		rules = append(rules, r)
	}
	return &writeOp{merchantID: merchantID, exec: func(ctx context.Context, _ string) (any, error) {
		ps, err := s.processorService()
		if err != nil {
			return nil, err
		}
		r, err := ps.PutRouting(ctx, c.scope, rules)
		if err != nil {
			return nil, err
		}
		return renderRouting(r), nil
	}}, nil
}
