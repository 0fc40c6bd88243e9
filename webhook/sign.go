package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/payloom/payloom"
)

// Standard Webhooks headers (standardwebhooks.com).
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every signing secret.
const SecretPrefix = "whsec_"

// secretBytes is the size of a new signing key: the specification asks for
// at least 24 random bytes.
const secretBytes = 32

// DefaultTolerance is how far a webhook-timestamp may be from the
// receiver's clock, either way, when Verify is given no tolerance.
const DefaultTolerance = 5 * time.Minute

// Errors of Verify. Each is wrapped with details; test them with
// errors.Is.
var (
	ErrInvalidSecret    = errors.New("webhook: invalid signing secret")
	ErrMissingHeader    = errors.New("webhook: missing webhook header")
	ErrInvalidTimestamp = errors.New("webhook: invalid webhook-timestamp")
	// ErrTimestamp: the timestamp is older or newer than the tolerance
	// allows (a replay, or a badly wrong clock).
	ErrTimestamp = errors.New("webhook: webhook-timestamp outside the tolerance")
	// ErrNoValidSignature: no v1 signature in webhook-signature matches.
	ErrNoValidSignature = errors.New("webhook: no valid signature")
)

// NewSecret returns a new signing secret: "whsec_" and the base64 of 32
// random bytes.
func NewSecret() (payloom.Secret, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("webhook: generate secret: %w", err)
	}
	return payloom.Secret(SecretPrefix + base64.StdEncoding.EncodeToString(b)), nil
}

// key decodes a secret, with or without its "whsec_" prefix, into the HMAC
// key.
func key(secret string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil || len(k) == 0 {
		// The secret itself never goes into the error.
		return nil, ErrInvalidSecret
	}
	return k, nil
}

func mac(k []byte, id string, ts int64, body []byte) []byte {
	m := hmac.New(sha256.New, k)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Sign returns the Standard Webhooks signature "v1,<base64 HMAC-SHA256>" of
// id.timestamp.body under secret ("whsec_..."). ts is sent in whole
// seconds.
func Sign(secret, id string, ts time.Time, body []byte) (string, error) {
	k, err := key(secret)
	if err != nil {
		return "", err
	}
	return "v1," + base64.StdEncoding.EncodeToString(mac(k, id, ts.Unix(), body)), nil
}

// signatureHeader signs with every secret and joins the signatures with
// spaces, as the specification lists them during a rotation.
func signatureHeader(secrets []string, id string, ts time.Time, body []byte) (string, error) {
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		sig, err := Sign(s, id, ts, body)
		if err != nil {
			return "", err
		}
		sigs = append(sigs, sig)
	}
	return strings.Join(sigs, " "), nil
}

// Verify checks a received webhook: the headers webhook-id,
// webhook-timestamp and webhook-signature, and the body exactly as
// received (not re-encoded). It accepts the request when any v1 signature
// of the list matches (one per active secret) and the timestamp is within
// tolerance of the current time, either way (0 means DefaultTolerance).
// Signatures are compared in constant time.
func Verify(secret string, headers http.Header, body []byte, tolerance time.Duration) error {
	return VerifyAt(secret, headers, body, tolerance, time.Now())
}

// VerifyAt is Verify with the current time given: to check a saved delivery
// as of when it was received.
func VerifyAt(secret string, headers http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	k, err := key(secret)
	if err != nil {
		return err
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	id, tsText, sigs := headers.Get(HeaderID), headers.Get(HeaderTimestamp), headers.Get(HeaderSignature)
	for _, h := range [][2]string{{HeaderID, id}, {HeaderTimestamp, tsText}, {HeaderSignature, sigs}} {
		if h[1] == "" {
			return fmt.Errorf("%w: %s", ErrMissingHeader, h[0])
		}
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil || ts < 0 {
		return fmt.Errorf("%w: %q is not a Unix time in seconds", ErrInvalidTimestamp, tsText)
	}
	sent := time.Unix(ts, 0)
	if d := now.Sub(sent); d > tolerance {
		return fmt.Errorf("%w: sent %s ago, more than %s", ErrTimestamp, d.Truncate(time.Second), tolerance)
	} else if -d > tolerance {
		return fmt.Errorf("%w: %s in the future, more than %s", ErrTimestamp, (-d).Truncate(time.Second), tolerance)
	}
	want := mac(k, id, ts, body)
	for _, s := range strings.Fields(sigs) {
		version, enc, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue // another scheme (v1a) or garbage: not ours to judge
		}
		got, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrNoValidSignature
}
