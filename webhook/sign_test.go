package webhook_test

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/payloom/payloom/webhook"
)

// The Standard Webhooks test vector (the specification's libraries sign
// exactly this in their tests), checked independently with Python's hmac.
const (
	vectorSecret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID      = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTS      = 1614265330
	vectorPayload = `{"test": 2432232314}`
	vectorSig     = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	// A well-formed signature that is not the vector's (from the same
	// libraries' tests).
	otherSig = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
)

func TestSignStandardWebhooksVector(t *testing.T) {
	for _, secret := range []string{vectorSecret, strings.TrimPrefix(vectorSecret, "whsec_")} {
		got, err := webhook.Sign(secret, vectorID, time.Unix(vectorTS, 0), []byte(vectorPayload))
		if err != nil || got != vectorSig {
			t.Errorf("Sign(%q, %q, %d, %q) = %q, %v; want %q", secret, vectorID, vectorTS, vectorPayload, got, err, vectorSig)
		}
	}
}

func vectorHeaders(ts int64, sig string) http.Header {
	h := http.Header{}
	h.Set("webhook-id", vectorID)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", sig)
	return h
}

func TestVerify(t *testing.T) {
	now := time.Unix(vectorTS, 0)
	body := []byte(vectorPayload)
	changed := []byte(vectorPayload)
	changed[len(changed)-2]++ // one byte of the amount
	wrongSecret, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		secret  string
		h       http.Header
		body    []byte
		now     time.Time
		wantErr error
	}{
		{"the vector", vectorSecret, vectorHeaders(vectorTS, vectorSig), body, now, nil},
		{"secret without prefix", strings.TrimPrefix(vectorSecret, "whsec_"), vectorHeaders(vectorTS, vectorSig), body, now, nil},
		{"one changed body byte", vectorSecret, vectorHeaders(vectorTS, vectorSig), changed, now, webhook.ErrNoValidSignature},
		{"body with a trailing newline", vectorSecret, vectorHeaders(vectorTS, vectorSig), append([]byte(vectorPayload), '\n'), now, webhook.ErrNoValidSignature},
		{"wrong secret", wrongSecret.Reveal(), vectorHeaders(vectorTS, vectorSig), body, now, webhook.ErrNoValidSignature},
		{"another id", vectorSecret, func() http.Header {
			h := vectorHeaders(vectorTS, vectorSig)
			h.Set("webhook-id", vectorID+"x")
			return h
		}(), body, now, webhook.ErrNoValidSignature},
		// The timestamp is signed: moving it breaks the signature even
		// within the tolerance.
		{"timestamp moved by 1s", vectorSecret, vectorHeaders(vectorTS+1, vectorSig), body, now, webhook.ErrNoValidSignature},
		{"received 300s later", vectorSecret, vectorHeaders(vectorTS, vectorSig), body, now.Add(300 * time.Second), nil},
		{"received 300s earlier", vectorSecret, vectorHeaders(vectorTS, vectorSig), body, now.Add(-300 * time.Second), nil},
		{"received 301s later", vectorSecret, vectorHeaders(vectorTS, vectorSig), body, now.Add(301 * time.Second), webhook.ErrTimestamp},
		{"received 301s earlier", vectorSecret, vectorHeaders(vectorTS, vectorSig), body, now.Add(-301 * time.Second), webhook.ErrTimestamp},
		{"valid one of several", vectorSecret, vectorHeaders(vectorTS, otherSig+" v1a,"+otherSig[3:]+" "+vectorSig+" garbage"), body, now, nil},
		{"only other signatures", vectorSecret, vectorHeaders(vectorTS, otherSig+" v2,"+vectorSig[3:]), body, now, webhook.ErrNoValidSignature},
		{"signature not base64", vectorSecret, vectorHeaders(vectorTS, "v1,!!!"), body, now, webhook.ErrNoValidSignature},
		{"missing id", vectorSecret, func() http.Header { h := vectorHeaders(vectorTS, vectorSig); h.Del("webhook-id"); return h }(), body, now, webhook.ErrMissingHeader},
		{"missing timestamp", vectorSecret, func() http.Header {
			h := vectorHeaders(vectorTS, vectorSig)
			h.Del("webhook-timestamp")
			return h
		}(), body, now, webhook.ErrMissingHeader},
		{"missing signature", vectorSecret, func() http.Header {
			h := vectorHeaders(vectorTS, vectorSig)
			h.Del("webhook-signature")
			return h
		}(), body, now, webhook.ErrMissingHeader},
		{"timestamp not a number", vectorSecret, func() http.Header {
			h := vectorHeaders(vectorTS, vectorSig)
			h.Set("webhook-timestamp", "2021-02-25T15:02:10Z")
			return h
		}(), body, now, webhook.ErrInvalidTimestamp},
		{"secret not base64", "whsec_not base64!", vectorHeaders(vectorTS, vectorSig), body, now, webhook.ErrInvalidSecret},
		{"empty secret", "whsec_", vectorHeaders(vectorTS, vectorSig), body, now, webhook.ErrInvalidSecret},
	}
	for _, tt := range tests {
		err := webhook.VerifyAt(tt.secret, tt.h, tt.body, 0, tt.now)
		if !errors.Is(err, tt.wantErr) || (tt.wantErr != nil && err == nil) {
			t.Errorf("%s: VerifyAt = %v; want %v", tt.name, err, tt.wantErr)
		}
	}
}

