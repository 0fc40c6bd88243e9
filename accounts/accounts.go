// Package accounts manages merchants' processor accounts and routing rules,
// and routes payments over them: Service implements
// payloom.ProcessorAccountService for the API and engine.Router for the
// engine.
//
// Credentials are sealed by the vault under the merchant's data key before
// they reach the store, and opened only to build a connector. This package
// must never log, return or put in an error a credential value: responses
// carry only the names of the credential keys that are set.
//
// It knows no connector: New is given a ConnectorFunc that builds them
// (cmd/payloom wires the processor packages in), so that this package
// imports none of them.
package accounts

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/engine"
)

// Sealer encrypts credentials for a merchant (*vault.Vault).
type Sealer interface {
	Seal(ctx context.Context, scope payloom.Scope, aad string, plaintext []byte) ([]byte, string, error)
	Open(ctx context.Context, scope payloom.Scope, aad, keyID string, ciphertext []byte) ([]byte, error)
}

// ConnectorFunc builds the connector of a processor account: connector is
// the account's connector (payloom.ConnectorSimulator, ...), name the
// account's name, which the processor's Name must return (attempts find
// their processor by it), and creds the account's opened credentials,
// which have the keys the connector's credential spec requires. The
// connector it returns may keep the credentials it needs; it must never
// show them.
type ConnectorFunc func(connector, name string, creds map[string]payloom.Secret) (payloom.Processor, error)

// Options configure a Service.
type Options struct {
	// Sandbox is the test-mode processor of a merchant without accounts.
	Sandbox payloom.Processor
	// TestRoute, if set, replaces the sandbox as that route (the serve
	// command's --test-route).
	TestRoute []payloom.Processor
	// Health reads an account's circuit breaker ((*engine.Engine).ProcessorHealth).
	// It may be set after New with SetHealth, as the engine is built with
	// the Service as its router.
	Health func(scope payloom.Scope, name string) engine.ProcessorHealth
	Logger *slog.Logger
	Clock  payloom.Clock
}

// Service is the processor-account service and the router.
type Service struct {
	store   payloom.Store
	sealer  Sealer
	connect ConnectorFunc
	opts    Options

	mu     sync.Mutex
	health func(scope payloom.Scope, name string) engine.ProcessorHealth
	// cache holds one connector per account, rebuilt when the account's
	// version changes (new credentials, enabled flag).
	cache map[string]cachedConnector
}

type cachedConnector struct {
	version int64
	proc    payloom.Processor
}

var (
	_ payloom.ProcessorAccountService = (*Service)(nil)
	_ engine.Router                   = (*Service)(nil)
	_ engine.RoutableChecker          = (*Service)(nil)
)

