package webhook

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
	"unicode/utf8"
)

// maxSavedBody bounds the body read from a saved delivery.
const maxSavedBody = 10 << 20

// savedDelivery is the JSON form of a saved delivery:
//
//	{"headers": {"webhook-id": "evt_...", "webhook-timestamp": "1700000000",
//	             "webhook-signature": "v1,..."},
//	 "body": "{\"id\":\"evt_...\",...}"}
//
// body is the request body exactly as received, as a JSON string. A header
// value may also be a list of strings.
type savedDelivery struct {
	Headers map[string]json.RawMessage `json:"headers"`
	Body    *string                    `json:"body"`
}

// ReadDelivery reads a saved delivery for `payloom webhooks verify`, in
// either of two forms, told apart by the first non-blank byte:
//
//   - '{': the JSON form {"headers": {...}, "body": "..."} (see
//     WriteDelivery);
//   - anything else: the raw HTTP request as received ("POST /hooks
//     HTTP/1.1", the headers, a blank line, the body), as a request
//     dumper or `nc -l` saves it. Bare "\n" line ends are accepted.
func ReadDelivery(r io.Reader) (http.Header, []byte, error) {
	br := bufio.NewReader(r)
	for {
		b, err := br.Peek(1)
		if err != nil {
			return nil, nil, errors.New("webhook: saved delivery is empty")
		}
		if b[0] != ' ' && b[0] != '\t' && b[0] != '\r' && b[0] != '\n' {
			break
		}
		br.ReadByte()
	}
	if b, _ := br.Peek(1); b[0] == '{' {
		return readJSONDelivery(br)
	}
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, nil, fmt.Errorf("webhook: saved delivery is neither JSON nor an HTTP request: %w", err)
	}
	defer req.Body.Close()
	body, err := io.ReadAll(io.LimitReader(req.Body, maxSavedBody+1))
	if err != nil {
		return nil, nil, fmt.Errorf("webhook: read saved request body: %w", err)
	}
	if len(body) > maxSavedBody {
		return nil, nil, fmt.Errorf("webhook: saved request body is larger than %d bytes", maxSavedBody)
	}
	return req.Header, body, nil
}

func readJSONDelivery(r io.Reader) (http.Header, []byte, error) {
	var sd savedDelivery
	dec := json.NewDecoder(io.LimitReader(r, 2*maxSavedBody))
	if err := dec.Decode(&sd); err != nil {
		return nil, nil, fmt.Errorf("webhook: saved delivery is not valid JSON: %w", err)
	}
	if sd.Body == nil {
		return nil, nil, errors.New(`webhook: saved delivery has no "body"`)
	}
	h := http.Header{}
	for name, raw := range sd.Headers {
		var one string
		if err := json.Unmarshal(raw, &one); err == nil {
			h.Add(name, one)
			continue
		}
		var many []string
		if err := json.Unmarshal(raw, &many); err != nil {
			return nil, nil, fmt.Errorf("webhook: saved header %q is neither a string nor a list of strings", name)
		}
		for _, v := range many {
			h.Add(name, v)
		}
	}
	return h, []byte(*sd.Body), nil
}

// WriteDelivery saves a received delivery in the JSON form ReadDelivery
// reads: the three webhook headers and the body. body must be UTF-8 (an
// event always is).
func WriteDelivery(w io.Writer, headers http.Header, body []byte) error {
	sd := struct {
		Headers map[string]string `json:"headers"`
		Body    string            `json:"body"`
	}{Headers: map[string]string{}, Body: string(body)}
	if !utf8.Valid(body) {
		return errors.New("webhook: body is not UTF-8")
	}
	for _, name := range []string{HeaderID, HeaderTimestamp, HeaderSignature} {
		if v := headers.Get(name); v != "" {
			sd.Headers[name] = v
		}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(sd)
}

// VerifyFile checks the saved delivery at path (see ReadDelivery) against
// secret, with Verify's rules: the timestamp must be within tolerance of
// now (0 means DefaultTolerance).
func VerifyFile(secret, path string, tolerance time.Duration) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	defer f.Close()
	h, body, err := ReadDelivery(f)
	if err != nil {
		return err
	}
	return Verify(secret, h, body, tolerance)
}