// TestVerifyTolerance: a tolerance other than the default is honoured, and
// Verify uses the current time.
func TestVerifyTolerance(t *testing.T) {
	secret, _ := webhook.NewSecret()
	body := []byte(`{"id":"evt_1"}`)
	sent := time.Now().Add(-time.Minute)
	sig, err := webhook.Sign(secret.Reveal(), "evt_1", sent, body)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("webhook-id", "evt_1")
	h.Set("webhook-timestamp", strconv.FormatInt(sent.Unix(), 10))
	h.Set("webhook-signature", sig)
	if err := webhook.Verify(secret.Reveal(), h, body, 0); err != nil {
		t.Errorf("Verify(sent a minute ago, default tolerance) = %v; want nil", err)
	}
	if err := webhook.Verify(secret.Reveal(), h, body, 30*time.Second); !errors.Is(err, webhook.ErrTimestamp) {
		t.Errorf("Verify(sent a minute ago, tolerance 30s) = %v; want ErrTimestamp", err)
	}
}

func TestNewSecret(t *testing.T) {
	a, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := webhook.NewSecret()
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(a.Reveal(), "whsec_"))
	if !strings.HasPrefix(a.Reveal(), "whsec_") || err != nil || len(raw) < 24 {
		t.Errorf("NewSecret() = %d-byte key, %v (prefix %q); want whsec_ and at least 24 bytes", len(raw), err, a.Reveal()[:6])
	}
	if a.Reveal() == b.Reveal() {
		t.Errorf("two NewSecret() calls returned the same secret")
	}
	if s := a.String(); strings.Contains(s, a.Reveal()[6:]) {
		t.Errorf("Secret.String() = %q; want it redacted", s)
	}
}

func FuzzVerify(f *testing.F) {
	f.Add(vectorID, "1614265330", vectorSig, []byte(vectorPayload))
	f.Add("", "-1", "v1,", []byte{})
	f.Add("a.b", "99999999999999999999", "v1,AAAA v1a,BBBB", []byte("{"))
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", sig)
		err := webhook.VerifyAt(vectorSecret, h, body, 0, time.Unix(vectorTS, 0))
		// Only the exact vector (or its bytes re-listed) may verify.
		if err == nil && (id != vectorID || string(body) != vectorPayload) {
			t.Errorf("VerifyAt(%q, %q, %q, %q) = nil; want an error", id, ts, sig, body)
		}
	})
}
