package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/payloom/payloom"
)

// specURL is the base URL the OpenAPI document is registered under in the
// JSON Schema compiler; response schemas are compiled by JSON pointer into
// it, so their $refs resolve within the document.
const specURL = "file:///payloom/openapi.json"

// specValidator validates response bodies against the OpenAPI document
// with a JSON Schema 2020-12 validator (OpenAPI 3.1's dialect), formats
// asserted.
type specValidator struct {
	doc map[string]any
	mu  sync.Mutex
	c   *jsonschema.Compiler
	sch map[string]*jsonschema.Schema
}

var (
	specOnce sync.Once
	spec     *specValidator
	specErr  error
)

func loadSpec(t testing.TB) *specValidator {
	t.Helper()
	specOnce.Do(func() {
		spec, specErr = newSpecValidator(OpenAPI())
	})
	if specErr != nil {
		t.Fatalf("loading openapi.json: %v", specErr)
	}
	return spec
}

func newSpecValidator(raw []byte) (*specValidator, error) {
	v := &specValidator{sch: map[string]*jsonschema.Schema{}}
	if err := json.Unmarshal(raw, &v.doc); err != nil {
		return nil, err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	v.c = jsonschema.NewCompiler()
	v.c.DefaultDraft(jsonschema.Draft2020)
	v.c.AssertFormat()
	if err := v.c.AddResource(specURL, inst); err != nil {
		return nil, err
	}
	return v, nil
}

// schema compiles the schema at a JSON pointer ("/components/schemas/X").
func (v *specValidator) schema(ptr string) (*jsonschema.Schema, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if s, ok := v.sch[ptr]; ok {
		return s, nil
	}
	s, err := v.c.Compile(specURL + "#" + ptr)
	if err != nil {
		return nil, err
	}
	v.sch[ptr] = s
	return s, nil
}

func pointerEscape(tok string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(tok)
}

func (v *specValidator) operation(method, pattern string) (map[string]any, bool) {
	item, _ := v.doc["paths"].(map[string]any)[pattern].(map[string]any)
	op, ok := item[strings.ToLower(method)].(map[string]any)
	return op, ok
}

// responsePointer finds the schema of a response: the operation's entry
// for the status, through a components/responses $ref if there is one.
func (v *specValidator) responsePointer(method, pattern string, status int) (string, error) {
	op, ok := v.operation(method, pattern)
	if !ok {
		return "", fmt.Errorf("openapi.json has no operation %s %s", method, pattern)
	}
	resps, _ := op["responses"].(map[string]any)
	resp, ok := resps[strconv.Itoa(status)].(map[string]any)
	base := "/paths/" + pointerEscape(pattern) + "/" + strings.ToLower(method) + "/responses/" + strconv.Itoa(status)
	if !ok {
		return "", fmt.Errorf("openapi.json does not document status %d for %s %s", status, method, pattern)
	}
	if ref, ok := resp["$ref"].(string); ok {
		base = strings.TrimPrefix(ref, "#")
	}
	return base + "/content/application~1json/schema", nil
}

// validate checks a response body against the schema of the operation and
// status. pattern "" means a request no route matched: a 404 or 405, whose
// shapes are the UnknownPath and MethodNotAllowed responses.
func (v *specValidator) validate(method, pattern string, status int, body []byte) error {
	var ptr string
	switch {
	case pattern != "":
		var err error
		if ptr, err = v.responsePointer(method, pattern, status); err != nil {
			return err
		}
	case status == http.StatusNotFound:
		ptr = "/components/responses/UnknownPath/content/application~1json/schema"
	case status == http.StatusMethodNotAllowed:
		ptr = "/components/responses/MethodNotAllowed/content/application~1json/schema"
	default:
		return fmt.Errorf("status %d for %s on an unknown route", status, method)
	}
	return v.validateAt(ptr, body)
}

func (v *specValidator) validateAt(ptr string, body []byte) error {
	s, err := v.schema(ptr)
	if err != nil {
		return fmt.Errorf("compiling %s: %w", ptr, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("response is not JSON: %w", err)
	}
	if err := s.Validate(inst); err != nil {
		return fmt.Errorf("response does not match %s: %v", ptr, err)
	}
	return nil
}

func TestSpecIsOpenAPI31(t *testing.T) {
	v := loadSpec(t)
	if got := v.doc["openapi"]; got != "3.1.0" {
		t.Fatalf("openapi = %v; want 3.1.0", got)
	}
	// Every component schema compiles: all $refs resolve, all patterns
	// are valid regular expressions.
	for name := range v.doc["components"].(map[string]any)["schemas"].(map[string]any) {
		if _, err := v.schema("/components/schemas/" + name); err != nil {
			t.Errorf("schema %s: %v", name, err)
		}
	}
}

// The route table and the document describe the same endpoints.
func TestSpecMatchesRoutes(t *testing.T) {
	v := loadSpec(t)
	documented := map[string]string{} // "METHOD pattern" -> operationId
	for path, item := range v.doc["paths"].(map[string]any) {
		for method, op := range item.(map[string]any) {
			documented[strings.ToUpper(method)+" "+path] = op.(map[string]any)["operationId"].(string)
		}
	}
	served := map[string]string{}
	for _, rt := range Routes() {
		served[rt.Method+" "+rt.Pattern] = rt.OperationID
	}
	if !maps.Equal(documented, served) {
		t.Fatalf("openapi.json operations = %v;\nwant the route table %v", documented, served)
	}

	for _, rt := range (&server{}).routes() {
		op, _ := v.operation(rt.Method, rt.Pattern)
		params := map[string]string{} // name -> in
		opParams, _ := op["parameters"].([]any)
		for _, p := range opParams {
			p := v.deref(p.(map[string]any))
			params[p["name"].(string)] = p["in"].(string)
		}
		_, public := op["security"]
		if public == rt.Auth {
			t.Errorf("%s %s: security in openapi.json disagrees with Auth=%v", rt.Method, rt.Pattern, rt.Auth)
		}
		if strings.Contains(rt.Pattern, "{id}") && params["id"] != "path" {
			t.Errorf("%s %s: no id path parameter", rt.Method, rt.Pattern)
		}
		resps := op["responses"].(map[string]any)
		var wantStatus []string
		switch {
		case rt.Write:
			wantStatus = []string{"200", "400", "401", "409", "413", "415", "500"}
			if params["Idempotency-Key"] != "header" {
				t.Errorf("%s %s: no Idempotency-Key header parameter", rt.Method, rt.Pattern)
			}
		case rt.Auth:
			wantStatus = []string{"200", "400", "401", "500"}
			var query []string
			for name, in := range params {
				if in == "query" {
					query = append(query, name)
				}
			}
			slices.Sort(query)
			want := append([]string{"merchant_id"}, rt.query...)
			slices.Sort(want)
			if !slices.Equal(query, want) {
				t.Errorf("%s %s: query parameters in openapi.json = %v; the handler accepts %v", rt.Method, rt.Pattern, query, want)
			}
		default:
			wantStatus = []string{"200"}
		}
		if strings.Contains(rt.Pattern, "{id}") || rt.OperationID == "createRefund" || rt.OperationID == "createPayment" {
			wantStatus = append(wantStatus, "404")
		}
		if rt.Auth {
			wantStatus = append(wantStatus, "403")
			if got := op["x-permission"]; got != string(rt.Permission) || rt.Permission == "" {
				t.Errorf("%s %s: x-permission in openapi.json = %v; the route table says %q", rt.Method, rt.Pattern, got, rt.Permission)
			}
		} else if _, ok := op["x-permission"]; ok {
			t.Errorf("%s %s: a public route has an x-permission", rt.Method, rt.Pattern)
		}
		for _, st := range wantStatus {
			if _, ok := resps[st]; !ok {
				t.Errorf("%s %s: status %s not documented", rt.Method, rt.Pattern, st)
			}
		}
	}
}

// The document lists every permission, and which are in a new key's
// default set.
func TestSpecPermissions(t *testing.T) {
	v := loadSpec(t)
	var names []payloom.Permission
	for _, e := range v.doc["x-permissions"].([]any) {
		e := e.(map[string]any)
		p := payloom.Permission(e["name"].(string))
		names = append(names, p)
		if def := slices.Contains(payloom.DefaultPermissions(), p); e["default"] != def {
			t.Errorf("x-permissions %s: default = %v; want %v", p, e["default"], def)
		}
	}
	if !slices.Equal(names, payloom.Permissions) {
		t.Errorf("x-permissions = %v; want %v", names, payloom.Permissions)
	}
}

func (v *specValidator) deref(m map[string]any) map[string]any {
	ref, ok := m["$ref"].(string)
	if !ok {
		return m
	}
	var cur any = v.doc
	for _, tok := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		cur = cur.(map[string]any)[strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)]
	}
	return v.deref(cur.(map[string]any))
}

