package adyen_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
)

// A recording is one request/response pair of Adyen's Checkout API, made
// from Adyen's documented examples (its Source says which). In the
// request, "{{dynamic}}" matches any value, "{{request.a.b}}" (in a
// header) must equal the request body's a.b, and a path segment "{{psp}}"
// matches any pspReference. In the response, "{{new.psp}}" is a fresh
// pspReference, "{{path.psp}}" the one in the path, "{{request.a.b}}" the
// request body's a.b, and "{{redirect.psp}}" / "{{redirect.reference}}"
// the pspReference / merchant reference of the payment whose 3-D Secure
// the request's details.redirectResult came back from (see shopperReturns).
type recording struct {
	Name    string `json:"name"`
	Source  string `json:"source"`
	Request struct {
		Method  string            `json:"method"`
		Path    string            `json:"path"`
		Headers map[string]string `json:"headers"`
		Body    any               `json:"body"`
	} `json:"request"`
	// Fault "drop": record the answer under the idempotency key, then
	// close the connection without sending it.
	Fault    string `json:"fault"`
	Response struct {
		Status  int               `json:"status"`
		Headers map[string]string `json:"headers"`
		Body    any               `json:"body"`
	} `json:"response"`
}

func loadRecordings(t *testing.T) []*recording {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no recordings in testdata (%v)", err)
	}
	var out []*recording
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var r recording
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if r.Name == "" || r.Source == "" || r.Request.Method == "" || r.Response.Status == 0 {
			t.Fatalf("%s: a recording needs a name, a source, a request and a response", f)
		}
		out = append(out, &r)
	}
	return out
}

// stored is an answer kept under an idempotency key, as Adyen keeps it.
type stored struct {
	body     []byte // the request body, canonical JSON
	status   int
	header   map[string]string
	response []byte
	approved bool
}

// replayServer serves the recordings on a loopback port. It checks every
// request against them (method, path, headers, body modulo dynamic
// fields) and answers with the one that matches. It keeps Adyen's
// documented idempotency: a repeated Idempotency-Key with the same body
// gets the stored answer (5xx answers are not stored, as Adyen stores
// none for transient errors).
type replayServer struct {
	t    *testing.T
	recs []*recording
	mu   sync.Mutex
	keys map[string]*stored
	seen map[string]int // requests per recording
	// redirected: the merchant reference of each payment answered
	// RedirectShopper, by pspReference. returned: the payment each
	// redirectResult was last issued for (Adyen binds a redirectResult to
	// its payment; the recordings' redirectResults are fixed strings).
	redirected map[string]string
	returned   map[string]redirectedPayment
}

type redirectedPayment struct{ psp, reference string }

func startReplay(t *testing.T) (*replayServer, string) {
	t.Helper()
	s := &replayServer{t: t, recs: loadRecordings(t), keys: map[string]*stored{}, seen: map[string]int{},
		redirected: map[string]string{}, returned: map[string]redirectedPayment{}}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts.URL
}

// shopperReturns plays the shopper at the redirect of the payment Adyen
// answered RedirectShopper with pspReference psp: it passes or fails 3-D
// Secure there, and returns the details the browser brings back, which
// /payments/details then answers for that payment.
func (s *replayServer) shopperReturns(t *testing.T, psp string, pass bool) map[string]string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	ref, ok := s.redirected[psp]
	if !ok {
		t.Fatalf("shopperReturns(%q): Adyen redirected no payment with that pspReference", psp)
	}
	result := redirectFailed
	if pass {
		result = redirectPassed
	}
	s.returned[result] = redirectedPayment{psp: psp, reference: ref}
	return map[string]string{"redirectResult": result}
}

// authorizations counts the stored approved authorizations.
func (s *replayServer) authorizations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, st := range s.keys {
		if st.approved {
			n++
		}
	}
	return n
}