// New returns a Service over the store, sealing credentials with sealer
// and building accounts' connectors with connect.
func New(store payloom.Store, sealer Sealer, connect ConnectorFunc, opts Options) *Service {
	if connect == nil {
		panic("accounts: New without a ConnectorFunc")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	return &Service{store: store, sealer: sealer, connect: connect, opts: opts, health: opts.Health,
		cache: map[string]cachedConnector{}}
}

// SetHealth sets where health is read from (see Options.Health).
func (s *Service) SetHealth(f func(scope payloom.Scope, name string) engine.ProcessorHealth) {
	s.mu.Lock()
	s.health = f
	s.mu.Unlock()
}

func (s *Service) now() time.Time { return s.opts.Clock().UTC().Truncate(time.Microsecond) }

// --- Credentials ---

// credentialSpec lists, per connector, the credential keys required and
// allowed.
var credentialSpec = map[string]struct{ required, optional []string }{
	payloom.ConnectorSimulator: {required: []string{"base_url"}},
	payloom.ConnectorStripe:    {required: []string{"api_key"}, optional: []string{"backend_url"}},
	payloom.ConnectorAdyen:     {required: []string{"api_key", "merchant_account", "base_url"}},
}

var urlKeys = map[string]bool{"base_url": true, "backend_url": true}

// checkCredentials validates credentials for a connector. Messages name
// keys, never values.
// In live mode URLs must be https: card data travels over them.
func checkCredentials(scope payloom.Scope, connector string, creds map[string]payloom.Secret) error {
	spec := credentialSpec[connector]
	for _, k := range sortedKeys(creds) {
		if !slices.Contains(spec.required, k) && !slices.Contains(spec.optional, k) {
			return payloom.FieldError("credentials["+k+"]", "the %s connector takes no credential %q; it takes %s",
				connector, k, strings.Join(append(slices.Clone(spec.required), spec.optional...), ", "))
		}
		v := creds[k].Reveal()
		if v == "" || len(v) > 2048 {
			return payloom.FieldError("credentials["+k+"]", "credentials[%s] must be 1 to 2048 characters", k)
		}
		if urlKeys[k] {
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
				return payloom.FieldError("credentials["+k+"]", "credentials[%s] must be an http(s) URL without user info", k)
			}
			if scope.Livemode && u.Scheme != "https" {
				return payloom.FieldError("credentials["+k+"]", "credentials[%s] must be an https URL in live mode", k)
			}
		}
	}
	for _, k := range spec.required {
		if _, ok := creds[k]; !ok {
			return payloom.FieldError("credentials["+k+"]", "the %s connector needs credentials[%s]", connector, k)
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (s *Service) seal(ctx context.Context, a *payloom.ProcessorAccount, creds map[string]payloom.Secret) error {
	plain := make(map[string]string, len(creds))
	for k, v := range creds {
		plain[k] = v.Reveal()
	}
	b, err := json.Marshal(plain)
	if err != nil {
		return err
	}
	ct, keyID, err := s.sealer.Seal(ctx, a.Scope(), a.CredentialsAAD(), b)
	clear(b)
	if err != nil {
		return &payloom.Error{Code: payloom.CodeInternal, Message: "the credentials cannot be encrypted", Err: err}
	}
	a.Ciphertext, a.KeyID, a.CredentialKeys = ct, keyID, sortedKeys(creds)
	return nil
}

func (s *Service) open(ctx context.Context, a *payloom.ProcessorAccount) (map[string]payloom.Secret, error) {
	b, err := s.sealer.Open(ctx, a.Scope(), a.CredentialsAAD(), a.KeyID, a.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("accounts: credentials of %s: %w", a.ID, err)
	}
	defer clear(b)
	// Secret decodes as a string and redacts itself when printed.
	var creds map[string]payloom.Secret
	if err := json.Unmarshal(b, &creds); err != nil {
		return nil, fmt.Errorf("accounts: credentials of %s do not decode", a.ID)
	}
	return creds, nil
}

// --- The service ---

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// reservedNames are processors that exist without an account.
var reservedNames = []string{"sandbox"}

func (s *Service) CreateProcessorAccount(ctx context.Context, scope payloom.Scope, req *payloom.ProcessorAccountCreate) (*payloom.ProcessorAccount, error) {
	if !namePattern.MatchString(req.Name) {
		return nil, payloom.FieldError("name", "name must be 1 to 64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	if slices.Contains(reservedNames, req.Name) {
		return nil, payloom.FieldError("name", "the name %q is reserved", req.Name)
	}
	if _, ok := credentialSpec[req.Connector]; !ok {
		return nil, payloom.FieldError("connector", "connector must be one of simulator, stripe, adyen")
	}
	if err := checkCredentials(scope, req.Connector, req.Credentials); err != nil {
		return nil, err
	}
	now := s.now()
	a := &payloom.ProcessorAccount{
		ID: payloom.NewID(payloom.PrefixProcessorAccount), Object: "processor_account",
		MerchantID: scope.MerchantID, Livemode: scope.Livemode, Name: req.Name, Connector: req.Connector,
		Enabled: req.Enabled == nil || *req.Enabled, CreatedAt: now, UpdatedAt: now,
	}
	if err := s.seal(ctx, a, req.Credentials); err != nil {
		return nil, err
	}
	err := s.store.Update(ctx, func(tx payloom.Tx) error { return tx.CreateProcessorAccount(ctx, a) })
	if payloom.IsCode(err, payloom.CodeAlreadyExists) {
		return nil, &payloom.Error{Code: payloom.CodeAlreadyExists, Param: "name",
			Message: "a processor account named " + req.Name + " exists (or existed) in this mode"}
	}
	if err != nil {
		return nil, err
	}
	return a, nil
}

func notFound() error { return payloom.Errorf(payloom.CodeNotFound, "no such processor account") }

// get reads a live (not deleted) account.
func (s *Service) get(ctx context.Context, tx payloom.Tx, scope payloom.Scope, id string) (*payloom.ProcessorAccount, error) {
	if !payloom.HasPrefix(id, payloom.PrefixProcessorAccount) {
		return nil, notFound()
	}
	a, err := tx.GetProcessorAccount(ctx, scope, id)
	if payloom.IsCode(err, payloom.CodeNotFound) || (err == nil && a.DeletedAt != nil) {
		return nil, notFound()
	}
	return a, err
}

func (s *Service) ProcessorAccount(ctx context.Context, scope payloom.Scope, id string) (*payloom.ProcessorAccount, error) {
	var a *payloom.ProcessorAccount
	err := s.store.View(ctx, func(tx payloom.Tx) error {
		var err error
		a, err = s.get(ctx, tx, scope, id)
		return err
	})
	return a, err
}

func (s *Service) ListProcessorAccounts(ctx context.Context, scope payloom.Scope) (*payloom.List[*payloom.ProcessorAccount], error) {
	var all []*payloom.ProcessorAccount
	if err := s.store.View(ctx, func(tx payloom.Tx) error {
		var err error
		all, err = tx.ListProcessorAccounts(ctx, scope)
		return err
	}); err != nil {
		return nil, err
	}
	out := &payloom.List[*payloom.ProcessorAccount]{Object: "list", Data: []*payloom.ProcessorAccount{}}
	for _, a := range all {
		if a.DeletedAt == nil {
			out.Data = append(out.Data, a)
		}
	}
	return out, nil
}

func (s *Service) UpdateProcessorAccount(ctx context.Context, scope payloom.Scope, id string, req *payloom.ProcessorAccountUpdate) (*payloom.ProcessorAccount, error) {
	var a *payloom.ProcessorAccount
	err := s.store.Update(ctx, func(tx payloom.Tx) error {
		var err error
		if a, err = s.get(ctx, tx, scope, id); err != nil {
			return err
		}
		if req.Credentials != nil {
			if err := checkCredentials(scope, a.Connector, req.Credentials); err != nil {
				return err
			}
			if err := s.seal(ctx, a, req.Credentials); err != nil {
				return err
			}
		}
		if req.Enabled != nil {
			a.Enabled = *req.Enabled
		}
		a.UpdatedAt = s.now()
		return tx.UpdateProcessorAccount(ctx, a)
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

func (s *Service) DeleteProcessorAccount(ctx context.Context, scope payloom.Scope, id string) error {
	return s.store.Update(ctx, func(tx payloom.Tx) error {
		a, err := s.get(ctx, tx, scope, id)
		if err != nil {
			return err
		}
		r, err := tx.GetRouting(ctx, scope)
		if err != nil && !payloom.IsCode(err, payloom.CodeNotFound) {
			return err
		}
		if r != nil {
			for i, rule := range r.Rules {
				if slices.Contains(ruleAccounts(rule), id) {
					return payloom.FieldError("id", "routing rule %d routes to this account; change the routing rules first", i)
				}
			}
		}
		now := s.now()
		a.DeletedAt, a.Enabled, a.UpdatedAt = &now, false, now
		return tx.UpdateProcessorAccount(ctx, a)
	})
}

func (s *Service) ProcessorAccountHealth(ctx context.Context, scope payloom.Scope, id string) (*payloom.ProcessorAccountHealth, error) {
	a, err := s.ProcessorAccount(ctx, scope, id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	health := s.health
	s.mu.Unlock()
	out := &payloom.ProcessorAccountHealth{Object: "processor_account_health", ProcessorAccount: a.ID, Name: a.Name,
		State: string(engine.BreakerClosed)}
	if health != nil {
		h := health(scope, a.Name)
		out.State, out.ErrorRate, out.Calls = h.State, h.ErrorRate, h.Calls
		out.ConsecutiveFailures, out.P50MS, out.OpenUntil = h.ConsecutiveFailures, h.P50MS, h.OpenUntil
	}
	return out, nil
}