// The table of error codes in the document is the API's errorTable.
func TestSpecErrorCodes(t *testing.T) {
	v := loadSpec(t)
	documented := map[string]errorClass{}
	for _, e := range v.doc["x-error-codes"].([]any) {
		e := e.(map[string]any)
		documented[e["code"].(string)] = errorClass{int(e["status"].(float64)), e["type"].(string)}
	}
	want := maps.Clone(errorTable)
	want[payloom.CodeInternal] = errorClass{http.StatusInternalServerError, typeAPI}
	if !maps.Equal(documented, want) {
		t.Errorf("x-error-codes = %v;\nwant %v", documented, want)
	}
	errSchema := v.doc["components"].(map[string]any)["schemas"].(map[string]any)["Error"].(map[string]any)
	props := errSchema["properties"].(map[string]any)["error"].(map[string]any)["properties"].(map[string]any)
	var enum []string
	for _, c := range props["code"].(map[string]any)["enum"].([]any) {
		enum = append(enum, c.(string))
	}
	slices.Sort(enum)
	if codes := slices.Sorted(maps.Keys(want)); !slices.Equal(enum, codes) {
		t.Errorf("Error.code enum = %v; want %v", enum, codes)
	}
}

// The request body schemas name exactly the fields the decoders accept, and
// refuse every other one.
func TestSpecRequestBodiesMatchDecoders(t *testing.T) {
	v := loadSpec(t)
	bodies := map[string]any{
		"TokenCreateRequest":    tokenCreateBody{},
		"PaymentCreateRequest":  paymentCreateBody{},
		"CaptureRequest":        captureBody{},
		"CancelRequest":         cancelBody{},
		"PaymentConfirmRequest": paymentConfirmBody{},
		"RefundCreateRequest":   refundCreateBody{},

		"WebhookEndpointCreateRequest": webhookEndpointCreateBody{},
		"WebhookEndpointUpdateRequest": webhookEndpointUpdateBody{},
		"MerchantOnlyRequest":          merchantOnlyBody{},
		"CustomerCreateRequest":        customerBody{},
		"CustomerUpdateRequest":        customerBody{},

		"ProcessorAccountCreateRequest": processorAccountCreateBody{},
		"ProcessorAccountUpdateRequest": processorAccountUpdateBody{},
		"RoutingUpdateRequest":          routingPutBody{},
	}
	schemas := v.doc["components"].(map[string]any)["schemas"].(map[string]any)
	for name, body := range bodies {
		v.compareStruct(t, name, schemas[name].(map[string]any), reflect.TypeOf(body))
	}
}