func (s *replayServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body any
	if err := json.Unmarshal(raw, &body); err != nil {
		s.t.Errorf("%s %s: the body is not JSON", r.Method, r.URL.Path)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	canon, _ := json.Marshal(body)
	key := r.Header.Get("Idempotency-Key")

	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.keys[key]; st != nil && key != "" {
		if !bytes.Equal(st.body, canon) {
			s.t.Errorf("%s %s: Idempotency-Key %q reused with a different body", r.Method, r.URL.Path, key)
			w.WriteHeader(http.StatusUnprocessableEntity)
			return
		}
		writeStored(w, st)
		return
	}
	var matched []*recording
	var pathVars map[string]string
	var why []string
	for _, rec := range s.recs {
		vars, reason := rec.matches(r, body)
		if reason == "" {
			matched = append(matched, rec)
			pathVars = vars
		} else {
			why = append(why, rec.Name+": "+reason)
		}
	}
	if len(matched) != 1 {
		names := []string{}
		for _, m := range matched {
			names = append(names, m.Name)
		}
		sort.Strings(why)
		s.t.Errorf("%s %s matches %d recordings %v; want exactly one. Near misses:\n  %s",
			r.Method, r.URL.Path, len(matched), names, strings.Join(why, "\n  "))
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	rec := matched[0]
	s.seen[rec.Name]++
	psp := newPSP()
	resp := fill(rec.Response.Body, func(ph string) (any, bool) {
		switch {
		case ph == "new.psp":
			return psp, true
		case ph == "path.psp":
			return pathVars["psp"], true
		case strings.HasPrefix(ph, "request."):
			return lookup(body, strings.TrimPrefix(ph, "request."))
		case ph == "redirect.psp" || ph == "redirect.reference":
			result, _ := lookup(body, "details.redirectResult")
			rp, ok := s.returned[fmt.Sprint(result)]
			if !ok {
				s.t.Errorf("%s: no shopper came back with redirectResult %v", rec.Name, result)
				return nil, false
			}
			if ph == "redirect.psp" {
				return rp.psp, true
			}
			return rp.reference, true
		}
		return nil, false
	})
	rb, _ := json.Marshal(resp)
	st := &stored{body: canon, status: rec.Response.Status, header: rec.Response.Headers, response: rb}
	if m, ok := resp.(map[string]any); ok && m["resultCode"] == "Authorised" {
		st.approved = true
	} else if ok && m["resultCode"] == "RedirectShopper" {
		psp, _ := m["pspReference"].(string)
		ref, _ := m["merchantReference"].(string)
		s.redirected[psp] = ref
	}
	if rec.Response.Status < 500 && key != "" {
		s.keys[key] = st
	}
	if rec.Fault == "drop" {
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	writeStored(w, st)
}

func writeStored(w http.ResponseWriter, st *stored) {
	for k, v := range st.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(st.status)
	w.Write(st.response)
}

// matches reports why the request is not this recording's ("" if it is),
// with the path variables.
func (rec *recording) matches(r *http.Request, body any) (map[string]string, string) {
	if r.Method != rec.Request.Method {
		return nil, "method " + r.Method
	}
	vars := map[string]string{}
	want, got := strings.Split(rec.Request.Path, "/"), strings.Split(r.URL.Path, "/")
	if len(want) != len(got) {
		return nil, "path " + r.URL.Path
	}
	for i := range want {
		if strings.HasPrefix(want[i], "{{") {
			if got[i] == "" {
				return nil, "empty path segment"
			}
			vars[strings.Trim(want[i], "{}")] = got[i]
		} else if want[i] != got[i] {
			return nil, "path " + r.URL.Path
		}
	}
	for k, v := range rec.Request.Headers {
		h := r.Header.Get(k)
		switch {
		case v == "{{dynamic}}":
			if h == "" {
				return nil, "header " + k + " missing"
			}
		case strings.HasPrefix(v, "{{request."):
			ref, ok := lookup(body, strings.TrimSuffix(strings.TrimPrefix(v, "{{request."), "}}"))
			if !ok || h == "" || fmt.Sprint(ref) != h {
				return nil, "header " + k + " does not equal the body's " + strings.Trim(v, "{}")
			}
		case h != v:
			return nil, "header " + k + " = " + h
		}
	}
	if where := diff(rec.Request.Body, body, "body"); where != "" {
		return nil, where
	}
	return vars, ""
}

// diff returns where got differs from want ("" if nowhere). It names the
// field, never its value: a value may be a card number.
func diff(want, got any, at string) string {
	if s, ok := want.(string); ok && s == "{{dynamic}}" {
		if got == nil {
			return at + " missing"
		}
		return ""
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return at + " is not an object"
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				return at + "." + k + " is not in the recording"
			}
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				return at + "." + k + " missing"
			}
			if d := diff(wv, gv, at+"."+k); d != "" {
				return d
			}
		}
		return ""
	default:
		if !reflect.DeepEqual(want, got) {
			return at + " differs"
		}
		return ""
	}
}

// fill replaces "{{...}}" strings in a recorded response.
func fill(v any, resolve func(string) (any, bool)) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = fill(e, resolve)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = fill(e, resolve)
		}
		return out
	case string:
		if strings.HasPrefix(x, "{{") && strings.HasSuffix(x, "}}") {
			if r, ok := resolve(strings.Trim(x, "{}")); ok {
				return r
			}
		}
		return x
	}
	return v
}

func lookup(v any, path string) (any, bool) {
	for _, p := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[p]; !ok {
			return nil, false
		}
	}
	return v, true
}

// newPSP returns a pspReference in Adyen's shape: 16 characters, upper
// case letters and digits, never a run of digits long enough to look like
// a card number.
func newPSP() string {
	const alpha = "ABCDEFGHJKLMNPQRSTUVWXYZ"
	const digits = "0123456789"
	b := make([]byte, 16)
	rand.Read(b)
	out := make([]byte, 16)
	for i := range out {
		if i%4 == 3 {
			out[i] = alpha[int(b[i])%len(alpha)]
		} else {
			out[i] = digits[int(b[i])%len(digits)]
		}
	}
	return string(out)
}