func (v *specValidator) compareStruct(t *testing.T, where string, sch map[string]any, typ reflect.Type) {
	t.Helper()
	sch = v.deref(sch)
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if typ.Kind() == reflect.Slice {
		if items, ok := sch["items"].(map[string]any); ok {
			v.compareStruct(t, where+"[]", items, typ.Elem())
		}
		return
	}
	if typ.Kind() != reflect.Struct {
		return
	}
	if sch["additionalProperties"] != false {
		t.Errorf("%s: additionalProperties is not false, but the decoder refuses unknown fields", where)
	}
	props, _ := sch["properties"].(map[string]any)
	fields := structFields(typ)
	if got, want := slices.Sorted(maps.Keys(props)), slices.Sorted(maps.Keys(fields)); !slices.Equal(got, want) {
		t.Errorf("%s: properties %v; the decoder accepts %v", where, got, want)
	}
	for name, idx := range fields {
		if p, ok := props[name].(map[string]any); ok {
			v.compareStruct(t, where+"."+name, p, typ.Field(idx).Type)
		}
	}
}

// The validator really rejects wrong responses: without this, a test that
// validates every response could pass by validating nothing.
func TestSpecValidatorRejectsWrongResponses(t *testing.T) {
	v := loadSpec(t)
	good := `{"id":"pay_1","object":"payment","merchant_id":"mrch_1","livemode":false,"amount":1050,` +
		`"amount_capturable":0,"amount_captured":1050,"amount_refunded":0,"currency":"USD","status":"captured",` +
		`"capture_method":"automatic","payment_method":{"type":"card","card":{"token":"tok_1","brand":"visa",` +
		`"first6":"424242","last4":"4242","exp_month":12,"exp_year":2030,"fingerprint":"fp"}},` +
		`"attempts":[{"id":"att_1","processor":"sandbox","status":"captured","duration_ms":3,` +
		`"created_at":"2025-01-01T00:00:00Z"}],"metadata":{},"created_at":"2025-01-01T00:00:00Z",` +
		`"updated_at":"2025-01-01T00:00:00.123Z"}`
	if err := v.validate("GET", "/v1/payments/{id}", 200, []byte(good)); err != nil {
		t.Fatalf("a correct payment fails validation: %v", err)
	}
	mutations := []struct {
		name string
		f    func(m map[string]any)
	}{
		{"missing status", func(m map[string]any) { delete(m, "status") }},
		{"unknown status", func(m map[string]any) { m["status"] = "paid" }},
		{"string amount", func(m map[string]any) { m["amount"] = "1050" }},
		{"float amount", func(m map[string]any) { m["amount"] = 10.5 }},
		{"extra field", func(m map[string]any) { m["card_number"] = "4242424242424242" }},
		{"lower-case currency", func(m map[string]any) { m["currency"] = "usd" }},
		{"null metadata", func(m map[string]any) { m["metadata"] = nil }},
		{"null attempts", func(m map[string]any) { m["attempts"] = nil }},
		{"bad time", func(m map[string]any) { m["created_at"] = "yesterday" }},
		{"wrong object", func(m map[string]any) { m["object"] = "refund" }},
		{"full number in summary", func(m map[string]any) {
			m["payment_method"].(map[string]any)["card"].(map[string]any)["last4"] = "4242424242424242"
		}},
		{"attempt without id", func(m map[string]any) {
			delete(m["attempts"].([]any)[0].(map[string]any), "id")
		}},
	}
	for _, mu := range mutations {
		var m map[string]any
		if err := json.Unmarshal([]byte(good), &m); err != nil {
			t.Fatal(err)
		}
		mu.f(m)
		b, _ := json.Marshal(m)
		if err := v.validate("GET", "/v1/payments/{id}", 200, b); err == nil {
			t.Errorf("%s: validate(%s) = nil; want an error", mu.name, b)
		}
	}
	// Error bodies, and statuses the operation does not document.
	for _, tt := range []struct {
		status int
		body   string
	}{
		{404, `{"error":{"type":"invalid_request_error","code":"not_found","message":"m"}}`},
		{404, `{"error":{"type":"invalid_request_error","code":"nope","message":"m","request_id":"req_1"}}`},
		{404, `{"error":{"type":"invalid_request_error","code":"not_found","message":"m","request_id":"req_1","param":""}}`},
		{404, `{"message":"not found"}`},
		{418, `{"error":{"type":"invalid_request_error","code":"not_found","message":"m","request_id":"req_1"}}`},
	} {
		if err := v.validate("GET", "/v1/payments/{id}", tt.status, []byte(tt.body)); err == nil {
			t.Errorf("validate(%d, %s) = nil; want an error", tt.status, tt.body)
		}
	}
}
